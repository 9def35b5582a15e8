//! AArch64 Advanced SIMD (NEON) kernels.
//!
//! Plain NEON (Armv8.0), for CPUs without the dot-product extension; the
//! `neondot` module builds on this one for those with it. int8 products use
//! `vmull_s8` (exact i16) and `vpadalq_s16` (pairwise widen-accumulate to
//! i32); with activations in -127..=127 no intermediate can overflow. f16 rows
//! are converted through a small stack buffer with the `half` crate, then go
//! through the f32 kernels.
//!
//! The wrappers are `pub(super)` so that the `neondot` table can reuse the
//! kernels that do not involve int8 products; they remain reachable only
//! through `Isa::Neon.kernels()` / `Isa::NeonDot.kernels()`, i.e. after NEON
//! was detected.

#![deny(unsafe_op_in_unsafe_fn)]

use super::{
    check, q8_scale, BlockQ8, Isa, Kernels, Q4_0_BLOCK_BYTES, Q4_1_BLOCK_BYTES, Q8_0_BLOCK_BYTES,
    QK,
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
    // Q5_0/Q5_1 and the K-quants: the portable kernels (no NEON decoder yet).
    dot_q5_0: super::scalar::dot_kind::<2>,
    dot_q5_1: super::scalar::dot_kind::<3>,
    dot_q4_k: super::scalar::dot_kind::<5>,
    dot_q5_k: super::scalar::dot_kind::<6>,
    dot_q6_k: super::scalar::dot_kind::<7>,
    dot_f32,
    dot_f16_f32,
    axpy_f32,
    axpy_f16,
    f32_to_f16: super::scalar::f32_to_f16,
    gemm_q,
    gemm_tokens: 64,
    geglu: super::scalar::geglu,
    gelu_erf: super::scalar::gelu_erf,
    exp_sum: super::scalar::exp_sum,
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
