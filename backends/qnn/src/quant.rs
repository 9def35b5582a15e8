//! Weights → static tensors: int8 per output channel for FullyConnected,
//! fixed point from the data's range for vectors, fp16 otherwise.
//!
//! Per-block int4 is not offered: the pinned API 2.7 has no block
//! quantization encoding (it arrived in later SDKs), and the HTP's
//! FullyConnected takes per-channel 8-bit weights. Any wisp weight dtype
//! (F32, F16, BF16, Q4_0 … Q6_K) is dequantized exactly first.

use wisp_ops::reference::dequantize_all;
use wisp_ops::TensorType;

use crate::ir::{Data, Enc, Form, QTensor};
use crate::lower::encode_fixed;

/// Symmetric int8 per row: scale = max|w| / 127, q = round(w / scale).
pub fn per_channel_i8(w: &[f32], rows: usize, cols: usize) -> (Vec<u8>, Vec<f32>) {
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &w[r * cols..(r + 1) * cols];
        let m = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if m > 0.0 && m.is_finite() {
            m / 127.0
        } else {
            1.0
        };
        scales.push(s);
        q.extend(
            row.iter()
                .map(|v| ((v / s).round().clamp(-127.0, 127.0) as i8) as u8),
        );
    }
    (q, scales)
}

/// Replaces a tensor's `Data::Weight` with bytes, from the weight's raw
/// bytes in its file dtype. Sets per-channel scales / data-derived encodings.
pub fn materialize(t: &mut QTensor, ty: &TensorType, raw: &[u8]) -> Result<(), String> {
    let Data::Weight { form, .. } = t.data.clone() else {
        return Ok(());
    };
    let cols = ty.row_len();
    let rows = ty.numel() / cols.max(1);
    let need = ty
        .bytes()
        .ok_or_else(|| format!("{}: size of {ty} overflows", t.name))?;
    if raw.len() < need {
        return Err(format!(
            "{}: weight has {} bytes, {need} expected",
            t.name,
            raw.len()
        ));
    }
    let w = dequantize_all(ty.dtype, &raw[..need], rows, cols);
    if w.iter().any(|v| !v.is_finite()) {
        return Err(format!("{}: weight has non-finite values", t.name));
    }
    let f16 = |v: &[f32]| -> Vec<u8> {
        v.iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect()
    };
    let bytes = match form {
        Form::PerChannelI8 => {
            let (q, scales) = per_channel_i8(&w, rows, cols);
            t.enc = Enc::I8PerChannel { scales };
            q
        }
        Form::F16 => f16(&w),
        Form::F16Twice => {
            let mut b = f16(&w);
            b.extend_from_within(..);
            b
        }
        Form::Auto { bits } => {
            let lo = w.iter().cloned().fold(0f32, f32::min);
            let hi = w.iter().cloned().fold(0f32, f32::max);
            let (scale, offset, _) = wisp_engine::calibration::qparams(lo, hi, bits);
            t.enc = Enc::UFixed {
                bits,
                scale,
                offset,
            };
            encode_fixed(&t.enc, &w)
        }
        Form::Declared => encode_fixed(&t.enc, &w),
    };
    if bytes.len() != t.bytes() {
        return Err(format!(
            "{}: {} bytes converted, the tensor holds {}",
            t.name,
            bytes.len(),
            t.bytes()
        ));
    }
    if bytes.len() > u32::MAX as usize {
        return Err(format!("{}: a static tensor is limited to 4 GiB", t.name));
    }
    t.data = Data::Bytes(bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_channel_is_exact_for_grid_values() {
        let w = vec![1.0, -0.5, 0.25, 0.0, 2.0, -4.0];
        let (q, s) = per_channel_i8(&w, 2, 3);
        assert_eq!(s[0], 1.0 / 127.0);
        assert_eq!(q[0] as i8, 127);
        assert_eq!(q[5] as i8, -127);
        let back: Vec<f32> = q
            .iter()
            .enumerate()
            .map(|(i, &b)| b as i8 as f32 * s[i / 3])
            .collect();
        for (a, b) in back.iter().zip(&w) {
            assert!((a - b).abs() <= s[0].max(s[1]) / 2.0 + 1e-7);
        }
    }
}
