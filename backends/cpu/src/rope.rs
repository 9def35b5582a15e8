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
    if n == 1 {
        // Decode: every layer rotates the same position with one of a model's
        // one or two bases; the table of that (base, position) is computed once.
        let key = (base.to_bits(), n_dims, pos.first().copied().unwrap_or(0));
        TABLES.with(|t| {
            let mut t = t.borrow_mut();
            if let Some(i) = t.iter().position(|(k, _)| *k == key) {
                rotate_row(x, &t[i].1, head_dim, n_dims, mode);
                return;
            }
            let mut cs = Vec::new();
            angles(key.2, &inv_freqs(base, n_dims), &mut cs);
            rotate_row(x, &cs, head_dim, n_dims, mode);
            if t.len() >= 4 {
                t.remove(0);
            }
            t.push((key, cs));
        });
        return;
    }
    let inv_freq = inv_freqs(base, n_dims);
    let rows_per_task = (64 * 1024 / (d * 4).max(1)).max(1);
    x.par_chunks_mut(d * rows_per_task)
        .zip(pos.par_chunks(rows_per_task))
        .for_each(|(rows, ps)| {
            let mut cs = Vec::with_capacity(inv_freq.len());
            for (row, &p) in rows.chunks_exact_mut(d).zip(ps) {
                angles(p, &inv_freq, &mut cs);
                rotate_row(row, &cs, head_dim, n_dims, mode);
            }
        });
}

/// Rotation tables of recent single-position calls, per thread:
/// `((base bits, n_dims, position), [(cos, sin)])`.
type Tables = Vec<((u32, usize, i32), Vec<(f64, f64)>)>;

thread_local! {
    static TABLES: std::cell::RefCell<Tables> = const { std::cell::RefCell::new(Vec::new()) };
}

/// base^(−2j/n_dims) for each pair j, in f64 as the reference computes it.
fn inv_freqs(base: f32, n_dims: usize) -> Vec<f64> {
    (0..n_dims / 2)
        .map(|j| (base as f64).powf(-2.0 * j as f64 / n_dims as f64))
        .collect()
}

/// (cos, sin) of each pair's angle at position `p`, into `cs` (reused by the caller).
fn angles(p: i32, inv_freq: &[f64], cs: &mut Vec<(f64, f64)>) {
    cs.clear();
    cs.extend(inv_freq.iter().map(|f| {
        let a = p as f64 * f;
        (a.cos(), a.sin())
    }));
}

/// Rotates every head of one row by the angles `cs`.
fn rotate_row(row: &mut [f32], cs: &[(f64, f64)], head_dim: usize, n_dims: usize, mode: RopeMode) {
    let half = n_dims / 2;
    for head in row.chunks_exact_mut(head_dim) {
        match mode {
            RopeMode::Normal => {
                for (pair, &(c, s)) in head[..n_dims].chunks_exact_mut(2).zip(cs) {
                    let (a, b) = (pair[0] as f64, pair[1] as f64);
                    pair[0] = (a * c - b * s) as f32;
                    pair[1] = (a * s + b * c) as f32;
                }
            }
            RopeMode::Neox => {
                let (lo, hi) = head[..n_dims].split_at_mut(half);
                for ((a, b), &(c, s)) in lo.iter_mut().zip(hi.iter_mut()).zip(cs) {
                    let (x0, x1) = (*a as f64, *b as f64);
                    *a = (x0 * c - x1 * s) as f32;
                    *b = (x0 * s + x1 * c) as f32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One-position calls (served from the table cache after the first) stay
    /// bit-identical to the reference for alternating bases, modes and positions.
    #[test]
    fn single_position_cache_matches_reference() {
        let (head_dim, n_dims) = (64usize, 64usize);
        let x: Vec<f32> = (0..3 * head_dim)
            .map(|i| (i as f32 * 0.731).sin() * 3.0)
            .collect();
        for round in 0..3 {
            for (base, mode) in [
                (10_000.0f32, RopeMode::Neox),
                (1_000_000.0, RopeMode::Neox),
                (10_000.0, RopeMode::Normal),
            ] {
                for p in [0i32, 7, 4095] {
                    let mut got = x.clone();
                    rope_inplace(&mut got, &[p], head_dim, n_dims, base, mode);
                    let mut want = x.clone();
                    wisp_ops::reference::rope_inplace(
                        &mut want,
                        &[p],
                        head_dim,
                        n_dims,
                        base,
                        mode,
                    );
                    assert_eq!(got, want, "round {round} base {base} {mode:?} pos {p}");
                }
            }
        }
    }
}
