//! AVX-512 BF16 versions of the [`super::bf16`] kernels: `vcvtneps2bf16`
//! for rounding, and a register-blocked GEMM of R rows × 32 columns whose
//! every step is one broadcast pair of `a` per row against two vectors of
//! `b` pairs (`vdpbf16ps`: 32 multiply-adds per instruction).

#![deny(unsafe_op_in_unsafe_fn)]

use super::bf16::Bf16Kernels;
use core::arch::x86_64::*;

/// Reachable only through `Bf16Kernels::for_isa`, which checks AVX-512 and
/// AVX512_BF16 at run time first.
pub(super) static KERNELS: Bf16Kernels = Bf16Kernels {
    to_bf16,
    gemm: gemm_bf16,
    softmax_numerators,
};

fn softmax_numerators(row: &mut [f32], scale: f32, bias: &[f32], out: &mut [u16]) -> f32 {
    assert!(
        row.len() == bias.len() && row.len() == out.len(),
        "softmax_numerators: lengths"
    );
    // SAFETY: AVX-512 F/BW/VL and BF16 detected (see KERNELS); lengths checked above.
    unsafe { softmax_numerators_avx512(row, scale, bias, out) }
}

/// # Safety
/// AVX-512 F/BW/VL and BF16 available; equal lengths.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")]
unsafe fn softmax_numerators_avx512(
    row: &mut [f32],
    scale: f32,
    bias: &[f32],
    out: &mut [u16],
) -> f32 {
    let n = row.len();
    if n <= 128 {
        // SAFETY: the caller's contract; n ≤ 128.
        return unsafe { softmax_numerators_short(row, scale, bias, out) };
    }
    let p = row.as_mut_ptr();
    // SAFETY: the AVX-512 set is available (caller); lengths checked by the wrapper.
    let max = unsafe { super::avx512_math::scale_bias_max(row, scale, bias) };
    if max == f32::NEG_INFINITY {
        out.fill(0);
        return 0.0;
    }
    let shift = _mm512_set1_ps(max);
    let mut acc = _mm512_setzero_ps();
    let mut i = 0;
    // Four vectors per step, their exp chains interleaved.
    while i + 64 <= n {
        // SAFETY: i + 64 <= n, the common length.
        unsafe {
            let x: [__m512; 4] =
                core::array::from_fn(|j| _mm512_sub_ps(_mm512_loadu_ps(p.add(i + 16 * j)), shift));
            for (j, e) in super::avx512_math::exp16x4(x).iter().enumerate() {
                acc = _mm512_add_ps(acc, *e);
                let h: __m256i = core::mem::transmute(_mm512_cvtneps_pbh(*e));
                _mm256_storeu_si256(out.as_mut_ptr().add(i + 16 * j).cast(), h);
            }
        }
        i += 64;
    }
    while i < n {
        let m = tail_mask((n - i).min(16));
        // SAFETY: as above; masked-off lanes add nothing and store nothing.
        unsafe {
            let e =
                super::avx512_math::exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p.add(i)), shift));
            acc = _mm512_mask_add_ps(acc, m, acc, e);
            let h: __m256i = core::mem::transmute(_mm512_cvtneps_pbh(e));
            _mm256_mask_storeu_epi16(out.as_mut_ptr().add(i).cast(), m, h);
        }
        i += 16;
    }
    1.0 / _mm512_reduce_add_ps(acc)
}

/// [`softmax_numerators_avx512`] for rows of up to 128 positions (an encoder's
/// usual sequence), the whole row held in eight registers: one pass over
/// memory instead of three (scale and max, exponentials, numerators), the
/// same arithmetic in the same order, so the same results.
///
/// # Safety
/// AVX-512 F/BW/VL and BF16 available; equal lengths, at most 128.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")]
unsafe fn softmax_numerators_short(
    row: &mut [f32],
    scale: f32,
    bias: &[f32],
    out: &mut [u16],
) -> f32 {
    const V: usize = 8;
    let n = row.len();
    debug_assert!(n <= V * 16);
    let (p, b) = (row.as_mut_ptr(), bias.as_ptr());
    let nv = n.div_ceil(16);
    let mask = |j: usize| tail_mask(n.saturating_sub(16 * j).min(16));
    let ninf = _mm512_set1_ps(f32::NEG_INFINITY);
    let sv = _mm512_set1_ps(scale);
    // Lanes past the row are −inf: their exponentials are 0.
    let mut x = [ninf; V];
    let mut mv = ninf;
    for (j, xj) in x.iter_mut().enumerate().take(nv) {
        let m = mask(j);
        // SAFETY: lanes masked to the common length n.
        unsafe {
            let v = _mm512_fmadd_ps(
                _mm512_maskz_loadu_ps(m, p.add(16 * j)),
                sv,
                _mm512_maskz_loadu_ps(m, b.add(16 * j)),
            );
            _mm512_mask_storeu_ps(p.add(16 * j), m, v);
            *xj = _mm512_mask_mov_ps(ninf, m, v);
        }
        mv = _mm512_max_ps(mv, *xj);
    }
    let max = _mm512_reduce_max_ps(mv);
    if max == f32::NEG_INFINITY {
        out.fill(0);
        return 0.0;
    }
    let shift = _mm512_set1_ps(max);
    let mut acc = _mm512_setzero_ps();
    for q in 0..nv.div_ceil(4) {
        let xs: [__m512; 4] = core::array::from_fn(|j| _mm512_sub_ps(x[4 * q + j], shift));
        for (j, e) in super::avx512_math::exp16x4(xs).iter().enumerate() {
            let v = 4 * q + j;
            if v >= nv {
                break;
            }
            acc = _mm512_add_ps(acc, *e);
            // SAFETY: 16-bit lanes masked to the common length n.
            unsafe {
                let h: __m256i = core::mem::transmute(_mm512_cvtneps_pbh(*e));
                _mm256_mask_storeu_epi16(out.as_mut_ptr().add(16 * v).cast(), mask(v), h);
            }
        }
    }
    1.0 / _mm512_reduce_add_ps(acc)
}

/// Mask with the low `n` bits set (`n` <= 16).
#[inline(always)]
fn tail_mask(n: usize) -> __mmask16 {
    debug_assert!(n <= 16);
    ((1u32 << n) - 1) as __mmask16
}

fn to_bf16(x: &[f32], out: &mut [u16]) {
    assert_eq!(x.len(), out.len(), "to_bf16: lengths");
    // SAFETY: AVX-512 F/BW/VL and BF16 detected (see KERNELS); lengths checked above.
    unsafe { to_bf16_avx512(x, out) }
}

/// # Safety
/// AVX-512 F/BW/VL and BF16 available; `x.len() == out.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
unsafe fn to_bf16_avx512(x: &[f32], out: &mut [u16]) {
    let n = x.len();
    let mut i = 0;
    while i < n {
        let m = tail_mask((n - i).min(16));
        // SAFETY: lanes i..i+16 masked to both lengths.
        unsafe {
            let v = _mm512_maskz_loadu_ps(m, x.as_ptr().add(i));
            let h: __m256i = core::mem::transmute(_mm512_cvtneps_pbh(v));
            _mm256_mask_storeu_epi16(out.as_mut_ptr().add(i).cast(), m, h);
        }
        i += 16;
    }
}

#[allow(clippy::too_many_arguments)]
fn gemm_bf16(
    m: usize,
    n: usize,
    k: usize,
    a: &[u32],
    lda: usize,
    b: &[u32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
) {
    super::check_gemm("gemm_bf16", (m, n, k), (a, lda), (b, ldb), (c, ldc));
    let mut i = 0;
    while i < m {
        let rows = (m - i).min(4);
        // SAFETY: AVX-512 and BF16 detected (see KERNELS); shapes checked above;
        // rows i..i+rows exist.
        unsafe {
            match rows {
                4 => rows_bf16::<4>(i, n, k, a, lda, b, ldb, c, ldc),
                3 => rows_bf16::<3>(i, n, k, a, lda, b, ldb, c, ldc),
                2 => rows_bf16::<2>(i, n, k, a, lda, b, ldb, c, ldc),
                _ => rows_bf16::<1>(i, n, k, a, lda, b, ldb, c, ldc),
            }
        }
        i += rows;
    }
}

/// Rows `i0..i0 + R`: tiles of R rows × 32 columns in 2R accumulators, the
/// last columns with masked loads and stores.
///
/// # Safety
/// AVX-512 and BF16 available; shapes checked by `check_gemm`; rows
/// `i0..i0 + R` inside `m`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn rows_bf16<const R: usize>(
    i0: usize,
    n: usize,
    k: usize,
    a: &[u32],
    lda: usize,
    b: &[u32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
) {
    let (pa, pb, pc) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    let mut j = 0;
    while j < n {
        let w = (n - j).min(32);
        let m0 = tail_mask(w.min(16));
        let m1 = tail_mask(w.saturating_sub(16));
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for p in 0..k {
            // SAFETY: columns j..j+w of pair-row p of b and pair p of rows i0..i0+R
            // of a exist (shapes checked); masked-off lanes are not read.
            unsafe {
                let bp = pb.add(p * ldb + j);
                let b0: __m512bh = core::mem::transmute(_mm512_maskz_loadu_epi32(m0, bp.cast()));
                // `wrapping_add`: with w ≤ 16 this address may lie past the slice; m1 is 0 then.
                let b1: __m512bh =
                    core::mem::transmute(_mm512_maskz_loadu_epi32(m1, bp.wrapping_add(16).cast()));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av: __m512bh =
                        core::mem::transmute(_mm512_set1_epi32(*pa.add((i0 + r) * lda + p) as i32));
                    acc[0] = _mm512_dpbf16_ps(acc[0], av, b0);
                    acc[1] = _mm512_dpbf16_ps(acc[1], av, b1);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            // SAFETY: columns j..j+w of row i0+r of c exist; masked-off lanes are not written.
            unsafe {
                let cp = pc.add((i0 + r) * ldc + j);
                _mm512_mask_storeu_ps(cp, m0, acc[0]);
                _mm512_mask_storeu_ps(cp.wrapping_add(16), m1, acc[1]);
            }
        }
        j += 32;
    }
}
