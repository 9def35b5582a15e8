//! Matrix multiplication y = x · wᵀ for every weight dtype, and the fused
//! gate/up + SwiGLU projection.
//!
//! Quantized weights: the activations are quantized once per op to int8
//! blocks ([`Activations`]), then
//! * one token (decode, a memory-bound GEMV): each output row is an integer
//!   dot product per block, with the next rows prefetched;
//! * several tokens (prefill, a GEMM): the ISA's blocked kernel decodes each
//!   weight block once for a tile of tokens.
//!
//! Work is split over blocks of weight rows, so each weight byte is read once
//! per op whatever the number of tokens.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use wisp_ops::{DType, TensorView};

use crate::kernels::{BlockQ8, Kernels, OutLayout, PackedWeights, QuantKind};
use crate::scratch;

/// Fewest tokens for which a matmul goes through the GEMM with packed weights
/// (below, GEMV-like dots are as fast and need no packed copy).
pub const PACK_MIN_TOKENS: usize = 8;

/// A weight matrix decoded once into a GEMM's layout: quantized weights in
/// the ISA's panels, in row chunks (packed in parallel, each chunk a whole
/// number of panel pairs); float weights (f32, f16) as f32 strips of
/// [`FLOAT_STRIP`] rows transposed (`[strip][k][FLOAT_STRIP]`, each strip
/// contiguous: the right-hand side of `gemm_f32`, streamed in order).
#[derive(Debug)]
pub struct PackedMatrix {
    /// `(first row, rows)` of each chunk (quantized weights).
    chunks: Vec<(usize, PackedWeights)>,
    /// `wᵀ` in f32 by strips, `[strip][k][FLOAT_STRIP]`, the last strip
    /// zero-padded (float weights; empty otherwise).
    float_t: Vec<f32>,
    rows: usize,
}

impl PackedMatrix {
    /// Packs `w`: quantized weights with the table's `pack_q`, float weights
    /// transposed to f32; `None` when the ISA has no packed GEMM for them or `w`
    /// is not a 2-D matrix.
    pub fn new(k: &Kernels, w: TensorView) -> Option<PackedMatrix> {
        if matches!(w.ty.dtype, DType::F32 | DType::F16) {
            return Self::new_float(k, w);
        }
        let pack = k.pack_q?;
        let kind = quant_kind(w.ty.dtype)?;
        if w.ty.shape.len() != 2 {
            return None;
        }
        let (rows, kdim) = (w.ty.shape[0], w.ty.shape[1]);
        let nb = kdim / 32;
        let rb = kind.row_bytes(nb)?;
        if rows == 0 || nb == 0 || w.data.len() < rows * rb {
            return None;
        }
        // Chunks of whole panel pairs (32 rows): the GEMM multiplies two panels
        // per broadcast activation, and a chunk of an odd number of panels left
        // one in three panels of a 384-row matrix on 2 threads to the slower
        // single-panel kernel.
        let per = (rows.div_ceil(rayon::current_num_threads().max(1) * 4)).next_multiple_of(32);
        let starts: Vec<usize> = (0..rows).step_by(per).collect();
        let chunks = starts
            .into_par_iter()
            .map(|r0| {
                let r1 = (r0 + per).min(rows);
                (r0, pack(kind, &w.data[r0 * rb..r1 * rb], nb))
            })
            .collect();
        Some(PackedMatrix {
            chunks,
            float_t: Vec::new(),
            rows,
        })
    }

    /// f32 or f16 `w` ([rows, k]) as f32 strips of `wᵀ`, packed in parallel.
    fn new_float(k: &Kernels, w: TensorView) -> Option<PackedMatrix> {
        if w.ty.shape.len() != 2 {
            return None;
        }
        let (rows, kdim) = (w.ty.shape[0], w.ty.shape[1]);
        let len = rows.checked_mul(kdim)?;
        if rows == 0 || kdim == 0 || w.data.len() < w.ty.dtype.bytes_for(len)? {
            return None;
        }
        let (dtype, rb) = (w.ty.dtype, w.ty.dtype.bytes_for(kdim)?);
        let slab = kdim * FLOAT_STRIP;
        let mut t = vec![0f32; rows.div_ceil(FLOAT_STRIP) * slab];
        t.par_chunks_mut(slab).enumerate().for_each(|(s, dst)| {
            let (r0, n) = (s * FLOAT_STRIP, FLOAT_STRIP.min(rows - s * FLOAT_STRIP));
            let bytes = &w.data[r0 * rb..(r0 + n) * rb];
            // Aligned f32 weights are read in place; anything else is converted.
            let mut f = Vec::new();
            let src: &[f32] = match bytemuck::try_cast_slice(bytes) {
                Ok(v) if dtype == DType::F32 => v,
                _ => {
                    f.resize(n * kdim, 0.0);
                    wisp_ops::quant::dequantize_row(dtype, bytes, &mut f);
                    &f
                }
            };
            (k.transpose_f32)(n, kdim, src, kdim, dst, FLOAT_STRIP);
        });
        Some(PackedMatrix {
            chunks: Vec::new(),
            float_t: t,
            rows,
        })
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(|(_, p)| p.bytes()).sum::<usize>() + 4 * self.float_t.len()
    }

    /// Whether this matrix was packed from weights of `kind` and `rows` × `nb` blocks.
    fn fits(&self, kind: QuantKind, rows: usize, nb: usize) -> bool {
        self.rows == rows
            && !self.chunks.is_empty()
            && self
                .chunks
                .iter()
                .all(|(_, p)| p.kind() == kind && p.blocks() == nb)
    }
}

/// Weight rows per parallel task.
fn rows_per_task(m: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    (m / (threads * 8)).clamp(8, 256)
}

/// Rows ahead of the current one whose bytes the GEMV prefetches into L1
/// and into L2 (0: none); `UNSET` until first use or [`set_gemv_prefetch`].
static PREFETCH_ROWS_L1: AtomicUsize = AtomicUsize::new(UNSET);
static PREFETCH_ROWS_L2: AtomicUsize = AtomicUsize::new(UNSET);
const UNSET: usize = usize::MAX;

/// Sets how many rows ahead the GEMV prefetches into L1 and L2 (0: no software
/// prefetch for that level), overriding `WISP_GEMV_PREFETCH` and the default.
pub fn set_gemv_prefetch(l1_rows: usize, l2_rows: usize) {
    PREFETCH_ROWS_L2.store(l2_rows.min(UNSET - 1), Ordering::Relaxed);
    PREFETCH_ROWS_L1.store(l1_rows.min(UNSET - 1), Ordering::Relaxed);
}

/// The GEMV's prefetch distances (L1 rows, L2 rows).
fn gemv_prefetch() -> (usize, usize) {
    let l1 = PREFETCH_ROWS_L1.load(Ordering::Relaxed);
    if l1 != UNSET {
        return (l1, PREFETCH_ROWS_L2.load(Ordering::Relaxed));
    }
    let (l1, l2) = default_gemv_prefetch();
    set_gemv_prefetch(l1, l2);
    (l1, l2)
}

/// `WISP_GEMV_PREFETCH=L1,L2` (rows ahead), else by CPU vendor. Decode streams
/// the weights once per token from a file mapping (4 KiB pages, where the
/// hardware prefetchers stop at every page boundary), and the two vendors want
/// different help, measured by alternating settings token by token
/// (SmolLM2 and Gemma 3 decode, 1 and 2 threads):
/// * Intel (Sapphire Rapids): 4 rows ahead into L1 and 32 into L2, +25% over
///   L1 alone; 16 or 64 rows into L2 were a little slower than 32.
/// * AMD (Zen 4): 4 rows into L1 and nothing into L2; the L2 prefetches cost
///   8–10% of decode speed there.
fn default_gemv_prefetch() -> (usize, usize) {
    if let Ok(v) = std::env::var("WISP_GEMV_PREFETCH") {
        let parsed = v
            .split_once(',')
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
        match parsed {
            Some(p) => return p,
            None => tracing::warn!("WISP_GEMV_PREFETCH={v:?} is not L1,L2 rows; using the default"),
        }
    }
    if cpu_is_amd() {
        (4, 0)
    } else {
        (4, 32)
    }
}

#[cfg(target_arch = "x86_64")]
fn cpu_is_amd() -> bool {
    // CPUID leaf 0 (the vendor string) exists on every x86-64 CPU.
    let r = core::arch::x86_64::__cpuid(0);
    let mut vendor = [0u8; 12];
    vendor[..4].copy_from_slice(&r.ebx.to_le_bytes());
    vendor[4..8].copy_from_slice(&r.edx.to_le_bytes());
    vendor[8..].copy_from_slice(&r.ecx.to_le_bytes());
    &vendor == b"AuthenticAMD"
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_is_amd() -> bool {
    false
}

/// The input rows of a matmul, ready for one weight dtype.
pub struct Activations<'a> {
    x: &'a [f32],
    k: usize,
    n: usize,
    /// int8 blocks of x (quantized weights only).
    q: Option<Vec<BlockQ8>>,
}

impl<'a> Activations<'a> {
    /// Prepares `x` ([n, k] f32) for weights of `dtype`: quantizes it to int8
    /// blocks once when the weights are quantized.
    pub fn new(kern: &Kernels, x: &'a [f32], k: usize, dtype: DType) -> Activations<'a> {
        let n = x.len() / k.max(1);
        let q = quant_kind(dtype).map(|_| {
            let nb = k / 32;
            let mut q = scratch::take_q8(n * nb);
            let rows = crate::split::rows_per_task(n, k);
            if n <= rows {
                // One task's worth (decode): no hand-off to the pool at all.
                (kern.quantize_q8)(&x[..n * k], &mut q);
            } else {
                q.par_chunks_mut(nb * rows)
                    .zip(x.par_chunks(k * rows))
                    .for_each(|(qr, xr)| (kern.quantize_q8)(xr, qr));
            }
            q
        });
        Activations { x, k, n, q }
    }
}

fn quant_kind(dtype: DType) -> Option<QuantKind> {
    match dtype {
        DType::Q4_0 => Some(QuantKind::Q4_0),
        DType::Q4_1 => Some(QuantKind::Q4_1),
        DType::Q8_0 => Some(QuantKind::Q8_0),
        DType::Q5_0 => Some(QuantKind::Q5_0),
        DType::Q5_1 => Some(QuantKind::Q5_1),
        DType::Q4_K => Some(QuantKind::Q4_K),
        DType::Q5_K => Some(QuantKind::Q5_K),
        DType::Q6_K => Some(QuantKind::Q6_K),
        _ => None,
    }
}

impl<'a> Activations<'a> {
    /// Activations whose int8 blocks were made earlier from the same `x` (by
    /// [`Activations::new`] for any quantized dtype, then [`Activations::into_blocks`]):
    /// matmuls that share an input (a layer's q, k and v) quantize it once.
    pub fn with_blocks(x: &'a [f32], k: usize, q: Vec<BlockQ8>) -> Activations<'a> {
        let n = x.len() / k.max(1);
        assert_eq!(q.len(), n * (k / 32), "blocks of another shape");
        Activations {
            x,
            k,
            n,
            q: Some(q),
        }
    }

    /// The int8 blocks, kept for [`Activations::with_blocks`] (`None` for float weights).
    pub fn into_blocks(mut self) -> Option<Vec<BlockQ8>> {
        self.q.take()
    }

    /// Whether the activations were quantized (the weights are).
    pub fn is_quantized(&self) -> bool {
        self.q.is_some()
    }
}

impl Drop for Activations<'_> {
    fn drop(&mut self) {
        if let Some(q) = self.q.take() {
            scratch::give_q8(q);
        }
    }
}

/// y[t, o] = Σ_i x[t, i] · w[o, i].
pub fn matmul(k: &Kernels, x: TensorView, w: TensorView, out: &mut [f32]) {
    matmul_with(k, x, w, None, out);
}

/// [`matmul`], through `packed` (made from `w` by [`PackedMatrix::new`]) when
/// the matmul is a GEMM of at least [`PACK_MIN_TOKENS`] tokens.
pub fn matmul_with(
    k: &Kernels,
    x: TensorView,
    w: TensorView,
    packed: Option<&PackedMatrix>,
    out: &mut [f32],
) {
    let act = Activations::new(k, x.f32(), x.ty.row_len(), w.ty.dtype);
    matmul_act(k, &act, w, packed, None, out);
}

/// [`matmul_with`] on activations already prepared for `w`'s dtype, plus
/// `bias` (one value per weight row) on every token's results when given:
/// the GEMM on packed weights adds it as it stores each tile.
pub fn matmul_act(
    k: &Kernels,
    act: &Activations,
    w: TensorView,
    packed: Option<&PackedMatrix>,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let m = w.ty.shape[0];
    if let Some(b) = bias {
        assert_eq!(b.len(), m, "matmul: one bias per weight row");
    }
    if let Some(pm) = packed.filter(|pm| {
        !pm.float_t.is_empty()
            && pm.rows == m
            && pm.float_t.len() == m.div_ceil(FLOAT_STRIP) * FLOAT_STRIP * act.k
    }) {
        if act.n >= PACK_MIN_TOKENS {
            return gemm_float_packed(k, pm, act.x, act.k, act.n, bias, out);
        }
    }
    if let (Some(pm), Some(gemm), Some(q), Some(kind)) = (
        packed,
        k.gemm_packed,
        act.q.as_deref(),
        quant_kind(w.ty.dtype),
    ) {
        let nb = act.k / 32;
        if act.n >= PACK_MIN_TOKENS && pm.fits(kind, m, nb) {
            return gemm_packed_matrix(k, gemm, pm, q, act.n, nb, bias, out);
        }
    }
    matmul_prepared(k, act, w, out);
    if bias.is_some() {
        out[..act.n * m]
            .par_chunks_mut(m * 64)
            .for_each(|rows| add_bias(k, rows, bias));
    }
}

/// `row += bias` for every row of `rows` (rows of `bias.len()` values), with
/// the ISA's vectors (`row + 1·bias` fused is the plain sum); nothing without
/// a bias.
fn add_bias(k: &Kernels, rows: &mut [f32], bias: Option<&[f32]>) {
    if let Some(b) = bias {
        for row in rows.chunks_exact_mut(b.len()) {
            (k.axpy_f32)(row, 1.0, b);
        }
    }
}

/// Weight rows per strip of a float [`PackedMatrix`]: `gemm_f32`'s two-vector
/// tile twice over; a strip (`k` × 256 bytes) stays in cache while every token
/// of a task passes through it (the whole `wᵀ` would not).
pub const FLOAT_STRIP: usize = 64;

/// `out = x · wᵀ (+ bias)` for float weights packed by strips: `gemm_f32` per
/// strip of 64 outputs, tokens split over the threads.
fn gemm_float_packed(
    k: &Kernels,
    pm: &PackedMatrix,
    x: &[f32],
    kdim: usize,
    n: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let m = pm.rows;
    let threads = rayon::current_num_threads().max(1);
    if threads > 1 && n < 16 * threads {
        // Few tokens: the strips spread over the threads instead, so the
        // weights (the bulk of the bytes) are read once, not once per thread.
        // Strip s's results at parts[s·n·64..], n rows of the strip's width.
        let slab = kdim * FLOAT_STRIP;
        let mut parts = scratch::take_f32(pm.float_t.len() / slab * n * FLOAT_STRIP);
        parts
            .par_chunks_mut(n * FLOAT_STRIP)
            .zip(pm.float_t.par_chunks_exact(slab))
            .enumerate()
            .for_each(|(s, (y, strip))| {
                let w = FLOAT_STRIP.min(m - s * FLOAT_STRIP);
                (k.gemm_f32)(n, w, kdim, &x[..n * kdim], kdim, strip, FLOAT_STRIP, y, w);
            });
        for (s, y) in parts.chunks_exact(n * FLOAT_STRIP).enumerate() {
            let (j, w) = (s * FLOAT_STRIP, FLOAT_STRIP.min(m - s * FLOAT_STRIP));
            for (t, yr) in y[..n * w].chunks_exact(w).enumerate() {
                out[t * m + j..t * m + j + w].copy_from_slice(yr);
            }
        }
        scratch::give_f32(parts);
        add_bias(k, &mut out[..n * m], bias);
        return;
    }
    let per = n.div_ceil(threads).next_multiple_of(4).min(n);
    out[..n * m]
        .par_chunks_mut(per * m)
        .enumerate()
        .for_each(|(c, o)| {
            let (t0, nt) = (c * per, o.len() / m);
            let xs = &x[t0 * kdim..(t0 + nt) * kdim];
            for (s, strip) in pm.float_t.chunks_exact(kdim * FLOAT_STRIP).enumerate() {
                let j = s * FLOAT_STRIP;
                let w = FLOAT_STRIP.min(m - j);
                (k.gemm_f32)(nt, w, kdim, xs, kdim, strip, FLOAT_STRIP, &mut o[j..], m);
            }
            add_bias(k, o, bias);
        });
}

/// `out = x · wᵀ (+ bias)` through packed weights when the GEMM splits over
/// threads by tokens: each task quantizes its own tokens' activations and
/// multiplies them, one parallel region where quantizing first took another
/// (with its own hand-offs). Returns false, doing nothing, when that split
/// does not apply (fewer than a micro-tile of tokens per thread, float
/// weights, no packed GEMM, or `pm` not made from `w`).
pub fn matmul_packed_fused(
    k: &Kernels,
    x: TensorView,
    w: TensorView,
    pm: &PackedMatrix,
    bias: Option<&[f32]>,
    then: Option<fn(&mut [f32])>,
    out: &mut [f32],
) -> bool {
    let (xf, kdim) = (x.f32(), x.ty.row_len());
    let n = xf.len() / kdim.max(1);
    let m = w.ty.shape[0];
    let threads = rayon::current_num_threads().max(1);
    let (Some(gemm), Some(kind)) = (k.gemm_packed, quant_kind(w.ty.dtype)) else {
        return false;
    };
    let nb = kdim / 32;
    if n < PACK_MIN_TOKENS
        || (threads > 1 && n < PACK_MIN_TOKENS * threads)
        || !kdim.is_multiple_of(32)
        || !pm.fits(kind, m, nb)
        || bias.is_some_and(|b| b.len() != m)
    {
        return false;
    }
    packed_by_tokens(
        k,
        gemm,
        pm,
        TokenBlocks::Floats(xf, kdim),
        n,
        nb,
        bias,
        then,
        out,
    );
    true
}

/// Where the tasks of [`packed_by_tokens`] take their int8 activations from.
#[derive(Clone, Copy)]
enum TokenBlocks<'a> {
    /// Quantized already: `nb` blocks per token.
    Ready(&'a [BlockQ8]),
    /// Quantized by each task for its own tokens: rows of this many floats.
    Floats(&'a [f32], usize),
}

/// The GEMM on packed weights split over threads by tokens, each task writing
/// its contiguous slice of the token-major `out`, then applying `then` to it.
#[allow(clippy::too_many_arguments)]
fn packed_by_tokens(
    k: &Kernels,
    gemm: crate::kernels::GemmPackedFn,
    pm: &PackedMatrix,
    src: TokenBlocks,
    n: usize,
    nb: usize,
    bias: Option<&[f32]>,
    then: Option<fn(&mut [f32])>,
    out: &mut [f32],
) {
    let m = pm.rows;
    let threads = rayon::current_num_threads().max(1);
    let chunk_bias = |r0: usize, rows: usize| bias.map(|b| &b[r0..r0 + rows]);
    let per = n.div_ceil(threads).next_multiple_of(PACK_MIN_TOKENS).min(n);
    out[..n * m]
        .par_chunks_mut(per * m)
        .enumerate()
        .for_each(|(c, o)| {
            let (t0, nt) = (c * per, o.len() / m);
            let mut buf = match src {
                TokenBlocks::Floats(..) => scratch::take_q8(k.gemm_tokens.min(nt) * nb),
                TokenBlocks::Ready(_) => Vec::new(),
            };
            for s0 in (0..nt).step_by(k.gemm_tokens) {
                let s1 = (s0 + k.gemm_tokens).min(nt);
                let qs: &[BlockQ8] = match src {
                    TokenBlocks::Ready(q) => &q[(t0 + s0) * nb..(t0 + s1) * nb],
                    TokenBlocks::Floats(x, kdim) => {
                        let qs = &mut buf[..(s1 - s0) * nb];
                        (k.quantize_q8)(&x[(t0 + s0) * kdim..(t0 + s1) * kdim], qs);
                        qs
                    }
                };
                for (r0, pw) in &pm.chunks {
                    let b = chunk_bias(*r0, pw.rows());
                    gemm(pw, qs, &mut o[s0 * m + r0..], OutLayout::tokens(m), b);
                }
            }
            if buf.capacity() > 0 {
                scratch::give_q8(buf);
            }
            // An elementwise op after the product (GELU), on this task's rows while
            // they are still in cache.
            if let Some(f) = then {
                f(o);
            }
        });
}

/// The GEMM on packed weights, split over threads by tokens when every thread
/// gets at least a micro-tile's worth, else by row chunks.
#[allow(clippy::too_many_arguments)]
fn gemm_packed_matrix(
    k: &Kernels,
    gemm: crate::kernels::GemmPackedFn,
    pm: &PackedMatrix,
    q: &[BlockQ8],
    n: usize,
    nb: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let m = pm.rows;
    let chunk_bias = |r0: usize, rows: usize| bias.map(|b| &b[r0..r0 + rows]);
    let threads = rayon::current_num_threads().max(1);
    if threads == 1 || n >= PACK_MIN_TOKENS * threads {
        let src = TokenBlocks::Ready(q);
        return packed_by_tokens(k, gemm, pm, src, n, nb, bias, None, out);
    }
    // Few tokens: each task owns row chunks, written row-major, then transposed.
    let mut yt = scratch::take_f32(m * n);
    let mut parts: Vec<(&(usize, PackedWeights), &mut [f32])> = Vec::new();
    let mut rest = &mut yt[..];
    for c in &pm.chunks {
        let (part, tail) = rest.split_at_mut(c.1.rows() * n);
        parts.push((c, part));
        rest = tail;
    }
    parts.into_par_iter().for_each(|((r0, pw), part)| {
        gemm(pw, q, part, OutLayout::rows(n), chunk_bias(*r0, pw.rows()))
    });
    (k.transpose_f32)(m, n, &yt, n, out, m);
    scratch::give_f32(yt);
}

/// silu(x · w_gateᵀ) · (x · w_upᵀ), with x quantized once for both.
pub fn matmul_swiglu(
    k: &Kernels,
    x: TensorView,
    gate: TensorView,
    up: TensorView,
    out: &mut [f32],
) {
    let act = Activations::new(k, x.f32(), x.ty.row_len(), gate.ty.dtype);
    matmul_prepared(k, &act, gate, out);
    let mut u = scratch::take_f32(out.len());
    if up.ty.dtype == gate.ty.dtype {
        matmul_prepared(k, &act, up, &mut u);
    } else {
        let act_up = Activations::new(k, x.f32(), x.ty.row_len(), up.ty.dtype);
        matmul_prepared(k, &act_up, up, &mut u);
    }
    out.par_chunks_mut(4096)
        .zip(u.par_chunks(4096))
        .for_each(|(g, u)| (k.swiglu)(g, u));
}

/// y = x · wᵀ with activations already prepared for `w`'s dtype.
pub fn matmul_prepared(k: &Kernels, act: &Activations, w: TensorView, out: &mut [f32]) {
    let (kdim, n) = (act.k, act.n);
    let m = w.ty.shape[0];
    let xs = act.x;
    let row_bytes = w.ty.dtype.bytes_for(kdim).unwrap_or(0);
    let wd = w.data;
    let nb = kdim / 32;
    let quant = quant_kind(w.ty.dtype).zip(act.q.as_deref());

    let dot_row = |o: usize, t: usize, scratch: &mut Vec<f32>| -> f32 {
        let wr = &wd[o * row_bytes..(o + 1) * row_bytes];
        let xr = &xs[t * kdim..(t + 1) * kdim];
        match (quant, w.ty.dtype) {
            (Some((kind, q)), _) => kind.dot(k)(wr, &q[t * nb..(t + 1) * nb]),
            (None, DType::F32) => (k.dot_f32)(bytemuck::cast_slice(wr), xr),
            (None, DType::F16) => (k.dot_f16_f32)(wr, xr),
            (None, dt) => {
                scratch.resize(kdim, 0.0);
                wisp_ops::quant::dequantize_row(dt, wr, scratch);
                (k.dot_f32)(scratch, xr)
            }
        }
    };

    let bs = rows_per_task(m);
    if n == 1 {
        let (l1, l2) = gemv_prefetch();
        out.par_chunks_mut(bs).enumerate().for_each(|(c, ys)| {
            let mut scratch = Vec::new();
            // Start the chunk's first rows streaming at once: the in-loop L2 prefetch
            // only reaches `l2` rows ahead, so without this every matrix (most are
            // 0.1–1 MB) begins with that many rows of cold misses.
            let first = c * bs * row_bytes;
            prefetch::<L2>(wd, first, l2.min(ys.len()) * row_bytes);
            let mut done = 0;
            if let (Some(dot4), Some((QuantKind::Q5_0, q))) = (k.dot4_q5_0, quant) {
                // Q5_0: four rows per call, sharing the activation side.
                for (j, y4) in ys.chunks_exact_mut(4).enumerate() {
                    let o = c * bs + 4 * j;
                    if l1 > 0 {
                        prefetch::<L1>(wd, (o + l1) * row_bytes, 4 * row_bytes);
                    }
                    if l2 > 0 {
                        prefetch::<L2>(wd, (o + l2) * row_bytes, 4 * row_bytes);
                    }
                    y4.copy_from_slice(&dot4(&wd[o * row_bytes..(o + 4) * row_bytes], q));
                }
                done = ys.len() / 4 * 4;
            }
            for (j, y) in ys.iter_mut().enumerate().skip(done) {
                let o = c * bs + j;
                if l1 > 0 {
                    prefetch::<L1>(wd, (o + l1) * row_bytes, row_bytes);
                }
                if l2 > 0 {
                    prefetch::<L2>(wd, (o + l2) * row_bytes, row_bytes);
                }
                *y = dot_row(o, 0, &mut scratch);
            }
        });
        return;
    }
    let threads = rayon::current_num_threads().max(1);
    if n >= 16 * threads {
        // Many tokens (prefill, encoders): each task owns a range of tokens and
        // computes every row for them, writing its contiguous slice of `out`.
        let per = n.div_ceil(threads);
        out.par_chunks_mut(per * m).enumerate().for_each(|(c, o)| {
            let (t0, nt) = (c * per, o.len() / m);
            if let Some((kind, q)) = quant {
                for s0 in (0..nt).step_by(k.gemm_tokens) {
                    let s1 = (s0 + k.gemm_tokens).min(nt);
                    let qs = &q[(t0 + s0) * nb..(t0 + s1) * nb];
                    let w_all = &wd[..m * row_bytes];
                    (k.gemm_q)(kind, w_all, qs, nb, &mut o[s0 * m..], OutLayout::tokens(m));
                }
            } else {
                // Rows outer so each weight row is read once for all the tokens.
                let mut scratch = Vec::new();
                for r in 0..m {
                    for t in 0..nt {
                        o[t * m + r] = dot_row(r, t0 + t, &mut scratch);
                    }
                }
            }
        });
        return;
    }
    // A few tokens: each task owns a block of weight rows and writes them for
    // every token into a row-major buffer, then one pass transposes.
    let mut yt = scratch::take_f32(m * n);
    yt.par_chunks_mut(bs * n)
        .enumerate()
        .for_each(|(c, block)| {
            if let Some((kind, q)) = quant {
                let rows = block.len() / n;
                let wr = &wd[c * bs * row_bytes..(c * bs + rows) * row_bytes];
                (k.gemm_q)(kind, wr, q, nb, block, OutLayout::rows(n));
                return;
            }
            let mut scratch = Vec::new();
            for (j, ys) in block.chunks_mut(n).enumerate() {
                let o = c * bs + j;
                for (t, y) in ys.iter_mut().enumerate() {
                    *y = dot_row(o, t, &mut scratch);
                }
            }
        });
    (k.transpose_f32)(m, n, &yt, n, out, m);
    scratch::give_f32(yt);
}

/// Asks the CPU to start loading `len` bytes at `data[start..]` into the
/// cache level `HINT` names (`_MM_HINT_T0` = L1, `_MM_HINT_T1` = L2); a no-op
/// past the end of `data` and off x86.
#[inline(always)]
fn prefetch<const HINT: i32>(data: &[u8], start: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::_mm_prefetch;
        let end = (start + len).min(data.len());
        let mut off = start;
        while off < end {
            // SAFETY: prefetch is a hint that never faults; the address is inside `data`.
            unsafe { _mm_prefetch::<HINT>(data.as_ptr().add(off).cast()) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, start, len);
}

#[cfg(target_arch = "x86_64")]
const L1: i32 = core::arch::x86_64::_MM_HINT_T0;
#[cfg(target_arch = "x86_64")]
const L2: i32 = core::arch::x86_64::_MM_HINT_T1;

#[cfg(not(target_arch = "x86_64"))]
const L1: i32 = 0;
#[cfg(not(target_arch = "x86_64"))]
const L2: i32 = 0;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Isa;
    use wisp_ops::TensorType;

    /// Pseudo-random weights of `dtype` for `n` values, with every block's
    /// scale fields set to a small finite f16 (the speed tests' matrices).
    fn speed_weights(dtype: DType, n: usize) -> Vec<u8> {
        let bytes = dtype.bytes_for(n).unwrap();
        let mut w: Vec<u8> = (0..bytes)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        for blk in w.chunks_exact_mut(dtype.block_bytes()) {
            blk[0] = 0;
            blk[1] = 0x20;
            if dtype == DType::Q6_K {
                blk[208] = 0;
                blk[209] = 0x20;
            }
        }
        w
    }

    /// Float weights (f32 and f16) through their packed strips give the dot
    /// path's results (within f32 reordering), plus the bias, on every ISA, on
    /// one and two threads (tokens split, or strips split for few tokens), for
    /// row counts that leave a partial last strip.
    #[test]
    fn float_packed_matches_dots() {
        let (m, kdim) = (100usize, 48usize);
        let wf: Vec<f32> = (0..m * kdim)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
            .collect();
        let bias: Vec<f32> = (0..m).map(|i| i as f32 * 0.01 - 0.3).collect();
        for dtype in [DType::F32, DType::F16] {
            let data: Vec<u8> = match dtype {
                DType::F32 => bytemuck::cast_slice(&wf).to_vec(),
                _ => wf
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect(),
            };
            let ty = TensorType::new(dtype, &[m, kdim]);
            let w = TensorView {
                ty: &ty,
                data: &data,
            };
            for isa in Isa::supported() {
                let k = isa.kernels();
                for threads in [1, 2] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    pool.install(|| {
                        let pm = PackedMatrix::new(k, w).expect("float weights pack");
                        assert!(pm.bytes() >= m * kdim * 4);
                        for n in [8usize, 9, 31, 40, 64] {
                            let x: Vec<f32> = (0..n * kdim)
                                .map(|i| ((i * 17 % 23) as f32 - 11.0) * 0.1)
                                .collect();
                            let act = Activations::new(k, &x, kdim, dtype);
                            let mut want = vec![0f32; n * m];
                            matmul_act(k, &act, w, None, Some(&bias), &mut want);
                            let mut got = vec![0f32; n * m];
                            matmul_act(k, &act, w, Some(&pm), Some(&bias), &mut got);
                            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                                assert!(
                                    (g - e).abs() <= 1e-5 * (1.0 + e.abs()),
                                    "{isa} {dtype:?} {threads}t n={n} [{i}] {g} vs {e}"
                                );
                            }
                        }
                    });
                }
            }
        }
    }

    /// Prefill-shaped matmul throughput (all of `matmul`: quantizing the
    /// activations, the GEMM, the transpose). Run with
    /// `cargo test --release -p wisp-backend-cpu matmul_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn matmul_speed() {
        use std::time::Instant;
        let k = Isa::best().kernels();
        // WISP_BENCH_REPS: repetitions (best of), 20 by default.
        let reps: usize = std::env::var("WISP_BENCH_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20);
        for (dtype, rows, kdim, n) in [
            (DType::Q8_0, 384usize, 384usize, 128usize),
            (DType::Q8_0, 1536, 384, 128),
            (DType::Q8_0, 384, 1536, 128),
            (DType::Q8_0, 384, 384, 16),
            (DType::Q5_0, 2048, 640, 512),
        ] {
            let ty = TensorType::new(dtype, &[rows, kdim]);
            let w = speed_weights(dtype, rows * kdim);
            let xty = TensorType::new(DType::F32, &[n, kdim]);
            let x: Vec<f32> = (0..n * kdim).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut out = vec![0f32; rows * n];
            let wv = TensorView { ty: &ty, data: &w };
            let xv = TensorView {
                ty: &xty,
                data: bytemuck::cast_slice(&x),
            };
            let mut best = f64::MAX;
            for _ in 0..reps {
                let t0 = Instant::now();
                matmul(k, xv, wv, &mut out);
                best = best.min(t0.elapsed().as_secs_f64());
            }
            let act = Activations::new(k, &x, kdim, dtype);
            let q = act.q.as_deref().unwrap();
            let kind = quant_kind(dtype).unwrap();
            let mut yt = vec![0f32; rows * n];
            let mut kbest = f64::MAX;
            for _ in 0..reps {
                let t0 = Instant::now();
                (k.gemm_q)(kind, &w, q, kdim / 32, &mut yt, OutLayout::rows(n));
                kbest = kbest.min(t0.elapsed().as_secs_f64());
            }
            let mut pbest = f64::MAX;
            if let (Some(pm), Some(g)) = (PackedMatrix::new(k, wv), k.gemm_packed) {
                for _ in 0..reps {
                    let t0 = Instant::now();
                    for (r0, pw) in &pm.chunks {
                        g(pw, q, &mut out[*r0..], OutLayout::tokens(rows), None);
                    }
                    pbest = pbest.min(t0.elapsed().as_secs_f64());
                }
            }
            println!(
                "  packed gemm alone: {:.3} ms, {:.1} GMAC/s",
                pbest * 1e3,
                (rows * kdim * n) as f64 / pbest * 1e-9
            );
            let mut tbest = f64::MAX;
            for _ in 0..reps {
                let t0 = Instant::now();
                (k.transpose_f32)(rows, n, &yt, n, &mut out, rows);
                tbest = tbest.min(t0.elapsed().as_secs_f64());
            }
            let mut qbest = f64::MAX;
            for _ in 0..reps {
                let t0 = Instant::now();
                drop(std::hint::black_box(Activations::new(k, &x, kdim, dtype)));
                qbest = qbest.min(t0.elapsed().as_secs_f64());
            }
            println!(
                "{dtype:?} {rows}x{kdim} x {n} tokens: {:.3} ms, {:.1} GMAC/s (gemm_q alone {:.3} ms, transpose {:.3} ms, quantize {:.3} ms)",
                best * 1e3,
                (rows * kdim * n) as f64 / best * 1e-9,
                kbest * 1e3, tbest * 1e3, qbest * 1e3
            );
        }
    }

    /// GEMV prefetch settings compared in one process, alternating run by run
    /// so the host's drift hits them alike, on file-mapped weights of the
    /// decode shapes. `WISP_PREFETCH_AB="4,0;4,32;8,0"` (L1 rows, L2 rows):
    /// `cargo test --release -p wisp-backend-cpu gemv_prefetch_ab -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn gemv_prefetch_ab() {
        use std::time::Instant;
        let k = Isa::best().kernels();
        let spec = std::env::var("WISP_PREFETCH_AB").unwrap_or_else(|_| "4,0;4,32;8,0".into());
        let cfgs: Vec<(usize, usize)> = spec
            .split(';')
            .filter_map(|c| {
                let (a, b) = c.split_once(',')?;
                Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
            })
            .collect();
        for (dtype, rows, kdim) in [
            (DType::Q8_0, 262_144usize, 640usize),
            (DType::Q5_0, 2048 * 36, 640),
            (DType::Q4_K, 640 * 18, 2048),
            (DType::Q6_K, 640 * 18, 2048),
            (DType::Q4_1, 1536 * 60, 576),
        ] {
            let ty = TensorType::new(dtype, &[rows, kdim]);
            let w = speed_weights(dtype, rows * kdim);
            let bytes = w.len();
            let path = std::env::temp_dir().join(format!("wisp-pf-{}.bin", std::process::id()));
            std::fs::write(&path, &w).unwrap();
            drop(w);
            let file = std::fs::File::open(&path).unwrap();
            // SAFETY: a private temporary file, not modified while mapped.
            let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
            let _ = std::fs::remove_file(&path);
            let xty = TensorType::new(DType::F32, &[1, kdim]);
            let x: Vec<f32> = (0..kdim).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut out = vec![0f32; rows];
            let wv = TensorView {
                ty: &ty,
                data: &map,
            };
            let xv = TensorView {
                ty: &xty,
                data: bytemuck::cast_slice(&x),
            };
            let mut res = vec![Vec::new(); cfgs.len()];
            for _ in 0..15 {
                for (ci, &(a, b)) in cfgs.iter().enumerate() {
                    set_gemv_prefetch(a, b);
                    let t0 = Instant::now();
                    matmul(k, xv, wv, &mut out);
                    res[ci].push(bytes as f64 / t0.elapsed().as_secs_f64() * 1e-9);
                }
            }
            for (c, v) in cfgs.iter().zip(res.iter_mut()) {
                v.sort_by(|a, b| a.total_cmp(b));
                println!(
                    "{dtype:?} {rows}x{kdim} prefetch {c:?}: median {:.1} GB/s, best {:.1}",
                    v[v.len() / 2],
                    v[v.len() - 1]
                );
            }
        }
    }

    /// Single-token matmul (GEMV) throughput on matrices larger than the
    /// caches, per weight format. Run with
    /// `cargo test --release -p wisp-backend-cpu gemv_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn gemv_speed() {
        use std::time::Instant;
        let k = Isa::best().kernels();
        for (dtype, rows, kdim) in [
            (DType::Q8_0, 262_144usize, 640usize),
            (DType::Q5_0, 32_768, 640),
            (DType::Q4_K, 16_384, 2048),
            (DType::Q6_K, 16_384, 2048),
            (DType::Q4_1, 32_768, 640),
        ] {
            let ty = TensorType::new(dtype, &[rows, kdim]);
            let w = speed_weights(dtype, rows * kdim);
            let bytes = w.len();
            let xty = TensorType::new(DType::F32, &[1, kdim]);
            let x: Vec<f32> = (0..kdim).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut out = vec![0f32; rows];
            let path = std::env::temp_dir().join(format!("wisp-gemv-{}.bin", std::process::id()));
            std::fs::write(&path, &w).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            // SAFETY: test file, not modified while mapped.
            let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
            let _ = std::fs::remove_file(&path);
            // WISP_GEMV_FILE=1: read the weights through a file mapping, as a model's are
            // (4 KiB pages of the page cache rather than the heap's).
            let w: &[u8] = if std::env::var_os("WISP_GEMV_FILE").is_some() {
                &map
            } else {
                &w
            };
            let wv = TensorView { ty: &ty, data: w };
            let xv = TensorView {
                ty: &xty,
                data: bytemuck::cast_slice(&x),
            };
            if dtype == DType::Q8_0 {
                let f: &[f32] = bytemuck::cast_slice(&w[..bytes / 8 * 8]);
                let (a, b) = f.split_at(f.len() / 2);
                let mut best = f64::MAX;
                for _ in 0..5 {
                    let t0 = Instant::now();
                    std::hint::black_box((k.dot_f32)(a, b));
                    best = best.min(t0.elapsed().as_secs_f64());
                }
                println!(
                    "stream dot_f32 over {} MB: {:.1} GB/s",
                    bytes >> 20,
                    bytes as f64 / best * 1e-9
                );
            }
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t0 = Instant::now();
                matmul(k, xv, wv, &mut out);
                best = best.min(t0.elapsed().as_secs_f64());
            }
            println!(
                "{dtype:?} {rows}x{kdim}: {:.2} ms, {:.1} GB/s, {:.1} GMAC/s",
                best * 1e3,
                bytes as f64 / best * 1e-9,
                (rows * kdim) as f64 / best * 1e-9
            );
        }
    }
}
