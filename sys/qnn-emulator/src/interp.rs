//! The reference interpreter behind `graphExecute`: straightforward `f32` arithmetic per op, with
//! every tensor stored in its declared type between ops (see [`crate::numeric`]).
//!
//! Speed is irrelevant here; clarity and determinism are what make it useful as an oracle for the
//! backend's graph construction. Data-movement ops (Reshape, Transpose, StridedSlice, Gather,
//! Concat) copy raw elements when input and output encodings are identical, so they are exact for
//! any type, and go through decode / encode (a requantization) otherwise.

use std::collections::HashMap;

use wisp_qnn_sys::ops::*;
use wisp_qnn_sys::*;

use crate::model::{fail, Graph, Node, Res, TensorDesc};
use crate::numeric::{decode, decode_ints, encode, erf};
use crate::validate::{
    broadcast, is_absent, layer_norm_inner, norm_axis, slice_plan, transpose_perm, Params,
};

/// Row-major strides of `dims`, in elements.
fn strides(dims: &[u32]) -> Vec<usize> {
    let mut s = vec![1usize; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1] as usize;
    }
    s
}

/// For each element of `out_dims`, the flat index of the element it reads in a tensor of
/// `in_dims` broadcast to `out_dims`.
fn broadcast_map(in_dims: &[u32], out_dims: &[u32]) -> Vec<usize> {
    let n: usize = out_dims.iter().map(|&d| d as usize).product();
    let pad = out_dims.len() - in_dims.len();
    let in_strides = strides(in_dims);
    let out_strides = strides(out_dims);
    (0..n)
        .map(|flat| {
            let mut src = 0;
            for (d, &os) in out_strides.iter().enumerate() {
                let coord = flat / os % out_dims[d] as usize;
                if d >= pad && in_dims[d - pad] != 1 {
                    src += coord * in_strides[d - pad];
                }
            }
            src
        })
        .collect()
}

/// Runs the finalized `graph` on `inputs` (id → bytes of each APP_WRITE tensor) and returns the
/// bytes of every APP_READ tensor.
pub fn execute(graph: &Graph, inputs: HashMap<u32, Vec<u8>>) -> Res<HashMap<u32, Vec<u8>>> {
    let mut values: HashMap<u32, Vec<u8>> = inputs;
    for t in graph
        .tensors
        .values()
        .filter(|t| t.ty == QNN_TENSOR_TYPE_STATIC)
    {
        values.insert(t.id, t.data.clone());
    }
    for node in &graph.nodes {
        let ins: Vec<&TensorDesc> = node.inputs.iter().map(|id| &graph.tensors[id]).collect();
        let out = &graph.tensors[&node.outputs[0]];
        let bytes = run_node(node, &ins, out, &values)?;
        values.insert(out.id, bytes);
    }
    Ok(graph
        .tensors_of_type(QNN_TENSOR_TYPE_APP_READ)
        .into_iter()
        .filter_map(|t| values.remove(&t.id).map(|v| (t.id, v)))
        .collect())
}

/// Computes one node's output bytes.
fn run_node(
    node: &Node,
    ins: &[&TensorDesc],
    out: &TensorDesc,
    values: &HashMap<u32, Vec<u8>>,
) -> Res<Vec<u8>> {
    let bytes = |t: &TensorDesc| -> Res<&Vec<u8>> {
        values.get(&t.id).map_or_else(
            || {
                fail(
                    QNN_GRAPH_ERROR_INVALID_TENSOR,
                    format!("tensor {:?} has no value", t.name),
                )
            },
            Ok,
        )
    };
    let load =
        |i: usize| -> Res<Vec<f32>> { Ok(decode(&ins[i].enc, &ins[i].dims, bytes(ins[i])?)) };
    let optional = |i: usize| -> Res<Option<Vec<f32>>> {
        match ins.get(i) {
            Some(t) if !is_absent(t) => Ok(Some(decode(&t.enc, &t.dims, bytes(t)?))),
            _ => Ok(None),
        }
    };
    let store = |v: Vec<f32>| encode(&out.enc, &out.dims, &v);
    let p = Params(&node.params);
    let x = ins[0];

    Ok(match node.op.as_str() {
        QNN_OP_ELEMENT_WISE_ADD
        | QNN_OP_ELEMENT_WISE_MULTIPLY
        | QNN_OP_ELEMENT_WISE_SUBTRACT
        | QNN_OP_ELEMENT_WISE_DIVIDE => {
            let (a, b) = (load(0)?, load(1)?);
            let dims = broadcast(&ins[0].dims, &ins[1].dims).unwrap_or_default();
            let (ma, mb) = (
                broadcast_map(&ins[0].dims, &dims),
                broadcast_map(&ins[1].dims, &dims),
            );
            let f: fn(f32, f32) -> f32 = match node.op.as_str() {
                QNN_OP_ELEMENT_WISE_ADD => |a, b| a + b,
                QNN_OP_ELEMENT_WISE_MULTIPLY => |a, b| a * b,
                QNN_OP_ELEMENT_WISE_SUBTRACT => |a, b| a - b,
                _ => |a, b| a / b,
            };
            store(ma.iter().zip(&mb).map(|(&i, &j)| f(a[i], b[j])).collect())
        }
        QNN_OP_FULLY_CONNECTED => {
            let (a, w, bias) = (load(0)?, load(1)?, optional(2)?);
            let (m, k) = (ins[1].dims[0] as usize, ins[1].dims[1] as usize);
            let batch = a.len() / k;
            let mut y = vec![0f32; batch * m];
            for r in 0..batch {
                for o in 0..m {
                    let dot: f32 = (0..k).map(|i| a[r * k + i] * w[o * k + i]).sum();
                    y[r * m + o] = dot + bias.as_ref().map_or(0.0, |b| b[o]);
                }
            }
            store(y)
        }
        QNN_OP_MAT_MUL => {
            let (a, b, bias) = (load(0)?, load(1)?, optional(2)?);
            let (ta, tb) = (
                p.flag(QNN_OP_MAT_MUL_PARAM_TRANSPOSE_IN0)?,
                p.flag(QNN_OP_MAT_MUL_PARAM_TRANSPOSE_IN1)?,
            );
            let (da, db) = (&ins[0].dims, &ins[1].dims);
            let (ra, rb) = (da.len(), db.len());
            let (m, k) = if ta {
                (da[ra - 1], da[ra - 2])
            } else {
                (da[ra - 2], da[ra - 1])
            };
            let n = if tb { db[rb - 2] } else { db[rb - 1] };
            let (m, k, n) = (m as usize, k as usize, n as usize);
            let batch_dims = &out.dims[..out.dims.len() - 2];
            let (map_a, map_b) = (
                broadcast_map(&da[..ra - 2], batch_dims),
                broadcast_map(&db[..rb - 2], batch_dims),
            );
            let mut y = Vec::with_capacity(out.dims.iter().map(|&d| d as usize).product());
            for (&ba, &bb) in map_a.iter().zip(&map_b) {
                let (a0, b0) = (ba * m * k, bb * k * n);
                for i in 0..m {
                    for j in 0..n {
                        let mut acc = 0f32;
                        for l in 0..k {
                            let av = if ta {
                                a[a0 + l * m + i]
                            } else {
                                a[a0 + i * k + l]
                            };
                            let bv = if tb {
                                b[b0 + j * k + l]
                            } else {
                                b[b0 + l * n + j]
                            };
                            acc += av * bv;
                        }
                        y.push(acc + bias.as_ref().map_or(0.0, |bias| bias[j]));
                    }
                }
            }
            store(y)
        }
        QNN_OP_SOFTMAX => {
            let v = load(0)?;
            let axis = norm_axis(
                p.number(QNN_OP_SOFTMAX_PARAM_AXIS, x.dims.len() as f64 - 1.0)? as i64,
                x.dims.len(),
            )?;
            let beta = p.number(QNN_OP_SOFTMAX_PARAM_BETA, 1.0)? as f32;
            let len = x.dims[axis] as usize;
            let inner: usize = x.dims[axis + 1..].iter().map(|&d| d as usize).product();
            let mut y = vec![0f32; v.len()];
            for outer in 0..v.len() / (len * inner) {
                for j in 0..inner {
                    let at = |i: usize| outer * len * inner + i * inner + j;
                    let max = (0..len).map(|i| v[at(i)]).fold(f32::NEG_INFINITY, f32::max);
                    let sum: f32 = (0..len).map(|i| (beta * (v[at(i)] - max)).exp()).sum();
                    for i in 0..len {
                        y[at(i)] = (beta * (v[at(i)] - max)).exp() / sum;
                    }
                }
            }
            store(y)
        }
        QNN_OP_LAYER_NORM => {
            let (v, gamma, beta) = (load(0)?, optional(1)?, optional(2)?);
            let eps = p.number(QNN_OP_LAYER_NORM_PARAM_EPSILON, 0.001)? as f32;
            let inner = layer_norm_inner(&x.dims, &p)?;
            let mut y = vec![0f32; v.len()];
            for (row, dst) in v.chunks(inner).zip(y.chunks_mut(inner)) {
                let mean = row.iter().sum::<f32>() / inner as f32;
                let var = row.iter().map(|a| (a - mean) * (a - mean)).sum::<f32>() / inner as f32;
                let inv = 1.0 / (var + eps).sqrt();
                for (i, (a, d)) in row.iter().zip(dst).enumerate() {
                    *d = (a - mean) * inv * gamma.as_ref().map_or(1.0, |g| g[i])
                        + beta.as_ref().map_or(0.0, |b| b[i]);
                }
            }
            store(y)
        }
        QNN_OP_GATHER => {
            let idx = decode_ints(ins[1].enc.dtype, bytes(ins[1])?);
            let axis = norm_axis(
                p.number(QNN_OP_GATHER_PARAM_AXIS, 0.0)? as i64,
                x.dims.len(),
            )?;
            let n = x.dims[axis] as i64;
            let outer: usize = x.dims[..axis].iter().map(|&d| d as usize).product();
            let inner: usize = x.dims[axis + 1..].iter().map(|&d| d as usize).product();
            let mut map = Vec::with_capacity(outer * idx.len() * inner);
            for o in 0..outer {
                for &i in &idx {
                    let i = if i < 0 { i + n } else { i };
                    if !(0..n).contains(&i) {
                        return fail(
                            QNN_GRAPH_ERROR_INVALID_ARGUMENT,
                            format!("Gather index {i} out of range 0..{n}"),
                        );
                    }
                    map.extend((0..inner).map(|j| (o * n as usize + i as usize) * inner + j));
                }
            }
            move_elements(
                &[(x, bytes(x)?)],
                &map.into_iter().map(|i| (0, i)).collect::<Vec<_>>(),
                out,
            )
        }
        QNN_OP_TRANSPOSE => {
            let perm = transpose_perm(&x.dims, &p)?;
            let in_strides = strides(&x.dims);
            let out_strides = strides(&out.dims);
            let map: Vec<(usize, usize)> = (0..out.numel())
                .map(|flat| {
                    let src = perm
                        .iter()
                        .enumerate()
                        .map(|(d, &pd)| {
                            flat / out_strides[d] % out.dims[d] as usize * in_strides[pd]
                        })
                        .sum();
                    (0, src)
                })
                .collect();
            move_elements(&[(x, bytes(x)?)], &map, out)
        }
        QNN_OP_RESHAPE => {
            let map: Vec<(usize, usize)> = (0..out.numel()).map(|i| (0, i)).collect();
            move_elements(&[(x, bytes(x)?)], &map, out)
        }
        QNN_OP_STRIDED_SLICE => {
            let plan = slice_plan(&x.dims, &p)?;
            let in_strides = strides(&x.dims);
            let full: Vec<u32> = plan.iter().map(|d| d.count as u32).collect();
            let full_strides = strides(&full);
            let map: Vec<(usize, usize)> = (0..full.iter().map(|&d| d as usize).product())
                .map(|flat: usize| {
                    let src = plan
                        .iter()
                        .enumerate()
                        .map(|(d, s)| {
                            let c = (flat / full_strides[d] % full[d] as usize) as i64;
                            (s.begin + c * s.stride) as usize * in_strides[d]
                        })
                        .sum();
                    (0, src)
                })
                .collect();
            move_elements(&[(x, bytes(x)?)], &map, out)
        }
        QNN_OP_CONCAT => {
            let rank = x.dims.len();
            let axis = norm_axis(
                p.number(QNN_OP_CONCAT_PARAM_AXIS, rank as f64 - 1.0)? as i64,
                rank,
            )?;
            let outer: usize = x.dims[..axis].iter().map(|&d| d as usize).product();
            let inner: usize = x.dims[axis + 1..].iter().map(|&d| d as usize).product();
            let mut map = Vec::with_capacity(out.numel());
            for o in 0..outer {
                for (s, t) in ins.iter().enumerate() {
                    let chunk = t.dims[axis] as usize * inner;
                    map.extend((0..chunk).map(|j| (s, o * chunk + j)));
                }
            }
            let sources: Vec<(&TensorDesc, &Vec<u8>)> = ins
                .iter()
                .map(|t| Ok((*t, bytes(t)?)))
                .collect::<Res<_>>()?;
            move_elements(&sources, &map, out)
        }
        QNN_OP_QUANTIZE | QNN_OP_DEQUANTIZE | QNN_OP_CONVERT => store(load(0)?),
        QNN_OP_GELU => store(load(0)?.into_iter().map(gelu).collect()),
        QNN_OP_SIGMOID => store(load(0)?.into_iter().map(sigmoid).collect()),
        QNN_OP_TANH => store(load(0)?.into_iter().map(f32::tanh).collect()),
        QNN_OP_ELEMENT_WISE_NEURON => {
            let op = p.number(QNN_OP_ELEMENT_WISE_NEURON_PARAM_OPERATION, -1.0)? as u32;
            let num = |name, default| p.number(name, default).map(|v| v as f32);
            let alpha = num(
                QNN_OP_ELEMENT_WISE_NEURON_PARAM_ALPHA,
                if op == QNN_OP_ELEMENT_WISE_NEURON_OPERATION_HARD_SIGMOID {
                    0.2
                } else {
                    1.0
                },
            )?;
            let beta = num(
                QNN_OP_ELEMENT_WISE_NEURON_PARAM_BETA,
                if op == QNN_OP_ELEMENT_WISE_NEURON_OPERATION_HARD_SIGMOID {
                    0.5
                } else {
                    1.0
                },
            )?;
            let lo = num(QNN_OP_ELEMENT_WISE_NEURON_PARAM_MIN_VALUE, 0.0)?;
            let hi = num(
                QNN_OP_ELEMENT_WISE_NEURON_PARAM_MAX_VALUE,
                f32::INFINITY as f64,
            )?;
            let threshold = num(QNN_OP_ELEMENT_WISE_NEURON_PARAM_THRESHOLD, 20.0)?;
            let f = |v: f32| match op {
                QNN_OP_ELEMENT_WISE_NEURON_OPERATION_ELU => {
                    if v > 0.0 {
                        v
                    } else {
                        alpha * (v.exp() - 1.0)
                    }
                }
                QNN_OP_ELEMENT_WISE_NEURON_OPERATION_GELU => gelu(v),
                QNN_OP_ELEMENT_WISE_NEURON_OPERATION_HARD_SIGMOID => {
                    (alpha * v + beta).clamp(0.0, 1.0)
                }
                QNN_OP_ELEMENT_WISE_NEURON_OPERATION_HARD_SWISH => {
                    v * (v + 3.0).clamp(0.0, 6.0) / 6.0
                }
                QNN_OP_ELEMENT_WISE_NEURON_OPERATION_RELU => v.max(0.0),
                QNN_OP_ELEMENT_WISE_NEURON_OPERATION_RELU_MIN_MAX => v.clamp(lo, hi),
                QNN_OP_ELEMENT_WISE_NEURON_OPERATION_SIGMOID => sigmoid(v),
                QNN_OP_ELEMENT_WISE_NEURON_OPERATION_SOFTPLUS => {
                    if beta * v > threshold {
                        v
                    } else {
                        (1.0 + (beta * v).exp()).ln() / beta
                    }
                }
                _ => v.tanh(),
            };
            store(load(0)?.into_iter().map(f).collect())
        }
        other => {
            return fail(
                QNN_GRAPH_ERROR_INVALID_OP_CONFIG,
                format!("op {other} cannot be executed"),
            )
        }
    })
}

/// Builds an output from elements of one or more sources: `map[k] = (source, flat index)` gives
/// output element `k`. Raw copy when encodings match, else requantize through `f32`.
fn move_elements(
    sources: &[(&TensorDesc, &Vec<u8>)],
    map: &[(usize, usize)],
    out: &TensorDesc,
) -> Vec<u8> {
    if sources.iter().all(|(t, _)| t.enc == out.enc) {
        let size = data_type_size(out.enc.dtype).unwrap_or(1);
        let mut bytes = Vec::with_capacity(map.len() * size);
        for &(s, i) in map {
            bytes.extend_from_slice(&sources[s].1[i * size..(i + 1) * size]);
        }
        return bytes;
    }
    let decoded: Vec<Vec<f32>> = sources
        .iter()
        .map(|(t, b)| decode(&t.enc, &t.dims, b))
        .collect();
    let values: Vec<f32> = map.iter().map(|&(s, i)| decoded[s][i]).collect();
    encode(&out.enc, &out.dims, &values)
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// Exact (erf-based) GELU.
fn gelu(v: f32) -> f32 {
    0.5 * v * (1.0 + erf(v / std::f32::consts::SQRT_2))
}
