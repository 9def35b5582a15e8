//! AVX2 decoding of one 32-value sub-block of any weight format into 32 signed
//! bytes plus its scales: the vector form of [`super::blocks::unpack`], shared
//! by the AVX2 and AVX-512 kernels (every AVX-512 CPU has AVX2).
//!
//! The per-format bit games:
//! * nibbles: one 16-byte load broadcast to both halves, the high half shifted
//!   right by 4, masked to 0x0F (Q4_0, Q4_1, Q5_0, Q5_1);
//! * Q5_0/Q5_1 fifth bits: the 32-bit `qh` spread to one byte per bit with a
//!   byte shuffle, a bit mask and a compare;
//! * K-quants: 32 contiguous bytes hold one sub-block's nibbles (low or high
//!   half of each byte), Q5_K/Q6_K high bits come from a 32-byte plane shifted
//!   by the sub-block index.

#![deny(unsafe_op_in_unsafe_fn)]

use super::QuantKind;
use core::arch::x86_64::*;

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

/// 16 bytes of nibbles → 32 bytes: low nibbles first, then high nibbles.
///
/// # Safety
/// `p` must point to 16 readable bytes; AVX2 available.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn nibbles(p: *const u8) -> __m256i {
    // SAFETY: 16 readable bytes (caller).
    let qs = unsafe { _mm_loadu_si128(p.cast::<__m128i>()) };
    let both = _mm256_srlv_epi64(
        _mm256_broadcastsi128_si256(qs),
        _mm256_setr_epi64x(0, 0, 4, 4),
    );
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// Bit `i` of the little-endian u32 at `p` → byte `i` = 0x10 when set, else 0.
///
/// # Safety
/// `p` must point to 4 readable bytes; AVX2 available.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn fifth_bits(p: *const u8) -> __m256i {
    // SAFETY: 4 readable bytes (caller).
    let qh = unsafe { p.cast::<u32>().read_unaligned() };
    let v = _mm256_set1_epi32(qh as i32);
    // Byte i takes source byte i / 8 (shuffles stay within 128-bit lanes; every
    // lane holds all four bytes after the broadcast).
    let idx = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, //
        2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(v, idx), bit), bit);
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

/// Bytes shifted right by `n` (0..8) within each byte.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn srl_bytes(v: __m256i, n: u32, mask: i8) -> __m256i {
    _mm256_and_si256(
        _mm256_srl_epi16(v, _mm_cvtsi32_si128(n as i32)),
        _mm256_set1_epi8(mask),
    )
}

/// Sub-block `j` of the storage block at `blk` as 32 signed bytes.
///
/// # Safety
/// `blk` must point to `kind.block_bytes()` readable bytes and `j < kind.block_len() / 32`;
/// AVX2 available.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn codes(kind: QuantKind, blk: *const u8, j: usize) -> __m256i {
    // SAFETY (all arms): every offset read stays inside the block, by the layouts in
    // `blocks` and the caller's guarantee on `blk` and `j`.
    unsafe {
        match kind {
            QuantKind::Q4_0 => _mm256_sub_epi8(nibbles(blk.add(2)), _mm256_set1_epi8(8)),
            QuantKind::Q4_1 => nibbles(blk.add(4)),
            QuantKind::Q5_0 => _mm256_sub_epi8(
                _mm256_or_si256(nibbles(blk.add(6)), fifth_bits(blk.add(2))),
                _mm256_set1_epi8(16),
            ),
            QuantKind::Q5_1 => _mm256_or_si256(nibbles(blk.add(8)), fifth_bits(blk.add(4))),
            QuantKind::Q8_0 => _mm256_loadu_si256(blk.add(2).cast::<__m256i>()),
            QuantKind::Q4_K => {
                let qs = _mm256_loadu_si256(blk.add(16 + 32 * (j / 2)).cast::<__m256i>());
                srl_bytes(qs, 4 * (j as u32 % 2), 0x0F)
            }
            QuantKind::Q5_K => {
                let qs = _mm256_loadu_si256(blk.add(48 + 32 * (j / 2)).cast::<__m256i>());
                let qh = _mm256_loadu_si256(blk.add(16).cast::<__m256i>());
                let m = _mm256_set1_epi8((1u8 << j) as i8);
                let hi = _mm256_and_si256(
                    _mm256_cmpeq_epi8(_mm256_and_si256(qh, m), m),
                    _mm256_set1_epi8(0x10),
                );
                _mm256_or_si256(srl_bytes(qs, 4 * (j as u32 % 2), 0x0F), hi)
            }
            QuantKind::Q6_K => {
                let (h, k) = (j / 4, j % 4);
                let ql = _mm256_loadu_si256(blk.add(64 * h + 32 * (k & 1)).cast::<__m256i>());
                let qh = _mm256_loadu_si256(blk.add(128 + 32 * h).cast::<__m256i>());
                let lo = srl_bytes(ql, 4 * (k as u32 >> 1), 0x0F);
                let hi = _mm256_slli_epi16::<4>(srl_bytes(qh, 2 * k as u32, 3));
                _mm256_sub_epi8(_mm256_or_si256(lo, hi), _mm256_set1_epi8(32))
            }
        }
    }
}

/// Two little-endian f16 at `p` and `p + 2` as f32 (F16C).
///
/// # Safety
/// 4 readable bytes at `p`; F16C available.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16x2(p: *const u8) -> (f32, f32) {
    // SAFETY: 4 readable bytes (caller).
    let bits = unsafe { p.cast::<u32>().read_unaligned() };
    let v = _mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32));
    (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_movehdup_ps(v)))
}

/// Every sub-block's scales of one storage block: `d[2j + h]` scales half `h`
/// of sub-block `j`, `m[j]` is its offset; equal to [`super::blocks::scales`] bit for
/// bit (same f32 products), computed once per block with F16C.
///
/// # Safety
/// `blk` must point to `kind.block_bytes()` readable bytes; AVX2/F16C available.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn block_scales(kind: QuantKind, blk: *const u8) -> ([f32; 16], [f32; 8]) {
    let mut d = [0f32; 16];
    let mut m = [0f32; 8];
    match kind {
        QuantKind::Q4_0 | QuantKind::Q5_0 | QuantKind::Q8_0 | QuantKind::Q4_1 | QuantKind::Q5_1 => {
            // SAFETY: every format here starts with f16 d (and f16 m for Q4_1/Q5_1);
            // blocks are at least 18 bytes.
            let (dd, mm) = unsafe { f16x2(blk) };
            d[0] = dd;
            d[1] = dd;
            if matches!(kind, QuantKind::Q4_1 | QuantKind::Q5_1) {
                m[0] = mm;
            }
        }
        QuantKind::Q4_K | QuantKind::Q5_K => {
            // SAFETY: bytes 0..20 are inside the block (144 or 176 bytes): d, dmin, the
            // 12 packed scale bytes and 4 bytes more, read and ignored.
            let (dd, dmin, v) = unsafe {
                let (a, b) = f16x2(blk);
                (a, b, _mm_loadu_si128(blk.add(4).cast::<__m128i>()))
            };
            let (sc, mn) = scale_min_k4_x8(v);
            let dv = _mm256_mul_ps(_mm256_set1_ps(dd), sc);
            let mv = _mm256_mul_ps(_mm256_set1_ps(-dmin), mn);
            // d[2j] = d[2j + 1] = d·sc_j: duplicate each lane.
            let (lo, hi) = (_mm256_unpacklo_ps(dv, dv), _mm256_unpackhi_ps(dv, dv));
            // SAFETY: 2 × 8 floats into the 16-float array, 8 floats into the 8-float array.
            unsafe {
                _mm256_storeu_ps(d.as_mut_ptr(), _mm256_permute2f128_ps::<0x20>(lo, hi));
                _mm256_storeu_ps(
                    d.as_mut_ptr().add(8),
                    _mm256_permute2f128_ps::<0x31>(lo, hi),
                );
                _mm256_storeu_ps(m.as_mut_ptr(), mv);
            }
        }
        QuantKind::Q6_K => {
            // SAFETY: d at 208..210 and the 16 scale bytes at 192..208 are inside the block.
            let (dd, sc) = unsafe {
                (
                    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(
                        blk.add(208).cast::<u16>().read_unaligned() as i32,
                    ))),
                    core::slice::from_raw_parts(blk.add(192), 16),
                )
            };
            // Sub-block j = 4h + k uses scales 8h + 2k and 8h + 2k + 1: index 2j + half.
            for (o, &s) in d.iter_mut().zip(sc) {
                *o = dd * s as i8 as f32;
            }
        }
    }
    (d, m)
}

/// The eight 6-bit (scale, minimum) codes of a Q4_K/Q5_K super-block from its
/// 12 packed bytes (the low 12 bytes of `v`), as f32 lanes — the vector form
/// of [`super::blocks::scale_min_k4`]: sub-blocks 0..4 keep their codes in the low six
/// bits of bytes 0..4 / 4..8; sub-blocks 4..8 their low nibbles in bytes 8..12
/// and their top two bits in the top bits of bytes 0..8.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scale_min_k4_x8(v: __m128i) -> (__m256, __m256) {
    // Macros, not closures: closures do not inherit `target_feature`.
    const Z: i8 = -1; // shuffle index that writes 0
    macro_rules! pick {
        ($($i:expr),*) => {
            _mm_shuffle_epi8(v, _mm_setr_epi8($($i),*, Z, Z, Z, Z, Z, Z, Z, Z))
        };
    }
    macro_rules! mask {
        ($a:expr, $b:expr) => {
            _mm_setr_epi8($a, $a, $a, $a, $b, $b, $b, $b, 0, 0, 0, 0, 0, 0, 0, 0)
        };
    }
    // Scales: j < 4 → byte j & 63; j ≥ 4 → (byte j + 4 & 15) | (byte j − 4 >> 6) << 4.
    let low = _mm_and_si128(pick!(0, 1, 2, 3, 8, 9, 10, 11), mask!(63, 15));
    let top = _mm_and_si128(
        _mm_srli_epi16::<2>(pick!(Z, Z, Z, Z, 0, 1, 2, 3)),
        mask!(0, 0x30),
    );
    let sc = _mm_or_si128(low, top);
    // Minimums: j < 4 → byte j + 4 & 63; j ≥ 4 → (byte j + 4 >> 4) | (byte j >> 6) << 4.
    let t = pick!(4, 5, 6, 7, 8, 9, 10, 11);
    let low = _mm_or_si128(
        _mm_and_si128(t, mask!(63, 0)),
        _mm_and_si128(_mm_srli_epi16::<4>(t), mask!(0, 15)),
    );
    let top = _mm_and_si128(
        _mm_srli_epi16::<2>(pick!(Z, Z, Z, Z, 4, 5, 6, 7)),
        mask!(0, 0x30),
    );
    let mn = _mm_or_si128(low, top);
    (
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sc)),
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mn)),
    )
}

/// `[d0 ×4, d1 ×4]`: the scales of sub-block `j` in the lanes of a
/// four-byte-group integer dot.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn lane_scales(kind: QuantKind, d: &[f32; 16], j: usize) -> __m256 {
    if kind == QuantKind::Q6_K {
        _mm256_set_m128(_mm_set1_ps(d[2 * j + 1]), _mm_set1_ps(d[2 * j]))
    } else {
        _mm256_set1_ps(d[2 * j])
    }
}

/// Defines `step32` and `dot_kind<K>` — the GEMV loop over any format's
/// 32-value sub-blocks — in the invoking ISA module, around that module's
/// `sub_dot(kind, blk, j, ab) -> __m256` (its integer dot of one sub-block)
/// and the horizontal sum `$hsum`. AVX2 and AVX-512 share the loop; their
/// instructions differ only inside `sub_dot`, so the code is written once and
/// compiled under each module's `target_feature`s.
macro_rules! define_dot_kind {
    ($feat:literal, $hsum:ident) => {
        /// One 32-value block (Q5_0/Q5_1) into `acc` (and its `m·s_a` into `side`).
        ///
        /// # Safety
        /// `blk` points to a whole block of `kind`, a 32-value format.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn step32(
            kind: QuantKind,
            blk: *const u8,
            ab: &BlockQ8,
            acc: &mut __m256,
            side: &mut f32,
        ) {
            // SAFETY: the block's first 4 bytes are readable (caller).
            let (d, m) = unsafe { super::x86_unpack::f16x2(blk) };
            if matches!(kind, QuantKind::Q4_1 | QuantKind::Q5_1) {
                *side = m.mul_add(ab.s, *side);
            }
            // SAFETY: forwarded; sub-block 0.
            let p = unsafe { sub_dot(kind, blk, 0, ab) };
            *acc = _mm256_fmadd_ps(_mm256_set1_ps(d * ab.d), p, *acc);
        }

        /// Any format through the shared sub-block decoder (GEMV): per 32 values
        /// one integer dot (`sub_dot`), scaled per 16-value half, plus `m·s_a`.
        ///
        /// # Safety
        /// The ISA's features available; `w.len() == kind_of(K).row_bytes(a.len())`.
        #[target_feature(enable = $feat)]
        unsafe fn dot_kind<const K: u8>(w: &[u8], a: &[BlockQ8]) -> f32 {
            let kind = kind_of(K);
            let (bb, per) = (kind.block_bytes(), kind.block_len() / QK);
            let has_min = matches!(
                kind,
                QuantKind::Q4_1 | QuantKind::Q5_1 | QuantKind::Q4_K | QuantKind::Q5_K
            );
            // Four accumulators indexed by constants (unrolled groups of four
            // sub-blocks) so they stay in registers.
            let mut acc = [_mm256_setzero_ps(); 4];
            let mut side = 0f32;
            if per == 1 {
                // 32-value formats: d (and m) straight from the block's first f16s.
                let quads = a.len() / 4;
                for q in 0..quads {
                    for (g, acc) in acc.iter_mut().enumerate() {
                        let b = 4 * q + g;
                        // SAFETY: block b lies inside w by the length precondition.
                        unsafe { step32(kind, w.as_ptr().add(b * bb), &a[b], acc, &mut side) };
                    }
                }
                for (b, ab) in a.iter().enumerate().skip(4 * quads) {
                    // SAFETY: block b lies inside w by the length precondition.
                    unsafe { step32(kind, w.as_ptr().add(b * bb), ab, &mut acc[0], &mut side) };
                }
            } else {
                // K-quants: scales once per super-block, then two groups of four sub-blocks.
                for (sb, abs) in a.chunks_exact(per).enumerate() {
                    // SAFETY: storage block sb lies inside w by the length precondition.
                    let blk = unsafe { w.as_ptr().add(sb * bb) };
                    // SAFETY: as above.
                    let (ds, ms) = unsafe { block_scales(kind, blk) };
                    for h in 0..per / 4 {
                        for (g, acc) in acc.iter_mut().enumerate() {
                            let jj = 4 * h + g;
                            let ab = &abs[jj];
                            if has_min {
                                side = ms[jj].mul_add(ab.s, side);
                            }
                            // SAFETY: blk holds a whole block and jj < per.
                            let p = unsafe { sub_dot(kind, blk, jj, ab) };
                            let sc =
                                _mm256_mul_ps(lane_scales(kind, &ds, jj), _mm256_set1_ps(ab.d));
                            *acc = _mm256_fmadd_ps(sc, p, *acc);
                        }
                    }
                }
            }
            $hsum(_mm256_add_ps(
                _mm256_add_ps(acc[0], acc[1]),
                _mm256_add_ps(acc[2], acc[3]),
            )) + side
        }
    };
}
pub(super) use define_dot_kind;

#[cfg(test)]
mod tests {
    use super::super::blocks;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// The vector decoder gives exactly the scalar unpacking's codes and scales.
        #[test]
        fn decode_equals_unpack(kind_i in 0usize..8, bytes in prop::collection::vec(any::<u8>(), 210), j in 0usize..8) {
            if !super::super::Isa::Avx2.is_supported() {
                return Ok(());
            }
            let kind = QuantKind::ALL[kind_i];
            let blk = &bytes[..kind.block_bytes()];
            let j = j % (kind.block_len() / 32);
            let want = blocks::unpack(kind, blk, j);
            let mut q = [0i8; 32];
            let mut d = [0f32; 8];
            // SAFETY: AVX2 detected above; blk holds a whole block and j is a valid sub-block.
            let m = unsafe {
                let c = codes(kind, blk.as_ptr(), j);
                _mm256_storeu_si256(q.as_mut_ptr().cast(), c);
                let (ds, ms) = block_scales(kind, blk.as_ptr());
                _mm256_storeu_ps(d.as_mut_ptr(), lane_scales(kind, &ds, j));
                ms[j]
            };
            prop_assert_eq!(q, want.q, "{:?} j {}", kind, j);
            let dw = [want.d[0], want.d[0], want.d[0], want.d[0], want.d[1], want.d[1], want.d[1], want.d[1]];
            for (g, w) in d.iter().zip(dw) {
                prop_assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()));
            }
            prop_assert!(m.to_bits() == want.m.to_bits() || (m.is_nan() && want.m.is_nan()));
        }
    }
}
