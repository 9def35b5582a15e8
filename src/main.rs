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
    /// Force the CPU instruction set: scalar, avx2, avx512, neon (else WISP_ISA, else best).
    #[arg(long)]
    isa: Option<String>,
    /// Fail instead of falling back to the CPU for any node.
    #[arg(long)]
    no_fallback: bool,
}

impl ModelArgs {
    fn load(&self) -> Result<Arc<Model>, EngineError> {
        let mut placement = PlacementOptions::from_env()?;
        placement.no_fallback = self.no_fallback;
        let isa = match &self.isa {
            Some(s) => Some(Isa::parse(s).map_err(EngineError::InvalidArgument)?),
            None => None,
        };
        let opts = LoadOptions {
            backend: BackendChoice::parse(&self.backend)?,
            threads: self.threads,
            isa,
            placement,
        };
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
    let model = a.model.load()?;
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
    let out = generate(&mut session, &prompt, &mut sampler, &opts, |id| {
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
    eprintln!(
        "[prompt: {} tokens, {:.1} tok/s | generated: {} tokens, {:.1} tok/s]",
        out.prompt_tokens,
        out.prompt_tps(),
        out.ids.len(),
        out.decode_tps()
    );
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

fn inspect(a: InspectArgs) -> Result<(), EngineError> {
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
        println!(
            "nodes: {}, partitions: {}",
            r.total_nodes,
            r.partitions.len()
        );
        for (op, backend, c) in r.op_counts() {
            println!("  {op:<10} {backend:<10} {c}");
        }
        println!(
            "fallback rate: {:.1}% of nodes, {:.1}% of FLOPs; boundary copies {} ({} bytes)",
            100.0 * r.fallback_rate_nodes(),
            100.0 * r.fallback_rate_flops(),
            r.boundary_copies,
            r.boundary_bytes
        );
        println!(
            "arena: {} for activations totalling {} ({:.1}%), {} nodes in place",
            human(cg.plan.layout.size),
            human(cg.plan.layout.total_value_bytes),
            100.0 * cg.plan.layout.size as f64 / cg.plan.layout.total_value_bytes.max(1) as f64,
            cg.plan.inplace.iter().filter(|&&b| b).count()
        );
        if a.nodes {
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
    Ok(())
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
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
