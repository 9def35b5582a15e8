//! x86-64 AVX-512 (F/BW/VL) + VNNI kernels (with AVX2/FMA/F16C, which every
//! AVX-512 CPU has).
//!
//! Quantized dots: one `vpdpbusd` replaces AVX2's `vpmaddubsw` + `vpmaddwd`
//! pair (u8 × i8, four products summed straight into i32 lanes, no i16
//! saturation hazard). A 32-value block is one ymm register. Eight i32 partial
//! sums per block are converted to f32 and FMA'd by the block scale into vector
//! accumulators; the horizontal sum happens once per row.
//!
//! * Q4_1: nibbles are unsigned, `dpbusd(q, a)` directly.
//! * Q4_0: Σ(q − 8)·a = dpbusd(q, a) − dpbusd(8, a), exact in integers.
//! * Q8_0: sign trick, dpbusd(|w|, a·sign(w)).
//!
//! The f32/f16 streaming kernels use zmm and masked loads/stores for tails.

#![deny(unsafe_op_in_unsafe_fn)]

use super::avx2::{load_act, load_ds, load_f16x2, load_nibbles, scale8};
use super::x86_unpack::{block_scales, codes, kind_of, lane_scales, nibbles};
use super::QuantKind;
use super::{
    check, q8_scale, BlockQ8, Isa, Kernels, Q4_0_BLOCK_BYTES, Q4_1_BLOCK_BYTES, Q8_0_BLOCK_BYTES,
    QK,
};
use core::arch::x86_64::*;

/// Reachable only through `Isa::Avx512.kernels()`, which checks run-time support first.
pub(super) static KERNELS: Kernels = Kernels {
    isa: Isa::Avx512,
    quantize_q8,
    dot_q4_0,
    dot_q4_1,
    dot_q8_0,
    dot4_q5_0: Some(dot4_q5_0),
    dot_q5_0: dot_kind_wrapper::<2>,
    dot_q5_1: dot_kind_wrapper::<3>,
    dot_q4_k: dot_kind_wrapper::<5>,
    dot_q5_k: dot_kind_wrapper::<6>,
    // Q6_K: the AVX2 dot (maddubs) measured faster here than vpdpbusd + sign trick
    // (15.3 vs 12.7 GB/s, `cargo bench --bench kernels -- gemv`).
    dot_q6_k: super::avx2::dot_kind_wrapper::<7>,
    dot_f32,
    dot_f16_f32,
    axpy_f32,
    axpy_f16,
    f32_to_f16,
    gemm_q,
    gemm_tokens: 512,
    pack_q: Some(pack_q),
    gemm_packed: Some(gemm_packed),
    geglu,
    swiglu,
    gelu_erf,
    exp_sum,
    gemm_f32,
    transpose_f32,
    layer_norm_row,
    softmax_row,
};

// ---------------------------------------------------------------------------
// Safe wrappers (the table entries). Private, referenced only by `KERNELS`,
// which `Isa::kernels` returns only after detecting avx512f+bw+vl+vnni and
// avx2+fma+f16c.
// ---------------------------------------------------------------------------

fn quantize_q8(x: &[f32], out: &mut [BlockQ8]) {
    check::quantize(x, out);
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { quantize_q8_avx512(x, out) }
}

fn dot_q4_0(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::quant_row(w, a, Q4_0_BLOCK_BYTES);
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { drive::<Q4_0_BLOCK_BYTES>(w, a, block_q4_0).0 }
}

fn dot_q4_1(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::quant_row(w, a, Q4_1_BLOCK_BYTES);
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels); lengths checked above.
    let (dots, offsets) = unsafe { drive::<Q4_1_BLOCK_BYTES>(w, a, block_q4_1) };
    dots + offsets
}

fn dot_q8_0(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::quant_row(w, a, Q8_0_BLOCK_BYTES);
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { drive::<Q8_0_BLOCK_BYTES>(w, a, block_q8_0).0 }
}

/// The formats decoded through [`super::x86_unpack`] (`K` = its kind id).
fn dot_kind_wrapper<const K: u8>(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::kind_row(w, a, kind_of(K));
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot_kind::<K>(w, a) }
}

fn dot4_q5_0(w: &[u8], a: &[BlockQ8]) -> [f32; 4] {
    assert_eq!(w.len(), 4 * a.len() * 22, "dot4_q5_0: length mismatch");
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot4_q5_0_avx512(w, a) }
}

fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    check::same_len(a.len(), b.len());
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot_f32_avx512(a, b) }
}

fn dot_f16_f32(w: &[u8], x: &[f32]) -> f32 {
    check::f16_len(w.len(), x.len());
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot_f16_f32_avx512(w, x) }
}

fn axpy_f32(y: &mut [f32], alpha: f32, x: &[f32]) {
    check::same_len(y.len(), x.len());
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { axpy_f32_avx512(y, alpha, x) }
}

fn axpy_f16(y: &mut [f32], alpha: f32, x: &[u8]) {
    check::f16_len(x.len(), y.len());
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { axpy_f16_avx512(y, alpha, x) }
}

fn geglu(g: &mut [f32], u: &[f32]) {
    check::same_len(g.len(), u.len());
    // SAFETY: AVX2+FMA detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { super::x86_math::geglu(g, u) }
}

fn swiglu(g: &mut [f32], u: &[f32]) {
    check::same_len(g.len(), u.len());
    // SAFETY: AVX2+FMA detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { super::x86_math::swiglu(g, u) }
}

fn gelu_erf(x: &mut [f32]) {
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels).
    unsafe { super::avx512_math::gelu_erf(x) }
}

fn exp_sum(x: &mut [f32], shift: f32) -> f32 {
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels).
    unsafe { super::avx512_math::exp_sum(x, shift) }
}

#[allow(clippy::too_many_arguments)]
fn gemm_f32(
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
    super::check_gemm("gemm_f32", (m, n, k), (a, lda), (b, ldb), (c, ldc));
    let mut i = 0;
    while i < m {
        let rows = (m - i).min(4);
        // SAFETY: AVX-512 set detected (only reachable via Isa::kernels); shapes
        // checked above; rows i..i+rows exist.
        unsafe {
            match rows {
                4 => gemm_f32_rows::<4>(i, n, k, a, lda, b, ldb, c, ldc),
                3 => gemm_f32_rows::<3>(i, n, k, a, lda, b, ldb, c, ldc),
                2 => gemm_f32_rows::<2>(i, n, k, a, lda, b, ldb, c, ldc),
                _ => gemm_f32_rows::<1>(i, n, k, a, lda, b, ldb, c, ldc),
            }
        }
        i += rows;
    }
}

fn layer_norm_row(row: &mut [f32], eps: f32, w: &[f32], b: &[f32]) {
    check::same_len(row.len(), w.len());
    check::same_len(row.len(), b.len());
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { super::avx512_math::layer_norm_row(row, eps, w, b) }
}

fn transpose_f32(rows: usize, cols: usize, src: &[f32], lds: usize, dst: &mut [f32], ldd: usize) {
    super::check_transpose((rows, cols), (src, lds), (dst, ldd));
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels); shapes checked above.
    unsafe { transpose_f32_avx512(rows, cols, src, lds, dst, ldd) }
}

/// Whole 16×16 tiles through [`transpose16`], the edges by the scalar tile loop.
///
/// # Safety
/// AVX-512 set available; shapes checked by `check_transpose`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn transpose_f32_avx512(
    rows: usize,
    cols: usize,
    src: &[f32],
    lds: usize,
    dst: &mut [f32],
    ldd: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    let (r16, c16) = (rows / 16 * 16, cols / 16 * 16);
    for i0 in (0..r16).step_by(16) {
        for j0 in (0..c16).step_by(16) {
            // SAFETY: rows i0..i0+16 and columns j0..j0+16 are inside both shapes.
            let v: [__m512; 16] = core::array::from_fn(|r| unsafe {
                _mm512_loadu_ps(src.as_ptr().add((i0 + r) * lds + j0))
            });
            let t = transpose16(v);
            for (c, t) in t.iter().enumerate() {
                // SAFETY: as above, transposed.
                unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add((j0 + c) * ldd + i0), *t) };
            }
        }
    }
    // The right edge (all rows of the last columns), then the bottom edge.
    if c16 < cols {
        super::scalar::transpose_tiles(
            rows,
            cols - c16,
            &src[c16..],
            lds,
            &mut dst[c16 * ldd..],
            ldd,
        );
    }
    if r16 < rows {
        super::scalar::transpose_tiles(
            rows - r16,
            c16,
            &src[r16 * lds..],
            lds,
            &mut dst[r16..],
            ldd,
        );
    }
}

/// A 16×16 f32 transpose in registers: unpack 32, unpack 64, then two rounds
/// of 128-bit lane shuffles.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    // a[2i], a[2i+1]: rows 2i and 2i+1 interleaved by 32-bit lanes.
    let mut a = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // b: four rows' elements per 128-bit lane.
    let mut b = [_mm512_setzero_ps(); 16];
    for i in 0..4 {
        for h in 0..2 {
            let (x, y) = (
                _mm512_castps_pd(a[4 * i + h]),
                _mm512_castps_pd(a[4 * i + 2 + h]),
            );
            b[4 * i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(x, y));
            b[4 * i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x, y));
        }
    }
    // b[4i + k] holds, per 128-bit lane L, column 4L + k of rows 4i..4i+4.
    // c: pairs of row groups (4i, 4i + 4) per 256-bit half.
    let mut c = [_mm512_setzero_ps(); 16];
    for i in 0..2 {
        for k in 0..4 {
            let (x, y) = (b[8 * i + k], b[8 * i + 4 + k]);
            c[8 * i + k] = _mm512_shuffle_f32x4::<0b10_00_10_00>(x, y);
            c[8 * i + 4 + k] = _mm512_shuffle_f32x4::<0b11_01_11_01>(x, y);
        }
    }
    // c[8i + k'] (k' < 8): 128-bit lanes = column k' of rows 8i..8i+4, column
    // k' + 8 of the same rows, then both columns of rows 8i+4..8i+8.
    let mut t = [_mm512_setzero_ps(); 16];
    for k in 0..8 {
        let (x, y) = (c[k], c[8 + k]);
        t[k] = _mm512_shuffle_f32x4::<0b10_00_10_00>(x, y);
        t[k + 8] = _mm512_shuffle_f32x4::<0b11_01_11_01>(x, y);
    }
    t
}

fn softmax_row(row: &mut [f32], scale: f32, bias: &[f32]) -> bool {
    check::same_len(row.len(), bias.len());
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { super::avx512_math::softmax_row(row, scale, bias) }
}

fn f32_to_f16(x: &[f32], out: &mut [u8]) {
    check::f16_len(out.len(), x.len());
    // SAFETY: AVX-512 set detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { f32_to_f16_avx512(x, out) }
}

// ---------------------------------------------------------------------------
// Quantized kernels
// ---------------------------------------------------------------------------

/// Mask with the low `n` bits set (`n` <= 16).
#[inline(always)]
fn tail_mask(n: usize) -> __mmask16 {
    debug_assert!(n <= 16);
    ((1u32 << n) - 1) as __mmask16
}

/// # Safety
/// AVX-512 set available; `x.len() == out.len() * 32`.
///
/// Sixteen blocks at a time: their maxima and code sums are reduced with one
/// transposing network each ([`reduce16`]) and their scales divided as one
/// vector, where a block at a time paid three scalar divisions and three
/// horizontal reductions (the same IEEE operations, so the blocks are
/// bit-identical to the scalar quantizer's).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn quantize_q8_avx512(x: &[f32], out: &mut [BlockQ8]) {
    debug_assert_eq!(x.len(), out.len() * QK);
    let groups = out.len() / 16;
    let max = |a: __m512, b: __m512| _mm512_max_ps(a, b);
    let add = |a: __m512, b: __m512| {
        _mm512_castsi512_ps(_mm512_add_epi32(
            _mm512_castps_si512(a),
            _mm512_castps_si512(b),
        ))
    };
    for gi in 0..groups {
        // SAFETY: blocks 16gi..16gi+16 cover x[512gi .. 512gi+512], in bounds.
        let base = unsafe { x.as_ptr().add(gi * 16 * QK) };
        // SAFETY: as above (block i's 32 values).
        let load = |i: usize, h: usize| unsafe { _mm512_loadu_ps(base.add(i * QK + 16 * h)) };
        let m: [__m512; 16] = core::array::from_fn(|i| {
            _mm512_max_ps(_mm512_abs_ps(load(i, 0)), _mm512_abs_ps(load(i, 1)))
        });
        let amax = reduce16(m, max);
        let d = _mm512_div_ps(amax, _mm512_set1_ps(127.0));
        let id = _mm512_div_ps(_mm512_set1_ps(127.0), amax);
        let inv_d = _mm512_div_ps(_mm512_set1_ps(1.0), d);
        let inf = _mm512_set1_ps(f32::INFINITY);
        let ok = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(d, _mm512_setzero_ps())
            & _mm512_cmp_ps_mask::<_CMP_LT_OQ>(_mm512_abs_ps(id), inf)
            & _mm512_cmp_ps_mask::<_CMP_LT_OQ>(_mm512_abs_ps(inv_d), inf);
        let (d, id) = (_mm512_maskz_mov_ps(ok, d), _mm512_maskz_mov_ps(ok, id));
        let mut ids = [0f32; 16];
        // SAFETY: 16 floats into a 16-float array.
        unsafe { _mm512_storeu_ps(ids.as_mut_ptr(), id) };
        let mut lo = [_mm512_setzero_ps(); 16];
        let mut hi = [_mm512_setzero_ps(); 16];
        // After two saturating packs (i32 → i16 → i8, the same saturation as
        // `vpmovsdb`, which Zen 4 runs at half the rate), a pair of blocks'
        // codes sit in 4-byte groups by 128-bit lane; this puts each block's
        // 32 in order, block i in the low 256 bits.
        let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        for i in (0..16).step_by(2) {
            let codes = |i: usize| {
                let idv = _mm512_set1_ps(ids[i]);
                // Default MXCSR rounding: nearest, ties to even.
                let i0 = _mm512_cvtps_epi32(_mm512_mul_ps(load(i, 0), idv));
                let i1 = _mm512_cvtps_epi32(_mm512_mul_ps(load(i, 1), idv));
                (i0, i1)
            };
            let (a0, a1) = codes(i);
            let (b0, b1) = codes(i + 1);
            let q = _mm512_packs_epi16(_mm512_packs_epi32(a0, a1), _mm512_packs_epi32(b0, b1));
            let q = _mm512_permutexvar_epi32(order, q);
            // SAFETY: each `qs` is a 32-byte array, filled by one 32-byte store.
            unsafe {
                let qa = out[gi * 16 + i].qs.as_mut_ptr().cast::<__m256i>();
                _mm256_storeu_si256(qa, _mm512_castsi512_si256(q));
                let qb = out[gi * 16 + i + 1].qs.as_mut_ptr().cast::<__m256i>();
                _mm256_storeu_si256(qb, _mm512_extracti64x4_epi64::<1>(q));
            }
            (lo[i], hi[i]) = (_mm512_castsi512_ps(a0), _mm512_castsi512_ps(a1));
            (lo[i + 1], hi[i + 1]) = (_mm512_castsi512_ps(b0), _mm512_castsi512_ps(b1));
        }
        let h0 = _mm512_castps_si512(reduce16(lo, add));
        let h1 = _mm512_castps_si512(reduce16(hi, add));
        let s = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_add_epi32(h0, h1)));
        // (d, s) and (h0, h1) of each block as one 8-byte pair: 64-bit element
        // 2l + j of the `lo` interleave is block 4l + j, of `hi` block 4l + 2 + j.
        let mut pairs = [[0u64; 8]; 4];
        // SAFETY: 8 u64 lanes into 8-element arrays.
        unsafe {
            let st = |a: &mut [u64; 8], v: __m512i| _mm512_storeu_si512(a.as_mut_ptr().cast(), v);
            let (dsi, hsi) = (_mm512_castps_si512(d), _mm512_castps_si512(s));
            st(&mut pairs[0], _mm512_unpacklo_epi32(dsi, hsi));
            st(&mut pairs[1], _mm512_unpackhi_epi32(dsi, hsi));
            st(&mut pairs[2], _mm512_unpacklo_epi32(h0, h1));
            st(&mut pairs[3], _mm512_unpackhi_epi32(h0, h1));
        }
        for (i, ob) in out[gi * 16..gi * 16 + 16].iter_mut().enumerate() {
            let (half, e) = ((i / 2) % 2, 2 * (i / 4) + i % 2);
            let ds: [f32; 2] = bytemuck::cast(pairs[half][e]);
            (ob.d, ob.s) = (ds[0], ds[1]);
            ob.h = bytemuck::cast(pairs[2 + half][e]);
        }
    }
    for (i, ob) in out.iter_mut().enumerate().skip(groups * 16) {
        // SAFETY: block i covers x[32i .. 32i+32], in bounds by the length precondition.
        let (v0, v1) = unsafe {
            let p = x.as_ptr().add(i * QK);
            (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)))
        };
        let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        let (d, id) = q8_scale(amax);
        let idv = _mm512_set1_ps(id);
        let i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, idv));
        let i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, idv));
        let h = [_mm512_reduce_add_epi32(i0), _mm512_reduce_add_epi32(i1)];
        // SAFETY: `qs` is a 32-byte array; two unaligned 16-byte stores fill it exactly.
        unsafe {
            let q = ob.qs.as_mut_ptr().cast::<__m128i>();
            _mm_storeu_si128(q, _mm512_cvtsepi32_epi8(i0));
            _mm_storeu_si128(q.add(1), _mm512_cvtsepi32_epi8(i1));
        }
        super::set_scales(ob, d, h);
    }
}

/// Lane `i` of the result = `op` over the sixteen lanes of `v[i]`: sixteen
/// horizontal reductions at once, by halving the width four times (256-bit
/// halves, 128-bit lanes, pairs, single lanes), each step combining two
/// vectors' halves with one shuffle each and one `op`; a last permute puts
/// the lanes in order. `op` must be associative and commutative per lane.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn reduce16(v: [__m512; 16], op: impl Fn(__m512, __m512) -> __m512) -> __m512 {
    // s1[i]: 256-bit half 0 = 8 partials of v[i], half 1 = of v[i + 8].
    let s1: [__m512; 8] = core::array::from_fn(|i| {
        op(
            _mm512_shuffle_f32x4::<0b01_00_01_00>(v[i], v[i + 8]),
            _mm512_shuffle_f32x4::<0b11_10_11_10>(v[i], v[i + 8]),
        )
    });
    // s2[i]: 128-bit lanes = 4 partials of v[i], v[i + 8], v[i + 4], v[i + 12].
    let s2: [__m512; 4] = core::array::from_fn(|i| {
        op(
            _mm512_shuffle_f32x4::<0b10_00_10_00>(s1[i], s1[i + 4]),
            _mm512_shuffle_f32x4::<0b11_01_11_01>(s1[i], s1[i + 4]),
        )
    });
    // s3[i]: per 128-bit lane, 2 partials of two vectors (i and i + 2 of that lane's set).
    let s3: [__m512; 2] = core::array::from_fn(|i| {
        let (a, b) = (_mm512_castps_pd(s2[i]), _mm512_castps_pd(s2[i + 2]));
        op(
            _mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
            _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)),
        )
    });
    // r: lanes hold vectors 0,2,1,3, 8,10,9,11, 4,6,5,7, 12,14,13,15.
    let r = op(
        _mm512_shuffle_ps::<0b10_00_10_00>(s3[0], s3[1]),
        _mm512_shuffle_ps::<0b11_01_11_01>(s3[0], s3[1]),
    );
    let order = _mm512_setr_epi32(0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15);
    _mm512_permutexvar_ps(order, r)
}

/// One Q4_0 block: (eight partial sums as f32, 8 × d_w·d_a, 0).
///
/// # Safety
/// `blk` must point to 18 readable bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn block_q4_0(blk: *const u8, ab: &BlockQ8) -> (__m256, __m256, __m128) {
    // SAFETY: the block's 18 bytes are readable (caller).
    let (sc, q) = unsafe { (scale8(blk, ab), load_nibbles(blk.add(2))) };
    let a = load_act(ab);
    let zero = _mm256_setzero_si256();
    let qa = _mm256_dpbusd_epi32(zero, q, a);
    let sa8 = _mm256_dpbusd_epi32(zero, _mm256_set1_epi8(8), a);
    let p = _mm256_cvtepi32_ps(_mm256_sub_epi32(qa, sa8));
    (p, sc, _mm_setzero_ps())
}

/// One Q4_1 block: (eight partial sums as f32, 8 × d_w·d_a, `[d_w·d_a, m_w·s_a, 0, 0]`).
///
/// # Safety
/// `blk` must point to 20 readable bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn block_q4_1(blk: *const u8, ab: &BlockQ8) -> (__m256, __m256, __m128) {
    // SAFETY: the block's 20 bytes are readable (caller).
    let (dm, q) = unsafe { (load_f16x2(blk), load_nibbles(blk.add(4))) };
    let p = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), q, load_act(ab)));
    let sc = _mm_mul_ps(dm, load_ds(ab));
    (p, _mm256_broadcastss_ps(sc), sc)
}

/// One Q8_0 block: (eight partial sums as f32, 8 × d_w·d_a, 0). Needs |a| <= 127.
///
/// # Safety
/// `blk` must point to 34 readable bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn block_q8_0(blk: *const u8, ab: &BlockQ8) -> (__m256, __m256, __m128) {
    // SAFETY: the block's 34 bytes are readable (caller).
    let (sc, q) = unsafe {
        (
            scale8(blk, ab),
            _mm256_loadu_si256(blk.add(2).cast::<__m256i>()),
        )
    };
    let a = _mm256_sign_epi8(load_act(ab), q);
    let p = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(
        _mm256_setzero_si256(),
        _mm256_abs_epi8(q),
        a,
    ));
    (p, sc, _mm_setzero_ps())
}

/// Sub-block `j` as unsigned codes `q + bias` (16 for Q5_0, 0 for the formats
/// with an offset term), using AVX-512BW byte masks for the fifth bits: one masked add
/// instead of the AVX2 decoder's shuffle/compare sequence.
///
/// # Safety
/// `blk` must point to `kind.block_bytes()` readable bytes, `j < kind.block_len() / 32`;
/// `kind` is one of Q5_0, Q5_1, Q4_K, Q5_K; the AVX-512 set available.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn ucodes(kind: QuantKind, blk: *const u8, j: usize) -> __m256i {
    let sixteen = _mm256_set1_epi8(16);
    // SAFETY (all arms): offsets inside the block by the layouts in `blocks`.
    unsafe {
        match kind {
            QuantKind::Q5_0 | QuantKind::Q5_1 => {
                let off = if kind == QuantKind::Q5_0 { 2 } else { 4 };
                let nib = nibbles(blk.add(off + 4));
                let bits = blk.add(off).cast::<u32>().read_unaligned();
                _mm256_mask_add_epi8(nib, bits, nib, sixteen)
            }
            QuantKind::Q5_K => {
                let qs = _mm256_loadu_si256(blk.add(48 + 32 * (j / 2)).cast::<__m256i>());
                let qh = _mm256_loadu_si256(blk.add(16).cast::<__m256i>());
                let lo = _mm256_and_si256(
                    _mm256_srl_epi16(qs, _mm_cvtsi32_si128(4 * (j as i32 % 2))),
                    _mm256_set1_epi8(0x0F),
                );
                let m = _mm256_test_epi8_mask(qh, _mm256_set1_epi8((1u8 << j) as i8));
                _mm256_mask_add_epi8(lo, m, lo, sixteen)
            }
            _ => codes(kind, blk, j),
        }
    }
}

/// The eight lane partial sums (as f32) of sub-block `j` · `ab`: one
/// `vpdpbusd` of the unsigned codes with the activations, started from
/// `−16·Σa` for Q5_0 (one `vmovd`), so the lanes add up to the exact integer
/// dot, lanes 0..4 holding the first 16 values.
///
/// # Safety
/// As [`ucodes`].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn sub_dot(kind: QuantKind, blk: *const u8, j: usize, ab: &BlockQ8) -> __m256 {
    // SAFETY: forwarded.
    let u = unsafe { ucodes(kind, blk, j) };
    let init = match kind {
        QuantKind::Q5_0 => _mm256_zextsi128_si256(_mm_cvtsi32_si128(-16 * (ab.h[0] + ab.h[1]))),
        _ => _mm256_setzero_si256(),
    };
    _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(init, u, load_act(ab)))
}

super::x86_unpack::define_dot_kind!(
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    hsum256
);

/// Four Q5_0 rows · one token (GEMV). Per block the activation load, the
/// `−16·Σa` start value and `d_a` are shared by the four rows and their four
/// `d_w` are converted in one `vcvtph2ps`; per row the codes are unsigned
/// (nibble + 16 where the fifth bit is set, one masked add) and one
/// `vpdpbusd` gives the exact integer dot.
///
/// # Safety
/// AVX-512 set available; `w.len() == 4 · a.len() · 22`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn dot4_q5_0_avx512(w: &[u8], a: &[BlockQ8]) -> [f32; 4] {
    const BB: usize = 22;
    let rb = a.len() * BB;
    let p = w.as_ptr();
    let sixteen = _mm256_set1_epi8(16);
    let mut acc = [_mm256_setzero_ps(); 4];
    for (b, ab) in a.iter().enumerate() {
        let off = b * BB;
        let act = load_act(ab);
        let init = _mm256_zextsi128_si256(_mm_cvtsi32_si128(-16 * (ab.h[0] + ab.h[1])));
        // SAFETY: block b of rows 0..4 lies inside w (length precondition); each read
        // below stays within its block's 22 bytes.
        let d4 = unsafe {
            _mm_cvtph_ps(_mm_setr_epi16(
                p.add(off).cast::<i16>().read_unaligned(),
                p.add(rb + off).cast::<i16>().read_unaligned(),
                p.add(2 * rb + off).cast::<i16>().read_unaligned(),
                p.add(3 * rb + off).cast::<i16>().read_unaligned(),
                0,
                0,
                0,
                0,
            ))
        };
        let s4 = _mm256_castps128_ps256(_mm_mul_ps(d4, _mm_set1_ps(ab.d)));
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let (nib, bits) = unsafe {
                let blk = p.add(r * rb + off);
                (
                    nibbles(blk.add(6)),
                    blk.add(2).cast::<u32>().read_unaligned(),
                )
            };
            let u = _mm256_mask_add_epi8(nib, bits, nib, sixteen);
            let dot = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(init, u, act));
            let sc = _mm256_permutexvar_ps(_mm256_set1_epi32(r as i32), s4);
            *acc = _mm256_fmadd_ps(dot, sc, *acc);
        }
    }
    [
        hsum256(acc[0]),
        hsum256(acc[1]),
        hsum256(acc[2]),
        hsum256(acc[3]),
    ]
}

/// Rows `i0..i0 + R` of the f32 GEMM: tiles of R rows × 32 columns in 2R zmm
/// accumulators (one broadcast of `a` per row, two loads of `b` per step), the
/// last columns with masked loads and stores.
///
/// # Safety
/// AVX-512 set available; the shapes were checked by `check_gemm` and rows
/// `i0..i0 + R` are inside `m`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_f32_rows<const R: usize>(
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
    let (pa, pb, pc) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    let mut j = 0;
    while j < n {
        let w = (n - j).min(32);
        let m0 = tail_mask(w.min(16));
        let m1 = tail_mask(w.saturating_sub(16));
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for p in 0..k {
            // SAFETY: columns j..j+w of row p of b and column p of rows i0..i0+R of a
            // exist (shapes checked); masked-off lanes are not read.
            unsafe {
                let bp = pb.add(p * ldb + j);
                let b0 = _mm512_maskz_loadu_ps(m0, bp);
                // `wrapping_add`: with w ≤ 16 this address may lie past the slice; m1 is 0 then.
                let b1 = _mm512_maskz_loadu_ps(m1, bp.wrapping_add(16));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*pa.add((i0 + r) * lda + p));
                    acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                    acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
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

/// Horizontal sum of eight f32 lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum256(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Shared driver: four blocks per iteration into four accumulators.
/// Returns (Σ lanes of Σ_b scale_b·p_b, Σ_b lane 1 of the side vectors).
///
/// # Safety
/// AVX-512 set available; `w.len() == a.len() * BYTES`; `block` reads at most BYTES bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn drive<const BYTES: usize>(
    w: &[u8],
    a: &[BlockQ8],
    block: unsafe fn(*const u8, &BlockQ8) -> (__m256, __m256, __m128),
) -> (f32, f32) {
    debug_assert_eq!(w.len(), a.len() * BYTES);
    let wp = w.as_ptr();
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut side = _mm_setzero_ps();
    let quads = a.len() / 4;
    for (k, q) in a.chunks_exact(4).enumerate() {
        let blk = wp.wrapping_add(4 * k * BYTES);
        // SAFETY: blocks 4k..4k+4 < a.len() lie inside w by the length precondition.
        let r = unsafe {
            [
                block(blk, &q[0]),
                block(blk.add(BYTES), &q[1]),
                block(blk.add(2 * BYTES), &q[2]),
                block(blk.add(3 * BYTES), &q[3]),
            ]
        };
        for j in 0..4 {
            acc[j] = _mm256_fmadd_ps(r[j].1, r[j].0, acc[j]);
        }
        side = _mm_add_ps(
            side,
            _mm_add_ps(_mm_add_ps(r[0].2, r[1].2), _mm_add_ps(r[2].2, r[3].2)),
        );
    }
    for (i, ab) in a.iter().enumerate().skip(4 * quads) {
        // SAFETY: block i < a.len() lies inside w by the length precondition.
        let (p, c, s) = unsafe { block(wp.add(i * BYTES), ab) };
        acc[0] = _mm256_fmadd_ps(c, p, acc[0]);
        side = _mm_add_ps(side, s);
    }
    let total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    (hsum256(total), _mm_cvtss_f32(_mm_movehdup_ps(side)))
}

// ---------------------------------------------------------------------------
// f32 / f16 streaming kernels (zmm, masked tails)
// ---------------------------------------------------------------------------

/// # Safety
/// AVX-512 set available; `a.len() == b.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn dot_f32_avx512(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 16k + 16 <= i + 64 <= n.
            let (x, y) = unsafe {
                (
                    _mm512_loadu_ps(pa.add(i + 16 * k)),
                    _mm512_loadu_ps(pb.add(i + 16 * k)),
                )
            };
            *acc = _mm512_fmadd_ps(x, y, *acc);
        }
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        let (x, y) = unsafe { (_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i))) };
        acc[1] = _mm512_fmadd_ps(x, y, acc[1]);
        i += 16;
    }
    if i < n {
        let m = tail_mask(n - i);
        // SAFETY: masked loads touch only the n - i elements in bounds; masked-off lanes never fault.
        let (x, y) = unsafe {
            (
                _mm512_maskz_loadu_ps(m, pa.add(i)),
                _mm512_maskz_loadu_ps(m, pb.add(i)),
            )
        };
        acc[2] = _mm512_fmadd_ps(x, y, acc[2]);
    }
    _mm512_reduce_add_ps(_mm512_add_ps(
        _mm512_add_ps(acc[0], acc[1]),
        _mm512_add_ps(acc[2], acc[3]),
    ))
}

/// # Safety
/// AVX-512 set available; `w.len() == 2 * x.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn dot_f16_f32_avx512(w: &[u8], x: &[f32]) -> f32 {
    debug_assert_eq!(w.len(), 2 * x.len());
    let n = x.len();
    let (pw, px) = (w.as_ptr(), x.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            let j = i + 16 * k;
            // SAFETY: j + 16 <= n, so x[j..j+16] and w[2j..2j+32] are in bounds.
            let (h, v) = unsafe {
                (
                    _mm256_loadu_si256(pw.add(2 * j).cast::<__m256i>()),
                    _mm512_loadu_ps(px.add(j)),
                )
            };
            *acc = _mm512_fmadd_ps(_mm512_cvtph_ps(h), v, *acc);
        }
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, so x[i..i+16] and w[2i..2i+32] are in bounds.
        let (h, v) = unsafe {
            (
                _mm256_loadu_si256(pw.add(2 * i).cast::<__m256i>()),
                _mm512_loadu_ps(px.add(i)),
            )
        };
        acc[1] = _mm512_fmadd_ps(_mm512_cvtph_ps(h), v, acc[1]);
        i += 16;
    }
    if i < n {
        let m = tail_mask(n - i);
        // SAFETY: masked loads touch only the n - i in-bounds elements (2 bytes each for w).
        let (h, v) = unsafe {
            (
                _mm256_maskz_loadu_epi16(m, pw.add(2 * i).cast::<i16>()),
                _mm512_maskz_loadu_ps(m, px.add(i)),
            )
        };
        acc[2] = _mm512_fmadd_ps(_mm512_cvtph_ps(h), v, acc[2]);
    }
    _mm512_reduce_add_ps(_mm512_add_ps(
        _mm512_add_ps(acc[0], acc[1]),
        _mm512_add_ps(acc[2], acc[3]),
    ))
}

/// # Safety
/// AVX-512 set available; `y.len() == x.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn axpy_f32_avx512(y: &mut [f32], alpha: f32, x: &[f32]) {
    debug_assert_eq!(y.len(), x.len());
    let n = y.len();
    let (py, px) = (y.as_mut_ptr(), x.as_ptr());
    let av = _mm512_set1_ps(alpha);
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n for both slices; y and x cannot alias (&mut vs &).
        unsafe {
            let r = _mm512_fmadd_ps(av, _mm512_loadu_ps(px.add(i)), _mm512_loadu_ps(py.add(i)));
            _mm512_storeu_ps(py.add(i), r);
        }
        i += 16;
    }
    if i < n {
        let m = tail_mask(n - i);
        // SAFETY: masked loads/stores touch only the in-bounds elements i..n.
        unsafe {
            let r = _mm512_fmadd_ps(
                av,
                _mm512_maskz_loadu_ps(m, px.add(i)),
                _mm512_maskz_loadu_ps(m, py.add(i)),
            );
            _mm512_mask_storeu_ps(py.add(i), m, r);
        }
    }
}

/// # Safety
/// AVX-512 set available; `x.len() == 2 * y.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn axpy_f16_avx512(y: &mut [f32], alpha: f32, x: &[u8]) {
    debug_assert_eq!(x.len(), 2 * y.len());
    let n = y.len();
    let (py, px) = (y.as_mut_ptr(), x.as_ptr());
    let av = _mm512_set1_ps(alpha);
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, so y[i..i+16] and x[2i..2i+32] are in bounds.
        unsafe {
            let h = _mm512_cvtph_ps(_mm256_loadu_si256(px.add(2 * i).cast::<__m256i>()));
            _mm512_storeu_ps(
                py.add(i),
                _mm512_fmadd_ps(av, h, _mm512_loadu_ps(py.add(i))),
            );
        }
        i += 16;
    }
    if i < n {
        let m = tail_mask(n - i);
        // SAFETY: masked loads/stores touch only the in-bounds elements i..n of y
        // and the matching 2-byte elements of x.
        unsafe {
            let h = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, px.add(2 * i).cast::<i16>()));
            let r = _mm512_fmadd_ps(av, h, _mm512_maskz_loadu_ps(m, py.add(i)));
            _mm512_mask_storeu_ps(py.add(i), m, r);
        }
    }
}

/// # Safety
/// AVX-512 set available; `out.len() == 2 * x.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn f32_to_f16_avx512(x: &[f32], out: &mut [u8]) {
    debug_assert_eq!(out.len(), 2 * x.len());
    const RNE: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    let n = x.len();
    let (px, po) = (x.as_ptr(), out.as_mut_ptr());
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, so x[i..i+16] and out[2i..2i+32] are in bounds.
        unsafe {
            let h = _mm512_cvtps_ph::<RNE>(_mm512_loadu_ps(px.add(i)));
            _mm256_storeu_si256(po.add(2 * i).cast::<__m256i>(), h);
        }
        i += 16;
    }
    if i < n {
        let m = tail_mask(n - i);
        // SAFETY: masked load/store touch only the in-bounds elements i..n of x and
        // the matching 2-byte elements of out.
        unsafe {
            let h = _mm512_cvtps_ph::<RNE>(_mm512_maskz_loadu_ps(m, px.add(i)));
            _mm256_mask_storeu_epi16(po.add(2 * i).cast::<i16>(), m, h);
        }
    }
}

// ---------------------------------------------------------------------------
// Quantized GEMM (prefill): the panel kernel of `avx512_gemm`.
// ---------------------------------------------------------------------------

fn gemm_q(
    kind: QuantKind,
    w: &[u8],
    a: &[BlockQ8],
    nb: usize,
    out: &mut [f32],
    lay: super::OutLayout,
) {
    let (rows, tokens, rb) = super::gemm_shape(kind, w, a, nb, out, lay);
    if rows == 0 || tokens == 0 {
        return;
    }
    if matches!(kind, QuantKind::Q4_0 | QuantKind::Q4_1) {
        return gemm_tiles(kind, w, a, nb, out, lay);
    }
    // Below 8 tokens the panel decode is not amortised: Q8_0's direct dot is
    // faster row by row (measured: ×0.7 at 4 tokens, ×1.2 at 8; `gemm_speed`).
    if tokens < 8 && kind == QuantKind::Q8_0 {
        return super::gemm_by_dots(&KERNELS, kind, w, a, nb, out, lay);
    }
    super::avx512_gemm::gemm(kind, &w[..rows * rb], rb, &a[..tokens * nb], nb, out, lay);
}

fn pack_q(kind: QuantKind, w: &[u8], nb: usize) -> super::PackedWeights {
    super::avx512_gemm::pack(kind, w, nb)
}

fn gemm_packed(
    pw: &super::PackedWeights,
    a: &[BlockQ8],
    out: &mut [f32],
    lay: super::OutLayout,
    bias: Option<&[f32]>,
) {
    assert_eq!(
        pw.isa,
        Isa::Avx512,
        "gemm_packed: weights packed for {}",
        pw.isa
    );
    let rb = pw
        .kind
        .row_bytes(pw.nb)
        .expect("packed rows are whole blocks");
    // The shape checks of `gemm_q` (whole tokens, output large enough) for the packed rows.
    super::gemm_shape_dims(pw.rows, rb, a, pw.nb, out, lay);
    if let Some(b) = bias {
        assert_eq!(b.len(), pw.rows, "gemm_packed: one bias per row");
    }
    super::avx512_gemm::gemm_packed(pw, a, out, lay, bias);
}

// ---------------------------------------------------------------------------
// Q4_0/Q4_1 GEMM: tiles of 4 weight rows × 4 tokens that keep llama.cpp's
// accumulation structure (eight lane partials per block, each scaled and
// summed in f32, reduced once per row): llama.cpp runs these formats'
// prompts through that per-row dot, and this tile rounds where it does, which
// keeps wisp's Q4_1 prefill within the llama.cpp parity tests' tolerances.
// The panel kernel (exact block sums) is ~2.5× faster but rounds differently.
//
// Each weight block is decoded once and broadcast to both halves of a zmm;
// two tokens' activation blocks share one zmm, so one `vpdpbusd` computes two
// (row, token) pairs. Q4_0's Σ(q − 8)·a starts from −8·Σa (Σa per lane from
// one dpbusd against ones, shared by the 4 rows), so every lane holds an
// exact integer partial sum. Q4_1's m·s term is accumulated in a separate
// 4-token vector per row.
// ---------------------------------------------------------------------------

fn gemm_tiles(
    kind: QuantKind,
    w: &[u8],
    a: &[BlockQ8],
    nb: usize,
    out: &mut [f32],
    lay: super::OutLayout,
) {
    let (rows, tokens, rb) = super::gemm_shape(kind, w, a, nb, out, lay);
    let (r4, t4) = (rows / 4 * 4, tokens / 4 * 4);
    for r in (0..r4).step_by(4) {
        for t in (0..t4).step_by(4) {
            // SAFETY: this table is reachable only after AVX-512 (+VNNI/VL/BW, AVX2, FMA,
            // F16C) was detected; rows r..r+4 and tokens t..t+4 exist (gemm_shape checked
            // the lengths), which is all the tile reads.
            let tile = unsafe {
                tile4x4(
                    kind,
                    &w[r * rb..(r + 4) * rb],
                    rb,
                    &a[t * nb..(t + 4) * nb],
                    nb,
                )
            };
            for (i, row) in tile.iter().enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    out[lay.at(r + i, t + j)] = v;
                }
            }
        }
    }
    // Edges: the rows and tokens that do not fill a tile.
    let dot = kind.dot(&KERNELS);
    for r in 0..rows {
        let t_from = if r < r4 { t4 } else { 0 };
        let wr = &w[r * rb..(r + 1) * rb];
        for t in t_from..tokens {
            out[lay.at(r, t)] = dot(wr, &a[t * nb..(t + 1) * nb]);
        }
    }
}

/// Two tokens' 32 activation bytes in one zmm (token `lo` in the low half).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn pair_act(lo: &BlockQ8, hi: &BlockQ8) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(load_act(lo)), load_act(hi))
}

/// `[d_lo ×8, d_hi ×8]`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn pair_scale(lo: &BlockQ8, hi: &BlockQ8) -> __m512 {
    let l = _mm512_castps256_ps512(_mm256_set1_ps(lo.d));
    _mm512_castpd_ps(_mm512_insertf64x4::<1>(
        _mm512_castps_pd(l),
        _mm256_castps_pd(_mm256_set1_ps(hi.d)),
    ))
}

/// Sums of the low and high 8 lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn half_sums(v: __m512) -> (f32, f32) {
    (
        hsum256(_mm512_castps512_ps256(v)),
        hsum256(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
            _mm512_castps_pd(v),
        ))),
    )
}

/// One 4×4 tile: `w` holds 4 rows of `rb` bytes, `a` 4 tokens of `nb` blocks.
///
/// # Safety
/// The AVX-512 set named in the attribute must be available; `w.len() >= 4 * rb`
/// with `rb == nb * kind.block_bytes()`, and `a.len() >= 4 * nb`; `kind` is Q4_0 or Q4_1.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn tile4x4(kind: QuantKind, w: &[u8], rb: usize, a: &[BlockQ8], nb: usize) -> [[f32; 4]; 4] {
    debug_assert!(w.len() >= 4 * rb && a.len() >= 4 * nb);
    let bb = kind.block_bytes();
    let mut acc = [[_mm512_setzero_ps(); 2]; 4];
    let mut side = [_mm_setzero_ps(); 4];
    let ones = _mm512_set1_epi8(1);
    let wp = w.as_ptr();
    for b in 0..nb {
        let (a0, a1, a2, a3) = (&a[b], &a[nb + b], &a[2 * nb + b], &a[3 * nb + b]);
        let act = [pair_act(a0, a1), pair_act(a2, a3)];
        let da = [pair_scale(a0, a1), pair_scale(a2, a3)];
        // Initial integer accumulators: −K·Σa per lane (K = 8 for Q4_0, 128 for Q8_0).
        let init = match kind {
            QuantKind::Q4_1 => [_mm512_setzero_si512(); 2],
            QuantKind::Q4_0 => act.map(|x| {
                let s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, x);
                _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32::<3>(s))
            }),
            _ => unreachable!("Q4_0/Q4_1 tiles only"),
        };
        let s4 = _mm_setr_ps(a0.s, a1.s, a2.s, a3.s);
        for r in 0..4 {
            // SAFETY: block b of row r lies inside `w` (r < 4, b < nb, rb = nb·bb).
            let blk = unsafe { wp.add(r * rb + b * bb) };
            // SAFETY: the block's bytes are readable (see above).
            let (dw, q) = unsafe {
                match kind {
                    QuantKind::Q4_0 | QuantKind::Q4_1 => (
                        load_f16x2(blk),
                        load_nibbles(blk.add(if kind == QuantKind::Q4_1 { 4 } else { 2 })),
                    ),
                    _ => unreachable!("Q4_0/Q4_1 tiles only"),
                }
            };
            let wq = _mm512_broadcast_i64x4(q);
            let d = _mm512_set1_ps(_mm_cvtss_f32(dw));
            for p in 0..2 {
                let dot = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(init[p], wq, act[p]));
                acc[r][p] = _mm512_fmadd_ps(dot, _mm512_mul_ps(d, da[p]), acc[r][p]);
            }
            if kind == QuantKind::Q4_1 {
                // m is the second f16 of the block.
                let m = _mm_shuffle_ps::<0b01_01_01_01>(dw, dw);
                side[r] = _mm_fmadd_ps(m, s4, side[r]);
            }
        }
    }
    let mut out = [[0f32; 4]; 4];
    for r in 0..4 {
        let (t0, t1) = half_sums(acc[r][0]);
        let (t2, t3) = half_sums(acc[r][1]);
        let mut sd = [0f32; 4];
        // SAFETY: storeu of 4 floats into a 4-float array.
        unsafe { _mm_storeu_ps(sd.as_mut_ptr(), side[r]) };
        out[r] = [t0 + sd[0], t1 + sd[1], t2 + sd[2], t3 + sd[3]];
    }
    out
}
