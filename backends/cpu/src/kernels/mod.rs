//! SIMD kernel layer: the handful of inner loops that dominate CPU inference.
//!
//! Every kernel exists once per instruction set, side by side:
//!
//! * [`scalar`] — portable reference; the definition of "correct".
//! * `avx2` — x86-64 AVX2 + FMA + F16C.
//! * `avx512` — x86-64 AVX-512 F/BW/VL + VNNI (`vpdpbusd`) + F16C.
//! * `neon` — AArch64 Advanced SIMD (plain NEON, Armv8.0).
//! * `neondot` — AArch64 Advanced SIMD + the dot-product extension
//!   (FEAT_DotProd): `sdot` through stable `asm!` (the `vdotq_s32` intrinsic is
//!   not stable Rust yet); everything without int8 products is `neon`'s code.
//!
//! The instruction set is chosen at run time ([`Isa::best`], or `WISP_ISA`
//! through [`Isa::from_env`]), never through `-C target-cpu`. Each ISA exposes one
//! [`Kernels`] table of *safe* function pointers; callers fetch the table once
//! (e.g. once per matmul) so dispatch stays out of the inner loops.
//!
//! # Data formats
//!
//! Weight rows arrive as the raw little-endian bytes of a GGUF/ggml tensor row
//! (possibly unaligned):
//!
//! * Q4_0 — 18 bytes per 32 values: f16 `d`, 16 bytes of nibbles. Element `j`
//!   (0..16) is `(qs[j] & 0xF) - 8`, element `j + 16` is `(qs[j] >> 4) - 8`;
//!   value = `d * element`.
//! * Q4_1 — 20 bytes per 32 values: f16 `d`, f16 `m`, 16 bytes of nibbles in
//!   the same order; value = `d * q + m` with `q` in 0..=15.
//! * Q8_0 — 34 bytes per 32 values: f16 `d`, 32 × i8; value = `d * q`.
//! * F16 — little-endian IEEE binary16.
//!
//! Activations are quantized on the fly to [`BlockQ8`] (int8, 32 per block).
//!
//! # Determinism across ISAs
//!
//! * `quantize_q8` produces bit-identical blocks on every ISA (same `amax`,
//!   same `d`/`1/d` computed in f32, multiply by `1/d`, round half to even).
//! * `axpy_f32`, `axpy_f16` and `f32_to_f16` are bit-identical on every ISA
//!   (one fused multiply-add / one correctly rounded conversion per element).
//! * The dot products compute the per-block integer sums exactly; only the
//!   order of the f32 accumulation differs between ISAs, so results agree to
//!   within a few ulps of the sum of absolute terms.
//!
//! # Preconditions
//!
//! Inputs are expected to be finite. Activation blocks must come from
//! `quantize_q8` (or otherwise keep every `qs` in `-127..=127`; `-128` is not
//! supported by the x86 sign trick). Every wrapper checks slice lengths with
//! `assert_eq!` (once per call, i.e. once per row), so a wrong length panics
//! instead of reading out of bounds.

use std::fmt;

pub mod bf16;
pub mod blocks;
pub mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2;
// AVX-512 intrinsics (incl. `_mm256_dpbusd_epi32`) are stable since Rust 1.89, so this
// module needs at least that toolchain whatever the workspace `rust-version` says.
#[cfg(target_arch = "aarch64")]
mod arm_unpack;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod avx512_bf16;
#[cfg(target_arch = "x86_64")]
mod avx512_gemm;
#[cfg(target_arch = "x86_64")]
mod avx512_math;
#[cfg(target_arch = "x86_64")]
mod gelu_table;
#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "aarch64")]
mod neondot;
#[cfg(target_arch = "x86_64")]
mod x86_math;
#[cfg(target_arch = "x86_64")]
mod x86_unpack;

/// Values per quantization block (all formats here).
pub const QK: usize = 32;
/// Bytes per Q4_0 block.
pub const Q4_0_BLOCK_BYTES: usize = 18;
/// Bytes per Q4_1 block.
pub const Q4_1_BLOCK_BYTES: usize = 20;
/// Bytes per Q8_0 block.
pub const Q8_0_BLOCK_BYTES: usize = 34;

/// One block of 32 activations quantized to int8.
///
/// `d = amax / 127` (0 when the block is all zeros), `qs[i] = round_half_even(x[i] * (1/d))`,
/// `s = d * Σ qs` (used by Q4_1's offset term).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BlockQ8 {
    /// Scale: `amax / 127`, or 0 for an all-zero block.
    pub d: f32,
    /// `d * Σ qs` (Q4_1's offset term uses it).
    pub s: f32,
    /// Quantized values, each in `-127..=127`.
    pub qs: [i8; 32],
    /// Σ qs of values 0..16 and of values 16..32 (the tiled GEMM's integer
    /// correction for unsigned-biased weight codes).
    pub h: [i32; 2],
}

/// Scale and inverse scale of an activation block with absolute maximum `amax`.
///
/// Shared by every ISA so that all of them quantize identically, and the same
/// arithmetic as llama.cpp's `quantize_row_q8_0/q8_1` (codes from
/// `127 / amax`), so wisp's int8 path rounds where llama.cpp's does. A block
/// whose scale would be so small that the inverse overflows (amax below
/// ~4e-37) is treated as all zeros: `(0, 0)`.
#[inline(always)]
pub(crate) fn q8_scale(amax: f32) -> (f32, f32) {
    let d = amax / 127.0;
    let id = 127.0 / amax;
    if d != 0.0 && id.is_finite() && (1.0 / d).is_finite() {
        (d, id)
    } else {
        (0.0, 0.0)
    }
}

/// Stores a block's scales. Unlike llama.cpp's Q8_0/Q8_1 blocks, `d` and
/// `d · Σq` stay f32: rounding them to f16 (tried) moved wisp further from
/// llama.cpp's logits on the golden prompts, and f16 overflows for blocks
/// with |x| > ~2000, which this model's activations reach.
#[inline(always)]
pub(crate) fn set_scales(ob: &mut BlockQ8, d: f32, h: [i32; 2]) {
    ob.d = d;
    ob.s = d * (h[0] + h[1]) as f32;
    ob.h = h;
}

/// Σ of each 16-value half of a block's codes (what `set_scales` stores in `h`).
#[cfg(test)]
pub(crate) fn half_sums(qs: &[i8; 32]) -> [i32; 2] {
    let sum = |q: &[i8]| q.iter().map(|&v| v as i32).sum::<i32>();
    [sum(&qs[..16]), sum(&qs[16..])]
}

/// Instruction set chosen at run time (never by `-C target-cpu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust; always available.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL + VNNI (with AVX2 + FMA + F16C).
    Avx512,
    /// AArch64 Advanced SIMD (Armv8.0), without the dot-product extension.
    Neon,
    /// AArch64 Advanced SIMD with the dot-product extension (FEAT_DotProd, `sdot`).
    NeonDot,
}

impl Isa {
    /// Every variant, in ascending order of preference.
    pub const ALL: [Isa; 5] = [Isa::Scalar, Isa::Neon, Isa::NeonDot, Isa::Avx2, Isa::Avx512];

    /// Stable lowercase name: `"scalar"`, `"avx2"`, `"avx512"`, `"neon"`, `"neondot"`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
            Isa::NeonDot => "neondot",
        }
    }

    /// Run-time detection.
    ///
    /// * `Avx2`: avx2 + fma + f16c.
    /// * `Avx512`: avx512f + avx512bw + avx512vl + avx512vnni, plus avx2 + fma + f16c.
    /// * `Neon`: any AArch64 CPU with Advanced SIMD.
    /// * `NeonDot`: Advanced SIMD + dotprod (e.g. Cortex-A55/A76 and later, Apple M1+,
    ///   Neoverse N1+; not Cortex-A53/A72).
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Avx2 => has_avx2(),
            Isa::Avx512 => has_avx512(),
            Isa::Neon => has_neon(),
            Isa::NeonDot => has_neon_dot(),
        }
    }

    /// The best instruction set supported by this CPU.
    pub fn best() -> Isa {
        Isa::ALL
            .iter()
            .rev()
            .copied()
            .find(|i| i.is_supported())
            .unwrap_or(Isa::Scalar)
    }

    /// Every instruction set this CPU supports (always includes `Scalar`), in
    /// ascending order of preference.
    pub fn supported() -> Vec<Isa> {
        Isa::ALL
            .iter()
            .copied()
            .filter(|i| i.is_supported())
            .collect()
    }

    /// Parses a name (case-insensitive, surrounding whitespace ignored). Only
    /// checks the name; see [`Isa::select`] for the support check.
    pub fn parse(name: &str) -> Result<Isa, String> {
        let n = name.trim();
        Isa::ALL
            .iter()
            .copied()
            .find(|i| i.name().eq_ignore_ascii_case(n))
            .ok_or_else(|| {
                let names: Vec<&str> = Isa::ALL.iter().map(|i| i.name()).collect();
                format!(
                    "unknown instruction set {n:?}: expected one of {}",
                    names.join(", ")
                )
            })
    }

    /// The decision behind [`Isa::from_env`], for a given value of `WISP_ISA`:
    /// unset or blank selects [`Isa::best`]; a known name must also be supported
    /// by this CPU.
    pub fn select(value: Option<&str>) -> Result<Isa, String> {
        match value.map(str::trim) {
            None | Some("") => Ok(Isa::best()),
            Some(v) => {
                let isa = Isa::parse(v).map_err(|e| format!("WISP_ISA: {e}"))?;
                if isa.is_supported() {
                    Ok(isa)
                } else {
                    let have: Vec<&str> = Isa::supported().iter().map(|i| i.name()).collect();
                    Err(format!(
                        "WISP_ISA={}: not supported on this CPU (supported: {})",
                        isa.name(),
                        have.join(", ")
                    ))
                }
            }
        }
    }

    /// Honours `WISP_ISA=scalar|avx2|avx512|neon|neondot`. Errors on an unknown name or
    /// an instruction set this CPU lacks; unset/empty selects [`Isa::best`].
    pub fn from_env() -> Result<Isa, String> {
        match std::env::var("WISP_ISA") {
            Ok(v) => Isa::select(Some(&v)),
            Err(std::env::VarError::NotPresent) => Isa::select(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err("WISP_ISA: value is not valid UTF-8".to_string())
            }
        }
    }

    /// The kernel table for this instruction set.
    ///
    /// Call it for a supported ISA (see [`Isa::is_supported`]). It never panics:
    /// for an ISA this CPU lacks it returns the scalar table (whose `isa` field
    /// then reads `Scalar`), which is what makes the SIMD tables' safe wrappers
    /// sound — they are reachable only through this function, after detection.
    pub fn kernels(self) -> &'static Kernels {
        if !self.is_supported() {
            return &scalar::KERNELS;
        }
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => &avx2::KERNELS,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => &avx512::KERNELS,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => &neon::KERNELS,
            #[cfg(target_arch = "aarch64")]
            Isa::NeonDot => &neondot::KERNELS,
            _ => &scalar::KERNELS,
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx2() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    has_avx2()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx512() -> bool {
    false
}

#[cfg(target_arch = "aarch64")]
fn has_neon() -> bool {
    std::arch::is_aarch64_feature_detected!("neon")
}

#[cfg(not(target_arch = "aarch64"))]
fn has_neon() -> bool {
    false
}

#[cfg(target_arch = "aarch64")]
fn has_neon_dot() -> bool {
    has_neon() && std::arch::is_aarch64_feature_detected!("dotprod")
}

#[cfg(not(target_arch = "aarch64"))]
fn has_neon_dot() -> bool {
    false
}

/// One table of safe function pointers per ISA; selecting the table once per
/// matmul keeps dispatch off the inner loop.
///
/// Length contracts (checked with `assert_eq!`, panicking on mismatch):
/// `quantize_q8`: `x.len() == out.len() * 32`; `dot_q4_0`/`dot_q4_1`/`dot_q8_0`:
/// `w.len() == a.len() * {18, 20, 34}`; `dot_f32`, `axpy_f32`: equal lengths;
/// `dot_f16_f32`, `axpy_f16`, `f32_to_f16`: f16 byte slice twice the f32 length.
/// Any length (including 0) is accepted otherwise.
pub struct Kernels {
    /// The instruction set these kernels use.
    pub isa: Isa,
    /// Quantizes `x` (`32 * out.len()` values) to int8 blocks; bit-identical on every ISA.
    pub quantize_q8: fn(x: &[f32], out: &mut [BlockQ8]),
    /// Q4_0 row (18 bytes per block) · quantized activations.
    pub dot_q4_0: fn(w: &[u8], a: &[BlockQ8]) -> f32,
    /// Q4_1 row (20 bytes per block) · quantized activations.
    pub dot_q4_1: fn(w: &[u8], a: &[BlockQ8]) -> f32,
    /// Q8_0 row (34 bytes per block) · quantized activations.
    pub dot_q8_0: fn(w: &[u8], a: &[BlockQ8]) -> f32,
    /// Q5_0 row (22 bytes per block) · quantized activations.
    pub dot_q5_0: fn(w: &[u8], a: &[BlockQ8]) -> f32,
    /// Q5_1 row (24 bytes per block) · quantized activations.
    pub dot_q5_1: fn(w: &[u8], a: &[BlockQ8]) -> f32,
    /// Q4_K row (144 bytes per 256 values) · quantized activations.
    pub dot_q4_k: fn(w: &[u8], a: &[BlockQ8]) -> f32,
    /// Q5_K row (176 bytes per 256 values) · quantized activations.
    pub dot_q5_k: fn(w: &[u8], a: &[BlockQ8]) -> f32,
    /// Q6_K row (210 bytes per 256 values) · quantized activations.
    pub dot_q6_k: fn(w: &[u8], a: &[BlockQ8]) -> f32,
    /// Four consecutive Q5_0 rows (`w` = 4 rows of `22 · a.len()` bytes) · the
    /// same activations, where an ISA has a kernel that shares the activation
    /// loads and the four rows' scale conversion (Q5_0 GEMV is compute-bound).
    pub dot4_q5_0: Option<Dot4Fn>,
    /// f32 · f32, any length.
    pub dot_f32: fn(a: &[f32], b: &[f32]) -> f32,
    /// f16 row bytes · f32, any length.
    pub dot_f16_f32: fn(w: &[u8], x: &[f32]) -> f32,
    /// `y += alpha * x` (fused; bit-identical on every ISA).
    pub axpy_f32: fn(y: &mut [f32], alpha: f32, x: &[f32]),
    /// `y += alpha * f16(x)` (fused; bit-identical on every ISA).
    pub axpy_f16: fn(y: &mut [f32], alpha: f32, x: &[u8]),
    /// f32 to little-endian f16 bytes, round to nearest even; bit-identical on every ISA.
    pub f32_to_f16: fn(x: &[f32], out: &mut [u8]),
    /// `g = gelu_tanh(g) · u` (GeGLU); relative error ≤ ~1e-6 against the f64 reference.
    pub geglu: fn(g: &mut [f32], u: &[f32]),
    /// `g = silu(g) · u` (SwiGLU); within a few ulps of the f32 reference.
    pub swiglu: fn(g: &mut [f32], u: &[f32]),
    /// `x = gelu_erf(x)`; relative error ≤ ~1e-6 against the f64 reference.
    pub gelu_erf: fn(x: &mut [f32]),
    /// `x[i] = e^(x[i] − shift)`, returning Σ x[i]: softmax numerators
    /// (−inf entries become 0); within a few ulps of `f32::exp`.
    pub exp_sum: fn(x: &mut [f32], shift: f32) -> f32,
    /// `row = softmax(row · scale + bias)` in place (`bias`: 0 for kept
    /// positions, −inf for masked ones); a row with every position masked
    /// becomes zeros and the call returns false.
    pub softmax_row: fn(row: &mut [f32], scale: f32, bias: &[f32]) -> bool,
    /// Small f32 GEMM (attention blocks): `c[i·ldc + j] = Σ_p a[i·lda + p]·b[p·ldb + j]`
    /// for `(m, n, k)`; overwrites `c`. Order of the sums may differ between ISAs.
    pub gemm_f32: GemmF32Fn,
    /// `dst[j·ldd + i] = src[i·lds + j]` for `i < rows`, `j < cols` (attention's
    /// keys, GEMM outputs); exact copies, so every ISA gives the same bytes.
    pub transpose_f32: TransposeFn,
    /// `row = (row − mean) / sqrt(var + eps) · w + b` for one row (the
    /// variance of the centred values); within 2e-6 of the f64 reference.
    pub layer_norm_row: fn(row: &mut [f32], eps: f32, w: &[f32], b: &[f32]),
    /// Quantized GEMM (prefill): `out[r * ldo + t]` = row r of `w` · token t
    /// of `a`, for every row of `w` and every token of `a` (`a.len() / nb`
    /// tokens of `nb` blocks). ISAs with a register-blocked kernel decode each
    /// weight block once for several tokens; the others loop over the dots.
    pub gemm_q: GemmFn,
    /// Tokens per `gemm_q` call that suit its blocking: the register-blocked
    /// kernels keep a few tokens' activations in cache (64); the AVX-512 panel
    /// kernel decodes weights once per call, so it takes more.
    pub gemm_tokens: usize,
    /// Decodes a whole weight matrix once into the layout of this ISA's GEMM
    /// (`None`: the ISA has no packed GEMM). Repeated prefill and encoder runs
    /// then skip decoding; the matmul layer decides when it is worth the memory.
    pub pack_q: Option<PackFn>,
    /// The GEMM on weights from `pack_q` (same contract as `gemm_q` otherwise).
    pub gemm_packed: Option<GemmPackedFn>,
}

/// Signature of [`Kernels::dot4_q5_0`]: four rows · one token.
pub type Dot4Fn = fn(w: &[u8], a: &[BlockQ8]) -> [f32; 4];

/// Signature of [`Kernels::pack_q`]: `(kind, whole rows of weights, blocks per row)`.
pub type PackFn = fn(kind: QuantKind, w: &[u8], nb: usize) -> PackedWeights;

/// Signature of [`Kernels::gemm_packed`]: `(packed weights, activations, out, layout,
/// bias)`; `bias` (one value per weight row) is added to every token's results.
pub type GemmPackedFn =
    fn(w: &PackedWeights, a: &[BlockQ8], out: &mut [f32], lay: OutLayout, bias: Option<&[f32]>);

/// A weight matrix decoded once into one ISA's GEMM layout (`Kernels::pack_q`),
/// opaque outside the kernels. Costs memory beside the mapped file (Q8_0: 36
/// bytes per 32 values against 34; 4- and 5-bit formats roughly double).
pub struct PackedWeights {
    pub(crate) isa: Isa,
    pub(crate) kind: QuantKind,
    pub(crate) rows: usize,
    pub(crate) nb: usize,
    pub(crate) q: Vec<u8>,
    pub(crate) d: Vec<f32>,
    pub(crate) m: Vec<f32>,
}

impl PackedWeights {
    /// Weight rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// 32-value blocks per row.
    pub fn blocks(&self) -> usize {
        self.nb
    }

    /// The weights' format.
    pub fn kind(&self) -> QuantKind {
        self.kind
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.q.len() + 4 * (self.d.len() + self.m.len())
    }
}

impl fmt::Debug for PackedWeights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackedWeights")
            .field("isa", &self.isa)
            .field("kind", &self.kind)
            .field("rows", &self.rows)
            .field("nb", &self.nb)
            .finish_non_exhaustive()
    }
}

/// Signature of [`Kernels::gemm_q`]:
/// `(kind, weights, activations, blocks per row/token, out, where each result goes)`.
pub type GemmFn =
    fn(kind: QuantKind, w: &[u8], a: &[BlockQ8], nb: usize, out: &mut [f32], lay: OutLayout);

/// Signature of [`Kernels::transpose_f32`]: `(rows, cols, src, lds, dst, ldd)`.
pub type TransposeFn = fn(usize, usize, &[f32], usize, &mut [f32], usize);

/// Checks a `transpose_f32` call's slices against its shapes (once per call).
pub(crate) fn check_transpose(
    (rows, cols): (usize, usize),
    (src, lds): (&[f32], usize),
    (dst, ldd): (&[f32], usize),
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        cols <= lds && rows <= ldd,
        "transpose_f32: stride smaller than a row"
    );
    assert!(
        src.len() >= (rows - 1) * lds + cols,
        "transpose_f32: src too small"
    );
    assert!(
        dst.len() >= (cols - 1) * ldd + rows,
        "transpose_f32: dst too small"
    );
}

/// Signature of [`Kernels::gemm_f32`]: `(m, n, k, a, lda, b, ldb, c, ldc)`.
pub type GemmF32Fn = fn(usize, usize, usize, &[f32], usize, &[f32], usize, &mut [f32], usize);

/// Checks a small GEMM call's slices against its shapes (once per call); `what`
/// names the kernel in the panic message (`gemm_f32`, `gemm_bf16`).
pub(crate) fn check_gemm<T>(
    what: &str,
    (m, n, k): (usize, usize, usize),
    (a, lda): (&[T], usize),
    (b, ldb): (&[T], usize),
    (c, ldc): (&[f32], usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        k <= lda && n <= ldb && n <= ldc,
        "{what}: stride smaller than a row"
    );
    assert!(
        k == 0 || a.len() >= (m - 1) * lda + k,
        "{what}: a too small"
    );
    assert!(
        k == 0 || b.len() >= (k - 1) * ldb + n,
        "{what}: b too small"
    );
    assert!(c.len() >= (m - 1) * ldc + n, "{what}: c too small");
}

/// Where a GEMM writes the result for (weight row `r`, token `t`): row-major
/// `out[r * stride + t]`, or token-major `out[t * stride + r]` — the layout of
/// a matmul's output, which lets a task that owns a range of tokens write its
/// slice of the final tensor directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutLayout {
    /// Distance between consecutive rows (row-major) or tokens (token-major).
    pub stride: usize,
    /// Token-major when true.
    pub token_major: bool,
}

impl OutLayout {
    /// `out[r * stride + t]`.
    pub fn rows(stride: usize) -> OutLayout {
        OutLayout {
            stride,
            token_major: false,
        }
    }

    /// `out[t * stride + r]`.
    pub fn tokens(stride: usize) -> OutLayout {
        OutLayout {
            stride,
            token_major: true,
        }
    }

    /// Index of (row `r`, token `t`).
    #[inline(always)]
    pub fn at(self, r: usize, t: usize) -> usize {
        if self.token_major {
            t * self.stride + r
        } else {
            r * self.stride + t
        }
    }
}

/// Weight formats of the quantized dot products and GEMM (ggml's names).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantKind {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4_K,
    Q5_K,
    Q6_K,
}

impl QuantKind {
    /// Every format.
    pub const ALL: [QuantKind; 8] = [
        QuantKind::Q4_0,
        QuantKind::Q4_1,
        QuantKind::Q5_0,
        QuantKind::Q5_1,
        QuantKind::Q8_0,
        QuantKind::Q4_K,
        QuantKind::Q5_K,
        QuantKind::Q6_K,
    ];

    /// Bytes per storage block (32 values, or a 256-value K-quant super-block).
    pub fn block_bytes(self) -> usize {
        match self {
            QuantKind::Q4_0 => Q4_0_BLOCK_BYTES,
            QuantKind::Q4_1 => Q4_1_BLOCK_BYTES,
            QuantKind::Q5_0 => 22,
            QuantKind::Q5_1 => 24,
            QuantKind::Q8_0 => Q8_0_BLOCK_BYTES,
            QuantKind::Q4_K => 144,
            QuantKind::Q5_K => 176,
            QuantKind::Q6_K => 210,
        }
    }

    /// Values per storage block: 32, or 256 for the K-quants.
    pub fn block_len(self) -> usize {
        match self {
            QuantKind::Q4_K | QuantKind::Q5_K | QuantKind::Q6_K => 256,
            _ => QK,
        }
    }

    /// Bytes of a row of `nb` 32-value activation blocks, or None when `nb`
    /// is not a whole number of storage blocks.
    pub fn row_bytes(self, nb: usize) -> Option<usize> {
        let per = self.block_len() / QK;
        nb.is_multiple_of(per)
            .then(|| nb / per * self.block_bytes())
    }

    /// The table's dot product for this format.
    pub fn dot(self, k: &Kernels) -> fn(&[u8], &[BlockQ8]) -> f32 {
        match self {
            QuantKind::Q4_0 => k.dot_q4_0,
            QuantKind::Q4_1 => k.dot_q4_1,
            QuantKind::Q5_0 => k.dot_q5_0,
            QuantKind::Q5_1 => k.dot_q5_1,
            QuantKind::Q8_0 => k.dot_q8_0,
            QuantKind::Q4_K => k.dot_q4_k,
            QuantKind::Q5_K => k.dot_q5_k,
            QuantKind::Q6_K => k.dot_q6_k,
        }
    }
}

/// Checks the GEMM operands; returns (rows, tokens, row bytes).
pub(crate) fn gemm_shape(
    kind: QuantKind,
    w: &[u8],
    a: &[BlockQ8],
    nb: usize,
    out: &[f32],
    lay: OutLayout,
) -> (usize, usize, usize) {
    assert!(nb > 0, "gemm_q: no blocks");
    let rb = kind
        .row_bytes(nb)
        .expect("gemm_q: row is not whole storage blocks");
    assert_eq!(w.len() % rb, 0, "gemm_q: weights are not whole rows");
    gemm_shape_dims(w.len() / rb, rb, a, nb, out, lay)
}

/// [`gemm_shape`] for `rows` weight rows of `rb` bytes, wherever they are held.
pub(crate) fn gemm_shape_dims(
    rows: usize,
    rb: usize,
    a: &[BlockQ8],
    nb: usize,
    out: &[f32],
    lay: OutLayout,
) -> (usize, usize, usize) {
    assert!(nb > 0, "gemm_q: no blocks");
    assert_eq!(a.len() % nb, 0, "gemm_q: activations are not whole tokens");
    let tokens = a.len() / nb;
    if rows > 0 && tokens > 0 {
        let minor = if lay.token_major { rows } else { tokens };
        assert!(
            minor <= lay.stride,
            "gemm_q: stride {} < {minor}",
            lay.stride
        );
        assert!(
            out.len() > lay.at(rows - 1, tokens - 1),
            "gemm_q: output too small"
        );
    }
    (rows, tokens, rb)
}

/// GEMM as a loop of the table's dot products (ISAs without a blocked kernel).
pub(crate) fn gemm_by_dots(
    k: &Kernels,
    kind: QuantKind,
    w: &[u8],
    a: &[BlockQ8],
    nb: usize,
    out: &mut [f32],
    lay: OutLayout,
) {
    let (rows, tokens, rb) = gemm_shape(kind, w, a, nb, out, lay);
    let dot = kind.dot(k);
    for r in 0..rows {
        let wr = &w[r * rb..(r + 1) * rb];
        for t in 0..tokens {
            out[lay.at(r, t)] = dot(wr, &a[t * nb..(t + 1) * nb]);
        }
    }
}

impl fmt::Debug for Kernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernels")
            .field("isa", &self.isa)
            .finish_non_exhaustive()
    }
}

/// Length checks shared by every ISA's wrappers (one `assert_eq!` per call).
#[allow(dead_code)]
pub(crate) mod check {
    use super::{BlockQ8, QK};

    #[inline(always)]
    pub fn quantize(x: &[f32], out: &[BlockQ8]) {
        assert_eq!(
            x.len(),
            out.len() * QK,
            "quantize_q8: x.len() must be 32 * out.len()"
        );
    }

    #[inline(always)]
    pub fn quant_row(w: &[u8], a: &[BlockQ8], block_bytes: usize) {
        assert_eq!(
            w.len(),
            a.len() * block_bytes,
            "quantized dot: weight row length mismatch"
        );
    }

    /// A row of `kind` covering exactly the activation blocks `a`.
    #[inline(always)]
    pub fn kind_row(w: &[u8], a: &[BlockQ8], kind: super::QuantKind) {
        assert_eq!(
            Some(w.len()),
            kind.row_bytes(a.len()),
            "quantized dot: {kind:?} weight row length mismatch"
        );
    }

    #[inline(always)]
    pub fn same_len(a: usize, b: usize) {
        assert_eq!(a, b, "f32 kernel: length mismatch");
    }

    #[inline(always)]
    pub fn f16_len(bytes: usize, n: usize) {
        assert_eq!(
            bytes,
            2 * n,
            "f16 kernel: byte length must be 2 * element count"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;
    use proptest::prelude::*;

    /// A xorshift64 stream from `seed` (nonzero): the tests' reproducible
    /// pseudo-random numbers.
    pub(super) fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut st = seed;
        move || {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            st
        }
    }

    const U: f64 = 1.0 / (1u64 << 24) as f64; // unit roundoff of f32

    fn simd_isas() -> Vec<Isa> {
        Isa::supported()
            .into_iter()
            .filter(|&i| i != Isa::Scalar)
            .collect()
    }

    // ---------- generators ----------

    /// One block of 32 activations of a given flavour.
    fn act_block() -> impl Strategy<Value = Vec<f32>> {
        let scale = prop_oneof![
            Just(1e-3f32),
            Just(1.0f32),
            Just(7.5f32),
            Just(1e4f32),
            Just(1e18f32)
        ];
        prop_oneof![
            // random values at some scale
            4 => (scale.clone(), prop::collection::vec(-1.0f32..1.0, 32))
                .prop_map(|(s, v)| v.into_iter().map(|x| x * s).collect()),
            // random values with many exact zeros
            1 => (scale.clone(), prop::collection::vec(prop_oneof![Just(0.0f32), -1.0f32..1.0], 32))
                .prop_map(|(s, v)| v.into_iter().map(|x| x * s).collect()),
            // all zeros
            1 => Just(vec![0.0f32; 32]),
            // all equal
            1 => (scale, -1.0f32..1.0).prop_map(|(s, x)| vec![x * s; 32]),
            // small integers: exercises exact ties after scaling
            1 => prop::collection::vec(-127i32..=127, 32)
                .prop_map(|v| v.into_iter().map(|x| x as f32 * 0.5).collect()),
        ]
    }

    fn activations() -> impl Strategy<Value = Vec<f32>> {
        prop::collection::vec(act_block(), 1..=64).prop_map(|b| b.concat())
    }

    /// A finite f16 (any sign, subnormals included), biased towards ordinary scales.
    fn f16_bits() -> impl Strategy<Value = u16> {
        prop_oneof![
            4 => (-2.0f32..2.0).prop_map(|x| f16::from_f32(x * 0.05).to_bits()),
            1 => any::<u16>().prop_map(|b| if b & 0x7C00 == 0x7C00 { b & !0x4000 } else { b }),
            1 => Just(0u16),
        ]
    }

    fn nibbles() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => prop::collection::vec(any::<u8>(), 16),
            1 => any::<u8>().prop_map(|b| vec![b; 16]),
            1 => prop_oneof![Just(0x88u8), Just(0x00), Just(0xFF)].prop_map(|b| vec![b; 16]),
        ]
    }

    fn q4_0_row(nb: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec((f16_bits(), nibbles()), nb).prop_map(|blocks| {
            let mut out = Vec::new();
            for (d, qs) in blocks {
                out.extend_from_slice(&d.to_le_bytes());
                out.extend_from_slice(&qs);
            }
            out
        })
    }

    fn q4_1_row(nb: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec((f16_bits(), f16_bits(), nibbles()), nb).prop_map(|blocks| {
            let mut out = Vec::new();
            for (d, m, qs) in blocks {
                out.extend_from_slice(&d.to_le_bytes());
                out.extend_from_slice(&m.to_le_bytes());
                out.extend_from_slice(&qs);
            }
            out
        })
    }

    fn q8_0_row(nb: usize) -> impl Strategy<Value = Vec<u8>> {
        let qs = prop_oneof![
            4 => prop::collection::vec(any::<i8>(), 32),
            1 => any::<i8>().prop_map(|b| vec![b; 32]),
        ];
        prop::collection::vec((f16_bits(), qs), nb).prop_map(|blocks| {
            let mut out = Vec::new();
            for (d, qs) in blocks {
                out.extend_from_slice(&d.to_le_bytes());
                out.extend(qs.iter().map(|&q| q as u8));
            }
            out
        })
    }

    fn floats(scale: f32) -> impl Strategy<Value = f32> {
        prop_oneof![
            6 => (-1.0f32..1.0).prop_map(move |x| x * scale),
            1 => Just(0.0f32),
            1 => (-1.0f32..1.0).prop_map(|x| x * 1e12),
        ]
    }

    fn f32_pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
        (0usize..=300).prop_flat_map(|n| {
            (
                prop::collection::vec(floats(3.0), n),
                prop::collection::vec(floats(3.0), n),
            )
        })
    }

    fn f16_vec(n: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(f16_bits(), n)
            .prop_map(|v| v.iter().flat_map(|b| b.to_le_bytes()).collect())
    }

    // ---------- reference helpers ----------

    fn f16_at(b: &[u8], i: usize) -> f64 {
        f16::from_le_bytes([b[2 * i], b[2 * i + 1]]).to_f64()
    }

    /// Σ|terms| of a quantized dot (elementwise products plus Q4_1's offset term).
    fn abs_terms(kind: u8, w: &[u8], a: &[BlockQ8]) -> f64 {
        let mut t = 0.0;
        for (b, ab) in a.iter().enumerate() {
            let da = ab.d as f64;
            match kind {
                0 => {
                    let blk = &w[b * 18..];
                    let d = f16_at(blk, 0).abs();
                    for j in 0..16 {
                        let lo = (blk[2 + j] & 15) as f64 - 8.0;
                        let hi = (blk[2 + j] >> 4) as f64 - 8.0;
                        t += d * da * (lo * ab.qs[j] as f64).abs();
                        t += d * da * (hi * ab.qs[j + 16] as f64).abs();
                    }
                }
                1 => {
                    let blk = &w[b * 20..];
                    let d = f16_at(blk, 0).abs();
                    let m = f16_at(blk, 1).abs();
                    for j in 0..16 {
                        let lo = (blk[4 + j] & 15) as f64;
                        let hi = (blk[4 + j] >> 4) as f64;
                        t += d * da * (lo * ab.qs[j] as f64).abs();
                        t += d * da * (hi * ab.qs[j + 16] as f64).abs();
                    }
                    t += m * (ab.s as f64).abs();
                }
                _ => {
                    let blk = &w[b * 34..];
                    let d = f16_at(blk, 0).abs();
                    for j in 0..32 {
                        t += d * da * (blk[2 + j] as i8 as f64 * ab.qs[j] as f64).abs();
                    }
                }
            }
        }
        t
    }

    /// `n` random storage blocks of `kind` with finite, moderate f16 scales.
    fn random_row(kind: QuantKind, n: usize, next: &mut impl FnMut() -> u64) -> Vec<u8> {
        let bb = kind.block_bytes();
        let mut w = vec![0u8; n * bb];
        for blk in w.chunks_exact_mut(bb) {
            for x in blk.iter_mut() {
                *x = next() as u8;
            }
            let d = ((next() % 1000) as f32 - 500.0) / 3000.0;
            let (r1, r2) = (next(), next());
            let mut put =
                |o: usize, v: f32| blk[o..o + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
            match kind {
                QuantKind::Q6_K => put(208, d / 64.0),
                QuantKind::Q4_K | QuantKind::Q5_K => {
                    put(0, d / 32.0);
                    put(2, ((r1 % 100) as f32) / 3000.0);
                }
                QuantKind::Q4_1 | QuantKind::Q5_1 => {
                    put(0, d);
                    put(2, ((r2 % 200) as f32 - 100.0) / 1000.0);
                }
                _ => put(0, d),
            }
        }
        w
    }

    /// Σ|terms| of a dot of any format (through the scalar unpacking).
    fn kind_abs_terms(kind: QuantKind, w: &[u8], a: &[BlockQ8]) -> f64 {
        let (bb, per) = (kind.block_bytes(), kind.block_len() / 32);
        let mut t = 0.0;
        for (b, ab) in a.iter().enumerate() {
            let u = blocks::unpack(kind, &w[b / per * bb..(b / per + 1) * bb], b % per);
            for i in 0..32 {
                t += (u.d[i / 16] as f64 * u.q[i] as f64 * ab.d as f64 * ab.qs[i] as f64).abs();
            }
            t += (u.m as f64 * ab.s as f64).abs();
        }
        t
    }

    /// Tolerance for two f32 evaluations of the same sum of `n` terms in different
    /// orders: each is within (n + 8)·u·Σ|terms| of the exact value.
    fn tol(n: usize, abs_sum: f64) -> f64 {
        2.0 * (n as f64 + 8.0) * U * abs_sum + 1e-30
    }

    fn close(got: f32, want: f32, tol: f64) -> bool {
        ((got as f64) - (want as f64)).abs() <= tol
    }

    // ---------- plain tests ----------

    #[test]
    fn parse_names() {
        for isa in Isa::ALL {
            assert_eq!(Isa::parse(isa.name()), Ok(isa));
            assert_eq!(Isa::parse(&isa.name().to_uppercase()), Ok(isa));
            assert_eq!(Isa::parse(&format!("  {} ", isa.name())), Ok(isa));
            assert_eq!(isa.to_string(), isa.name());
        }
        assert!(Isa::parse("sse2").is_err());
        assert!(Isa::parse("").is_err());
        assert!(Isa::parse("avx-512").is_err());
        let e = Isa::parse("foo").unwrap_err();
        assert!(e.contains("foo") && e.contains("avx512"), "{e}");
    }

    #[test]
    fn select_like_env() {
        assert_eq!(Isa::select(None), Ok(Isa::best()));
        assert_eq!(Isa::select(Some("")), Ok(Isa::best()));
        assert_eq!(Isa::select(Some("  ")), Ok(Isa::best()));
        assert_eq!(Isa::select(Some("scalar")), Ok(Isa::Scalar));
        assert!(Isa::select(Some("bogus")).unwrap_err().contains("WISP_ISA"));
        for isa in Isa::ALL {
            let r = Isa::select(Some(isa.name()));
            if isa.is_supported() {
                assert_eq!(r, Ok(isa));
            } else {
                assert!(r.unwrap_err().contains("not supported"));
            }
        }
    }

    #[test]
    fn detection_is_consistent() {
        let sup = Isa::supported();
        assert!(sup.contains(&Isa::Scalar));
        assert!(sup.contains(&Isa::best()));
        assert_eq!(*sup.last().unwrap(), Isa::best());
        for isa in Isa::ALL {
            let k = isa.kernels();
            if isa.is_supported() {
                assert_eq!(k.isa, isa);
            } else {
                assert_eq!(k.isa, Isa::Scalar);
            }
        }
        #[cfg(target_arch = "x86_64")]
        if std::env::var_os("WISP_EXPECT_AVX512").is_some() {
            assert_eq!(Isa::best(), Isa::Avx512);
        }
        // E.g. `WISP_EXPECT_BEST=neondot` under `qemu-aarch64 -cpu max` and
        // `WISP_EXPECT_BEST=neon` under `-cpu cortex-a53`.
        if let Ok(name) = std::env::var("WISP_EXPECT_BEST") {
            assert_eq!(Isa::best().name(), name);
        }
    }

    #[test]
    fn quantize_ties_to_even_everywhere() {
        // amax = 127 makes d = 1 and 1/d = 1, so x is scaled exactly.
        let mut x = vec![0.0f32; 64];
        let vals = [
            127.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, -126.5, 126.5, 0.49999997, -0.0,
        ];
        let want = [127i8, 0, 2, 2, 0, -2, -2, 4, -126, 126, 0, 0];
        x[..vals.len()].copy_from_slice(&vals);
        x[32] = -127.0;
        x[33] = 64.5;
        for isa in Isa::supported() {
            let mut out = vec![BlockQ8::default(); 2];
            (isa.kernels().quantize_q8)(&x, &mut out);
            assert_eq!(out[0].d, 1.0, "{isa}");
            assert_eq!(&out[0].qs[..want.len()], &want, "{isa}");
            assert_eq!(out[1].qs[0], -127, "{isa}");
            assert_eq!(out[1].qs[1], 64, "{isa}");
            let sum: i32 = want.iter().map(|&q| q as i32).sum();
            assert_eq!(out[0].s, sum as f32, "{isa}");
        }
    }

    #[test]
    fn quantize_degenerate_blocks() {
        // zeros, a subnormal-only block (1/d would overflow) and huge values
        let mut x = vec![0.0f32; 96];
        x[40] = 1e-40;
        x[41] = -3e-39;
        for v in &mut x[64..] {
            *v = -3.0e38;
        }
        x[70] = 3.0e38;
        let mut want = vec![BlockQ8::default(); 3];
        scalar::quantize_q8(&x, &mut want);
        assert_eq!(want[0], BlockQ8::default());
        assert_eq!(want[1], BlockQ8::default());
        assert_eq!(want[2].qs[0], -127);
        assert_eq!(want[2].qs[6], 127);
        for isa in simd_isas() {
            let mut got = vec![
                BlockQ8 {
                    d: 9.0,
                    s: 9.0,
                    qs: [9; 32],
                    h: [9, 9]
                };
                3
            ];
            (isa.kernels().quantize_q8)(&x, &mut got);
            assert_eq!(got, want, "{isa}");
            // The same blocks inside whole groups of sixteen (the AVX-512 path
            // quantizes sixteen blocks at a time).
            let xs = x.repeat(11);
            let mut got = vec![BlockQ8::default(); 33];
            (isa.kernels().quantize_q8)(&xs, &mut got);
            assert_eq!(got, want.repeat(11), "{isa} in groups");
        }
    }

    /// Inputs whose every partial sum is exactly representable: all ISAs must
    /// agree bit for bit, which pins down tail handling at every length.
    #[test]
    fn exact_small_integer_dots_all_lengths() {
        for n in 0..=200usize {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 + 3) % 17) as f32 - 8.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 + 1) % 13) as f32 - 6.0).collect();
            let w16: Vec<u8> = b
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect();
            let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            for isa in Isa::supported() {
                let k = isa.kernels();
                assert_eq!((k.dot_f32)(&a, &b), want, "{isa} dot_f32 n={n}");
                assert_eq!((k.dot_f16_f32)(&w16, &a), want, "{isa} dot_f16_f32 n={n}");
            }
        }
    }

    #[test]
    fn exact_small_quant_dots_all_block_counts() {
        // d_w in {0.5, 1, 2}, d_a = 1: every block result and running sum is exact.
        for nb in 0..=40usize {
            let a: Vec<BlockQ8> = (0..nb)
                .map(|b| {
                    let mut qs = [0i8; 32];
                    for (i, q) in qs.iter_mut().enumerate() {
                        *q = (((b * 31 + i * 17) % 255) as i32 - 127) as i8;
                    }
                    let s = qs.iter().map(|&q| q as i32).sum::<i32>() as f32;
                    BlockQ8 {
                        d: 1.0,
                        s,
                        h: half_sums(&qs),
                        qs,
                    }
                })
                .collect();
            let dw = |b: usize| f16::from_f32([0.5f32, 1.0, 2.0][b % 3]).to_le_bytes();
            let mut w40 = Vec::new();
            let mut w41 = Vec::new();
            let mut w80 = Vec::new();
            for b in 0..nb {
                let qs: Vec<u8> = (0..16).map(|i| ((b * 13 + i * 29) % 256) as u8).collect();
                w40.extend_from_slice(&dw(b));
                w40.extend_from_slice(&qs);
                w41.extend_from_slice(&dw(b));
                w41.extend_from_slice(&f16::from_f32([-1.0f32, 0.5, 2.0][b % 3]).to_le_bytes());
                w41.extend_from_slice(&qs);
                w80.extend_from_slice(&dw(b));
                w80.extend((0..32).map(|i| (((b * 7 + i * 37) % 33) as i8 - 16) as u8));
            }
            // Premise: every partial sum in any order is a multiple of 0.5 below 2^23.
            for (kind, w) in [(0u8, &w40), (1, &w41), (2, &w80)] {
                assert!(abs_terms(kind, w, &a) < 8.0e6);
            }
            let want = (
                scalar::dot_q4_0(&w40, &a),
                scalar::dot_q4_1(&w41, &a),
                scalar::dot_q8_0(&w80, &a),
            );
            for isa in simd_isas() {
                let k = isa.kernels();
                assert_eq!((k.dot_q4_0)(&w40, &a), want.0, "{isa} q4_0 nb={nb}");
                assert_eq!((k.dot_q4_1)(&w41, &a), want.1, "{isa} q4_1 nb={nb}");
                assert_eq!((k.dot_q8_0)(&w80, &a), want.2, "{isa} q8_0 nb={nb}");
            }
        }
    }

    #[test]
    fn unaligned_weight_rows() {
        let x: Vec<f32> = (0..32 * 9)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
            .collect();
        let mut a = vec![BlockQ8::default(); 9];
        scalar::quantize_q8(&x, &mut a);
        let raw: Vec<u8> = (0..34 * 9 + 8)
            .map(|i| (i * 97 % 251) as u8 & 0xBF)
            .collect();
        for off in 0..4 {
            let w40 = &raw[off..off + 18 * 9];
            let w41 = &raw[off..off + 20 * 9];
            let w80 = &raw[off..off + 34 * 9];
            let w16 = &raw[off..off + 2 * 100];
            for isa in simd_isas() {
                let k = isa.kernels();
                let t = |kind, w| tol(9 * 32, abs_terms(kind, w, &a));
                assert!(close(
                    (k.dot_q4_0)(w40, &a),
                    scalar::dot_q4_0(w40, &a),
                    t(0, w40)
                ));
                assert!(close(
                    (k.dot_q4_1)(w41, &a),
                    scalar::dot_q4_1(w41, &a),
                    t(1, w41)
                ));
                assert!(close(
                    (k.dot_q8_0)(w80, &a),
                    scalar::dot_q8_0(w80, &a),
                    t(2, w80)
                ));
                let mut y = x[..100].to_vec();
                let mut y_ref = y.clone();
                (k.axpy_f16)(&mut y, 0.75, w16);
                scalar::axpy_f16(&mut y_ref, 0.75, w16);
                assert_eq!(y, y_ref, "{isa} axpy_f16 off={off}");
            }
        }
    }

    #[test]
    #[should_panic]
    fn wrong_length_panics() {
        let a = vec![BlockQ8::default(); 2];
        let w = vec![0u8; 35];
        (Isa::best().kernels().dot_q4_0)(&w, &a);
    }

    #[test]
    fn f32_to_f16_special_values() {
        // overflow to inf, f16 subnormals, exact ties (1 + 2^-11 and 1 + 3·2^-11 round to even)
        let tie = 1.0 / 2048.0;
        let x = [
            0.0f32,
            -0.0,
            1.0,
            65504.0,
            65520.0,
            1e9,
            -1e9,
            f32::INFINITY,
            f32::NEG_INFINITY,
            5.960_464_5e-8,
            2.980_232_2e-8,
            2.980_232_6e-8,
            1e-10,
            0.333_333,
            1.0 + tie,
            1.0 + 3.0 * tie,
            -1.0 - tie,
            2.0 * tie,
        ];
        let mut want = vec![0u8; 2 * x.len()];
        scalar::f32_to_f16(&x, &mut want);
        for isa in simd_isas() {
            let mut got = vec![0u8; 2 * x.len()];
            (isa.kernels().f32_to_f16)(&x, &mut got);
            assert_eq!(got, want, "{isa}");
        }
    }

    // ---------- property tests: every ISA against scalar ----------

    /// The four-row Q5_0 dot (where an ISA has one) equals four single-row
    /// dots within the reordering bound.
    #[test]
    fn dot4_q5_0_matches_dots() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
        for nb in [1usize, 3, 20, 64] {
            let w = random_row(QuantKind::Q5_0, 4 * nb, &mut next);
            let x: Vec<f32> = (0..nb * 32)
                .map(|_| ((next() % 2001) as f32 - 1000.0) / 100.0)
                .collect();
            let mut a = vec![BlockQ8::default(); nb];
            scalar::quantize_q8(&x, &mut a);
            let rb = nb * QuantKind::Q5_0.block_bytes();
            for isa in Isa::supported() {
                let Some(dot4) = isa.kernels().dot4_q5_0 else {
                    continue;
                };
                let got = dot4(&w, &a);
                for r in 0..4 {
                    let wr = &w[r * rb..(r + 1) * rb];
                    let want = scalar::dot_kind::<2>(wr, &a);
                    let t = tol(nb * 32, kind_abs_terms(QuantKind::Q5_0, wr, &a));
                    assert!(
                        close(got[r], want, t),
                        "{isa} nb {nb} row {r}: {} vs {want}",
                        got[r]
                    );
                }
            }
        }
    }

    /// The SIMD row softmax matches the scalar one (within 1e-6 relative per
    /// entry), masks exactly, and zeroes an all-masked row.
    #[test]
    fn softmax_row_matches_scalar() {
        for n in [1usize, 7, 8, 9, 128, 131] {
            let x: Vec<f32> = (0..n).map(|i| ((i * 37) % 23) as f32 * 0.7 - 8.0).collect();
            let bias: Vec<f32> = (0..n)
                .map(|i| if i % 5 == 3 { f32::NEG_INFINITY } else { 0.0 })
                .collect();
            let mut want = x.clone();
            assert!(scalar::softmax_row(&mut want, 0.125, &bias));
            for isa in Isa::supported() {
                let mut got = x.clone();
                assert!((isa.kernels().softmax_row)(&mut got, 0.125, &bias));
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-6 * w.abs() + 1e-12,
                        "{isa} n {n} [{i}] {g} vs {w}"
                    );
                    if i % 5 == 3 {
                        assert_eq!(*g, 0.0);
                    }
                }
                let mut all = x.clone();
                assert!(!(isa.kernels().softmax_row)(
                    &mut all,
                    0.125,
                    &vec![f32::NEG_INFINITY; n]
                ));
                assert!(all.iter().all(|&v| v == 0.0));
            }
        }
    }

    /// Every ISA's f32 GEMM equals the scalar triple loop within the
    /// reordering bound, for ragged shapes and padded strides.
    #[test]
    fn gemm_f32_matches_scalar() {
        let mut bits = xorshift(0x9e37_79b9_7f4a_7c15u64);
        let mut next = move || ((bits() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 17, 5),
            (4, 16, 32),
            (7, 33, 64),
            (13, 128, 32),
            (5, 15, 0),
        ] {
            let (lda, ldb, ldc) = (k + 3, n + 5, n + 1);
            let a: Vec<f32> = (0..m * lda).map(|_| next()).collect();
            let b: Vec<f32> = (0..k.max(1) * ldb).map(|_| next()).collect();
            let mut want = vec![9.0f32; m * ldc];
            scalar::gemm_f32(m, n, k, &a, lda, &b, ldb, &mut want, ldc);
            for isa in Isa::supported() {
                let mut got = vec![9.0f32; m * ldc];
                (isa.kernels().gemm_f32)(m, n, k, &a, lda, &b, ldb, &mut got, ldc);
                for i in 0..m {
                    for j in 0..ldc {
                        let (g, w) = (got[i * ldc + j], want[i * ldc + j]);
                        if j >= n {
                            assert_eq!(g, 9.0, "{isa}: wrote past n");
                            continue;
                        }
                        let abs: f32 = (0..k)
                            .map(|p| (a[i * lda + p] * b[p * ldb + j]).abs())
                            .sum();
                        assert!(
                            (g - w).abs() <= 2.0 * (k as f32 + 2.0) * f32::EPSILON * abs,
                            "{isa} ({m},{n},{k}) [{i},{j}] {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    /// The SIMD `exp_sum` stays within 4 ulps (relative 5e-7) of `f32::exp`
    /// per element and its sum within 1e-6 relative, −inf giving exact zeros.
    #[test]
    fn exp_sum_matches_scalar() {
        for n in [0usize, 1, 7, 8, 9, 100, 1027] {
            let mut x: Vec<f32> = (0..n)
                .map(|i| ((i * 7919) % 4001) as f32 * 0.05 - 150.0)
                .collect();
            if n > 3 {
                x[3] = f32::NEG_INFINITY;
            }
            let shift = x
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max)
                .max(-1.0);
            let mut want = x.clone();
            let ws = scalar::exp_sum(&mut want, shift);
            for isa in Isa::supported() {
                let mut got = x.clone();
                let gs = (isa.kernels().exp_sum)(&mut got, shift);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 5e-7 * w.abs() + 1e-37, "{isa}: {g} vs {w}");
                }
                assert!((gs - ws).abs() <= 1e-6 * ws.abs(), "{isa} sum {gs} vs {ws}");
                if n > 3 {
                    assert_eq!(got[3], 0.0);
                }
            }
        }
    }

    /// The SIMD SwiGLU stays within 1e-6 relative (plus a tiny absolute term
    /// for underflowing tails) of the reference, over [−100, 100].
    #[test]
    fn swiglu_matches_reference() {
        let g: Vec<f32> = (-20_000..=20_001).map(|i| i as f32 * 5e-3).collect();
        let u: Vec<f32> = g.iter().map(|v| 0.5 + (v * 3.0).sin()).collect();
        let mut want = g.clone();
        scalar::swiglu(&mut want, &u);
        for isa in Isa::supported() {
            let mut got = g.clone();
            (isa.kernels().swiglu)(&mut got, &u);
            for i in 0..g.len() {
                let (x, w) = (got[i], want[i]);
                assert!(
                    x == w || ((x - w) as f64).abs() <= 1e-6 * w.abs() as f64 + 1e-30,
                    "{isa} swiglu({}) = {x}, reference {w}",
                    g[i]
                );
            }
        }
    }

    /// Every ISA's transpose is an exact copy, for every shape around the
    /// 16×16 tiles (edges on either side) and with padded strides.
    #[test]
    fn transpose_f32_every_shape() {
        for rows in [0usize, 1, 15, 16, 17, 32, 40, 128] {
            for cols in [0usize, 1, 7, 16, 31, 32, 33, 64] {
                let (lds, ldd) = (cols + 3, rows + 5);
                let src: Vec<f32> = (0..rows * lds).map(|i| i as f32 * 0.5 - 7.0).collect();
                for isa in Isa::supported() {
                    let mut dst = vec![-1.0f32; cols * ldd];
                    (isa.kernels().transpose_f32)(rows, cols, &src, lds, &mut dst, ldd);
                    for j in 0..cols {
                        for i in 0..ldd {
                            let want = if i < rows { src[i * lds + j] } else { -1.0 };
                            assert_eq!(dst[j * ldd + i], want, "{isa} {rows}x{cols} [{i},{j}]");
                        }
                    }
                }
            }
        }
    }

    /// The SIMD GELUs stay within 2e-6 relative of it (plus 1e-12 absolute: the
    /// f64 reference rounds erf to ±1 past |x| ≈ 8.3), over a dense sweep of
    /// [−20, 20], the tails and odd lengths; AVX-512's table-driven erf-GELU
    /// within 2e-6 relative or 3e-8 absolute (its negative tail past x ≈ −3,
    /// where |GELU| < 5e-3, is exact to 3e-8 absolute rather than relatively:
    /// far below what an int8 block or an f32 sum of such values resolves).
    #[test]
    fn gelu_kernels_match_reference() {
        let mut x: Vec<f32> = (-40_000..=40_000).map(|i| i as f32 * 5e-4).collect();
        x.extend([
            1e-30f32, -1e-30, 0.0, -0.0, 1e-5, -1e-5, 50.0, -50.0, 1e4, -1e4, 3e38, -3e38,
        ]);
        x.push(0.7); // odd length: exercises the tail
        let up: Vec<f32> = x.iter().map(|v| 1.0 + v.abs().min(3.0)).collect();
        let mut want_t = x.clone();
        scalar::geglu(&mut want_t, &up);
        let mut want_e = x.clone();
        scalar::gelu_erf(&mut want_e);
        for isa in Isa::supported() {
            let k = isa.kernels();
            let mut got_t = x.clone();
            (k.geglu)(&mut got_t, &up);
            let mut got_e = x.clone();
            (k.gelu_erf)(&mut got_e);
            for i in 0..x.len() {
                for (name, g, w) in [
                    ("geglu", got_t[i], want_t[i]),
                    ("gelu_erf", got_e[i], want_e[i]),
                ] {
                    let abs = if name == "gelu_erf" && isa == Isa::Avx512 {
                        3e-8
                    } else {
                        1e-12
                    };
                    let tol = 2e-6 * w.abs() as f64 + abs;
                    assert!(
                        g == w || ((g - w) as f64).abs() <= tol,
                        "{isa} {name}({}) = {g}, reference {w}",
                        x[i]
                    );
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn quantize_identical(x in activations()) {
            let nb = x.len() / 32;
            let mut want = vec![BlockQ8::default(); nb];
            scalar::quantize_q8(&x, &mut want);
            for isa in simd_isas() {
                let mut got = vec![BlockQ8::default(); nb];
                (isa.kernels().quantize_q8)(&x, &mut got);
                prop_assert_eq!(&got, &want, "{}", isa);
            }
        }

        #[test]
        fn quant_dots_match_scalar(
            (x, w40, w41, w80) in (1usize..=64).prop_flat_map(|nb| (
                prop::collection::vec(act_block(), nb).prop_map(|b| b.concat()),
                q4_0_row(nb), q4_1_row(nb), q8_0_row(nb)))
        ) {
            let nb = x.len() / 32;
            let mut a = vec![BlockQ8::default(); nb];
            scalar::quantize_q8(&x, &mut a);
            let r = (scalar::dot_q4_0(&w40, &a), scalar::dot_q4_1(&w41, &a), scalar::dot_q8_0(&w80, &a));
            let t = (tol(nb, abs_terms(0, &w40, &a)), tol(nb, abs_terms(1, &w41, &a)),
                     tol(nb, abs_terms(2, &w80, &a)));
            for isa in simd_isas() {
                let k = isa.kernels();
                let g = ((k.dot_q4_0)(&w40, &a), (k.dot_q4_1)(&w41, &a), (k.dot_q8_0)(&w80, &a));
                prop_assert!(close(g.0, r.0, t.0), "{} q4_0 {} vs {} tol {}", isa, g.0, r.0, t.0);
                prop_assert!(close(g.1, r.1, t.1), "{} q4_1 {} vs {} tol {}", isa, g.1, r.1, t.1);
                prop_assert!(close(g.2, r.2, t.2), "{} q8_0 {} vs {} tol {}", isa, g.2, r.2, t.2);
            }
        }

        #[test]
        fn dot_f32_matches_scalar((a, b) in f32_pair()) {
            let want = scalar::dot_f32(&a, &b);
            let abs: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 * *y as f64).abs()).sum();
            for isa in simd_isas() {
                let got = (isa.kernels().dot_f32)(&a, &b);
                prop_assert!(close(got, want, tol(a.len(), abs)), "{} {} vs {}", isa, got, want);
            }
        }

        #[test]
        fn dot_f16_matches_scalar(
            (w, x) in (0usize..=300).prop_flat_map(|n| (f16_vec(n), prop::collection::vec(floats(3.0), n)))
        ) {
            let want = scalar::dot_f16_f32(&w, &x);
            let abs: f64 = x.iter().enumerate().map(|(i, v)| (f16_at(&w, i) * *v as f64).abs()).sum();
            for isa in simd_isas() {
                let got = (isa.kernels().dot_f16_f32)(&w, &x);
                prop_assert!(close(got, want, tol(x.len(), abs)), "{} {} vs {}", isa, got, want);
            }
        }

        #[test]
        fn axpy_identical(
            (y, x, w) in (0usize..=300).prop_flat_map(|n| (
                prop::collection::vec(floats(5.0), n), prop::collection::vec(floats(5.0), n), f16_vec(n))),
            alpha in prop_oneof![Just(0.0f32), Just(1.0f32), -4.0f32..4.0],
        ) {
            let mut y32 = y.clone();
            let mut y16 = y.clone();
            scalar::axpy_f32(&mut y32, alpha, &x);
            scalar::axpy_f16(&mut y16, alpha, &w);
            for isa in simd_isas() {
                let k = isa.kernels();
                let mut g32 = y.clone();
                let mut g16 = y.clone();
                (k.axpy_f32)(&mut g32, alpha, &x);
                (k.axpy_f16)(&mut g16, alpha, &w);
                prop_assert_eq!(&g32, &y32, "{} axpy_f32", isa);
                prop_assert_eq!(&g16, &y16, "{} axpy_f16", isa);
            }
        }

        #[test]
        fn f32_to_f16_identical(
            x in prop::collection::vec(prop_oneof![
                4 => -70000.0f32..70000.0,
                2 => -1e-3f32..1e-3,
                1 => -1e-6f32..1e-6,
                1 => any::<u32>().prop_map(f32::from_bits).prop_filter("finite", |v| v.is_finite()),
            ], 0..=300)
        ) {
            let mut want = vec![0u8; 2 * x.len()];
            scalar::f32_to_f16(&x, &mut want);
            for isa in simd_isas() {
                let mut got = vec![0u8; 2 * x.len()];
                (isa.kernels().f32_to_f16)(&x, &mut got);
                prop_assert_eq!(&got, &want, "{}", isa);
            }
        }
    }

    /// Timing of each ISA's `gemm_q` against its dot-product loop on the model's
    /// prefill shapes (single thread, 64 tokens, or `WISP_BENCH_TOKENS`). Run with
    /// `cargo test --release -p wisp-backend-cpu gemm_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn gemm_speed() {
        use std::time::Instant;
        let tokens: usize = std::env::var("WISP_BENCH_TOKENS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64);
        for (rows, k) in [
            (384usize, 384usize),
            (1536, 384),
            (384, 1536),
            (1536, 576),
            (576, 1536),
            (2048, 768),
            (640, 2048),
        ] {
            let nb = k / 32;
            let x: Vec<f32> = (0..tokens * k)
                .map(|i| ((i * 7919 % 2001) as f32 - 1000.0) / 97.0)
                .collect();
            let mut a = vec![BlockQ8::default(); tokens * nb];
            (Isa::Scalar.kernels().quantize_q8)(&x, &mut a);
            for kind in QuantKind::ALL {
                let Some(rb) = kind.row_bytes(nb) else {
                    continue;
                };
                let mut next = xorshift(12345u64);
                let w = random_row(kind, rows * rb / kind.block_bytes(), &mut next);
                let mut out = vec![0f32; rows * tokens];
                for isa in simd_isas() {
                    let kt = isa.kernels();
                    let mut time = |f: &mut dyn FnMut(&mut [f32])| {
                        let mut best = f64::MAX;
                        for _ in 0..15 {
                            let t0 = Instant::now();
                            f(&mut out);
                            best = best.min(t0.elapsed().as_secs_f64());
                        }
                        best
                    };
                    let tg =
                        time(&mut |o| (kt.gemm_q)(kind, &w, &a, nb, o, OutLayout::rows(tokens)));
                    let td = time(&mut |o| {
                        gemm_by_dots(kt, kind, &w, &a, nb, o, OutLayout::rows(tokens))
                    });
                    let gops = 2.0 * (rows * k * tokens) as f64 * 1e-9;
                    println!(
                        "{:7} {kind:?} rows={rows:5} K={k:5}: gemm_q {:7.3} ms ({:6.1} GOP/s)  dots {:7.3} ms ({:6.1} GOP/s)  x{:.2}",
                        isa.name(), tg * 1e3, gops / tg, td * 1e3, gops / td, td / tg
                    );
                }
            }
        }
    }

    /// Extreme codes (|a| = 127; Q8_0 weights −128 and 127; nibbles 0 and 15)
    /// with power-of-two scales: every partial sum is an exact multiple of 1/4
    /// below 2^22, so each ISA's GEMM must equal the scalar dot loop bit for
    /// bit. Catches i16 saturation in the blocked kernels.
    #[test]
    fn gemm_extreme_codes_exact() {
        let (rows, tokens, nb) = (9, 13, 3);
        let h = |v: f32| f16::from_f32(v).to_le_bytes();
        let mut a = vec![BlockQ8::default(); tokens * nb];
        for (i, ab) in a.iter_mut().enumerate() {
            for (j, q) in ab.qs.iter_mut().enumerate() {
                *q = match i % 4 {
                    0 => 127,
                    1 => -127,
                    2 if j % 2 == 0 => 127,
                    2 => -127,
                    _ => [127, -127, 0, 5][j % 4],
                };
            }
            ab.d = [1.0, 0.5][i % 2];
            ab.s = ab.d * ab.qs.iter().map(|&q| q as i32).sum::<i32>() as f32;
            ab.h = half_sums(&ab.qs);
        }
        for kind in [QuantKind::Q4_0, QuantKind::Q4_1, QuantKind::Q8_0] {
            let bb = kind.block_bytes();
            let mut w = vec![0u8; rows * nb * bb];
            for (i, blk) in w.chunks_exact_mut(bb).enumerate() {
                blk[0..2].copy_from_slice(&h([1.0, 2.0, 0.5][i % 3]));
                let off = if kind == QuantKind::Q4_1 {
                    blk[2..4].copy_from_slice(&h([-1.0, 0.5][i % 2]));
                    4
                } else {
                    2
                };
                for (j, q) in blk[off..].iter_mut().enumerate() {
                    *q = if kind == QuantKind::Q8_0 {
                        [0x80, 0x7F, [0x80, 0x7F][j % 2], [0x80, 0x00][j % 2]][i % 4]
                    } else {
                        [0xFF, 0x00, [0xF0, 0x0F][j % 2], [0xFF, 0x08][j % 2]][i % 4]
                    };
                }
            }
            let mut want = vec![0f32; rows * tokens];
            gemm_by_dots(
                Isa::Scalar.kernels(),
                kind,
                &w,
                &a,
                nb,
                &mut want,
                OutLayout::rows(tokens),
            );
            for isa in Isa::supported() {
                let mut got = vec![0f32; rows * tokens];
                (isa.kernels().gemm_q)(kind, &w, &a, nb, &mut got, OutLayout::rows(tokens));
                assert_eq!(got, want, "{isa} {kind:?}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// The blocked GEMM equals the dot-product loop (same integer sums; float
        /// order may differ) for every ISA, format, and ragged shape.
        #[test]
        fn gemm_matches_dot_loop(
            rows in 1usize..40, tokens in 1usize..20, nsb in 1usize..4, seed in any::<u64>(), kind_i in 0usize..8,
        ) {
            let kind = QuantKind::ALL[kind_i];
            let mut next = xorshift(seed | 1);
            let nb = nsb * kind.block_len() / 32;
            let w = random_row(kind, rows * nsb, &mut next);
            let x: Vec<f32> = (0..tokens * nb * 32).map(|_| ((next() % 2001) as f32 - 1000.0) / 100.0).collect();
            let mut a = vec![BlockQ8::default(); tokens * nb];
            (Isa::Scalar.kernels().quantize_q8)(&x, &mut a);
            let ldo = tokens + 3;
            let mut want = vec![0f32; rows * ldo];
            gemm_by_dots(Isa::Scalar.kernels(), kind, &w, &a, nb, &mut want, OutLayout::rows(ldo));
            let rb = kind.row_bytes(nb).unwrap();
            for isa in Isa::supported() {
                // The padding columns t >= tokens must stay untouched.
                let mut got = vec![-7.0f32; rows * ldo];
                (isa.kernels().gemm_q)(kind, &w, &a, nb, &mut got, OutLayout::rows(ldo));
                // The token-major layout holds the same values.
                let mut got_t = vec![0f32; tokens * (rows + 2)];
                (isa.kernels().gemm_q)(kind, &w, &a, nb, &mut got_t, OutLayout::tokens(rows + 2));
                for r in 0..rows { for t in 0..tokens {
                    prop_assert_eq!(got_t[t * (rows + 2) + r], got[r * ldo + t], "{} {:?} token-major [{},{}]", isa.name(), kind, r, t);
                }}
                // Packed weights give the same values (the panel kernel's, bit for bit).
                if let (Some(pack), Some(gemm_packed)) = (isa.kernels().pack_q, isa.kernels().gemm_packed) {
                    let pw = pack(kind, &w, nb);
                    prop_assert_eq!((pw.rows(), pw.blocks(), pw.kind()), (rows, nb, kind));
                    let mut got_p = vec![-7.0f32; tokens * (rows + 2)];
                    gemm_packed(&pw, &a, &mut got_p, OutLayout::tokens(rows + 2), None);
                    for r in 0..rows { for t in 0..tokens {
                        let (g, e) = (got_p[t * (rows + 2) + r], want[r * ldo + t]);
                        let ab = &a[t * nb..(t + 1) * nb];
                        let tol = tol(nb * 32, kind_abs_terms(kind, &w[r * rb..(r + 1) * rb], ab));
                        prop_assert!(close(g, e, tol), "{} {kind:?} packed [{r},{t}] {g} vs {e}", isa.name());
                    }}
                    for t in 0..tokens { for r in rows..rows + 2 {
                        prop_assert_eq!(got_p[t * (rows + 2) + r], -7.0, "packed wrote padding");
                    }}
                    // With a bias: the same values plus the bias, bit for bit.
                    let bias: Vec<f32> = (0..rows).map(|r| r as f32 * 0.25 - 3.0).collect();
                    let mut got_b = vec![-7.0f32; tokens * (rows + 2)];
                    gemm_packed(&pw, &a, &mut got_b, OutLayout::tokens(rows + 2), Some(&bias));
                    for t in 0..tokens { for r in 0..rows + 2 {
                        let i = t * (rows + 2) + r;
                        let want = bias.get(r).map_or(-7.0, |b| got_p[i] + b);
                        prop_assert_eq!(got_b[i].to_bits(), want.to_bits(), "{} {:?} bias [{},{}]", isa.name(), kind, r, t);
                    }}
                }
                for r in 0..rows { for t in 0..ldo {
                    let (g, e) = (got[r * ldo + t], want[r * ldo + t]);
                    if t >= tokens {
                        prop_assert_eq!(g, -7.0, "{} {:?} wrote padding [{},{}]", isa.name(), kind, r, t);
                        continue;
                    }
                    let ab = &a[t * nb..(t + 1) * nb];
                    let tol = tol(nb * 32, kind_abs_terms(kind, &w[r * rb..(r + 1) * rb], ab));
                    prop_assert!(close(g, e, tol), "{} {kind:?} [{r},{t}] {g} vs {e}", isa.name());
                }}
            }
        }

        /// Every ISA's dot product of every format agrees with the scalar
        /// unpacking reference within the reordering bound.
        #[test]
        fn kind_dots_match_scalar(kind_i in 0usize..8, nsb in 1usize..6, seed in any::<u64>()) {
            let kind = QuantKind::ALL[kind_i];
            let mut next = xorshift(seed | 1);
            let nb = nsb * kind.block_len() / 32;
            let w = random_row(kind, nsb, &mut next);
            let x: Vec<f32> = (0..nb * 32).map(|_| ((next() % 2001) as f32 - 1000.0) / 100.0).collect();
            let mut a = vec![BlockQ8::default(); nb];
            (Isa::Scalar.kernels().quantize_q8)(&x, &mut a);
            let unpacked: f64 = (0..nb).map(|b| {
                let bb = kind.block_bytes();
                let per = kind.block_len() / 32;
                let u = blocks::unpack(kind, &w[b / per * bb..(b / per + 1) * bb], b % per);
                (0..32).map(|i| (u.d[i / 16] as f64 * u.q[i] as f64 + u.m as f64) * a[b].d as f64 * a[b].qs[i] as f64).sum::<f64>()
            }).sum();
            let t = tol(nb * 32, kind_abs_terms(kind, &w, &a));
            for isa in Isa::supported() {
                let got = kind.dot(isa.kernels())(&w, &a);
                prop_assert!((got as f64 - unpacked).abs() <= t, "{} {:?}: {} vs {} tol {}", isa, kind, got, unpacked, t);
            }
        }
    }
}
#[cfg(test)]
mod gemm_f32_speed {
    use super::*;
    /// `cargo test --release -p wisp-backend-cpu gemm_f32_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn gemm_f32_speed() {
        for &(m, n, k) in &[(128usize, 128usize, 32usize), (128, 32, 128)] {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let mut c = vec![0f32; m * n];
            for isa in Isa::supported() {
                let kk = isa.kernels();
                let mut best = f64::MAX;
                for _ in 0..200 {
                    let t0 = std::time::Instant::now();
                    (kk.gemm_f32)(m, n, k, &a, k, &b, n, &mut c, n);
                    best = best.min(t0.elapsed().as_secs_f64());
                }
                println!(
                    "{isa} ({m},{n},{k}): {:.1} us, {:.1} GMAC/s",
                    best * 1e6,
                    (m * n * k) as f64 / best * 1e-9
                );
                if let Some(bk) = bf16::Bf16Kernels::for_isa(isa) {
                    let kp = k / 2;
                    let ap: Vec<u32> = (0..m * kp)
                        .map(|i| 0x3F80_3F80 ^ (i as u32 & 0x0007_0007))
                        .collect();
                    let bp: Vec<u32> = (0..kp * n)
                        .map(|i| 0x3F80_3F80 ^ (i as u32 & 0x0007_0007))
                        .collect();
                    let mut best = f64::MAX;
                    for _ in 0..200 {
                        let t0 = std::time::Instant::now();
                        (bk.gemm)(m, n, kp, &ap, kp, &bp, n, &mut c, n);
                        best = best.min(t0.elapsed().as_secs_f64());
                    }
                    println!(
                        "{isa} bf16 ({m},{n},{k}): {:.1} us, {:.1} GMAC/s",
                        best * 1e6,
                        (m * n * k) as f64 / best * 1e-9
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod elementwise_speed {
    use super::*;

    /// Per-element kernels at MiniLM's sizes (one layer's FFN activations, one
    /// matmul's input), every ISA:
    /// `cargo test --release -p wisp-backend-cpu elementwise_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn elementwise_speed() {
        let n = 128 * 1536;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 4.0).collect();
        let best = |f: &mut dyn FnMut()| {
            let mut best = f64::MAX;
            for _ in 0..200 {
                let t0 = std::time::Instant::now();
                f();
                best = best.min(t0.elapsed().as_secs_f64());
            }
            best
        };
        for isa in Isa::supported() {
            let k = isa.kernels();
            let mut y = x.clone();
            let g = best(&mut || {
                y.copy_from_slice(&x);
                (k.gelu_erf)(&mut y)
            });
            let mut q = vec![BlockQ8::default(); n / 32];
            let qt = best(&mut || (k.quantize_q8)(&x, &mut q));
            println!(
                "{isa}: gelu_erf {:.2} ns/value, quantize_q8 {:.3} ns/value",
                g * 1e9 / n as f64,
                qt * 1e9 / n as f64
            );
        }
    }
}
