//! Bidirectional (encoder) attention with a padding mask, one task per
//! (sequence, head), as two small f32 GEMMs around a row softmax: the head's
//! keys are transposed once into a contiguous [head_dim, S] panel, then
//! scores = Q·Kᵀ (S×S), masked, max-shifted and exponentiated in place, and
//! out = P·V with P's rows normalised afterwards.

use rayon::prelude::*;

use crate::kernels::Kernels;

/// out[b·S + i, h] = softmax_j(q_i·k_j·scale | mask_j ≠ 0) · v_j within sequence b.
#[allow(clippy::too_many_arguments)]
pub fn encoder_attention(
    kern: &Kernels,
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
    let batch = q.len() / (d * seq).max(1);
    if batch == 0 || seq == 0 {
        return;
    }
    // Additive masks, one per sequence: 0 for a kept key, −inf for padding.
    let bias: Vec<f32> = mask
        .iter()
        .map(|&m| if m == 0.0 { f32::NEG_INFINITY } else { 0.0 })
        .collect();
    // Each sequence's keys transposed once, [D, S]: head h's panel is rows h·hd..(h+1)·hd.
    let mut kt = crate::scratch::take_f32(batch * d * seq);
    kt.par_chunks_mut(d * seq).enumerate().for_each(|(b, kt)| {
        (kern.transpose_f32)(seq, d, &k[b * seq * d..(b + 1) * seq * d], d, kt, seq)
    });
    // Each task computes one (sequence, head) into its [S, hd] slot of `res`.
    let mut res = crate::scratch::take_f32(batch * n_head * seq * hd);
    res.par_chunks_mut(seq * hd)
        .enumerate()
        .for_each(|(bh, res)| {
            let (b, h) = (bh / n_head, bh % n_head);
            let bias = &bias[b * seq..(b + 1) * seq];
            // scores[i][j] = q_i · k_j, all queries of the sequence at once, then
            // each row softmax(scores · scale + mask).
            let mut scores = crate::scratch::take_f32(seq * seq);
            let q0 = b * seq * d + h * hd;
            let kh = &kt[b * d * seq + h * hd * seq..b * d * seq + (h + 1) * hd * seq];
            (kern.gemm_f32)(seq, seq, hd, &q[q0..], d, kh, seq, &mut scores, seq);
            for srow in scores.chunks_exact_mut(seq) {
                (kern.softmax_row)(srow, scale, bias);
            }
            // res[i] = Σ_j p_ij · v_j.
            (kern.gemm_f32)(seq, hd, seq, &scores, seq, &v[q0..], d, res, hd);
            crate::scratch::give_f32(scores);
        });
    crate::scratch::give_f32(kt);
    for (r, orow) in out[..batch * seq * d].chunks_exact_mut(d).enumerate() {
        let (b, i) = (r / seq, r % seq);
        for (h, o) in orow.chunks_exact_mut(hd).enumerate() {
            let src = ((b * n_head + h) * seq + i) * hd;
            o.copy_from_slice(&res[src..src + hd]);
        }
    }
    crate::scratch::give_f32(res);
}
