//! A loaded sentence encoder (BERT family): weights from a Hugging Face
//! folder (safetensors + config.json + tokenizer) or a GGUF, the WordPiece
//! tokenizer, and compiled graphs per batch shape. `Send + Sync`: one model
//! serves many threads.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use wisp_formats::safetensors::{SafetensorsFile, StDtype};
use wisp_formats::GgufFile;
use wisp_ops::{DType, TensorType};

use super::bert::{self, hf_name, EncoderConfig, EncoderShape};
use super::source::WeightSource;
use super::weights::{GgufWeights, WeightInfo};
use crate::backend::{Backend, WeightStore, WeightsIdentity};
use crate::buffer::AlignedBuf;
use crate::calibration::{insert_fake_quant, Calibration, SimOptions};
use crate::executor::CompiledGraph;
use crate::partition::PlacementOptions;
use crate::tokenizer::wordpiece::{Batch, VocabStyle, WordPieceConfig, WordPieceTokenizer};
use crate::EngineError;

/// Sequence lengths are padded up to a multiple of this, so a handful of
/// compiled graphs serve every input length.
const SEQ_BUCKET: usize = 8;
const MAX_CACHED_GRAPHS: usize = 32;

/// Tensors of a safetensors checkpoint, addressed by GGUF names.
pub struct SafetensorsWeights {
    file: SafetensorsFile,
    prefix: &'static str,
    identity: Arc<WeightsIdentity>,
}

impl SafetensorsWeights {
    /// Wraps a checkpoint; detects a leading `bert.` in the tensor names.
    pub fn new(file: SafetensorsFile) -> SafetensorsWeights {
        let prefix = if file
            .tensor("bert.embeddings.word_embeddings.weight")
            .is_some()
        {
            "bert."
        } else {
            ""
        };
        SafetensorsWeights {
            file,
            prefix,
            identity: WeightsIdentity::new(),
        }
    }

    /// The underlying file.
    pub fn file(&self) -> &SafetensorsFile {
        &self.file
    }
}

impl WeightStore for SafetensorsWeights {
    fn data(&self, id: usize) -> &[u8] {
        self.file.tensor_data(id)
    }

    fn identity(&self) -> Option<&Arc<WeightsIdentity>> {
        Some(&self.identity)
    }
}

impl WeightSource for SafetensorsWeights {
    fn info(&self, name: &str) -> Option<WeightInfo> {
        let hf = format!("{}{}", self.prefix, hf_name(name)?);
        let id = self.file.tensor_id(&hf)?;
        let t = &self.file.tensors()[id];
        let dtype = match t.dtype {
            StDtype::F32 => Some(DType::F32),
            StDtype::F16 => Some(DType::F16),
            StDtype::BF16 => Some(DType::BF16),
            _ => None,
        };
        let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
        // Kernels view f32 weights in place; an unaligned one cannot be.
        let unaligned = dtype == Some(DType::F32)
            && !(self.file.tensor_data(id).as_ptr() as usize).is_multiple_of(4);
        Some(WeightInfo {
            id,
            ty: dtype
                .filter(|_| !unaligned)
                .map(|d| TensorType::new(d, &shape)),
            file_dtype: if unaligned {
                "F32 at an unaligned offset"
            } else {
                t.dtype.name()
            },
        })
    }
}

/// A sentence-embedding model ready to run.
pub struct EncoderModel {
    weights: Box<dyn WeightSource>,
    config: EncoderConfig,
    tokenizer: WordPieceTokenizer,
    backends: Vec<Arc<dyn Backend>>,
    placement: PlacementOptions,
    graphs: Mutex<HashMap<EncoderShape, Arc<CompiledGraph>>>,
    /// Arenas of finished calls, reused by the next ones: a fresh multi-MB
    /// buffer per call cost its page faults every time (~0.5 ms at 128 tokens).
    arenas: Mutex<Vec<AlignedBuf>>,
    /// Simulated static activation quantization, when asked for.
    sim: Option<(Arc<Calibration>, SimOptions)>,
    /// Where the weights came from, for reports.
    pub source: String,
}

fn json_usize(v: &serde_json::Value, key: &str) -> Result<usize, EngineError> {
    v.get(key)
        .and_then(|x| x.as_u64())
        .map(|x| x as usize)
        .ok_or_else(|| {
            EngineError::InvalidModel(format!("config.json: {key} is missing or not a number"))
        })
}

impl EncoderModel {
    /// Loads a Hugging Face folder (safetensors) or a GGUF file.
    pub fn load(
        path: &Path,
        backends: Vec<Arc<dyn Backend>>,
        placement: PlacementOptions,
    ) -> Result<EncoderModel, EngineError> {
        if path.is_dir() {
            EncoderModel::from_dir(path, backends, placement)
        } else {
            let f = Arc::new(GgufFile::open(path)?);
            EncoderModel::from_gguf(f, backends, placement)
        }
    }

    /// A folder with `model.safetensors`, `config.json` and `tokenizer.json`/`vocab.txt`.
    pub fn from_dir(
        dir: &Path,
        backends: Vec<Arc<dyn Backend>>,
        placement: PlacementOptions,
    ) -> Result<EncoderModel, EngineError> {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path)
            .map_err(|e| EngineError::InvalidModel(format!("{}: {e}", cfg_path.display())))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| EngineError::InvalidModel(format!("{}: {e}", cfg_path.display())))?;
        let model_type = v.get("model_type").and_then(|x| x.as_str()).unwrap_or("");
        if model_type != "bert" {
            return Err(EngineError::Unsupported(format!(
                "model_type {model_type:?} (supported: bert)"
            )));
        }
        let act = v
            .get("hidden_act")
            .and_then(|x| x.as_str())
            .unwrap_or("gelu");
        if act != "gelu" {
            return Err(EngineError::Unsupported(format!(
                "hidden_act {act:?} (supported: gelu)"
            )));
        }
        let config = EncoderConfig {
            n_layer: json_usize(&v, "num_hidden_layers")?,
            n_embd: json_usize(&v, "hidden_size")?,
            n_ff: json_usize(&v, "intermediate_size")?,
            n_head: json_usize(&v, "num_attention_heads")?,
            n_vocab: json_usize(&v, "vocab_size")?,
            n_types: json_usize(&v, "type_vocab_size").unwrap_or(2),
            max_positions: json_usize(&v, "max_position_embeddings")?,
            eps: v
                .get("layer_norm_eps")
                .and_then(|x| x.as_f64())
                .unwrap_or(1e-12) as f32,
        };
        config.validate()?;
        let st_path = dir.join("model.safetensors");
        let file = SafetensorsFile::open(&st_path)
            .map_err(|e| EngineError::InvalidModel(format!("{}: {e}", st_path.display())))?;
        let tokenizer = WordPieceTokenizer::from_dir(dir)?;
        EncoderModel::new(
            Box::new(SafetensorsWeights::new(file)),
            config,
            tokenizer,
            backends,
            placement,
            dir.display().to_string(),
        )
    }

    /// A GGUF in llama.cpp's `bert` conventions (as `convert_hf_to_gguf.py` and `wisp quantize` write).
    pub fn from_gguf(
        f: Arc<GgufFile>,
        backends: Vec<Arc<dyn Backend>>,
        placement: PlacementOptions,
    ) -> Result<EncoderModel, EngineError> {
        let arch = f.get_str("general.architecture")?.to_string();
        if arch != "bert" {
            return Err(EngineError::Unsupported(format!(
                "architecture {arch:?} is not an encoder (supported: bert)"
            )));
        }
        let dim = |name: &str, i: usize| -> Result<usize, EngineError> {
            f.tensor(name)
                .and_then(|t| t.dims.get(i).copied())
                .map(|d| d as usize)
                .ok_or_else(|| EngineError::Tensor {
                    name: name.into(),
                    why: "missing".into(),
                })
        };
        let config = EncoderConfig {
            n_layer: f.get_u64("bert.block_count")? as usize,
            n_embd: f.get_u64("bert.embedding_length")? as usize,
            n_ff: f.get_u64("bert.feed_forward_length")? as usize,
            n_head: f.get_u64("bert.attention.head_count")? as usize,
            n_vocab: dim("token_embd.weight", 1)?,
            n_types: dim("token_types.weight", 1)?,
            max_positions: dim("position_embd.weight", 1)?,
            eps: f.get_f64("bert.attention.layer_norm_epsilon")? as f32,
        };
        config.validate()?;
        let tokens = f.get_str_array("tokenizer.ggml.tokens")?;
        let lowercase = match f.get("tokenizer.ggml.normalizer.lowercase") {
            Some(_) => f.get_bool("tokenizer.ggml.normalizer.lowercase")?,
            None => true,
        };
        let wp = WordPieceConfig {
            lowercase,
            strip_accents: lowercase,
            tokenize_chinese_chars: true,
            max_len: config.max_positions,
            continuing_prefix: "##".into(),
        };
        let tokenizer = WordPieceTokenizer::from_vocab(tokens, VocabStyle::LlamaCppGguf, wp)?;
        let source = "gguf".to_string();
        EncoderModel::new(
            Box::new(GgufWeights::new(f)?),
            config,
            tokenizer,
            backends,
            placement,
            source,
        )
    }

    fn new(
        weights: Box<dyn WeightSource>,
        config: EncoderConfig,
        tokenizer: WordPieceTokenizer,
        backends: Vec<Arc<dyn Backend>>,
        placement: PlacementOptions,
        source: String,
    ) -> Result<EncoderModel, EngineError> {
        // Build one graph now so missing or mis-shaped tensors fail at load.
        bert::build(
            &config,
            weights.as_ref(),
            &EncoderShape { batch: 1, seq: 1 },
        )?;
        Ok(EncoderModel {
            weights,
            config,
            tokenizer,
            backends,
            placement,
            graphs: Mutex::new(HashMap::new()),
            arenas: Mutex::new(Vec::new()),
            sim: None,
            source,
        })
    }

    /// A copy whose weights are converted in memory to `target` (the
    /// conversion `wisp quantize` writes), to measure accuracy or speed
    /// before writing a file.
    pub fn quantized(
        &self,
        target: DType,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<EncoderModel, EngineError> {
        let names = bert::tensor_names(&self.config);
        let q = super::quantized::QuantizedWeights::new(
            self.weights.as_ref(),
            &names,
            target,
            progress,
        )?;
        EncoderModel::new(
            Box::new(q),
            self.config.clone(),
            self.tokenizer.clone(),
            self.backends.clone(),
            self.placement.clone(),
            format!("{} quantized in memory to {}", self.source, target.name()),
        )
    }

    /// Simulates static activation quantization (uint8/uint16, QNN's
    /// convention) with the ranges of `calib`, as an NPU would compute.
    pub fn with_sim_static(mut self, calib: Arc<Calibration>, opts: SimOptions) -> EncoderModel {
        self.sim = Some((calib, opts));
        self.graphs
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self
    }

    /// The encoder's hyperparameters.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// The WordPiece tokenizer.
    pub fn tokenizer(&self) -> &WordPieceTokenizer {
        &self.tokenizer
    }

    /// The weights.
    pub fn weights(&self) -> &dyn WeightSource {
        self.weights.as_ref()
    }

    /// Backends in priority order.
    pub fn backends(&self) -> &[Arc<dyn Backend>] {
        &self.backends
    }

    /// The compiled graph for a batch shape.
    pub fn compiled(&self, shape: &EncoderShape) -> Result<Arc<CompiledGraph>, EngineError> {
        let mut graphs = self.graphs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = graphs.get(shape) {
            return Ok(g.clone());
        }
        let mut graph = bert::build(&self.config, self.weights.as_ref(), shape)?;
        if let Some((calib, opts)) = &self.sim {
            graph = insert_fake_quant(&graph, calib, opts)?.0;
        }
        let cg = Arc::new(CompiledGraph::compile(
            graph,
            &self.backends,
            &self.placement,
        )?);
        if graphs.len() >= MAX_CACHED_GRAPHS {
            graphs.clear();
        }
        graphs.insert(*shape, cg.clone());
        Ok(cg)
    }

    /// Tokenizes `texts` into one padded batch (sequence length rounded up to a bucket).
    pub fn tokenize(&self, texts: &[&str]) -> Result<Batch, EngineError> {
        Ok(self.padded(&self.encode_all(texts)?))
    }

    /// Each text's ids, specials included.
    fn encode_all(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, EngineError> {
        Ok(texts
            .iter()
            .map(|t| self.tokenizer.encode_with_specials(t))
            .collect::<Result<_, _>>()?)
    }

    /// Encoded rows as one batch, the sequence length rounded up to a bucket
    /// (within the model's positions), so a handful of graphs serve all lengths.
    fn padded(&self, rows: &[Vec<u32>]) -> Batch {
        let longest = rows.iter().map(Vec::len).max().unwrap_or(1);
        let pad = longest.div_ceil(SEQ_BUCKET) * SEQ_BUCKET;
        self.tokenizer
            .pad_batch(rows, Some(pad.min(self.config.max_positions).max(longest)))
    }

    /// Unit-length sentence embeddings, one per text.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EngineError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let batch = self.tokenize(texts)?;
        self.embed_batch(&batch)
    }

    /// Unit-length embeddings of many texts, in their order, computed in
    /// batches of up to `batch` texts of similar length: the texts are sorted
    /// by token count first, so a batch pads to its own longest text instead
    /// of a random long one (a file of mixed lengths ran 4× slower in batches
    /// of 32 than one by one before; see `wisp embed --batch`).
    pub fn embed_many(&self, texts: &[&str], batch: usize) -> Result<Vec<Vec<f32>>, EngineError> {
        let mut rows = self.encode_all(texts)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| rows[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(batch.max(1)) {
            let group: Vec<Vec<u32>> = chunk
                .iter()
                .map(|&i| std::mem::take(&mut rows[i]))
                .collect();
            for (&i, v) in chunk.iter().zip(self.embed_batch(&self.padded(&group))?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Embeddings of an already tokenized batch.
    pub fn embed_batch(&self, batch: &Batch) -> Result<Vec<Vec<f32>>, EngineError> {
        self.embed_batch_observed(batch, None)
    }

    /// Like [`EncoderModel::embed_batch`], handing every activation to
    /// `observer` as it is produced (calibration).
    pub fn embed_batch_observed(
        &self,
        batch: &Batch,
        observer: Option<&mut crate::backend::Observer<'_>>,
    ) -> Result<Vec<Vec<f32>>, EngineError> {
        let (b, s) = (batch.batch, batch.seq);
        if s > self.config.max_positions {
            return Err(EngineError::InvalidArgument(format!(
                "sequence of {s} tokens exceeds the model's {} positions",
                self.config.max_positions
            )));
        }
        let cg = self.compiled(&EncoderShape { batch: b, seq: s })?;
        // Every activation is written before it is read, so a reused arena
        // needs no clearing.
        let mut arena = self
            .arenas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(|| AlignedBuf::zeroed(0));
        if arena.len() < cg.arena_bytes() {
            arena.resize(cg.arena_bytes());
        }
        let g = &cg.graph;
        let write_i32 = |arena: &mut AlignedBuf,
                         v,
                         vals: &mut dyn Iterator<Item = i32>|
         -> Result<(), EngineError> {
            let r = cg.value_range(v)?;
            for (c, x) in arena.bytes_mut()[r].chunks_exact_mut(4).zip(vals) {
                c.copy_from_slice(&x.to_le_bytes());
            }
            Ok(())
        };
        write_i32(
            &mut arena,
            g.inputs[0],
            &mut batch.ids.iter().map(|&x| x as i32),
        )?;
        write_i32(
            &mut arena,
            g.inputs[1],
            &mut batch.type_ids.iter().map(|&x| x as i32),
        )?;
        write_i32(
            &mut arena,
            g.inputs[2],
            &mut (0..b * s).map(|i| (i % s) as i32),
        )?;
        let r = cg.value_range(g.inputs[3])?;
        for (c, m) in arena.bytes_mut()[r].chunks_exact_mut(4).zip(&batch.mask) {
            c.copy_from_slice(&(*m as f32).to_le_bytes());
        }
        match observer {
            Some(obs) => cg.run_observed(self.weights.as_ref(), &mut arena, &mut [], obs)?,
            None => cg.run(self.weights.as_ref(), &mut arena, &mut [])?,
        }
        let r = cg.value_range(g.outputs[0])?;
        let flat: &[f32] = bytemuck::cast_slice(&arena.bytes()[r]);
        let out = flat
            .chunks_exact(self.config.n_embd)
            .map(|c| c.to_vec())
            .collect();
        // Kept for the next call (a few at most: one per concurrent caller).
        let mut pool = self.arenas.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 4 {
            pool.push(arena);
        }
        Ok(out)
    }
}
