//! Q5_0: blocks of 32 values as an f16 scale `d`, 4 bytes `qh` holding the
//! fifth bit of every code (bit j of the little-endian u32 for element j) and
//! 16 bytes of low nibbles in Q4_0's order (byte j: element j low, element
//! j+16 high); value = d · (code − 16).

use super::{f16_at, put_f16, QK};

/// Bytes per block.
pub const BLOCK_BYTES: usize = 22;

/// Decodes whole blocks.
pub fn dequantize(src: &[u8], out: &mut [f32]) {
    for (b, o) in src.chunks_exact(BLOCK_BYTES).zip(out.chunks_exact_mut(QK)) {
        let d = f16_at(b);
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        for j in 0..16 {
            let q = b[6 + j];
            let c0 = (q & 0x0f) as u32 | ((qh >> j) & 1) << 4;
            let c1 = (q >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4;
            o[j] = (c0 as i32 - 16) as f32 * d;
            o[j + 16] = (c1 as i32 - 16) as f32 * d;
        }
    }
}

/// ggml's reference quantizer: the value of largest magnitude maps to code 0
/// (d = max / −16), the others round half up and clamp to 31.
pub fn quantize(src: &[f32], out: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(out.chunks_exact_mut(BLOCK_BYTES)) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in x {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(&mut b[..2], d);
        // Truncation toward zero after +16.5, as ggml's (int8_t) cast.
        let code = |v: f32| ((v * id + 16.5) as i8).min(31) as u8;
        let mut qh = 0u32;
        for j in 0..16 {
            let c0 = code(x[j]);
            let c1 = code(x[j + 16]);
            b[6 + j] = (c0 & 0x0f) | ((c1 & 0x0f) << 4);
            qh |= ((c0 >> 4) as u32 & 1) << j;
            qh |= ((c1 >> 4) as u32 & 1) << (j + 16);
        }
        b[2..6].copy_from_slice(&qh.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use crate::dtype::DType;
    use crate::quant::test_util::check_round_trip;

    #[test]
    fn round_trip_within_a_step() {
        // d = max|x| / 16; the value opposite the extreme may clamp a full step.
        check_round_trip(DType::Q5_0, 1.0, 0.1);
    }
}
