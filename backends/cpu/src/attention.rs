//! Causal grouped-query attention over the KV cache, one task per
//! (token, head): scores with SIMD dots against the cache rows, a max-shifted
//! softmax, and the weighted sum of value rows with SIMD axpys. With a sliding
//! window only the last `window` positions up to the query's are read.

use rayon::prelude::*;
use wisp_ops::reference::AttentionShape;
use wisp_ops::{DType, OpError, TensorView};

use crate::kernels::Kernels;

/// out[i, h] = softmax_j(q[i, h] · k[j, kvh] · scale) · v[j, kvh], j ≤ pos[i]
/// (and pos[i] − j < window with a sliding window).
pub fn attention(
    kern: &Kernels,
    s: &AttentionShape,
    q: &[f32],
    k: TensorView,
    v: TensorView,
    pos: &[i32],
    out: &mut [f32],
) -> Result<(), OpError> {
    let ctx = k.ty.shape[0];
    if let Some(&p) = pos.iter().find(|&&p| p < 0 || p as usize >= ctx) {
        return Err(OpError::Invalid {
            op: "attention",
            why: format!("position {p} out of range 0..{ctx}"),
        });
    }
    let hd = s.head_dim;
    let kv_row = s.n_kv_head * hd;
    let group = s.n_head / s.n_kv_head;
    let esize = if k.ty.dtype == DType::F16 { 2 } else { 4 };
    let row_bytes = kv_row * esize;
    let f16 = k.ty.dtype == DType::F16;

    out.par_chunks_mut(hd).enumerate().for_each(|(ih, o)| {
        let (i, h) = (ih / s.n_head, ih % s.n_head);
        let kvh = h / group;
        let last = pos[i] as usize;
        let first = s.first_key(last);
        let qh = &q[ih * hd..(ih + 1) * hd];
        let head = |j: usize| -> std::ops::Range<usize> {
            let start = j * row_bytes + kvh * hd * esize;
            start..start + hd * esize
        };
        let mut scores = crate::scratch::take_f32(0);
        let mut max = f32::NEG_INFINITY;
        for j in first..=last {
            let kr = &k.data[head(j)];
            let d = if f16 {
                (kern.dot_f16_f32)(kr, qh)
            } else {
                (kern.dot_f32)(bytemuck::cast_slice(kr), qh)
            } * s.scale;
            max = max.max(d);
            scores.push(d);
        }
        let sum = (kern.exp_sum)(&mut scores, max);
        let inv = 1.0 / sum;
        o.fill(0.0);
        for (j, w) in (first..).zip(scores.iter()) {
            let vr = &v.data[head(j)];
            if f16 {
                (kern.axpy_f16)(o, w * inv, vr);
            } else {
                (kern.axpy_f32)(o, w * inv, bytemuck::cast_slice(vr));
            }
        }
        crate::scratch::give_f32(scores);
    });
    Ok(())
}
