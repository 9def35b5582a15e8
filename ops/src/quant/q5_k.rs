//! Q5_K: super-blocks of 256 values in eight sub-blocks of 32. Layout:
//! f16 `d`, f16 `dmin`, 12 bytes of packed 6-bit sub-block scales and
//! minimums (as Q4_K), 32 bytes `qh` of fifth bits, then 128 bytes of low
//! nibbles in Q4_K's order. Byte l of `qh` holds the fifth bit of element l
//! of sub-block k in bit k. Value = d·sc·code − dmin·m.

use super::f16_at;
use super::kquant::{self, ScaleSearch, K_SCALE_SIZE, QK_K};

/// Bytes per super-block.
pub const BLOCK_BYTES: usize = 4 + K_SCALE_SIZE + QK_K / 8 + QK_K / 2;

const QH: usize = 4 + K_SCALE_SIZE;
const QS: usize = QH + QK_K / 8;

/// The scale search of ggml's `quantize_row_q5_K_ref`.
const SEARCH: ScaleSearch = ScaleSearch {
    rmin: -0.5,
    rdelta: 0.1,
    nstep: 15,
    use_mad: false,
};

/// Decodes whole super-blocks.
pub fn dequantize(src: &[u8], out: &mut [f32]) {
    for (b, o) in src
        .chunks_exact(BLOCK_BYTES)
        .zip(out.chunks_exact_mut(QK_K))
    {
        let d = f16_at(b);
        let dmin = f16_at(&b[2..]);
        let scales = &b[4..QH];
        let qh = &b[QH..QS];
        let qs = &b[QS..];
        for c in 0..4 {
            let (sc0, m0) = kquant::scale_min_k4(2 * c, scales);
            let (sc1, m1) = kquant::scale_min_k4(2 * c + 1, scales);
            let (d0, min0) = (d * sc0 as f32, dmin * m0 as f32);
            let (d1, min1) = (d * sc1 as f32, dmin * m1 as f32);
            let q = &qs[32 * c..32 * c + 32];
            let o = &mut o[64 * c..64 * c + 64];
            for l in 0..32 {
                let h0 = ((qh[l] >> (2 * c)) & 1) << 4;
                let h1 = ((qh[l] >> (2 * c + 1)) & 1) << 4;
                o[l] = d0 * ((q[l] & 0x0f) + h0) as f32 - min0;
                o[l + 32] = d1 * ((q[l] >> 4) + h1) as f32 - min1;
            }
        }
    }
}

/// ggml's reference quantizer (no importance matrix).
pub fn quantize(src: &[f32], out: &mut [u8]) {
    for (x, b) in src
        .chunks_exact(QK_K)
        .zip(out.chunks_exact_mut(BLOCK_BYTES))
    {
        let codes = kquant::quantize_scale_min_superblock(x, 31, SEARCH, &mut b[..QH]);
        let (qh, qs) = b[QH..].split_at_mut(QK_K / 8);
        qh.fill(0);
        for c in 0..4 {
            for l in 0..32 {
                let lo = codes[64 * c + l];
                let hi = codes[64 * c + 32 + l];
                qs[32 * c + l] = (lo & 0x0f) | ((hi & 0x0f) << 4);
                qh[l] |= ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::dtype::DType;
    use crate::quant::test_util::check_round_trip;

    #[test]
    fn round_trip_within_a_step() {
        // A step of the sub-block (its range over 31), plus what rounding
        // the sub-block scale and minimum to 6-bit codes can add.
        check_round_trip(DType::Q5_K, 1.0, 0.07);
    }
}
