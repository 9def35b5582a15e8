//! AVX-512 VNNI quantized GEMM (prefill, encoders) for every weight format:
//! sixteen weight rows in the lanes of a zmm, tokens broadcast.
//!
//! # Panel format
//! A *panel* is 16 consecutive weight rows decoded for this kernel: for each
//! 32-value block `b` and each group `g` of four values, 64 bytes
//! `q[b][g][r][0..4]` = the four codes of row `r`, biased to be unsigned
//! (`code + bias`, bias 8 for Q4_0, 16 for Q5_0, 32 for Q6_K, 128 for Q8_0, 0
//! for the formats with an offset term); per block the 16 rows' scales (two
//! vectors, one per 16-value half, for Q6_K only: [`halves`]) and, for the
//! formats with an offset term ([`mins`]), their 16 offsets.
//!
//! A panel is decoded either once per GEMM call into a thread-local buffer
//! ([`gemm`]), or once for the life of a model into a [`PackedWeights`]
//! ([`pack`], then [`gemm_packed`]), which is what repeated prefill and
//! encoder runs want: for Q8_0 the packed copy is 36 bytes per 32 values
//! against the file's 34.
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
//! Per block and 8 tokens that is 64 `vpdpbusd` against ~32 other vector µops
//! (measured ~165 G MAC/s on one Zen 4 core with everything in L1, of ~224 for
//! `vpdpbusd` alone).

#![deny(unsafe_op_in_unsafe_fn)]

use super::x86_unpack::{block_scales, codes};
use super::{BlockQ8, Isa, OutLayout, PackedWeights, QuantKind, QK};
use core::arch::x86_64::*;
use std::cell::RefCell;

/// Rows per panel: one per i32 lane of a zmm.
pub(super) const PR: usize = 16;
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

/// Whether a format has a scale per 16-value half (two scale vectors per block).
fn halves(kind: QuantKind) -> bool {
    kind == QuantKind::Q6_K
}

/// Whether a format has an offset term (a vector of offsets per block).
fn mins(kind: QuantKind) -> bool {
    matches!(
        kind,
        QuantKind::Q4_1 | QuantKind::Q5_1 | QuantKind::Q4_K | QuantKind::Q5_K
    )
}

/// Scale floats per block of a panel.
fn d_stride(kind: QuantKind) -> usize {
    if halves(kind) {
        2 * PR
    } else {
        PR
    }
}

/// Offset floats per block of a panel.
fn m_stride(kind: QuantKind) -> usize {
    if mins(kind) {
        PR
    } else {
        0
    }
}

/// Lengths of one panel of `nb` blocks of `kind`: (code bytes, scales, offsets).
fn panel_lens(kind: QuantKind, nb: usize) -> (usize, usize, usize) {
    (nb * 8 * PR * 4, nb * d_stride(kind), nb * m_stride(kind))
}

/// One decoded panel, borrowed from a scratch buffer or a [`PackedWeights`].
#[derive(Clone, Copy)]
struct PanelRef<'a> {
    /// `[nb][8][16][4]` biased codes.
    q: &'a [u8],
    /// `[nb][d_stride]` scales.
    d: &'a [f32],
    /// `[nb][m_stride]` offsets.
    m: &'a [f32],
}

/// A thread's panel buffer for [`gemm`].
#[derive(Default)]
struct Scratch {
    q: Vec<u8>,
    d: Vec<f32>,
    m: Vec<f32>,
}

thread_local! {
    static PANEL: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Row r of `w` · token t of `a` into `out[lay.at(r, t)]`, decoding each panel
/// once per call; shapes checked by the caller (`gemm_shape`): `w` holds whole
/// rows of `rb` bytes, `a` whole tokens of `nb` blocks.
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
    PANEL.with(|p| {
        let mut p = p.borrow_mut();
        let p = &mut *p;
        let (qp, dp, mp) = panel_lens(kind, nb);
        p.q.resize(qp, 0);
        p.d.resize(dp, 0.0);
        p.m.resize(mp, 0.0);
        for r0 in (0..rows).step_by(PR) {
            let nr = PR.min(rows - r0);
            // The next panel's rows start streaming in while this one is
            // decoded and multiplied (the weights of a model rarely sit in L2).
            prefetch_rows(w, (r0 + PR) * rb, PR * rb);
            // SAFETY: this module is reached only from the AVX-512 table (AVX-512
            // F/BW/VL/VNNI + AVX2/FMA/F16C detected); rows r0..r0+nr exist in `w`
            // and the buffers are sized for `nb` blocks of `kind`.
            unsafe {
                decode_panel(
                    kind,
                    &w[r0 * rb..(r0 + nr) * rb],
                    rb,
                    nr,
                    nb,
                    &mut p.q,
                    &mut p.d,
                    &mut p.m,
                )
            };
            let panel = PanelRef {
                q: &p.q,
                d: &p.d,
                m: &p.m,
            };
            panel_times_tokens(kind, &[panel], r0, nr, a, nb, out, lay, None);
        }
    });
}

/// Decodes every row of `w` (whole rows of `nb` blocks of `kind`) into panels.
pub(super) fn pack(kind: QuantKind, w: &[u8], nb: usize) -> PackedWeights {
    let rb = kind
        .row_bytes(nb)
        .expect("pack: row is not whole storage blocks");
    assert_eq!(w.len() % rb, 0, "pack: weights are not whole rows");
    let rows = w.len() / rb;
    let panels = rows.div_ceil(PR);
    let (qp, dp, mp) = panel_lens(kind, nb);
    let mut q = vec![0u8; panels * qp];
    let mut d = vec![0f32; panels * dp];
    let mut m = vec![0f32; panels * mp];
    for p in 0..panels {
        let (r0, nr) = (p * PR, PR.min(rows - p * PR));
        // SAFETY: AVX-512 table only (as in `gemm`); rows r0..r0+nr exist in `w`
        // and each slice is exactly one panel of `nb` blocks.
        unsafe {
            decode_panel(
                kind,
                &w[r0 * rb..(r0 + nr) * rb],
                rb,
                nr,
                nb,
                &mut q[p * qp..(p + 1) * qp],
                &mut d[p * dp..(p + 1) * dp],
                &mut m[p * mp..(p + 1) * mp],
            )
        };
    }
    PackedWeights {
        isa: Isa::Avx512,
        kind,
        rows,
        nb,
        q,
        d,
        m,
    }
}

/// [`gemm`] on weights decoded by [`pack`]: no decoding at all; `bias[r]`
/// (checked by the caller to hold one value per row) is added to row r's results.
pub(super) fn gemm_packed(
    pw: &PackedWeights,
    a: &[BlockQ8],
    out: &mut [f32],
    lay: OutLayout,
    bias: Option<&[f32]>,
) {
    let (kind, nb, rows) = (pw.kind, pw.nb, pw.rows);
    let (qp, dp, mp) = panel_lens(kind, nb);
    let panel = |p: usize| PanelRef {
        q: &pw.q[p * qp..(p + 1) * qp],
        d: &pw.d[p * dp..(p + 1) * dp],
        m: &pw.m[p * mp..(p + 1) * mp],
    };
    let panels = rows.div_ceil(PR);
    let mut p = 0;
    while p < panels {
        // Two panels at a time where there are two: each broadcast activation
        // then feeds two `vpdpbusd` (measured 176 vs 135 G MAC/s at 128 tokens).
        let np = if p + 1 < panels { 2 } else { 1 };
        // The next panels start on their way from L3 while these are multiplied.
        prefetch_rows(&pw.q, (p + np) * qp, np * qp);
        prefetch_rows(bytemuck::cast_slice(&pw.d), (p + np) * dp * 4, np * dp * 4);
        let r0 = p * PR;
        let nr = (np * PR).min(rows - r0);
        let b = bias.map(|b| &b[r0..r0 + nr]);
        let ps = [panel(p), panel((p + 1).min(panels - 1))];
        panel_times_tokens(kind, &ps[..np], r0, nr, a, nb, out, lay, b);
        p += np;
    }
}

/// Every token of `a` times one or two consecutive panels (rows `r0..r0 + nr`),
/// into `out`, plus `bias` (`nr` values) when given.
#[allow(clippy::too_many_arguments)]
fn panel_times_tokens(
    kind: QuantKind,
    panels: &[PanelRef],
    r0: usize,
    nr: usize,
    a: &[BlockQ8],
    nb: usize,
    out: &mut [f32],
    lay: OutLayout,
    bias: Option<&[f32]>,
) {
    let np = panels.len();
    let tokens = a.len() / nb;
    // Tokens per tile: 8 accumulator pairs for one panel, 4 for each of two.
    let tile = PT / np;
    let mut t0 = 0;
    while t0 < tokens {
        let nt = tile.min(tokens - t0);
        let at = &a[t0 * nb..(t0 + nt) * nb];
        if lay.token_major && nr == np * PR {
            // Whole panels into a token-major output: straight from the registers.
            let first = lay.at(r0, t0);
            let last = lay.at(r0 + nr - 1, t0 + nt - 1);
            assert!(last < out.len() && bias.is_none_or(|b| b.len() >= nr));
            let dest = Dest::Direct {
                out: out[first..].as_mut_ptr(),
                stride: lay.stride,
                bias: bias.map_or(core::ptr::null(), |b| b.as_ptr()),
            };
            // SAFETY: AVX-512 table only; tokens and panels as below; every output
            // address (token t < nt, row < nr of rows r0..) is ≤ `last`, checked above.
            unsafe { micro_dispatch(kind, panels, nt, at, nb, dest) };
            t0 += nt;
            continue;
        }
        // acc[p·nt + t]: panel p, token t0 + t.
        let mut acc = [[0f32; PR]; PT];
        // SAFETY: AVX-512 table only; `at` holds `nt` whole tokens of `nb` blocks and
        // each panel `nb` blocks of `kind`'s layout (sizes asserted in `micro_dispatch`).
        unsafe { micro_dispatch(kind, panels, nt, at, nb, Dest::Tile(&mut acc)) };
        for (p, accs) in acc.chunks_mut(nt).take(np).enumerate() {
            let (pr0, pnr) = (p * PR, PR.min(nr.saturating_sub(p * PR)));
            if pnr == 0 {
                continue;
            }
            if let Some(b) = bias {
                for col in accs.iter_mut() {
                    for (v, &b) in col.iter_mut().zip(&b[pr0..pr0 + pnr]) {
                        *v += b;
                    }
                }
            }
            for (t, col) in accs.iter().enumerate() {
                if lay.token_major {
                    let o = lay.at(r0 + pr0, t0 + t);
                    out[o..o + pnr].copy_from_slice(&col[..pnr]);
                } else {
                    for (r, &v) in col.iter().enumerate().take(pnr) {
                        out[lay.at(r0 + pr0 + r, t0 + t)] = v;
                    }
                }
            }
        }
        t0 += nt;
    }
}

/// Starts `len` bytes of `w` from `start` on their way into L2 (no-op past the end).
#[inline]
fn prefetch_rows(w: &[u8], start: usize, len: usize) {
    let end = (start + len).min(w.len());
    let mut off = start;
    while off < end {
        // SAFETY: a prefetch never faults; the address is inside `w`.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(w.as_ptr().add(off).cast()) };
        off += 64;
    }
}

/// Decodes `nr` (≤ 16) rows into one panel's `q`, `d`, `m`; missing rows become zeros.
///
/// # Safety
/// AVX-512 set and AVX2 available; `w` holds `nr` rows of `rb` bytes, each `nb`
/// 32-value blocks of `kind`; `q`, `d` and `m` hold one panel of `nb` blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn decode_panel(
    kind: QuantKind,
    w: &[u8],
    rb: usize,
    nr: usize,
    nb: usize,
    q: &mut [u8],
    d: &mut [f32],
    m: &mut [f32],
) {
    let (bb, per) = (kind.block_bytes(), kind.block_len() / QK);
    let (ds, ms, two) = (d_stride(kind), m_stride(kind), halves(kind));
    assert!(q.len() >= nb * 512 && d.len() >= nb * ds && m.len() >= nb * ms);
    let biasv = _mm256_set1_epi8(bias(kind) as u8 as i8);
    // Codes of sub-block j of row r at tmp[j][r] (up to 8 sub-blocks per storage block).
    let mut tmp = [[[0u8; 32]; PR]; 8];
    for s in 0..nb / per {
        for r in 0..PR {
            if r < nr {
                let blk = &w[r * rb + s * bb..r * rb + (s + 1) * bb];
                // SAFETY: `blk` is one whole storage block.
                let (sd, sm) = unsafe { block_scales(kind, blk.as_ptr()) };
                for (j, t) in tmp.iter_mut().enumerate().take(per) {
                    // SAFETY: `blk` is one whole storage block and j < per.
                    let c = unsafe { codes(kind, blk.as_ptr(), j) };
                    // SAFETY: 32-byte unaligned store into a 32-byte array.
                    unsafe {
                        _mm256_storeu_si256(t[r].as_mut_ptr().cast(), _mm256_add_epi8(c, biasv))
                    };
                    let b = s * per + j;
                    d[b * ds + r] = sd[2 * j];
                    if two {
                        d[b * ds + PR + r] = sd[2 * j + 1];
                    }
                    if ms > 0 {
                        m[b * ms + r] = sm[j];
                    }
                }
            } else {
                for (j, t) in tmp.iter_mut().enumerate().take(per) {
                    t[r] = [0; 32];
                    let b = s * per + j;
                    d[b * ds + r] = 0.0;
                    if two {
                        d[b * ds + PR + r] = 0.0;
                    }
                    if ms > 0 {
                        m[b * ms + r] = 0.0;
                    }
                }
            }
        }
        for (j, t) in tmp.iter().enumerate().take(per) {
            let b = s * per + j;
            // SAFETY: `t` is 16 rows of 32 bytes and the destination 512 bytes of `q`.
            unsafe { transpose_16x8(t, &mut q[b * 512..(b + 1) * 512]) };
        }
    }
}

/// Rows of a panel's halves before [`transpose_16x8`]: zmm `i` holds panel row
/// `LOW[i]` in its low 256 bits and `HIGH[i]` in its high 256 bits, the order
/// that makes the last shuffle come out in natural row order.
const LOW: [usize; 8] = [0, 1, 2, 3, 8, 9, 10, 11];
/// See [`LOW`].
const HIGH: [usize; 8] = [4, 5, 6, 7, 12, 13, 14, 15];

/// `dst[g][r][0..4] = t[r][4g..4g + 4]`: sixteen rows of eight 4-byte groups
/// into eight vectors of sixteen rows, by shuffles (two 8×8 dword transposes
/// side by side in the 256-bit halves: unpack 32, unpack 64, then one 128-bit
/// lane shuffle per output). Gathers do the same but are microcoded on some
/// CPUs (Zen 4).
///
/// # Safety
/// The AVX-512 set available; `dst` is 512 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn transpose_16x8(t: &[[u8; 32]; PR], dst: &mut [u8]) {
    assert_eq!(dst.len(), 512);
    let row = |r: usize| {
        // SAFETY: row r < 16 is 32 readable bytes.
        unsafe { _mm256_loadu_si256(t[r].as_ptr().cast()) }
    };
    let z: [__m512i; 8] = core::array::from_fn(|i| {
        _mm512_inserti64x4::<1>(_mm512_castsi256_si512(row(LOW[i])), row(HIGH[i]))
    });
    let mut b = [_mm512_setzero_si512(); 8];
    for h in 0..2 {
        let (z0, z1, z2, z3) = (z[4 * h], z[4 * h + 1], z[4 * h + 2], z[4 * h + 3]);
        let a0 = _mm512_unpacklo_epi32(z0, z1);
        let a1 = _mm512_unpackhi_epi32(z0, z1);
        let a2 = _mm512_unpacklo_epi32(z2, z3);
        let a3 = _mm512_unpackhi_epi32(z2, z3);
        // b[4h + c] holds groups c (128-bit lanes 0, 2) and c + 4 (lanes 1, 3).
        b[4 * h] = _mm512_unpacklo_epi64(a0, a2);
        b[4 * h + 1] = _mm512_unpackhi_epi64(a0, a2);
        b[4 * h + 2] = _mm512_unpacklo_epi64(a1, a3);
        b[4 * h + 3] = _mm512_unpackhi_epi64(a1, a3);
    }
    let out = dst.as_mut_ptr();
    for c in 0..4 {
        let lo = _mm512_shuffle_i64x2::<0x88>(b[c], b[4 + c]);
        let hi = _mm512_shuffle_i64x2::<0xDD>(b[c], b[4 + c]);
        // SAFETY: groups c and c + 4 are 64-byte slots inside the 512 bytes.
        unsafe {
            _mm512_storeu_si512(out.add(64 * c).cast(), lo);
            _mm512_storeu_si512(out.add(64 * (c + 4)).cast(), hi);
        }
    }
}

/// Picks the micro-kernel instance for the panel count, `nt` tokens and the
/// format's scale shape.
///
/// # Safety
/// The AVX-512 set available.
#[inline]
unsafe fn micro_dispatch(
    kind: QuantKind,
    panels: &[PanelRef],
    nt: usize,
    a: &[BlockQ8],
    nb: usize,
    out: Dest,
) {
    let np = panels.len();
    assert!((np == 1 || np == 2) && nt >= 1 && nt * np <= PT && a.len() >= nt * nb);
    for p in panels {
        assert!(
            p.q.len() >= nb * 512
                && p.d.len() >= nb * d_stride(kind)
                && p.m.len() >= nb * m_stride(kind)
        );
    }
    let b = bias(kind);
    let two = [panels[0], panels[np - 1]];
    macro_rules! go {
        ($h:literal, $m:literal) => {
            // SAFETY: the sizes were asserted above; the ISA is the caller's guarantee.
            unsafe {
                match (np, nt) {
                    (2, 1) => micro::<2, 1, $h, $m>(&two, a, nb, b, out),
                    (2, 2) => micro::<2, 2, $h, $m>(&two, a, nb, b, out),
                    (2, 3) => micro::<2, 3, $h, $m>(&two, a, nb, b, out),
                    (2, _) => micro::<2, 4, $h, $m>(&two, a, nb, b, out),
                    (_, 1) => micro::<1, 1, $h, $m>(&[two[0]], a, nb, b, out),
                    (_, 2) => micro::<1, 2, $h, $m>(&[two[0]], a, nb, b, out),
                    (_, 3) => micro::<1, 3, $h, $m>(&[two[0]], a, nb, b, out),
                    (_, 4) => micro::<1, 4, $h, $m>(&[two[0]], a, nb, b, out),
                    (_, 5) => micro::<1, 5, $h, $m>(&[two[0]], a, nb, b, out),
                    (_, 6) => micro::<1, 6, $h, $m>(&[two[0]], a, nb, b, out),
                    (_, 7) => micro::<1, 7, $h, $m>(&[two[0]], a, nb, b, out),
                    (_, _) => micro::<1, 8, $h, $m>(&[two[0]], a, nb, b, out),
                }
            }
        };
    }
    match (halves(kind), mins(kind)) {
        (true, _) => go!(true, false),
        (false, true) => go!(false, true),
        (false, false) => go!(false, false),
    }
}

/// `P` panels (16 rows each) × `T` tokens over all `nb` blocks, into
/// `out[p·T + t]`. `HALVES`: separate scales per 16 values (Q6_K); `MIN`: add
/// the offset term.
///
/// # Safety
/// AVX-512 set available; `a` holds at least `T` tokens of `nb` blocks; each
/// panel `nb` blocks of its layout (`q` 512 bytes, `d` 16 or 32 floats, `m` 16
/// or 0 per block); `P·T ≤ 8`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
#[allow(clippy::needless_range_loop)] // parallel arrays indexed by panel and token
unsafe fn micro<const P: usize, const T: usize, const HALVES: bool, const MIN: bool>(
    panels: &[PanelRef; P],
    a: &[BlockQ8],
    nb: usize,
    bias: i32,
    out: Dest,
) {
    let mut facc = [[_mm512_setzero_ps(); T]; P];
    let ds = if HALVES { 2 * PR } else { PR };
    let ap = a.as_ptr();
    for b in 0..nb {
        // SAFETY (this whole block): token t < T, block b < nb: inside `a`; panel block
        // b < nb: 512 bytes of codes, `ds` scales, 16 offsets for MIN (caller).
        unsafe {
            let ab: [*const BlockQ8; T] = core::array::from_fn(|t| ap.add(t * nb + b));
            let wq: [*const u8; P] = core::array::from_fn(|p| panels[p].q.as_ptr().add(b * 512));
            let act = |t: usize, g: usize| {
                _mm512_set1_epi32(
                    (*ab[t])
                        .qs
                        .as_ptr()
                        .add(4 * g)
                        .cast::<i32>()
                        .read_unaligned(),
                )
            };
            let halves: &[(usize, usize)] = if HALVES { &[(0, 4), (4, 8)] } else { &[(0, 8)] };
            for (h, &(g0, g1)) in halves.iter().enumerate() {
                let init: [__m512i; T] = core::array::from_fn(|t| {
                    let s = if HALVES {
                        (*ab[t]).h[h]
                    } else {
                        (*ab[t]).h[0] + (*ab[t]).h[1]
                    };
                    _mm512_set1_epi32(-bias * s)
                });
                let mut acc = [init; P];
                for g in g0..g1 {
                    let w: [__m512i; P] =
                        core::array::from_fn(|p| _mm512_loadu_si512(wq[p].add(64 * g).cast()));
                    for t in 0..T {
                        let av = act(t, g);
                        for p in 0..P {
                            acc[p][t] = _mm512_dpbusd_epi32(acc[p][t], w[p], av);
                        }
                    }
                }
                for p in 0..P {
                    let d = _mm512_loadu_ps(panels[p].d.as_ptr().add(b * ds + h * PR));
                    for t in 0..T {
                        let sc = _mm512_mul_ps(d, _mm512_set1_ps((*ab[t]).d));
                        facc[p][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[p][t]), sc, facc[p][t]);
                    }
                }
            }
            if MIN {
                for p in 0..P {
                    let m = _mm512_loadu_ps(panels[p].m.as_ptr().add(b * PR));
                    for t in 0..T {
                        facc[p][t] = _mm512_fmadd_ps(m, _mm512_set1_ps((*ab[t]).s), facc[p][t]);
                    }
                }
            }
        }
    }
    for p in 0..P {
        for t in 0..T {
            match out {
                // SAFETY: 16 floats into a 16-float array (p·T + t < P·T ≤ 8).
                Dest::Tile(tile) => unsafe {
                    _mm512_storeu_ps((*tile)[p * T + t].as_mut_ptr(), facc[p][t])
                },
                // SAFETY: the caller's `Dest::Direct` contract (16 floats per panel and token).
                Dest::Direct { out, stride, bias } => unsafe {
                    let mut v = facc[p][t];
                    if !bias.is_null() {
                        v = _mm512_add_ps(v, _mm512_loadu_ps(bias.add(p * PR)));
                    }
                    _mm512_storeu_ps(out.add(t * stride + p * PR), v)
                },
            }
        }
    }
}

/// Where a micro-kernel writes panel p's 16 results for token t.
#[derive(Clone, Copy)]
enum Dest {
    /// `tile[p·T + t]`.
    Tile(*mut [[f32; PR]; PT]),
    /// `out[t·stride + 16p + r]` plus `bias[16p + r]` (when not null): the
    /// token-major output itself, for whole panels; the caller guarantees
    /// every such address (and the bias') is inside its slices.
    Direct {
        out: *mut f32,
        stride: usize,
        bias: *const f32,
    },
}
