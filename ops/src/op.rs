//! The op set wisp's decoders (llama family, Gemma 3) and encoders need, with
//! stable names and shape rules.
//!
//! Op names are stable strings: the same name appears in logs, placement
//! reports, test filters and `WISP_DENY_OPS`. Shapes are outermost-first;
//! activations are f32 `[rows, row_len]`, token ids and positions are i32.

use crate::dtype::DType;
use crate::tensor::TensorType;

/// How rotary embeddings pair the dimensions of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RopeMode {
    /// Adjacent pairs (x[2i], x[2i+1]) — llama's GGUF layout.
    Normal,
    /// Halves (x[i], x[i + n_dims/2]) — GPT-NeoX, Gemma, Qwen.
    Neox,
}

/// One operation of the graph.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `[table [V, D] (any dtype), ids i32 [N]] → f32 [N, D]`: embedding lookup.
    GetRows,
    /// `[x f32 [N, K], w [M, K] (any dtype)] → f32 [N, M]`: y = x · wᵀ.
    MatMul,
    /// `[x f32 [N, D]] → f32 [N, D]`: x / sqrt(mean(x²) + eps), no weight.
    RmsNorm { eps: f32 },
    /// `[a f32 [N, D], b f32 [N, D] or [D]] → f32 [N, D]`: a · b (b broadcast over rows).
    Mul,
    /// `[a f32 [N, D], b f32 [N, D] or [D]] → f32 [N, D]`: a + b.
    Add,
    /// `[x f32 [N, H·head_dim], pos i32 [N]] → same`: rotary position embedding
    /// of the first `n_dims` dimensions of each head.
    Rope {
        head_dim: usize,
        n_dims: usize,
        base: f32,
        mode: RopeMode,
    },
    /// `[x f32] → f32`: x · sigmoid(x).
    Silu,
    /// `[gate f32, up f32] → f32`: silu(gate) · up.
    SwiGlu,
    /// `[gate f32, up f32] → f32`: gelu_tanh(gate) · up, with the tanh
    /// approximation of GELU, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    /// (Gemma's feed-forward).
    GeGlu,
    /// `[x f32] → f32`: x · factor (Gemma's embedding × √d).
    Scale { factor: f32 },
    /// `[x f32 [N, C], pos i32 [N]] → state [CTX, C] (f32 or f16)`: writes row i
    /// of x at row pos[i] of the KV-cache state; other rows are kept.
    KvStore,
    /// `[q f32 [N, H·hd], k [CTX, KV·hd], v [CTX, KV·hd], pos i32 [N]] → f32 [N, H·hd]`:
    /// causal attention with grouped-query heads; query i sees cache rows 0..=pos[i],
    /// and with a sliding `window` only the last `window` of them: rows j with
    /// pos[i] − j < window (llama.cpp's standard SWA mask).
    Attention {
        n_head: usize,
        n_kv_head: usize,
        head_dim: usize,
        scale: f32,
        window: Option<usize>,
    },
    /// `[x] → x with another shape`: a copy (in place when the planner allows).
    Reshape,
    /// `[x f32 [N, D]] → f32 [len, D]`: rows start..start+len.
    TakeRows { start: usize, len: usize },
    /// Fused `rms_norm` then `mul` by a row vector: `[x f32 [N, D], w f32 [D]] → f32 [N, D]`.
    RmsNormMul { eps: f32 },
    /// `[x f32 [N, D], w f32 [D], b f32 [D]] → f32 [N, D]`: (x − mean)/sqrt(var + eps)·w + b.
    LayerNorm { eps: f32 },
    /// `[x f32] → f32`: the exact (erf) GELU, x·(1 + erf(x/√2))/2.
    Gelu,
    /// `[q, k, v f32 [B·S, H·hd], mask f32 [B, S]] → f32 [B·S, H·hd]`: bidirectional
    /// attention within each of the B sequences; keys whose mask is 0 (padding) are ignored.
    EncoderAttention {
        n_head: usize,
        head_dim: usize,
        scale: f32,
    },
    /// `[x f32 [B·S, D], mask f32 [B, S]] → f32 [B, D]`: mean over each sequence's unmasked rows.
    MeanPool,
    /// `[x f32 [N, D]] → f32 [N, D]`: each row divided by max(‖row‖₂, eps).
    L2Norm { eps: f32 },
    /// `[x f32] → f32`: simulated static (asymmetric, unsigned) activation
    /// quantization as an NPU computes it, in QNN's convention:
    /// q = clamp(round(x/scale) − offset, 0, qmax), real = (q + offset)·scale,
    /// with qmax 255 (uint8) or 65535 (uint16) and offset ≤ 0.
    FakeQuant { scale: f32, offset: i32, qmax: u32 },
    /// Fused gate/up projections and SwiGLU:
    /// `[x f32 [N, K], w_gate [M, K], w_up [M, K]] → f32 [N, M]` = silu(x·w_gateᵀ) · (x·w_upᵀ).
    MatMulSwiGlu,
}

/// Why an op cannot be built or run with the given operands.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpError {
    #[error("{op}: expected {expected} inputs, got {got}")]
    Arity {
        op: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{op}: input {index} has type {got}, expected {expected}")]
    Input {
        op: &'static str,
        index: usize,
        got: String,
        expected: String,
    },
    #[error("{op}: {why}")]
    Invalid { op: &'static str, why: String },
}

impl Op {
    /// The stable name of the op.
    pub fn name(&self) -> &'static str {
        match self {
            Op::GetRows => "get_rows",
            Op::MatMul => "matmul",
            Op::RmsNorm { .. } => "rms_norm",
            Op::Mul => "mul",
            Op::Add => "add",
            Op::Rope { .. } => "rope",
            Op::Silu => "silu",
            Op::SwiGlu => "swiglu",
            Op::GeGlu => "geglu",
            Op::Scale { .. } => "scale",
            Op::KvStore => "kv_store",
            Op::Attention { .. } => "attention",
            Op::Reshape => "reshape",
            Op::TakeRows { .. } => "take_rows",
            Op::RmsNormMul { .. } => "rms_norm_mul",
            Op::MatMulSwiGlu => "matmul_swiglu",
            Op::LayerNorm { .. } => "layer_norm",
            Op::Gelu => "gelu",
            Op::EncoderAttention { .. } => "encoder_attention",
            Op::MeanPool => "mean_pool",
            Op::L2Norm { .. } => "l2_norm",
            Op::FakeQuant { .. } => "fake_quant",
        }
    }

    /// Every op name, for validating deny-lists and filters.
    pub const NAMES: [&'static str; 22] = [
        "get_rows",
        "matmul",
        "rms_norm",
        "mul",
        "add",
        "rope",
        "silu",
        "swiglu",
        "kv_store",
        "attention",
        "reshape",
        "take_rows",
        "rms_norm_mul",
        "matmul_swiglu",
        "layer_norm",
        "gelu",
        "encoder_attention",
        "mean_pool",
        "l2_norm",
        "fake_quant",
        "geglu",
        "scale",
    ];

    /// The input whose buffer the output may reuse (the planner decides).
    pub fn inplace_input(&self) -> Option<usize> {
        match self {
            Op::RmsNorm { .. }
            | Op::Mul
            | Op::Add
            | Op::Rope { .. }
            | Op::Silu
            | Op::SwiGlu
            | Op::GeGlu
            | Op::Scale { .. }
            | Op::Reshape
            | Op::RmsNormMul { .. }
            | Op::LayerNorm { .. }
            | Op::Gelu
            | Op::L2Norm { .. }
            | Op::FakeQuant { .. } => Some(0),
            _ => None,
        }
    }

    /// Whether the op writes into an existing state (KV cache) instead of a new value.
    pub fn writes_state(&self) -> bool {
        matches!(self, Op::KvStore)
    }

    fn err_input(&self, index: usize, got: &TensorType, expected: impl Into<String>) -> OpError {
        OpError::Input {
            op: self.name(),
            index,
            got: got.to_string(),
            expected: expected.into(),
        }
    }

    fn invalid(&self, why: impl Into<String>) -> OpError {
        OpError::Invalid {
            op: self.name(),
            why: why.into(),
        }
    }

    /// Checks the inputs and returns the output type. For `KvStore` pass the
    /// state's type as `out_hint`; for `Reshape` the wanted type.
    pub fn infer(
        &self,
        inputs: &[&TensorType],
        out_hint: Option<&TensorType>,
    ) -> Result<TensorType, OpError> {
        let arity = match self {
            Op::GetRows | Op::MatMul | Op::Mul | Op::Add | Op::Rope { .. } => 2,
            Op::SwiGlu | Op::GeGlu => 2,
            Op::KvStore | Op::RmsNormMul { .. } => 2,
            Op::MatMulSwiGlu | Op::LayerNorm { .. } => 3,
            Op::EncoderAttention { .. } => 4,
            Op::MeanPool => 2,
            Op::Attention { .. } => 4,
            _ => 1,
        };
        if inputs.len() != arity {
            return Err(OpError::Arity {
                op: self.name(),
                expected: arity,
                got: inputs.len(),
            });
        }
        let f32_2d = |i: usize| -> Result<(usize, usize), OpError> {
            let t = inputs[i];
            if t.dtype != DType::F32 || t.shape.len() != 2 {
                return Err(self.err_input(i, t, "f32 [N, D]"));
            }
            Ok((t.shape[0], t.shape[1]))
        };
        let ids = |i: usize, n: usize| -> Result<(), OpError> {
            let t = inputs[i];
            if t.dtype != DType::I32 || t.shape != [n] {
                return Err(self.err_input(i, t, format!("i32 [{n}]")));
            }
            Ok(())
        };
        match self {
            Op::GetRows => {
                let t = inputs[0];
                if t.shape.len() != 2 || t.dtype == DType::I32 {
                    return Err(self.err_input(0, t, "table [V, D]"));
                }
                let i = inputs[1];
                if i.dtype != DType::I32 || i.shape.len() != 1 {
                    return Err(self.err_input(1, i, "i32 [N]"));
                }
                Ok(TensorType::new(DType::F32, &[i.shape[0], t.shape[1]]))
            }
            Op::MatMul => {
                let (n, k) = f32_2d(0)?;
                let w = inputs[1];
                if w.shape.len() != 2 || w.shape[1] != k || w.dtype == DType::I32 {
                    return Err(self.err_input(1, w, format!("weight [M, {k}]")));
                }
                if w.dtype.bytes_for(k).is_none() {
                    return Err(
                        self.invalid(format!("K={k} is not a multiple of {}'s block", w.dtype))
                    );
                }
                Ok(TensorType::new(DType::F32, &[n, w.shape[0]]))
            }
            Op::RmsNorm { .. } | Op::Silu | Op::Gelu | Op::L2Norm { .. } | Op::FakeQuant { .. } => {
                f32_2d(0)?;
                Ok(inputs[0].clone())
            }
            Op::Scale { factor } => {
                f32_2d(0)?;
                if !factor.is_finite() {
                    return Err(self.invalid(format!("factor {factor} is not finite")));
                }
                Ok(inputs[0].clone())
            }
            Op::Mul | Op::Add => {
                let (n, d) = f32_2d(0)?;
                let b = inputs[1];
                let ok = b.dtype == DType::F32 && (b.shape == [d] || b.shape == [n, d]);
                if !ok {
                    return Err(self.err_input(1, b, format!("f32 [{d}] or [{n}, {d}]")));
                }
                Ok(inputs[0].clone())
            }
            Op::SwiGlu | Op::GeGlu => {
                f32_2d(0)?;
                if inputs[1] != inputs[0] {
                    return Err(self.err_input(1, inputs[1], inputs[0].to_string()));
                }
                Ok(inputs[0].clone())
            }
            Op::Rope {
                head_dim, n_dims, ..
            } => {
                let (n, d) = f32_2d(0)?;
                if *head_dim == 0 || d % head_dim != 0 || *n_dims > *head_dim || n_dims % 2 != 0 {
                    return Err(self.invalid(format!(
                        "row {d} is not whole heads of {head_dim} with {n_dims} rotated dims"
                    )));
                }
                ids(1, n)?;
                Ok(inputs[0].clone())
            }
            Op::KvStore => {
                let (n, c) = f32_2d(0)?;
                ids(1, n)?;
                let state = out_hint.ok_or_else(|| self.invalid("needs the state's type"))?;
                let ok = matches!(state.dtype, DType::F32 | DType::F16)
                    && state.shape.len() == 2
                    && state.shape[1] == c;
                if !ok {
                    return Err(self.invalid(format!("state {state} does not take rows of {c}")));
                }
                Ok(state.clone())
            }
            Op::Attention {
                n_head,
                n_kv_head,
                head_dim,
                window,
                ..
            } => {
                let (n, d) = f32_2d(0)?;
                if *n_kv_head == 0 || n_head % n_kv_head != 0 || d != n_head * head_dim {
                    return Err(self.invalid(format!(
                        "q row {d} vs {n_head} heads × {head_dim}, {n_kv_head} kv heads"
                    )));
                }
                if *window == Some(0) {
                    return Err(self.invalid("a sliding window of 0 positions sees nothing"));
                }
                for i in [1, 2] {
                    let c = inputs[i];
                    let ok = matches!(c.dtype, DType::F32 | DType::F16)
                        && c.shape.len() == 2
                        && c.shape[1] == n_kv_head * head_dim;
                    if !ok {
                        return Err(self.err_input(
                            i,
                            c,
                            format!("cache [CTX, {}]", n_kv_head * head_dim),
                        ));
                    }
                }
                if inputs[1] != inputs[2] {
                    return Err(self.err_input(2, inputs[2], inputs[1].to_string()));
                }
                ids(3, n)?;
                Ok(inputs[0].clone())
            }
            Op::Reshape => {
                let want = out_hint.ok_or_else(|| self.invalid("needs the wanted shape"))?;
                if want.numel() != inputs[0].numel() || want.dtype != inputs[0].dtype {
                    return Err(self.invalid(format!("{} cannot become {want}", inputs[0])));
                }
                Ok(want.clone())
            }
            Op::RmsNormMul { .. } => {
                let (_, d) = f32_2d(0)?;
                let w = inputs[1];
                if w.dtype != DType::F32 || w.shape != [d] {
                    return Err(self.err_input(1, w, format!("f32 [{d}]")));
                }
                Ok(inputs[0].clone())
            }
            Op::LayerNorm { .. } => {
                let (_, d) = f32_2d(0)?;
                for i in [1, 2] {
                    let w = inputs[i];
                    if w.dtype != DType::F32 || w.shape != [d] {
                        return Err(self.err_input(i, w, format!("f32 [{d}]")));
                    }
                }
                Ok(inputs[0].clone())
            }
            Op::EncoderAttention {
                n_head, head_dim, ..
            } => {
                let (n, d) = f32_2d(0)?;
                if d != n_head * head_dim || *head_dim == 0 {
                    return Err(self.invalid(format!("row {d} vs {n_head} heads × {head_dim}")));
                }
                for i in [1, 2] {
                    if inputs[i] != inputs[0] {
                        return Err(self.err_input(i, inputs[i], inputs[0].to_string()));
                    }
                }
                let m = inputs[3];
                let ok =
                    m.dtype == DType::F32 && m.shape.len() == 2 && m.shape[0] * m.shape[1] == n;
                if !ok {
                    return Err(self.err_input(3, m, format!("f32 mask [B, S] with B·S = {n}")));
                }
                Ok(inputs[0].clone())
            }
            Op::MeanPool => {
                let (n, d) = f32_2d(0)?;
                let m = inputs[1];
                let ok =
                    m.dtype == DType::F32 && m.shape.len() == 2 && m.shape[0] * m.shape[1] == n;
                if !ok {
                    return Err(self.err_input(1, m, format!("f32 mask [B, S] with B·S = {n}")));
                }
                Ok(TensorType::new(DType::F32, &[m.shape[0], d]))
            }
            Op::MatMulSwiGlu => {
                let gate = Op::MatMul.infer(&[inputs[0], inputs[1]], None)?;
                let up = Op::MatMul.infer(&[inputs[0], inputs[2]], None)?;
                if gate != up {
                    return Err(self.err_input(2, inputs[2], inputs[1].to_string()));
                }
                Ok(gate)
            }
            Op::TakeRows { start, len } => {
                let (n, d) = f32_2d(0)?;
                if start.checked_add(*len).is_none_or(|e| e > n) || *len == 0 {
                    return Err(self.invalid(format!("rows {start}..+{len} of {n}")));
                }
                Ok(TensorType::new(DType::F32, &[*len, d]))
            }
        }
    }

    /// Approximate floating-point operations (multiply-adds count 2), for
    /// placement reports: fallback is reported by FLOPs as well as by node count.
    pub fn flops(&self, inputs: &[&TensorType], out: &TensorType) -> u64 {
        let o = out.numel() as u64;
        match self {
            Op::MatMul => 2 * o * inputs[0].row_len() as u64,
            Op::MatMulSwiGlu => 4 * o * inputs[0].row_len() as u64 + 4 * o,
            Op::RmsNormMul { .. } | Op::LayerNorm { .. } => 5 * o,
            Op::Gelu | Op::L2Norm { .. } => 4 * o,
            Op::EncoderAttention { .. } => {
                let seq = inputs[3].shape[1] as u64;
                4 * o * seq
            }
            Op::MeanPool => 2 * inputs[0].numel() as u64,
            Op::Attention {
                n_head,
                head_dim,
                window,
                ..
            } => {
                // Cost depends on the cache fill; count a full context (or
                // window) as the bound.
                let ctx = inputs[1].shape[0].min(window.unwrap_or(usize::MAX)) as u64;
                4 * inputs[0].shape[0] as u64 * (*n_head * *head_dim) as u64 * ctx
            }
            Op::RmsNorm { .. } | Op::Rope { .. } | Op::Silu | Op::SwiGlu => 4 * o,
            Op::GeGlu => 8 * o,
            Op::Mul | Op::Add | Op::Scale { .. } => o,
            _ => 0,
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(d: DType, s: &[usize]) -> TensorType {
        TensorType::new(d, s)
    }

    #[test]
    fn names_are_listed_and_unique() {
        let mut names = Op::NAMES.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Op::NAMES.len());
        assert!(Op::NAMES.contains(&Op::RmsNorm { eps: 0.0 }.name()));
    }

    #[test]
    fn matmul_shapes() {
        let x = t(DType::F32, &[3, 64]);
        let w = t(DType::Q4_1, &[10, 64]);
        assert_eq!(
            Op::MatMul.infer(&[&x, &w], None).unwrap(),
            t(DType::F32, &[3, 10])
        );
        let bad = t(DType::Q4_1, &[10, 48]);
        assert!(Op::MatMul.infer(&[&x, &bad], None).is_err());
        let odd = t(DType::F32, &[3, 40]);
        let w40 = t(DType::Q8_0, &[10, 40]);
        assert!(Op::MatMul.infer(&[&odd, &w40], None).is_err());
    }

    #[test]
    fn attention_checks_heads_and_cache() {
        let op = Op::Attention {
            n_head: 4,
            n_kv_head: 2,
            head_dim: 8,
            scale: 1.0,
            window: None,
        };
        let q = t(DType::F32, &[2, 32]);
        let c = t(DType::F16, &[16, 16]);
        let p = t(DType::I32, &[2]);
        assert!(op.infer(&[&q, &c, &c, &p], None).is_ok());
        let c_bad = t(DType::F16, &[16, 8]);
        assert!(op.infer(&[&q, &c_bad, &c_bad, &p], None).is_err());
        let p_bad = t(DType::I32, &[3]);
        assert!(op.infer(&[&q, &c, &c, &p_bad], None).is_err());
        let windowed = |w| Op::Attention {
            n_head: 4,
            n_kv_head: 2,
            head_dim: 8,
            scale: 1.0,
            window: Some(w),
        };
        assert!(windowed(4).infer(&[&q, &c, &c, &p], None).is_ok());
        assert!(windowed(0).infer(&[&q, &c, &c, &p], None).is_err());
    }

    #[test]
    fn gated_and_scale_shapes() {
        let a = t(DType::F32, &[2, 8]);
        assert_eq!(Op::GeGlu.infer(&[&a, &a], None).unwrap(), a);
        assert!(Op::GeGlu
            .infer(&[&a, &t(DType::F32, &[2, 4])], None)
            .is_err());
        assert!(Op::GeGlu.infer(&[&a], None).is_err());
        let s = Op::Scale { factor: 2.0 };
        assert_eq!(s.infer(&[&a], None).unwrap(), a);
        assert_eq!(s.inplace_input(), Some(0));
        assert!(Op::Scale { factor: f32::NAN }.infer(&[&a], None).is_err());
        assert!(s.infer(&[&t(DType::I32, &[2])], None).is_err());
        assert_eq!(Op::GeGlu.name(), "geglu");
        assert_eq!(s.name(), "scale");
    }

    #[test]
    fn broadcast_rules() {
        let a = t(DType::F32, &[2, 8]);
        assert!(Op::Add.infer(&[&a, &t(DType::F32, &[8])], None).is_ok());
        assert!(Op::Add.infer(&[&a, &t(DType::F32, &[2, 8])], None).is_ok());
        assert!(Op::Mul.infer(&[&a, &t(DType::F32, &[4])], None).is_err());
        assert!(Op::TakeRows { start: 1, len: 2 }
            .infer(&[&a], None)
            .is_err());
        assert!(Op::TakeRows { start: 1, len: 1 }.infer(&[&a], None).is_ok());
    }
}
