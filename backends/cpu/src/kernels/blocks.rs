//! Every quantized weight format seen as the same thing: 32-value sub-blocks of
//! small integers with one scale per 16-value half and one offset.
//!
//! Value `i` of a sub-block is `d[i / 16] · q[i] + m`. Formats map onto it as:
//!
//! | format | `q` | `d[0]`, `d[1]` | `m` |
//! |---|---|---|---|
//! | Q4_0 | nibble − 8 | `d`, `d` | 0 |
//! | Q4_1 | nibble | `d`, `d` | `m` |
//! | Q5_0 | 5-bit code − 16 | `d`, `d` | 0 |
//! | Q5_1 | 5-bit code | `d`, `d` | `m` |
//! | Q8_0 | byte | `d`, `d` | 0 |
//! | Q4_K | nibble | `d·sc_j`, `d·sc_j` | `−dmin·m_j` |
//! | Q5_K | 5-bit code | `d·sc_j`, `d·sc_j` | `−dmin·m_j` |
//! | Q6_K | 6-bit code − 32 | `d·sc_{2j}`, `d·sc_{2j+1}` | 0 |
//!
//! Every `d` and `m` here is exact in f32 (an f16 times an integer of at most
//! 8 bits), so a kernel built on this view rounds only where it accumulates.
//! The integer dot of `q` with an int8 activation block is exact; the SIMD
//! kernels decode the same sub-blocks with vector shuffles and must agree with
//! [`unpack`] bit for bit (tested per ISA).

use super::QuantKind;
use half::f16;

/// One 32-value sub-block, unpacked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unpacked {
    /// Integer codes, `-128..=127` (the ranges of the table above).
    pub q: [i8; 32],
    /// Scale of values 0..16 and of values 16..32.
    pub d: [f32; 2],
    /// Offset added to every value.
    pub m: f32,
}

#[inline(always)]
fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32()
}

/// Scale and minimum codes of sub-block `j` of a Q4_K/Q5_K super-block (the
/// 12 packed bytes at offset 4).
#[inline(always)]
pub(crate) fn scale_min_k4(j: usize, p: &[u8]) -> (u8, u8) {
    if j < 4 {
        (p[j] & 0x3f, p[j + 4] & 0x3f)
    } else {
        (
            (p[j + 4] & 0x0f) | ((p[j - 4] >> 6) << 4),
            (p[j + 4] >> 4) | ((p[j] >> 6) << 4),
        )
    }
}

/// The (d[0], d[1], m) of sub-block `j` of the super-block or block `blk`
/// (the K-quants' 6-bit scale unpacking lives here once for every ISA).
#[inline(always)]
pub(crate) fn scales(kind: QuantKind, blk: &[u8], j: usize) -> ([f32; 2], f32) {
    match kind {
        QuantKind::Q4_0 | QuantKind::Q5_0 | QuantKind::Q8_0 => {
            let d = f16_at(blk, 0);
            ([d, d], 0.0)
        }
        QuantKind::Q4_1 | QuantKind::Q5_1 => {
            let d = f16_at(blk, 0);
            ([d, d], f16_at(blk, 2))
        }
        QuantKind::Q4_K | QuantKind::Q5_K => {
            let (sc, mn) = scale_min_k4(j, &blk[4..16]);
            let d = f16_at(blk, 0) * sc as f32;
            ([d, d], -(f16_at(blk, 2) * mn as f32))
        }
        QuantKind::Q6_K => {
            let d = f16_at(blk, 208);
            let (h, k) = (j / 4, j % 4);
            let sc = &blk[192 + 8 * h + 2 * k..];
            ([d * sc[0] as i8 as f32, d * sc[1] as i8 as f32], 0.0)
        }
    }
}

/// Sub-block `j` (0-based, counted in 32s within the storage block `blk`).
pub fn unpack(kind: QuantKind, blk: &[u8], j: usize) -> Unpacked {
    debug_assert_eq!(blk.len(), kind.block_bytes());
    let mut q = [0i8; 32];
    let nib = |qs: &[u8], i: usize| -> (u8, u8) { (qs[i] & 0x0f, qs[i] >> 4) };
    match kind {
        QuantKind::Q4_0 | QuantKind::Q4_1 => {
            let (off, sub) = if kind == QuantKind::Q4_0 {
                (2, 8)
            } else {
                (4, 0)
            };
            for i in 0..16 {
                let (lo, hi) = nib(&blk[off..], i);
                q[i] = lo as i8 - sub;
                q[i + 16] = hi as i8 - sub;
            }
        }
        QuantKind::Q5_0 | QuantKind::Q5_1 => {
            let (off, sub) = if kind == QuantKind::Q5_0 {
                (2, 16)
            } else {
                (4, 0)
            };
            let qh = u32::from_le_bytes([blk[off], blk[off + 1], blk[off + 2], blk[off + 3]]);
            for i in 0..16 {
                let (lo, hi) = nib(&blk[off + 4..], i);
                let h0 = ((qh >> i) & 1) as u8;
                let h1 = ((qh >> (i + 16)) & 1) as u8;
                q[i] = (lo | (h0 << 4)) as i8 - sub;
                q[i + 16] = (hi | (h1 << 4)) as i8 - sub;
            }
        }
        QuantKind::Q8_0 => {
            for (o, &b) in q.iter_mut().zip(&blk[2..34]) {
                *o = b as i8;
            }
        }
        QuantKind::Q4_K => {
            let qs = &blk[16 + 32 * (j / 2)..];
            let shift = 4 * (j % 2);
            for (i, o) in q.iter_mut().enumerate() {
                *o = ((qs[i] >> shift) & 0x0f) as i8;
            }
        }
        QuantKind::Q5_K => {
            let qh = &blk[16..48];
            let qs = &blk[48 + 32 * (j / 2)..];
            let shift = 4 * (j % 2);
            for (i, o) in q.iter_mut().enumerate() {
                *o = (((qs[i] >> shift) & 0x0f) | (((qh[i] >> j) & 1) << 4)) as i8;
            }
        }
        QuantKind::Q6_K => {
            let (h, k) = (j / 4, j % 4);
            let ql = &blk[64 * h + 32 * (k & 1)..];
            let qh = &blk[128 + 32 * h..];
            let lshift = 4 * (k >> 1);
            for (i, o) in q.iter_mut().enumerate() {
                let code = ((ql[i] >> lshift) & 0x0f) | (((qh[i] >> (2 * k)) & 3) << 4);
                *o = code as i8 - 32;
            }
        }
    }
    let (d, m) = scales(kind, blk, j);
    Unpacked { q, d, m }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use wisp_ops::DType;

    fn dtype(kind: QuantKind) -> DType {
        match kind {
            QuantKind::Q4_0 => DType::Q4_0,
            QuantKind::Q4_1 => DType::Q4_1,
            QuantKind::Q5_0 => DType::Q5_0,
            QuantKind::Q5_1 => DType::Q5_1,
            QuantKind::Q8_0 => DType::Q8_0,
            QuantKind::Q4_K => DType::Q4_K,
            QuantKind::Q5_K => DType::Q5_K,
            QuantKind::Q6_K => DType::Q6_K,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// `d·q + m` per value equals the ops crate's reference dequantization
        /// (the oracle) exactly, for random block bytes of every format.
        #[test]
        fn unpack_equals_reference_dequantize(kind_i in 0usize..8, bytes in prop::collection::vec(any::<u8>(), 210)) {
            let kind = QuantKind::ALL[kind_i];
            let mut blk = bytes[..kind.block_bytes()].to_vec();
            // Keep the f16 scales finite and moderate.
            let scale_at: &[usize] = match kind {
                QuantKind::Q4_1 | QuantKind::Q5_1 | QuantKind::Q4_K | QuantKind::Q5_K => &[0, 2],
                QuantKind::Q6_K => &[208],
                _ => &[0],
            };
            for &o in scale_at {
                let v = f16::from_f32((blk[o] as f32 - 128.0) / 1024.0).to_le_bytes();
                blk[o..o + 2].copy_from_slice(&v);
            }
            let n = kind.block_len();
            let mut want = vec![0f32; n];
            wisp_ops::quant::dequantize_row(dtype(kind), &blk, &mut want);
            for j in 0..n / 32 {
                let u = unpack(kind, &blk, j);
                for i in 0..32 {
                    let got = u.d[i / 16] * u.q[i] as f32 + u.m;
                    prop_assert_eq!(got, want[32 * j + i], "{:?} sub-block {} value {}", kind, j, i);
                }
            }
        }
    }
}
