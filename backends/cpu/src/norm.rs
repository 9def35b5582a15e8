//! Layer normalisation (BERT) with the SIMD dot kernel for the row
//! statistics: two passes per row (mean, then the variance of the centred
//! values, as the reference does in f64) and one fused scale-and-shift, rows
//! spread over the threads.

use rayon::prelude::*;

use crate::kernels::Kernels;

/// `x[r] = (x[r] − mean) / sqrt(var + eps) · w + b` for each row of length `d`.
pub fn layer_norm(k: &Kernels, x: &mut [f32], d: usize, eps: f32, w: &[f32], b: &[f32]) {
    norm_rows(k, x, None, d, eps, w, b);
}

/// `x[r] = layer_norm(x[r] + y[r])` for each row of length `d` (a residual add
/// and the norm of the sum in one pass over the rows; `x[r]` keeps the norm).
pub fn add_layer_norm(
    k: &Kernels,
    x: &mut [f32],
    y: &[f32],
    d: usize,
    eps: f32,
    w: &[f32],
    b: &[f32],
) {
    assert_eq!(x.len(), y.len(), "add_layer_norm: lengths");
    norm_rows(k, x, Some(y), d, eps, w, b);
}

/// [`layer_norm`] of `x`, or of `x + y` when `y` is given, rows spread over
/// the threads.
fn norm_rows(
    k: &Kernels,
    x: &mut [f32],
    y: Option<&[f32]>,
    d: usize,
    eps: f32,
    w: &[f32],
    b: &[f32],
) {
    assert_eq!(w.len(), d, "layer_norm: weight length");
    assert_eq!(b.len(), d, "layer_norm: bias length");
    if d == 0 {
        return;
    }
    let per = crate::split::rows_per_task(x.len() / d, d) * d;
    x.par_chunks_mut(per).enumerate().for_each(|(c, rows)| {
        for (r, row) in rows.chunks_exact_mut(d).enumerate() {
            if let Some(y) = y {
                // `row + 1·y` fused is the plain sum, with the ISA's vectors (a
                // loop here compiles for the baseline target: SSE2).
                let at = c * per + r * d;
                (k.axpy_f32)(row, 1.0, &y[at..at + d]);
            }
            (k.layer_norm_row)(row, eps, w, b);
        }
    });
}

/// One row: the mean by the SIMD dot kernel against ones, then the variance
/// of the centred values, then the fused scale and shift (the ISA tables
/// without a dedicated row kernel use this).
pub(crate) fn layer_norm_row_generic(k: &Kernels, row: &mut [f32], eps: f32, w: &[f32], b: &[f32]) {
    let d = row.len();
    let ones = [1.0f32; 64];
    let mut sum = 0f32;
    for c in row.chunks(64) {
        sum += (k.dot_f32)(c, &ones[..c.len()]);
    }
    let mean = sum / d as f32;
    for v in row.iter_mut() {
        *v -= mean;
    }
    let var = (k.dot_f32)(row, row) / d as f32;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, &w), &b) in row.iter_mut().zip(w).zip(b) {
        *v = *v * inv * w + b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Isa;

    /// Adding and normalising in one pass equals the add followed by the norm, bit for bit.
    #[test]
    fn add_then_norm_fused() {
        let d = 48;
        let x: Vec<f32> = (0..5 * d)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.3)
            .collect();
        let y: Vec<f32> = (0..5 * d)
            .map(|i| ((i * 11 % 29) as f32 - 14.0) * 0.7)
            .collect();
        let w: Vec<f32> = (0..d).map(|i| 1.0 + i as f32 * 0.01).collect();
        let b: Vec<f32> = (0..d).map(|i| i as f32 * -0.02).collect();
        for isa in Isa::supported() {
            let k = isa.kernels();
            let mut want: Vec<f32> = x.iter().zip(&y).map(|(a, b)| a + b).collect();
            layer_norm(k, &mut want, d, 1e-12, &w, &b);
            let mut got = x.clone();
            add_layer_norm(k, &mut got, &y, d, 1e-12, &w, &b);
            assert_eq!(got, want, "{isa}");
        }
    }

    /// Every ISA within 2e-6 (relative to the row's scale) of the f64 reference,
    /// including rows with a large common offset (BERT's residual stream).
    #[test]
    fn matches_reference() {
        let d = 384;
        let rows = 7;
        let x: Vec<f32> = (0..rows * d)
            .map(|i| {
                ((i * 7919) % 1000) as f32 / 100.0 - 5.0 + if i / d == 3 { 300.0 } else { 0.0 }
            })
            .collect();
        let w: Vec<f32> = (0..d).map(|i| 0.5 + (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..d).map(|i| (i % 5) as f32 * 0.01 - 0.02).collect();
        let mut want = x.clone();
        wisp_ops::reference::layer_norm_inplace(&mut want, d, 1e-12, &w, &b);
        for isa in Isa::supported() {
            let mut got = x.clone();
            layer_norm(isa.kernels(), &mut got, d, 1e-12, &w, &b);
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                assert!((g - e).abs() <= 2e-5, "{isa} [{i}] {g} vs {e}");
            }
        }
    }
}
