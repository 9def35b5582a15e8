//! Q8_0: blocks of 32 values as an f16 scale `d` and 32 signed bytes;
//! value = d · code.

use super::{f16_at, QK};

/// Bytes per block.
pub const BLOCK_BYTES: usize = 34;

/// Decodes whole blocks.
pub fn dequantize(src: &[u8], out: &mut [f32]) {
    for (b, o) in src.chunks_exact(BLOCK_BYTES).zip(out.chunks_exact_mut(QK)) {
        let d = f16_at(b);
        for j in 0..QK {
            o[j] = (b[2 + j] as i8) as f32 * d;
        }
    }
}

/// ggml's reference quantizer: d = max|x| / 127, codes rounded half away from zero.
pub fn quantize(src: &[f32], out: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(out.chunks_exact_mut(BLOCK_BYTES)) {
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b[..2].copy_from_slice(&half::f16::from_f32(d).to_bits().to_le_bytes());
        for j in 0..QK {
            b[2 + j] = ((x[j] * id).round() as i8) as u8;
        }
    }
}
