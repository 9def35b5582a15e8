//! AArch64 Advanced SIMD (NEON) kernels.
//!
//! Plain NEON (Armv8.0), for CPUs without the dot-product extension; the
//! `neondot` module builds on this one for those with it. int8 products use
//! `vmull_s8` (exact i16) and `vpadalq_s16` (pairwise widen-accumulate to
//! i32); with activations in -127..=127 no intermediate can overflow. f16 rows
//! are converted through a small stack buffer with the `half` crate, then go
//! through the f32 kernels.
//!
//! Q5_0, Q5_1 and the K-quants go through the shared sub-block decoder
//! [`super::arm_unpack`] (see [`dot_kind`]); their codes are small (|q| ≤ 32),
//! so up to four products are summed in i16 lanes (`vmull_s8`/`vmlal_s8`)
//! before the widening pairwise adds.
//!
//! The wrappers are `pub(super)` so that the `neondot` table can reuse the
//! kernels that do not involve int8 products; they remain reachable only
//! through `Isa::Neon.kernels()` / `Isa::NeonDot.kernels()`, i.e. after NEON
//! was detected.

#![deny(unsafe_op_in_unsafe_fn)]

use super::arm_unpack::{act, block_scales, codes, f16_bits, f32x4, f32x4_at, halves, kind_of};
use super::{
    check, q8_scale, BlockQ8, Isa, Kernels, QuantKind, Q4_0_BLOCK_BYTES, Q4_1_BLOCK_BYTES,
    Q8_0_BLOCK_BYTES, QK,
};
use core::arch::aarch64::*;
use half::f16;

/// Reachable only through `Isa::Neon.kernels()`, which checks run-time support first.
pub(super) static KERNELS: Kernels = Kernels {
    isa: Isa::Neon,
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

pub(super) fn quantize_q8(x: &[f32], out: &mut [BlockQ8]) {
    check::quantize(x, out);
    // SAFETY: neon detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { quantize_q8_neon(x, out) }
}

fn dot_q4_0(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::quant_row(w, a, Q4_0_BLOCK_BYTES);
    // SAFETY: neon detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot_q4_neon::<false>(w, a) }
}

fn dot_q4_1(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::quant_row(w, a, Q4_1_BLOCK_BYTES);
    // SAFETY: neon detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot_q4_neon::<true>(w, a) }
}

fn dot_q8_0(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::quant_row(w, a, Q8_0_BLOCK_BYTES);
    // SAFETY: neon detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot_q8_0_neon(w, a) }
}

/// The formats decoded through [`super::arm_unpack`] (`K` = index in
/// [`QuantKind::ALL`]: 2, 3, 5, 6 or 7).
fn dot_kind_wrapper<const K: u8>(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::kind_row(w, a, kind_of(K));
    // SAFETY: neon detected (only reachable via Isa::kernels); lengths checked above;
    // the table only instantiates K in {2, 3, 5, 6, 7}.
    unsafe { dot_kind::<K>(w, a) }
}

pub(super) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    check::same_len(a.len(), b.len());
    // SAFETY: neon detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { dot_f32_neon(a, b) }
}

pub(super) fn axpy_f32(y: &mut [f32], alpha: f32, x: &[f32]) {
    check::same_len(y.len(), x.len());
    // SAFETY: neon detected (only reachable via Isa::kernels); lengths checked above.
    unsafe { axpy_f32_neon(y, alpha, x) }
}

const CHUNK: usize = 64;

fn f16_chunk(src: &[u8], dst: &mut [f32; CHUNK]) -> usize {
    let n = src.len() / 2;
    for (d, h) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = f16::from_le_bytes([h[0], h[1]]).to_f32();
    }
    n
}

pub(super) fn dot_f16_f32(w: &[u8], x: &[f32]) -> f32 {
    check::f16_len(w.len(), x.len());
    let mut buf = [0.0f32; CHUNK];
    let mut acc = 0.0f32;
    for (wc, xc) in w.chunks(2 * CHUNK).zip(x.chunks(CHUNK)) {
        let n = f16_chunk(wc, &mut buf);
        acc += dot_f32(&buf[..n], xc);
    }
    acc
}

pub(super) fn axpy_f16(y: &mut [f32], alpha: f32, x: &[u8]) {
    check::f16_len(x.len(), y.len());
    let mut buf = [0.0f32; CHUNK];
    for (yc, xc) in y.chunks_mut(CHUNK).zip(x.chunks(2 * CHUNK)) {
        let n = f16_chunk(xc, &mut buf);
        axpy_f32(yc, alpha, &buf[..n]);
    }
}

#[inline]
#[target_feature(enable = "neon")]
fn hmax(v: float32x4_t) -> f32 {
    vmaxvq_f32(v)
}

/// # Safety
/// neon available; `x.len() == out.len() * 32`.
#[target_feature(enable = "neon")]
unsafe fn quantize_q8_neon(x: &[f32], out: &mut [BlockQ8]) {
    debug_assert_eq!(x.len(), out.len() * QK);
    for (i, ob) in out.iter_mut().enumerate() {
        // SAFETY: block i covers x[32i .. 32i+32], in bounds by the length precondition.
        let v: [float32x4_t; 8] = unsafe {
            let p = x.as_ptr().add(i * QK);
            core::array::from_fn(|k| vld1q_f32(p.add(4 * k)))
        };
        let mut m = vabsq_f32(v[0]);
        for vk in &v[1..] {
            m = vmaxq_f32(m, vabsq_f32(*vk));
        }
        let (d, id) = q8_scale(hmax(m));
        // vcvtnq: round to nearest, ties to even.
        let q: [int32x4_t; 8] = core::array::from_fn(|k| vcvtnq_s32_f32(vmulq_n_f32(v[k], id)));
        // q[0..4] hold values 0..16, q[4..8] values 16..32.
        let lo = vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3]));
        let hi = vaddq_s32(vaddq_s32(q[4], q[5]), vaddq_s32(q[6], q[7]));
        let h = [vaddvq_s32(lo), vaddvq_s32(hi)];
        for k in 0..4 {
            let h = vcombine_s16(vqmovn_s32(q[2 * k]), vqmovn_s32(q[2 * k + 1]));
            // SAFETY: qs[8k .. 8k+8] lies inside the 32-byte array.
            unsafe { vst1_s8(ob.qs.as_mut_ptr().add(8 * k), vqmovn_s16(h)) };
        }
        super::set_scales(ob, d, h);
    }
}

/// Σ of 16 i8×i8 products into four i32 lanes (needs |b| <= 127 or |a| <= 127).
#[inline]
#[target_feature(enable = "neon")]
fn mul_acc16(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    let hi = vmull_high_s8(a, b);
    vpadalq_s16(vpadalq_s16(acc, lo), hi)
}

/// Q4_0 (`OFFSET = false`: nibble − 8) or Q4_1 (`OFFSET = true`: nibble, plus m·s).
///
/// # Safety
/// neon available; `w.len() == a.len() * (18 or 20)`.
#[target_feature(enable = "neon")]
unsafe fn dot_q4_neon<const OFFSET: bool>(w: &[u8], a: &[BlockQ8]) -> f32 {
    let bytes = if OFFSET {
        Q4_1_BLOCK_BYTES
    } else {
        Q4_0_BLOCK_BYTES
    };
    debug_assert_eq!(w.len(), a.len() * bytes);
    let mask = vdupq_n_u8(0x0F);
    let eight = vdupq_n_s8(8);
    let mut acc = [vdupq_n_f32(0.0); 2];
    let mut offs = 0.0f32;
    for (i, ab) in a.iter().enumerate() {
        let blk = &w[i * bytes..(i + 1) * bytes];
        let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
        let qoff = if OFFSET { 4 } else { 2 };
        // SAFETY: blk[qoff .. qoff+16] is in bounds (blk has `bytes` = qoff + 16 bytes),
        // and ab.qs has 32 bytes.
        let (qs, a0, a1) = unsafe {
            (
                vld1q_u8(blk.as_ptr().add(qoff)),
                vld1q_s8(ab.qs.as_ptr()),
                vld1q_s8(ab.qs.as_ptr().add(16)),
            )
        };
        let mut lo = vreinterpretq_s8_u8(vandq_u8(qs, mask));
        let mut hi = vreinterpretq_s8_u8(vshrq_n_u8::<4>(qs));
        if !OFFSET {
            lo = vsubq_s8(lo, eight);
            hi = vsubq_s8(hi, eight);
        }
        let sumi = mul_acc16(mul_acc16(vdupq_n_s32(0), lo, a0), hi, a1);
        acc[i & 1] = vfmaq_n_f32(acc[i & 1], vcvtq_f32_s32(sumi), d * ab.d);
        if OFFSET {
            offs += f16::from_le_bytes([blk[2], blk[3]]).to_f32() * ab.s;
        }
    }
    vaddvq_f32(vaddq_f32(acc[0], acc[1])) + offs
}

/// # Safety
/// neon available; `w.len() == a.len() * 34`.
#[target_feature(enable = "neon")]
unsafe fn dot_q8_0_neon(w: &[u8], a: &[BlockQ8]) -> f32 {
    debug_assert_eq!(w.len(), a.len() * Q8_0_BLOCK_BYTES);
    let mut acc = [vdupq_n_f32(0.0); 2];
    for (i, (blk, ab)) in w.chunks_exact(Q8_0_BLOCK_BYTES).zip(a).enumerate() {
        let d = f16::from_le_bytes([blk[0], blk[1]]).to_f32();
        // SAFETY: blk[2..34] and ab.qs[0..32] are in bounds.
        let (w0, w1, a0, a1) = unsafe {
            let p = blk.as_ptr().add(2).cast::<i8>();
            (
                vld1q_s8(p),
                vld1q_s8(p.add(16)),
                vld1q_s8(ab.qs.as_ptr()),
                vld1q_s8(ab.qs.as_ptr().add(16)),
            )
        };
        let sumi = mul_acc16(mul_acc16(vdupq_n_s32(0), w0, a0), w1, a1);
        acc[i & 1] = vfmaq_n_f32(acc[i & 1], vcvtq_f32_s32(sumi), d * ab.d);
    }
    vaddvq_f32(vaddq_f32(acc[0], acc[1]))
}

/// Products of one 32-value sub-block with its activations in eight i16
/// lanes, four products per lane (`vmull_s8` + three `vmlal_s8`): exact for
/// codes |q| ≤ 31 (every format here but Q6_K), as 4·31·128 < 2^15.
#[inline]
#[target_feature(enable = "neon")]
fn prod32(w: (int8x16_t, int8x16_t), a: (int8x16_t, int8x16_t)) -> int16x8_t {
    let p = vmull_s8(vget_low_s8(w.0), vget_low_s8(a.0));
    let p = vmlal_high_s8(p, w.0, a.0);
    let p = vmlal_s8(p, vget_low_s8(w.1), vget_low_s8(a.1));
    vmlal_high_s8(p, w.1, a.1)
}

/// `[Σ lanes of p[0], …, Σ lanes of p[3]]` for four [`prod32`] results. The
/// first pairwise add stays in i16 (eight products per lane: ≤ 8·31·128 =
/// 31744 < 2^15), then widens.
#[inline]
#[target_feature(enable = "neon")]
fn sum4(p: [int16x8_t; 4]) -> int32x4_t {
    vpaddq_s32(
        vpaddlq_s16(vpaddq_s16(p[0], p[1])),
        vpaddlq_s16(vpaddq_s16(p[2], p[3])),
    )
}

/// Q6_K (|q| ≤ 32, halves scaled separately): one sub-block's products as
/// `[half 0, half 0, half 1, half 1]` partial sums (two products per i16 lane,
/// four after the first pairwise add: ≤ 4·32·128 = 2^14).
#[inline]
#[target_feature(enable = "neon")]
fn halves_sums(w: (int8x16_t, int8x16_t), a: (int8x16_t, int8x16_t)) -> int32x4_t {
    let h0 = vmlal_high_s8(vmull_s8(vget_low_s8(w.0), vget_low_s8(a.0)), w.0, a.0);
    let h1 = vmlal_high_s8(vmull_s8(vget_low_s8(w.1), vget_low_s8(a.1)), w.1, a.1);
    vpaddlq_s16(vpaddq_s16(h0, h1))
}

/// Any format through the shared sub-block decoder, four 32-value sub-blocks
/// per step: their exact integer dots are folded into one vector (one lane
/// per sub-block; for Q6_K, whose halves have their own scales, two vectors
/// with one lane per half), converted once and FMA'd by the scales `d_w·d_a`;
/// `Σ m·s_a` (Q5_1, Q4_K, Q5_K) goes to a side vector. Storage-block scales
/// are decoded once per block: per K-quant super-block with
/// [`block_scales`], four blocks' f16 `d` (and `m`) at once for Q5_0/Q5_1.
///
/// # Safety
/// neon available; `w.len() == kind_of(K).row_bytes(a.len())`; `K` is 2, 3, 5,
/// 6 or 7 (codes |q| ≤ 32: Q8_0's would overflow the i16 partial sums).
#[target_feature(enable = "neon")]
unsafe fn dot_kind<const K: u8>(w: &[u8], a: &[BlockQ8]) -> f32 {
    let kind = kind_of(K);
    debug_assert!(matches!(K, 2 | 3 | 5 | 6 | 7));
    debug_assert_eq!(Some(w.len()), kind.row_bytes(a.len()));
    let (bb, per) = (kind.block_bytes(), kind.block_len() / QK);
    let has_min = matches!(kind, QuantKind::Q5_1 | QuantKind::Q4_K | QuantKind::Q5_K);
    let wp = w.as_ptr();
    let mut acc = [vdupq_n_f32(0.0); 2];
    let mut side = vdupq_n_f32(0.0);
    let mut tail = 0f32;
    if per == 1 {
        // Q5_0 / Q5_1: four 32-value storage blocks per step.
        for (g, q) in a.chunks_exact(4).enumerate() {
            // SAFETY: blocks 4g..4g+4 < a.len() lie inside `w` (length precondition).
            let blk: [*const u8; 4] = core::array::from_fn(|i| unsafe { wp.add((4 * g + i) * bb) });
            let sums = sum4(core::array::from_fn(|i| {
                // SAFETY: each pointer addresses one whole block (see above).
                prod32(unsafe { codes(kind, blk[i], 0) }, act(&q[i]))
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
            let s = vaddlvq_s16(prod32(q, act(ab)));
            tail += d[0] * ab.d * s as f32 + m[0] * ab.s;
        }
    } else {
        // K-quants: eight sub-blocks per super-block, in two steps of four.
        for (s, sb) in a.chunks_exact(per).enumerate() {
            // SAFETY: super-block s lies inside `w` (length precondition).
            let blk = unsafe { wp.add(s * bb) };
            // SAFETY: blk holds a whole block.
            let (ds, ms) = unsafe { block_scales(kind, blk) };
            for g in 0..per / 4 {
                let (q, j0) = (&sb[4 * g..4 * g + 4], 4 * g);
                let da = f32x4(core::array::from_fn(|i| q[i].d));
                // ds[2j], ds[2j + 1]: the half scales of sub-block j.
                let (d0, d1) = (f32x4_at(&ds, 2 * j0), f32x4_at(&ds, 2 * j0 + 4));
                if kind == QuantKind::Q6_K {
                    let x: [int32x4_t; 4] = core::array::from_fn(|i| {
                        // SAFETY: blk holds a whole block and j0 + i < 8.
                        halves_sums(unsafe { codes(kind, blk, j0 + i) }, act(&q[i]))
                    });
                    // Lanes: [h0, h1] of sub-blocks j0, j0+1 / of j0+2, j0+3.
                    let (s0, s1) = (vpaddq_s32(x[0], x[1]), vpaddq_s32(x[2], x[3]));
                    let (a0, a1) = (vzip1q_f32(da, da), vzip2q_f32(da, da));
                    acc[0] = vfmaq_f32(acc[0], vcvtq_f32_s32(s0), vmulq_f32(d0, a0));
                    acc[1] = vfmaq_f32(acc[1], vcvtq_f32_s32(s1), vmulq_f32(d1, a1));
                } else {
                    let sums = sum4(core::array::from_fn(|i| {
                        // SAFETY: blk holds a whole block and j0 + i < 8.
                        prod32(unsafe { codes(kind, blk, j0 + i) }, act(&q[i]))
                    }));
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

/// # Safety
/// neon available; `a.len() == b.len()`.
#[target_feature(enable = "neon")]
unsafe fn dot_f32_neon(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    let mut acc = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 4k + 4 <= i + 16 <= n.
            let (x, y) = unsafe {
                (
                    vld1q_f32(a.as_ptr().add(i + 4 * k)),
                    vld1q_f32(b.as_ptr().add(i + 4 * k)),
                )
            };
            *acc = vfmaq_f32(*acc, x, y);
        }
        i += 16;
    }
    while i + 4 <= n {
        // SAFETY: i + 4 <= n.
        let (x, y) = unsafe { (vld1q_f32(a.as_ptr().add(i)), vld1q_f32(b.as_ptr().add(i))) };
        acc[0] = vfmaq_f32(acc[0], x, y);
        i += 4;
    }
    let mut s = vaddvq_f32(vaddq_f32(
        vaddq_f32(acc[0], acc[1]),
        vaddq_f32(acc[2], acc[3]),
    ));
    for (x, y) in a[i..].iter().zip(&b[i..]) {
        s += x * y;
    }
    s
}

/// # Safety
/// neon available; `y.len() == x.len()`.
#[target_feature(enable = "neon")]
unsafe fn axpy_f32_neon(y: &mut [f32], alpha: f32, x: &[f32]) {
    debug_assert_eq!(y.len(), x.len());
    let n = y.len();
    let mut i = 0;
    while i + 4 <= n {
        // SAFETY: i + 4 <= n for both slices; y and x cannot alias (&mut vs &).
        unsafe {
            let p = y.as_mut_ptr().add(i);
            vst1q_f32(
                p,
                vfmaq_n_f32(vld1q_f32(p), vld1q_f32(x.as_ptr().add(i)), alpha),
            );
        }
        i += 4;
    }
    for (yj, xj) in y[i..].iter_mut().zip(&x[i..]) {
        *yj = alpha.mul_add(*xj, *yj);
    }
}

/// GEMM by dot products (no register-blocked kernel for this ISA yet).
fn gemm_q(
    kind: super::QuantKind,
    w: &[u8],
    a: &[BlockQ8],
    nb: usize,
    out: &mut [f32],
    lay: super::OutLayout,
) {
    super::gemm_by_dots(&KERNELS, kind, w, a, nb, out, lay);
}

fn layer_norm_row(row: &mut [f32], eps: f32, w: &[f32], b: &[f32]) {
    crate::norm::layer_norm_row_generic(&KERNELS, row, eps, w, b)
}
