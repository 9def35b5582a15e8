//! Lowering: one partition of a wisp graph → one QNN graph of `qti.aisw` ops
//! ([`QGraph`]).
//!
//! Every wisp value the partition produces becomes a tensor in its
//! *activation encoding*: uint8/uint16 with the calibration's range
//! (`(q + offset) · scale`, QNN's sign), or fp16. Ops the pinned op set
//! (SDK 2.13, opset 1.24) lacks are decomposed:
//!
//! - `rms_norm` (no RmsNorm in 2.13, no Rsqrt/ReduceMean either):
//!   `LayerNorm(concat(x, −x))` has mean 0 and variance mean(x²), so its first
//!   half is exactly x / sqrt(mean(x²) + eps); the norm weight becomes the
//!   gamma `[w, w]`. `l2_norm` is the same with gamma 1/√D.
//! - `rope`: cos/sin tables are static, gathered by position, and the pairs
//!   are rotated with StridedSlice / Multiply / Subtract / Add / Concat.
//! - attention: Reshape/Transpose to heads, MatMul, an additive mask, Softmax
//!   (its `beta` is the 1/√d scale), MatMul. The decoder's KV cache is a graph
//!   input and its mask is computed by the host from the positions.
//!
//! Decompositions with intermediates the calibration cannot know (scores,
//! probabilities, rotated halves) run as fp16 islands: Dequantize in,
//! compute in fp16, Quantize out to the calibrated encoding. Outputs leave
//! the graph as fp32 through Dequantize/Convert; inputs enter as fp32 (ids and
//! positions as int32, an fp16 KV cache as fp16) and are quantized inside.

use std::collections::{HashMap, HashSet};

use wisp_engine::calibration::qparams;
use wisp_engine::{Graph, NodeId, ValueId, ValueKind};
use wisp_ops::{DType, Op, RopeMode};
use wisp_qnn_sys::ops::*;

use crate::ir::*;
use crate::Precision;

/// Additive mask value for hidden keys (large enough after any softmax beta; fits fp16).
pub const MASK_HIDDEN: f32 = -10000.0;

/// The encoding an activation gets: fp16, or fixed point from the
/// calibration (mirroring `insert_fake_quant`: per-tensor bits, `wide`
/// overrides, percentile clipping for 8 bits). Graph outputs get 16 bits over
/// min/max (they are read back, never re-quantized by the simulation).
pub fn act_enc(g: &Graph, v: ValueId, p: &Precision) -> Result<Enc, String> {
    let Precision::Quantized { calib, sim } = p else {
        return Ok(Enc::F16);
    };
    // Data movement keeps its input's encoding (the same values).
    if let Some(n) = g.producer(v) {
        if matches!(g.node(n).op, Op::Reshape | Op::TakeRows { .. }) {
            return act_enc(g, g.node(n).inputs[0], p);
        }
    }
    let val = g.value(v);
    let e = calib.get(&val.name).ok_or_else(|| {
        format!(
            "no calibration range for {} (calibrate with the same fusion setting)",
            val.name
        )
    })?;
    let out = g.outputs.contains(&v);
    let wide = sim.wide.iter().any(|w| val.name.contains(w.as_str()));
    let bits = if out || wide {
        16
    } else if sim.bits == 0 {
        e.bits
    } else {
        sim.bits
    };
    let (lo, hi) = if sim.clip && bits == 8 {
        (e.lo, e.hi)
    } else {
        (e.min, e.max)
    };
    let (scale, offset, _) = qparams(lo, hi, bits);
    Ok(Enc::UFixed {
        bits,
        scale,
        offset,
    })
}

/// The real range an encoding covers.
fn enc_range(e: &Enc) -> (f32, f32) {
    match e {
        Enc::UFixed {
            bits,
            scale,
            offset,
        } => {
            let qmax = if *bits >= 16 { 65535.0 } else { 255.0 };
            (*offset as f32 * scale, (qmax + *offset as f32) * scale)
        }
        _ => (f32::NEG_INFINITY, f32::INFINITY),
    }
}

/// A fixed-point encoding covering `[lo, hi]` (zero included) with `bits`.
fn fixed(lo: f32, hi: f32, bits: u32) -> Enc {
    let (scale, offset, _) = qparams(lo, hi, bits);
    Enc::UFixed {
        bits,
        scale,
        offset,
    }
}

fn bits_of(e: &Enc) -> u32 {
    match e {
        Enc::UFixed { bits, .. } => *bits,
        _ => 16,
    }
}

fn f16_bytes(vals: &[f32]) -> Vec<u8> {
    vals.iter()
        .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
        .collect()
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Numpy broadcast of two shapes (both checked by the op's shape rules already).
fn broadcast(a: &[u32], b: &[u32]) -> Vec<u32> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|i| {
            let da = if i + a.len() >= r {
                a[i + a.len() - r]
            } else {
                1
            };
            let db = if i + b.len() >= r {
                b[i + b.len() - r]
            } else {
                1
            };
            da.max(db)
        })
        .collect()
}

/// Lowers `nodes` (one partition, in execution order) of `g`.
pub fn lower(
    g: &Graph,
    nodes: &[NodeId],
    p: &Precision,
    expose_all: bool,
) -> Result<QGraph, String> {
    let mut l = Lower {
        g,
        p,
        set: nodes.iter().copied().collect(),
        q: QGraph::default(),
        act: HashMap::new(),
        f16: HashMap::new(),
        raw: HashMap::new(),
        memo: HashMap::new(),
        names: HashSet::new(),
    };
    // Values read outside the partition (or returned by the graph) leave it.
    let mut used_outside: HashSet<ValueId> = g.outputs.iter().copied().collect();
    for (i, n) in g.nodes.iter().enumerate() {
        if !l.set.contains(&NodeId(i)) {
            used_outside.extend(n.inputs.iter().copied());
        }
    }
    for &n in nodes {
        let node = g.node(n);
        let t = l
            .node(n)
            .map_err(|e| format!("{}: {e}", g.value(node.output).name))?;
        l.act.insert(node.output, t);
        let needed = used_outside.contains(&node.output);
        let is_act = matches!(g.value(node.output).kind, ValueKind::Activation);
        if needed || (expose_all && is_act) {
            let to = l.tensor(
                &format!("{}_out", g.value(node.output).name),
                Kind::Output,
                Enc::F32,
                l.dims_t(t),
                Data::None,
            );
            let ty = if l.enc_t(t).is_fixed() {
                QNN_OP_DEQUANTIZE
            } else {
                QNN_OP_CONVERT
            };
            l.op(ty, vec![], vec![t], to);
            l.q.outputs.push(OutputBind {
                tensor: to,
                value: node.output,
                node: n,
                needed,
            });
        }
    }
    Ok(l.q)
}

struct Lower<'g> {
    g: &'g Graph,
    p: &'g Precision,
    set: HashSet<NodeId>,
    q: QGraph,
    /// Value → tensor in its activation encoding.
    act: HashMap<ValueId, usize>,
    /// Value → tensor in fp16.
    f16: HashMap<ValueId, usize>,
    /// Value → graph input tensor as the host writes it.
    raw: HashMap<ValueId, usize>,
    /// Shared derived tensors (masks, rope tables).
    memo: HashMap<String, usize>,
    names: HashSet<String>,
}

type R<T> = Result<T, String>;

impl Lower<'_> {
    fn quantized(&self) -> bool {
        matches!(self.p, Precision::Quantized { .. })
    }

    fn enc_t(&self, t: usize) -> Enc {
        self.q.tensors[t].enc.clone()
    }

    fn dims_t(&self, t: usize) -> Vec<u32> {
        self.q.tensors[t].dims.clone()
    }

    fn dims_v(&self, v: ValueId) -> Vec<u32> {
        self.g.value(v).ty.shape.iter().map(|&d| d as u32).collect()
    }

    fn tensor(&mut self, base: &str, kind: Kind, enc: Enc, dims: Vec<u32>, data: Data) -> usize {
        let base = sanitize(base);
        let mut name = base.clone();
        let mut k = 1;
        while !self.names.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.q.tensors.push(QTensor {
            name,
            kind,
            enc,
            dims,
            data,
        });
        self.q.tensors.len() - 1
    }

    fn op(
        &mut self,
        ty: &'static str,
        params: Vec<(&'static str, Param)>,
        inputs: Vec<usize>,
        out: usize,
    ) {
        let name = format!("{}_{}", ty, self.q.ops.len());
        self.q.ops.push(QOp {
            name,
            ty,
            params,
            inputs,
            outputs: vec![out],
        });
    }

    /// A new native tensor produced by a new op.
    fn emit(
        &mut self,
        ty: &'static str,
        params: Vec<(&'static str, Param)>,
        inputs: Vec<usize>,
        enc: Enc,
        dims: Vec<u32>,
    ) -> usize {
        let base = format!("{}_{}", ty.to_ascii_lowercase(), self.q.ops.len());
        let t = self.tensor(&base, Kind::Native, enc, dims, Data::None);
        self.op(ty, params, inputs, t);
        t
    }

    fn constant(&mut self, base: &str, enc: Enc, dims: Vec<u32>, bytes: Vec<u8>) -> usize {
        self.tensor(base, Kind::Static, enc, dims, Data::Bytes(bytes))
    }

    fn const_f16(&mut self, base: &str, dims: Vec<u32>, vals: &[f32]) -> usize {
        self.constant(base, Enc::F16, dims, f16_bytes(vals))
    }

    fn const_u32(&mut self, base: &str, vals: &[u32]) -> usize {
        let bytes = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(base, Enc::U32, vec![vals.len() as u32], bytes)
    }

    /// A scalar constant of `like`'s class (fp16, or exact fixed point).
    fn scalar(&mut self, base: &str, v: f32, like: &Enc) -> usize {
        if like.is_fixed() {
            let bits = bits_of(like).min(16);
            let enc = fixed(v.min(0.0), v.max(0.0), bits);
            let bytes = encode_fixed(&enc, &[v]);
            self.constant(base, enc, vec![1], bytes)
        } else {
            self.const_f16(base, vec![1], &[v])
        }
    }

    /// The graph input the host writes for `v` (its own dtype).
    fn raw(&mut self, v: ValueId) -> R<usize> {
        if let Some(&t) = self.raw.get(&v) {
            return Ok(t);
        }
        let val = self.g.value(v);
        let enc = match val.ty.dtype {
            DType::F32 => Enc::F32,
            DType::F16 => Enc::F16,
            DType::I32 => Enc::I32,
            d => {
                return Err(format!(
                    "input {} has dtype {d}, which is not a QNN input type",
                    val.name
                ))
            }
        };
        let t = self.tensor(&val.name, Kind::Input, enc, self.dims_v(v), Data::None);
        self.q.inputs.push(InputBind {
            tensor: t,
            source: Source::Value(v),
        });
        self.raw.insert(v, t);
        Ok(t)
    }

    /// `v` in its activation encoding.
    fn act(&mut self, v: ValueId) -> R<usize> {
        if let Some(&t) = self.act.get(&v) {
            return Ok(t);
        }
        if self.g.producer(v).is_some_and(|n| self.set.contains(&n)) {
            return Err(format!(
                "{} is read before it is produced",
                self.g.value(v).name
            ));
        }
        let r = self.raw(v)?;
        let enc = act_enc(self.g, v, self.p)?;
        let t = self.convert(r, enc);
        self.act.insert(v, t);
        Ok(t)
    }

    /// `v` in fp16.
    fn f16(&mut self, v: ValueId) -> R<usize> {
        if let Some(&t) = self.f16.get(&v) {
            return Ok(t);
        }
        let outside = !self.g.producer(v).is_some_and(|n| self.set.contains(&n));
        let direct = matches!(self.g.value(v).kind, ValueKind::Input | ValueKind::State(_));
        let src = if outside && direct {
            self.raw(v)?
        } else {
            self.act(v)?
        };
        let t = self.convert(src, Enc::F16);
        self.f16.insert(v, t);
        Ok(t)
    }

    /// Converts a tensor to another encoding (Quantize, Dequantize or Convert).
    fn convert(&mut self, t: usize, enc: Enc) -> usize {
        let from = self.enc_t(t);
        if from == enc {
            return t;
        }
        let ty = match (from.is_fixed(), enc.is_fixed()) {
            (false, true) => QNN_OP_QUANTIZE,
            (true, false) => QNN_OP_DEQUANTIZE,
            _ => QNN_OP_CONVERT,
        };
        let dims = self.dims_t(t);
        self.emit(ty, vec![], vec![t], enc, dims)
    }

    fn reshape(&mut self, t: usize, dims: Vec<u32>) -> usize {
        let enc = self.enc_t(t);
        self.emit(QNN_OP_RESHAPE, vec![], vec![t], enc, dims)
    }

    fn transpose(&mut self, t: usize, perm: &[u32]) -> usize {
        let d = self.dims_t(t);
        let dims = perm.iter().map(|&i| d[i as usize]).collect();
        let p = self.const_u32("perm", perm);
        let enc = self.enc_t(t);
        self.emit(
            QNN_OP_TRANSPOSE,
            vec![(QNN_OP_TRANSPOSE_PARAM_PERM, Param::Tensor(p))],
            vec![t],
            enc,
            dims,
        )
    }

    /// StridedSlice with `(begin, end)` per dim, stride 1.
    fn slice(&mut self, t: usize, ranges: &[(u32, u32)]) -> usize {
        let bytes: Vec<u8> = ranges
            .iter()
            .flat_map(|&(b, e)| [b as i32, e as i32, 1])
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let r = self.constant("ranges", Enc::I32, vec![ranges.len() as u32, 3], bytes);
        let dims = ranges.iter().map(|&(b, e)| e - b).collect();
        let enc = self.enc_t(t);
        self.emit(
            QNN_OP_STRIDED_SLICE,
            vec![(QNN_OP_STRIDED_SLICE_PARAM_RANGES, Param::Tensor(r))],
            vec![t],
            enc,
            dims,
        )
    }

    fn binary(&mut self, ty: &'static str, a: usize, b: usize, enc: Enc) -> usize {
        let dims = broadcast(&self.dims_t(a), &self.dims_t(b));
        self.emit(ty, vec![], vec![a, b], enc, dims)
    }

    fn matmul(&mut self, a: usize, b: usize, transpose_b: bool, enc: Enc) -> usize {
        let (da, db) = (self.dims_t(a), self.dims_t(b));
        let (ra, rb) = (da.len(), db.len());
        let n = if transpose_b { db[rb - 2] } else { db[rb - 1] };
        let mut dims = broadcast(&da[..ra - 2], &db[..rb - 2]);
        dims.extend([da[ra - 2], n]);
        let params = if transpose_b {
            vec![(QNN_OP_MAT_MUL_PARAM_TRANSPOSE_IN1, Param::Bool(true))]
        } else {
            vec![]
        };
        self.emit(QNN_OP_MAT_MUL, params, vec![a, b], enc, dims)
    }

    fn concat(&mut self, parts: Vec<usize>, axis: u32) -> usize {
        let mut dims = self.dims_t(parts[0]);
        dims[axis as usize] = parts
            .iter()
            .map(|&t| self.q.tensors[t].dims[axis as usize])
            .sum();
        let enc = self.enc_t(parts[0]);
        self.emit(
            QNN_OP_CONCAT,
            vec![(QNN_OP_CONCAT_PARAM_AXIS, Param::U32(axis))],
            parts,
            enc,
            dims,
        )
    }

    /// A static weight.
    fn weight(&mut self, v: ValueId, enc: Enc, form: Form) -> usize {
        let name = self.g.value(v).name.clone();
        let dims = self.dims_v(v);
        self.tensor(
            &name,
            Kind::Static,
            enc,
            dims,
            Data::Weight { value: v, form },
        )
    }

    /// A vector weight (bias, norm weight) in the class of `like`.
    fn vector(&mut self, v: ValueId, like: &Enc) -> usize {
        if like.is_fixed() {
            let bits = bits_of(like);
            self.weight(
                v,
                Enc::UFixed {
                    bits,
                    scale: 0.0,
                    offset: 0,
                },
                Form::Auto { bits },
            )
        } else {
            self.weight(v, Enc::F16, Form::F16)
        }
    }

    fn is_weight(&self, v: ValueId) -> bool {
        matches!(self.g.value(v).kind, ValueKind::Weight(_))
    }

    /// `x / sqrt(mean(x²) + eps) · gamma` on fp16 rows of `d`: LayerNorm of `[x, −x]`.
    fn rms_island(&mut self, xh: usize, eps: f32, gamma: Option<ValueId>, scale: f32) -> usize {
        let dims = self.dims_t(xh);
        let (n, d) = (dims[0], dims[1]);
        let m1 = self.const_f16("minus_one", vec![1], &[-1.0]);
        let neg = self.binary(QNN_OP_ELEMENT_WISE_MULTIPLY, xh, m1, Enc::F16);
        let cat = self.concat(vec![xh, neg], 1);
        let gamma_t = match gamma {
            Some(w) => {
                let name = self.g.value(w).name.clone();
                self.tensor(
                    &name,
                    Kind::Static,
                    Enc::F16,
                    vec![2 * d],
                    Data::Weight {
                        value: w,
                        form: Form::F16Twice,
                    },
                )
            }
            None => self.const_f16("gamma", vec![2 * d], &vec![scale; 2 * d as usize]),
        };
        let axes = self.const_u32("axes", &[1]);
        let ln = self.emit(
            QNN_OP_LAYER_NORM,
            vec![
                (QNN_OP_LAYER_NORM_PARAM_EPSILON, Param::F32(eps)),
                (QNN_OP_LAYER_NORM_PARAM_AXES, Param::Tensor(axes)),
            ],
            vec![cat, gamma_t],
            Enc::F16,
            vec![n, 2 * d],
        );
        self.slice(ln, &[(0, n), (0, d)])
    }

    /// The additive mask `[B, 1, 1, S]` of an encoder's padding mask (`(m − 1) · 10000`).
    fn padding_bias(&mut self, mask: ValueId) -> R<usize> {
        let key = format!("padbias{}", mask.0);
        if let Some(&t) = self.memo.get(&key) {
            return Ok(t);
        }
        let mh = self.f16(mask)?;
        let one = self.const_f16("one", vec![1], &[1.0]);
        let big = self.const_f16("mask_scale", vec![1], &[-MASK_HIDDEN]);
        let t1 = self.binary(QNN_OP_ELEMENT_WISE_SUBTRACT, mh, one, Enc::F16);
        let t2 = self.binary(QNN_OP_ELEMENT_WISE_MULTIPLY, t1, big, Enc::F16);
        let d = self.dims_t(mh);
        let t = self.reshape(t2, vec![d[0], 1, 1, d[1]]);
        self.memo.insert(key, t);
        Ok(t)
    }

    /// The causal mask `[N, CTX]` (fp16) the host computes from `pos`.
    fn causal_mask(&mut self, pos: ValueId, ctx: usize, window: Option<usize>) -> usize {
        let key = format!("causal{}_{ctx}_{window:?}", pos.0);
        if let Some(&t) = self.memo.get(&key) {
            return t;
        }
        let n = self.g.value(pos).ty.numel() as u32;
        let t = self.tensor(
            "attn_mask",
            Kind::Input,
            Enc::F32,
            vec![n, ctx as u32],
            Data::None,
        );
        self.q.inputs.push(InputBind {
            tensor: t,
            source: Source::CausalMask { pos, ctx, window },
        });
        let h = self.convert(t, Enc::F16);
        self.memo.insert(key, h);
        h
    }

    /// Rows of the rope tables: the context of the graph's KV cache, else 8192.
    fn rope_rows(&self) -> u32 {
        self.g
            .states
            .iter()
            .map(|&s| self.g.value(s).ty.shape[0] as u32)
            .max()
            .unwrap_or(8192)
    }

    /// cos and sin of every (position, pair) gathered at `pos`: `[N, n_dims/2]` each.
    fn rope_cos_sin(&mut self, pos: ValueId, n_dims: usize, base: f32) -> R<(usize, usize)> {
        let key = format!("rope{}_{n_dims}_{:08x}", pos.0, base.to_bits());
        if let (Some(&c), Some(&s)) = (
            self.memo.get(&format!("{key}c")),
            self.memo.get(&format!("{key}s")),
        ) {
            return Ok((c, s));
        }
        let rows = self.rope_rows();
        let half = n_dims / 2;
        let (mut cos, mut sin) = (Vec::new(), Vec::new());
        for p in 0..rows {
            for j in 0..half {
                let a = wisp_ops::reference::rope_angle(p as i32, j, n_dims, base);
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        let ct = self.const_f16("rope_cos", vec![rows, half as u32], &cos);
        let st = self.const_f16("rope_sin", vec![rows, half as u32], &sin);
        let p = self.raw(pos)?;
        let n = self.dims_t(p)[0];
        let mut out = Vec::new();
        for table in [ct, st] {
            out.push(self.emit(
                QNN_OP_GATHER,
                vec![(QNN_OP_GATHER_PARAM_AXIS, Param::I32(0))],
                vec![table, p],
                Enc::F16,
                vec![n, half as u32],
            ));
        }
        self.memo.insert(format!("{key}c"), out[0]);
        self.memo.insert(format!("{key}s"), out[1]);
        Ok((out[0], out[1]))
    }

    /// An fp16 island's result, reshaped and converted to the output's encoding.
    fn finish(&mut self, enc: &Enc, dims: &[u32], t: usize) -> usize {
        let t = if self.dims_t(t) != dims {
            self.reshape(t, dims.to_vec())
        } else {
            t
        };
        self.convert(t, enc.clone())
    }

    /// Lowers one node; returns its output in the activation encoding.
    fn node(&mut self, n: NodeId) -> R<usize> {
        let g = self.g;
        let node = g.node(n);
        let out = node.output;
        let ins = &node.inputs;
        let out_enc = act_enc(g, out, self.p)?;
        let out_dims = self.dims_v(out);
        Ok(match &node.op {
            Op::Add | Op::Mul => {
                let a = self.act(ins[0])?;
                let b = if self.is_weight(ins[1]) {
                    self.vector(ins[1], &out_enc)
                } else {
                    self.act(ins[1])?
                };
                let ty = if matches!(node.op, Op::Add) {
                    QNN_OP_ELEMENT_WISE_ADD
                } else {
                    QNN_OP_ELEMENT_WISE_MULTIPLY
                };
                self.binary(ty, a, b, out_enc)
            }
            Op::Scale { factor } => {
                let a = self.act(ins[0])?;
                let f = self.scalar("scale", *factor, &out_enc);
                self.binary(QNN_OP_ELEMENT_WISE_MULTIPLY, a, f, out_enc)
            }
            Op::Silu | Op::SwiGlu => {
                let x = self.act(ins[0])?;
                // Intermediates at 16 bits: their rounding stays far below the output's step.
                let sig_enc = if out_enc.is_fixed() {
                    fixed(0.0, 1.0, 16)
                } else {
                    Enc::F16
                };
                let dims = self.dims_t(x);
                let s = self.emit(QNN_OP_SIGMOID, vec![], vec![x], sig_enc, dims);
                if matches!(node.op, Op::Silu) {
                    self.binary(QNN_OP_ELEMENT_WISE_MULTIPLY, x, s, out_enc)
                } else {
                    let silu_enc = if out_enc.is_fixed() {
                        let (_, hi) = enc_range(&self.enc_t(x));
                        fixed(-0.2785, hi.max(0.0), 16)
                    } else {
                        Enc::F16
                    };
                    let silu = self.binary(QNN_OP_ELEMENT_WISE_MULTIPLY, x, s, silu_enc);
                    let u = self.act(ins[1])?;
                    self.binary(QNN_OP_ELEMENT_WISE_MULTIPLY, silu, u, out_enc)
                }
            }
            Op::Gelu => {
                let x = self.act(ins[0])?;
                self.emit(QNN_OP_GELU, vec![], vec![x], out_enc, out_dims)
            }
            Op::LayerNorm { eps } => {
                let x = self.act(ins[0])?;
                let w = self.vector(ins[1], &out_enc);
                let b = self.vector(ins[2], &out_enc);
                let axes = self.const_u32("axes", &[1]);
                self.emit(
                    QNN_OP_LAYER_NORM,
                    vec![
                        (QNN_OP_LAYER_NORM_PARAM_EPSILON, Param::F32(*eps)),
                        (QNN_OP_LAYER_NORM_PARAM_AXES, Param::Tensor(axes)),
                    ],
                    vec![x, w, b],
                    out_enc,
                    out_dims,
                )
            }
            Op::MatMul => {
                let x = self.act(ins[0])?;
                let (enc, form) = if self.quantized() {
                    (Enc::I8PerChannel { scales: vec![] }, Form::PerChannelI8)
                } else {
                    (Enc::F16, Form::F16)
                };
                let w = self.weight(ins[1], enc, form);
                self.emit(
                    QNN_OP_FULLY_CONNECTED,
                    vec![],
                    vec![x, w],
                    out_enc,
                    out_dims,
                )
            }
            Op::GetRows => {
                let form = if self.quantized() {
                    Form::Declared
                } else {
                    Form::F16
                };
                let table = self.weight(ins[0], out_enc.clone(), form);
                let ids = self.raw(ins[1])?;
                self.emit(
                    QNN_OP_GATHER,
                    vec![(QNN_OP_GATHER_PARAM_AXIS, Param::I32(0))],
                    vec![table, ids],
                    out_enc,
                    out_dims,
                )
            }
            Op::Reshape => {
                let x = self.act(ins[0])?;
                self.reshape(x, out_dims)
            }
            Op::TakeRows { start, len } => {
                let x = self.act(ins[0])?;
                let d = self.dims_t(x)[1];
                self.slice(x, &[(*start as u32, (*start + *len) as u32), (0, d)])
            }
            Op::RmsNorm { eps } | Op::RmsNormMul { eps } => {
                let xh = self.f16(ins[0])?;
                let gamma = ins.get(1).copied();
                let r = self.rms_island(xh, *eps, gamma, 1.0);
                self.finish(&out_enc, &out_dims, r)
            }
            Op::L2Norm { eps } => {
                let xh = self.f16(ins[0])?;
                let d = self.dims_t(xh)[1] as f32;
                let r = self.rms_island(xh, eps * eps / d, None, 1.0 / d.sqrt());
                self.finish(&out_enc, &out_dims, r)
            }
            Op::MeanPool => {
                let xh = self.f16(ins[0])?;
                let md = self.dims_v(ins[1]);
                let (b, s) = (md[0], md[1]);
                let d = self.dims_t(xh)[1];
                let x3 = self.reshape(xh, vec![b, s, d]);
                let mh = self.f16(ins[1])?;
                let m3 = self.reshape(mh, vec![b, 1, s]);
                let sum = self.matmul(m3, x3, false, Enc::F16);
                let ones = self.const_f16("ones", vec![s, 1], &vec![1.0; s as usize]);
                let cnt = self.matmul(m3, ones, false, Enc::F16);
                let mean = self.binary(QNN_OP_ELEMENT_WISE_DIVIDE, sum, cnt, Enc::F16);
                self.finish(&out_enc, &out_dims, mean)
            }
            Op::EncoderAttention {
                n_head,
                head_dim,
                scale,
            } => {
                let md = self.dims_v(ins[3]);
                let (b, s, h, hd) = (md[0], md[1], *n_head as u32, *head_dim as u32);
                let mut heads = Vec::new();
                for &v in &ins[..3] {
                    let t = self.f16(v)?;
                    let t = self.reshape(t, vec![b, s, h, hd]);
                    heads.push(self.transpose(t, &[0, 2, 1, 3]));
                }
                let scores = self.matmul(heads[0], heads[1], true, Enc::F16);
                let bias = self.padding_bias(ins[3])?;
                let sb = self.binary(QNN_OP_ELEMENT_WISE_ADD, scores, bias, Enc::F16);
                let dims = self.dims_t(sb);
                let probs = self.emit(
                    QNN_OP_SOFTMAX,
                    vec![
                        (QNN_OP_SOFTMAX_PARAM_AXIS, Param::U32(3)),
                        (QNN_OP_SOFTMAX_PARAM_BETA, Param::F32(*scale)),
                    ],
                    vec![sb],
                    Enc::F16,
                    dims,
                );
                let ctx = self.matmul(probs, heads[2], false, Enc::F16);
                let t = self.transpose(ctx, &[0, 2, 1, 3]);
                self.finish(&out_enc, &out_dims, t)
            }
            Op::Attention {
                n_head,
                n_kv_head,
                head_dim,
                scale,
                window,
            } => {
                let (h, kv, hd) = (*n_head as u32, *n_kv_head as u32, *head_dim as u32);
                let grp = h / kv;
                let ctx = self.dims_v(ins[1])[0];
                let qh = self.f16(ins[0])?;
                let nq = self.dims_t(qh)[0];
                let q = self.reshape(qh, vec![nq, kv, grp, hd]);
                let q = self.transpose(q, &[1, 2, 0, 3]);
                let q = self.reshape(q, vec![kv, grp * nq, hd]);
                let mut caches = Vec::new();
                for &v in &ins[1..3] {
                    let c = self.f16(v)?;
                    let c = self.reshape(c, vec![ctx, kv, hd]);
                    caches.push(self.transpose(c, &[1, 0, 2]));
                }
                let scores = self.matmul(q, caches[0], true, Enc::F16);
                let scores = self.reshape(scores, vec![kv, grp, nq, ctx]);
                let mask = self.causal_mask(ins[3], ctx as usize, *window);
                let sb = self.binary(QNN_OP_ELEMENT_WISE_ADD, scores, mask, Enc::F16);
                let probs = self.emit(
                    QNN_OP_SOFTMAX,
                    vec![
                        (QNN_OP_SOFTMAX_PARAM_AXIS, Param::U32(3)),
                        (QNN_OP_SOFTMAX_PARAM_BETA, Param::F32(*scale)),
                    ],
                    vec![sb],
                    Enc::F16,
                    vec![kv, grp, nq, ctx],
                );
                let probs = self.reshape(probs, vec![kv, grp * nq, ctx]);
                let o = self.matmul(probs, caches[1], false, Enc::F16);
                let o = self.reshape(o, vec![kv, grp, nq, hd]);
                let o = self.transpose(o, &[2, 0, 1, 3]);
                self.finish(&out_enc, &out_dims, o)
            }
            Op::Rope {
                head_dim,
                n_dims,
                base,
                mode,
            } => {
                let xh = self.f16(ins[0])?;
                let d = self.dims_t(xh);
                let (n, hd) = (d[0], *head_dim as u32);
                let heads = d[1] / hd;
                let half = hd / 2;
                let (c, s) = self.rope_cos_sin(ins[1], *n_dims, *base)?;
                let (x4, pair_axis, cs_dims, e_rng, o_rng) = match mode {
                    RopeMode::Normal => (
                        vec![n, heads, half, 2],
                        3u32,
                        vec![n, 1, half, 1],
                        [(0, n), (0, heads), (0, half), (0, 1)],
                        [(0, n), (0, heads), (0, half), (1, 2)],
                    ),
                    RopeMode::Neox => (
                        vec![n, heads, 2, half],
                        2u32,
                        vec![n, 1, 1, half],
                        [(0, n), (0, heads), (0, 1), (0, half)],
                        [(0, n), (0, heads), (1, 2), (0, half)],
                    ),
                };
                let xr = self.reshape(xh, x4);
                let e = self.slice(xr, &e_rng);
                let o = self.slice(xr, &o_rng);
                let c4 = self.reshape(c, cs_dims.clone());
                let s4 = self.reshape(s, cs_dims);
                let mul = QNN_OP_ELEMENT_WISE_MULTIPLY;
                let ec = self.binary(mul, e, c4, Enc::F16);
                let os = self.binary(mul, o, s4, Enc::F16);
                let es = self.binary(mul, e, s4, Enc::F16);
                let oc = self.binary(mul, o, c4, Enc::F16);
                let re = self.binary(QNN_OP_ELEMENT_WISE_SUBTRACT, ec, os, Enc::F16);
                let ro = self.binary(QNN_OP_ELEMENT_WISE_ADD, es, oc, Enc::F16);
                let cat = self.concat(vec![re, ro], pair_axis);
                self.finish(&out_enc, &out_dims, cat)
            }
            other => return Err(format!("op {} has no lowering", other.name())),
        })
    }
}

/// Quantizes values with a per-tensor fixed-point encoding (round half away
/// from zero, clamp), as QNN's Quantize does.
pub fn encode_fixed(enc: &Enc, vals: &[f32]) -> Vec<u8> {
    let Enc::UFixed {
        bits,
        scale,
        offset,
    } = enc
    else {
        return Vec::new();
    };
    let qmax = if *bits >= 16 { 65535.0 } else { 255.0 };
    let q = |v: f32| {
        let q = (v as f64 / *scale as f64).round() - *offset as f64;
        if q.is_nan() {
            0.0
        } else {
            q.clamp(0.0, qmax)
        }
    };
    if *bits >= 16 {
        vals.iter()
            .flat_map(|&v| (q(v) as u16).to_le_bytes())
            .collect()
    } else {
        vals.iter().map(|&v| q(v) as u8).collect()
    }
}
