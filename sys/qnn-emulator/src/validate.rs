//! What `graphAddNode` (and `backendValidateOpConfig`) accept: the op allow-list, input / output
//! counts, params, data types, and static output shapes inferred from the inputs.
//!
//! The allow-list is the `qti.aisw` subset wisp's graphs use, from the pinned opset 1.24.0.
//! `RmsNorm` is deliberately absent: the pinned SDK 2.13 does not have it, so a graph that uses it
//! must fail here just as it would on a 2.13 device. Type rules follow the HTP's general shape
//! (float or quantized activations, no mixing within an op, INT_32 / UINT_32 indices) rather than
//! every per-op line of Qualcomm's HTP supplement. Any failure is `QNN_GRAPH_ERROR_INVALID_OP_CONFIG`
//! (6005) with the reason in the log.

use wisp_qnn_sys::ops::*;
use wisp_qnn_sys::*;

use crate::model::{fail, ParamValue, Res, TensorDesc};
use crate::numeric::{class, decode_ints, Class};

/// Ops the emulator accepts, in `QnnOpDef.h` spelling.
pub const ALLOWED_OPS: &[&str] = &[
    QNN_OP_ELEMENT_WISE_ADD,
    QNN_OP_ELEMENT_WISE_MULTIPLY,
    QNN_OP_ELEMENT_WISE_SUBTRACT,
    QNN_OP_ELEMENT_WISE_DIVIDE,
    QNN_OP_FULLY_CONNECTED,
    QNN_OP_MAT_MUL,
    QNN_OP_SOFTMAX,
    QNN_OP_LAYER_NORM,
    QNN_OP_GATHER,
    QNN_OP_TRANSPOSE,
    QNN_OP_RESHAPE,
    QNN_OP_QUANTIZE,
    QNN_OP_DEQUANTIZE,
    QNN_OP_ELEMENT_WISE_NEURON,
    QNN_OP_GELU,
    QNN_OP_SIGMOID,
    QNN_OP_TANH,
    QNN_OP_CONVERT,
    QNN_OP_STRIDED_SLICE,
    QNN_OP_CONCAT,
];

const INVALID: u64 = QNN_GRAPH_ERROR_INVALID_OP_CONFIG;

/// Static description of an op: arity and the params it may carry.
struct Spec {
    min_inputs: usize,
    max_inputs: usize,
    params: &'static [&'static str],
}

fn spec(op: &str) -> Option<Spec> {
    let s = |min_inputs, max_inputs, params| Spec {
        min_inputs,
        max_inputs,
        params,
    };
    Some(match op {
        QNN_OP_ELEMENT_WISE_ADD
        | QNN_OP_ELEMENT_WISE_MULTIPLY
        | QNN_OP_ELEMENT_WISE_SUBTRACT
        | QNN_OP_ELEMENT_WISE_DIVIDE => s(2, 2, &[]),
        QNN_OP_FULLY_CONNECTED => s(2, 3, &[QNN_OP_FULLY_CONNECTED_PARAM_KEEP_DIMS]),
        QNN_OP_MAT_MUL => s(
            2,
            3,
            &[
                QNN_OP_MAT_MUL_PARAM_TRANSPOSE_IN0,
                QNN_OP_MAT_MUL_PARAM_TRANSPOSE_IN1,
            ],
        ),
        QNN_OP_SOFTMAX => s(
            1,
            1,
            &[QNN_OP_SOFTMAX_PARAM_AXIS, QNN_OP_SOFTMAX_PARAM_BETA],
        ),
        QNN_OP_LAYER_NORM => s(
            1,
            3,
            &[
                QNN_OP_LAYER_NORM_PARAM_EPSILON,
                QNN_OP_LAYER_NORM_PARAM_AXES,
            ],
        ),
        QNN_OP_GATHER => s(2, 2, &[QNN_OP_GATHER_PARAM_AXIS]),
        QNN_OP_TRANSPOSE => s(1, 1, &[QNN_OP_TRANSPOSE_PARAM_PERM]),
        QNN_OP_RESHAPE | QNN_OP_QUANTIZE | QNN_OP_DEQUANTIZE | QNN_OP_GELU | QNN_OP_SIGMOID
        | QNN_OP_TANH => s(1, 1, &[]),
        QNN_OP_CONVERT => s(1, 1, &["dynamic_input_data", "dynamic_output_data"]),
        QNN_OP_ELEMENT_WISE_NEURON => s(
            1,
            1,
            &[
                QNN_OP_ELEMENT_WISE_NEURON_PARAM_OPERATION,
                QNN_OP_ELEMENT_WISE_NEURON_PARAM_ALPHA,
                QNN_OP_ELEMENT_WISE_NEURON_PARAM_BETA,
                QNN_OP_ELEMENT_WISE_NEURON_PARAM_MIN_VALUE,
                QNN_OP_ELEMENT_WISE_NEURON_PARAM_MAX_VALUE,
                QNN_OP_ELEMENT_WISE_NEURON_PARAM_THRESHOLD,
            ],
        ),
        QNN_OP_STRIDED_SLICE => s(
            1,
            1,
            &[
                QNN_OP_STRIDED_SLICE_PARAM_RANGES,
                QNN_OP_STRIDED_SLICE_PARAM_BEGIN_MASK,
                QNN_OP_STRIDED_SLICE_PARAM_END_MASK,
                QNN_OP_STRIDED_SLICE_PARAM_SHRINK_AXES,
                QNN_OP_STRIDED_SLICE_PARAM_NEW_AXES_MASK,
            ],
        ),
        QNN_OP_CONCAT => s(1, usize::MAX, &[QNN_OP_CONCAT_PARAM_AXIS]),
        _ => return None,
    })
}

/// Typed access to a node's params, failing with 6005 on the wrong kind.
pub struct Params<'a>(pub &'a [(String, ParamValue)]);

impl Params<'_> {
    fn get(&self, name: &str) -> Option<&ParamValue> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// A scalar param as a number, or `default` when absent.
    pub fn number(&self, name: &str, default: f64) -> Res<f64> {
        match self.get(name) {
            None => Ok(default),
            Some(p) => p.as_number().map_or_else(
                || fail(INVALID, format!("param {name} must be a numeric scalar")),
                Ok,
            ),
        }
    }

    /// A scalar param as a bool (non-zero = true).
    pub fn flag(&self, name: &str) -> Res<bool> {
        Ok(self.number(name, 0.0)? != 0.0)
    }

    /// A tensor param's values as integers; `None` when absent.
    pub fn ints(&self, name: &str) -> Res<Option<(Vec<u32>, Vec<i64>)>> {
        match self.get(name) {
            None => Ok(None),
            Some(ParamValue::Tensor(t)) => match class(t.enc.dtype) {
                Some(Class::Int) => Ok(Some((t.dims.clone(), decode_ints(t.enc.dtype, &t.data)))),
                _ => fail(INVALID, format!("param {name} must be an integer tensor")),
            },
            Some(_) => fail(INVALID, format!("param {name} must be a tensor")),
        }
    }
}

/// Normalizes a possibly negative axis against `rank`.
pub fn norm_axis(axis: i64, rank: usize) -> Res<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a < 0 || a >= rank as i64 {
        return fail(INVALID, format!("axis {axis} out of range for rank {rank}"));
    }
    Ok(a as usize)
}

/// Numpy-style broadcast of two shapes.
pub fn broadcast(a: &[u32], b: &[u32]) -> Option<Vec<u32>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[u32], i: usize| {
        if i + s.len() >= rank {
            s[i + s.len() - rank]
        } else {
            1
        }
    };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// One output dimension of a strided slice.
#[derive(Clone, Copy, Debug)]
pub struct SliceDim {
    /// First index taken.
    pub begin: i64,
    /// Step.
    pub stride: i64,
    /// Number of indices taken.
    pub count: i64,
    /// Whether the dimension survives (not shrunk).
    pub keep: bool,
}

/// Resolves StridedSlice params against input dims, TensorFlow-style (negative indices wrap,
/// masks ignore begin / end, shrink keeps exactly the begin index).
pub fn slice_plan(dims: &[u32], p: &Params) -> Res<Vec<SliceDim>> {
    let Some((rdims, ranges)) = p.ints(QNN_OP_STRIDED_SLICE_PARAM_RANGES)? else {
        return fail(INVALID, "StridedSlice needs the ranges param");
    };
    if rdims != [dims.len() as u32, 3] {
        return fail(
            INVALID,
            format!("ranges must be [{}, 3], got {rdims:?}", dims.len()),
        );
    }
    if p.number(QNN_OP_STRIDED_SLICE_PARAM_NEW_AXES_MASK, 0.0)? != 0.0 {
        return fail(INVALID, "new_axes_mask is not supported by the emulator");
    }
    let bits = |name| p.number(name, 0.0).map(|v| v as u64);
    let (bm, em, sm) = (
        bits(QNN_OP_STRIDED_SLICE_PARAM_BEGIN_MASK)?,
        bits(QNN_OP_STRIDED_SLICE_PARAM_END_MASK)?,
        bits(QNN_OP_STRIDED_SLICE_PARAM_SHRINK_AXES)?,
    );
    let mut plan = Vec::with_capacity(dims.len());
    for (d, &n) in dims.iter().enumerate() {
        let n = n as i64;
        let (mut b, mut e, s) = (ranges[3 * d], ranges[3 * d + 1], ranges[3 * d + 2]);
        if s == 0 {
            return fail(INVALID, format!("StridedSlice stride 0 in dim {d}"));
        }
        let wrap = |i: i64| if i < 0 { i + n } else { i };
        let (lo, hi) = if s > 0 { (0, n) } else { (-1, n - 1) };
        b = if bm >> d & 1 == 1 {
            if s > 0 {
                0
            } else {
                n - 1
            }
        } else {
            wrap(b).clamp(lo, hi)
        };
        e = if em >> d & 1 == 1 {
            if s > 0 {
                n
            } else {
                -1
            }
        } else {
            wrap(e).clamp(lo, hi)
        };
        if sm >> d & 1 == 1 {
            if !(0..n).contains(&b) {
                return fail(INVALID, format!("shrink index {b} out of range in dim {d}"));
            }
            plan.push(SliceDim {
                begin: b,
                stride: 1,
                count: 1,
                keep: false,
            });
            continue;
        }
        let count = if s > 0 {
            (e - b + s - 1) / s
        } else {
            (b - e + (-s) - 1) / (-s)
        };
        plan.push(SliceDim {
            begin: b,
            stride: s,
            count: count.max(0),
            keep: true,
        });
    }
    Ok(plan)
}

/// Whether a tensor stands for an omitted optional input.
pub fn is_absent(t: &TensorDesc) -> bool {
    t.ty == QNN_TENSOR_TYPE_NULL
}

fn classes(ts: &[&TensorDesc]) -> Vec<Option<Class>> {
    ts.iter().map(|t| class(t.enc.dtype)).collect()
}

/// Float or fixed point, the same class for all.
fn same_numeric_class(op: &str, ts: &[&TensorDesc]) -> Res<()> {
    let cs = classes(ts);
    let first = cs[0];
    if !matches!(first, Some(Class::Float | Class::Fixed)) || cs.iter().any(|c| *c != first) {
        let types: Vec<String> = ts.iter().map(|t| format!("{:#06x}", t.enc.dtype)).collect();
        return fail(
            INVALID,
            format!("{op}: data types {types:?} must all be float or all fixed point"),
        );
    }
    Ok(())
}

/// Data-movement ops keep the type class (any type may move).
fn same_class(op: &str, a: &TensorDesc, b: &TensorDesc) -> Res<()> {
    if class(a.enc.dtype) != class(b.enc.dtype) {
        return fail(
            INVALID,
            format!(
                "{op}: input type {:#06x} and output type {:#06x} differ in kind",
                a.enc.dtype, b.enc.dtype
            ),
        );
    }
    Ok(())
}

/// Checks one op and returns nothing on success; `ins` may contain NULL-type tensors for omitted
/// optional inputs.
pub fn validate(
    op: &str,
    params: &[(String, ParamValue)],
    ins: &[&TensorDesc],
    outs: &[&TensorDesc],
) -> Res<()> {
    let Some(spec) = spec(op) else {
        return fail(
            INVALID,
            format!("op {op:?} is not in the emulator's qti.aisw allow-list (opset 1.24)"),
        );
    };
    if ins.len() < spec.min_inputs || ins.len() > spec.max_inputs {
        return fail(
            INVALID,
            format!(
                "{op}: {} inputs, expected {}..={}",
                ins.len(),
                spec.min_inputs,
                spec.max_inputs.min(999)
            ),
        );
    }
    if outs.len() != 1 {
        return fail(INVALID, format!("{op}: {} outputs, expected 1", outs.len()));
    }
    for (name, _) in params {
        if !spec.params.contains(&name.as_str()) {
            return fail(INVALID, format!("{op}: unknown param {name:?}"));
        }
    }
    if ins[..spec.min_inputs].iter().any(|t| is_absent(t)) {
        return fail(INVALID, format!("{op}: a required input is a NULL tensor"));
    }
    let p = Params(params);
    let out = outs[0];
    let x = ins[0];
    let expect = |want: Vec<u32>| -> Res<()> {
        if want != out.dims {
            return fail(
                INVALID,
                format!(
                    "{op}: output {:?} has dims {:?}, expected {want:?}",
                    out.name, out.dims
                ),
            );
        }
        Ok(())
    };
    match op {
        QNN_OP_ELEMENT_WISE_ADD
        | QNN_OP_ELEMENT_WISE_MULTIPLY
        | QNN_OP_ELEMENT_WISE_SUBTRACT
        | QNN_OP_ELEMENT_WISE_DIVIDE => {
            same_numeric_class(op, &[ins[0], ins[1], out])?;
            match broadcast(&ins[0].dims, &ins[1].dims) {
                Some(d) => expect(d),
                None => fail(
                    INVALID,
                    format!(
                        "{op}: shapes {:?} and {:?} do not broadcast",
                        ins[0].dims, ins[1].dims
                    ),
                ),
            }
        }
        QNN_OP_FULLY_CONNECTED => {
            let w = ins[1];
            same_numeric_class(op, &[x, w, out])?;
            if w.dims.len() != 2 {
                return fail(
                    INVALID,
                    format!(
                        "FullyConnected weights must be 2-D [out, in], got {:?}",
                        w.dims
                    ),
                );
            }
            let (m, k) = (w.dims[0], w.dims[1]);
            if x.dims.last() != Some(&k) {
                return fail(
                    INVALID,
                    format!("FullyConnected input {:?} does not end in {k}", x.dims),
                );
            }
            if let Some(b) = ins.get(2).filter(|b| !is_absent(b)) {
                if !matches!(class(b.enc.dtype), Some(Class::Float | Class::Fixed))
                    && b.enc.dtype != QNN_DATATYPE_INT_32
                {
                    return fail(
                        INVALID,
                        "FullyConnected bias must be float, fixed point or INT_32",
                    );
                }
                if b.numel() != m as usize {
                    return fail(
                        INVALID,
                        format!(
                            "FullyConnected bias has {} elements, expected {m}",
                            b.numel()
                        ),
                    );
                }
            }
            let want = if p.flag(QNN_OP_FULLY_CONNECTED_PARAM_KEEP_DIMS)? {
                let mut d = x.dims.clone();
                *d.last_mut().unwrap() = m;
                d
            } else {
                vec![(x.numel() / k as usize) as u32, m]
            };
            expect(want)
        }
        QNN_OP_MAT_MUL => {
            let (a, b) = (ins[0], ins[1]);
            same_numeric_class(op, &[a, b, out])?;
            if a.dims.len() < 2 || b.dims.len() < 2 {
                return fail(INVALID, "MatMul inputs must have rank >= 2");
            }
            let (ra, rb) = (a.dims.len(), b.dims.len());
            let (m, ka) = if p.flag(QNN_OP_MAT_MUL_PARAM_TRANSPOSE_IN0)? {
                (a.dims[ra - 1], a.dims[ra - 2])
            } else {
                (a.dims[ra - 2], a.dims[ra - 1])
            };
            let (kb, n) = if p.flag(QNN_OP_MAT_MUL_PARAM_TRANSPOSE_IN1)? {
                (b.dims[rb - 1], b.dims[rb - 2])
            } else {
                (b.dims[rb - 2], b.dims[rb - 1])
            };
            if ka != kb {
                return fail(
                    INVALID,
                    format!("MatMul inner dimensions differ: {ka} vs {kb}"),
                );
            }
            let Some(mut batch) = broadcast(&a.dims[..ra - 2], &b.dims[..rb - 2]) else {
                return fail(INVALID, "MatMul batch dimensions do not broadcast");
            };
            if let Some(bias) = ins.get(2).filter(|b| !is_absent(b)) {
                if bias.numel() != n as usize {
                    return fail(
                        INVALID,
                        format!("MatMul bias has {} elements, expected {n}", bias.numel()),
                    );
                }
            }
            batch.extend([m, n]);
            expect(batch)
        }
        QNN_OP_SOFTMAX => {
            same_numeric_class(op, &[x, out])?;
            norm_axis(
                p.number(QNN_OP_SOFTMAX_PARAM_AXIS, x.dims.len() as f64 - 1.0)? as i64,
                x.dims.len(),
            )?;
            expect(x.dims.clone())
        }
        QNN_OP_LAYER_NORM => {
            same_numeric_class(op, &[x, out])?;
            let inner = layer_norm_inner(&x.dims, &p)?;
            for extra in ins[1..].iter().filter(|t| !is_absent(t)) {
                if extra.numel() != inner {
                    return fail(
                        INVALID,
                        format!(
                            "LayerNorm gamma/beta has {} elements, expected {inner}",
                            extra.numel()
                        ),
                    );
                }
            }
            expect(x.dims.clone())
        }
        QNN_OP_GATHER => {
            let idx = ins[1];
            if !matches!(idx.enc.dtype, QNN_DATATYPE_INT_32 | QNN_DATATYPE_UINT_32) {
                return fail(INVALID, "Gather indices must be INT_32 or UINT_32");
            }
            same_class(op, x, out)?;
            let axis = norm_axis(
                p.number(QNN_OP_GATHER_PARAM_AXIS, 0.0)? as i64,
                x.dims.len(),
            )?;
            let mut want = x.dims[..axis].to_vec();
            want.extend(&idx.dims);
            want.extend(&x.dims[axis + 1..]);
            expect(want)
        }
        QNN_OP_TRANSPOSE => {
            same_class(op, x, out)?;
            let perm = transpose_perm(&x.dims, &p)?;
            expect(perm.iter().map(|&i| x.dims[i]).collect())
        }
        QNN_OP_RESHAPE => {
            same_class(op, x, out)?;
            if x.numel() != out.numel() {
                return fail(
                    INVALID,
                    format!(
                        "Reshape from {:?} ({} elements) to {:?}",
                        x.dims,
                        x.numel(),
                        out.dims
                    ),
                );
            }
            Ok(())
        }
        QNN_OP_QUANTIZE | QNN_OP_DEQUANTIZE | QNN_OP_CONVERT => {
            let (ci, co) = (class(x.enc.dtype), class(out.enc.dtype));
            let ok = match op {
                QNN_OP_QUANTIZE => ci == Some(Class::Float) && co == Some(Class::Fixed),
                QNN_OP_DEQUANTIZE => ci == Some(Class::Fixed) && co == Some(Class::Float),
                _ => ci.is_some_and(|c| c != Class::Bool) && co.is_some_and(|c| c != Class::Bool),
            };
            if !ok {
                return fail(
                    INVALID,
                    format!(
                        "{op}: cannot convert {:#06x} to {:#06x}",
                        x.enc.dtype, out.enc.dtype
                    ),
                );
            }
            expect(x.dims.clone())
        }
        QNN_OP_ELEMENT_WISE_NEURON | QNN_OP_GELU | QNN_OP_SIGMOID | QNN_OP_TANH => {
            same_numeric_class(op, &[x, out])?;
            if op == QNN_OP_ELEMENT_WISE_NEURON {
                let Some(ParamValue::Scalar { .. }) = params
                    .iter()
                    .find(|(n, _)| n == QNN_OP_ELEMENT_WISE_NEURON_PARAM_OPERATION)
                    .map(|(_, v)| v)
                else {
                    return fail(
                        INVALID,
                        "ElementWiseNeuron needs the scalar operation param",
                    );
                };
                let operation = p.number(QNN_OP_ELEMENT_WISE_NEURON_PARAM_OPERATION, -1.0)?;
                if !(0.0..=8.0).contains(&operation) {
                    return fail(
                        INVALID,
                        format!("ElementWiseNeuron operation {operation} unknown"),
                    );
                }
            }
            expect(x.dims.clone())
        }
        QNN_OP_STRIDED_SLICE => {
            same_class(op, x, out)?;
            let plan = slice_plan(&x.dims, &p)?;
            if plan.iter().any(|d| d.count == 0) {
                return fail(
                    INVALID,
                    "StridedSlice selects no elements (shapes must be static and non-empty)",
                );
            }
            expect(
                plan.iter()
                    .filter(|d| d.keep)
                    .map(|d| d.count as u32)
                    .collect(),
            )
        }
        QNN_OP_CONCAT => {
            let rank = x.dims.len();
            let axis = norm_axis(
                p.number(QNN_OP_CONCAT_PARAM_AXIS, rank as f64 - 1.0)? as i64,
                rank,
            )?;
            let mut want = x.dims.clone();
            want[axis] = 0;
            for t in ins {
                same_class(op, t, out)?;
                if t.dims.len() != rank || (0..rank).any(|d| d != axis && t.dims[d] != x.dims[d]) {
                    return fail(
                        INVALID,
                        format!(
                            "Concat input {:?} does not match {:?} outside axis {axis}",
                            t.dims, x.dims
                        ),
                    );
                }
                want[axis] += t.dims[axis];
            }
            expect(want)
        }
        _ => unreachable!("every allow-listed op has a rule"),
    }
}

/// Number of elements normalized per LayerNorm group; the axes must be the trailing dimensions.
pub fn layer_norm_inner(dims: &[u32], p: &Params) -> Res<usize> {
    let rank = dims.len();
    let axes = match p.ints(QNN_OP_LAYER_NORM_PARAM_AXES)? {
        Some((_, a)) => a
            .iter()
            .map(|&a| norm_axis(a, rank))
            .collect::<Res<Vec<_>>>()?,
        None => vec![rank - 1],
    };
    let mut sorted = axes.clone();
    sorted.sort_unstable();
    let trailing: Vec<usize> = (rank - sorted.len()..rank).collect();
    if sorted.is_empty() || sorted != trailing {
        return fail(
            INVALID,
            format!("LayerNorm axes {axes:?}: the emulator supports trailing axes only"),
        );
    }
    Ok(dims[rank - sorted.len()..]
        .iter()
        .map(|&d| d as usize)
        .product())
}

/// Validated permutation of a Transpose.
pub fn transpose_perm(dims: &[u32], p: &Params) -> Res<Vec<usize>> {
    let Some((_, perm)) = p.ints(QNN_OP_TRANSPOSE_PARAM_PERM)? else {
        return fail(INVALID, "Transpose needs the perm param");
    };
    let mut seen = vec![false; dims.len()];
    if perm.len() != dims.len() {
        return fail(
            INVALID,
            format!("perm {perm:?} has the wrong length for rank {}", dims.len()),
        );
    }
    for &i in &perm {
        if i < 0 || i as usize >= dims.len() || std::mem::replace(&mut seen[i as usize], true) {
            return fail(INVALID, format!("perm {perm:?} is not a permutation"));
        }
    }
    Ok(perm.iter().map(|&i| i as usize).collect())
}
