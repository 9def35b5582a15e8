//! Block layouts of the quantized and half-precision types, bit-exact with
//! GGUF, with reference dequantizers and quantizers.
//!
//! The quantizers follow ggml's reference (non-SIMD) algorithms, so a file
//! written by wisp is byte-identical to one written by llama.cpp from the same
//! floats; the fixtures in `tests/fixtures/quantize_reference.json` pin that.

pub mod float;
pub mod kquant;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q5_1;
pub mod q5_k;
pub mod q6_k;
pub mod q8_0;

#[cfg(test)]
mod test_util;

use crate::dtype::DType;

/// Elements in one block of Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0.
pub const QK: usize = 32;

pub use kquant::QK_K;

/// Reads the little-endian f16 at `b[0..2]` as f32.
#[inline]
pub fn f16_at(b: &[u8]) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()
}

/// Writes `v` as a little-endian f16 (round to nearest even, as ggml's
/// `GGML_FP32_TO_FP16`) to `b[0..2]`.
#[inline]
pub fn put_f16(b: &mut [u8], v: f32) {
    b[..2].copy_from_slice(&half::f16::from_f32(v).to_bits().to_le_bytes());
}

/// Dequantizes one row of `dtype` (`src` holds exactly `out.len()` elements).
///
/// Panics if the lengths disagree; callers size both from the same shape.
pub fn dequantize_row(dtype: DType, src: &[u8], out: &mut [f32]) {
    assert_eq!(
        Some(src.len()),
        dtype.bytes_for(out.len()),
        "dequantize_row: {dtype} row of {} elements",
        out.len()
    );
    match dtype {
        DType::F32 => {
            for (o, c) in out.iter_mut().zip(src.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        DType::F16 => float::f16_to_f32(src, out),
        DType::BF16 => float::bf16_to_f32(src, out),
        DType::Q4_0 => q4_0::dequantize(src, out),
        DType::Q4_1 => q4_1::dequantize(src, out),
        DType::Q5_0 => q5_0::dequantize(src, out),
        DType::Q5_1 => q5_1::dequantize(src, out),
        DType::Q8_0 => q8_0::dequantize(src, out),
        DType::Q4_K => q4_k::dequantize(src, out),
        DType::Q5_K => q5_k::dequantize(src, out),
        DType::Q6_K => q6_k::dequantize(src, out),
        DType::I32 => {
            for (o, c) in out.iter_mut().zip(src.chunks_exact(4)) {
                *o = i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32;
            }
        }
    }
}

/// Quantizes one row of f32 into `dtype` with ggml's reference algorithm.
///
/// Panics if the lengths disagree.
pub fn quantize_row(dtype: DType, src: &[f32], out: &mut [u8]) {
    assert_eq!(
        Some(out.len()),
        dtype.bytes_for(src.len()),
        "quantize_row: {dtype} row of {} elements",
        src.len()
    );
    match dtype {
        DType::F32 => {
            for (c, x) in out.chunks_exact_mut(4).zip(src) {
                c.copy_from_slice(&x.to_le_bytes());
            }
        }
        DType::F16 => float::f32_to_f16(src, out),
        DType::BF16 => float::f32_to_bf16(src, out),
        DType::Q4_0 => q4_0::quantize(src, out),
        DType::Q4_1 => q4_1::quantize(src, out),
        DType::Q5_0 => q5_0::quantize(src, out),
        DType::Q5_1 => q5_1::quantize(src, out),
        DType::Q8_0 => q8_0::quantize(src, out),
        DType::Q4_K => q4_k::quantize(src, out),
        DType::Q5_K => q5_k::quantize(src, out),
        DType::Q6_K => q6_k::quantize(src, out),
        DType::I32 => {
            for (c, x) in out.chunks_exact_mut(4).zip(src) {
                c.copy_from_slice(&(*x as i32).to_le_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn quantize_then_dequantize_is_close(xs in proptest::collection::vec(-100.0f32..100.0, 32..=128)) {
            let n = xs.len() / 32 * 32;
            let xs = &xs[..n];
            for (dt, steps) in [(DType::Q8_0, 127.0f32), (DType::Q4_0, 7.0), (DType::Q4_1, 15.0), (DType::Q5_0, 15.0), (DType::Q5_1, 31.0), (DType::F16, 1000.0), (DType::BF16, 100.0)] {
                let mut q = vec![0u8; dt.bytes_for(n).unwrap()];
                quantize_row(dt, xs, &mut q);
                let mut back = vec![0f32; n];
                dequantize_row(dt, &q, &mut back);
                for b in 0..n / 32 {
                    let blk = &xs[b * 32..b * 32 + 32];
                    let range = blk.iter().fold(0f32, |m, x| m.max(x.abs())) * 2.0;
                    for i in b * 32..b * 32 + 32 {
                        // one quantization step of the block, plus f16 rounding of the scale
                        let tol = range / steps * 0.51 + range * 2e-3 + 1e-6;
                        prop_assert!((xs[i] - back[i]).abs() <= tol, "{dt} i={i} x={} back={}", xs[i], back[i]);
                    }
                }
            }
        }
    }
}
