//! CPU backend parity with the reference kernels, op by op, over random
//! shapes (including sizes that are not multiples of any SIMD width), for
//! every ISA this machine supports.
//!
//! Tolerances: ops that quantize activations to int8 (matmul against
//! quantized weights) are held to the int8 rounding bound: per block,
//! |Δ| ≤ Σ|w|·d_a/2 where d_a = max|x|/127, summed over blocks. Float ops are
//! held to a small relative bound.

use proptest::prelude::*;
use wisp_backend_cpu::encoder_attention::AttentionPrecision;
use wisp_backend_cpu::kernels::bf16::{bf16_bits, bf16_value, Bf16Kernels};
use wisp_backend_cpu::{attention, kernels::Isa, matmul};
use wisp_ops::quant::quantize_row;
use wisp_ops::reference::{self, AttentionShape};
use wisp_ops::{DType, TensorType, TensorView};

fn weight_types() -> impl Strategy<Value = DType> {
    prop::sample::select(vec![
        DType::Q4_0,
        DType::Q4_1,
        DType::Q8_0,
        DType::F16,
        DType::F32,
        DType::BF16,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn matmul_matches_reference(
        dt in weight_types(),
        n in 1usize..6,
        m in 1usize..40,
        blocks in 1usize..6,
        extra in 0usize..31,
        seed in any::<u64>(),
    ) {
        // K: whole blocks for quantized types, any size for float types.
        let k = if dt.is_quantized() { blocks * 32 } else { blocks * 32 + extra };
        let mut s = seed | 1;
        let mut rnd = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0 };
        let x: Vec<f32> = (0..n * k).map(|_| (rnd() * 4.0) as f32).collect();
        let wf: Vec<f32> = (0..m * k).map(|_| rnd() as f32).collect();
        let rb = dt.bytes_for(k).unwrap();
        let mut w = vec![0u8; m * rb];
        for r in 0..m {
            quantize_row(dt, &wf[r * k..(r + 1) * k], &mut w[r * rb..(r + 1) * rb]);
        }
        let xt = TensorType::new(DType::F32, &[n, k]);
        let wt = TensorType::new(dt, &[m, k]);
        let xv = TensorView { ty: &xt, data: bytemuck::cast_slice(&x) };
        let wv = TensorView { ty: &wt, data: &w };
        let mut want = vec![0f32; n * m];
        reference::matmul(&x, k, wv, &mut want);
        // Exact dequantized weights, for the error bound.
        let wd = reference::dequantize_all(dt, &w, m, k);
        for isa in Isa::supported() {
            let mut got = vec![0f32; n * m];
            matmul::matmul(isa.kernels(), xv, wv, &mut got);
            for t in 0..n {
                for o in 0..m {
                    let xr = &x[t * k..(t + 1) * k];
                    let wr = &wd[o * k..(o + 1) * k];
                    let bound = if dt.is_quantized() {
                        // int8 activation rounding per block, plus float slack.
                        xr.chunks(32).zip(wr.chunks(32)).map(|(xb, wb)| {
                            let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
                            wb.iter().map(|v| v.abs()).sum::<f32>() * amax / 127.0 * 0.5
                        }).sum::<f32>() * 1.01 + 1e-4
                    } else {
                        xr.iter().zip(wr).map(|(a, b)| (a * b).abs()).sum::<f32>() * 1e-5 + 1e-5
                    };
                    let d = (got[t * m + o] - want[t * m + o]).abs();
                    prop_assert!(d <= bound, "{} {dt} n={n} m={m} k={k} [{t},{o}]: {} vs {} (bound {bound})",
                        isa.name(), got[t * m + o], want[t * m + o]);
                }
            }
        }
    }

    #[test]
    fn attention_matches_reference(
        n_kv in 1usize..4,
        group in 1usize..4,
        hd_half in 1usize..40,
        ctx in 1usize..70,
        n in 1usize..4,
        f16 in any::<bool>(),
        window in proptest::option::of(1usize..40),
        seed in any::<u64>(),
    ) {
        let hd = hd_half * 2;
        let n_head = n_kv * group;
        let n = n.min(ctx);
        let kv_dt = if f16 { DType::F16 } else { DType::F32 };
        let mut s = seed | 1;
        let mut rnd = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 };
        let q: Vec<f32> = (0..n * n_head * hd).map(|_| rnd() * 3.0).collect();
        let kvf: Vec<f32> = (0..2 * ctx * n_kv * hd).map(|_| rnd() * 2.0).collect();
        let (kf, vf) = kvf.split_at(ctx * n_kv * hd);
        let enc = |f: &[f32]| { let mut b = vec![0u8; kv_dt.bytes_for(f.len()).unwrap()]; quantize_row(kv_dt, f, &mut b); b };
        let (kb, vb) = (enc(kf), enc(vf));
        let ct = TensorType::new(kv_dt, &[ctx, n_kv * hd]);
        let (kv_, vv) = (TensorView { ty: &ct, data: &kb }, TensorView { ty: &ct, data: &vb });
        // The last n positions of the context, causal.
        let pos: Vec<i32> = (ctx - n..ctx).map(|p| p as i32).collect();
        let shape = AttentionShape { n_head, n_kv_head: n_kv, head_dim: hd, scale: 1.0 / (hd as f32).sqrt(), window };
        let mut want = vec![0f32; n * n_head * hd];
        reference::attention(&shape, &q, kv_, vv, &pos, &mut want).unwrap();
        for isa in Isa::supported() {
            let mut got = vec![0f32; want.len()];
            attention::attention(isa.kernels(), &shape, &q, kv_, vv, &pos, &mut got).unwrap();
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                prop_assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{} [{i}]: {a} vs {b}", isa.name());
            }
        }
    }
}

#[test]
fn attention_rejects_positions_outside_the_cache() {
    let ct = TensorType::new(DType::F32, &[4, 8]);
    let zeros = vec![0u8; 4 * 8 * 4];
    let kv = TensorView {
        ty: &ct,
        data: &zeros,
    };
    let shape = AttentionShape {
        n_head: 1,
        n_kv_head: 1,
        head_dim: 8,
        scale: 1.0,
        window: None,
    };
    let mut out = vec![0f32; 8];
    let q = vec![0f32; 8];
    assert!(
        attention::attention(Isa::Scalar.kernels(), &shape, &q, kv, kv, &[4], &mut out).is_err()
    );
    assert!(
        attention::attention(Isa::Scalar.kernels(), &shape, &q, kv, kv, &[-1], &mut out).is_err()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn rope_matches_reference(
        n in 1usize..9, heads in 1usize..5, hd_half in 1usize..40, rot_frac in 1usize..5,
        neox in any::<bool>(), base in 100f32..1e6, seed in any::<u64>(),
    ) {
        let hd = hd_half * 2;
        let n_dims = ((hd * rot_frac / 4) / 2 * 2).max(2);
        let mode = if neox { wisp_ops::RopeMode::Neox } else { wisp_ops::RopeMode::Normal };
        let mut s = seed | 1;
        let mut rnd = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 };
        let x: Vec<f32> = (0..n * heads * hd).map(|_| rnd() * 10.0).collect();
        let pos: Vec<i32> = (0..n).map(|i| (i * 37 % 3000) as i32).collect();
        let mut want = x.clone();
        reference::rope_inplace(&mut want, &pos, hd, n_dims, base, mode);
        let mut got = x.clone();
        wisp_backend_cpu::rope::rope_inplace(&mut got, &pos, hd, n_dims, base, mode);
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            prop_assert_eq!(a.to_bits(), b.to_bits(), "[{}] {} vs {}", i, a, b);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn encoder_attention_matches_reference(
        batch in 1usize..3, seq in 1usize..20, heads in 1usize..4, hd in 1usize..20, seed in any::<u64>(),
    ) {
        let d = heads * hd;
        let n = batch * seq;
        let mut s = seed | 1;
        let mut rnd = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 };
        let q: Vec<f32> = (0..n * d).map(|_| rnd() * 2.0).collect();
        let k: Vec<f32> = (0..n * d).map(|_| rnd() * 2.0).collect();
        let v: Vec<f32> = (0..n * d).map(|_| rnd()).collect();
        // Padding at the end of each sequence (at least one real token).
        let mask: Vec<f32> = (0..n).map(|r| if r % seq == 0 || rnd() > -0.5 { 1.0 } else { 0.0 }).collect();
        let mut want = vec![0f32; n * d];
        reference::encoder_attention(heads, hd, 0.3, seq, &q, &k, &v, &mask, &mut want);
        // The reference on bf16-rounded operands: what the bf16 path computes
        // up to the rounding of the probabilities (≤ 2⁻⁸ relative each, |v| ≤ 1).
        let r16 = |x: &Vec<f32>| -> Vec<f32> { x.iter().map(|&v| bf16_value(bf16_bits(v))).collect() };
        let mut want_bf = vec![0f32; n * d];
        reference::encoder_attention(heads, hd, 0.3, seq, &r16(&q), &r16(&k), &r16(&v), &mask, &mut want_bf);
        for isa in Isa::supported() {
            let mut got = vec![0f32; n * d];
            wisp_backend_cpu::encoder_attention::encoder_attention(isa.kernels(), AttentionPrecision::F32, heads, hd, 0.3, seq, &q, &k, &v, &mask, &mut got);
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                prop_assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{} [{i}]: {a} vs {b}", isa.name());
            }
            if hd % 2 == 0 && Bf16Kernels::for_isa(isa).is_some() {
                let mut got = vec![0f32; n * d];
                wisp_backend_cpu::encoder_attention::encoder_attention(isa.kernels(), AttentionPrecision::Bf16, heads, hd, 0.3, seq, &q, &k, &v, &mask, &mut got);
                for (i, (a, b)) in got.iter().zip(&want_bf).enumerate() {
                    prop_assert!((a - b).abs() <= 6e-3, "{} bf16 [{i}]: {a} vs {b}", isa.name());
                }
            }
        }
    }
}
