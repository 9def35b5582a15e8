//! Portable reference kernels. Every SIMD implementation is tested against these.
//!
//! Written for clarity first; the f32 loops keep eight independent partial sums
//! so the compiler can use whatever baseline vector unit exists.

use super::{blocks::unpack, QuantKind};
use super::{
    check, q8_scale, BlockQ8, Isa, Kernels, Q4_0_BLOCK_BYTES, Q4_1_BLOCK_BYTES, Q8_0_BLOCK_BYTES,
    QK,
};
use half::f16;

pub(crate) static KERNELS: Kernels = Kernels {
    isa: Isa::Scalar,
    quantize_q8,
    dot_q4_0,
    dot_q4_1,
    dot_q8_0,
    dot4_q5_0: None,
    dot_q5_0: dot_kind::<2>,
    dot_q5_1: dot_kind::<3>,
    dot_q4_k: dot_kind::<5>,
    dot_q5_k: dot_kind::<6>,
    dot_q6_k: dot_kind::<7>,
    dot_f32,
    dot_f16_f32,
    axpy_f32,
    axpy_f16,
    f32_to_f16,
    gemm_q,
    gemm_tokens: 64,
    pack_q: None,
    gemm_packed: None,
    geglu,
    swiglu,
    gelu_erf,
    exp_sum,
    gemm_f32,
    transpose_f32,
    layer_norm_row,
    softmax_row,
};

#[inline(always)]
fn f16_le(lo: u8, hi: u8) -> f32 {
    f16::from_bits(u16::from_le_bytes([lo, hi])).to_f32()
}

/// Quantizes `x` (`32 * out.len()` values) to int8 blocks.
pub fn quantize_q8(x: &[f32], out: &mut [BlockQ8]) {
    check::quantize(x, out);
    for (xb, ob) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let (d, id) = q8_scale(amax);
        let mut h = [0i32; 2];
        for (i, (q, &v)) in ob.qs.iter_mut().zip(xb).enumerate() {
            // |v * id| <= 127 (+ rounding), so the cast never saturates for finite input.
            let r = (v * id).round_ties_even() as i32;
            *q = r as i8;
            h[i / 16] += r;
        }
        super::set_scales(ob, d, h);
    }
}

/// Σ_b d_w·d_a·Σ_i (q_i − 8)·a_i over Q4_0 blocks.
pub fn dot_q4_0(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::quant_row(w, a, Q4_0_BLOCK_BYTES);
    let mut acc = 0.0f32;
    for (blk, ab) in w.chunks_exact(Q4_0_BLOCK_BYTES).zip(a) {
        let d = f16_le(blk[0], blk[1]);
        let qs = &blk[2..18];
        let mut sumi = 0i32;
        for (j, &q) in qs.iter().enumerate() {
            let lo = (q & 0x0F) as i32 - 8;
            let hi = (q >> 4) as i32 - 8;
            sumi += lo * ab.qs[j] as i32 + hi * ab.qs[j + 16] as i32;
        }
        acc += d * ab.d * sumi as f32;
    }
    acc
}

/// Σ_b (d_w·d_a·Σ_i q_i·a_i + m_w·s_a) over Q4_1 blocks.
pub fn dot_q4_1(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::quant_row(w, a, Q4_1_BLOCK_BYTES);
    let mut acc = 0.0f32;
    for (blk, ab) in w.chunks_exact(Q4_1_BLOCK_BYTES).zip(a) {
        let d = f16_le(blk[0], blk[1]);
        let m = f16_le(blk[2], blk[3]);
        let qs = &blk[4..20];
        let mut sumi = 0i32;
        for (j, &q) in qs.iter().enumerate() {
            let lo = (q & 0x0F) as i32;
            let hi = (q >> 4) as i32;
            sumi += lo * ab.qs[j] as i32 + hi * ab.qs[j + 16] as i32;
        }
        acc += d * ab.d * sumi as f32 + m * ab.s;
    }
    acc
}

/// Σ_b d_w·d_a·Σ_i q_i·a_i over Q8_0 blocks.
pub fn dot_q8_0(w: &[u8], a: &[BlockQ8]) -> f32 {
    check::quant_row(w, a, Q8_0_BLOCK_BYTES);
    let mut acc = 0.0f32;
    for (blk, ab) in w.chunks_exact(Q8_0_BLOCK_BYTES).zip(a) {
        let d = f16_le(blk[0], blk[1]);
        let sumi: i32 = blk[2..34]
            .iter()
            .zip(&ab.qs)
            .map(|(&q, &x)| q as i8 as i32 * x as i32)
            .sum();
        acc += d * ab.d * sumi as f32;
    }
    acc
}

/// Any format through [`super::blocks::unpack`]: per 32 values two exact
/// integer dots (one per 16-value half), scaled, plus the offset term `m·s_a`.
/// `K` indexes [`QuantKind::ALL`].
pub fn dot_kind<const K: usize>(w: &[u8], a: &[BlockQ8]) -> f32 {
    let kind = QuantKind::ALL[K];
    check::kind_row(w, a, kind);
    let (bb, per) = (kind.block_bytes(), kind.block_len() / QK);
    let mut acc = 0.0f32;
    for (blk, ab) in w.chunks_exact(bb).zip(a.chunks_exact(per)) {
        for (j, ab) in ab.iter().enumerate() {
            let u = unpack(kind, blk, j);
            let half = |h: usize| -> i32 {
                (16 * h..16 * h + 16)
                    .map(|i| u.q[i] as i32 * ab.qs[i] as i32)
                    .sum()
            };
            acc += ab.d * (u.d[0] * half(0) as f32 + u.d[1] * half(1) as f32) + u.m * ab.s;
        }
    }
    acc
}

/// `g = gelu_tanh(g) · u`, the f64 reference per element.
pub fn geglu(g: &mut [f32], u: &[f32]) {
    check::same_len(g.len(), u.len());
    for (g, u) in g.iter_mut().zip(u) {
        *g = wisp_ops::reference::gelu_tanh(*g) * u;
    }
}

/// `g = silu(g) · u`, the reference per element.
pub fn swiglu(g: &mut [f32], u: &[f32]) {
    check::same_len(g.len(), u.len());
    for (g, u) in g.iter_mut().zip(u) {
        *g = wisp_ops::reference::silu(*g) * u;
    }
}

/// `x = gelu_erf(x)`, the f64 reference per element.
pub fn gelu_erf(x: &mut [f32]) {
    for v in x {
        *v = wisp_ops::reference::gelu(*v);
    }
}

/// `x = e^(x − shift)`, returning the sum.
pub fn exp_sum(x: &mut [f32], shift: f32) -> f32 {
    let mut sum = 0f32;
    for v in x {
        *v = (*v - shift).exp();
        sum += *v;
    }
    sum
}

/// `row = softmax(row · scale + bias)`; all masked → zeros, false.
pub fn softmax_row(row: &mut [f32], scale: f32, bias: &[f32]) -> bool {
    check::same_len(row.len(), bias.len());
    let mut max = f32::NEG_INFINITY;
    for (x, &b) in row.iter_mut().zip(bias) {
        *x = *x * scale + b;
        max = max.max(*x);
    }
    if max == f32::NEG_INFINITY {
        row.fill(0.0);
        return false;
    }
    let inv = 1.0 / exp_sum(row, max);
    for x in row.iter_mut() {
        *x *= inv;
    }
    true
}

/// `dst[j·ldd + i] = src[i·lds + j]`, in 16×16 tiles so both sides stay in cache.
pub fn transpose_f32(
    rows: usize,
    cols: usize,
    src: &[f32],
    lds: usize,
    dst: &mut [f32],
    ldd: usize,
) {
    super::check_transpose((rows, cols), (src, lds), (dst, ldd));
    transpose_tiles(rows, cols, src, lds, dst, ldd);
}

/// The tile loop of [`transpose_f32`] (shapes already checked); the SIMD
/// versions use it for the edges they leave.
pub(crate) fn transpose_tiles(
    rows: usize,
    cols: usize,
    src: &[f32],
    lds: usize,
    dst: &mut [f32],
    ldd: usize,
) {
    const B: usize = 16;
    for i0 in (0..rows).step_by(B) {
        for j0 in (0..cols).step_by(B) {
            for i in i0..(i0 + B).min(rows) {
                for j in j0..(j0 + B).min(cols) {
                    dst[j * ldd + i] = src[i * lds + j];
                }
            }
        }
    }
}

/// Small f32 GEMM, the plain triple loop (one fused multiply-add per term).
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
) {
    super::check_gemm("gemm_f32", (m, n, k), (a, lda), (b, ldb), (c, ldc));
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f32;
            for p in 0..k {
                s = a[i * lda + p].mul_add(b[p * ldb + j], s);
            }
            c[i * ldc + j] = s;
        }
    }
}

/// Σ a_i·b_i.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    check::same_len(a.len(), b.len());
    let mut lanes = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (at, bt) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in at.iter().zip(bt) {
        tail += x * y;
    }
    lanes.iter().sum::<f32>() + tail
}

/// Σ f16(w_i)·x_i, `w` being `2 * x.len()` little-endian half bytes.
pub fn dot_f16_f32(w: &[u8], x: &[f32]) -> f32 {
    check::f16_len(w.len(), x.len());
    let mut lanes = [0.0f32; 8];
    let (wc, xc) = (w.chunks_exact(16), x.chunks_exact(8));
    let (wt, xt) = (wc.remainder(), xc.remainder());
    for (h, v) in wc.zip(xc) {
        for k in 0..8 {
            lanes[k] += f16_le(h[2 * k], h[2 * k + 1]) * v[k];
        }
    }
    let mut tail = 0.0f32;
    for (h, v) in wt.chunks_exact(2).zip(xt) {
        tail += f16_le(h[0], h[1]) * v;
    }
    lanes.iter().sum::<f32>() + tail
}

/// y += alpha·x, one fused multiply-add per element (bit-identical to the SIMD kernels).
pub fn axpy_f32(y: &mut [f32], alpha: f32, x: &[f32]) {
    check::same_len(y.len(), x.len());
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = alpha.mul_add(xi, *yi);
    }
}

/// y += alpha·f16(x), one fused multiply-add per element.
pub fn axpy_f16(y: &mut [f32], alpha: f32, x: &[u8]) {
    check::f16_len(x.len(), y.len());
    for (yi, h) in y.iter_mut().zip(x.chunks_exact(2)) {
        *yi = alpha.mul_add(f16_le(h[0], h[1]), *yi);
    }
}

/// Converts to little-endian f16 bytes, rounding to nearest even.
pub fn f32_to_f16(x: &[f32], out: &mut [u8]) {
    check::f16_len(out.len(), x.len());
    for (&v, o) in x.iter().zip(out.chunks_exact_mut(2)) {
        o.copy_from_slice(&f16::from_f32(v).to_le_bytes());
    }
}

/// GEMM by dot products (the reference: no register blocking).
fn gemm_q(
    kind: super::QuantKind,
    w: &[u8],
    a: &[BlockQ8],
    nb: usize,
    out: &mut [f32],
    lay: super::OutLayout,
) {
    super::gemm_by_dots(&KERNELS, kind, w, a, nb, out, lay);
}

fn layer_norm_row(row: &mut [f32], eps: f32, w: &[f32], b: &[f32]) {
    crate::norm::layer_norm_row_generic(&KERNELS, row, eps, w, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// ggml-style dequantization of one row, in f64.
    fn dequant(kind: u8, w: &[u8]) -> Vec<f64> {
        let h = |b: &[u8], i: usize| f16::from_le_bytes([b[2 * i], b[2 * i + 1]]).to_f64();
        let mut out = Vec::new();
        match kind {
            0 => {
                for blk in w.chunks_exact(18) {
                    let d = h(blk, 0);
                    let qs = &blk[2..];
                    out.extend((0..16).map(|j| d * ((qs[j] & 15) as f64 - 8.0)));
                    out.extend((0..16).map(|j| d * ((qs[j] >> 4) as f64 - 8.0)));
                }
            }
            1 => {
                for blk in w.chunks_exact(20) {
                    let (d, m) = (h(blk, 0), h(blk, 1));
                    let qs = &blk[4..];
                    out.extend((0..16).map(|j| d * (qs[j] & 15) as f64 + m));
                    out.extend((0..16).map(|j| d * (qs[j] >> 4) as f64 + m));
                }
            }
            _ => {
                for blk in w.chunks_exact(34) {
                    let d = h(blk, 0);
                    out.extend(blk[2..].iter().map(|&q| d * q as i8 as f64));
                }
            }
        }
        out
    }

    fn row(kind: u8, nb: usize) -> impl Strategy<Value = Vec<u8>> {
        let bytes = [18usize, 20, 34][kind as usize];
        let scale = prop_oneof![Just(1e-4f32), Just(0.02f32), Just(3.0f32)];
        prop::collection::vec(
            (
                scale,
                -1.0f32..1.0,
                -1.0f32..1.0,
                prop::collection::vec(any::<u8>(), 32),
            ),
            nb,
        )
        .prop_map(move |blocks| {
            let mut out = Vec::new();
            for (s, d, m, qs) in blocks {
                out.extend_from_slice(&f16::from_f32(d * s).to_le_bytes());
                if kind == 1 {
                    out.extend_from_slice(&f16::from_f32(m * s).to_le_bytes());
                }
                out.extend_from_slice(&qs[..bytes - if kind == 1 { 4 } else { 2 }]);
            }
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// The scalar dots equal dequantize(w) · dequantize(quantize(x)) computed in f64.
        #[test]
        fn scalar_dot_equals_f64_dequantized(
            (kind, x, w) in (0u8..3, 1usize..=64).prop_flat_map(|(kind, nb)| (
                Just(kind),
                prop::collection::vec(prop_oneof![4 => -10.0f32..10.0, 1 => Just(0.0f32)], nb * 32),
                row(kind, nb)))
        ) {
            let nb = x.len() / 32;
            let mut a = vec![BlockQ8::default(); nb];
            quantize_q8(&x, &mut a);
            // quantize's own contract
            for (ab, xb) in a.iter().zip(x.chunks_exact(32)) {
                let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                prop_assert_eq!(ab.d, amax / 127.0);
                let sum: i32 = ab.qs.iter().map(|&q| q as i32).sum();
                prop_assert_eq!(ab.s, ab.d * sum as f32);
                for (&q, &v) in ab.qs.iter().zip(xb) {
                    let exact = if amax > 0.0 { v as f64 * 127.0 / amax as f64 } else { 0.0 };
                    prop_assert!(((q as f64) - exact).abs() <= 0.5 + 1e-4);
                }
            }
            let xq: Vec<f64> = a.iter().flat_map(|b| b.qs.iter().map(move |&q| b.d as f64 * q as f64)).collect();
            let wd = dequant(kind, &w);
            let exact: f64 = wd.iter().zip(&xq).map(|(p, q)| p * q).sum();
            let abs: f64 = wd.iter().zip(&xq).map(|(p, q)| (p * q).abs()).sum();
            let got = match kind { 0 => dot_q4_0(&w, &a), 1 => dot_q4_1(&w, &a), _ => dot_q8_0(&w, &a) } as f64;
            // nb accumulations + 3 roundings per block; Q4_1's s_a is itself rounded once.
            let tol = (nb as f64 + 4.0) * f32::EPSILON as f64 * abs + 1e-30;
            prop_assert!((got - exact).abs() <= tol, "kind {} got {} exact {} tol {}", kind, got, exact, tol);
        }
    }

    #[test]
    fn scalar_f32_kernels_small() {
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        let b = [1.0f32; 10];
        assert_eq!(dot_f32(&a, &b), 55.0);
        let w: Vec<u8> = a
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect();
        assert_eq!(dot_f16_f32(&w, &b), 55.0);
        let mut y = [1.0f32; 10];
        axpy_f32(&mut y, 2.0, &a);
        assert_eq!(y[9], 21.0);
        axpy_f16(&mut y, -2.0, &w);
        assert_eq!(y, [1.0f32; 10]);
        let mut out = vec![0u8; 20];
        f32_to_f16(&a, &mut out);
        assert_eq!(out, w);
        assert_eq!(dot_f32(&[], &[]), 0.0);
    }
}
