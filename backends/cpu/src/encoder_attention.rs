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
    // Additive masks, one per sequence: 0 for a kept key, −inf for padding.
    let bias: Vec<f32> = mask
        .iter()
        .map(|&m| if m == 0.0 { f32::NEG_INFINITY } else { 0.0 })
        .collect();
    // Each task computes one (sequence, head) into its own [S, hd] buffer.
    let heads: Vec<Vec<f32>> = (0..batch * n_head)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / n_head, bh % n_head);
            let rows = b * seq..(b + 1) * seq;
            let bias = &bias[rows.clone()];
            let mut kt = crate::scratch::take_f32(hd * seq);
            for (j, r) in rows.clone().enumerate() {
                for c in 0..hd {
                    kt[c * seq + j] = k[r * d + h * hd + c];
                }
            }
            // scores[i][j] = q_i · k_j, all queries of the sequence at once, then
            // each row softmax(scores · scale + mask).
            let mut scores = crate::scratch::take_f32(seq * seq);
            let q0 = rows.start * d + h * hd;
            (kern.gemm_f32)(seq, seq, hd, &q[q0..], d, &kt, seq, &mut scores, seq);
            for srow in scores.chunks_exact_mut(seq) {
                (kern.softmax_row)(srow, scale, bias);
            }
            // res[i] = Σ_j p_ij · v_j.
            let mut res = vec![0f32; seq * hd];
            let v0 = rows.start * d + h * hd;
            (kern.gemm_f32)(seq, hd, seq, &scores, seq, &v[v0..], d, &mut res, hd);
            crate::scratch::give_f32(kt);
            crate::scratch::give_f32(scores);
            res
        })
        .collect();
    for (bh, res) in heads.iter().enumerate() {
        let (b, h) = (bh / n_head, bh % n_head);
        for i in 0..seq {
            let r = b * seq + i;
            out[r * d + h * hd..r * d + (h + 1) * hd].copy_from_slice(&res[i * hd..(i + 1) * hd]);
        }
    }
}
