//! The `wisp` command line: run, chat, tokenize, inspect.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use serde_json::json;
use wisp::engine::chat::Message;
use wisp::engine::model::GraphShape;
use wisp::ops::DType;
use wisp::{
    generate, BackendChoice, EngineError, GenerateOptions, Isa, LoadOptions, LogitsMode, Model,
    PlacementOptions, Sampler, SamplingParams, SessionOptions, Utf8Stream,
};

#[derive(Parser)]
#[command(
    name = "wisp",
    version,
    about = "Private, on-device inference for small language models"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate text from a prompt (streams to stdout).
    Run(RunArgs),
    /// Interactive multi-turn chat with the model's chat template.
    Chat(ChatArgs),
    /// Print the token ids of TEXT as JSON.
    Tokenize(TokenizeArgs),
    /// Print metadata, tensors and the execution plan of a model.
    Inspect(InspectArgs),
    /// Measure prefill and decode speed, like llama-bench.
    Bench(BenchArgs),
    /// Perplexity of a text file, computed the way llama-perplexity does.
    Perplexity(PerplexityArgs),
    /// Sentence embeddings (one JSON line per input) with an encoder model.
    Embed(EmbedArgs),
    /// Write a GGUF with block-quantized weights (from safetensors or GGUF).
    Quantize(QuantizeArgs),
    /// Record activation ranges of an encoder over calibration inputs (static quantization).
    Calibrate(CalibrateArgs),
    /// Run a prompt on the reference kernels and on a backend (e.g. qnn) and
    /// print, value by value, the first whose error exceeds its tolerance.
    Diff(DiffArgs),
    /// Accuracy of a (quantized) model against its float base: embedding
    /// cosines for encoders, perplexity delta and top-1 agreement for decoders.
    Eval(EvalArgs),
}

#[derive(Args)]
struct CalibrateArgs {
    /// Encoder (folder or bert GGUF); default: all-MiniLM-L6-v2 from the cache.
    #[arg(short = 'm', long = "model")]
    model: Option<PathBuf>,
    /// Calibration inputs, one per line.
    #[arg(long)]
    data: PathBuf,
    /// Output calibration file.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// Percentile range kept (100 = min/max).
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    #[arg(short = 't', long = "threads", default_value_t = 0)]
    threads: usize,
    /// Decoders: at most this many tokens of each input line.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    ctx: usize,
    /// Record the unfused graph's values (what `--backend qnn` runs, since it
    /// lowers the ops one by one), instead of the CPU's fused graph.
    #[arg(long)]
    no_fusion: bool,
}

/// Simulated static quantization of activations (encoders).
#[derive(Args, Clone, Default)]
struct SimArgs {
    /// Calibration file: simulate static activation quantization as an NPU computes it.
    #[arg(long = "sim-static")]
    sim_static: Option<PathBuf>,
    /// Activation bits for the simulation: 8, 16, or 0 = per tensor as the calibration suggests.
    #[arg(long = "sim-bits", default_value_t = 0)]
    sim_bits: u32,
    /// Comma-separated value-name substrings simulated at 16 bits (e.g. `_res,norm`).
    #[arg(long = "sim-wide", default_value = "")]
    sim_wide: String,
    /// Use min/max instead of the percentile range.
    #[arg(long = "sim-no-clip")]
    sim_no_clip: bool,
}

/// A calibration and how to simulate with it.
type Sim = (
    Arc<wisp::engine::calibration::Calibration>,
    wisp::engine::calibration::SimOptions,
);

impl SimArgs {
    /// The calibration and options, when `--sim-static` is given.
    fn load(&self) -> Result<Option<Sim>, EngineError> {
        let Some(path) = &self.sim_static else {
            return Ok(None);
        };
        if ![0, 8, 16].contains(&self.sim_bits) {
            return Err(EngineError::InvalidArgument(
                "--sim-bits must be 0, 8 or 16".into(),
            ));
        }
        let calib = wisp::engine::calibration::Calibration::parse(&read_text(path)?)?;
        let opts = wisp::engine::calibration::SimOptions {
            bits: self.sim_bits,
            wide: self
                .sim_wide
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            clip: !self.sim_no_clip,
        };
        Ok(Some((Arc::new(calib), opts)))
    }

    fn apply(
        &self,
        model: Arc<wisp::EncoderModel>,
    ) -> Result<Arc<wisp::EncoderModel>, EngineError> {
        let Some((calib, opts)) = self.load()? else {
            return Ok(model);
        };
        let model = Arc::try_unwrap(model)
            .map_err(|_| EngineError::Internal("encoder is shared".into()))?;
        Ok(Arc::new(model.with_sim_static(calib, opts)))
    }

    fn apply_decoder(&self, model: Arc<Model>) -> Result<Arc<Model>, EngineError> {
        let Some((calib, opts)) = self.load()? else {
            return Ok(model);
        };
        let model =
            Arc::try_unwrap(model).map_err(|_| EngineError::Internal("model is shared".into()))?;
        Ok(Arc::new(model.with_sim_static(calib, opts)))
    }
}

/// QNN backend settings (`--backend qnn`).
#[derive(Args, Clone, Default)]
struct QnnArgs {
    /// Calibration file for the NPU's static uint8/uint16 activations (without one: fp16).
    #[arg(long = "qnn-calib")]
    qnn_calib: Option<PathBuf>,
    /// NPU activation bits: 8, 16, or 0 = per tensor as the calibration suggests.
    #[arg(long = "qnn-bits", default_value_t = 0)]
    qnn_bits: u32,
    /// Comma-separated value-name substrings given 16 bits on the NPU.
    #[arg(long = "qnn-wide", default_value = "")]
    qnn_wide: String,
    /// Use min/max instead of the percentile range for 8-bit NPU activations.
    #[arg(long = "qnn-no-clip")]
    qnn_no_clip: bool,
    /// Context cache directory (default: $WISP_QNN_CACHE or ~/.cache/wisp/qnn).
    #[arg(long = "qnn-cache")]
    qnn_cache: Option<PathBuf>,
    /// Do not cache finalized QNN contexts.
    #[arg(long = "qnn-no-cache")]
    qnn_no_cache: bool,
}

impl QnnArgs {
    fn settings(&self) -> Result<wisp::QnnSettings, EngineError> {
        if ![0, 8, 16].contains(&self.qnn_bits) {
            return Err(EngineError::InvalidArgument(
                "--qnn-bits must be 0, 8 or 16".into(),
            ));
        }
        let calibration = match &self.qnn_calib {
            Some(p) => Some(Arc::new(wisp::engine::calibration::Calibration::parse(
                &read_text(p)?,
            )?)),
            None => None,
        };
        Ok(wisp::QnnSettings {
            library: None,
            calibration,
            sim: wisp::engine::calibration::SimOptions {
                bits: self.qnn_bits,
                wide: self
                    .qnn_wide
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                clip: !self.qnn_no_clip,
            },
            cache_dir: self.qnn_cache.clone(),
            no_cache: self.qnn_no_cache,
            expose_all: false,
        })
    }
}

#[derive(Args)]
struct DiffArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The input: a prompt (decoders) or a sentence (encoders).
    #[arg(short = 'p', long = "prompt")]
    prompt: String,
    /// Relative tolerance, as a share of the value's largest reference magnitude.
    #[arg(long, default_value_t = 0.05)]
    rtol: f64,
    /// Print every value, not only up to the first that exceeds its tolerance.
    #[arg(long)]
    all: bool,
    /// Context size for decoders.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 256)]
    ctx: usize,
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    sim: SimArgs,
    /// The model under test (GGUF or folder).
    #[arg(short = 'm', long = "model")]
    model: PathBuf,
    /// The float model it is compared with.
    #[arg(long = "base")]
    base: PathBuf,
    /// Inputs: one sentence per line (encoders) or a text to score (decoders).
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Decoders: window size for perplexity and agreement.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    ctx: usize,
    /// Decoders: at most this many windows.
    #[arg(long, default_value_t = 8)]
    windows: usize,
    #[arg(short = 't', long = "threads", default_value_t = 0)]
    threads: usize,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct QuantizeArgs {
    /// A Hugging Face BERT folder (safetensors) or a GGUF file.
    input: PathBuf,
    /// The GGUF to write.
    output: PathBuf,
    /// Target type: q8_0, q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, q6_K, f16, bf16 or f32.
    /// Rows that are not whole blocks of the type (e.g. 384-wide rows for K-quants) stay f32.
    #[arg(long = "type", default_value = "q8_0")]
    ty: String,
}

#[derive(Args)]
struct EmbedArgs {
    /// Encoder: a Hugging Face folder (safetensors + config + tokenizer) or a bert GGUF.
    /// Default: all-MiniLM-L6-v2 from the model cache.
    #[arg(short = 'm', long = "model")]
    model: Option<PathBuf>,
    /// CPU threads (default: one per core).
    #[arg(short = 't', long = "threads", default_value_t = 0)]
    threads: usize,
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// Read inputs from a file, one per line.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Texts per batch (texts are grouped by length, so a batch pads little).
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[command(flatten)]
    sim: SimArgs,
    #[command(flatten)]
    qnn: QnnArgs,
    /// Texts to embed.
    texts: Vec<String>,
}

#[derive(Args)]
struct BenchArgs {
    /// Model file (GGUF). Default: SmolLM2-135M-Instruct Q4_1 from the model cache.
    #[arg(short = 'm', long = "model")]
    model: Option<PathBuf>,
    /// Prompt lengths to measure (prefill), comma-separated.
    #[arg(
        short = 'p',
        long = "n-prompt",
        default_value = "512",
        value_delimiter = ','
    )]
    prompts: Vec<usize>,
    /// Tokens to generate one by one (decode), comma-separated; 0 skips.
    #[arg(
        short = 'n',
        long = "n-gen",
        default_value = "64",
        value_delimiter = ','
    )]
    gens: Vec<usize>,
    /// Thread counts, comma-separated.
    #[arg(
        short = 't',
        long = "threads",
        default_value = "1,2",
        value_delimiter = ','
    )]
    threads: Vec<usize>,
    /// Repetitions of each test.
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    reps: usize,
    #[arg(long, default_value = "cpu")]
    backend: String,
    #[arg(long)]
    isa: Option<String>,
    #[command(flatten)]
    qnn: QnnArgs,
    /// One JSON object per line and row.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PerplexityArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sim: SimArgs,
    /// Text file to score.
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Window size in tokens.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    ctx: usize,
    /// KV-cache type: f16 or f32.
    #[arg(long = "kv-type", default_value = "f16")]
    kv_type: String,
    /// End with a JSON line {"ppl","ppl_stderr","tokens","windows"}.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Clone)]
struct ModelArgs {
    /// Model file (GGUF). Default: SmolLM2-135M-Instruct Q4_1 from the model cache.
    #[arg(short = 'm', long = "model")]
    model: Option<PathBuf>,
    /// CPU threads (default: one per core).
    #[arg(short = 't', long = "threads", default_value_t = 0)]
    threads: usize,
    /// Backend: cpu, or reference (the scalar oracle).
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// Force the CPU instruction set: scalar, avx2, avx512, neon, neondot (else WISP_ISA, else best).
    #[arg(long)]
    isa: Option<String>,
    /// Fail instead of falling back to the CPU for any node.
    #[arg(long)]
    no_fallback: bool,
    /// Run the graph without the fusion pass.
    #[arg(long)]
    no_fusion: bool,
    #[command(flatten)]
    qnn: QnnArgs,
}

impl ModelArgs {
    fn options(&self) -> Result<LoadOptions, EngineError> {
        let mut placement = PlacementOptions::from_env()?;
        placement.no_fallback = self.no_fallback;
        let isa = match &self.isa {
            Some(s) => Some(Isa::parse(s).map_err(EngineError::InvalidArgument)?),
            None => None,
        };
        Ok(LoadOptions {
            backend: BackendChoice::parse(&self.backend)?,
            threads: self.threads,
            isa,
            placement,
            no_fusion: self.no_fusion,
            profile: false,
            qnn: self.qnn.settings()?,
        })
    }

    fn load(&self) -> Result<Arc<Model>, EngineError> {
        let opts = self.options()?;
        let path = self.model.clone().unwrap_or_else(wisp::default_model_path);
        let t = Instant::now();
        let m = wisp::load_model(&path, &opts)?;
        tracing::info!(
            ms = t.elapsed().as_secs_f64() * 1e3,
            backend = %m.backends().iter().map(|b| b.describe()).collect::<Vec<_>>().join(", "),
            "model loaded"
        );
        Ok(m)
    }
}

#[derive(Args, Clone)]
struct SamplingArgs {
    /// Temperature; 0 is greedy.
    #[arg(long = "temp", default_value_t = 0.8)]
    temp: f32,
    /// Random seed (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long = "top-k", default_value_t = 40)]
    top_k: usize,
    #[arg(long = "top-p", default_value_t = 0.95)]
    top_p: f32,
    #[arg(long = "min-p", default_value_t = 0.05)]
    min_p: f32,
    #[arg(long = "repeat-penalty", default_value_t = 1.0)]
    repeat_penalty: f32,
    #[arg(long = "repeat-last-n", default_value_t = 64)]
    repeat_last_n: usize,
}

impl SamplingArgs {
    fn params(&self) -> SamplingParams {
        let seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        SamplingParams {
            temperature: self.temp,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            seed,
        }
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sim: SimArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// The prompt. Special tokens written in it (<|im_start|>) are parsed as such.
    #[arg(short = 'p', long = "prompt")]
    prompt: String,
    /// Tokens to generate.
    #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
    n: usize,
    /// Context size (KV-cache positions).
    #[arg(short = 'c', long = "ctx-size", default_value_t = 2048)]
    ctx: usize,
    /// KV-cache type: f16 or f32.
    #[arg(long = "kv-type", default_value = "f16")]
    kv_type: String,
    /// Treat special-token text in the prompt as plain text.
    #[arg(long)]
    no_special: bool,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    json: bool,
    /// With --json: the top-K raw logits each generated token was chosen from.
    #[arg(long = "n-probs", default_value_t = 0)]
    n_probs: usize,
}

#[derive(Args)]
struct ChatArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Most tokens per reply.
    #[arg(short = 'n', long = "n-predict", default_value_t = 512)]
    n: usize,
    #[arg(short = 'c', long = "ctx-size", default_value_t = 4096)]
    ctx: usize,
    /// System prompt (else the template's default).
    #[arg(long)]
    system: Option<String>,
}

#[derive(Args)]
struct TokenizeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Parse special-token text (<|im_start|>) as single tokens.
    #[arg(long)]
    special: bool,
    text: String,
}

#[derive(Args)]
struct InspectArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Also list every node's placement.
    #[arg(long)]
    nodes: bool,
    /// Prompt length for the prefill plan shown beside the decode plan.
    #[arg(long, default_value_t = 128)]
    prefill: usize,
    /// Context size the plans are built for.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 2048)]
    ctx: usize,
}

fn kv_dtype(s: &str) -> Result<DType, EngineError> {
    match s {
        "f16" => Ok(DType::F16),
        "f32" => Ok(DType::F32),
        o => Err(EngineError::InvalidArgument(format!(
            "KV type {o:?} (use f16 or f32)"
        ))),
    }
}

fn run(a: RunArgs) -> Result<(), EngineError> {
    let model = a.sim.apply_decoder(a.model.load()?)?;
    let prompt = model.encode_prompt(&a.prompt, !a.no_special)?;
    let n_ctx = a.ctx.max(prompt.len() + a.n);
    let mut session = model.session(SessionOptions {
        n_ctx,
        kv_dtype: kv_dtype(&a.kv_type)?,
        ..Default::default()
    })?;
    let mut sampler = Sampler::new(a.sampling.params());
    let opts = GenerateOptions {
        max_tokens: a.n,
        n_probs: if a.json { a.n_probs } else { 0 },
        stop_on_eog: true,
    };
    let tok = model.tokenizer().clone();
    let mut stream = Utf8Stream::default();
    let mut stdout = std::io::stdout().lock();
    let json = a.json;
    // On the NPU the prompt runs through the fixed prefill bucket and the decode
    // bucket; generation starts from its last token.
    let qnn = model.backends()[0].name() == "qnn";
    let t_prefill = Instant::now();
    let start = if qnn && prompt.len() > 1 {
        wisp::prefill_buckets(
            &mut session,
            &prompt[..prompt.len() - 1],
            wisp::QNN_PREFILL_CHUNK,
        )?;
        prompt.len() - 1
    } else {
        0
    };
    let prefill_s = t_prefill.elapsed().as_secs_f64();
    let out = generate(&mut session, &prompt[start..], &mut sampler, &opts, |id| {
        if !json {
            if let Ok(b) = tok.token_bytes(id, false) {
                let s = stream.push(&b);
                // A closed pipe (e.g. `| head`) just stops the stream.
                if stdout
                    .write_all(s.as_bytes())
                    .and_then(|_| stdout.flush())
                    .is_err()
                {
                    return false;
                }
            }
        }
        true
    })?;
    if json {
        let text = String::from_utf8_lossy(&tok.decode(&out.ids, true)?).into_owned();
        let mut obj = json!({"prompt_ids": prompt, "ids": out.ids, "text": text});
        if a.n_probs > 0 {
            obj["top"] = json!(out
                .top
                .iter()
                .map(|t| t.iter().map(|&(i, l)| json!([i, l])).collect::<Vec<_>>())
                .collect::<Vec<_>>());
        }
        println!("{obj}");
    } else {
        let rest = stream.finish();
        let _ = writeln!(stdout, "{rest}");
    }
    let label = if wisp::runs_on_emulator(model.backends()) {
        " (QNN emulator latency, not device latency)"
    } else {
        ""
    };
    if start > 0 {
        eprintln!(
            "[prompt: {} tokens ({} in buckets, {:.2} s) | generated: {} tokens, {:.1} tok/s]{label}",
            prompt.len(),
            start,
            prefill_s,
            out.ids.len(),
            out.decode_tps()
        );
    } else {
        eprintln!(
            "[prompt: {} tokens, {:.1} tok/s | generated: {} tokens, {:.1} tok/s]{label}",
            out.prompt_tokens,
            out.prompt_tps(),
            out.ids.len(),
            out.decode_tps()
        );
    }
    Ok(())
}

fn chat(a: ChatArgs) -> Result<(), EngineError> {
    let model = a.model.load()?;
    let Some(template) = model.chat_template() else {
        return Err(EngineError::InvalidArgument(
            "this model has no chat template (it is a base model); use `wisp run -p ...`".into(),
        ));
    };
    let mut session = model.session(SessionOptions {
        n_ctx: a.ctx,
        ..Default::default()
    })?;
    let mut sampler = Sampler::new(a.sampling.params());
    let mut messages: Vec<Message> = Vec::new();
    if let Some(s) = &a.system {
        messages.push(Message::new("system", s));
    }
    // Tokens whose keys/values are in the cache, in order.
    let mut cached: Vec<u32> = Vec::new();
    let tok = model.tokenizer().clone();
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    eprintln!("wisp chat — /reset clears the conversation, /exit or Ctrl-D quits");
    loop {
        print!("> ");
        let _ = stdout.flush();
        let mut line = String::new();
        if stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| EngineError::InvalidArgument(e.to_string()))?
            == 0
        {
            println!();
            return Ok(());
        }
        let line = line.trim_end_matches(['\n', '\r']);
        match line.trim() {
            "" => continue,
            "/exit" | "/quit" => return Ok(()),
            "/reset" => {
                messages.retain(|m| m.role == "system");
                session.reset();
                cached.clear();
                continue;
            }
            _ => {}
        }
        messages.push(Message::new("user", line));
        let text = template.render(&messages, true)?;
        let ids = model.encode_prompt(&text, true)?;
        // Reuse the cached prefix; evaluate only what is new.
        let common = cached.iter().zip(&ids).take_while(|(a, b)| a == b).count();
        let common = common.min(ids.len().saturating_sub(1));
        session.truncate(common);
        cached.truncate(common);
        if ids.len() + a.n > a.ctx {
            return Err(EngineError::ContextFull {
                needed: ids.len() + a.n,
                n_ctx: a.ctx,
            });
        }
        let mut stream = Utf8Stream::default();
        let out = generate(
            &mut session,
            &ids[common..],
            &mut sampler,
            &GenerateOptions {
                max_tokens: a.n,
                ..Default::default()
            },
            |id| {
                if let Ok(b) = tok.token_bytes(id, false) {
                    print!("{}", stream.push(&b));
                    let _ = std::io::stdout().flush();
                }
                true
            },
        )?;
        println!("{}", stream.finish());
        cached.extend_from_slice(&ids[common..]);
        cached.extend_from_slice(&out.ids[..out.ids.len().saturating_sub(1)]);
        let reply: Vec<u32> = out
            .ids
            .iter()
            .copied()
            .filter(|&i| !model.is_eog(i))
            .collect();
        let reply = String::from_utf8_lossy(&tok.decode(&reply, false)?).into_owned();
        messages.push(Message::new("assistant", &reply));
        tracing::info!(
            prompt_tokens = ids.len() - common,
            generated = out.ids.len(),
            tps = out.decode_tps(),
            "turn"
        );
    }
}

fn tokenize(a: TokenizeArgs) -> Result<(), EngineError> {
    let model = a.model.load()?;
    let ids = model.encode_prompt(&a.text, a.special)?;
    println!("{}", json!(ids));
    Ok(())
}

fn human(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.2} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// Prints a placement report: op counts per backend, partitions, fallback
/// rates, boundary traffic, the reason of every fallback (and with `nodes`,
/// every node's placement).
fn print_report(r: &wisp::PlacementReport, nodes: bool) {
    println!(
        "nodes: {}, partitions: {}",
        r.total_nodes,
        r.partitions.len()
    );
    for (op, backend, c) in r.op_counts() {
        println!("  {op:<18} {backend:<10} {c}");
    }
    let parts: Vec<String> = r
        .partitions
        .iter()
        .map(|(b, n)| format!("{b}:{n}"))
        .collect();
    println!("partitions (backend:nodes): {}", parts.join(" "));
    println!(
        "fallback rate: {:.1}% of nodes, {:.1}% of FLOPs; boundary copies {} ({} bytes)",
        100.0 * r.fallback_rate_nodes(),
        100.0 * r.fallback_rate_flops(),
        r.boundary_copies,
        r.boundary_bytes
    );
    if r.backends.len() > 1 {
        let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
        for p in r.nodes.iter().filter(|p| p.backend != r.backends[0]) {
            let why = p
                .refused
                .iter()
                .map(|(b, w)| format!("{b}: {w}"))
                .collect::<Vec<_>>()
                .join("; ");
            *reasons
                .entry(format!("{} -> {} ({why})", p.op, p.backend))
                .or_default() += 1;
        }
        for (why, n) in reasons {
            println!("  fallback x{n}: {why}");
        }
    }
    if nodes {
        for p in &r.nodes {
            let why = p
                .refused
                .iter()
                .map(|(b, w)| format!("{b}: {w}"))
                .collect::<Vec<_>>()
                .join("; ");
            println!("  {:<24} {:<10} {:<10} {}", p.value, p.op, p.backend, why);
        }
    }
}

/// `inspect` of an encoder (BERT): config, backends and the plan of one sequence.
fn inspect_encoder(a: &InspectArgs, path: &std::path::Path) -> Result<(), EngineError> {
    let model = wisp::load_encoder(path, &a.model.options()?)?;
    println!("# encoder\n{}", model.source);
    println!("\n# config\n{:?}", model.config());
    println!(
        "\n# backends\n{}",
        model
            .backends()
            .iter()
            .map(|b| b.describe())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let seq = a.prefill.clamp(1, model.config().max_positions);
    let cg = model.compiled(&wisp::engine::model::bert::EncoderShape { batch: 1, seq })?;
    println!("\n# plan: one sequence of {seq} tokens");
    print_report(&cg.report, a.nodes);
    println!(
        "arena: {} for activations totalling {}",
        human(cg.plan.layout.size),
        human(cg.plan.layout.total_value_bytes)
    );
    Ok(())
}

fn inspect(a: InspectArgs) -> Result<(), EngineError> {
    if let Some(p) = a.model.model.clone().filter(|p| wisp::is_encoder(p)) {
        return inspect_encoder(&a, &p);
    }
    let model = a.model.load()?;
    let f = model.file();
    println!("# file");
    println!(
        "GGUF v{}, {} metadata keys, {} tensors, {} bytes, alignment {}",
        f.version(),
        f.metadata().len(),
        f.tensors().len(),
        f.file_len(),
        f.alignment()
    );
    println!("\n# metadata");
    for (k, v) in f.metadata() {
        println!("{k} = {}", v.summary(100));
    }
    println!("\n# tensors");
    for t in f.tensors() {
        let shape: Vec<u64> = t.dims.iter().rev().copied().collect();
        println!(
            "{:<28} {:<5} {:?} {} bytes",
            t.name,
            t.dtype.name(),
            shape,
            t.bytes
        );
    }
    println!("\n# config\n{:?}", model.config());
    println!(
        "\n# backends\n{}",
        model
            .backends()
            .iter()
            .map(|b| b.describe())
            .collect::<Vec<_>>()
            .join("\n")
    );
    for (label, n) in [("decode", 1usize), ("prefill", a.prefill.max(1))] {
        let cg = model.compiled(&GraphShape {
            n_tokens: n,
            n_ctx: a.ctx,
            kv_dtype: DType::F16,
            logits: LogitsMode::Last,
        })?;
        let r = &cg.report;
        println!("\n# plan: {label} ({n} tokens, context {})", a.ctx);
        print_report(r, false);
        println!(
            "arena: {} for activations totalling {} ({:.1}%), {} nodes in place",
            human(cg.plan.layout.size),
            human(cg.plan.layout.total_value_bytes),
            100.0 * cg.plan.layout.size as f64 / cg.plan.layout.total_value_bytes.max(1) as f64,
            cg.plan.inplace.iter().filter(|&&b| b).count()
        );
        if a.nodes {
            print_report(r, true);
        }
    }
    Ok(())
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`), if known.
fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let m = xs.iter().sum::<f64>() / n;
    let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, v.sqrt())
}

fn percentile(xs: &[f64], p: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

fn bench(a: BenchArgs) -> Result<(), EngineError> {
    if a.reps == 0 {
        return Err(EngineError::InvalidArgument(
            "--repetitions must be at least 1".into(),
        ));
    }
    let path = a.model.clone().unwrap_or_else(wisp::default_model_path);
    let isa = match &a.isa {
        Some(s) => Some(Isa::parse(s).map_err(EngineError::InvalidArgument)?),
        None => None,
    };
    if !a.json {
        println!(
            "| model | backend | isa | threads | test | t/s | p50 ms | p95 ms | overhead ms/tok | load ms | peak RSS MiB | fallback |"
        );
        println!("|---|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|");
    }
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if wisp::is_encoder(&path) {
        return bench_encoder(&a, &path, isa, &name);
    }
    for &threads in &a.threads {
        let t0 = Instant::now();
        let model = wisp::load_model(
            &path,
            &LoadOptions {
                backend: BackendChoice::parse(&a.backend)?,
                threads,
                isa,
                placement: PlacementOptions::from_env()?,
                no_fusion: false,
                profile: true,
                qnn: a.qnn.settings()?,
            },
        )?;
        let load_ms = t0.elapsed().as_secs_f64() * 1e3;
        let (backend_label, isa_name) = bench_labels(&a.backend, model.backends());
        let n_vocab = model.config().n_vocab as u64;
        // Deterministic pseudo-random tokens, like llama-bench's random prompt.
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut next_tok = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n_vocab) as u32
        };
        let max_len = a
            .prompts
            .iter()
            .chain(a.gens.iter())
            .copied()
            .max()
            .unwrap_or(1)
            + 1;
        let mut session = model.session(SessionOptions {
            n_ctx: max_len.max(16),
            n_batch: max_len.max(16),
            ..Default::default()
        })?;
        let mut rows: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
        for &p in a.prompts.iter().filter(|&&p| p > 0) {
            let toks: Vec<u32> = (0..p).map(|_| next_tok()).collect();
            // Warm-up run (page-in of the weights, graph compilation).
            session.reset();
            session.eval(&toks, LogitsMode::Last)?;
            let mut tps = Vec::new();
            let mut lat = Vec::new();
            for _ in 0..a.reps {
                session.reset();
                let t = Instant::now();
                session.eval(&toks, LogitsMode::Last)?;
                let s = t.elapsed().as_secs_f64();
                tps.push(p as f64 / s);
                lat.push(s * 1e3);
            }
            if let Some(ops) = model.backends()[0].take_profile() {
                if std::env::var_os("WISP_PROFILE").is_some() {
                    print_profile(threads, &format!("pp{p}"), ops);
                }
            }
            rows.push((format!("pp{p}"), tps, lat));
        }
        let mut overhead_ms = f64::NAN;
        for &n in a.gens.iter().filter(|&&n| n > 0) {
            session.reset();
            session.eval(&[next_tok()], LogitsMode::Last)?;
            let mut tps = Vec::new();
            let mut lat = Vec::new();
            let profile_start = model.backends()[0].take_profile();
            for _ in 0..a.reps {
                session.reset();
                let mut id = next_tok();
                let t = Instant::now();
                for _ in 0..n {
                    let ts = Instant::now();
                    let logits = session.eval_last(&[id])?;
                    id = wisp::engine::sampling::argmax(logits);
                    lat.push(ts.elapsed().as_secs_f64() * 1e3);
                }
                tps.push(n as f64 / t.elapsed().as_secs_f64());
            }
            // Per-token overhead: wall time minus the time spent inside ops
            // (thread hand-off, barriers, graph lookup, sampling's argmax).
            if let (Some(_), Some(ops)) = (profile_start, model.backends()[0].take_profile()) {
                let op_s: f64 = ops.iter().map(|o| o.seconds).sum();
                let wall_s: f64 = lat.iter().sum::<f64>() / 1e3;
                overhead_ms = (wall_s - op_s) * 1e3 / lat.len().max(1) as f64;
                if std::env::var_os("WISP_PROFILE").is_some() {
                    print_profile(threads, &format!("tg{n}"), ops);
                }
            }
            rows.push((format!("tg{n}"), tps, lat));
        }
        let rss = peak_rss_mb().unwrap_or(0.0);
        let cg = model.compiled(&wisp::engine::model::GraphShape {
            n_tokens: 1,
            n_ctx: max_len.max(16),
            kv_dtype: DType::F16,
            logits: LogitsMode::Last,
        })?;
        let fallback = cg.report.fallback_rate_nodes();
        for (test, tps, lat) in rows {
            let (m, sd) = mean_sd(&tps);
            let (p50, p95) = (percentile(&lat, 50.0), percentile(&lat, 95.0));
            if a.json {
                println!(
                    "{}",
                    json!({"model": name, "test": test, "threads": threads, "tokens_per_s": m, "stddev": sd,
                        "p50_ms": p50, "p95_ms": p95, "load_ms": load_ms, "peak_rss_mb": rss,
                        "backend": backend_label, "isa": isa_name, "fallback_rate": fallback,
                        "overhead_ms_per_token": if test.starts_with("tg") && overhead_ms.is_finite() { json!(overhead_ms) } else { json!(null) }})
                );
            } else {
                let ovh = if test.starts_with("tg") && overhead_ms.is_finite() {
                    format!("{overhead_ms:.3}")
                } else {
                    "-".into()
                };
                println!(
                    "| {name} | {} | {isa_name} | {threads} | {test} | {m:.1} ± {sd:.1} | {p50:.2} | {p95:.2} | {ovh} | {load_ms:.0} | {rss:.0} | {:.1}% |",
                    backend_label,
                    100.0 * fallback
                );
            }
        }
    }
    Ok(())
}

fn embed(a: EmbedArgs) -> Result<(), EngineError> {
    let path = a.model.clone().unwrap_or_else(wisp::default_encoder_path);
    let opts = LoadOptions {
        backend: BackendChoice::parse(&a.backend)?,
        threads: a.threads,
        placement: PlacementOptions::from_env()?,
        qnn: a.qnn.settings()?,
        ..Default::default()
    };
    let t = Instant::now();
    let model = a.sim.apply(wisp::load_encoder(&path, &opts)?)?;
    tracing::info!(ms = t.elapsed().as_secs_f64() * 1e3, "encoder loaded");
    let mut texts = a.texts.clone();
    if let Some(f) = &a.file {
        let body = std::fs::read(f).map_err(|e| {
            EngineError::InvalidArgument(format!("cannot read {}: {e}", f.display()))
        })?;
        let body = String::from_utf8(body).map_err(|e| {
            EngineError::InvalidArgument(format!("{} is not UTF-8: {e}", f.display()))
        })?;
        texts.extend(
            body.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
    }
    if texts.is_empty() {
        return Err(EngineError::InvalidArgument(
            "nothing to embed: give TEXT arguments or --file".into(),
        ));
    }
    let mut stdout = std::io::stdout().lock();
    let mut index = 0usize;
    let emulator = wisp::runs_on_emulator(model.backends());
    let t_all = Instant::now();
    // Windows of texts, each sorted by length into batches (`embed_many`) and
    // printed in input order: memory stays bounded on long files.
    let batch = a.batch.max(1);
    for chunk in texts.chunks(batch.saturating_mul(64)) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let t = Instant::now();
        let vecs = model.embed_many(&refs, batch)?;
        tracing::info!(
            texts = refs.len(),
            ms = t.elapsed().as_secs_f64() * 1e3,
            "window embedded"
        );
        for v in vecs {
            let line = json!({"index": index, "embedding": v});
            if writeln!(stdout, "{line}").is_err() {
                return Ok(());
            }
            index += 1;
        }
    }
    if emulator {
        eprintln!(
            "[{index} texts in {:.1} ms: QNN emulator latency, not device latency]",
            t_all.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}

fn quantize(a: QuantizeArgs) -> Result<(), EngineError> {
    let target = wisp::quantize::parse_type(&a.ty)?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} tensors {elapsed}")
            .map_err(|e| EngineError::Internal(e.to_string()))?,
    );
    let mut progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let t = Instant::now();
    let bytes = if a.input.is_dir() {
        let model = wisp::load_encoder(
            &a.input,
            &LoadOptions {
                backend: BackendChoice::Reference,
                ..Default::default()
            },
        )?;
        wisp::quantize::quantize_encoder(&model, target, &a.output, &mut progress)?
    } else {
        let f = wisp::formats::GgufFile::open(&a.input)?;
        wisp::quantize::quantize_gguf(&f, target, &a.output, &mut progress)?
    };
    bar.finish_and_clear();
    eprintln!(
        "wrote {} ({:.1} MiB, {}) in {:.1} s",
        a.output.display(),
        bytes as f64 / (1 << 20) as f64,
        target.name(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A UTF-8 text file, with an error that names the file.
fn read_text(path: &std::path::Path) -> Result<String, EngineError> {
    let bytes = std::fs::read(path).map_err(|e| {
        EngineError::InvalidArgument(format!("cannot read {}: {e}", path.display()))
    })?;
    String::from_utf8(bytes)
        .map_err(|e| EngineError::InvalidArgument(format!("{} is not UTF-8: {e}", path.display())))
}

fn calibrate(a: CalibrateArgs) -> Result<(), EngineError> {
    let path = a.model.clone().unwrap_or_else(wisp::default_encoder_path);
    let opts = LoadOptions {
        threads: a.threads,
        no_fusion: a.no_fusion,
        ..Default::default()
    };
    let body = read_text(&a.data)?;
    let texts: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
    if texts.is_empty() {
        return Err(EngineError::InvalidArgument(
            "no calibration inputs in the file".into(),
        ));
    }
    let t = Instant::now();
    let calib = if wisp::is_encoder(&path) {
        wisp::calibrate_encoder(
            &*wisp::load_encoder(&path, &opts)?,
            &texts,
            a.percentile,
            16,
        )?
    } else {
        wisp::calibrate_decoder(
            &wisp::load_model(&path, &opts)?,
            &texts,
            a.percentile,
            a.ctx,
        )?
    };
    std::fs::write(&a.output, calib.to_text()).map_err(|e| {
        EngineError::InvalidArgument(format!("cannot write {}: {e}", a.output.display()))
    })?;
    eprintln!(
        "{} activations over {} inputs ({:.1} s) -> {}",
        calib.entries.len(),
        texts.len(),
        t.elapsed().as_secs_f64(),
        a.output.display()
    );
    Ok(())
}

fn eval(a: EvalArgs) -> Result<(), EngineError> {
    let opts = LoadOptions {
        threads: a.threads,
        placement: PlacementOptions::from_env()?,
        ..Default::default()
    };
    let body = read_text(&a.file)?;
    if wisp::is_encoder(&a.model) {
        let m = a.sim.apply(wisp::load_encoder(&a.model, &opts)?)?;
        let b = wisp::load_encoder(&a.base, &opts)?;
        let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return Err(EngineError::InvalidArgument(
                "no sentences in the file".into(),
            ));
        }
        let mut cos = Vec::with_capacity(lines.len());
        for chunk in lines.chunks(16) {
            for (x, y) in m.embed(chunk)?.iter().zip(b.embed(chunk)?) {
                let dot: f64 = x.iter().zip(&y).map(|(p, q)| *p as f64 * *q as f64).sum();
                let nx: f64 = x.iter().map(|p| (*p as f64).powi(2)).sum::<f64>().sqrt();
                let ny: f64 = y.iter().map(|p| (*p as f64).powi(2)).sum::<f64>().sqrt();
                cos.push(dot / (nx * ny).max(1e-30));
            }
        }
        let mean = cos.iter().sum::<f64>() / cos.len() as f64;
        let min = cos.iter().cloned().fold(f64::INFINITY, f64::min);
        if a.json {
            println!(
                "{}",
                json!({"kind": "encoder", "inputs": cos.len(), "cosine_mean": mean, "cosine_min": min})
            );
        } else {
            println!(
                "{} inputs: cosine vs base mean {mean:.5}, min {min:.5}",
                cos.len()
            );
        }
        return Ok(());
    }
    let (m, b) = (
        wisp::load_model(&a.model, &opts)?,
        wisp::load_model(&a.base, &opts)?,
    );
    let tokens = b.tokenizer().encode(&body, false)?;
    let n = (tokens.len() / a.ctx).min(a.windows) * a.ctx;
    if n == 0 {
        return Err(EngineError::InvalidArgument(format!(
            "the text is shorter than one window of {}",
            a.ctx
        )));
    }
    let tokens = &tokens[..n];
    let bos = if b.special().add_bos {
        b.special().bos
    } else {
        None
    };
    let pm = wisp::engine::perplexity::perplexity(
        &m,
        tokens,
        a.ctx,
        bos,
        DType::F16,
        &mut |_, _, _| {},
    )?;
    let pb = wisp::engine::perplexity::perplexity(
        &b,
        tokens,
        a.ctx,
        bos,
        DType::F16,
        &mut |_, _, _| {},
    )?;
    // Top-1 agreement over the same scored positions.
    let nv = b.config().n_vocab;
    let (mut agree, mut total) = (0usize, 0usize);
    for w in 0..n / a.ctx {
        let chunk = &tokens[w * a.ctx..(w + 1) * a.ctx];
        let mut sm = m.session(SessionOptions {
            n_ctx: a.ctx,
            n_batch: a.ctx,
            ..Default::default()
        })?;
        let mut sb = b.session(SessionOptions {
            n_ctx: a.ctx,
            n_batch: a.ctx,
            ..Default::default()
        })?;
        let (lm, lb) = (
            sm.eval(chunk, LogitsMode::All)?,
            sb.eval(chunk, LogitsMode::All)?,
        );
        for j in a.ctx / 2..a.ctx - 1 {
            let am = wisp::engine::sampling::argmax(&lm[j * nv..(j + 1) * nv]);
            let ab = wisp::engine::sampling::argmax(&lb[j * nv..(j + 1) * nv]);
            agree += (am == ab) as usize;
            total += 1;
        }
    }
    let top1 = agree as f64 / total.max(1) as f64;
    if a.json {
        println!(
            "{}",
            json!({"kind": "decoder", "ppl": pm.ppl, "ppl_base": pb.ppl, "ppl_delta": pm.ppl - pb.ppl,
                "top1_agreement": top1, "tokens": pm.tokens})
        );
    } else {
        println!(
            "perplexity {:.4} vs base {:.4} (Δ {:+.4}); top-1 agreement {:.2}% over {} tokens",
            pm.ppl,
            pb.ppl,
            pm.ppl - pb.ppl,
            100.0 * top1,
            pm.tokens
        );
    }
    Ok(())
}

/// Every f32 activation of one run, in the order produced.
type Trace = Vec<(String, Vec<f32>)>;

fn trace_run(
    path: &std::path::Path,
    opts: &LoadOptions,
    a: &DiffArgs,
) -> Result<Trace, EngineError> {
    let mut trace: Trace = Vec::new();
    let mut obs = |name: &str, data: &[f32]| trace.push((name.to_string(), data.to_vec()));
    if wisp::is_encoder(path) {
        let m = wisp::load_encoder(path, opts)?;
        let batch = m.tokenize(&[a.prompt.as_str()])?;
        m.embed_batch_observed(&batch, Some(&mut obs))?;
    } else {
        let m = wisp::load_model(path, opts)?;
        let ids = m.encode_prompt(&a.prompt, true)?;
        let mut s = m.session(SessionOptions {
            n_ctx: a.ctx.max(ids.len()),
            n_batch: ids.len().max(1),
            ..Default::default()
        })?;
        s.eval_observed(&ids, LogitsMode::Last, Some(&mut obs))?;
    }
    Ok(trace)
}

fn diff(a: DiffArgs) -> Result<(), EngineError> {
    let path = a
        .model
        .model
        .clone()
        .unwrap_or_else(wisp::default_model_path);
    let mut opts = a.model.options()?;
    opts.no_fusion = true;
    if opts.backend == BackendChoice::Qnn {
        opts.qnn.expose_all = true;
    }
    let reference = LoadOptions {
        backend: BackendChoice::Reference,
        no_fusion: true,
        ..Default::default()
    };
    let want = trace_run(&path, &reference, &a)?;
    let got: std::collections::HashMap<String, Vec<f32>> =
        trace_run(&path, &opts, &a)?.into_iter().collect();
    let calib = opts.qnn.calibration.clone();
    let sim = opts.qnn.sim.clone();
    // A value's absolute tolerance: two steps of its quantization grid (or 1e-3 in fp16).
    let step = |name: &str| -> f64 {
        let Some(e) = calib.as_ref().and_then(|c| c.get(name)) else {
            return 1e-3;
        };
        let wide = sim.wide.iter().any(|w| name.contains(w.as_str()));
        let bits = if wide {
            16
        } else if sim.bits == 0 {
            e.bits
        } else {
            sim.bits
        };
        let (lo, hi) = if sim.clip && bits == 8 {
            (e.lo, e.hi)
        } else {
            (e.min, e.max)
        };
        2.0 * wisp::engine::calibration::qparams(lo, hi, bits).0 as f64
    };
    println!(
        "{:<28} {:>8} {:>12} {:>12} {:>8}",
        "value", "elements", "max |err|", "tolerance", "ratio"
    );
    let mut first_bad = None;
    let mut compared = 0;
    for (name, w) in &want {
        let Some(g) = got.get(name) else { continue };
        if g.len() != w.len() {
            continue;
        }
        compared += 1;
        let err = g
            .iter()
            .zip(w)
            .map(|(x, y)| (*x as f64 - *y as f64).abs())
            .fold(0.0, f64::max);
        let scale = w.iter().map(|v| (*v as f64).abs()).fold(0.0, f64::max);
        let tol = step(name) + a.rtol * scale;
        // NaN errors count as over tolerance.
        let bad = err.is_nan() || err > tol;
        if a.all || first_bad.is_none() {
            println!(
                "{name:<28} {:>8} {err:>12.4e} {tol:>12.4e} {:>8.3}{}",
                w.len(),
                err / tol,
                if bad { "  <- exceeds" } else { "" }
            );
        }
        if bad && first_bad.is_none() {
            first_bad = Some((name.clone(), err, tol));
        }
    }
    match first_bad {
        Some((name, err, tol)) => println!(
            "first value over tolerance: {name} (max |err| {err:.4e} > {tol:.4e}); {compared} values compared"
        ),
        None => println!("all {compared} values within tolerance"),
    }
    Ok(())
}

fn print_profile(threads: usize, test: &str, mut prof: Vec<wisp::engine::OpTime>) {
    let total: f64 = prof.iter().map(|p| p.seconds).sum();
    eprintln!("profile ({threads} threads, {test}): op, calls, ms, share");
    prof.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    for p in prof {
        eprintln!(
            "  {:<14} {:>8} {:>10.1} {:>5.1}%",
            p.op,
            p.calls,
            p.seconds * 1e3,
            100.0 * p.seconds / total.max(1e-12)
        );
    }
}

/// Encoder latency: batch 1, one sequence of each `-p` length, p50/p95 over `-r` runs.
fn bench_encoder(
    a: &BenchArgs,
    path: &std::path::Path,
    isa: Option<Isa>,
    name: &str,
) -> Result<(), EngineError> {
    for &threads in &a.threads {
        let t0 = Instant::now();
        let model = wisp::load_encoder(
            path,
            &LoadOptions {
                backend: BackendChoice::parse(&a.backend)?,
                threads,
                isa,
                placement: PlacementOptions::from_env()?,
                no_fusion: false,
                profile: std::env::var_os("WISP_PROFILE").is_some(),
                qnn: a.qnn.settings()?,
            },
        )?;
        let load_ms = t0.elapsed().as_secs_f64() * 1e3;
        let (backend_label, isa_name) = bench_labels(&a.backend, model.backends());
        let tok = model.tokenizer();
        let n_vocab = model.config().n_vocab as u32;
        for &seq in a.prompts.iter().filter(|&&p| p >= 2) {
            // [CLS] + pseudo-random ordinary tokens + [SEP], no padding.
            let mut ids = vec![tok.cls_id()];
            ids.extend((0..seq - 2).map(|i| 1000 + (i as u32 * 7919) % (n_vocab - 1000)));
            ids.push(tok.sep_id());
            let batch = wisp::engine::tokenizer::wordpiece::Batch {
                mask: vec![1; seq],
                type_ids: vec![0; seq],
                ids,
                batch: 1,
                seq,
            };
            model.embed_batch(&batch)?;
            let _ = model.backends()[0].take_profile();
            let mut lat = Vec::new();
            for _ in 0..a.reps.max(1) {
                let t = Instant::now();
                model.embed_batch(&batch)?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            if let Some(ops) = model.backends()[0].take_profile() {
                print_profile(threads, &format!("seq{seq}"), ops);
            }
            let (p50, p95) = (percentile(&lat, 50.0), percentile(&lat, 95.0));
            let rss = peak_rss_mb().unwrap_or(0.0);
            if a.json {
                println!(
                    "{}",
                    json!({"model": name, "test": format!("embed_seq{seq}"), "threads": threads, "batch": 1,
                        "p50_ms": p50, "p95_ms": p95, "load_ms": load_ms, "peak_rss_mb": rss,
                        "backend": backend_label, "isa": isa_name})
                );
            } else {
                println!(
                    "| {name} | {} | {isa_name} | {threads} | embed seq{seq} | - | {p50:.2} | {p95:.2} | - | {load_ms:.0} | {rss:.0} | - |",
                    backend_label
                );
            }
        }
    }
    Ok(())
}

fn perplexity(a: PerplexityArgs) -> Result<(), EngineError> {
    let model = a.sim.apply_decoder(a.model.load()?)?;
    let bytes = std::fs::read(&a.file).map_err(|e| {
        EngineError::InvalidArgument(format!("cannot read {}: {e}", a.file.display()))
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        EngineError::InvalidArgument(format!("{} is not UTF-8: {e}", a.file.display()))
    })?;
    let tokens = model.tokenizer().encode(&text, false)?;
    let bos = if model.special().add_bos {
        model.special().bos
    } else {
        None
    };
    let windows = (tokens.len() / a.ctx.max(1)) as u64;
    eprintln!(
        "{} tokens, {} windows of {} (scoring the second half of each)",
        tokens.len(),
        windows,
        a.ctx
    );
    let bar = indicatif::ProgressBar::new(windows);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} windows, {elapsed} [{msg}]")
            .map_err(|e| EngineError::Internal(e.to_string()))?,
    );
    let t = Instant::now();
    let r = wisp::engine::perplexity::perplexity(
        &model,
        &tokens,
        a.ctx,
        bos,
        kv_dtype(&a.kv_type)?,
        &mut |done, _total, ppl| {
            bar.set_position(done as u64);
            bar.set_message(format!("PPL {ppl:.4}"));
        },
    )?;
    bar.finish();
    eprintln!(
        "Final estimate: PPL = {:.4} +/- {:.5} ({} tokens scored, {:.1} s)",
        r.ppl,
        r.ppl_stderr,
        r.tokens,
        t.elapsed().as_secs_f64()
    );
    if a.json {
        println!(
            "{}",
            json!({"ppl": r.ppl, "ppl_stderr": r.ppl_stderr, "tokens": r.tokens, "windows": r.windows})
        );
    }
    Ok(())
}

/// The bench table's backend column (marked when the NPU is the emulator) and
/// ISA column (from the first backend's description, "-" when it has none).
fn bench_labels(
    backend: &str,
    backends: &[std::sync::Arc<dyn wisp::engine::Backend>],
) -> (String, String) {
    let label = if wisp::runs_on_emulator(backends) {
        format!("{backend} (emulator latency)")
    } else {
        backend.to_string()
    };
    let isa = backends[0]
        .describe()
        .split("isa ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("-")
        .to_string();
    (label, isa)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WISP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Chat(a) => chat(a),
        Cmd::Tokenize(a) => tokenize(a),
        Cmd::Inspect(a) => inspect(a),
        Cmd::Bench(a) => bench(a),
        Cmd::Perplexity(a) => perplexity(a),
        Cmd::Embed(a) => embed(a),
        Cmd::Quantize(a) => quantize(a),
        Cmd::Eval(a) => eval(a),
        Cmd::Calibrate(a) => calibrate(a),
        Cmd::Diff(a) => diff(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
