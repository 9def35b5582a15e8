//! Q6_K: super-blocks of 256 values in sixteen sub-blocks of 16, each with
//! a signed 8-bit scale. Layout: 128 bytes `ql` of low nibbles, 64 bytes `qh`
//! of high bit pairs, 16 signed scale bytes, then the f16 `d`.
//! Value = d · scale · (code − 32).
//!
//! Each 128-value half h uses `ql[64h..64h+64]` and `qh[32h..32h+32]`: for
//! l in 0..32, `ql[l]` holds elements l (low nibble) and l+64 (high),
//! `ql[l+32]` elements l+32 and l+96, and `qh[l]` the top two bits of
//! elements l, l+32, l+64, l+96 in bit pairs 0, 1, 2, 3.

use super::kquant::{self, QK_K};
use super::{f16_at, put_f16};

/// Bytes per super-block.
pub const BLOCK_BYTES: usize = QK_K / 2 + QK_K / 4 + QK_K / 16 + 2;

const QH: usize = QK_K / 2;
const SC: usize = QH + QK_K / 4;
const D: usize = SC + QK_K / 16;

/// Decodes whole super-blocks.
pub fn dequantize(src: &[u8], out: &mut [f32]) {
    for (b, o) in src
        .chunks_exact(BLOCK_BYTES)
        .zip(out.chunks_exact_mut(QK_K))
    {
        let d = f16_at(&b[D..]);
        for h in 0..2 {
            let ql = &b[64 * h..64 * h + 64];
            let qh = &b[QH + 32 * h..QH + 32 * h + 32];
            let sc = &b[SC + 8 * h..SC + 8 * h + 8];
            let o = &mut o[128 * h..128 * h + 128];
            for l in 0..32 {
                let s = l / 16;
                let codes = [
                    (ql[l] & 0x0f) | ((qh[l] & 3) << 4),
                    (ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4),
                    (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                    (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
                ];
                for (k, &c) in codes.iter().enumerate() {
                    let scale = sc[s + 2 * k] as i8 as f32;
                    o[l + 32 * k] = d * scale * (c as i32 - 32) as f32;
                }
            }
        }
    }
}

/// ggml's reference quantizer (no importance matrix): each 16-value
/// sub-block is fitted with `fit_symmetric`, the sub-block scales quantized
/// to signed bytes against the one of largest magnitude (which maps to
/// −128), and every value re-coded against its dequantized scale.
pub fn quantize(src: &[f32], out: &mut [u8]) {
    for (x, b) in src
        .chunks_exact(QK_K)
        .zip(out.chunks_exact_mut(BLOCK_BYTES))
    {
        let mut codes = [0i8; QK_K];
        let mut scales = [0f32; QK_K / 16];
        let mut max_scale = 0f32;
        let mut max_abs_scale = 0f32;
        for (j, s) in scales.iter_mut().enumerate() {
            *s =
                kquant::fit_symmetric(&x[16 * j..16 * j + 16], 32, &mut codes[16 * j..16 * j + 16]);
            if s.abs() > max_abs_scale {
                max_abs_scale = s.abs();
                max_scale = *s;
            }
        }
        if max_abs_scale < kquant::GROUP_MAX_EPS {
            b.fill(0);
            continue;
        }

        let iscale = -128.0 / max_scale;
        put_f16(&mut b[D..D + 2], 1.0 / iscale);
        for (j, &s) in scales.iter().enumerate() {
            b[SC + j] = kquant::nearest_int(iscale * s).min(127) as i8 as u8;
        }
        let d = f16_at(&b[D..]);
        for j in 0..QK_K / 16 {
            let dj = d * b[SC + j] as i8 as f32;
            if dj == 0.0 {
                // ggml keeps the codes of the first fit here.
                continue;
            }
            for i in 16 * j..16 * j + 16 {
                codes[i] = (kquant::nearest_int(x[i] / dj).clamp(-32, 31) + 32) as i8;
            }
        }

        for h in 0..2 {
            let c = &codes[128 * h..128 * h + 128];
            for l in 0..32 {
                let q = [
                    c[l] as u8,
                    c[l + 32] as u8,
                    c[l + 64] as u8,
                    c[l + 96] as u8,
                ];
                b[64 * h + l] = (q[0] & 0x0f) | ((q[2] & 0x0f) << 4);
                b[64 * h + l + 32] = (q[1] & 0x0f) | ((q[3] & 0x0f) << 4);
                b[QH + 32 * h + l] =
                    (q[0] >> 4) | ((q[1] >> 4) << 2) | ((q[2] >> 4) << 4) | ((q[3] >> 4) << 6);
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
        // A step of the 16-value sub-block (max|x| / 32), plus what rounding
        // the sub-block scale to its 8-bit code can add.
        check_round_trip(DType::Q6_K, 1.0, 0.04);
    }
}
