//! Model builders: from a file's metadata and tensors to a graph.

pub mod bert;
pub mod config;
pub mod encoder;
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

/// Architectures wisp builds.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama"];
