//! Helpers for the quantizers' unit tests: reproducible pseudo-random rows
//! and a round-trip error check.

use crate::dtype::DType;

/// A small deterministic generator (SplitMix64), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = (self.uniform() as f64).max(1e-12);
        let u2 = self.uniform() as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}

/// Rows of varied shape, each `n` long: normal weights at several scales,
/// uniform data with an offset (all positive or all negative), a row with
/// an outlier, sparse rows and an all-zero stretch.
pub fn sample_rows(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut r = Rng::new(seed);
    let mut rows = Vec::new();
    for scale in [0.02f32, 1.0, 30.0] {
        rows.push((0..n).map(|_| r.normal() * scale).collect());
    }
    rows.push((0..n).map(|_| 2.0 + r.uniform()).collect());
    rows.push((0..n).map(|_| -5.0 - 3.0 * r.uniform()).collect());
    let mut outlier: Vec<f32> = (0..n).map(|_| r.normal()).collect();
    outlier[n / 3] = 80.0;
    outlier[2 * n / 3] = -45.0;
    rows.push(outlier);
    rows.push(
        (0..n)
            .map(|_| if r.uniform() < 0.1 { r.normal() } else { 0.0 })
            .collect(),
    );
    let mut zeros: Vec<f32> = (0..n).map(|_| r.normal()).collect();
    zeros[..n / 2].fill(0.0);
    rows.push(zeros);
    rows
}

/// Elements sharing one scale (a block, or a K-quant sub-block).
pub fn group_len(dtype: DType) -> usize {
    match dtype {
        DType::Q6_K => 16,
        _ => 32,
    }
}

/// The quantization step of one group `xs` of `dtype`: the spacing of its
/// codes as the reference quantizer chooses them before the scales are
/// rounded (symmetric types: max|x| over half their levels; asymmetric
/// ones: the range, zero included for the K-quants, over their steps).
pub fn group_step(dtype: DType, xs: &[f32]) -> f32 {
    let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
    let hi = xs.iter().fold(f32::MIN, |m, &v| m.max(v));
    let lo = xs.iter().fold(f32::MAX, |m, &v| m.min(v));
    match dtype {
        DType::Q5_0 => amax / 16.0,
        DType::Q5_1 => (hi - lo) / 31.0,
        DType::Q4_K => (hi.max(0.0) - lo.min(0.0)) / 15.0,
        DType::Q5_K => (hi.max(0.0) - lo.min(0.0)) / 31.0,
        DType::Q6_K => amax / 32.0,
        _ => panic!("test_util has no step bound for {dtype}"),
    }
}

/// What rounding a K-quant block's sub-block scale (and minimum) to its
/// 6- or 8-bit code against the f16 super-block scale can add to the error
/// of a value: half a code of the scale times the largest value code, plus
/// half a code of the minimum. Zero for the 32-value types.
pub fn scale_rounding_slack(dtype: DType, block: &[u8]) -> f32 {
    let f16 = |b: &[u8]| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
    match dtype {
        DType::Q4_K => (15.0 * f16(&block[0..]) + f16(&block[2..])) / 2.0,
        DType::Q5_K => (31.0 * f16(&block[0..]) + f16(&block[2..])) / 2.0,
        DType::Q6_K => 32.0 * f16(&block[208..]).abs() / 2.0,
        _ => 0.0,
    }
}

/// Quantizes and dequantizes every sample row and checks that each value
/// comes back within `steps_tol` steps of its group (see `group_step`),
/// plus the K-quant scale-rounding slack and f16 rounding. Also checks the
/// whole-row RMS error is at most `rms_tol` · RMS of the row.
pub fn check_round_trip(dtype: DType, steps_tol: f32, rms_tol: f32) {
    let n = 4 * 256;
    let group = group_len(dtype);
    for (k, row) in sample_rows(n, 0x5eed ^ dtype.ggml_id() as u64)
        .iter()
        .enumerate()
    {
        let mut q = vec![0u8; dtype.bytes_for(n).unwrap()];
        super::quantize_row(dtype, row, &mut q);
        let mut back = vec![0f32; n];
        super::dequantize_row(dtype, &q, &mut back);
        for (g, (xs, ys)) in row.chunks(group).zip(back.chunks(group)).enumerate() {
            let b = g * group / dtype.block_len();
            let block = &q[b * dtype.block_bytes()..(b + 1) * dtype.block_bytes()];
            let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
            let step = group_step(dtype, xs);
            let tol = steps_tol * step + scale_rounding_slack(dtype, block) + amax * 2e-3 + 1e-7;
            for (i, (x, y)) in xs.iter().zip(ys).enumerate() {
                assert!(
                    (x - y).abs() <= tol,
                    "{dtype} row {k} group {g} [{i}]: {x} -> {y} (step {step}, tolerance {tol})"
                );
            }
        }
        let err2: f64 = row
            .iter()
            .zip(&back)
            .map(|(x, y)| ((x - y) as f64).powi(2))
            .sum();
        let sig2: f64 = row.iter().map(|x| (*x as f64).powi(2)).sum();
        assert!(
            err2 <= (rms_tol as f64).powi(2) * sig2 + 1e-12,
            "{dtype} row {k}: relative RMS error {}",
            (err2 / sig2).sqrt()
        );
    }
}
