//! Q4_K: super-blocks of 256 values in eight sub-blocks of 32. Layout:
//! f16 `d`, f16 `dmin`, 12 bytes of packed 6-bit sub-block scales and
//! minimums (see [`kquant::scale_min_k4`]), then 128 bytes of 4-bit codes:
//! each 32-byte chunk c holds sub-block 2c in its low nibbles and sub-block
//! 2c+1 in its high nibbles. Value = d·sc·code − dmin·m.

use super::f16_at;
use super::kquant::{self, ScaleSearch, K_SCALE_SIZE, QK_K};

/// Bytes per super-block.
pub const BLOCK_BYTES: usize = 4 + K_SCALE_SIZE + QK_K / 2;

/// The scale search of ggml's `quantize_row_q4_K_ref`.
const SEARCH: ScaleSearch = ScaleSearch {
    rmin: -1.0,
    rdelta: 0.1,
    nstep: 20,
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
        let scales = &b[4..4 + K_SCALE_SIZE];
        let qs = &b[4 + K_SCALE_SIZE..];
        for c in 0..4 {
            let (sc0, m0) = kquant::scale_min_k4(2 * c, scales);
            let (sc1, m1) = kquant::scale_min_k4(2 * c + 1, scales);
            let (d0, min0) = (d * sc0 as f32, dmin * m0 as f32);
            let (d1, min1) = (d * sc1 as f32, dmin * m1 as f32);
            let q = &qs[32 * c..32 * c + 32];
            let o = &mut o[64 * c..64 * c + 64];
            for l in 0..32 {
                o[l] = d0 * (q[l] & 0x0f) as f32 - min0;
                o[l + 32] = d1 * (q[l] >> 4) as f32 - min1;
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
        let codes =
            kquant::quantize_scale_min_superblock(x, 15, SEARCH, &mut b[..4 + K_SCALE_SIZE]);
        let qs = &mut b[4 + K_SCALE_SIZE..];
        for c in 0..4 {
            for l in 0..32 {
                qs[32 * c + l] = codes[64 * c + l] | (codes[64 * c + 32 + l] << 4);
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
        // A step of the sub-block (its range over 15), plus what rounding
        // the sub-block scale and minimum to 6-bit codes can add.
        check_round_trip(DType::Q4_K, 1.0, 0.1);
    }
}
