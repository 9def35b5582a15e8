//! AArch64 Advanced SIMD with the dot-product extension (FEAT_DotProd).
//!
//! `vdotq_s32` is still an unstable intrinsic, so the one instruction this
//! module needs, `sdot` (four i8 × i8 products summed into each i32 lane), is
//! issued with stable inline assembly from functions compiled with
//! `#[target_feature(enable = "neon,dotprod")]`. The table is selected only
//! when `is_aarch64_feature_detected!("dotprod")` holds (see `Isa::NeonDot`).
//! The f16 → f32 scale conversions use `fcvtl` (Armv8.0 Advanced SIMD, also
//! through `asm!`: the fp16 vector intrinsics are unstable too; the helper
//! lives in [`super::arm_unpack`], shared with `neon`).
//!
//! Everything that involves no int8 products (quantization, f32/f16 kernels)
//! is the plain NEON module's code.
//!
//! * Q4_0: nibbles minus 8 as i8, `sdot` with the activations.
//! * Q4_1: nibbles (0..=15) as i8, `sdot`; plus m·s per block.
//! * Q8_0: `sdot` of the raw i8 weights.
//! * Q5_0, Q5_1, Q4_K, Q5_K, Q6_K: the shared sub-block decoder
//!   [`super::arm_unpack`], `sdot` per sub-block (per half for Q6_K); see
//!   [`dot_kind`].
//!
//! Every integer is exact: a lane sums at most 8 products of magnitude
//! <= 128·127. Dots process four blocks per step: their four `sdot` results
//! are reduced with two levels of pairwise adds to one vector of four block
//! sums, converted once and FMA'd by the four blocks' d_w·d_a.
//!
//! The GEMM tile is 4 weight rows × 8 (or 4) tokens: each weight block is
//! decoded once per tile, and per token the four rows' sums fold into one
//! vector, so the accumulator of a token holds its four rows.

#![deny(unsafe_op_in_unsafe_fn)]

use super::arm_unpack::{act, block_scales, codes, f16_bits, f32x4, f32x4_at, halves, kind_of};
use super::{
    check, neon, BlockQ8, Isa, Kernels, OutLayout, QuantKind, Q4_0_BLOCK_BYTES, Q4_1_BLOCK_BYTES,
    Q8_0_BLOCK_BYTES, QK,
};
use core::arch::aarch64::*;
use core::arch::asm;

/// Reachable only through `Isa::NeonDot.kernels()`, which checks run-time
/// support (neon + dotprod) first.
pub(super) static KERNELS: Kernels = Kernels {
    isa: Isa::NeonDot,
    quantize_q8: neon::quantize_q8,
    dot_q4_0,
    dot_q4_1,
    dot_q8_0,
    dot4_q5_0: None,
    dot_q5_0: dot_kind_wrapper::<2>,
    dot_q5_1: dot_kind_wrapper::<3>,
    dot_q4_k: dot_kind_wrapper::<5>,
    dot_q5_k: dot_kind_wrapper::<6>,
    dot_q6_k: dot_kind_wrapper::<7>,
    dot_f32: neon::dot_f32,
    dot_f16_f32: neon::dot_f16_f32,
    axpy_f32: neon::axpy_f32,
    axpy_f16: neon::axpy_f16,
    f32_to_f16: super::scalar::f32_to_f16,
    gemm_q,
    gemm_tokens: 64,
    pack_q: None,
    gemm_packed: None,
    geglu: super::scalar::geglu,
    swiglu: super::scalar::swiglu,
    gelu_erf: super::scalar::gelu_erf,
    exp_sum: super::scalar::exp_sum,
    gemm_f32: super::scalar::gemm_f32,
    transpose_f32: super::scalar::transpose_f32,
    layer_norm_row,
    softmax_row: super::scalar::softmax_row,
};

// ---------------------------------------------------------------------------
// Safe wrappers (the table entries), reachable only after neon + dotprod were
// detected.
// ---------------------------------------------------------------------------

fn dot_q4_0(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::quant_row(w, a, Q4_0_BLOCK_BYTES);
    // SAFETY: neon+dotprod detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot::<Q4_0_BLOCK_BYTES>(w, a) }
}

fn dot_q4_1(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::quant_row(w, a, Q4_1_BLOCK_BYTES);
    // SAFETY: neon+dotprod detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot::<Q4_1_BLOCK_BYTES>(w, a) }
}

fn dot_q8_0(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::quant_row(w, a, Q8_0_BLOCK_BYTES);
    // SAFETY: neon+dotprod detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot::<Q8_0_BLOCK_BYTES>(w, a) }
}

/// The formats decoded through [`super::arm_unpack`] (`K` = index in
/// [`QuantKind::ALL`]).
fn dot_kind_wrapper<const K: u8>(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::kind_row(w, a, kind_of(K));
    // SAFETY: neon+dotprod detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot_kind::<K>(w, a) }
}

// ---------------------------------------------------------------------------
// Instructions without stable intrinsics
// ---------------------------------------------------------------------------

/// `acc[i] + Σ_{j<4} a[4i+j]·b[4i+j]` (signed bytes, exact in i32): `sdot`.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: `sdot` (FEAT_DotProd) is enabled for this function and detected at run
    // time before any caller is reachable; it only reads and writes the three vector
    // registers bound here (no memory, stack or flags).
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// `[Σ lanes of s[0], …, Σ lanes of s[3]]`.
#[inline]
#[target_feature(enable = "neon")]
fn fold4(s: [int32x4_t; 4]) -> int32x4_t {
    vpaddq_s32(vpaddq_s32(s[0], s[1]), vpaddq_s32(s[2], s[3]))
}

// ---------------------------------------------------------------------------
// Blocks
// ---------------------------------------------------------------------------

/// The 32 weights of a block of the format with `BB` bytes per block (18: Q4_0,
/// 20: Q4_1, 34: Q8_0) as signed bytes: elements 0..16 and 16..32.
///
/// # Safety
/// `blk` must point to `BB` readable bytes; `BB` is 18, 20 or 34.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn weights<const BB: usize>(blk: *const u8) -> (int8x16_t, int8x16_t) {
    if BB == Q8_0_BLOCK_BYTES {
        // SAFETY: bytes 2..34 of the block are readable (caller).
        unsafe {
            (
                vld1q_s8(blk.add(2).cast::<i8>()),
                vld1q_s8(blk.add(18).cast::<i8>()),
            )
        }
    } else {
        let off = if BB == Q4_1_BLOCK_BYTES { 4 } else { 2 };
        // SAFETY: bytes off..off+16 of the block are readable (caller; BB = off + 16).
        let q = unsafe { vld1q_u8(blk.add(off)) };
        let lo = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F)));
        let hi = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q));
        if BB == Q4_0_BLOCK_BYTES {
            (vsubq_s8(lo, vdupq_n_s8(8)), vsubq_s8(hi, vdupq_n_s8(8)))
        } else {
            (lo, hi)
        }
    }
}

/// Four lanes whose sum is the block's exact integer dot product.
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn isum(w: (int8x16_t, int8x16_t), a: (int8x16_t, int8x16_t)) -> int32x4_t {
    sdot(sdot(vdupq_n_s32(0), w.0, a.0), w.1, a.1)
}

// ---------------------------------------------------------------------------
// Dot products
// ---------------------------------------------------------------------------

/// Row · activations for the format with `BB` bytes per block.
///
/// # Safety
/// neon + dotprod available; `BB` is 18, 20 or 34; `w.len() == a.len() * BB`.
#[target_feature(enable = "neon,dotprod")]
unsafe fn dot<const BB: usize>(w: &[u8], a: &[BlockQ8]) -> f32 {
    debug_assert_eq!(w.len(), a.len() * BB);
    let wp = w.as_ptr();
    let mut acc = vdupq_n_f32(0.0);
    let quads = a.len() / 4;
    for (k, q) in a.chunks_exact(4).enumerate() {
        // SAFETY: blocks 4k..4k+4 < a.len() lie inside `w` (length precondition).
        let blk: [*const u8; 4] = core::array::from_fn(|j| unsafe { wp.add((4 * k + j) * BB) });
        // SAFETY: each pointer addresses one whole block of `w` (see above).
        let sums: [int32x4_t; 4] =
            core::array::from_fn(|j| isum(unsafe { weights::<BB>(blk[j]) }, act(&q[j])));
        // SAFETY: every block starts with its f16 `d` (see above for the bounds).
        let dw = halves(blk.map(|p| unsafe { f16_bits(p) }));
        let da = f32x4(core::array::from_fn(|j| q[j].d));
        acc = vfmaq_f32(acc, vcvtq_f32_s32(fold4(sums)), vmulq_f32(dw, da));
        if BB == Q4_1_BLOCK_BYTES {
            // SAFETY: Q4_1's `m` is bytes 2..4 of each block (see above for the bounds).
            let m = halves(blk.map(|p| unsafe { f16_bits(p.add(2)) }));
            acc = vfmaq_f32(acc, m, f32x4(core::array::from_fn(|j| q[j].s)));
        }
    }
    let mut total = vaddvq_f32(acc);
    for (i, ab) in a.iter().enumerate().skip(4 * quads) {
        // SAFETY: block i < a.len() lies inside `w` (length precondition).
        let blk = unsafe { wp.add(i * BB) };
        // SAFETY: as above.
        let s = vaddvq_s32(isum(unsafe { weights::<BB>(blk) }, act(ab)));
        // SAFETY: as above; every block starts with d (and Q4_1's m).
        let (d, m) = unsafe { (f16_bits(blk), f16_bits(blk.add(2))) };
        let dm = halves([d, m, 0, 0]);
        total += vgetq_lane_f32::<0>(dm) * ab.d * s as f32;
        if BB == Q4_1_BLOCK_BYTES {
            total += vgetq_lane_f32::<1>(dm) * ab.s;
        }
    }
    total
}

/// Any format through the shared sub-block decoder, four 32-value sub-blocks
/// per step: each sub-block's exact integer dot is two `sdot`s (one per
/// 16-value half for Q6_K, whose halves have their own scales); [`fold4`]
/// turns four of them into one vector with one lane per sub-block (two
/// vectors with one lane per half for Q6_K), converted once and FMA'd by the
/// scales `d_w·d_a`; `Σ m·s_a` (Q5_1, Q4_K, Q5_K) goes to a side vector.
/// Storage-block scales are decoded once per block: per K-quant super-block
/// with [`block_scales`], four blocks' f16 `d` (and `m`) at once for
/// Q5_0/Q5_1. Lanes sum at most 8 products of magnitude ≤ 32·128: exact.
///
/// # Safety
/// neon + dotprod available; `w.len() == kind_of(K).row_bytes(a.len())`.
#[target_feature(enable = "neon,dotprod")]
unsafe fn dot_kind<const K: u8>(w: &[u8], a: &[BlockQ8]) -> f32 {
    let kind = kind_of(K);
    debug_assert_eq!(Some(w.len()), kind.row_bytes(a.len()));
    let (bb, per) = (kind.block_bytes(), kind.block_len() / QK);
    let has_min = matches!(
        kind,
        QuantKind::Q4_1 | QuantKind::Q5_1 | QuantKind::Q4_K | QuantKind::Q5_K
    );
    let wp = w.as_ptr();
    let mut acc = [vdupq_n_f32(0.0); 2];
    let mut side = vdupq_n_f32(0.0);
    let mut tail = 0f32;
    if per == 1 {
        // Q5_0 / Q5_1: four 32-value storage blocks per step.
        for (g, q) in a.chunks_exact(4).enumerate() {
            // SAFETY: blocks 4g..4g+4 < a.len() lie inside `w` (length precondition).
            let blk: [*const u8; 4] = core::array::from_fn(|i| unsafe { wp.add((4 * g + i) * bb) });
            let sums = fold4(core::array::from_fn(|i| {
                // SAFETY: each pointer addresses one whole block (see above).
                isum(unsafe { codes(kind, blk[i], 0) }, act(&q[i]))
            }));
            // SAFETY: every block starts with its f16 `d` (see above for the bounds).
            let dw = halves(blk.map(|p| unsafe { f16_bits(p) }));
            let da = f32x4(core::array::from_fn(|i| q[i].d));
            acc[g & 1] = vfmaq_f32(acc[g & 1], vcvtq_f32_s32(sums), vmulq_f32(dw, da));
            if has_min {
                // SAFETY: Q5_1's `m` is bytes 2..4 of each block (see above for the bounds).
                let m = halves(blk.map(|p| unsafe { f16_bits(p.add(2)) }));
                side = vfmaq_f32(side, m, f32x4(core::array::from_fn(|i| q[i].s)));
            }
        }
        for (i, ab) in a.iter().enumerate().skip(a.len() / 4 * 4) {
            // SAFETY: block i < a.len() lies inside `w` (length precondition).
            let blk = unsafe { wp.add(i * bb) };
            // SAFETY: blk holds a whole block; sub-block 0 is its only one.
            let ((d, m), q) = unsafe { (block_scales(kind, blk), codes(kind, blk, 0)) };
            let s = vaddvq_s32(isum(q, act(ab)));
            tail += d[0] * ab.d * s as f32 + m[0] * ab.s;
        }
    } else {
        // K-quants: eight sub-blocks per super-block, in two steps of four.
        let zero = vdupq_n_s32(0);
        for (s, sb) in a.chunks_exact(per).enumerate() {
            // SAFETY: super-block s lies inside `w` (length precondition).
            let blk = unsafe { wp.add(s * bb) };
            // SAFETY: blk holds a whole block.
            let (ds, ms) = unsafe { block_scales(kind, blk) };
            for g in 0..per / 4 {
                let (q, j0) = (&sb[4 * g..4 * g + 4], 4 * g);
                // SAFETY: blk holds a whole block and j0 + i < 8.
                let c: [_; 4] = core::array::from_fn(|i| unsafe { codes(kind, blk, j0 + i) });
                let x: [_; 4] = core::array::from_fn(|i| act(&q[i]));
                let da = f32x4(core::array::from_fn(|i| q[i].d));
                // ds[2j], ds[2j + 1]: the half scales of sub-block j.
                let (d0, d1) = (f32x4_at(&ds, 2 * j0), f32x4_at(&ds, 2 * j0 + 4));
                if kind == QuantKind::Q6_K {
                    let h = |i: usize| (sdot(zero, c[i].0, x[i].0), sdot(zero, c[i].1, x[i].1));
                    let (h0, h1, h2, h3) = (h(0), h(1), h(2), h(3));
                    // Lanes: [h0, h1] of sub-blocks j0, j0+1 / of j0+2, j0+3.
                    let s0 = fold4([h0.0, h0.1, h1.0, h1.1]);
                    let s1 = fold4([h2.0, h2.1, h3.0, h3.1]);
                    let (a0, a1) = (vzip1q_f32(da, da), vzip2q_f32(da, da));
                    acc[0] = vfmaq_f32(acc[0], vcvtq_f32_s32(s0), vmulq_f32(d0, a0));
                    acc[1] = vfmaq_f32(acc[1], vcvtq_f32_s32(s1), vmulq_f32(d1, a1));
                } else {
                    let sums = fold4(core::array::from_fn(|i| isum(c[i], x[i])));
                    // Both halves share the scale: one per sub-block (even entries).
                    let d = vuzp1q_f32(d0, d1);
                    acc[g & 1] = vfmaq_f32(acc[g & 1], vcvtq_f32_s32(sums), vmulq_f32(d, da));
                    if has_min {
                        let s = f32x4(core::array::from_fn(|i| q[i].s));
                        side = vfmaq_f32(side, f32x4_at(&ms, j0), s);
                    }
                }
            }
        }
    }
    vaddvq_f32(vaddq_f32(acc[0], acc[1])) + vaddvq_f32(side) + tail
}

// ---------------------------------------------------------------------------
// Register-blocked GEMM (prefill): tiles of 4 weight rows × T tokens.
// ---------------------------------------------------------------------------

fn gemm_q(kind: QuantKind, w: &[u8], a: &[BlockQ8], nb: usize, out: &mut [f32], lay: OutLayout) {
    match kind {
        QuantKind::Q4_0 => gemm::<Q4_0_BLOCK_BYTES>(w, a, nb, out, lay),
        QuantKind::Q4_1 => gemm::<Q4_1_BLOCK_BYTES>(w, a, nb, out, lay),
        QuantKind::Q8_0 => gemm::<Q8_0_BLOCK_BYTES>(w, a, nb, out, lay),
        _ => super::gemm_by_dots(&KERNELS, kind, w, a, nb, out, lay),
    }
}

fn gemm<const BB: usize>(w: &[u8], a: &[BlockQ8], nb: usize, out: &mut [f32], lay: OutLayout) {
    let kind = match BB {
        Q4_0_BLOCK_BYTES => QuantKind::Q4_0,
        Q4_1_BLOCK_BYTES => QuantKind::Q4_1,
        _ => QuantKind::Q8_0,
    };
    let (rows, tokens, rb) = super::gemm_shape(kind, w, a, nb, out, lay);
    let r4 = rows / 4 * 4;
    let t8 = tokens / 8 * 8;
    let t4 = tokens / 4 * 4;
    for r in (0..r4).step_by(4) {
        let wr = &w[r * rb..(r + 4) * rb];
        let mut t = 0;
        while t < t4 {
            let step = if t < t8 { 8 } else { 4 };
            let at = &a[t * nb..(t + step) * nb];
            // SAFETY: this table is reachable only after neon+dotprod were detected;
            // `wr` holds 4 whole rows of `rb = nb·BB` bytes and `at` `step` whole tokens
            // of `nb` blocks (gemm_shape checked the lengths).
            unsafe {
                if step == 8 {
                    store(&tile::<8, BB>(wr, rb, at, nb), out, lay, r, t);
                } else {
                    store(&tile::<4, BB>(wr, rb, at, nb), out, lay, r, t);
                }
            }
            t += step;
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

/// Writes a tile (`tile[t][r]` = row r0 + r · token t0 + t) where `lay` says.
fn store<const T: usize>(
    tile: &[[f32; 4]; T],
    out: &mut [f32],
    lay: OutLayout,
    r0: usize,
    t0: usize,
) {
    for (t, col) in tile.iter().enumerate() {
        for (r, &v) in col.iter().enumerate() {
            out[lay.at(r0 + r, t0 + t)] = v;
        }
    }
}

/// One 4×T tile: `w` holds 4 rows of `rb` bytes, `a` T tokens of `nb` blocks.
/// Returns `out[t][r]` = row r · token t.
///
/// # Safety
/// neon + dotprod available; `BB` is 18, 20 or 34; `w.len() >= 4 * rb` with
/// `rb == nb * BB`; `a.len() >= T * nb`.
#[target_feature(enable = "neon,dotprod")]
unsafe fn tile<const T: usize, const BB: usize>(
    w: &[u8],
    rb: usize,
    a: &[BlockQ8],
    nb: usize,
) -> [[f32; 4]; T] {
    debug_assert!(w.len() >= 4 * rb && a.len() >= T * nb);
    debug_assert_eq!(rb, nb * BB);
    let wp = w.as_ptr();
    let mut acc = [vdupq_n_f32(0.0); T];
    for b in 0..nb {
        // SAFETY: block b of row r lies inside `w` (r < 4, b < nb, rb = nb·BB).
        let blk: [*const u8; 4] = core::array::from_fn(|r| unsafe { wp.add(r * rb + b * BB) });
        // SAFETY: each pointer addresses one whole block (see above).
        let wq = blk.map(|p| unsafe { weights::<BB>(p) });
        // SAFETY: every block starts with its f16 `d` (see above for the bounds).
        let dw = halves(blk.map(|p| unsafe { f16_bits(p) }));
        let m = if BB == Q4_1_BLOCK_BYTES {
            // SAFETY: Q4_1's `m` is bytes 2..4 of each block (see above for the bounds).
            halves(blk.map(|p| unsafe { f16_bits(p.add(2)) }))
        } else {
            vdupq_n_f32(0.0)
        };
        for (t, acc) in acc.iter_mut().enumerate() {
            let ab = &a[t * nb + b];
            let x = act(ab);
            let sums = fold4(wq.map(|wr| isum(wr, x)));
            *acc = vfmaq_f32(*acc, vcvtq_f32_s32(sums), vmulq_n_f32(dw, ab.d));
            if BB == Q4_1_BLOCK_BYTES {
                *acc = vfmaq_n_f32(*acc, m, ab.s);
            }
        }
    }
    let mut out = [[0f32; 4]; T];
    for (o, acc) in out.iter_mut().zip(acc) {
        // SAFETY: stores 4 f32 into a 4-element array.
        unsafe { vst1q_f32(o.as_mut_ptr(), acc) };
    }
    out
}

fn layer_norm_row(row: &mut [f32], eps: f32, w: &[f32], b: &[f32]) {
    crate::norm::layer_norm_row_generic(&KERNELS, row, eps, w, b)
}
