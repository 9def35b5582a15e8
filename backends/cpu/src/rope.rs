//! Rotary position embedding, in place: the angles of a row are computed
//! once (f64 powers and trigonometry) and applied to every head of that row.
//! The rotation itself is done in f64 too, so the result is bit-identical to
//! the reference kernel: the int8 activation path downstream amplifies even
//! last-bit differences into visible logit changes.

use rayon::prelude::*;
use wisp_ops::RopeMode;

/// Rotates the first `n_dims` dimensions of each head of each row of `x` by
/// the row's position.
pub fn rope_inplace(
    x: &mut [f32],
    pos: &[i32],
    head_dim: usize,
    n_dims: usize,
    base: f32,
    mode: RopeMode,
) {
    let n = pos.len().max(1);
    let d = x.len() / n;
    let half = n_dims / 2;
    let inv_freq: Vec<f64> = (0..half)
        .map(|j| (base as f64).powf(-2.0 * j as f64 / n_dims as f64))
        .collect();
    let rows_per_task = (64 * 1024 / (d * 4).max(1)).max(1);
    x.par_chunks_mut(d * rows_per_task)
        .zip(pos.par_chunks(rows_per_task))
        .for_each(|(rows, ps)| {
            let mut cs = vec![(0f64, 0f64); half];
            for (row, &p) in rows.chunks_exact_mut(d).zip(ps) {
                for (c, f) in cs.iter_mut().zip(&inv_freq) {
                    let a = p as f64 * f;
                    *c = (a.cos(), a.sin());
                }
                for head in row.chunks_exact_mut(head_dim) {
                    match mode {
                        RopeMode::Normal => {
                            for (pair, &(c, s)) in head[..n_dims].chunks_exact_mut(2).zip(&cs) {
                                let (a, b) = (pair[0] as f64, pair[1] as f64);
                                pair[0] = (a * c - b * s) as f32;
                                pair[1] = (a * s + b * c) as f32;
                            }
                        }
                        RopeMode::Neox => {
                            let (lo, hi) = head[..n_dims].split_at_mut(half);
                            for ((a, b), &(c, s)) in lo.iter_mut().zip(hi.iter_mut()).zip(&cs) {
                                let (x0, x1) = (*a as f64, *b as f64);
                                *a = (x0 * c - x1 * s) as f32;
                                *b = (x0 * s + x1 * c) as f32;
                            }
                        }
                    }
                }
            }
        });
}
