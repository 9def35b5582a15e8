//! Q4_0: blocks of 32 values as an f16 scale `d` and 16 bytes of 4-bit codes.
//! Byte j holds element j in its low nibble and element j+16 in its high
//! nibble; value = d · (code − 8).

use super::{f16_at, QK};

/// Bytes per block.
pub const BLOCK_BYTES: usize = 18;

/// Decodes whole blocks.
pub fn dequantize(src: &[u8], out: &mut [f32]) {
    for (b, o) in src.chunks_exact(BLOCK_BYTES).zip(out.chunks_exact_mut(QK)) {
        let d = f16_at(b);
        for j in 0..16 {
            let q = b[2 + j];
            o[j] = ((q & 0x0f) as i32 - 8) as f32 * d;
            o[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

/// ggml's reference quantizer: the value of largest magnitude maps to −8.
pub fn quantize(src: &[f32], out: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(out.chunks_exact_mut(BLOCK_BYTES)) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in x {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b[..2].copy_from_slice(&half::f16::from_f32(d).to_bits().to_le_bytes());
        for j in 0..16 {
            let x0 = x[j] * id;
            let x1 = x[j + 16] * id;
            let q0 = ((x0 + 8.5) as i8).min(15) as u8;
            let q1 = ((x1 + 8.5) as i8).min(15) as u8;
            b[2 + j] = q0 | (q1 << 4);
        }
    }
}
