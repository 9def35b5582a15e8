//! Conversions between a tensor's stored bytes and the `f32` values the interpreter computes
//! with, including QNN fixed-point quantization and fp16 rounding.
//!
//! Every op in the emulator reads its inputs as `f32`, computes in `f32`, and writes its outputs
//! back in the output tensor's declared type. Storing every tensor (intermediates included) in its
//! declared type is what makes the emulator show the same quantization and fp16 rounding error a
//! real HTP graph would: a UFIXED_POINT_8 intermediate really is rounded to 256 levels.
//!
//! QNN's convention is `real = (q + offset) * scale`, so `q = round(real / scale) - offset`,
//! clamped to the type's range; `offset` is the negative of the usual zero point.

use half::f16;
use wisp_qnn_sys::*;

/// Quantization of a tensor as the emulator keeps it (copied out of the client's structs).
#[derive(Clone, Debug, PartialEq)]
pub enum Quant {
    /// Not quantized (float / integer / bool tensors).
    None,
    /// One scale / offset for the whole tensor; `bits` narrows the clamp range (BW encodings).
    PerTensor {
        /// Step size.
        scale: f32,
        /// QNN offset (= −zero point).
        offset: i32,
        /// Bits actually used (the type's width unless a BW encoding said otherwise).
        bits: u32,
    },
    /// One scale / offset per index of `axis`.
    PerAxis {
        /// Channel axis (non-negative, validated against the rank).
        axis: usize,
        /// Per-channel (scale, offset).
        params: Vec<(f32, i32)>,
        /// Bits actually used.
        bits: u32,
    },
}

/// The type and quantization needed to decode / encode one tensor's bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoding {
    /// QNN data type.
    pub dtype: Qnn_DataType_t,
    /// Quantization (meaningful for fixed-point types).
    pub quant: Quant,
}

/// Coarse class of a data type, used for op type checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// FLOAT_16 / FLOAT_32.
    Float,
    /// Any fixed-point (quantized) type.
    Fixed,
    /// Plain integers.
    Int,
    /// BOOL_8.
    Bool,
}

/// The class of `dtype`; `None` for unknown types.
pub fn class(dtype: Qnn_DataType_t) -> Option<Class> {
    Some(match dtype {
        QNN_DATATYPE_FLOAT_16 | QNN_DATATYPE_FLOAT_32 => Class::Float,
        d if is_fixed_point(d) => Class::Fixed,
        QNN_DATATYPE_INT_8 | QNN_DATATYPE_INT_16 | QNN_DATATYPE_INT_32 | QNN_DATATYPE_INT_64
        | QNN_DATATYPE_UINT_8 | QNN_DATATYPE_UINT_16 | QNN_DATATYPE_UINT_32
        | QNN_DATATYPE_UINT_64 => Class::Int,
        QNN_DATATYPE_BOOL_8 => Class::Bool,
        _ => return None,
    })
}

/// Bit width of a type's storage.
fn type_bits(dtype: Qnn_DataType_t) -> u32 {
    data_type_size(dtype).unwrap_or(4) as u32 * 8
}

/// Whether a fixed-point type is signed.
fn is_signed_fixed(dtype: Qnn_DataType_t) -> bool {
    dtype >> 8 == 0x03
}

/// Inclusive range of the quantized integer for a fixed-point type using `bits` bits.
fn q_range(dtype: Qnn_DataType_t, bits: u32) -> (f64, f64) {
    let bits = bits.clamp(1, type_bits(dtype));
    if is_signed_fixed(dtype) {
        (
            -(2f64.powi(bits as i32 - 1)),
            2f64.powi(bits as i32 - 1) - 1.0,
        )
    } else {
        (0.0, 2f64.powi(bits as i32) - 1.0)
    }
}

/// Reads element `i` of `bytes` as a raw (un-dequantized) number.
fn read_raw(dtype: Qnn_DataType_t, bytes: &[u8], i: usize) -> f64 {
    let size = data_type_size(dtype).unwrap_or(4);
    let b = &bytes[i * size..(i + 1) * size];
    match dtype {
        QNN_DATATYPE_FLOAT_32 => f32::from_le_bytes(b.try_into().unwrap()) as f64,
        QNN_DATATYPE_FLOAT_16 => f16::from_le_bytes(b.try_into().unwrap()).to_f64(),
        QNN_DATATYPE_INT_8 | QNN_DATATYPE_SFIXED_POINT_8 => b[0] as i8 as f64,
        QNN_DATATYPE_UINT_8 | QNN_DATATYPE_UFIXED_POINT_8 | QNN_DATATYPE_BOOL_8 => b[0] as f64,
        QNN_DATATYPE_INT_16 | QNN_DATATYPE_SFIXED_POINT_16 => {
            i16::from_le_bytes(b.try_into().unwrap()) as f64
        }
        QNN_DATATYPE_UINT_16 | QNN_DATATYPE_UFIXED_POINT_16 => {
            u16::from_le_bytes(b.try_into().unwrap()) as f64
        }
        QNN_DATATYPE_INT_32 | QNN_DATATYPE_SFIXED_POINT_32 => {
            i32::from_le_bytes(b.try_into().unwrap()) as f64
        }
        QNN_DATATYPE_UINT_32 | QNN_DATATYPE_UFIXED_POINT_32 => {
            u32::from_le_bytes(b.try_into().unwrap()) as f64
        }
        QNN_DATATYPE_INT_64 => i64::from_le_bytes(b.try_into().unwrap()) as f64,
        QNN_DATATYPE_UINT_64 => u64::from_le_bytes(b.try_into().unwrap()) as f64,
        _ => 0.0,
    }
}

/// Writes `v` (already rounded / clamped where needed) as element `i`.
fn write_raw(dtype: Qnn_DataType_t, out: &mut [u8], i: usize, v: f64) {
    let size = data_type_size(dtype).unwrap_or(4);
    let b = &mut out[i * size..(i + 1) * size];
    match dtype {
        QNN_DATATYPE_FLOAT_32 => b.copy_from_slice(&(v as f32).to_le_bytes()),
        QNN_DATATYPE_FLOAT_16 => b.copy_from_slice(&f16::from_f64(v).to_le_bytes()),
        QNN_DATATYPE_INT_8 | QNN_DATATYPE_SFIXED_POINT_8 => b[0] = v as i8 as u8,
        QNN_DATATYPE_UINT_8 | QNN_DATATYPE_UFIXED_POINT_8 => b[0] = v as u8,
        QNN_DATATYPE_BOOL_8 => b[0] = u8::from(v != 0.0),
        QNN_DATATYPE_INT_16 | QNN_DATATYPE_SFIXED_POINT_16 => {
            b.copy_from_slice(&(v as i16).to_le_bytes())
        }
        QNN_DATATYPE_UINT_16 | QNN_DATATYPE_UFIXED_POINT_16 => {
            b.copy_from_slice(&(v as u16).to_le_bytes())
        }
        QNN_DATATYPE_INT_32 | QNN_DATATYPE_SFIXED_POINT_32 => {
            b.copy_from_slice(&(v as i32).to_le_bytes())
        }
        QNN_DATATYPE_UINT_32 | QNN_DATATYPE_UFIXED_POINT_32 => {
            b.copy_from_slice(&(v as u32).to_le_bytes())
        }
        QNN_DATATYPE_INT_64 => b.copy_from_slice(&(v as i64).to_le_bytes()),
        QNN_DATATYPE_UINT_64 => b.copy_from_slice(&(v as u64).to_le_bytes()),
        _ => {}
    }
}

/// Index of the channel that flat element `i` belongs to, for per-axis quantization.
fn channel_of(i: usize, dims: &[u32], axis: usize) -> usize {
    let inner: usize = dims[axis + 1..].iter().map(|&d| d as usize).product();
    (i / inner) % dims[axis] as usize
}

/// Decodes a tensor's bytes to `f32` values (dequantizing fixed point).
pub fn decode(enc: &Encoding, dims: &[u32], bytes: &[u8]) -> Vec<f32> {
    let size = data_type_size(enc.dtype).unwrap_or(4);
    let n = bytes.len() / size;
    (0..n)
        .map(|i| {
            let raw = read_raw(enc.dtype, bytes, i);
            if !is_fixed_point(enc.dtype) {
                return raw as f32;
            }
            match &enc.quant {
                Quant::PerTensor { scale, offset, .. } => {
                    ((raw + *offset as f64) * *scale as f64) as f32
                }
                Quant::PerAxis { axis, params, .. } => {
                    let (scale, offset) = params[channel_of(i, dims, *axis)];
                    ((raw + offset as f64) * scale as f64) as f32
                }
                Quant::None => raw as f32,
            }
        })
        .collect()
}

/// Encodes `f32` values into a tensor's type: quantize (round half away from zero, clamp) for
/// fixed point, round to nearest for fp16, truncate toward zero for plain integers.
pub fn encode(enc: &Encoding, dims: &[u32], values: &[f32]) -> Vec<u8> {
    let size = data_type_size(enc.dtype).unwrap_or(4);
    let mut out = vec![0u8; values.len() * size];
    for (i, &v) in values.iter().enumerate() {
        let raw = if is_fixed_point(enc.dtype) {
            let (scale, offset, bits) = match &enc.quant {
                Quant::PerTensor {
                    scale,
                    offset,
                    bits,
                } => (*scale, *offset, *bits),
                Quant::PerAxis { axis, params, bits } => {
                    let (s, o) = params[channel_of(i, dims, *axis)];
                    (s, o, *bits)
                }
                Quant::None => (1.0, 0, type_bits(enc.dtype)),
            };
            let (lo, hi) = q_range(enc.dtype, bits);
            let q = (v as f64 / scale as f64).round() - offset as f64;
            if q.is_nan() {
                lo.max(0.0).min(hi)
            } else {
                q.clamp(lo, hi)
            }
        } else {
            match class(enc.dtype) {
                Some(Class::Int) => (v as f64).trunc(),
                _ => v as f64,
            }
        };
        write_raw(enc.dtype, &mut out, i, raw);
    }
    out
}

/// Reads integer-valued tensor data (indices, perms, ranges, axes) exactly, without going through
/// `f32`.
pub fn decode_ints(dtype: Qnn_DataType_t, bytes: &[u8]) -> Vec<i64> {
    let size = data_type_size(dtype).unwrap_or(4);
    (0..bytes.len() / size)
        .map(|i| read_raw(dtype, bytes, i) as i64)
        .collect()
}

/// The error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7), for erf-based GELU.
pub fn erf(x: f32) -> f32 {
    let x = x as f64;
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    (sign * (1.0 - poly * (-x * x).exp())) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint8_quantization_uses_qnn_offset_sign() {
        // zero point 128 => QNN offset -128; scale 0.5: real 1.0 -> q 130.
        let enc = Encoding {
            dtype: QNN_DATATYPE_UFIXED_POINT_8,
            quant: Quant::PerTensor {
                scale: 0.5,
                offset: -128,
                bits: 8,
            },
        };
        let bytes = encode(&enc, &[4], &[1.0, -64.0, 1000.0, -1000.0]);
        assert_eq!(bytes, vec![130, 0, 255, 0]);
        assert_eq!(decode(&enc, &[4], &bytes), vec![1.0, -64.0, 63.5, -64.0]);
    }

    #[test]
    fn per_axis_int8_decodes_per_channel() {
        let enc = Encoding {
            dtype: QNN_DATATYPE_SFIXED_POINT_8,
            quant: Quant::PerAxis {
                axis: 0,
                params: vec![(0.5, 0), (0.25, 0)],
                bits: 8,
            },
        };
        let bytes = encode(&enc, &[2, 2], &[1.0, -1.0, 1.0, -1.0]);
        assert_eq!(bytes, vec![2, (-2i8) as u8, 4, (-4i8) as u8]);
        assert_eq!(decode(&enc, &[2, 2], &bytes), vec![1.0, -1.0, 1.0, -1.0]);
    }

    #[test]
    fn fp16_rounds() {
        let enc = Encoding {
            dtype: QNN_DATATYPE_FLOAT_16,
            quant: Quant::None,
        };
        let v = decode(&enc, &[1], &encode(&enc, &[1], &[0.1]))[0];
        assert_eq!(v, half::f16::from_f32(0.1).to_f32());
        assert_ne!(v, 0.1);
    }

    #[test]
    fn erf_is_accurate() {
        assert!((erf(0.5) - 0.520_499_9).abs() < 1e-6);
        assert!((erf(-1.0) + 0.842_700_8).abs() < 1e-6);
    }
}
