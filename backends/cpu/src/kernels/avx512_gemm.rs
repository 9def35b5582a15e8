//! AVX-512 VNNI quantized GEMM (prefill) for every weight format: sixteen
//! weight rows in the lanes of a zmm, tokens broadcast.
//!
//! # Panel format
//! A *panel* is 16 consecutive weight rows decoded once per GEMM call (see
//! [`Panel`]): for each 32-value block `b` and each group `g` of four values,
//! 64 bytes `q[b][g][r][0..4]` = the four codes of row `r`, biased to be
//! unsigned (`code + bias`, bias 8 for Q4_0, 16 for Q5_0, 32 for Q6_K, 128 for
//! Q8_0, 0 for the formats with an offset term), plus per block the 16 rows'
//! scales of each 16-value half and their offsets.
//!
//! # Micro-kernel
//! For up to 8 tokens at once, per block: one integer accumulator per token
//! starts at `−bias·Σa` (the block's activation sum, kept in [`BlockQ8::h`]),
//! takes eight `vpdpbusd` of the panel's group vector against the token's four
//! activation bytes broadcast from memory (`{1to16}`), so every lane ends with
//! the exact integer dot of its row and the token; it is converted and FMA'd
//! into an f32 accumulator by `d_w[r]·d_a`, plus `m[r]·s_a` for offset formats.
//! Q6_K's two scales per block use two accumulators of four groups each.
//!
//! Per block and 8 tokens that is 64 `vpdpbusd` against ~32 other vector µops;
//! decoding is amortised over every token of the call.

#![deny(unsafe_op_in_unsafe_fn)]

use super::x86_unpack::{block_scales, codes};
use super::{BlockQ8, OutLayout, QuantKind, QK};
use core::arch::x86_64::*;
use std::cell::RefCell;

/// Rows per panel: one per i32 lane of a zmm.
const PR: usize = 16;
/// Most tokens per micro-tile (two accumulators each, 16 + 16 zmm at most).
const PT: usize = 8;

/// The unsigned bias of a format's codes in a panel.
fn bias(kind: QuantKind) -> i32 {
    match kind {
        QuantKind::Q4_0 => 8,
        QuantKind::Q5_0 => 16,
        QuantKind::Q6_K => 32,
        QuantKind::Q8_0 => 128,
        QuantKind::Q4_1 | QuantKind::Q5_1 | QuantKind::Q4_K | QuantKind::Q5_K => 0,
    }
}

/// Sixteen decoded weight rows (format in the module docs).
#[derive(Default)]
struct Panel {
    /// `[nb][8][16][4]` biased codes.
    q: Vec<u8>,
    /// `[nb][2][16]` scales of each half.
    d: Vec<f32>,
    /// `[nb][16]` offsets.
    m: Vec<f32>,
}

thread_local! {
    static PANEL: RefCell<Panel> = RefCell::new(Panel::default());
}

/// Row r of `w` · token t of `a` into `out[lay.at(r, t)]`; shapes checked by the caller
/// (`gemm_shape`): `w` holds whole rows of `rb` bytes, `a` whole tokens of `nb` blocks.
pub(super) fn gemm(
    kind: QuantKind,
    w: &[u8],
    rb: usize,
    a: &[BlockQ8],
    nb: usize,
    out: &mut [f32],
    lay: OutLayout,
) {
    let rows = w.len() / rb;
    let tokens = a.len() / nb;
    PANEL.with(|p| {
        let mut p = p.borrow_mut();
        p.q.resize(nb * 8 * PR * 4, 0);
        p.d.resize(nb * 2 * PR, 0.0);
        p.m.resize(nb * PR, 0.0);
        for r0 in (0..rows).step_by(PR) {
            let nr = PR.min(rows - r0);
            // SAFETY: this module is reached only from the AVX-512 table (AVX-512
            // F/BW/VL/VNNI + AVX2/FMA/F16C detected); rows r0..r0+nr exist in `w`.
            unsafe { decode_panel(kind, &w[r0 * rb..(r0 + nr) * rb], rb, nr, nb, &mut p) };
            let mut t0 = 0;
            while t0 < tokens {
                let nt = PT.min(tokens - t0);
                let at = &a[t0 * nb..(t0 + nt) * nb];
                let mut acc = [[0f32; PR]; PT];
                // SAFETY: as above; `at` holds `nt` whole tokens and the panel `nb` blocks.
                unsafe { micro_dispatch(kind, nt, &p, at, nb, &mut acc) };
                for (t, col) in acc.iter().enumerate().take(nt) {
                    if lay.token_major {
                        let o = lay.at(r0, t0 + t);
                        out[o..o + nr].copy_from_slice(&col[..nr]);
                    } else {
                        for (r, &v) in col.iter().enumerate().take(nr) {
                            out[lay.at(r0 + r, t0 + t)] = v;
                        }
                    }
                }
                t0 += nt;
            }
        }
    });
}

/// Decodes `nr` (≤ 16) rows into the panel; missing rows become zeros.
///
/// # Safety
/// AVX-512 set and AVX2 available; `w` holds `nr` rows of `rb` bytes, each `nb`
/// 32-value blocks of `kind`; the panel is sized for `nb` blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn decode_panel(kind: QuantKind, w: &[u8], rb: usize, nr: usize, nb: usize, p: &mut Panel) {
    let (bb, per) = (kind.block_bytes(), kind.block_len() / QK);
    let biasv = _mm256_set1_epi8(bias(kind) as u8 as i8);
    // Codes of sub-block j of row r at tmp[j][r] (up to 8 sub-blocks per storage block).
    let mut tmp = [[[0u8; 32]; PR]; 8];
    // Gather indices: lane r takes bytes 4g..4g+4 of row r's 32 codes.
    let idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(32),
    );
    for s in 0..nb / per {
        for r in 0..PR {
            if r < nr {
                let blk = &w[r * rb + s * bb..r * rb + (s + 1) * bb];
                // SAFETY: `blk` is one whole storage block.
                let (d, m) = unsafe { block_scales(kind, blk.as_ptr()) };
                for (j, t) in tmp.iter_mut().enumerate().take(per) {
                    // SAFETY: `blk` is one whole storage block and j < per.
                    let q = unsafe { codes(kind, blk.as_ptr(), j) };
                    // SAFETY: 32-byte unaligned store into a 32-byte array.
                    unsafe {
                        _mm256_storeu_si256(t[r].as_mut_ptr().cast(), _mm256_add_epi8(q, biasv))
                    };
                    let b = s * per + j;
                    p.d[b * 2 * PR + r] = d[2 * j];
                    p.d[b * 2 * PR + PR + r] = d[2 * j + 1];
                    p.m[b * PR + r] = m[j];
                }
            } else {
                for (j, t) in tmp.iter_mut().enumerate().take(per) {
                    t[r] = [0; 32];
                    let b = s * per + j;
                    p.d[b * 2 * PR + r] = 0.0;
                    p.d[b * 2 * PR + PR + r] = 0.0;
                    p.m[b * PR + r] = 0.0;
                }
            }
        }
        for (j, t) in tmp.iter().enumerate().take(per) {
            let b = s * per + j;
            for g in 0..8 {
                // SAFETY: lane r reads t[r][4g..4g+4], inside the 16×32-byte array.
                let v = unsafe {
                    _mm512_i32gather_epi32::<1>(idx, t.as_ptr().cast::<u8>().add(4 * g).cast())
                };
                let dst = &mut p.q[(b * 8 + g) * 64..(b * 8 + g + 1) * 64];
                // SAFETY: 64-byte unaligned store into a 64-byte slice.
                unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), v) };
            }
        }
    }
}

/// Picks the micro-kernel instance for `nt` tokens and the format's scale shape.
///
/// # Safety
/// As [`micro`].
#[inline]
unsafe fn micro_dispatch(
    kind: QuantKind,
    nt: usize,
    p: &Panel,
    a: &[BlockQ8],
    nb: usize,
    out: &mut [[f32; PR]; PT],
) {
    let b = bias(kind);
    macro_rules! go {
        ($h:literal, $m:literal) => {
            // SAFETY: forwarded.
            unsafe {
                match nt {
                    1 => micro::<1, $h, $m>(p, a, nb, b, out),
                    2 => micro::<2, $h, $m>(p, a, nb, b, out),
                    3 => micro::<3, $h, $m>(p, a, nb, b, out),
                    4 => micro::<4, $h, $m>(p, a, nb, b, out),
                    5 => micro::<5, $h, $m>(p, a, nb, b, out),
                    6 => micro::<6, $h, $m>(p, a, nb, b, out),
                    7 => micro::<7, $h, $m>(p, a, nb, b, out),
                    _ => micro::<8, $h, $m>(p, a, nb, b, out),
                }
            }
        };
    }
    match kind {
        QuantKind::Q6_K => go!(true, false),
        QuantKind::Q4_1 | QuantKind::Q5_1 | QuantKind::Q4_K | QuantKind::Q5_K => go!(false, true),
        _ => go!(false, false),
    }
}

/// Four activation bytes of group `g` (< 8) of a block, as one i32 broadcast to all lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn act4(ab: &BlockQ8, g: usize) -> __m512i {
    debug_assert!(g < 8);
    // SAFETY: reads qs[4g..4g+4] (g < 8) inside the 32-byte array.
    let v = unsafe { ab.qs.as_ptr().add(4 * g).cast::<i32>().read_unaligned() };
    _mm512_set1_epi32(v)
}

/// The 64 bytes of group `g` of a panel block starting at `wq`.
///
/// # Safety
/// `wq` points to a panel block's 512 bytes; `g < 8`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn group(wq: *const u8, g: usize) -> __m512i {
    // SAFETY: inside the block's 512 bytes (caller).
    unsafe { _mm512_loadu_si512(wq.add(64 * g).cast()) }
}

/// `T` tokens × 16 rows over all `nb` blocks. `HALVES`: separate scales per 16
/// values (Q6_K); `MIN`: add the offset term.
///
/// # Safety
/// AVX-512 set available; `a` holds `T` tokens of `nb` blocks; the panel `nb` blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn micro<const T: usize, const HALVES: bool, const MIN: bool>(
    p: &Panel,
    a: &[BlockQ8],
    nb: usize,
    bias: i32,
    out: &mut [[f32; PR]; PT],
) {
    let mut facc = [_mm512_setzero_ps(); T];
    let (pq, pd, pm) = (p.q.as_ptr(), p.d.as_ptr(), p.m.as_ptr());
    for b in 0..nb {
        let ab: [&BlockQ8; T] = core::array::from_fn(|t| &a[t * nb + b]);
        // SAFETY: block b < nb of the panel: 512 bytes of codes, 32 scales, 16 offsets.
        let (wq, d0, d1) = unsafe {
            (
                pq.add(b * 512),
                _mm512_loadu_ps(pd.add(b * 2 * PR)),
                _mm512_loadu_ps(pd.add(b * 2 * PR + PR)),
            )
        };
        if HALVES {
            for h in 0..2 {
                let mut acc: [__m512i; T] =
                    core::array::from_fn(|t| _mm512_set1_epi32(-bias * ab[t].h[h]));
                for g in 4 * h..4 * h + 4 {
                    // SAFETY: g < 8 and wq is block b of the panel.
                    let w = unsafe { group(wq, g) };
                    for t in 0..T {
                        acc[t] = _mm512_dpbusd_epi32(acc[t], w, act4(ab[t], g));
                    }
                }
                let d = if h == 0 { d0 } else { d1 };
                for t in 0..T {
                    let sc = _mm512_mul_ps(d, _mm512_set1_ps(ab[t].d));
                    facc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[t]), sc, facc[t]);
                }
            }
        } else {
            let mut acc: [__m512i; T] =
                core::array::from_fn(|t| _mm512_set1_epi32(-bias * (ab[t].h[0] + ab[t].h[1])));
            for g in 0..8 {
                // SAFETY: g < 8 and wq is block b of the panel.
                let w = unsafe { group(wq, g) };
                for t in 0..T {
                    acc[t] = _mm512_dpbusd_epi32(acc[t], w, act4(ab[t], g));
                }
            }
            for t in 0..T {
                let sc = _mm512_mul_ps(d0, _mm512_set1_ps(ab[t].d));
                facc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[t]), sc, facc[t]);
            }
        }
        if MIN {
            // SAFETY: 16 offsets of block b.
            let m = unsafe { _mm512_loadu_ps(pm.add(b * PR)) };
            for t in 0..T {
                facc[t] = _mm512_fmadd_ps(m, _mm512_set1_ps(ab[t].s), facc[t]);
            }
        }
    }
    for t in 0..T {
        // SAFETY: 16 floats into a 16-float array.
        unsafe { _mm512_storeu_ps(out[t].as_mut_ptr(), facc[t]) };
    }
}
