//! A loaded language model: the mapped file, its config, tokenizer and chat
//! template, the backends, and the compiled graphs per shape. One `Model` is
//! `Send + Sync` and is shared (in an `Arc`) by any number of sessions.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use wisp_formats::GgufFile;

use super::config::DecoderConfig;
use super::vocab::{load_tokenizer, SpecialTokens};
use super::weights::GgufWeights;
use super::{build_decoder, GraphShape, SUPPORTED_ARCHITECTURES};
use crate::backend::Backend;
use crate::calibration::{insert_fake_quant, Calibration, SimOptions};
use crate::chat::ChatTemplate;
use crate::executor::CompiledGraph;
use crate::partition::PlacementOptions;
use crate::session::{Session, SessionOptions};
use crate::tokenizer::Tokenizer;
use crate::EngineError;

/// Compiled graphs kept per model before the cache is emptied.
const MAX_CACHED_GRAPHS: usize = 32;

/// A decoder language model ready to run.
pub struct Model {
    weights: GgufWeights,
    config: DecoderConfig,
    tokenizer: Arc<dyn Tokenizer>,
    special: SpecialTokens,
    chat_template: Option<ChatTemplate>,
    backends: Vec<Arc<dyn Backend>>,
    placement: PlacementOptions,
    fusion: bool,
    sim: Option<(Arc<Calibration>, SimOptions)>,
    graphs: Mutex<HashMap<GraphShape, Arc<CompiledGraph>>>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .finish()
    }
}

impl Model {
    /// Maps and loads the GGUF at `path`. `backends` are in priority order; the
    /// last one is the fallback that must run every op.
    pub fn load(
        path: &Path,
        backends: Vec<Arc<dyn Backend>>,
        placement: PlacementOptions,
    ) -> Result<Model, EngineError> {
        let file = Arc::new(GgufFile::open(path)?);
        Model::from_gguf(file, backends, placement)
    }

    /// Loads from an already-validated GGUF.
    pub fn from_gguf(
        file: Arc<GgufFile>,
        backends: Vec<Arc<dyn Backend>>,
        placement: PlacementOptions,
    ) -> Result<Model, EngineError> {
        let arch = file.get_str("general.architecture")?;
        if !SUPPORTED_ARCHITECTURES.contains(&arch) {
            return Err(EngineError::Unsupported(format!(
                "architecture {arch:?} (supported: {})",
                SUPPORTED_ARCHITECTURES.join(", ")
            )));
        }
        let config = DecoderConfig::from_gguf(&file)?;
        let (tokenizer, special) = load_tokenizer(&file)?;
        if tokenizer.vocab_size() != config.n_vocab {
            return Err(EngineError::InvalidModel(format!(
                "tokenizer has {} tokens, the model {}",
                tokenizer.vocab_size(),
                config.n_vocab
            )));
        }
        let piece = |id: Option<u32>| {
            id.and_then(|i| tokenizer.token_bytes(i, true).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        let chat_template = match file.get("tokenizer.chat_template") {
            Some(_) => Some(ChatTemplate::new(
                file.get_str("tokenizer.chat_template")?,
                &piece(special.bos),
                &piece(special.eos),
            )?),
            None => None,
        };
        let weights = GgufWeights::new(file)?;
        let model = Model {
            weights,
            config,
            tokenizer,
            special,
            chat_template,
            backends,
            placement,
            fusion: true,
            sim: None,
            graphs: Mutex::new(HashMap::new()),
        };
        // Build one graph now so a file with missing or mis-shaped tensors fails at load.
        build_decoder(
            &model.config,
            &model.weights,
            &GraphShape {
                n_tokens: 1,
                n_ctx: 1,
                kv_dtype: wisp_ops::DType::F32,
                logits: super::LogitsMode::Last,
            },
        )?;
        Ok(model)
    }

    /// Turns the fusion pass on or off (on by default); off is for parity
    /// tests and for backends that want the unfused ops.
    pub fn with_fusion(mut self, on: bool) -> Model {
        self.fusion = on;
        self.graphs
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self
    }

    /// Simulates static activation quantization (uint8/uint16, QNN's
    /// convention) with the ranges of `calib`, as an NPU would compute.
    /// Calibrate and simulate with the same fusion setting: value names differ.
    pub fn with_sim_static(mut self, calib: Arc<Calibration>, opts: SimOptions) -> Model {
        self.sim = Some((calib, opts));
        self.graphs
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self
    }

    /// The decoder's hyperparameters.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Arc<dyn Tokenizer> {
        &self.tokenizer
    }

    /// BOS/EOS/end-of-generation ids.
    pub fn special(&self) -> &SpecialTokens {
        &self.special
    }

    /// The file's chat template, if it has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// The mapped weights.
    pub fn weights(&self) -> &GgufWeights {
        &self.weights
    }

    /// The mapped file.
    pub fn file(&self) -> &GgufFile {
        self.weights.file()
    }

    /// Backends in priority order.
    pub fn backends(&self) -> &[Arc<dyn Backend>] {
        &self.backends
    }

    /// Tokenizes a prompt: BOS first when the model asks for it.
    pub fn encode_prompt(&self, text: &str, parse_special: bool) -> Result<Vec<u32>, EngineError> {
        let mut ids = Vec::new();
        if self.special.add_bos {
            ids.extend(self.special.bos);
        }
        ids.extend(self.tokenizer.encode(text, parse_special)?);
        Ok(ids)
    }

    /// Whether `id` ends generation.
    pub fn is_eog(&self, id: u32) -> bool {
        self.special.eog.contains(&id)
    }

    /// The compiled graph for `shape` (built, planned, partitioned on first use).
    pub fn compiled(&self, shape: &GraphShape) -> Result<Arc<CompiledGraph>, EngineError> {
        if let Some(g) = self.lock_graphs().get(shape) {
            return Ok(g.clone());
        }
        let mut graph = build_decoder(&self.config, &self.weights, shape)?;
        if self.fusion {
            graph = crate::fusion::fuse(&graph)?.0;
        }
        if let Some((calib, opts)) = &self.sim {
            graph = insert_fake_quant(&graph, calib, opts)?.0;
        }
        let compiled = Arc::new(CompiledGraph::compile(
            graph,
            &self.backends,
            &self.placement,
        )?);
        let mut graphs = self.lock_graphs();
        if graphs.len() >= MAX_CACHED_GRAPHS {
            graphs.clear();
        }
        graphs.insert(*shape, compiled.clone());
        Ok(compiled)
    }

    fn lock_graphs(&self) -> std::sync::MutexGuard<'_, HashMap<GraphShape, Arc<CompiledGraph>>> {
        // A panic while holding the lock leaves a usable map (entries are immutable Arcs).
        self.graphs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session with its own KV cache.
    pub fn session(self: &Arc<Self>, opts: SessionOptions) -> Result<Session, EngineError> {
        Session::new(self.clone(), opts)
    }
}
