//! NEON decoding of one 32-value sub-block of any weight format into 32 signed
//! bytes (two `int8x16_t`: values 0..16 and 16..32), plus every sub-block's
//! scales of a storage block computed once: the vector form of
//! [`super::blocks::unpack`] / [`super::blocks::scales`], shared by the `neon`
//! and `neondot` kernels (the AArch64 analogue of `x86_unpack`).
//!
//! Only Armv8.0 Advanced SIMD is used here, so both tables can call it.
//!
//! The per-format bit games:
//! * nibbles: one 16-byte load; low half masked with 0x0F, high half shifted
//!   right by 4 (Q4_0, Q4_1, Q5_0, Q5_1);
//! * Q5_0/Q5_1 fifth bits: each byte of the 32-bit `qh` duplicated over 8
//!   lanes, tested against a one-bit-per-lane mask (`cmtst`), masked to 0x10;
//! * K-quants: 32 contiguous bytes hold one sub-block's nibbles (low nibbles
//!   for even sub-blocks, high for odd ones); Q5_K/Q6_K high bits come from a
//!   32-byte plane moved into place by a signed per-lane shift (`ushl`, where
//!   a negative count shifts right), so one expression serves every `j`;
//! * K-quant scales: the 12 packed 6-bit scale/min bytes of Q4_K/Q5_K are
//!   unpacked with three u32 word operations (llama.cpp's `kmask` trick), then
//!   widened and converted eight at a time; Q6_K's 16 i8 scales likewise.
//!
//! f16 → f32 uses `fcvtl` through `asm!` (the fp16 vector intrinsics are not
//! stable Rust); it is exact, so the scales equal the scalar ones bit for bit.

#![deny(unsafe_op_in_unsafe_fn)]

use super::{BlockQ8, QuantKind};
use core::arch::aarch64::*;
use core::arch::asm;

/// The format with index `id` in [`QuantKind::ALL`], for kernels monomorphised
/// per format through a `const` parameter.
#[inline(always)]
pub(super) const fn kind_of(id: u8) -> QuantKind {
    match id {
        0 => QuantKind::Q4_0,
        1 => QuantKind::Q4_1,
        2 => QuantKind::Q5_0,
        3 => QuantKind::Q5_1,
        4 => QuantKind::Q8_0,
        5 => QuantKind::Q4_K,
        6 => QuantKind::Q5_K,
        _ => QuantKind::Q6_K,
    }
}

// ---------------------------------------------------------------------------
// Small shared helpers (f16 scales, activation loads)
// ---------------------------------------------------------------------------

/// Four IEEE binary16 values (as bits) to f32, exactly: `fcvtl`.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn f16x4_to_f32(h: uint16x4_t) -> float32x4_t {
    let out: float32x4_t;
    // SAFETY: `fcvtl` (half → single) is part of Armv8.0 Advanced SIMD, enabled for
    // this function; it only reads and writes the two vector registers bound here.
    unsafe {
        asm!(
            "fcvtl {out:v}.4s, {h:v}.4h",
            out = lateout(vreg) out,
            h = in(vreg) h,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    out
}

/// Four f16 values (as bits) to f32.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn halves(h: [u16; 4]) -> float32x4_t {
    let bits = h
        .iter()
        .rev()
        .fold(0u64, |acc, &x| (acc << 16) | u64::from(x));
    f16x4_to_f32(vcreate_u16(bits))
}

/// The little-endian f16 bits at `p` (`d` of a block; `m` at `p + 2` for
/// Q4_1/Q5_1).
///
/// # Safety
/// `p` must point to 2 readable bytes.
#[inline(always)]
pub(super) unsafe fn f16_bits(p: *const u8) -> u16 {
    // SAFETY: 2 readable bytes (caller); read_unaligned has no alignment need.
    u16::from_le(unsafe { p.cast::<u16>().read_unaligned() })
}

/// Four f32 in a vector.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn f32x4(v: [f32; 4]) -> float32x4_t {
    // SAFETY: reads exactly the 4 elements of `v`.
    unsafe { vld1q_f32(v.as_ptr()) }
}

/// `v[at .. at + 4]` as a vector.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn f32x4_at(v: &[f32], at: usize) -> float32x4_t {
    let s = &v[at..at + 4];
    // SAFETY: `s` has exactly 4 elements (the slice above is bounds-checked).
    unsafe { vld1q_f32(s.as_ptr()) }
}

/// The two halves of an activation block (values 0..16 and 16..32).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn act(b: &BlockQ8) -> (int8x16_t, int8x16_t) {
    // SAFETY: `qs` is a 32-byte array; the two 16-byte loads cover it exactly.
    unsafe { (vld1q_s8(b.qs.as_ptr()), vld1q_s8(b.qs.as_ptr().add(16))) }
}

// ---------------------------------------------------------------------------
// Codes
// ---------------------------------------------------------------------------

/// 16 bytes of nibbles → (low nibbles, high nibbles): values 0..16 and 16..32.
///
/// # Safety
/// `p` must point to 16 readable bytes.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn nibbles(p: *const u8) -> (uint8x16_t, uint8x16_t) {
    // SAFETY: 16 readable bytes (caller).
    let qs = unsafe { vld1q_u8(p) };
    (vandq_u8(qs, vdupq_n_u8(0x0F)), vshrq_n_u8::<4>(qs))
}

/// Bit `i` of the little-endian u32 at `p` → byte `i` (of 32) = 0x10 when set,
/// else 0 (Q5_0/Q5_1's fifth bits, already in place).
///
/// # Safety
/// `p` must point to 4 readable bytes.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn fifth_bits(p: *const u8) -> (uint8x16_t, uint8x16_t) {
    // SAFETY: 4 readable bytes (caller); read_unaligned has no alignment need.
    let qh = u32::from_le(unsafe { p.cast::<u32>().read_unaligned() }).to_le_bytes();
    // Lane i of each 8-lane group tests bit i of its source byte.
    let bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040_2010_0804_0201));
    let spread = |lo: u8, hi: u8| {
        let v = vcombine_u8(vdup_n_u8(lo), vdup_n_u8(hi));
        vandq_u8(vtstq_u8(v, bit), vdupq_n_u8(0x10))
    };
    (spread(qh[0], qh[1]), spread(qh[2], qh[3]))
}

/// 32 bytes at `p`: the low nibbles when `high` is false, else the high ones.
///
/// # Safety
/// `p` must point to 32 readable bytes.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn nibble_plane(p: *const u8, high: bool) -> (uint8x16_t, uint8x16_t) {
    // SAFETY: 32 readable bytes (caller).
    let (a, b) = unsafe { (vld1q_u8(p), vld1q_u8(p.add(16))) };
    if high {
        (vshrq_n_u8::<4>(a), vshrq_n_u8::<4>(b))
    } else {
        let m = vdupq_n_u8(0x0F);
        (vandq_u8(a, m), vandq_u8(b, m))
    }
}

/// 32 bytes at `p`, each shifted left by `shift` (right by `-shift` when
/// negative), then masked with `mask`: moves high-bit planes into place.
///
/// # Safety
/// `p` must point to 32 readable bytes.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn bit_plane(p: *const u8, shift: i8, mask: u8) -> (uint8x16_t, uint8x16_t) {
    // SAFETY: 32 readable bytes (caller).
    let (a, b) = unsafe { (vld1q_u8(p), vld1q_u8(p.add(16))) };
    let (s, m) = (vdupq_n_s8(shift), vdupq_n_u8(mask));
    (vandq_u8(vshlq_u8(a, s), m), vandq_u8(vshlq_u8(b, s), m))
}

/// `(a | b) − sub` per byte, as signed bytes.
#[inline]
#[target_feature(enable = "neon")]
fn or_sub(
    a: (uint8x16_t, uint8x16_t),
    b: (uint8x16_t, uint8x16_t),
    sub: i8,
) -> (int8x16_t, int8x16_t) {
    let s = vdupq_n_s8(sub);
    (
        vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(a.0, b.0)), s),
        vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(a.1, b.1)), s),
    )
}

/// Sub-block `j` of the storage block at `blk` as 32 signed bytes: values
/// 0..16 and 16..32, equal to [`super::blocks::unpack`]'s `q`.
///
/// Inlined into kernels monomorphised per format, the `match` and (in
/// unrolled sub-block loops) every `j`-dependent shift fold to constants.
///
/// # Safety
/// `blk` must point to `kind.block_bytes()` readable bytes and
/// `j < kind.block_len() / 32`.
#[inline]
#[target_feature(enable = "neon")]
pub(super) unsafe fn codes(kind: QuantKind, blk: *const u8, j: usize) -> (int8x16_t, int8x16_t) {
    let zero = (vdupq_n_u8(0), vdupq_n_u8(0));
    // SAFETY (all arms): every offset read stays inside the block, by the layouts in
    // `blocks` and the caller's guarantee on `blk` and `j` (Q4_K: 16 + 32·3 + 32 = 144;
    // Q5_K: 48 + 32·3 + 32 = 176, qh 16..48; Q6_K: ql ≤ 64 + 32 + 32 = 128, qh ≤ 160 + 32).
    unsafe {
        match kind {
            QuantKind::Q4_0 => or_sub(nibbles(blk.add(2)), zero, 8),
            QuantKind::Q4_1 => or_sub(nibbles(blk.add(4)), zero, 0),
            QuantKind::Q5_0 => or_sub(nibbles(blk.add(6)), fifth_bits(blk.add(2)), 16),
            QuantKind::Q5_1 => or_sub(nibbles(blk.add(8)), fifth_bits(blk.add(4)), 0),
            QuantKind::Q8_0 => (
                vld1q_s8(blk.add(2).cast::<i8>()),
                vld1q_s8(blk.add(18).cast::<i8>()),
            ),
            QuantKind::Q4_K => or_sub(
                nibble_plane(blk.add(16 + 32 * (j / 2)), j % 2 == 1),
                zero,
                0,
            ),
            QuantKind::Q5_K => or_sub(
                nibble_plane(blk.add(48 + 32 * (j / 2)), j % 2 == 1),
                // Bit j of qh → bit 4.
                bit_plane(blk.add(16), 4 - j as i8, 0x10),
                0,
            ),
            QuantKind::Q6_K => {
                let (h, k) = (j / 4, j % 4);
                or_sub(
                    nibble_plane(blk.add(64 * h + 32 * (k & 1)), k >= 2),
                    // Bits 2k, 2k+1 of qh → bits 4, 5.
                    bit_plane(blk.add(128 + 32 * h), 4 - 2 * k as i8, 0x30),
                    32,
                )
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Scales
// ---------------------------------------------------------------------------

/// Stores `v` at `out[at .. at + 4]`.
#[inline]
#[target_feature(enable = "neon")]
fn put(out: &mut [f32], at: usize, v: float32x4_t) {
    let o = &mut out[at..at + 4];
    // SAFETY: `o` has exactly 4 elements (the slice above is bounds-checked).
    unsafe { vst1q_f32(o.as_mut_ptr(), v) }
}

/// u8 lanes 0..4 / 4..8 of a `uint16x8_t` (widened bytes) as f32, exactly.
#[inline]
#[target_feature(enable = "neon")]
fn u16_to_f32(v: uint16x8_t) -> (float32x4_t, float32x4_t) {
    (
        vcvtq_f32_u32(vmovl_u16(vget_low_u16(v))),
        vcvtq_f32_u32(vmovl_high_u16(v)),
    )
}

/// Every sub-block's scales of one storage block: `d[2j + h]` scales half `h`
/// of sub-block `j`, `m[j]` is its offset; equal to [`super::blocks::scales`]
/// bit for bit (same f32 products of exact operands), computed once per block
/// so the sub-block loop only loads them. The layout is `x86_unpack`'s.
///
/// # Safety
/// `blk` must point to `kind.block_bytes()` readable bytes.
#[inline]
#[target_feature(enable = "neon")]
pub(super) unsafe fn block_scales(kind: QuantKind, blk: *const u8) -> ([f32; 16], [f32; 8]) {
    let mut d = [0f32; 16];
    let mut m = [0f32; 8];
    match kind {
        QuantKind::Q4_0 | QuantKind::Q5_0 | QuantKind::Q8_0 | QuantKind::Q4_1 | QuantKind::Q5_1 => {
            // SAFETY: every format here starts with f16 d (then f16 m for Q4_1/Q5_1);
            // blocks are at least 18 bytes.
            let dm = halves(unsafe { [f16_bits(blk), f16_bits(blk.add(2)), 0, 0] });
            let dd = vgetq_lane_f32::<0>(dm);
            d[0] = dd;
            d[1] = dd;
            if matches!(kind, QuantKind::Q4_1 | QuantKind::Q5_1) {
                m[0] = vgetq_lane_f32::<1>(dm);
            }
        }
        QuantKind::Q4_K | QuantKind::Q5_K => {
            // SAFETY: bytes 0..16 (f16 d, f16 dmin, 12 packed scale bytes) are inside
            // the block; read_unaligned has no alignment need.
            let (dm, p) = unsafe {
                let w = |o: usize| u32::from_le(blk.add(o).cast::<u32>().read_unaligned());
                (
                    halves([f16_bits(blk), f16_bits(blk.add(2)), 0, 0]),
                    [w(4), w(8), w(12)],
                )
            };
            // Bytes 0..8: scale codes of sub-blocks 0..8; bytes 8..16: min codes
            // (`blocks::scale_min_k4` on whole words).
            const LOW6: u32 = 0x3f3f_3f3f;
            const LOW4: u32 = 0x0f0f_0f0f;
            const LOW2: u32 = 0x0303_0303;
            let words = [
                p[0] & LOW6,
                (p[2] & LOW4) | (((p[0] >> 6) & LOW2) << 4),
                p[1] & LOW6,
                ((p[2] >> 4) & LOW4) | (((p[1] >> 6) & LOW2) << 4),
            ];
            // SAFETY: reads exactly the 16 bytes of `words`.
            let codes = unsafe { vreinterpretq_u8_u32(vld1q_u32(words.as_ptr())) };
            let (sc, mn) = (
                u16_to_f32(vmovl_u8(vget_low_u8(codes))),
                u16_to_f32(vmovl_high_u8(codes)),
            );
            let (dd, dmin) = (vgetq_lane_f32::<0>(dm), vgetq_lane_f32::<1>(dm));
            let (s0, s1) = (vmulq_n_f32(sc.0, dd), vmulq_n_f32(sc.1, dd));
            // Both halves of a sub-block share its scale.
            put(&mut d, 0, vzip1q_f32(s0, s0));
            put(&mut d, 4, vzip2q_f32(s0, s0));
            put(&mut d, 8, vzip1q_f32(s1, s1));
            put(&mut d, 12, vzip2q_f32(s1, s1));
            put(&mut m, 0, vnegq_f32(vmulq_n_f32(mn.0, dmin)));
            put(&mut m, 4, vnegq_f32(vmulq_n_f32(mn.1, dmin)));
        }
        QuantKind::Q6_K => {
            // SAFETY: the 16 i8 scales at 192..208 and f16 d at 208..210 are inside the block.
            let (sc, dd) = unsafe {
                (
                    vld1q_s8(blk.add(192).cast::<i8>()),
                    vgetq_lane_f32::<0>(halves([f16_bits(blk.add(208)), 0, 0, 0])),
                )
            };
            // Sub-block j = 4h + k uses scales 8h + 2k and 8h + 2k + 1: index 2j + half.
            let (lo, hi) = (vmovl_s8(vget_low_s8(sc)), vmovl_high_s8(sc));
            let f = |v: int32x4_t| vmulq_n_f32(vcvtq_f32_s32(v), dd);
            put(&mut d, 0, f(vmovl_s16(vget_low_s16(lo))));
            put(&mut d, 4, f(vmovl_high_s16(lo)));
            put(&mut d, 8, f(vmovl_s16(vget_low_s16(hi))));
            put(&mut d, 12, f(vmovl_high_s16(hi)));
        }
    }
    (d, m)
}

#[cfg(test)]
mod tests {
    use super::super::{blocks, Isa};
    use super::*;
    use half::f16;
    use proptest::prelude::*;

    fn same(g: f32, w: f32) -> bool {
        g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan())
    }

    #[test]
    fn kind_ids_follow_all() {
        for (i, &k) in QuantKind::ALL.iter().enumerate() {
            assert_eq!(kind_of(i as u8), k);
        }
    }

    /// `fcvtl` agrees with the `half` crate on every f16 bit pattern.
    #[test]
    fn f16_conversion_exact() {
        for b in (0..=u16::MAX).step_by(4) {
            let h = [b, b + 1, b + 2, b + 3];
            let mut got = [0f32; 4];
            // SAFETY: stores 4 f32 into a 4-element array.
            unsafe { vst1q_f32(got.as_mut_ptr(), halves(h)) };
            for (g, x) in got.iter().zip(h) {
                let w = f16::from_bits(x).to_f32();
                assert!(same(*g, w), "{x:#06x}: {g} vs {w}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// The vector decoder gives exactly the scalar unpacking's codes and
        /// scales, for every format and every sub-block of random block bytes.
        #[test]
        fn decode_equals_unpack(
            kind_i in 0usize..8,
            bytes in prop::collection::vec(any::<u8>(), 210),
        ) {
            if !Isa::Neon.is_supported() {
                return Ok(());
            }
            let kind = QuantKind::ALL[kind_i];
            let blk = &bytes[..kind.block_bytes()];
            // SAFETY: NEON detected above; blk holds a whole block.
            let (d, m) = unsafe { block_scales(kind, blk.as_ptr()) };
            for j in 0..kind.block_len() / 32 {
                let want = blocks::unpack(kind, blk, j);
                let mut q = [0i8; 32];
                // SAFETY: blk holds a whole block and j is a valid sub-block; the stores
                // write 16 bytes each into the 32-byte array.
                unsafe {
                    let (lo, hi) = codes(kind, blk.as_ptr(), j);
                    vst1q_s8(q.as_mut_ptr(), lo);
                    vst1q_s8(q.as_mut_ptr().add(16), hi);
                }
                prop_assert_eq!(q, want.q, "{:?} j {}", kind, j);
                for h in 0..2 {
                    let (g, w) = (d[2 * j + h], want.d[h]);
                    prop_assert!(same(g, w), "{:?} j {} d{}: {} vs {}", kind, j, h, g, w);
                }
                prop_assert!(same(m[j], want.m), "{:?} j {} m: {} vs {}", kind, j, m[j], want.m);
            }
        }
    }

    /// Codes and activations at their extremes (every product the same sign and
    /// maximal) must not overflow the kernels' narrow partial sums: each NEON
    /// table's dot equals the scalar one to f32 rounding.
    #[test]
    fn dots_extreme_codes() {
        let one = f16::from_f32(1.0).to_le_bytes();
        for (kind, fill) in [
            (QuantKind::Q5_0, 0x00u8), // every code −16
            (QuantKind::Q5_1, 0xFF),   // every code 31
            (QuantKind::Q4_K, 0xFF),   // 15, scale and min codes 63
            (QuantKind::Q5_K, 0xFF),   // 31, scale and min codes 63
            (QuantKind::Q6_K, 0x00),   // −32 (scales set below)
        ] {
            let nsb = 3;
            let bb = kind.block_bytes();
            let mut w = vec![fill; nsb * bb];
            for blk in w.chunks_exact_mut(bb) {
                match kind {
                    QuantKind::Q6_K => {
                        blk[192..208].fill(0x80); // scale −128
                        blk[208..210].copy_from_slice(&one);
                    }
                    QuantKind::Q5_1 | QuantKind::Q4_K | QuantKind::Q5_K => {
                        blk[0..2].copy_from_slice(&one);
                        blk[2..4].copy_from_slice(&one);
                    }
                    _ => blk[0..2].copy_from_slice(&one),
                }
            }
            let nb = nsb * kind.block_len() / 32;
            for sign in [127i8, -127] {
                let a: Vec<BlockQ8> = (0..nb)
                    .map(|_| {
                        let qs = [sign; 32];
                        let h = [16 * sign as i32, 16 * sign as i32];
                        BlockQ8 {
                            d: 1.0,
                            s: (h[0] + h[1]) as f32,
                            qs,
                            h,
                        }
                    })
                    .collect();
                let want = kind.dot(Isa::Scalar.kernels())(&w, &a);
                assert!(want.abs() > 1e5, "{kind:?}: premise {want}");
                for isa in Isa::supported() {
                    let got = kind.dot(isa.kernels())(&w, &a);
                    assert!(
                        ((got - want) / want).abs() < 1e-6,
                        "{isa} {kind:?} sign {sign}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
