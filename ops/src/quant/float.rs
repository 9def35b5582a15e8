//! F16 and BF16 rows (little-endian), converted with round-to-nearest-even.

use half::{bf16, f16};

/// Decodes little-endian f16 values.
pub fn f16_to_f32(src: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(src.chunks_exact(2)) {
        *o = f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
    }
}

/// Encodes f32 as little-endian f16 (nearest even, as ggml's GGML_FP32_TO_FP16).
pub fn f32_to_f16(src: &[f32], out: &mut [u8]) {
    for (c, x) in out.chunks_exact_mut(2).zip(src) {
        c.copy_from_slice(&f16::from_f32(*x).to_bits().to_le_bytes());
    }
}

/// Decodes little-endian bf16 values.
pub fn bf16_to_f32(src: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(src.chunks_exact(2)) {
        *o = bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
    }
}

/// Encodes f32 as little-endian bf16, rounding to nearest even; NaNs stay
/// NaN (quiet), as ggml's reference conversion does.
pub fn f32_to_bf16(src: &[f32], out: &mut [u8]) {
    for (c, x) in out.chunks_exact_mut(2).zip(src) {
        let bits = x.to_bits();
        let h = if x.is_nan() {
            ((bits >> 16) | 64) as u16
        } else {
            ((bits + (0x7fff + ((bits >> 16) & 1))) >> 16) as u16
        };
        c.copy_from_slice(&h.to_le_bytes());
    }
}
