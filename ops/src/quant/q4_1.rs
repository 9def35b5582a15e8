//! Q4_1: blocks of 32 values as f16 scale `d`, f16 minimum `m` and 16 bytes
//! of 4-bit codes (same nibble order as Q4_0); value = d · code + m.

use super::{f16_at, QK};

/// Bytes per block.
pub const BLOCK_BYTES: usize = 20;

/// Decodes whole blocks.
pub fn dequantize(src: &[u8], out: &mut [f32]) {
    for (b, o) in src.chunks_exact(BLOCK_BYTES).zip(out.chunks_exact_mut(QK)) {
        let d = f16_at(b);
        let m = f16_at(&b[2..]);
        for j in 0..16 {
            let q = b[4 + j];
            o[j] = (q & 0x0f) as f32 * d + m;
            o[j + 16] = (q >> 4) as f32 * d + m;
        }
    }
}

/// ggml's reference quantizer: codes span [min, max] in 15 steps.
pub fn quantize(src: &[f32], out: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(out.chunks_exact_mut(BLOCK_BYTES)) {
        let mut min = f32::MAX;
        let mut max = -f32::MAX;
        for &v in x {
            min = min.min(v);
            max = max.max(v);
        }
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b[..2].copy_from_slice(&half::f16::from_f32(d).to_bits().to_le_bytes());
        b[2..4].copy_from_slice(&half::f16::from_f32(min).to_bits().to_le_bytes());
        for j in 0..16 {
            let x0 = (x[j] - min) * id;
            let x1 = (x[j + 16] - min) * id;
            let q0 = ((x0 + 0.5) as i8).min(15) as u8;
            let q1 = ((x1 + 0.5) as i8).min(15) as u8;
            b[4 + j] = q0 | (q1 << 4);
        }
    }
}
