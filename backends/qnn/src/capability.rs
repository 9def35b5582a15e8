//! Which nodes the HTP can take, and why not when it cannot.
//!
//! The answer follows the pinned op set (SDK 2.13, `qti.aisw` opset 1.24,
//! no RmsNorm / RoPE ops: both are decomposed), the library's own list of
//! supported ops when it gives one, the HTP's static-shape and rank rules,
//! and, for quantized activations, whether the calibration knows the
//! tensor's range. Every refusal carries the reason shown in the placement
//! report (op missing, dtype, rank, dynamic shape, calibration).

use std::collections::HashSet;

use wisp_engine::{Graph, NodeId, ValueKind};
use wisp_ops::{DType, Op};
use wisp_qnn_sys::ops::*;

use crate::lower::act_enc;
use crate::Precision;

/// The `qti.aisw` ops the lowering of `op` uses (to check against the library's list).
pub fn qnn_ops(op: &Op) -> &'static [&'static str] {
    const EW: &[&str] = &[QNN_OP_ELEMENT_WISE_ADD];
    match op {
        Op::Add => EW,
        Op::Mul | Op::Scale { .. } => &[QNN_OP_ELEMENT_WISE_MULTIPLY],
        Op::Silu | Op::SwiGlu => &[QNN_OP_SIGMOID, QNN_OP_ELEMENT_WISE_MULTIPLY],
        Op::Gelu => &[QNN_OP_GELU],
        Op::LayerNorm { .. } => &[QNN_OP_LAYER_NORM],
        Op::MatMul => &[QNN_OP_FULLY_CONNECTED],
        Op::GetRows => &[QNN_OP_GATHER],
        Op::Reshape => &[QNN_OP_RESHAPE],
        Op::TakeRows { .. } => &[QNN_OP_STRIDED_SLICE],
        Op::RmsNorm { .. } | Op::RmsNormMul { .. } | Op::L2Norm { .. } => &[
            QNN_OP_LAYER_NORM,
            QNN_OP_CONCAT,
            QNN_OP_STRIDED_SLICE,
            QNN_OP_ELEMENT_WISE_MULTIPLY,
        ],
        Op::MeanPool => &[QNN_OP_MAT_MUL, QNN_OP_ELEMENT_WISE_DIVIDE, QNN_OP_RESHAPE],
        Op::EncoderAttention { .. } | Op::Attention { .. } => &[
            QNN_OP_RESHAPE,
            QNN_OP_TRANSPOSE,
            QNN_OP_MAT_MUL,
            QNN_OP_SOFTMAX,
            QNN_OP_ELEMENT_WISE_ADD,
        ],
        Op::Rope { .. } => &[
            QNN_OP_GATHER,
            QNN_OP_STRIDED_SLICE,
            QNN_OP_ELEMENT_WISE_MULTIPLY,
            QNN_OP_ELEMENT_WISE_SUBTRACT,
            QNN_OP_CONCAT,
        ],
        _ => &[],
    }
}

/// Whether the HTP can run `node`; `Err` holds the reason.
pub fn check(
    g: &Graph,
    node: NodeId,
    p: &Precision,
    supported: Option<&HashSet<String>>,
) -> Result<(), String> {
    let n = g.node(node);
    let weight = |i: usize| matches!(g.value(n.inputs[i]).kind, ValueKind::Weight(_));
    match &n.op {
        Op::KvStore => {
            return Err(
                "kv_store writes the session's KV cache in place: the QNN graphs take the \
                        cache as an input and the host stores the new rows"
                    .into(),
            )
        }
        Op::GeGlu => {
            return Err("geglu uses the tanh GELU; the pinned op set's Gelu is the erf GELU".into())
        }
        Op::MatMulSwiGlu => {
            return Err(
                "fused matmul_swiglu has no calibrated intermediate; the NPU runs the \
                        unfused ops (load with fusion off)"
                    .into(),
            )
        }
        Op::FakeQuant { .. } => {
            return Err("fake_quant simulates an NPU on the CPU; it is not lowered".into())
        }
        Op::MatMul if !weight(1) => {
            return Err(
                "matmul with a non-constant right-hand side (FullyConnected takes static weights)"
                    .into(),
            )
        }
        Op::GetRows if !weight(0) => return Err("get_rows from a non-constant table".into()),
        Op::LayerNorm { .. } if !(weight(1) && weight(2)) => {
            return Err("layer_norm with non-constant weight or bias".into())
        }
        Op::RmsNormMul { .. } if !weight(1) => {
            return Err("rms_norm_mul with a non-constant weight".into())
        }
        Op::Rope {
            head_dim, n_dims, ..
        } if n_dims != head_dim || head_dim % 2 != 0 => {
            return Err(format!(
                "partial rotary embedding ({n_dims} of {head_dim} dims) is not lowered"
            ))
        }
        _ => {}
    }
    if let Some(set) = supported {
        if let Some(missing) = qnn_ops(&n.op).iter().find(|o| !set.contains(**o)) {
            return Err(format!("the library does not list op {missing}"));
        }
    }
    // Decompositions computed in fp16 read graph inputs (masks, positions) directly.
    let island = matches!(
        n.op,
        Op::RmsNorm { .. }
            | Op::RmsNormMul { .. }
            | Op::L2Norm { .. }
            | Op::MeanPool
            | Op::EncoderAttention { .. }
            | Op::Attention { .. }
            | Op::Rope { .. }
    );
    for &v in n.inputs.iter().chain([&n.output]) {
        let val = g.value(v);
        let shape = &val.ty.shape;
        if shape.contains(&0) {
            return Err(format!(
                "{} has an empty (dynamic) dimension {shape:?}",
                val.name
            ));
        }
        if shape.len() > 4 {
            return Err(format!(
                "{} has rank {} (the HTP takes at most 4 here)",
                val.name,
                shape.len()
            ));
        }
        match val.kind {
            ValueKind::Weight(_) => {
                if val.ty.dtype == DType::I32 {
                    return Err(format!("weight {} is i32", val.name));
                }
                if val.ty.numel() > u32::MAX as usize {
                    return Err(format!(
                        "weight {} exceeds 4 GiB as a static tensor",
                        val.name
                    ));
                }
            }
            ValueKind::State(_) => {
                if !matches!(val.ty.dtype, DType::F16 | DType::F32) {
                    return Err(format!("state {} has dtype {}", val.name, val.ty.dtype));
                }
            }
            ValueKind::Input => {
                if !matches!(val.ty.dtype, DType::F32 | DType::I32 | DType::F16) {
                    return Err(format!("input {} has dtype {}", val.name, val.ty.dtype));
                }
                if val.ty.dtype == DType::F32 && !island {
                    act_enc(g, v, p)?;
                }
            }
            ValueKind::Activation => {
                if val.ty.dtype != DType::F32 {
                    return Err(format!(
                        "activation {} has dtype {}",
                        val.name, val.ty.dtype
                    ));
                }
                act_enc(g, v, p)?;
            }
        }
    }
    Ok(())
}
