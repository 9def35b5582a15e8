//! Scalar reference kernels: the oracle.
//!
//! Plain loops, weights dequantized exactly to f32, activations kept in f32,
//! long sums accumulated in f64. No SIMD, no threads, no activation
//! quantization: every other kernel is measured against these, and the
//! engine's exact-math test runs the whole model on them.

use crate::dtype::DType;
use crate::op::{Op, OpError, RopeMode};
use crate::quant::dequantize_row;
use crate::tensor::{TensorView, TensorViewMut};

/// Runs `op` on `inputs`, writing `out`.
///
/// An input given as `None` is the op's in-place input: its data is already
/// in `out` (the planner gave both the same bytes). Shapes were checked when
/// the graph was built; values read from data (token ids, positions) are
/// checked here.
pub fn execute(
    op: &Op,
    inputs: &[Option<TensorView>],
    out: &mut TensorViewMut,
) -> Result<(), OpError> {
    let input = |i: usize| -> Result<TensorView, OpError> {
        inputs.get(i).copied().flatten().ok_or(OpError::Invalid {
            op: op.name(),
            why: format!("input {i} is missing"),
        })
    };
    // Ops that may run in place start from input 0's data in `out`.
    if op.inplace_input() == Some(0) {
        if let Some(Some(a)) = inputs.first() {
            out.data.copy_from_slice(a.data);
        }
    }
    match op {
        Op::GetRows => {
            let table = input(0)?;
            get_rows(table, input(1)?.i32(), out.f32())
        }
        Op::MatMul => {
            let x = input(0)?;
            matmul(x.f32(), x.ty.row_len(), input(1)?, out.f32());
            Ok(())
        }
        Op::RmsNorm { eps } => {
            let d = out.ty.row_len();
            rms_norm_inplace(out.f32(), d, *eps);
            Ok(())
        }
        Op::Mul => {
            let b = input(1)?.f32();
            broadcast(out.f32(), b, |a, b| a * b);
            Ok(())
        }
        Op::Add => {
            let b = input(1)?.f32();
            broadcast(out.f32(), b, |a, b| a + b);
            Ok(())
        }
        Op::Rope {
            head_dim,
            n_dims,
            base,
            mode,
        } => {
            let pos = input(1)?.i32();
            rope_inplace(out.f32(), pos, *head_dim, *n_dims, *base, *mode);
            Ok(())
        }
        Op::Silu => {
            for v in out.f32() {
                *v = silu(*v);
            }
            Ok(())
        }
        Op::SwiGlu => {
            let up = input(1)?.f32();
            for (g, u) in out.f32().iter_mut().zip(up) {
                *g = silu(*g) * u;
            }
            Ok(())
        }
        Op::GeGlu => {
            let up = input(1)?.f32();
            for (g, u) in out.f32().iter_mut().zip(up) {
                *g = gelu_tanh(*g) * u;
            }
            Ok(())
        }
        Op::Scale { factor } => {
            for v in out.f32() {
                *v *= factor;
            }
            Ok(())
        }
        Op::KvStore => {
            let x = input(0)?;
            kv_store(x.f32(), x.ty.row_len(), input(1)?.i32(), out)
        }
        Op::Attention {
            n_head,
            n_kv_head,
            head_dim,
            scale,
            window,
        } => {
            let (q, k, v, pos) = (input(0)?, input(1)?, input(2)?, input(3)?);
            let shape = AttentionShape {
                n_head: *n_head,
                n_kv_head: *n_kv_head,
                head_dim: *head_dim,
                scale: *scale,
                window: *window,
            };
            attention(&shape, q.f32(), k, v, pos.i32(), out.f32())
        }
        Op::Reshape => Ok(()),
        Op::LayerNorm { eps } => {
            let d = out.ty.row_len();
            layer_norm_inplace(out.f32(), d, *eps, input(1)?.f32(), input(2)?.f32());
            Ok(())
        }
        Op::Gelu => {
            for v in out.f32() {
                *v = gelu(*v);
            }
            Ok(())
        }
        Op::FakeQuant {
            scale,
            offset,
            qmax,
        } => {
            for v in out.f32() {
                *v = fake_quant(*v, *scale, *offset, *qmax);
            }
            Ok(())
        }
        Op::L2Norm { eps } => {
            let d = out.ty.row_len();
            l2_norm_inplace(out.f32(), d, *eps);
            Ok(())
        }
        Op::EncoderAttention {
            n_head,
            head_dim,
            scale,
        } => {
            let (q, k, v, m) = (input(0)?, input(1)?, input(2)?, input(3)?);
            let seq = m.ty.shape[1];
            encoder_attention(
                *n_head,
                *head_dim,
                *scale,
                seq,
                q.f32(),
                k.f32(),
                v.f32(),
                m.f32(),
                out.f32(),
            );
            Ok(())
        }
        Op::MeanPool => {
            let (x, m) = (input(0)?, input(1)?);
            mean_pool(x.f32(), x.ty.row_len(), m.f32(), m.ty.shape[1], out.f32());
            Ok(())
        }
        Op::RmsNormMul { eps } => {
            let d = out.ty.row_len();
            rms_norm_inplace(out.f32(), d, *eps);
            broadcast(out.f32(), input(1)?.f32(), |a, b| a * b);
            Ok(())
        }
        Op::MatMulSwiGlu => {
            let x = input(0)?;
            let k = x.ty.row_len();
            let mut up = vec![0f32; out.ty.numel()];
            matmul(x.f32(), k, input(1)?, out.f32());
            matmul(x.f32(), k, input(2)?, &mut up);
            for (g, u) in out.f32().iter_mut().zip(&up) {
                *g = silu(*g) * u;
            }
            Ok(())
        }
        Op::TakeRows { start, len } => {
            let x = input(0)?;
            let d = x.ty.row_len();
            out.f32()
                .copy_from_slice(&x.f32()[start * d..(start + len) * d]);
            Ok(())
        }
    }
}

/// x · sigmoid(x).
#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

fn check_index(op: &'static str, what: &str, v: i32, limit: usize) -> Result<usize, OpError> {
    if v < 0 || v as usize >= limit {
        return Err(OpError::Invalid {
            op,
            why: format!("{what} {v} out of range 0..{limit}"),
        });
    }
    Ok(v as usize)
}

/// Quantize–dequantize one value the way QNN's static quantization does:
/// q = clamp(round(x / scale) − offset, 0, qmax), real = (q + offset) · scale.
#[inline]
pub fn fake_quant(x: f32, scale: f32, offset: i32, qmax: u32) -> f32 {
    if scale <= 0.0 || !scale.is_finite() {
        return x;
    }
    let q = ((x / scale).round_ties_even() - offset as f32).clamp(0.0, qmax as f32);
    (q + offset as f32) * scale
}

/// The exact GELU: x·(1 + erf(x/√2))/2, erf from libm (f64).
#[inline]
pub fn gelu(x: f32) -> f32 {
    let x = x as f64;
    (0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))) as f32
}

/// GELU with the tanh approximation (Gemma's, llama.cpp's `gelu`):
/// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), computed in f64.
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
    let x = x as f64;
    (0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).tanh())) as f32
}

/// Layer normalisation of each row of length `d` (f64 statistics), then · w + b.
pub fn layer_norm_inplace(x: &mut [f32], d: usize, eps: f32, w: &[f32], b: &[f32]) {
    for row in x.chunks_exact_mut(d) {
        let mean = row.iter().map(|v| *v as f64).sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        for ((v, w), b) in row.iter_mut().zip(w).zip(b) {
            *v = ((*v as f64 - mean) * inv * *w as f64 + *b as f64) as f32;
        }
    }
}

/// Divides each row by its Euclidean norm (at least `eps`).
pub fn l2_norm_inplace(x: &mut [f32], d: usize, eps: f32) {
    for row in x.chunks_exact_mut(d) {
        let n = row
            .iter()
            .map(|v| *v as f64 * *v as f64)
            .sum::<f64>()
            .sqrt()
            .max(eps as f64);
        for v in row {
            *v = (*v as f64 / n) as f32;
        }
    }
}

/// Bidirectional attention within each sequence of `seq` rows; keys whose
/// mask is 0 are ignored (a sequence with no unmasked key gives zeros).
#[allow(clippy::too_many_arguments)]
pub fn encoder_attention(
    n_head: usize,
    hd: usize,
    scale: f32,
    seq: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: &[f32],
    out: &mut [f32],
) {
    let d = n_head * hd;
    let n = q.len() / d;
    let mut scores = vec![0f64; seq];
    for i in 0..n {
        let b = i / seq;
        for h in 0..n_head {
            let qh = &q[i * d + h * hd..i * d + (h + 1) * hd];
            let mut max = f64::NEG_INFINITY;
            for (j, sc) in scores.iter_mut().enumerate() {
                let r = b * seq + j;
                if mask[r] == 0.0 {
                    *sc = f64::NEG_INFINITY;
                    continue;
                }
                let kh = &k[r * d + h * hd..r * d + (h + 1) * hd];
                *sc = qh
                    .iter()
                    .zip(kh)
                    .map(|(a, b)| *a as f64 * *b as f64)
                    .sum::<f64>()
                    * scale as f64;
                max = max.max(*sc);
            }
            let o = &mut out[i * d + h * hd..i * d + (h + 1) * hd];
            if max == f64::NEG_INFINITY {
                o.fill(0.0);
                continue;
            }
            let mut sum = 0f64;
            for sc in scores.iter_mut() {
                *sc = (*sc - max).exp();
                sum += *sc;
            }
            let mut acc = vec![0f64; hd];
            for (j, w) in scores.iter().enumerate() {
                if *w == 0.0 {
                    continue;
                }
                let r = b * seq + j;
                for (a, x) in acc.iter_mut().zip(&v[r * d + h * hd..r * d + (h + 1) * hd]) {
                    *a += w / sum * *x as f64;
                }
            }
            for (dst, a) in o.iter_mut().zip(&acc) {
                *dst = *a as f32;
            }
        }
    }
}

/// Mean of each sequence's unmasked rows (zeros for an all-masked sequence).
pub fn mean_pool(x: &[f32], d: usize, mask: &[f32], seq: usize, out: &mut [f32]) {
    for (b, o) in out.chunks_exact_mut(d).enumerate() {
        let mut acc = vec![0f64; d];
        let mut count = 0f64;
        for s in 0..seq {
            let r = b * seq + s;
            let m = mask[r] as f64;
            if m == 0.0 {
                continue;
            }
            count += m;
            for (a, v) in acc.iter_mut().zip(&x[r * d..(r + 1) * d]) {
                *a += m * *v as f64;
            }
        }
        for (dst, a) in o.iter_mut().zip(&acc) {
            *dst = if count > 0.0 {
                (*a / count) as f32
            } else {
                0.0
            };
        }
    }
}

/// Embedding lookup: dequantizes row `ids[i]` of the table into row i.
pub fn get_rows(table: TensorView, ids: &[i32], out: &mut [f32]) -> Result<(), OpError> {
    let (v, d) = (table.ty.shape[0], table.ty.shape[1]);
    let row_bytes = table.ty.dtype.bytes_for(d).unwrap_or(0);
    for (i, &id) in ids.iter().enumerate() {
        let r = check_index("get_rows", "token id", id, v)?;
        dequantize_row(
            table.ty.dtype,
            &table.data[r * row_bytes..(r + 1) * row_bytes],
            &mut out[i * d..(i + 1) * d],
        );
    }
    Ok(())
}

/// y = x · wᵀ with w dequantized row by row and f64 accumulation.
pub fn matmul(x: &[f32], k: usize, w: TensorView, out: &mut [f32]) {
    let m = w.ty.shape[0];
    let n = x.len() / k;
    let row_bytes = w.ty.dtype.bytes_for(k).unwrap_or(0);
    let mut row = vec![0f32; k];
    for o in 0..m {
        dequantize_row(
            w.ty.dtype,
            &w.data[o * row_bytes..(o + 1) * row_bytes],
            &mut row,
        );
        for t in 0..n {
            let xs = &x[t * k..(t + 1) * k];
            let s: f64 = xs
                .iter()
                .zip(&row)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum();
            out[t * m + o] = s as f32;
        }
    }
}

/// RMS normalisation of each row of length `d`.
pub fn rms_norm_inplace(x: &mut [f32], d: usize, eps: f32) {
    for row in x.chunks_exact_mut(d) {
        let ss: f64 = row.iter().map(|v| *v as f64 * *v as f64).sum();
        let scale = (1.0 / (ss / d as f64 + eps as f64).sqrt()) as f32;
        for v in row {
            *v *= scale;
        }
    }
}

/// a[i] = f(a[i], b[i mod len(b)]): elementwise with row broadcast.
pub fn broadcast(a: &mut [f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
    for row in a.chunks_exact_mut(b.len()) {
        for (x, y) in row.iter_mut().zip(b) {
            *x = f(*x, *y);
        }
    }
}

/// The angle of pair `j` at position `pos`: pos · base^(−2j/n_dims).
#[inline]
pub fn rope_angle(pos: i32, j: usize, n_dims: usize, base: f32) -> f64 {
    pos as f64 * (base as f64).powf(-2.0 * j as f64 / n_dims as f64)
}

/// Rotary embedding in place on rows of whole heads.
pub fn rope_inplace(
    x: &mut [f32],
    pos: &[i32],
    head_dim: usize,
    n_dims: usize,
    base: f32,
    mode: RopeMode,
) {
    let d = x.len() / pos.len().max(1);
    for (row, &p) in x.chunks_exact_mut(d).zip(pos) {
        for head in row.chunks_exact_mut(head_dim) {
            for j in 0..n_dims / 2 {
                let (c, s) = {
                    let a = rope_angle(p, j, n_dims, base);
                    (a.cos(), a.sin())
                };
                let (i0, i1) = match mode {
                    RopeMode::Normal => (2 * j, 2 * j + 1),
                    RopeMode::Neox => (j, j + n_dims / 2),
                };
                let (a, b) = (head[i0] as f64, head[i1] as f64);
                head[i0] = (a * c - b * s) as f32;
                head[i1] = (a * s + b * c) as f32;
            }
        }
    }
}

/// Reads row `r` (length `len`) of an f32 or f16 cache as f32.
pub fn cache_row(cache: TensorView, r: usize, len: usize, out: &mut [f32]) {
    let bytes = cache.ty.dtype.bytes_for(len).unwrap_or(0);
    dequantize_row(cache.ty.dtype, &cache.data[r * bytes..(r + 1) * bytes], out);
}

/// Writes row i of `x` at row `pos[i]` of the cache `out` (f32 or f16).
pub fn kv_store(x: &[f32], c: usize, pos: &[i32], out: &mut TensorViewMut) -> Result<(), OpError> {
    let ctx = out.ty.shape[0];
    let dtype = out.ty.dtype;
    let bytes = dtype.bytes_for(c).unwrap_or(0);
    for (i, &p) in pos.iter().enumerate() {
        let r = check_index("kv_store", "position", p, ctx)?;
        let dst = &mut out.data[r * bytes..(r + 1) * bytes];
        crate::quant::quantize_row(dtype, &x[i * c..(i + 1) * c], dst);
    }
    Ok(())
}

/// Head layout of an attention op.
#[derive(Clone, Copy, Debug)]
pub struct AttentionShape {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub scale: f32,
    /// Sliding window: a query at position p sees only keys j with p − j < window.
    pub window: Option<usize>,
}

impl AttentionShape {
    /// The first cache row a query at position `last` sees.
    #[inline]
    pub fn first_key(&self, last: usize) -> usize {
        match self.window {
            Some(w) => (last + 1).saturating_sub(w),
            None => 0,
        }
    }
}

/// Causal grouped-query attention over the cache: query row i attends cache
/// rows first..=pos[i] (first = 0, or pos[i] + 1 − window with a sliding
/// window); query head h reads kv head h / (n_head / n_kv_head).
pub fn attention(
    s: &AttentionShape,
    q: &[f32],
    k: TensorView,
    v: TensorView,
    pos: &[i32],
    out: &mut [f32],
) -> Result<(), OpError> {
    let ctx = k.ty.shape[0];
    let kv_row = s.n_kv_head * s.head_dim;
    let group = s.n_head / s.n_kv_head;
    let hd = s.head_dim;
    let mut krow = vec![0f32; kv_row];
    let mut scores = Vec::new();
    for (i, &p) in pos.iter().enumerate() {
        let last = check_index("attention", "position", p, ctx)?;
        let first = s.first_key(last);
        for h in 0..s.n_head {
            let kvh = h / group;
            let qh = &q[(i * s.n_head + h) * hd..(i * s.n_head + h + 1) * hd];
            scores.clear();
            for j in first..=last {
                cache_row(k, j, kv_row, &mut krow);
                let kh = &krow[kvh * hd..(kvh + 1) * hd];
                let dot: f64 = qh.iter().zip(kh).map(|(a, b)| *a as f64 * *b as f64).sum();
                scores.push(dot * s.scale as f64);
            }
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0f64;
            for sc in scores.iter_mut() {
                *sc = (*sc - max).exp();
                sum += *sc;
            }
            let mut acc = vec![0f64; hd];
            for (j, w) in (first..).zip(&scores) {
                cache_row(v, j, kv_row, &mut krow);
                for (a, b) in acc.iter_mut().zip(&krow[kvh * hd..(kvh + 1) * hd]) {
                    *a += w / sum * *b as f64;
                }
            }
            let o = &mut out[(i * s.n_head + h) * hd..(i * s.n_head + h + 1) * hd];
            for (dst, a) in o.iter_mut().zip(&acc) {
                *dst = *a as f32;
            }
        }
    }
    Ok(())
}

/// Dequantizes a whole 2-D weight to f32 (tests and tools).
pub fn dequantize_all(dtype: DType, data: &[u8], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; rows * cols];
    let rb = dtype.bytes_for(cols).unwrap_or(0);
    for r in 0..rows {
        dequantize_row(
            dtype,
            &data[r * rb..(r + 1) * rb],
            &mut out[r * cols..(r + 1) * cols],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::TensorType;

    #[test]
    fn rope_rotates_pairs_by_position() {
        // One head of 4 dims, pairs (0,1),(2,3); position 0 is the identity.
        let mut x = vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
        rope_inplace(&mut x, &[0, 1], 4, 4, 10000.0, RopeMode::Normal);
        assert_eq!(&x[..4], &[1.0, 0.0, 1.0, 0.0]);
        assert!((x[4] - 1f32.cos()).abs() < 1e-6 && (x[5] - 1f32.sin()).abs() < 1e-6);
        let a = 0.01f64; // 10000^(-2/4)
        assert!((x[6] as f64 - a.cos()).abs() < 1e-6);
    }

    #[test]
    fn attention_is_causal_and_grouped() {
        // 2 query heads share 1 kv head of dim 2; cache of 3 rows.
        let s = AttentionShape {
            n_head: 2,
            n_kv_head: 1,
            head_dim: 2,
            scale: 1.0,
            window: None,
        };
        let kt = TensorType::new(DType::F32, &[3, 2]);
        let kd: Vec<f32> = vec![1.0, 0.0, 0.0, 1.0, 5.0, 5.0];
        let vd: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0, 100.0, 100.0];
        let k = TensorView {
            ty: &kt,
            data: bytemuck::cast_slice(&kd),
        };
        let v = TensorView {
            ty: &kt,
            data: bytemuck::cast_slice(&vd),
        };
        let q = vec![0.0, 0.0, 0.0, 0.0];
        let mut out = vec![0f32; 4];
        attention(&s, &q, k, v, &[1], &mut out).unwrap();
        // Equal scores over rows 0..=1 only: the mean of v rows 0 and 1; row 2 unseen.
        assert_eq!(out, vec![2.0, 3.0, 2.0, 3.0]);
        assert!(attention(&s, &q, k, v, &[3], &mut out).is_err());
        // A window of 2 at position 2 sees rows 1 and 2 only; of 1, the row itself.
        let w2 = AttentionShape {
            window: Some(2),
            ..s
        };
        attention(&w2, &q, k, v, &[2], &mut out).unwrap();
        assert_eq!(out, vec![51.5, 52.0, 51.5, 52.0]);
        let w1 = AttentionShape {
            window: Some(1),
            ..s
        };
        attention(&w1, &q, k, v, &[1], &mut out).unwrap();
        assert_eq!(out, vec![3.0, 4.0, 3.0, 4.0]);
        // A window wider than the position changes nothing.
        let w9 = AttentionShape {
            window: Some(9),
            ..s
        };
        attention(&w9, &q, k, v, &[1], &mut out).unwrap();
        assert_eq!(out, vec![2.0, 3.0, 2.0, 3.0]);
    }

    #[test]
    fn geglu_and_scale() {
        assert_eq!(gelu_tanh(0.0), 0.0);
        assert!((gelu_tanh(1.0) - 0.841_192).abs() < 1e-6);
        assert!((gelu_tanh(-3.0) + 0.003_637_392).abs() < 1e-8);
        assert_eq!(gelu_tanh(10.0), 10.0);
        assert_eq!(gelu_tanh(-10.0), 0.0);
        let t = TensorType::new(DType::F32, &[1, 2]);
        let gate: Vec<f32> = vec![1.0, -3.0];
        let up: Vec<f32> = vec![2.0, 4.0];
        let mut out_data = vec![0f32; 2];
        let mut out = TensorViewMut {
            ty: &t,
            data: bytemuck::cast_slice_mut(&mut out_data),
        };
        let gate_view = TensorView {
            ty: &t,
            data: bytemuck::cast_slice(&gate),
        };
        let up_view = TensorView {
            ty: &t,
            data: bytemuck::cast_slice(&up),
        };
        execute(&Op::GeGlu, &[Some(gate_view), Some(up_view)], &mut out).unwrap();
        assert_eq!(
            out.f32().to_vec(),
            vec![gelu_tanh(1.0) * 2.0, gelu_tanh(-3.0) * 4.0]
        );
        execute(&Op::Scale { factor: 0.5 }, &[None], &mut out).unwrap();
        assert_eq!(
            out.f32().to_vec(),
            vec![gelu_tanh(1.0), gelu_tanh(-3.0) * 2.0]
        );
    }

    #[test]
    fn fake_quant_follows_qnn_convention() {
        // Range [-1, 2] in uint8: scale 3/255, offset -85 (zero exactly representable).
        let (scale, offset) = (3.0 / 255.0, -85);
        assert_eq!(fake_quant(0.0, scale, offset, 255), 0.0);
        assert!((fake_quant(1.0, scale, offset, 255) - 1.0).abs() <= scale / 2.0);
        assert!((fake_quant(5.0, scale, offset, 255) - 2.0).abs() <= scale); // clipped high
        assert!((fake_quant(-5.0, scale, offset, 255) + 1.0).abs() <= scale); // clipped low
    }

    #[test]
    fn gelu_and_norms() {
        assert_eq!(gelu(0.0), 0.0);
        assert!((gelu(1.0) - 0.841_344_8).abs() < 1e-6);
        assert!((gelu(-3.0) + 0.004_049_694).abs() < 1e-7);
        let mut x = vec![1.0, 2.0, 3.0, 4.0];
        layer_norm_inplace(&mut x, 4, 0.0, &[1.0; 4], &[0.5; 4]);
        let mean: f32 = x.iter().sum::<f32>() / 4.0;
        assert!((mean - 0.5).abs() < 1e-6);
        let mut y = vec![3.0, 4.0];
        l2_norm_inplace(&mut y, 2, 1e-12);
        assert_eq!(y, vec![0.6, 0.8]);
    }

    #[test]
    fn encoder_attention_ignores_padding_and_pool_averages() {
        // One sequence of 3 rows, 1 head of dim 1; row 2 is padding.
        let q = [0.0, 0.0, 0.0];
        let v = [1.0, 3.0, 100.0];
        let mask = [1.0, 1.0, 0.0];
        let mut out = [0f32; 3];
        encoder_attention(1, 1, 1.0, 3, &q, &q, &v, &mask, &mut out);
        assert_eq!(out, [2.0, 2.0, 2.0]);
        let mut pooled = [0f32; 1];
        mean_pool(&v, 1, &mask, 3, &mut pooled);
        assert_eq!(pooled, [2.0]);
    }

    #[test]
    fn rms_norm_unit_rms() {
        let mut x = vec![3.0, 4.0, 0.0, 0.0];
        rms_norm_inplace(&mut x, 4, 0.0);
        let rms: f32 = (x.iter().map(|v| v * v).sum::<f32>() / 4.0).sqrt();
        assert!((rms - 1.0).abs() < 1e-6);
    }

    #[test]
    fn get_rows_rejects_bad_ids() {
        let t = TensorType::new(DType::F32, &[2, 2]);
        let d: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0];
        let view = TensorView {
            ty: &t,
            data: bytemuck::cast_slice(&d),
        };
        let mut out = vec![0f32; 2];
        get_rows(view, &[1], &mut out).unwrap();
        assert_eq!(out, vec![3.0, 4.0]);
        assert!(get_rows(view, &[2], &mut out).is_err());
        assert!(get_rows(view, &[-1], &mut out).is_err());
    }
}
