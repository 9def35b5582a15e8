//! bf16 kernels for attention in quantized models: products of bf16 pairs
//! accumulated in f32 (`vdpbf16ps` on AVX-512 BF16: two multiply-adds per
//! f32 lane, twice the f32 FMA rate on Zen 4).
//!
//! # Formats
//! A bf16 is the top 16 bits of an f32, rounded to nearest even. A *pair*
//! is two bf16 in a `u32`, the first element in the low half. [`GemmBf16Fn`]
//! multiplies a matrix of pairs along its rows (`a[i][pp]` = elements 2pp and
//! 2pp + 1 of row i) by a matrix of pairs along its columns (`b[pp][j]` =
//! elements 2pp and 2pp + 1 of column j): `c[i][j] = Σ_pp a_lo·b_lo + a_hi·b_hi`.
//!
//! Chosen at run time like the other kernels: [`Bf16Kernels::for_isa`] gives
//! the AVX-512 BF16 version where the CPU has the extension, the scalar
//! definition for [`Isa::Scalar`] (tests), and nothing otherwise (callers then
//! keep f32).

use super::Isa;

/// Signature of [`Bf16Kernels::gemm`]: `(m, n, pairs, a, lda, b, ldb, c, ldc)`.
pub type GemmBf16Fn = fn(usize, usize, usize, &[u32], usize, &[u32], usize, &mut [f32], usize);

/// The bf16 kernels of one instruction set.
pub struct Bf16Kernels {
    /// `out[i]` = `x[i]` rounded to bf16 (nearest even; NaN stays NaN).
    pub to_bf16: fn(x: &[f32], out: &mut [u16]),
    /// `c[i·ldc + j] = Σ_pp pair(a[i·lda + pp]) · pair(b[pp·ldb + j])` for
    /// `i < m`, `j < n`, `pp < pairs`; overwrites `c`. Sums in f32, in an
    /// order that may differ between ISAs (and AVX-512 BF16 reads subnormal
    /// bf16 inputs as zero).
    pub gemm: GemmBf16Fn,
    /// Softmax numerators as bf16: `x = row·scale + bias` (kept in `row`),
    /// `out[j] = bf16(e^(x_j − max))`; returns `1/Σ e` over the unrounded
    /// values (the caller scales the product instead of the probabilities),
    /// or 0 with `out` all zeros when every position is masked (−inf).
    pub softmax_numerators: fn(row: &mut [f32], scale: f32, bias: &[f32], out: &mut [u16]) -> f32,
}

impl Bf16Kernels {
    /// The bf16 kernels for `isa` on this CPU, if it has any.
    pub fn for_isa(isa: Isa) -> Option<&'static Bf16Kernels> {
        match isa {
            Isa::Scalar => Some(&SCALAR),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 if has_avx512_bf16() => Some(&super::avx512_bf16::KERNELS),
            _ => None,
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx512_bf16() -> bool {
    Isa::Avx512.is_supported() && is_x86_feature_detected!("avx512bf16")
}

/// The scalar definitions.
static SCALAR: Bf16Kernels = Bf16Kernels {
    to_bf16: to_bf16_scalar,
    gemm: gemm_scalar,
    softmax_numerators: softmax_numerators_scalar,
};

fn softmax_numerators_scalar(row: &mut [f32], scale: f32, bias: &[f32], out: &mut [u16]) -> f32 {
    assert!(
        row.len() == bias.len() && row.len() == out.len(),
        "softmax_numerators: lengths"
    );
    let mut max = f32::NEG_INFINITY;
    for (x, &b) in row.iter_mut().zip(bias) {
        *x = x.mul_add(scale, b);
        max = max.max(*x);
    }
    if max == f32::NEG_INFINITY {
        out.fill(0);
        return 0.0;
    }
    let mut sum = 0f32;
    for (o, &x) in out.iter_mut().zip(row.iter()) {
        let e = (x - max).exp();
        sum += e;
        *o = bf16_bits(e);
    }
    1.0 / sum
}

/// One f32 to bf16 bits, nearest even.
#[inline]
pub fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    (b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// bf16 bits to f32 (exact).
#[inline]
pub fn bf16_value(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

fn to_bf16_scalar(x: &[f32], out: &mut [u16]) {
    assert_eq!(x.len(), out.len(), "to_bf16: lengths");
    for (o, &v) in out.iter_mut().zip(x) {
        *o = bf16_bits(v);
    }
}

#[allow(clippy::too_many_arguments)]
fn gemm_scalar(
    m: usize,
    n: usize,
    k: usize,
    a: &[u32],
    lda: usize,
    b: &[u32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
) {
    super::check_gemm("gemm_bf16", (m, n, k), (a, lda), (b, ldb), (c, ldc));
    let lo = |p: u32| bf16_value(p as u16);
    let hi = |p: u32| bf16_value((p >> 16) as u16);
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f32;
            for p in 0..k {
                let (x, y) = (a[i * lda + p], b[p * ldb + j]);
                // Each bf16 product is exact in f32.
                s += lo(x) * lo(y) + hi(x) * hi(y);
            }
            c[i * ldc + j] = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_nearest_even() {
        assert_eq!(bf16_bits(1.0), 0x3F80);
        // 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties to even (1.0).
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), 0x3F80);
        assert_eq!(bf16_bits(1.0 + 3.0 / 256.0), 0x3F82);
        assert!(bf16_value(bf16_bits(f32::NAN)).is_nan());
        assert_eq!(bf16_value(bf16_bits(f32::INFINITY)), f32::INFINITY);
        assert_eq!(bf16_value(bf16_bits(-2.5)), -2.5);
    }

    /// Every ISA's softmax numerators agree with the scalar definition on rows
    /// short (the register path, ≤ 128) and long, masked positions included:
    /// the scaled row exactly, each numerator within one bf16 step (the
    /// exponentials differ in their last bits), the inverse sum to 1e-6; an
    /// all-masked row gives zeros and 0.
    #[test]
    fn softmax_numerators_match_scalar() {
        let mut next = super::super::tests::xorshift(0x2545_F491_4F6C_DD1Du64);
        for isa in Isa::supported() {
            let Some(k) = Bf16Kernels::for_isa(isa) else {
                continue;
            };
            for n in [1usize, 5, 16, 17, 64, 100, 127, 128, 129, 200, 300] {
                for all_masked in [false, true] {
                    let x: Vec<f32> = (0..n)
                        .map(|_| ((next() % 20001) as f32 - 10000.0) * 1e-3)
                        .collect();
                    let bias: Vec<f32> = (0..n)
                        .map(|i| {
                            if all_masked || (i % 7 == 3 && n > 1) {
                                f32::NEG_INFINITY
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    let (mut rw, mut rg) = (x.clone(), x.clone());
                    let (mut ow, mut og) = (vec![1u16; n], vec![1u16; n]);
                    let iw = softmax_numerators_scalar(&mut rw, 0.37, &bias, &mut ow);
                    let ig = (k.softmax_numerators)(&mut rg, 0.37, &bias, &mut og);
                    if all_masked {
                        assert_eq!((ig, og.iter().all(|&o| o == 0)), (0.0, true), "{isa} n={n}");
                        continue;
                    }
                    assert_eq!(rg, rw, "{isa} n={n} scaled row");
                    for (i, (&g, &w)) in og.iter().zip(&ow).enumerate() {
                        assert!(
                            (g as i32 - w as i32).abs() <= 1,
                            "{isa} n={n} [{i}] {g:#x} vs {w:#x}"
                        );
                    }
                    assert!(
                        ((ig - iw) / iw).abs() <= 1e-6,
                        "{isa} n={n} 1/sum {ig} vs {iw}"
                    );
                }
            }
        }
    }

    /// Every ISA with bf16 kernels converts bit for bit like the scalar code and
    /// multiplies within f32 reordering error of it, over ragged shapes.
    #[test]
    fn isas_match_scalar() {
        let mut next = super::super::tests::xorshift(0x9E37_79B9_7F4A_7C15u64);
        for isa in Isa::supported() {
            let Some(k) = Bf16Kernels::for_isa(isa) else {
                continue;
            };
            for n in [1usize, 15, 16, 17, 33, 100] {
                let x: Vec<f32> = (0..n)
                    .map(|_| ((next() % 20001) as f32 - 10000.0) * 1e-3)
                    .collect();
                let (mut got, mut want) = (vec![0u16; n], vec![0u16; n]);
                (k.to_bf16)(&x, &mut got);
                to_bf16_scalar(&x, &mut want);
                assert_eq!(got, want, "{isa} to_bf16 n={n}");
            }
            for (m, n, kp) in [
                (1, 1, 1),
                (5, 33, 16),
                (128, 128, 16),
                (7, 32, 64),
                (3, 17, 5),
            ] {
                let (lda, ldb, ldc) = (kp + 2, n + 3, n + 1);
                let mut pair = || {
                    let v = ((next() % 2001) as f32 - 1000.0) * 1e-2;
                    let w = ((next() % 2001) as f32 - 1000.0) * 1e-2;
                    bf16_bits(v) as u32 | (bf16_bits(w) as u32) << 16
                };
                let a: Vec<u32> = (0..m * lda).map(|_| pair()).collect();
                let b: Vec<u32> = (0..kp * ldb).map(|_| pair()).collect();
                let mut want = vec![-1.0f32; m * ldc];
                gemm_scalar(m, n, kp, &a, lda, &b, ldb, &mut want, ldc);
                let mut got = vec![-1.0f32; m * ldc];
                (k.gemm)(m, n, kp, &a, lda, &b, ldb, &mut got, ldc);
                for i in 0..m {
                    for j in 0..ldc {
                        let (g, w) = (got[i * ldc + j], want[i * ldc + j]);
                        if j >= n {
                            assert_eq!(g, -1.0, "{isa} wrote padding");
                            continue;
                        }
                        // |terms| ≤ 100·100 each, 2·kp of them.
                        let tol = 2.0 * kp as f32 * 1e4 * f32::EPSILON * 4.0;
                        assert!((g - w).abs() <= tol, "{isa} [{i},{j}] {g} vs {w}");
                    }
                }
            }
        }
    }
}
