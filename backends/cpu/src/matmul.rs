//! Matrix multiplication y = x · wᵀ for every weight dtype.
//!
//! Quantized weights: the activations are quantized once per op to int8
//! blocks, then each output row is an integer dot product per block. Work is
//! split over blocks of weight rows, so each weight byte is read once per op
//! whatever the number of tokens.

use rayon::prelude::*;
use wisp_ops::{DType, TensorView};

use crate::kernels::{BlockQ8, Kernels, QuantKind};

/// Weight rows per parallel task (a multiple of 8 keeps tasks cache-friendly).
fn rows_per_task(m: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    (m / (threads * 8)).clamp(8, 256)
}

/// y[t, o] = Σ_i x[t, i] · w[o, i].
pub fn matmul(k: &Kernels, x: TensorView, w: TensorView, out: &mut [f32]) {
    let kdim = x.ty.row_len();
    let n = x.ty.rows();
    let m = w.ty.shape[0];
    let xs = x.f32();
    let row_bytes = w.ty.dtype.bytes_for(kdim).unwrap_or(0);
    let wd = w.data;

    // Per-row dot product, chosen once per op.
    enum Act {
        Q8(Vec<BlockQ8>),
        F32,
    }
    let act = match w.ty.dtype {
        DType::Q4_0 | DType::Q4_1 | DType::Q8_0 => {
            let nb = kdim / 32;
            let mut q = vec![BlockQ8::default(); n * nb];
            q.par_chunks_mut(nb)
                .zip(xs.par_chunks(kdim))
                .for_each(|(qr, xr)| (k.quantize_q8)(xr, qr));
            Act::Q8(q)
        }
        _ => Act::F32,
    };
    let dot_row = |o: usize, t: usize, scratch: &mut Vec<f32>| -> f32 {
        let wr = &wd[o * row_bytes..(o + 1) * row_bytes];
        match (&act, w.ty.dtype) {
            (Act::Q8(q), dt) => {
                let nb = kdim / 32;
                let a = &q[t * nb..(t + 1) * nb];
                match dt {
                    DType::Q4_0 => (k.dot_q4_0)(wr, a),
                    DType::Q4_1 => (k.dot_q4_1)(wr, a),
                    _ => (k.dot_q8_0)(wr, a),
                }
            }
            (Act::F32, DType::F32) => {
                (k.dot_f32)(bytemuck::cast_slice(wr), &xs[t * kdim..(t + 1) * kdim])
            }
            (Act::F32, DType::F16) => (k.dot_f16_f32)(wr, &xs[t * kdim..(t + 1) * kdim]),
            (Act::F32, dt) => {
                scratch.resize(kdim, 0.0);
                wisp_ops::quant::dequantize_row(dt, wr, scratch);
                (k.dot_f32)(scratch, &xs[t * kdim..(t + 1) * kdim])
            }
        }
    };

    let bs = rows_per_task(m);
    if n == 1 {
        out.par_chunks_mut(bs).enumerate().for_each(|(c, ys)| {
            let mut scratch = Vec::new();
            for (j, y) in ys.iter_mut().enumerate() {
                let o = c * bs + j;
                prefetch_row(wd, (o + PREFETCH_ROWS) * row_bytes, row_bytes);
                *y = dot_row(o, 0, &mut scratch);
            }
        });
        return;
    }
    // Several tokens: each task owns a block of weight rows and writes them
    // for every token into a transposed buffer, then one pass transposes.
    // Quantized weights go through the blocked GEMM kernel, which decodes
    // each weight block once for several tokens.
    let mut yt = vec![0f32; m * n];
    let quant = match w.ty.dtype {
        DType::Q4_0 => Some(QuantKind::Q4_0),
        DType::Q4_1 => Some(QuantKind::Q4_1),
        DType::Q8_0 => Some(QuantKind::Q8_0),
        _ => None,
    };
    yt.par_chunks_mut(bs * n)
        .enumerate()
        .for_each(|(c, block)| {
            if let (Some(kind), Act::Q8(q)) = (quant, &act) {
                let rows = block.len() / n;
                let wr = &wd[c * bs * row_bytes..(c * bs + rows) * row_bytes];
                // Tokens in groups whose activations stay in L1/L2 while the rows stream.
                let tg = 64usize;
                let nb = kdim / 32;
                for t0 in (0..n).step_by(tg) {
                    let t1 = (t0 + tg).min(n);
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
}

/// Rows ahead of the current one whose bytes are prefetched in GEMV.
const PREFETCH_ROWS: usize = 4;

/// Asks the CPU to start loading `len` bytes at `data[start..]` (no-op past the end).
#[inline(always)]
fn prefetch_row(data: &[u8], start: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let end = (start + len).min(data.len());
        let mut off = start;
        while off < end {
            // SAFETY: prefetch is a hint that never faults; the address is inside `data`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(data.as_ptr().add(off).cast()) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, start, len);
}
