//! x86-64 AVX2 + FMA + F16C kernels.
//!
//! Quantized dots: one 32-value block fills one ymm register. Unsigned 4-bit
//! weights multiply signed int8 activations with `vpmaddubsw` (u8 × i8 → pairs
//! summed to i16, no saturation since 2·15·127 < 2¹⁵), then `vpmaddwd` with ones
//! widens to eight i32 partial sums. Those stay as eight lanes: they are
//! converted to f32 and FMA'd by the block scale into a vector accumulator, so
//! the horizontal sum happens once per row.
//!
//! * Q4_1: `vpmaddubsw(q, a)` directly (q in 0..=15).
//! * Q4_0: (q − 8)·a pairs = `vpmaddubsw(q, a) − vpmaddubsw(8, a)` in i16, exact.
//! * Q8_0: signed × signed via the sign trick, `vpmaddubsw(|w|, a·sign(w))`.
//!
//! Scales: `d_w·d_a` is formed as a full 8-lane vector per block (see [`scale8`]).

#![deny(unsafe_op_in_unsafe_fn)]

use super::x86_unpack::{block_scales, codes, kind_of, lane_scales};
use super::{
    check, q8_scale, BlockQ8, Isa, Kernels, QuantKind, Q4_0_BLOCK_BYTES, Q4_1_BLOCK_BYTES,
    Q8_0_BLOCK_BYTES, QK,
};
use core::arch::x86_64::*;

/// Reachable only through `Isa::Avx2.kernels()`, which checks run-time support first.
pub(super) static KERNELS: Kernels = Kernels {
    isa: Isa::Avx2,
    quantize_q8,
    dot_q4_0,
    dot_q4_1,
    dot_q8_0,
    dot4_q5_0: None,
    dot_q5_0: dot_kind_wrapper::<2>,
    dot_q5_1: dot_kind_wrapper::<3>,
    dot_q4_k: dot_kind_wrapper::<5>,
    dot_q5_k: dot_kind_wrapper::<6>,
    dot_q6_k: dot_kind_wrapper::<7>,
    dot_f32,
    dot_f16_f32,
    axpy_f32,
    axpy_f16,
    f32_to_f16,
    gemm_q,
    gemm_tokens: 64,
    pack_q: None,
    gemm_packed: None,
    geglu,
    swiglu,
    gelu_erf,
    exp_sum,
    gemm_f32,
    transpose_f32: super::scalar::transpose_f32,
    layer_norm_row,
    softmax_row,
};

// ---------------------------------------------------------------------------
// Safe wrappers (the table entries). Each checks lengths, then enters the
// `#[target_feature]` implementation. They are private and referenced only by
// `KERNELS`, which `Isa::kernels` returns only when avx2+fma+f16c were detected.
// ---------------------------------------------------------------------------

fn quantize_q8(x: &[f32], out: &mut [BlockQ8]) {
    check::quantize(x, out);
    // SAFETY: avx2+fma+f16c detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { quantize_q8_avx2(x, out) }
}

fn dot_q4_0(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::quant_row(w, a, Q4_0_BLOCK_BYTES);
    // SAFETY: avx2+fma+f16c detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot_q4_0_avx2(w, a) }
}

fn dot_q4_1(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::quant_row(w, a, Q4_1_BLOCK_BYTES);
    // SAFETY: avx2+fma+f16c detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot_q4_1_avx2(w, a) }
}

fn dot_q8_0(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::quant_row(w, a, Q8_0_BLOCK_BYTES);
    // SAFETY: avx2+fma+f16c detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot_q8_0_avx2(w, a) }
}

/// The formats decoded through [`super::x86_unpack`] (`K` = its kind id).
pub(super) fn dot_kind_wrapper<const K: u8>(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::kind_row(w, a, kind_of(K));
    // SAFETY: avx2+fma+f16c detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot_kind::<K>(w, a) }
}

fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    check::same_len(a.len(), b.len());
    // SAFETY: avx2+fma+f16c detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot_f32_avx2(a, b) }
}

fn dot_f16_f32(w: &[u8], x: &[f32]) -> f32 {
    check::f16_len(w.len(), x.len());
    // SAFETY: avx2+fma+f16c detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot_f16_f32_avx2(w, x) }
}

fn axpy_f32(y: &mut [f32], alpha: f32, x: &[f32]) {
    check::same_len(y.len(), x.len());
    // SAFETY: avx2+fma+f16c detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { axpy_f32_avx2(y, alpha, x) }
}

fn axpy_f16(y: &mut [f32], alpha: f32, x: &[u8]) {
    check::f16_len(x.len(), y.len());
    // SAFETY: avx2+fma+f16c detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { axpy_f16_avx2(y, alpha, x) }
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
    // SAFETY: AVX2+FMA detected (only reachable via Isa::kernels).
    unsafe { super::x86_math::gelu_erf(x) }
}

fn exp_sum(x: &mut [f32], shift: f32) -> f32 {
    // SAFETY: AVX2+FMA detected (only reachable via Isa::kernels).
    unsafe { super::x86_math::exp_sum(x, shift) }
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
    // SAFETY: AVX2+FMA detected (only reachable via Isa::kernels); shapes checked above.
    unsafe { super::x86_math::gemm_f32(m, n, k, a, lda, b, ldb, c, ldc) }
}

fn softmax_row(row: &mut [f32], scale: f32, bias: &[f32]) -> bool {
    check::same_len(row.len(), bias.len());
    // SAFETY: AVX2+FMA detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { super::x86_math::softmax_row(row, scale, bias) }
}

fn f32_to_f16(x: &[f32], out: &mut [u8]) {
    check::f16_len(out.len(), x.len());
    // SAFETY: avx2+fma+f16c detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { f32_to_f16_avx2(x, out) }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Horizontal sum of eight f32 lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Horizontal sum of eight i32 lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01>(s));
    _mm_cvtsi128_si32(s)
}

/// One little-endian f16 (`h.len() == 2`) to f32 with F16C (tails only).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn f16_to_f32(h: &[u8]) -> f32 {
    let bits = u16::from_le_bytes([h[0], h[1]]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

/// `[f16(p[0..2]), f16(p[2..4]), 0, 0]` as f32.
///
/// # Safety
/// `p` must point to 4 readable bytes.
#[inline]
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn load_f16x2(p: *const u8) -> __m128 {
    // SAFETY: caller guarantees 4 readable bytes; read_unaligned has no alignment need.
    let bits = unsafe { p.cast::<u32>().read_unaligned() };
    _mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32))
}

/// `[d, s, 0, 0]` of an activation block.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn load_ds(b: &BlockQ8) -> __m128 {
    // `d` and `s` are adjacent f32 fields of a #[repr(C)] struct.
    // SAFETY: reads 8 bytes starting at `b.d`, i.e. exactly `b.d` and `b.s`, inside `*b`.
    _mm_castsi128_ps(unsafe { _mm_loadl_epi64((b as *const BlockQ8).cast::<__m128i>()) })
}

/// `d_w · d_a` in all eight lanes, `d_w` being the f16 at `p`.
///
/// Converting an 8-lane broadcast (rather than one lane, then broadcasting) keeps
/// every lane of the conversion demanded: converting a single lane lets LLVM load
/// it with `vpinsrw` into an arbitrary live register, which chained the scale onto
/// the accumulator's FMA latency and halved Q4_0 throughput.
///
/// # Safety
/// `p` must point to 2 readable bytes.
#[inline]
#[target_feature(enable = "avx2,f16c")]
pub(super) unsafe fn scale8(p: *const u8, ab: &BlockQ8) -> __m256 {
    // SAFETY: caller guarantees 2 readable bytes; read_unaligned has no alignment need.
    let bits = unsafe { p.cast::<u16>().read_unaligned() };
    _mm256_mul_ps(
        _mm256_cvtph_ps(_mm_set1_epi16(bits as i16)),
        _mm256_set1_ps(ab.d),
    )
}

/// The 32 nibbles of a Q4 block as bytes 0..=15, in element order
/// (low nibbles → elements 0..16, high nibbles → elements 16..32).
///
/// # Safety
/// `p` must point to 16 readable bytes.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn load_nibbles(p: *const u8) -> __m256i {
    // SAFETY: caller guarantees 16 readable bytes; loadu has no alignment need.
    let qs = unsafe { _mm_loadu_si128(p.cast::<__m128i>()) };
    // Broadcast to both 128-bit halves (folds into a plain `vbroadcasti128` load, no
    // shuffle µop), then shift only the upper half right by 4.
    let both = _mm256_srlv_epi64(
        _mm256_broadcastsi128_si256(qs),
        _mm256_setr_epi64x(0, 0, 4, 4),
    );
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// The 32 int8 activations of a block.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn load_act(b: &BlockQ8) -> __m256i {
    // SAFETY: `qs` is a 32-byte array inside `*b`; loadu has no alignment need.
    unsafe { _mm256_loadu_si256(b.qs.as_ptr().cast::<__m256i>()) }
}

/// Eight i32 partial sums of u8 × i8 products (`u` ≤ 15 or |a| ≤ 127 keep i16 pairs exact).
#[inline]
#[target_feature(enable = "avx2")]
fn mul_sum_u8_i8(u: __m256i, a: __m256i) -> __m256 {
    let p16 = _mm256_maddubs_epi16(u, a);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)))
}

/// Eight i32 partial sums (as f32) of signed × signed products via the sign trick.
/// Requires `a` in -127..=127 (`w` may be any i8).
#[inline]
#[target_feature(enable = "avx2")]
fn mul_sum_i8_i8(w: __m256i, a: __m256i) -> __m256 {
    mul_sum_u8_i8(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w))
}

// ---------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------

/// # Safety
/// avx2+fma+f16c available; `x.len() == out.len() * 32`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_q8_avx2(x: &[f32], out: &mut [BlockQ8]) {
    debug_assert_eq!(x.len(), out.len() * QK);
    let sign = _mm256_set1_ps(-0.0);
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (i, ob) in out.iter_mut().enumerate() {
        // SAFETY: block i covers x[32i .. 32i+32], in bounds by the length precondition.
        let (v0, v1, v2, v3) = unsafe {
            let p = x.as_ptr().add(i * QK);
            (
                _mm256_loadu_ps(p),
                _mm256_loadu_ps(p.add(8)),
                _mm256_loadu_ps(p.add(16)),
                _mm256_loadu_ps(p.add(24)),
            )
        };
        let m = _mm256_max_ps(
            _mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
            _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)),
        );
        let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let m = _mm_max_ss(m, _mm_movehdup_ps(m));
        let (d, id) = q8_scale(_mm_cvtss_f32(m));
        let idv = _mm256_set1_ps(id);
        // Default MXCSR rounding: nearest, ties to even.
        let i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, idv));
        let i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, idv));
        let i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, idv));
        let i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, idv));
        let h = [
            hsum_epi32(_mm256_add_epi32(i0, i1)),
            hsum_epi32(_mm256_add_epi32(i2, i3)),
        ];
        // packs interleave 128-bit lanes; the dword permutation restores element order.
        let b = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        let b = _mm256_permutevar8x32_epi32(b, order);
        // SAFETY: `qs` is a 32-byte array; storeu has no alignment need.
        unsafe { _mm256_storeu_si256(ob.qs.as_mut_ptr().cast::<__m256i>(), b) };
        super::set_scales(ob, d, h);
    }
}

/// One Q4_0 block: (eight partial sums as f32, 8 × d_w·d_a, 0).
///
/// # Safety
/// `blk` must point to 18 readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn block_q4_0(blk: *const u8, ab: &BlockQ8) -> (__m256, __m256, __m128) {
    // SAFETY: the block's 18 bytes are readable (caller).
    let (sc, q) = unsafe { (scale8(blk, ab), load_nibbles(blk.add(2))) };
    let a = load_act(ab);
    // Σ(q − 8)·a per pair in i16: q·a pairs minus 8·a pairs; both sides and the
    // difference stay within ±2·15·127, so no saturation.
    let qa = _mm256_maddubs_epi16(q, a);
    let a8 = _mm256_maddubs_epi16(_mm256_set1_epi8(8), a);
    let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(
        _mm256_sub_epi16(qa, a8),
        _mm256_set1_epi16(1),
    ));
    (p, sc, _mm_setzero_ps())
}

/// One Q4_1 block: (eight partial sums as f32, 8 × d_w·d_a, `[d_w·d_a, m_w·s_a, 0, 0]`).
///
/// # Safety
/// `blk` must point to 20 readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn block_q4_1(blk: *const u8, ab: &BlockQ8) -> (__m256, __m256, __m128) {
    // SAFETY: the block's 20 bytes are readable (caller).
    let (dm, q) = unsafe { (load_f16x2(blk), load_nibbles(blk.add(4))) };
    let sc = _mm_mul_ps(dm, load_ds(ab));
    (
        mul_sum_u8_i8(q, load_act(ab)),
        _mm256_broadcastss_ps(sc),
        sc,
    )
}

/// One Q8_0 block: (eight partial sums as f32, 8 × d_w·d_a, 0).
///
/// # Safety
/// `blk` must point to 34 readable bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn block_q8_0(blk: *const u8, ab: &BlockQ8) -> (__m256, __m256, __m128) {
    // SAFETY: the block's 34 bytes are readable (caller).
    let (sc, q) = unsafe {
        (
            scale8(blk, ab),
            _mm256_loadu_si256(blk.add(2).cast::<__m256i>()),
        )
    };
    (mul_sum_i8_i8(q, load_act(ab)), sc, _mm_setzero_ps())
}

/// Shared driver: two blocks per iteration into two accumulators.
/// Returns (Σ lanes of Σ_b scale_b·p_b, Σ_b lane 1 of the side vectors).
///
/// # Safety
/// avx2+fma+f16c available; `w.len() == a.len() * BYTES`; `block` reads at most BYTES bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn drive<const BYTES: usize>(
    w: &[u8],
    a: &[BlockQ8],
    block: unsafe fn(*const u8, &BlockQ8) -> (__m256, __m256, __m128),
) -> (f32, f32) {
    debug_assert_eq!(w.len(), a.len() * BYTES);
    let wp = w.as_ptr();
    // Four blocks per iteration into four accumulators, then one fixed
    // reduction: the same float operations in the same order as the AVX-512
    // driver, so both ISAs give bit-identical dot products.
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
    (hsum_ps(total), _mm_cvtss_f32(_mm_movehdup_ps(side)))
}

/// # Safety
/// avx2+fma+f16c available; `w.len() == a.len() * 18`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q4_0_avx2(w: &[u8], a: &[BlockQ8]) -> f32 {
    // SAFETY: forwarded preconditions; block_q4_0 reads 18 bytes.
    unsafe { drive::<Q4_0_BLOCK_BYTES>(w, a, block_q4_0).0 }
}

/// # Safety
/// avx2+fma+f16c available; `w.len() == a.len() * 20`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q4_1_avx2(w: &[u8], a: &[BlockQ8]) -> f32 {
    // SAFETY: forwarded preconditions; block_q4_1 reads 20 bytes.
    let (dots, offsets) = unsafe { drive::<Q4_1_BLOCK_BYTES>(w, a, block_q4_1) };
    dots + offsets
}

/// # Safety
/// avx2+fma+f16c available; `w.len() == a.len() * 34`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q8_0_avx2(w: &[u8], a: &[BlockQ8]) -> f32 {
    // SAFETY: forwarded preconditions; block_q8_0 reads 34 bytes.
    unsafe { drive::<Q8_0_BLOCK_BYTES>(w, a, block_q8_0).0 }
}

/// Sub-block `j` · `ab` as eight lane partial sums (f32), signed × signed
/// through the sign trick.
///
/// # Safety
/// `blk` must point to `kind.block_bytes()` readable bytes and `j < kind.block_len() / 32`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn sub_dot(kind: QuantKind, blk: *const u8, j: usize, ab: &BlockQ8) -> __m256 {
    // SAFETY: forwarded.
    mul_sum_i8_i8(unsafe { codes(kind, blk, j) }, load_act(ab))
}

super::x86_unpack::define_dot_kind!("avx2,fma,f16c", hsum_ps);

/// # Safety
/// avx2+fma+f16c available; `a.len() == b.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f32_avx2(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 8k + 8 <= i + 32 <= n.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_ps(pa.add(i + 8 * k)),
                    _mm256_loadu_ps(pb.add(i + 8 * k)),
                )
            };
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i))) };
        acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
        i += 8;
    }
    let mut s = hsum_ps(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ));
    for (x, y) in a[i..].iter().zip(&b[i..]) {
        s += x * y;
    }
    s
}

/// # Safety
/// avx2+fma+f16c available; `w.len() == 2 * x.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_f32_avx2(w: &[u8], x: &[f32]) -> f32 {
    debug_assert_eq!(w.len(), 2 * x.len());
    let n = x.len();
    let (pw, px) = (w.as_ptr(), x.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            let j = i + 8 * k;
            // SAFETY: j + 8 <= n, so x[j..j+8] and w[2j..2j+16] are in bounds.
            let (h, v) = unsafe {
                (
                    _mm_loadu_si128(pw.add(2 * j).cast::<__m128i>()),
                    _mm256_loadu_ps(px.add(j)),
                )
            };
            *acc = _mm256_fmadd_ps(_mm256_cvtph_ps(h), v, *acc);
        }
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, so x[i..i+8] and w[2i..2i+16] are in bounds.
        let (h, v) = unsafe {
            (
                _mm_loadu_si128(pw.add(2 * i).cast::<__m128i>()),
                _mm256_loadu_ps(px.add(i)),
            )
        };
        acc[0] = _mm256_fmadd_ps(_mm256_cvtph_ps(h), v, acc[0]);
        i += 8;
    }
    let mut s = hsum_ps(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ));
    for (h, v) in w[2 * i..].chunks_exact(2).zip(&x[i..]) {
        s += f16_to_f32(h) * v;
    }
    s
}

/// # Safety
/// avx2+fma+f16c available; `y.len() == x.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn axpy_f32_avx2(y: &mut [f32], alpha: f32, x: &[f32]) {
    debug_assert_eq!(y.len(), x.len());
    let n = y.len();
    let (py, px) = (y.as_mut_ptr(), x.as_ptr());
    let av = _mm256_set1_ps(alpha);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n for both slices; y and x cannot alias (&mut vs &).
        unsafe {
            let r = _mm256_fmadd_ps(av, _mm256_loadu_ps(px.add(i)), _mm256_loadu_ps(py.add(i)));
            _mm256_storeu_ps(py.add(i), r);
        }
        i += 8;
    }
    for (yj, xj) in y[i..].iter_mut().zip(&x[i..]) {
        *yj = alpha.mul_add(*xj, *yj);
    }
}

/// # Safety
/// avx2+fma+f16c available; `x.len() == 2 * y.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn axpy_f16_avx2(y: &mut [f32], alpha: f32, x: &[u8]) {
    debug_assert_eq!(x.len(), 2 * y.len());
    let n = y.len();
    let (py, px) = (y.as_mut_ptr(), x.as_ptr());
    let av = _mm256_set1_ps(alpha);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, so y[i..i+8] and x[2i..2i+16] are in bounds.
        unsafe {
            let h = _mm256_cvtph_ps(_mm_loadu_si128(px.add(2 * i).cast::<__m128i>()));
            _mm256_storeu_ps(
                py.add(i),
                _mm256_fmadd_ps(av, h, _mm256_loadu_ps(py.add(i))),
            );
        }
        i += 8;
    }
    for (yj, h) in y[i..].iter_mut().zip(x[2 * i..].chunks_exact(2)) {
        *yj = alpha.mul_add(f16_to_f32(h), *yj);
    }
}

/// # Safety
/// avx2+fma+f16c available; `out.len() == 2 * x.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f32_to_f16_avx2(x: &[f32], out: &mut [u8]) {
    debug_assert_eq!(out.len(), 2 * x.len());
    const RNE: i32 = _MM_FROUND_TO_NEAREST_INT; // imm bit 2 clear: use this mode, not MXCSR
    let n = x.len();
    let (px, po) = (x.as_ptr(), out.as_mut_ptr());
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, so x[i..i+8] and out[2i..2i+16] are in bounds.
        unsafe {
            let h = _mm256_cvtps_ph::<RNE>(_mm256_loadu_ps(px.add(i)));
            _mm_storeu_si128(po.add(2 * i).cast::<__m128i>(), h);
        }
        i += 8;
    }
    for (&v, o) in x[i..].iter().zip(out[2 * i..].chunks_exact_mut(2)) {
        let bits = _mm_extract_epi16::<0>(_mm_cvtps_ph::<RNE>(_mm_set_ss(v))) as u16;
        o.copy_from_slice(&bits.to_le_bytes());
    }
}

// ---------------------------------------------------------------------------
// Register-blocked quantized GEMM (prefill): tiles of TR weight rows × 4 tokens.
//
// Each weight block is decoded once per tile and used for 4 tokens; each
// activation block is loaded once per tile and used for TR rows. For one row
// and block, the four tokens' products go through `vpmaddubsw` (u8 × i8 → i16
// pairs) and `vpmaddwd` against ones (→ eight exact i32 partial sums each),
// then two levels of `vphaddd` fold the four vectors into one:
// `[t0, t1, t2, t3 | t0, t1, t2, t3]` (low half: elements 0..16, high half:
// 16..32). One conversion and one FMA by `[d_w·d_a(t0..t3) | same]` per row
// and block then serve four (row, token) pairs, which moves most of the
// per-pair work off the multiply ports (the shuffles run on port 5).
//
// Every integer is exact:
// * Q4_1: q in 0..=15, |a| <= 127: |i16 pair| <= 2·15·127.
// * Q4_0: Σ(q − 8)·a = Σq·a − 8·Σa; the 8·Σa vector (same layout, per token)
//   is computed once per block and tile and subtracted in i32.
// * Q8_0: sign trick, |w| <= 128 and |a·sign(w)| <= 127: |pair| <= 32512.
//   (The +128 bias of the AVX-512 kernel would not do here: 255·127 pairs
//   saturate i16.)
//
// Q4_1's Σ m·s terms are accumulated in a second, cheap pass over the tile's
// blocks (one 4-token FMA per row and block), which keeps the main loop
// within the 16 ymm registers.
// ---------------------------------------------------------------------------

/// Rows per GEMM tile (the tile is always 4 tokens wide).
const TR: usize = 4;

fn gemm_q(
    kind: QuantKind,
    w: &[u8],
    a: &[BlockQ8],
    nb: usize,
    out: &mut [f32],
    lay: super::OutLayout,
) {
    if !matches!(kind, QuantKind::Q4_0 | QuantKind::Q4_1 | QuantKind::Q8_0) {
        return super::gemm_by_dots(&KERNELS, kind, w, a, nb, out, lay);
    }
    let (rows, tokens, rb) = super::gemm_shape(kind, w, a, nb, out, lay);
    let (rt, tt) = (rows / TR * TR, tokens / 4 * 4);
    for r in (0..rt).step_by(TR) {
        for t in (0..tt).step_by(4) {
            // SAFETY: this table is reachable only after avx2+fma+f16c were detected;
            // the slices hold TR whole rows of `rb` bytes and 4 whole tokens of `nb`
            // blocks (gemm_shape checked the lengths), which is all the tile reads.
            let tile = unsafe {
                let (w, a) = (&w[r * rb..(r + TR) * rb], &a[t * nb..(t + 4) * nb]);
                match kind {
                    QuantKind::Q4_0 => tile::<TR, Q4_0_BLOCK_BYTES>(w, rb, a, nb),
                    QuantKind::Q4_1 => tile::<TR, Q4_1_BLOCK_BYTES>(w, rb, a, nb),
                    QuantKind::Q8_0 => tile::<TR, Q8_0_BLOCK_BYTES>(w, rb, a, nb),
                    _ => unreachable!("tiled formats only"),
                }
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
        let t_from = if r < rt { tt } else { 0 };
        let wr = &w[r * rb..(r + 1) * rb];
        for t in t_from..tokens {
            out[lay.at(r, t)] = dot(wr, &a[t * nb..(t + 1) * nb]);
        }
    }
}

/// Four tokens' eight-lane i32 partial sums folded into one vector:
/// `[Σlo(m0), Σlo(m1), Σlo(m2), Σlo(m3) | Σhi(m0), …, Σhi(m3)]`.
#[inline]
#[target_feature(enable = "avx2")]
fn fold4(m: [__m256i; 4]) -> __m256i {
    _mm256_hadd_epi32(_mm256_hadd_epi32(m[0], m[1]), _mm256_hadd_epi32(m[2], m[3]))
}

/// One R×4 tile of the format with `BB` bytes per block (18: Q4_0, 20: Q4_1,
/// 34: Q8_0): `w` holds R rows of `rb` bytes, `a` 4 tokens of `nb` blocks.
/// Returns `out[r][t]` = row r · token t.
///
/// # Safety
/// avx2+fma+f16c available; `BB` is 18, 20 or 34; `w.len() >= R * rb` with
/// `rb == nb * BB`; `a.len() >= 4 * nb`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile<const R: usize, const BB: usize>(
    w: &[u8],
    rb: usize,
    a: &[BlockQ8],
    nb: usize,
) -> [[f32; 4]; R] {
    debug_assert!(w.len() >= R * rb && a.len() >= 4 * nb);
    debug_assert_eq!(rb, nb * BB);
    let wp = w.as_ptr();
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    let mut side = [_mm_setzero_ps(); R];
    for b in 0..nb {
        let ab: [&BlockQ8; 4] = core::array::from_fn(|t| &a[t * nb + b]);
        let act: [__m256i; 4] = ab.map(|x| load_act(x));
        let da4 = _mm_setr_ps(ab[0].d, ab[1].d, ab[2].d, ab[3].d);
        let da = _mm256_set_m128(da4, da4);
        // Q4_0: 8·Σa in the folded layout, once per token and block.
        let a8 = if BB == Q4_0_BLOCK_BYTES {
            fold4(
                act.map(|x| _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(8), x), ones)),
            )
        } else {
            _mm256_setzero_si256()
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: block b of row r lies inside `w` (r < R, b < nb, rb = nb·BB).
            let blk = unsafe { wp.add(r * rb + b * BB) };
            // SAFETY: the block's first 4 bytes are readable (BB >= 18): d, and Q4_1's m.
            let dm = unsafe { load_f16x2(blk) };
            let folded = if BB == Q8_0_BLOCK_BYTES {
                // SAFETY: bytes 2..34 of the block are readable.
                let q = unsafe { _mm256_loadu_si256(blk.add(2).cast::<__m256i>()) };
                let qa = _mm256_abs_epi8(q);
                fold4(act.map(|x| {
                    _mm256_madd_epi16(_mm256_maddubs_epi16(qa, _mm256_sign_epi8(x, q)), ones)
                }))
            } else {
                let off = if BB == Q4_1_BLOCK_BYTES { 4 } else { 2 };
                // SAFETY: bytes off..off+16 of the block are readable (BB = off + 16).
                let q = unsafe { load_nibbles(blk.add(off)) };
                let f = fold4(act.map(|x| _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), ones)));
                _mm256_sub_epi32(f, a8)
            };
            let sc = _mm256_mul_ps(_mm256_broadcastss_ps(dm), da);
            *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(folded), sc, *acc);
        }
    }
    // Q4_1's Σ_b m·s, in a second pass so that the main loop keeps its registers.
    if BB == Q4_1_BLOCK_BYTES {
        for b in 0..nb {
            let s = _mm_setr_ps(a[b].s, a[nb + b].s, a[2 * nb + b].s, a[3 * nb + b].s);
            for (r, side) in side.iter_mut().enumerate() {
                // SAFETY: block b of row r lies inside `w`; its bytes 0..4 are d and m.
                let dm = unsafe { load_f16x2(wp.add(r * rb + b * BB)) };
                *side = _mm_fmadd_ps(_mm_shuffle_ps::<0b01_01_01_01>(dm, dm), s, *side);
            }
        }
    }
    let mut out = [[0f32; 4]; R];
    for ((o, acc), side) in out.iter_mut().zip(acc).zip(side) {
        let sum = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
        let sum = _mm_add_ps(sum, side);
        // SAFETY: storeu of 4 floats into a 4-float array.
        unsafe { _mm_storeu_ps(o.as_mut_ptr(), sum) };
    }
    out
}

fn layer_norm_row(row: &mut [f32], eps: f32, w: &[f32], b: &[f32]) {
    crate::norm::layer_norm_row_generic(&KERNELS, row, eps, w, b)
}
