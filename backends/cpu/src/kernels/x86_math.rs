//! AVX2 elementwise transcendental kernels (GELU in both forms), shared by the
//! AVX2 and AVX-512 tables: eight lanes at a time, f32 throughout.
//!
//! * `exp`: Cephes-style — `x = n·ln2 + r` (ln2 split in two for an exact
//!   product), a degree-6 polynomial for `e^r` on |r| ≤ ln2/2, and `2^n` built
//!   in the exponent bits; about 1 ulp on the clamped range.
//! * GELU (tanh form, Gemma): `0.5·x·(1 + tanh(u)) = x / (1 + e^(−2u))` with
//!   `u = √(2/π)·(x + 0.044715·x³)` — no cancellation on either side.
//! * GELU (erf form, BERT): `0.5·x·(1 + erf(x/√2))` through `c = erfc(|x|/√2)`
//!   (Numerical Recipes' Chebyshev fit, fractional error < 1.2e-7):
//!   `1 + erf = 2 − c` for x ≥ 0 and `c` for x < 0, so small tails keep their
//!   relative precision.
//!
//! Relative error against the f64 reference stays below ~1e-6 (tested).

#![deny(unsafe_op_in_unsafe_fn)]

use core::arch::x86_64::*;

/// e^x, lane-wise: 0 below −87.3, +inf above 88.7.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp8(x: __m256) -> __m256 {
    let over = _mm256_cmp_ps::<_CMP_GT_OQ>(x, _mm256_set1_ps(88.7));
    let x = _mm256_min_ps(
        _mm256_max_ps(x, _mm256_set1_ps(-87.3)),
        _mm256_set1_ps(88.7),
    );
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    // r = x − n·ln2, ln2 = 0.693359375 − 2.12194440e−4 (the first part exact in 9 bits).
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm256_set1_ps(1.987_569_1e-4);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.398_199_9e-3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.333_452e-3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.166_579_6e-2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.666_666_5e-1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5));
    let r2 = _mm256_mul_ps(r, r);
    let e = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0));
    // 2^n: n in [−126, 128] after the clamp; 2^128 would overflow the exponent,
    // so split as 2^(n−1)·2.
    let ni = _mm256_cvtps_epi32(n);
    let pow = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
        ni,
        _mm256_set1_epi32(126),
    )));
    let y = _mm256_mul_ps(_mm256_mul_ps(e, pow), _mm256_set1_ps(2.0));
    _mm256_blendv_ps(y, _mm256_set1_ps(f32::INFINITY), over)
}

/// GELU, tanh form, on eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn gelu_tanh8(x: __m256) -> __m256 {
    let x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    let u = _mm256_mul_ps(
        _mm256_set1_ps(0.797_884_6),
        _mm256_fmadd_ps(x3, _mm256_set1_ps(0.044_715), x),
    );
    let e = exp8(_mm256_mul_ps(u, _mm256_set1_ps(-2.0)));
    _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0), e))
}

/// GELU, erf form, on eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn gelu_erf8(x: __m256) -> __m256 {
    let z = _mm256_mul_ps(
        _mm256_andnot_ps(_mm256_set1_ps(-0.0), x),
        _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2),
    );
    let t = _mm256_div_ps(
        _mm256_set1_ps(1.0),
        _mm256_fmadd_ps(z, _mm256_set1_ps(0.5), _mm256_set1_ps(1.0)),
    );
    const C: [f32; 10] = [
        -1.265_512_2,
        1.000_023_7,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_204,
        1.488_515_9,
        -0.822_152_23,
        0.170_872_77,
    ];
    let mut p = _mm256_set1_ps(C[9]);
    for &c in C[..9].iter().rev() {
        p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c));
    }
    let c = _mm256_mul_ps(t, exp8(_mm256_fnmadd_ps(z, z, p)));
    let neg = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_setzero_ps());
    let one_plus_erf = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0), c), c, neg);
    _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5), x), one_plus_erf)
}

/// Applies `f` to `x` in place, eight lanes at a time (the tail through a
/// zero-padded buffer).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn map8(x: &mut [f32], f: impl Fn(__m256) -> __m256) {
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        // SAFETY: `c` is exactly 8 floats.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), f(_mm256_loadu_ps(c.as_ptr()))) };
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let mut buf = [0f32; 8];
        buf[..tail.len()].copy_from_slice(tail);
        // SAFETY: `buf` is exactly 8 floats.
        unsafe { _mm256_storeu_ps(buf.as_mut_ptr(), f(_mm256_loadu_ps(buf.as_ptr()))) };
        let n = tail.len();
        tail.copy_from_slice(&buf[..n]);
    }
}

/// `x[i] = e^(x[i] − shift)`; returns Σ x[i] (a softmax's numerators and denominator).
///
/// # Safety
/// AVX2 and FMA available.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn exp_sum(x: &mut [f32], shift: f32) -> f32 {
    let sv = _mm256_set1_ps(shift);
    let mut acc = _mm256_setzero_ps();
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        // SAFETY: `c` is exactly 8 floats.
        unsafe {
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), sv));
            _mm256_storeu_ps(c.as_mut_ptr(), e);
            acc = _mm256_add_ps(acc, e);
        }
    }
    let mut sum = {
        let s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    };
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let mut buf = [f32::NEG_INFINITY; 8];
        buf[..tail.len()].copy_from_slice(tail);
        // SAFETY: `buf` is exactly 8 floats.
        unsafe {
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(buf.as_ptr()), sv));
            _mm256_storeu_ps(buf.as_mut_ptr(), e);
        }
        let n = tail.len();
        tail.copy_from_slice(&buf[..n]);
        sum += buf[..n].iter().sum::<f32>();
    }
    sum
}

/// `row = softmax(row · scale + bias)` in place: a fused scale-and-mask pass
/// that also finds the maximum, [`exp_sum`], and one scaling pass. A row whose
/// every position is masked becomes zeros (returns false).
///
/// # Safety
/// AVX2 and FMA available; `row.len() == bias.len()`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn softmax_row(row: &mut [f32], scale: f32, bias: &[f32]) -> bool {
    debug_assert_eq!(row.len(), bias.len());
    let n8 = row.len() / 8 * 8;
    let sv = _mm256_set1_ps(scale);
    let mut mv = _mm256_set1_ps(f32::NEG_INFINITY);
    for i in (0..n8).step_by(8) {
        // SAFETY: i + 8 <= n8 <= len of both slices.
        unsafe {
            let x = _mm256_fmadd_ps(
                _mm256_loadu_ps(row.as_ptr().add(i)),
                sv,
                _mm256_loadu_ps(bias.as_ptr().add(i)),
            );
            _mm256_storeu_ps(row.as_mut_ptr().add(i), x);
            mv = _mm256_max_ps(mv, x);
        }
    }
    let mut buf = [0f32; 8];
    // SAFETY: 8 floats into an 8-float array.
    unsafe { _mm256_storeu_ps(buf.as_mut_ptr(), mv) };
    let mut max = buf.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for i in n8..row.len() {
        row[i] = row[i].mul_add(scale, bias[i]);
        max = max.max(row[i]);
    }
    if max == f32::NEG_INFINITY {
        row.fill(0.0);
        return false;
    }
    // SAFETY: forwarded (AVX2 + FMA).
    let inv = _mm256_set1_ps(1.0 / unsafe { exp_sum(row, max) });
    let mut chunks = row.chunks_exact_mut(8);
    for c in &mut chunks {
        // SAFETY: `c` is exactly 8 floats.
        unsafe {
            _mm256_storeu_ps(
                c.as_mut_ptr(),
                _mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), inv),
            )
        };
    }
    let s = _mm_cvtss_f32(_mm256_castps256_ps128(inv));
    for x in chunks.into_remainder() {
        *x *= s;
    }
    true
}

/// `g[i] = gelu_tanh(g[i]) · u[i]` (Gemma's GeGLU).
///
/// # Safety
/// AVX2 and FMA available; `g.len() == u.len()`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn geglu(g: &mut [f32], u: &[f32]) {
    debug_assert_eq!(g.len(), u.len());
    map8(g, |v| gelu_tanh8(v));
    for (g, u) in g.iter_mut().zip(u) {
        *g *= u;
    }
}

/// `g[i] = silu(g[i]) · u[i]` = `g / (1 + e^(−g)) · u` (SwiGLU).
///
/// # Safety
/// AVX2 and FMA available; `g.len() == u.len()`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn swiglu(g: &mut [f32], u: &[f32]) {
    debug_assert_eq!(g.len(), u.len());
    map8(g, |v| silu8(v));
    for (g, u) in g.iter_mut().zip(u) {
        *g *= u;
    }
}

/// SiLU on eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn silu8(v: __m256) -> __m256 {
    let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), v));
    _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0), e))
}

/// `x[i] = gelu_erf(x[i])` (BERT's GELU).
///
/// # Safety
/// AVX2 and FMA available.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn gelu_erf(x: &mut [f32]) {
    map8(x, |v| gelu_erf8(v));
}

/// `c[i·ldc + j] = Σ_p a[i·lda + p] · b[p·ldb + j]` for i < m, j < n, p < k
/// (overwrites `c`): tiles of 4 rows × 16 columns in eight ymm accumulators,
/// one broadcast of `a` per row and two loads of `b` per step of `p`; the
/// last rows go through the same tile with fewer rows (`R` is a constant, so
/// the accumulators stay in registers), the columns past the last multiple
/// of 16 through a scalar loop.
///
/// # Safety
/// AVX2 and FMA available; the slices hold every element the shapes name
/// (checked by `check_gemm`).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_f32(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
) {
    let mut i = 0;
    while i < m {
        let rows = (m - i).min(4);
        // SAFETY: forwarded; rows i..i+rows exist.
        unsafe {
            match rows {
                4 => tile_rows::<4>(i, n, k, a, lda, b, ldb, c, ldc),
                3 => tile_rows::<3>(i, n, k, a, lda, b, ldb, c, ldc),
                2 => tile_rows::<2>(i, n, k, a, lda, b, ldb, c, ldc),
                _ => tile_rows::<1>(i, n, k, a, lda, b, ldb, c, ldc),
            }
        }
        i += rows;
    }
}

/// Rows `i0..i0 + R` of [`gemm_f32`].
///
/// # Safety
/// As [`gemm_f32`], with rows `i0..i0 + R` inside `m`.
#[inline]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_rows<const R: usize>(
    i0: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
) {
    let n16 = n / 16 * 16;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    for j in (0..n16).step_by(16) {
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for p in 0..k {
            // SAFETY: b holds row p's columns j..j+16 (j + 16 <= n, p < k), and a holds
            // rows i0..i0+R's column p (shapes checked by the caller).
            unsafe {
                let bp = pb.add(p * ldb + j);
                let (b0, b1) = (_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8)));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av = _mm256_broadcast_ss(&*pa.add((i0 + r) * lda + p));
                    acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let cr = &mut c[(i0 + r) * ldc + j..(i0 + r) * ldc + j + 16];
            // SAFETY: `cr` is exactly 16 floats.
            unsafe {
                _mm256_storeu_ps(cr.as_mut_ptr(), acc[0]);
                _mm256_storeu_ps(cr.as_mut_ptr().add(8), acc[1]);
            }
        }
    }
    for r in i0..i0 + R {
        for j in n16..n {
            let mut s = 0f32;
            for p in 0..k {
                s = a[r * lda + p].mul_add(b[p * ldb + j], s);
            }
            c[r * ldc + j] = s;
        }
    }
}
