//! The engine's error type: every failure a caller can see, typed and named.

use wisp_formats::GgufError;

use crate::graph::GraphError;
use crate::planner::PlanError;
use crate::tokenizer::TokenizerError;

/// Anything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Op(#[from] wisp_ops::OpError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("invalid model: {0}")]
    InvalidModel(String),
    #[error("tensor {name:?}: {why}")]
    Tensor { name: String, why: String },
    #[error("context full: {needed} positions needed, the session holds {n_ctx}")]
    ContextFull { needed: usize, n_ctx: usize },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("no backend can run node {node:?} ({op}): {reasons}")]
    NoBackend {
        node: String,
        op: &'static str,
        reasons: String,
    },
    #[error("fallback refused (--no-fallback): {0}")]
    FallbackRefused(String),
    #[error("backend {backend}: {message}")]
    Backend { backend: String, message: String },
    #[error("chat template: {0}")]
    Template(String),
    #[error("internal error: {0}")]
    Internal(String),
}
