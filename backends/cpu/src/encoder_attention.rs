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
    // Each task computes one (sequence, head) into its own [S, hd] buffer.
    let heads: Vec<Vec<f32>> = (0..batch * n_head)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / n_head, bh % n_head);
            let rows = b * seq..(b + 1) * seq;
            let m = &mask[rows.clone()];
            let mut kt = vec![0f32; hd * seq];
            for (j, r) in rows.clone().enumerate() {
                for c in 0..hd {
                    kt[c * seq + j] = k[r * d + h * hd + c];
                }
            }
            // scores[i][j] = q_i · k_j, all queries of the sequence at once.
            let mut scores = vec![0f32; seq * seq];
            let q0 = rows.start * d + h * hd;
            (kern.gemm_f32)(seq, seq, hd, &q[q0..], d, &kt, seq, &mut scores, seq);
            let mut inv = vec![0f32; seq];
            for (srow, inv) in scores.chunks_exact_mut(seq).zip(inv.iter_mut()) {
                let mut max = f32::NEG_INFINITY;
                for (s, &mj) in srow.iter_mut().zip(m) {
                    *s = if mj == 0.0 {
                        f32::NEG_INFINITY
                    } else {
                        *s * scale
                    };
                    max = max.max(*s);
                }
                if max == f32::NEG_INFINITY {
                    // Every key masked: the row's output is zero.
                    srow.fill(0.0);
                    continue;
                }
                *inv = 1.0 / (kern.exp_sum)(srow, max);
            }
            // res[i] = Σ_j p_ij · v_j, then scaled by 1 / Σ_j p_ij.
            let mut res = vec![0f32; seq * hd];
            let v0 = rows.start * d + h * hd;
            (kern.gemm_f32)(seq, hd, seq, &scores, seq, &v[v0..], d, &mut res, hd);
            for (o, &s) in res.chunks_exact_mut(hd).zip(&inv) {
                for x in o {
                    *x *= s;
                }
            }
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
