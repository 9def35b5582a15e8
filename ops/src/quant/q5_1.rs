//! Q5_1: blocks of 32 values as f16 scale `d`, f16 minimum `m`, 4 bytes `qh`
//! of fifth bits and 16 bytes of low nibbles (same order as Q5_0);
//! value = d · code + m.

use super::{f16_at, put_f16, QK};

/// Bytes per block.
pub const BLOCK_BYTES: usize = 24;

/// Decodes whole blocks.
pub fn dequantize(src: &[u8], out: &mut [f32]) {
    for (b, o) in src.chunks_exact(BLOCK_BYTES).zip(out.chunks_exact_mut(QK)) {
        let d = f16_at(b);
        let m = f16_at(&b[2..]);
        let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        for j in 0..16 {
            let q = b[8 + j];
            let c0 = (q & 0x0f) as u32 | ((qh >> j) & 1) << 4;
            let c1 = (q >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4;
            o[j] = c0 as f32 * d + m;
            o[j + 16] = c1 as f32 * d + m;
        }
    }
}

/// ggml's reference quantizer: codes span [min, max] in 31 steps, rounded
/// half up.
pub fn quantize(src: &[f32], out: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(out.chunks_exact_mut(BLOCK_BYTES)) {
        let mut min = f32::MAX;
        let mut max = -f32::MAX;
        for &v in x {
            if v < min {
                min = v;
            }
            if v > max {
                max = v;
            }
        }
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(&mut b[..2], d);
        put_f16(&mut b[2..4], min);
        // ggml casts straight to uint8_t (no clamp); (x − min)·id ≤ 31 anyway.
        let code = |v: f32| ((v - min) * id + 0.5) as u8;
        let mut qh = 0u32;
        for j in 0..16 {
            let c0 = code(x[j]);
            let c1 = code(x[j + 16]);
            b[8 + j] = (c0 & 0x0f) | ((c1 & 0x0f) << 4);
            qh |= ((c0 >> 4) as u32 & 1) << j;
            qh |= ((c1 >> 4) as u32 & 1) << (j + 16);
        }
        b[4..8].copy_from_slice(&qh.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use crate::dtype::DType;
    use crate::quant::test_util::check_round_trip;

    #[test]
    fn round_trip_within_half_a_step() {
        // 31 steps over [min, max]; f16 rounding of d and m adds a little.
        check_round_trip(DType::Q5_1, 0.5, 0.07);
    }
}
