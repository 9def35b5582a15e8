//! Hyperparameters of a decoder, read from GGUF metadata and checked before
//! anything is sized by them.

use wisp_formats::GgufFile;
use wisp_ops::RopeMode;

use crate::EngineError;

/// Upper bounds that keep a hostile file from sizing huge allocations.
const MAX_LAYERS: u64 = 1024;
const MAX_DIM: u64 = 1 << 17;
const MAX_HEADS: u64 = 1024;

/// A llama-family decoder's shape.
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
        if n_embd % n_head != 0 || n_head % n_kv_head != 0 {
            return Err(EngineError::InvalidModel(format!(
                "{n_embd} embedding dims, {n_head} heads and {n_kv_head} kv heads do not divide"
            )));
        }
        let head_dim = n_embd / n_head;
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
        if !(rope_base.is_finite() && rope_base > 0.0) || !(rms_eps.is_finite() && rms_eps >= 0.0) {
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
        })
    }

    /// Width of one KV-cache row (all kv heads).
    pub fn kv_dim(&self) -> usize {
        self.n_kv_head * self.head_dim
    }
}
