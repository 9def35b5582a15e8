//! Bidirectional (encoder) attention with a padding mask, one task per
//! (sequence, head). The head's keys and values are transposed once into
//! contiguous [head_dim, S] panels, so each query's scores are `head_dim`
//! SIMD axpys of length S and its output `head_dim` SIMD dots of length S,
//! instead of S short dots and S short axpys.

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
            let mut vt = vec![0f32; hd * seq];
            for (j, r) in rows.clone().enumerate() {
                for c in 0..hd {
                    kt[c * seq + j] = k[r * d + h * hd + c];
                    vt[c * seq + j] = v[r * d + h * hd + c];
                }
            }
            let mut res = vec![0f32; seq * hd];
            let mut scores = vec![0f32; seq];
            for (i, r) in rows.enumerate() {
                scores.fill(0.0);
                let qi = &q[r * d + h * hd..r * d + (h + 1) * hd];
                for (c, &qc) in qi.iter().enumerate() {
                    (kern.axpy_f32)(&mut scores, qc * scale, &kt[c * seq..(c + 1) * seq]);
                }
                let mut max = f32::NEG_INFINITY;
                for (s, &mj) in scores.iter_mut().zip(m) {
                    if mj == 0.0 {
                        *s = f32::NEG_INFINITY;
                    }
                    max = max.max(*s);
                }
                let o = &mut res[i * hd..(i + 1) * hd];
                if max == f32::NEG_INFINITY {
                    o.fill(0.0);
                    continue;
                }
                let sum = (kern.exp_sum)(&mut scores, max);
                let inv = 1.0 / sum;
                for (c, oc) in o.iter_mut().enumerate() {
                    *oc = (kern.dot_f32)(&scores, &vt[c * seq..(c + 1) * seq]) * inv;
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
