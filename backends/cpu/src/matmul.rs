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

use rayon::prelude::*;
use wisp_ops::{DType, TensorView};

use crate::kernels::{BlockQ8, Kernels, QuantKind};
use crate::scratch;

/// Weight rows per parallel task.
fn rows_per_task(m: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    (m / (threads * 8)).clamp(8, 256)
}

/// Rows ahead of the current one whose bytes are prefetched into L1 in GEMV.
const PREFETCH_ROWS: usize = 4;

/// Rows ahead prefetched into L2: far enough to cover memory latency on a
/// streamed 96 MB model (measured: +25% decode speed on 1 thread over L1
/// prefetch alone; 16 and 64 rows ahead were a little slower than 32).
const L2_PREFETCH_ROWS: usize = 32;

/// Tokens per GEMM call: their activation blocks stay in cache while rows stream.
const GEMM_TOKENS: usize = 64;

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
            q.par_chunks_mut(nb)
                .zip(x.par_chunks(k))
                .for_each(|(qr, xr)| (kern.quantize_q8)(xr, qr));
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
        _ => None,
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
    let act = Activations::new(k, x.f32(), x.ty.row_len(), w.ty.dtype);
    matmul_prepared(k, &act, w, out);
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
        .for_each(|(g, u)| {
            for (g, u) in g.iter_mut().zip(u) {
                *g = wisp_ops::reference::silu(*g) * u;
            }
        });
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
        out.par_chunks_mut(bs).enumerate().for_each(|(c, ys)| {
            let mut scratch = Vec::new();
            for (j, y) in ys.iter_mut().enumerate() {
                let o = c * bs + j;
                prefetch::<L1>(wd, (o + PREFETCH_ROWS) * row_bytes, row_bytes);
                prefetch::<L2>(wd, (o + L2_PREFETCH_ROWS) * row_bytes, row_bytes);
                *y = dot_row(o, 0, &mut scratch);
            }
        });
        return;
    }
    // Several tokens: each task owns a block of weight rows and writes them
    // for every token into a transposed buffer, then one pass transposes.
    let mut yt = scratch::take_f32(m * n);
    yt.par_chunks_mut(bs * n)
        .enumerate()
        .for_each(|(c, block)| {
            if let Some((kind, q)) = quant {
                let rows = block.len() / n;
                let wr = &wd[c * bs * row_bytes..(c * bs + rows) * row_bytes];
                for t0 in (0..n).step_by(GEMM_TOKENS) {
                    let t1 = (t0 + GEMM_TOKENS).min(n);
                    (k.gemm_q)(kind, wr, &q[t0 * nb..t1 * nb], nb, &mut block[t0..], n);
                }
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
    for o in 0..m {
        for t in 0..n {
            out[t * m + o] = yt[o * n + t];
        }
    }
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
