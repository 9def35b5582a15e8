//! Model builders: from a file's metadata and tensors to a graph.

pub mod bert;
pub mod config;
pub mod encoder;
pub mod gemma3;
pub mod llama;
pub mod loaded;
pub mod quantized;
pub mod source;
pub mod vocab;
pub mod weights;

pub use config::DecoderConfig;
pub use source::WeightSource;
pub use weights::GgufWeights;

use wisp_ops::DType;

use crate::graph::Graph;
use crate::EngineError;

/// Which positions' logits a run returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogitsMode {
    /// Only the last token's (generation).
    Last,
    /// Every token's (perplexity, teacher forcing).
    All,
}

/// The static shape a graph is built for; graphs are cached per shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GraphShape {
    pub n_tokens: usize,
    pub n_ctx: usize,
    pub kv_dtype: DType,
    pub logits: LogitsMode,
}

/// Decoder architectures wisp builds (`general.architecture`).
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "gemma3"];

/// Builds the decoder graph of `cfg.arch` for `shape`: Gemma 3's builder for
/// `gemma3`, the llama-family builder otherwise.
pub fn build_decoder(
    cfg: &DecoderConfig,
    w: &GgufWeights,
    shape: &GraphShape,
) -> Result<Graph, EngineError> {
    match cfg.arch.as_str() {
        "gemma3" => gemma3::build(cfg, w, shape),
        _ => llama::build(cfg, w, shape),
    }
}
