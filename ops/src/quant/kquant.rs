//! Shared machinery of the K-quants (Q4_K, Q5_K, Q6_K): super-blocks of 256
//! values split into sub-blocks that each get their own scale (and, for the
//! asymmetric types, minimum), the scales themselves quantized against one
//! f16 super-block scale.
//!
//! The fitting routines reproduce ggml's reference (no importance matrix)
//! quantizers operation for operation: every f32 product and sum happens in
//! the same order and with the same rounding, so the chosen codes, and hence
//! the bytes, are identical. Keep it that way when editing: reordering a sum
//! or fusing a multiply-add changes output bytes.

use super::{f16_at, put_f16};

/// Elements per K-quant super-block.
pub const QK_K: usize = 256;

/// Bytes of the packed 6-bit scales and minimums of Q4_K and Q5_K.
pub const K_SCALE_SIZE: usize = 12;

/// Rounds to the nearest integer, ties to even, the way ggml does: adding
/// 1.5·2^23 pushes the integer part into the low mantissa bits (the addition
/// itself rounds to nearest even). Exact for |x| < 2^22; the same garbage as
/// ggml's outside that range.
#[inline]
pub fn nearest_int(x: f32) -> i32 {
    let shifted = x + 12_582_912.0;
    (shifted.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// How `fit_scale_min` searches for a better scale than the plain
/// range/nmax one: it tries inverse scales (nmax + rmin + rdelta·k)/range for
/// k = 0..=nstep and keeps the least-squares fit with the smallest weighted
/// error. As in ggml, "range" and the code origin are `max − offset` and
/// `offset`, where the offset is the best fit's so far: once a trial wins,
/// later trials are measured from its (fitted) offset, not from the data's
/// minimum.
#[derive(Clone, Copy, Debug)]
pub struct ScaleSearch {
    pub rmin: f32,
    pub rdelta: f32,
    pub nstep: i32,
    /// Weighted absolute instead of squared error.
    pub use_mad: bool,
}

/// Weighted squared (or absolute) error of one reconstructed value.
#[inline]
fn weighted_err(scale: f32, code: u8, offset: f32, x: f32, w: f32, use_mad: bool) -> f32 {
    let diff = scale * code as f32 + offset - x;
    let e = if use_mad { diff.abs() } else { diff * diff };
    w * e
}

/// Codes `x` as `scale · code − min` with codes in `0..=nmax` and `min ≥ 0`
/// (ggml's `make_qkx2_quants`). Writes the codes to `codes`, uses `scratch`
/// (same length) for trial codes, and returns `(scale, min)`.
pub fn fit_scale_min(
    x: &[f32],
    weights: &[f32],
    nmax: i32,
    search: ScaleSearch,
    codes: &mut [u8],
    scratch: &mut [u8],
) -> (f32, f32) {
    let n = x.len();
    debug_assert!(n > 0 && weights.len() == n && codes.len() == n && scratch.len() == n);

    let mut lo = x[0];
    let mut hi = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < lo {
            lo = x[i];
        }
        if x[i] > hi {
            hi = x[i];
        }
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    // The offset is never positive: a block of positive values starts at 0.
    if lo > 0.0 {
        lo = 0.0;
    }
    if hi == lo {
        codes.fill(0);
        return (0.0, -lo);
    }

    let code_of =
        |inv: f32, v: f32, origin: f32| nearest_int(inv * (v - origin)).clamp(0, nmax) as u8;

    let inv0 = nmax as f32 / (hi - lo);
    let mut scale = 1.0 / inv0;
    let mut offset = lo;
    let mut best = 0f32;
    for i in 0..n {
        codes[i] = code_of(inv0, x[i], lo);
        best += weighted_err(scale, codes[i], offset, x[i], weights[i], search.use_mad);
    }
    if search.nstep < 1 {
        return (scale, -offset);
    }

    for step in 0..=search.nstep {
        // `offset` may have moved to a previous trial's fit (see ScaleSearch).
        let inv = (search.rmin + search.rdelta * step as f32 + nmax as f32) / (hi - offset);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let c = code_of(inv, x[i], offset);
            scratch[i] = c;
            let l = c as f32;
            let w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        // Weighted least squares for x ≈ s·l + m.
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut s = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if m > 0.0 {
                m = 0.0;
                s = sum_xl / sum_l2;
            }
            let mut err = 0f32;
            for i in 0..n {
                err += weighted_err(s, scratch[i], m, x[i], weights[i], search.use_mad);
            }
            if err < best {
                codes.copy_from_slice(scratch);
                best = err;
                scale = s;
                offset = m;
            }
        }
    }
    (scale, -offset)
}

/// Below this a group counts as all zeros (ggml's `GROUP_MAX_EPS`).
pub const GROUP_MAX_EPS: f32 = 1e-15;

/// Codes `x` symmetrically as `scale · (code − nmax)` with codes in
/// `0..2·nmax`, weighting each value by its square (ggml's `make_qx_quants`
/// with `rmse_type` 1 and no importance weights). Returns the scale; the sign
/// of the scale is chosen so that the value of largest magnitude gets code 0.
pub fn fit_symmetric(x: &[f32], nmax: i32, codes: &mut [i8]) -> f32 {
    let mut amax = 0f32;
    let mut max = 0f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        codes.fill(0);
        return 0.0;
    }
    let level = |inv: f32, v: f32| nearest_int(inv * v).clamp(-nmax, nmax - 1);
    // Least-squares sums Σw·x·l and Σw·l² with w = x².
    let sums = |inv: f32| {
        let (mut sumlx, mut suml2) = (0f32, 0f32);
        for &v in x {
            let l = level(inv, v) as f32;
            let w = v * v;
            sumlx += w * v * l;
            suml2 += w * l * l;
        }
        (sumlx, suml2)
    };

    let inv0 = -(nmax as f32) / max;
    for (c, &v) in codes.iter_mut().zip(x) {
        *c = (level(inv0, v) + nmax) as i8;
    }
    let (sumlx, suml2) = sums(inv0);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;

    for k in (-9..=9).filter(|&k| k != 0) {
        let inv = -(nmax as f32 + 0.1 * k as f32) / max;
        let (sumlx, suml2) = sums(inv);
        // Keep the trial if its fitted scale explains more of Σw·x².
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (c, &v) in codes.iter_mut().zip(x) {
                *c = (level(inv, v) + nmax) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// The 6-bit scale and minimum codes of sub-block `j` (0..8) from the packed
/// 12 bytes of a Q4_K/Q5_K block.
///
/// Bytes 0..4 hold scales 0..4 and bytes 4..8 minimums 0..4 in their low six
/// bits; sub-blocks 4..8 keep their low nibbles in bytes 8..12 (scale low,
/// minimum high) and their top two bits in the spare top bits of bytes 0..8.
#[inline]
pub fn scale_min_k4(j: usize, packed: &[u8]) -> (u8, u8) {
    if j < 4 {
        (packed[j] & 0x3f, packed[j + 4] & 0x3f)
    } else {
        let sc = (packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4);
        let mn = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
        (sc, mn)
    }
}

/// Packs eight 6-bit (scale, minimum) code pairs into the 12-byte layout
/// `scale_min_k4` reads.
pub fn pack_scale_min_k4(sc: &[u8; 8], mn: &[u8; 8]) -> [u8; K_SCALE_SIZE] {
    let mut p = [0u8; K_SCALE_SIZE];
    for j in 0..4 {
        p[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        p[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
        p[j + 8] = (sc[j + 4] & 0x0f) | ((mn[j + 4] & 0x0f) << 4);
    }
    p
}

/// Quantizes one super-block of 256 values for the asymmetric K-quants
/// (Q4_K with `nmax` 15, Q5_K with 31), as ggml's reference does: fit each
/// 32-value sub-block with `fit_scale_min`, quantize the sub-block scales and
/// minimums to 6 bits against the largest of each, then re-code every value
/// against its sub-block's dequantized scale and minimum.
///
/// Writes `d`, `dmin` (f16, little-endian) to `head[0..4]` and the packed
/// scales to `head[4..16]`; returns the codes (0..=nmax) in natural order.
pub fn quantize_scale_min_superblock(
    x: &[f32],
    nmax: i32,
    search: ScaleSearch,
    head: &mut [u8],
) -> [u8; QK_K] {
    debug_assert_eq!(x.len(), QK_K);
    let mut codes = [0u8; QK_K];
    let mut scratch = [0u8; 32];
    let mut weights = [0f32; 32];
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let mut max_scale = 0f32;
    let mut max_min = 0f32;

    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let (s, m) = fit_scale_min(
            xs,
            &weights,
            nmax,
            search,
            &mut codes[32 * j..32 * j + 32],
            &mut scratch,
        );
        scales[j] = s;
        mins[j] = m;
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }

    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..8 {
        // ggml stores nearest_int into a byte before clamping.
        sc[j] = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        mn[j] = (nearest_int(inv_min * mins[j]) as u8).min(63);
    }
    put_f16(&mut head[0..2], max_scale / 63.0);
    put_f16(&mut head[2..4], max_min / 63.0);
    let packed = pack_scale_min_k4(&sc, &mn);
    head[4..4 + K_SCALE_SIZE].copy_from_slice(&packed);

    // Re-code against the scales as they will be decoded.
    let d = f16_at(&head[0..2]);
    let dmin = f16_at(&head[2..4]);
    for j in 0..8 {
        let (s, m) = scale_min_k4(j, &packed);
        let dj = d * s as f32;
        if dj == 0.0 {
            // ggml keeps the codes of the first fit here.
            continue;
        }
        let mj = dmin * m as f32;
        for i in 32 * j..32 * j + 32 {
            codes[i] = nearest_int((x[i] + mj) / dj).clamp(0, nmax) as u8;
        }
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        for (x, want) in [
            (0.5f32, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (-2.5, -2),
            (0.49999997, 0),
            (3.7, 4),
            (-3.7, -4),
            (-0.0, 0),
            (4_194_303.0, 4_194_303),
            (-4_194_303.0, -4_194_303),
        ] {
            assert_eq!(nearest_int(x), want, "{x}");
            assert_eq!(nearest_int(x), x.round_ties_even() as i32, "{x}");
        }
    }

    #[test]
    fn scale_min_packing_round_trips() {
        let sc = [0, 1, 17, 63, 32, 15, 48, 63];
        let mn = [63, 2, 31, 0, 5, 16, 47, 33];
        let p = pack_scale_min_k4(&sc, &mn);
        for j in 0..8 {
            assert_eq!(scale_min_k4(j, &p), (sc[j], mn[j]), "sub-block {j}");
        }
    }
}
