//! wisp's engine: graph IR, planner, backend trait, partitioner, executor,
//! KV cache and sessions, model builders, tokenizers, chat templates and
//! sampling.
//!
//! The engine never names a concrete backend: callers hand it a list of
//! [`Backend`]s in priority order (the last is the fallback, normally the
//! CPU), and the partitioner places each node.

pub mod backend;
pub mod buffer;
pub mod calibration;
pub mod chat;
pub mod error;
pub mod executor;
pub mod fusion;
pub mod generate;
pub mod graph;
pub mod model;
pub mod partition;
pub mod perplexity;
pub mod planner;
pub mod reference_backend;
pub mod sampling;
pub mod session;
pub mod tokenizer;

pub use backend::{
    Backend, Bindings, Executable, NodeIo, OpTime, Support, WeightStore, WeightsIdentity,
};
pub use error::EngineError;
pub use executor::CompiledGraph;
pub use graph::{Graph, NodeId, ValueId, ValueKind};
pub use model::loaded::Model;
pub use model::{GraphShape, LogitsMode};
pub use partition::{PlacementOptions, PlacementReport};
pub use reference_backend::ReferenceBackend;
pub use sampling::{Sampler, SamplingParams};
pub use session::{Session, SessionOptions};
