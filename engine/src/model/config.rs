//! Hyperparameters of a decoder, read from GGUF metadata and checked before
//! anything is sized by them: llama conventions, plus what Gemma 3 adds
//! (a head size of its own, sliding-window layers with their own rope base).

use wisp_formats::GgufFile;
use wisp_ops::RopeMode;

use crate::EngineError;

/// Upper bounds that keep a hostile file from sizing huge allocations.
const MAX_LAYERS: u64 = 1024;
const MAX_DIM: u64 = 1 << 17;
const MAX_HEADS: u64 = 1024;

/// Rope base of Gemma 3's sliding-window layers (llama.cpp's
/// `rope_freq_base_train_swa`; the file's `rope.freq_base` is the global layers').
const GEMMA3_ROPE_BASE_SWA: f32 = 10_000.0;
/// Gemma 3: every 6th layer (index 5, 11, ...) attends globally, the others
/// through the sliding window (llama.cpp's `set_swa_pattern(6)`).
const GEMMA3_SWA_PATTERN: usize = 6;
/// Gemma 3 27B (62 layers) scales attention by 1/√(n_embd / n_head) instead of
/// 1/√head_dim (its `query_pre_attn_scalar`; llama.cpp tells it by the layer count).
const GEMMA3_27B_LAYERS: usize = 62;

/// A decoder's shape: the llama family and Gemma 3.
#[derive(Clone, Debug, PartialEq)]
pub struct DecoderConfig {
    pub arch: String,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub n_vocab: usize,
    pub n_ctx_train: usize,
    pub rope_base: f32,
    pub rope_dims: usize,
    pub rope_mode: RopeMode,
    pub rms_eps: f32,
    /// Attention score scale (1/√head_dim unless the architecture says otherwise).
    pub attn_scale: f32,
    /// Sliding-window attention: the window (`{arch}.attention.sliding_window`), if any.
    pub sliding_window: Option<usize>,
    /// With a window, layer `l` is global when `l % swa_pattern == swa_pattern − 1`
    /// and windowed otherwise.
    pub swa_pattern: usize,
    /// Rope base of the windowed layers (`rope_base` is the global layers').
    pub rope_base_swa: f32,
}

impl DecoderConfig {
    /// Reads `{arch}.*` keys (llama conventions, with llama.cpp's defaults).
    pub fn from_gguf(f: &GgufFile) -> Result<DecoderConfig, EngineError> {
        let arch = f.get_str("general.architecture")?.to_string();
        let k = |s: &str| format!("{arch}.{s}");
        let bounded = |key: String, max: u64| -> Result<usize, EngineError> {
            let v = f.get_u64(&key)?;
            if v == 0 || v > max {
                return Err(EngineError::InvalidModel(format!(
                    "{key} = {v} is out of range 1..={max}"
                )));
            }
            Ok(v as usize)
        };
        let n_layer = bounded(k("block_count"), MAX_LAYERS)?;
        let n_embd = bounded(k("embedding_length"), MAX_DIM)?;
        let n_ff = bounded(k("feed_forward_length"), MAX_DIM * 4)?;
        let n_head = bounded(k("attention.head_count"), MAX_HEADS)?;
        let n_kv_head = match f.get(&k("attention.head_count_kv")) {
            Some(_) => bounded(k("attention.head_count_kv"), MAX_HEADS)?,
            None => n_head,
        };
        if n_head % n_kv_head != 0 {
            return Err(EngineError::InvalidModel(format!(
                "{n_head} heads and {n_kv_head} kv heads do not divide"
            )));
        }
        // The head size: `attention.key_length` when the file sets it (Gemma:
        // 256 with 640 embedding dims and 4 heads), else n_embd / n_head.
        let head_dim = match f.get(&k("attention.key_length")) {
            Some(_) => {
                let hd = bounded(k("attention.key_length"), MAX_DIM)?;
                if f.get(&k("attention.value_length")).is_some() {
                    let hv = bounded(k("attention.value_length"), MAX_DIM)?;
                    if hv != hd {
                        return Err(EngineError::Unsupported(format!(
                            "key length {hd} differs from value length {hv}"
                        )));
                    }
                }
                if n_head
                    .checked_mul(hd)
                    .is_none_or(|q| q as u64 > MAX_DIM * 4)
                {
                    return Err(EngineError::InvalidModel(format!(
                        "{n_head} heads of {hd} are too wide"
                    )));
                }
                hd
            }
            None => {
                if n_embd % n_head != 0 {
                    return Err(EngineError::InvalidModel(format!(
                        "{n_embd} embedding dims do not divide into {n_head} heads"
                    )));
                }
                n_embd / n_head
            }
        };
        let rope_dims = match f.get(&k("rope.dimension_count")) {
            Some(_) => bounded(k("rope.dimension_count"), MAX_DIM)?,
            None => head_dim,
        };
        if rope_dims > head_dim || rope_dims % 2 != 0 {
            return Err(EngineError::InvalidModel(format!(
                "rope.dimension_count {rope_dims} must be even and at most the head size {head_dim}"
            )));
        }
        let rope_base = match f.get(&k("rope.freq_base")) {
            Some(_) => f.get_f64(&k("rope.freq_base"))? as f32,
            None => 10000.0,
        };
        let rms_eps = match f.get(&k("attention.layer_norm_rms_epsilon")) {
            Some(_) => f.get_f64(&k("attention.layer_norm_rms_epsilon"))? as f32,
            None => 1e-5,
        };
        let valid =
            rope_base.is_finite() && rope_base > 0.0 && rms_eps.is_finite() && rms_eps >= 0.0;
        if !valid {
            return Err(EngineError::InvalidModel(format!(
                "rope base {rope_base} / rms epsilon {rms_eps} are not valid"
            )));
        }
        let n_ctx_train = match f.get(&k("context_length")) {
            Some(_) => f.get_u64(&k("context_length"))?.min(1 << 24) as usize,
            None => 2048,
        };
        let n_vocab = match f.get(&k("vocab_size")) {
            Some(_) => bounded(k("vocab_size"), 1 << 22)?,
            None => f
                .tensor("token_embd.weight")
                .and_then(|t| t.dims.get(1).copied())
                .filter(|&v| v > 0 && v <= 1 << 22)
                .ok_or_else(|| {
                    EngineError::InvalidModel("cannot tell the vocabulary size".into())
                })? as usize,
        };
        let rope_mode = match arch.as_str() {
            "llama" | "mistral" => RopeMode::Normal,
            _ => RopeMode::Neox,
        };
        // Rope scaling (e.g. Gemma 3 4B+'s linear factor 8) is not built.
        if let Some(v) = f.get(&k("rope.scaling.factor")) {
            let factor = v.as_f64().unwrap_or(f64::NAN);
            let kind = match f.get(&k("rope.scaling.type")) {
                Some(_) => f.get_str(&k("rope.scaling.type"))?,
                None => "linear",
            };
            if kind != "none" && factor != 1.0 {
                return Err(EngineError::Unsupported(format!(
                    "rope scaling {kind:?} with factor {factor}"
                )));
            }
        }
        let mut attn_scale = 1.0 / (head_dim as f32).sqrt();
        let (mut sliding_window, mut swa_pattern, mut rope_base_swa) = (None, 1, rope_base);
        if arch == "gemma3" {
            if n_layer == GEMMA3_27B_LAYERS {
                attn_scale = 1.0 / ((n_embd / n_head) as f32).sqrt();
            }
            // No window (or 0): every layer is global, as llama.cpp reads it.
            if f.get(&k("attention.sliding_window")).is_some()
                && f.get_u64(&k("attention.sliding_window"))? > 0
            {
                sliding_window = Some(bounded(k("attention.sliding_window"), 1 << 24)?);
                swa_pattern = GEMMA3_SWA_PATTERN;
                rope_base_swa = match f.get(&k("rope.freq_base_swa")) {
                    Some(_) => f.get_f64(&k("rope.freq_base_swa"))? as f32,
                    None => GEMMA3_ROPE_BASE_SWA,
                };
                if !(rope_base_swa.is_finite() && rope_base_swa > 0.0) {
                    return Err(EngineError::InvalidModel(format!(
                        "rope base {rope_base_swa} of the windowed layers is not valid"
                    )));
                }
            }
        }
        Ok(DecoderConfig {
            arch,
            n_layer,
            n_embd,
            n_ff,
            n_head,
            n_kv_head,
            head_dim,
            n_vocab,
            n_ctx_train,
            rope_base,
            rope_dims,
            rope_mode,
            rms_eps,
            attn_scale,
            sliding_window,
            swa_pattern,
            rope_base_swa,
        })
    }

    /// Width of one KV-cache row (all kv heads).
    pub fn kv_dim(&self) -> usize {
        self.n_kv_head * self.head_dim
    }

    /// Width of a query row (all heads).
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// The sliding window of layer `l`, or `None` for a global layer.
    pub fn layer_window(&self, l: usize) -> Option<usize> {
        let global = self.swa_pattern <= 1 || l % self.swa_pattern == self.swa_pattern - 1;
        if global {
            None
        } else {
            self.sliding_window
        }
    }

    /// The rope base of layer `l`.
    pub fn layer_rope_base(&self, l: usize) -> f32 {
        if self.layer_window(l).is_some() {
            self.rope_base_swa
        } else {
            self.rope_base
        }
    }
}
