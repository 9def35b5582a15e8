//! wisp: private, on-device inference for small language models.
//!
//! This crate is the facade an app embeds: it picks the backends, finds the
//! model cache, and re-exports the engine's types. Everything runs locally;
//! there is no network code in wisp.
//!
//! ```no_run
//! use std::sync::Arc;
//! let model = wisp::load_model(&wisp::default_model_path(), &wisp::LoadOptions::default())?;
//! let mut session = model.session(wisp::SessionOptions::default())?;
//! let prompt = model.encode_prompt("The capital of France is", false)?;
//! let mut sampler = wisp::Sampler::new(wisp::SamplingParams::greedy());
//! let out = wisp::generate(&mut session, &prompt, &mut sampler, &Default::default(), |_| true)?;
//! let text = model.tokenizer().decode(&out.ids, false)?;
//! # Ok::<(), wisp::EngineError>(())
//! ```

pub mod quantize;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use wisp_backend_cpu::{CpuBackend, CpuOptions, Isa};
pub use wisp_backend_qnn::{Precision as QnnPrecision, QnnBackend, QnnError, QnnOptions};
pub use wisp_engine::generate::{generate, GenerateOptions, Generated, Utf8Stream};
pub use wisp_engine::model::encoder::EncoderModel;
pub use wisp_engine::{
    Backend, EngineError, LogitsMode, Model, PlacementOptions, PlacementReport, ReferenceBackend,
    Sampler, SamplingParams, Session, SessionOptions,
};
pub use {wisp_engine as engine, wisp_formats as formats, wisp_ops as ops};

/// File name of the default model inside the model cache.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// The command that fills the model cache.
pub const FETCH_COMMAND: &str = "./scripts/fetch-models.sh";

/// The model cache: `$WISP_MODELS`, else `~/.cache/wisp/models`.
pub fn models_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WISP_MODELS").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("wisp").join("models")
}

/// Folder of the default encoder (all-MiniLM-L6-v2, safetensors) in the cache.
pub const DEFAULT_ENCODER_DIR: &str = "all-MiniLM-L6-v2";

/// Path of the default encoder in the cache.
pub fn default_encoder_path() -> PathBuf {
    models_dir().join(DEFAULT_ENCODER_DIR)
}

/// Path of the default model (SmolLM2-135M-Instruct Q4_1) in the cache.
pub fn default_model_path() -> PathBuf {
    models_dir().join(DEFAULT_MODEL_FILE)
}

/// Which backends run the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// The SIMD CPU backend.
    #[default]
    Cpu,
    /// The scalar reference kernels (the oracle; slow, exact f32 activations).
    Reference,
    /// The Qualcomm HTP through QNN (`$WISP_QNN_LIB`, default `libQnnHtp.so`),
    /// with the SIMD CPU backend for what the NPU cannot run.
    Qnn,
}

impl BackendChoice {
    /// Parses a backend name as used by `--backend`.
    pub fn parse(s: &str) -> Result<BackendChoice, EngineError> {
        match s {
            "cpu" => Ok(BackendChoice::Cpu),
            "reference" => Ok(BackendChoice::Reference),
            "qnn" => Ok(BackendChoice::Qnn),
            other => Err(EngineError::InvalidArgument(format!(
                "unknown backend {other:?} (available here: cpu, reference, qnn)"
            ))),
        }
    }
}

/// How to load a model.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub backend: BackendChoice,
    /// CPU threads (0: one per core).
    pub threads: usize,
    /// Force an ISA (else `WISP_ISA`, else the best available).
    pub isa: Option<Isa>,
    pub placement: PlacementOptions,
    /// Skip the graph fusion pass (parity tests, debugging).
    pub no_fusion: bool,
    /// Time every op (`Backend::take_profile`); `wisp bench` uses it to report overhead.
    pub profile: bool,
    /// QNN settings (used with [`BackendChoice::Qnn`]).
    pub qnn: QnnSettings,
}

/// How the QNN backend is set up.
#[derive(Clone, Debug, Default)]
pub struct QnnSettings {
    /// The library (else `$WISP_QNN_LIB`, else `libQnnHtp.so`).
    pub library: Option<PathBuf>,
    /// Activation ranges: uint8/uint16 activations as `sim` says; without one, fp16.
    pub calibration: Option<Arc<wisp_engine::calibration::Calibration>>,
    /// Per-tensor bit choice and clipping (the rules of `--sim-static`).
    pub sim: wisp_engine::calibration::SimOptions,
    /// Context cache directory; `None` takes `$WISP_QNN_CACHE` or `~/.cache/wisp/qnn`.
    pub cache_dir: Option<PathBuf>,
    /// Do not cache finalized contexts.
    pub no_cache: bool,
    /// Return every node's output from the NPU graphs (`wisp diff`).
    pub expose_all: bool,
}

impl QnnSettings {
    /// The backend options these settings give; `no_fallback` turns off the
    /// run-time CPU fallback of partitions whose graph fails.
    pub fn options(&self, no_fallback: bool) -> QnnOptions {
        QnnOptions {
            library: self.library.clone(),
            precision: match &self.calibration {
                Some(c) => QnnPrecision::Quantized {
                    calib: c.clone(),
                    sim: self.sim.clone(),
                },
                None => QnnPrecision::Fp16,
            },
            cache_dir: if self.no_cache {
                None
            } else {
                Some(
                    self.cache_dir
                        .clone()
                        .unwrap_or_else(wisp_backend_qnn::cache::default_dir),
                )
            },
            cpu_fallback: !no_fallback,
            expose_all: self.expose_all,
        }
    }
}

/// The backend list for `opts`, in priority order (fallback last).
pub fn backends(opts: &LoadOptions) -> Result<Vec<Arc<dyn Backend>>, EngineError> {
    Ok(match opts.backend {
        BackendChoice::Cpu => vec![Arc::new(CpuBackend::new(CpuOptions {
            threads: opts.threads,
            isa: opts.isa,
            profile: opts.profile,
            pack: None,
        })?)],
        BackendChoice::Reference => vec![Arc::new(ReferenceBackend)],
        BackendChoice::Qnn => {
            let qnn = QnnBackend::new(opts.qnn.options(opts.placement.no_fallback))?;
            let cpu = CpuBackend::new(CpuOptions {
                threads: opts.threads,
                isa: opts.isa,
                profile: opts.profile,
                pack: None,
            })?;
            vec![Arc::new(qnn), Arc::new(cpu)]
        }
    })
}

/// Loads a sentence encoder: a Hugging Face folder (safetensors) or a `bert` GGUF.
pub fn load_encoder(path: &Path, opts: &LoadOptions) -> Result<Arc<EncoderModel>, EngineError> {
    if !path.exists() {
        return Err(EngineError::InvalidArgument(format!(
            "model not found at {}; run {FETCH_COMMAND} to download the default models",
            path.display()
        )));
    }
    let backends = backends(opts)?;
    Ok(Arc::new(EncoderModel::load(
        path,
        backends,
        opts.placement.clone(),
    )?))
}

/// Runs `texts` through `model` twice (extremes, then histograms) and
/// returns every activation's range, clipped at `percentile`.
pub fn calibrate_encoder(
    model: &EncoderModel,
    texts: &[&str],
    percentile: f64,
    batch: usize,
) -> Result<wisp_engine::calibration::Calibration, EngineError> {
    let mut rec = wisp_engine::calibration::RangeRecorder::new();
    for pass in 0..2 {
        if pass == 1 {
            rec.start_second_pass();
        }
        for chunk in texts.chunks(batch.max(1)) {
            let b = model.tokenize(chunk)?;
            model.embed_batch_observed(
                &b,
                Some(&mut |name: &str, data: &[f32]| rec.observe(name, data)),
            )?;
        }
    }
    Ok(rec.finish(texts.len(), percentile))
}

/// Runs each text (one window of at most `n_ctx` tokens each) through a
/// decoder twice and returns every activation's range (see [`calibrate_encoder`]).
pub fn calibrate_decoder(
    model: &Arc<Model>,
    texts: &[&str],
    percentile: f64,
    n_ctx: usize,
) -> Result<wisp_engine::calibration::Calibration, EngineError> {
    let mut rec = wisp_engine::calibration::RangeRecorder::new();
    let mut session = model.session(SessionOptions {
        n_ctx,
        n_batch: n_ctx,
        ..Default::default()
    })?;
    for pass in 0..2 {
        if pass == 1 {
            rec.start_second_pass();
        }
        for t in texts {
            let mut ids = model.encode_prompt(t, false)?;
            ids.truncate(n_ctx);
            if ids.is_empty() {
                continue;
            }
            session.reset();
            let mut obs = |name: &str, data: &[f32]| rec.observe(name, data);
            session.eval_observed(&ids, LogitsMode::Last, Some(&mut obs))?;
        }
    }
    Ok(rec.finish(texts.len(), percentile))
}

/// Prompt tokens per prefill graph on the NPU: prompts run in chunks of this
/// many tokens, the rest one by one through the decode graph, so a decoder
/// needs exactly two static shapes (buckets) per context size.
pub const QNN_PREFILL_CHUNK: usize = 16;

/// Evaluates `tokens` through fixed shape buckets: chunks of `chunk` tokens,
/// then the remainder one token at a time (the decode bucket). Static-shape
/// NPUs compile one graph per shape; this keeps the shapes to two.
pub fn prefill_buckets(
    session: &mut Session,
    tokens: &[u32],
    chunk: usize,
) -> Result<(), EngineError> {
    let chunk = chunk.max(1);
    let mut at = 0;
    while tokens.len() - at >= chunk {
        session.eval(&tokens[at..at + chunk], LogitsMode::Last)?;
        at += chunk;
    }
    for t in &tokens[at..] {
        session.eval(&[*t], LogitsMode::Last)?;
    }
    Ok(())
}

/// Whether the first backend is the QNN emulator (latencies are then emulator latencies).
pub fn runs_on_emulator(backends: &[Arc<dyn Backend>]) -> bool {
    backends
        .first()
        .is_some_and(|b| b.name() == "qnn" && b.describe().contains("EMULATOR"))
}

/// Whether `path` holds an encoder (a folder, or a GGUF whose architecture is `bert`).
pub fn is_encoder(path: &Path) -> bool {
    if path.is_dir() {
        return true;
    }
    wisp_formats::GgufFile::open(path)
        .ok()
        .and_then(|f| f.get_str("general.architecture").ok().map(|a| a == "bert"))
        .unwrap_or(false)
}

/// Loads a GGUF model. A missing file gets an error that names the fetch command.
pub fn load_model(path: &Path, opts: &LoadOptions) -> Result<Arc<Model>, EngineError> {
    if !path.exists() {
        return Err(EngineError::InvalidArgument(format!(
            "model not found at {}; run {FETCH_COMMAND} to download the default models",
            path.display()
        )));
    }
    let backends = backends(opts)?;
    let model = Model::load(path, backends, opts.placement.clone())?;
    // The NPU takes the unfused ops (a fused gate/up matmul has no calibrated intermediate).
    let fusion = !opts.no_fusion && opts.backend != BackendChoice::Qnn;
    Ok(Arc::new(model.with_fusion(fusion)))
}
