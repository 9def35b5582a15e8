//! wisp's CPU backend: every op, with SIMD kernels chosen at run time
//! (AVX-512 VNNI, AVX2, NEON, scalar) and rayon threads.
//!
//! Matmuls against quantized weights quantize the activations once per op to
//! int8 blocks and take integer dot products (as llama.cpp does); f32/f16
//! weights use float dot products. Attention reads the f16/f32 KV cache with
//! SIMD dots and axpys. The remaining light ops use the reference kernels.

pub mod attention;
pub mod encoder_attention;
pub mod kernels;
pub mod matmul;
pub mod norm;
pub mod rope;
pub mod scratch;
pub mod split;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use wisp_engine::{
    Backend, Bindings, EngineError, Executable, Graph, NodeId, OpTime, Support, WeightsIdentity,
};
use wisp_ops::{DType, Op};

use encoder_attention::AttentionPrecision;
use matmul::PackedMatrix;

pub use kernels::{Isa, Kernels};

/// CPU backend settings.
#[derive(Clone, Debug, Default)]
pub struct CpuOptions {
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Instruction set; `None` reads `WISP_ISA`, else the best the CPU has.
    pub isa: Option<Isa>,
    /// Time every op (also on with `WISP_PROFILE=1`); read with `Backend::take_profile`.
    pub profile: bool,
    /// Which weights are packed for the GEMM; `None` reads `WISP_PACK`, else `Auto`.
    pub pack: Option<PackPolicy>,
}

/// Which weights the CPU backend decodes once into its GEMM's layout (kept for
/// the life of the model's weights) instead of on every prefill or encoder
/// matmul. Decode steps (one token) always read the file's blocks directly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PackPolicy {
    /// 8-bit weights (Q8_0), whose packed copy costs ~6% beyond the file, and
    /// float weights (f32, f16: an f32 copy, transposed by strips), up to
    /// [`PackPolicy::AUTO_MAX_BYTES`] a matrix: a decoder's output matrix
    /// (tens to hundreds of MB) is a GEMM only when scoring every position
    /// (perplexity), which is not worth a second copy of it.
    #[default]
    Auto,
    /// Every quantized or float format (4- to 6-bit formats roughly double
    /// their memory).
    All,
    /// None: decode on every call.
    Off,
}

impl PackPolicy {
    /// Parses `auto`, `all` or `off` (the values of `WISP_PACK`).
    pub fn parse(s: &str) -> Result<PackPolicy, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(PackPolicy::Auto),
            "all" => Ok(PackPolicy::All),
            "off" | "none" => Ok(PackPolicy::Off),
            other => Err(format!("WISP_PACK={other:?}: expected auto, all or off")),
        }
    }

    /// The largest matrix `Auto` packs.
    pub const AUTO_MAX_BYTES: usize = 16 << 20;

    /// Whether a weight matrix of `dtype` and `bytes` is packed under this policy.
    pub fn packs(self, dtype: DType, bytes: usize) -> bool {
        match self {
            // Float matrices become f32 `wᵀ` (an f16 one twice its size).
            PackPolicy::Auto => match dtype {
                DType::Q8_0 | DType::F32 => bytes <= Self::AUTO_MAX_BYTES,
                DType::F16 => bytes.saturating_mul(2) <= Self::AUTO_MAX_BYTES,
                _ => false,
            },
            PackPolicy::All => dtype.is_quantized() || matches!(dtype, DType::F32 | DType::F16),
            PackPolicy::Off => false,
        }
    }
}

/// Packed weights by (weights identity, weight id); an entry lives as long as
/// the weight store it was derived from (see [`WeightsIdentity`]).
#[derive(Default)]
struct PackCache {
    entries: Mutex<HashMap<(u64, usize), PackEntry>>,
}

/// A cached packed matrix and the store it was derived from.
type PackEntry = (Weak<WeightsIdentity>, Arc<PackedMatrix>);

impl PackCache {
    /// The packed form of weight `id` of the store `owner`, packing it on first use.
    fn get_or_pack(
        &self,
        owner: &Arc<WeightsIdentity>,
        id: usize,
        make: impl FnOnce() -> Option<PackedMatrix>,
    ) -> Option<Arc<PackedMatrix>> {
        let key = (owner.id(), id);
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, p)) = map.get(&key) {
            return Some(p.clone());
        }
        // Entries of dropped models go before anything new is added.
        map.retain(|_, (w, _)| w.strong_count() > 0);
        let started = Instant::now();
        let p = Arc::new(make()?);
        tracing::debug!(
            bytes = p.bytes(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "packed a weight matrix for the GEMM"
        );
        map.insert(key, (Arc::downgrade(owner), p.clone()));
        Some(p)
    }
}

/// The CPU backend. Holds its thread pool; cheap to share in an `Arc`.
pub struct CpuBackend {
    kernels: &'static Kernels,
    pool: Arc<rayon::ThreadPool>,
    threads: usize,
    profile: Option<Arc<Profile>>,
    pack: PackPolicy,
    packs: Arc<PackCache>,
    /// Keep the other workers awake while a partition runs (`WISP_CPU_SPIN=0` turns it off).
    keep_awake: bool,
    /// Encoder attention's arithmetic when forced (`WISP_ATTN=f32|bf16`); else per graph.
    attention: Option<AttentionPrecision>,
}

/// Per-op time, kept only when `WISP_PROFILE` is set (one clock read per node).
type Profile = Mutex<BTreeMap<&'static str, (u64, f64)>>;

/// `WISP_PROFILE=shapes`: matmuls are timed per weight dtype and shape
/// (`matmul q4_K 1024x640`) instead of as one line, to see which matrices a
/// decode step spends its time in.
fn profile_shapes() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("WISP_PROFILE").is_ok_and(|v| v == "shapes"))
}

/// The profile key of a matmul by weight dtype and shape; interned, so each
/// distinct shape's name is allocated once for the process.
fn matmul_key(w: &wisp_ops::TensorType) -> &'static str {
    static KEYS: Mutex<BTreeMap<String, &'static str>> = Mutex::new(BTreeMap::new());
    let name = format!(
        "matmul {} {}",
        w.dtype.name(),
        w.shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("x")
    );
    let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(k) = keys.get(&name) {
        return k;
    }
    let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
    keys.insert(name, leaked);
    leaked
}

impl CpuBackend {
    /// Detects the ISA (or takes the one asked for) and starts the pool.
    pub fn new(opts: CpuOptions) -> Result<CpuBackend, EngineError> {
        let isa = match opts.isa {
            Some(i) => i,
            None => Isa::from_env().map_err(|m| EngineError::Backend {
                backend: "cpu".into(),
                message: m,
            })?,
        };
        if !isa.is_supported() {
            return Err(EngineError::Backend {
                backend: "cpu".into(),
                message: format!("ISA {} is not supported by this CPU", isa.name()),
            });
        }
        let threads = if opts.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            opts.threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("wisp-cpu-{i}"))
            .build()
            .map_err(|e| EngineError::Backend {
                backend: "cpu".into(),
                message: format!("cannot start {threads} threads: {e}"),
            })?;
        let env_profile =
            std::env::var_os("WISP_PROFILE").is_some_and(|v| !v.is_empty() && v != "0");
        let profile = (opts.profile || env_profile).then(|| Arc::new(Mutex::new(BTreeMap::new())));
        let pack = match opts.pack {
            Some(p) => p,
            None => match std::env::var("WISP_PACK") {
                Ok(v) => PackPolicy::parse(&v).map_err(|m| EngineError::Backend {
                    backend: "cpu".into(),
                    message: m,
                })?,
                Err(_) => PackPolicy::Auto,
            },
        };
        Ok(CpuBackend {
            kernels: isa.kernels(),
            pool: Arc::new(pool),
            threads,
            profile,
            pack,
            packs: Arc::new(PackCache::default()),
            keep_awake: std::env::var("WISP_CPU_SPIN").map_or(true, |v| v.trim() != "0"),
            attention: match std::env::var("WISP_ATTN").as_deref().map(str::trim) {
                Err(_) | Ok("") | Ok("auto") => None,
                Ok("f32") => Some(AttentionPrecision::F32),
                Ok("bf16") => Some(AttentionPrecision::Bf16),
                Ok(other) => {
                    return Err(EngineError::Backend {
                        backend: "cpu".into(),
                        message: format!("WISP_ATTN={other:?}: expected auto, f32 or bf16"),
                    })
                }
            },
        })
    }

    /// The ISA in use.
    pub fn isa(&self) -> Isa {
        self.kernels.isa
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

struct CpuExec {
    nodes: Vec<NodeId>,
    /// Matmuls whose bias `Add` (the product's only reader) runs inside them: matmul → (add, bias).
    bias_adds: HashMap<NodeId, (NodeId, wisp_engine::ValueId)>,
    /// Residual `Add`s whose `LayerNorm` (the next node) runs with them: add → norm.
    add_norms: HashMap<NodeId, NodeId>,
    /// Bias `Add`s whose output only a `Gelu` reads: add → gelu.
    gelu_after: HashMap<NodeId, NodeId>,
    kernels: &'static Kernels,
    pool: Arc<rayon::ThreadPool>,
    profile: Option<Arc<Profile>>,
    pack: PackPolicy,
    packs: Arc<PackCache>,
    keep_awake: bool,
    /// Encoder attention's arithmetic for this partition's graph.
    attention: AttentionPrecision,
}

impl Backend for CpuBackend {
    fn name(&self) -> &str {
        "cpu"
    }

    fn supports(&self, graph: &Graph, node: NodeId) -> Support {
        let n = graph.node(node);
        // Every op of the set runs here; weights of any dtype wisp knows.
        match &n.op {
            Op::MatMul | Op::GetRows => {
                let w = &graph.value(n.inputs[0]).ty;
                if w.dtype == DType::I32 && matches!(n.op, Op::MatMul) {
                    return Support::No("i32 matmul".into());
                }
                Support::Yes
            }
            _ => Support::Yes,
        }
    }

    fn compile(&self, graph: &Graph, nodes: &[NodeId]) -> Result<Box<dyn Executable>, EngineError> {
        let uses = value_uses(graph);
        Ok(Box::new(CpuExec {
            nodes: nodes.to_vec(),
            bias_adds: bias_adds(graph, nodes, &uses),
            add_norms: add_norms(graph, nodes, &uses),
            gelu_after: gelu_after(graph, nodes, &uses),
            kernels: self.kernels,
            pool: self.pool.clone(),
            profile: self.profile.clone(),
            pack: self.pack,
            packs: self.packs.clone(),
            keep_awake: self.keep_awake,
            attention: self.attention.unwrap_or_else(|| attention_for(graph)),
        }))
    }

    fn take_profile(&self) -> Option<Vec<OpTime>> {
        let p = self.profile.as_ref()?;
        let mut map = p.lock().unwrap_or_else(|e| e.into_inner());
        let out = map
            .iter()
            .map(|(op, (calls, seconds))| OpTime {
                op,
                calls: *calls,
                seconds: *seconds,
            })
            .collect();
        map.clear();
        Some(out)
    }

    fn describe(&self) -> String {
        format!(
            "cpu (isa {}, {} threads)",
            self.kernels.isa.name(),
            self.threads
        )
    }
}

/// How many nodes of the whole graph read each value (the fusions below need
/// a value's only reader).
fn value_uses(graph: &Graph) -> Vec<usize> {
    let mut uses = vec![0usize; graph.values.len()];
    for n in &graph.nodes {
        for v in &n.inputs {
            uses[v.0] += 1;
        }
    }
    uses
}

/// Residual `Add`s directly followed by the `LayerNorm` of their sum, its only
/// reader (BERT's post-norm blocks): each row is added and normalised in one
/// pass, when both ran in place and no observer needs the bare sum.
fn add_norms(graph: &Graph, nodes: &[NodeId], uses: &[usize]) -> HashMap<NodeId, NodeId> {
    let mut out = HashMap::new();
    for pair in nodes.windows(2) {
        let (a, l) = (graph.node(pair[0]), graph.node(pair[1]));
        let f32_weight = |v: wisp_engine::ValueId| {
            let val = graph.value(v);
            matches!(val.kind, wisp_engine::ValueKind::Weight(_)) && val.ty.dtype == DType::F32
        };
        if matches!(a.op, Op::Add)
            && matches!(l.op, Op::LayerNorm { .. })
            && a.inputs.len() == 2
            && l.inputs.len() == 3
            && l.inputs[0] == a.output
            && uses[a.output.0] == 1
            && !graph.outputs.contains(&a.output)
            && graph.value(a.inputs[0]).ty == graph.value(a.inputs[1]).ty
            && f32_weight(l.inputs[1])
            && f32_weight(l.inputs[2])
        {
            out.insert(pair[0], pair[1]);
        }
    }
    out
}

/// `Add` nodes whose output feeds only a `Gelu` of this partition (BERT's
/// feed-forward: matmul, bias, GELU): a matmul that absorbs the bias can run
/// the GELU on its own output too.
fn gelu_after(graph: &Graph, nodes: &[NodeId], uses: &[usize]) -> HashMap<NodeId, NodeId> {
    let mut add_of: HashMap<wisp_engine::ValueId, NodeId> = HashMap::new();
    let mut out = HashMap::new();
    for &n in nodes {
        let node = graph.node(n);
        match node.op {
            Op::Add => {
                add_of.insert(node.output, n);
            }
            Op::Gelu if node.inputs.len() == 1 => {
                let y = node.inputs[0];
                if let (Some(&add), 1, false) =
                    (add_of.get(&y), uses[y.0], graph.outputs.contains(&y))
                {
                    out.insert(add, n);
                }
            }
            _ => {}
        }
    }
    out
}

/// Encoder attention in bf16 for graphs whose matmuls all have quantized
/// weights (their activations are int8 already, a coarser rounding than
/// bf16's), in f32 otherwise.
fn attention_for(graph: &Graph) -> AttentionPrecision {
    let mut matmuls = graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::MatMul))
        .peekable();
    let any = matmuls.peek().is_some();
    if any && matmuls.all(|n| graph.value(n.inputs[1]).ty.dtype.is_quantized()) {
        AttentionPrecision::Bf16
    } else {
        AttentionPrecision::F32
    }
}

/// Matmuls whose product is read only by the `Add` of a bias (an f32 weight
/// vector, one value per output feature): BERT's linear layers. The matmul adds the bias as it writes
/// its output (the GEMM on packed weights per tile) and the `Add` is skipped,
/// when the planner ran it in place and no observer needs the bare product.
fn bias_adds(
    graph: &Graph,
    nodes: &[NodeId],
    uses: &[usize],
) -> HashMap<NodeId, (NodeId, wisp_engine::ValueId)> {
    // Producer of each value among this partition's matmuls.
    let mut matmul_of: HashMap<wisp_engine::ValueId, NodeId> = HashMap::new();
    let mut out = HashMap::new();
    for &n in nodes {
        let node = graph.node(n);
        if matches!(node.op, Op::MatMul) {
            matmul_of.insert(node.output, n);
            continue;
        }
        if !matches!(node.op, Op::Add) || node.inputs.len() != 2 {
            continue;
        }
        let (y, b) = (node.inputs[0], node.inputs[1]);
        let Some(&mm) = matmul_of.get(&y) else {
            continue;
        };
        let (yv, bv) = (graph.value(y), graph.value(b));
        let rows = graph
            .value(graph.node(mm).inputs[1])
            .ty
            .shape
            .first()
            .copied();
        // The Add is the product's only reader, so nothing between the two
        // nodes sees the bias early, and the product's bytes stay live (not
        // reused by the planner) until the Add.
        if uses[y.0] == 1
            && !graph.outputs.contains(&y)
            && matches!(bv.kind, wisp_engine::ValueKind::Weight(_))
            && bv.ty.dtype == DType::F32
            && bv.ty.shape.len() == 1
            && Some(bv.ty.shape[0]) == rows
            && yv.ty.row_len() == bv.ty.shape[0]
        {
            out.insert(mm, (n, b));
        }
    }
    out
}

impl Executable for CpuExec {
    fn run(&self, io: &mut Bindings) -> Result<(), EngineError> {
        let threads = self.pool.current_num_threads();
        if threads < 2 || self.nodes.len() < KEEP_AWAKE_MIN_NODES || !self.keep_awake {
            return self.pool.install(|| self.run_nodes(io));
        }
        // The other workers stay awake for the whole partition, taking the
        // next op's work the moment it is split instead of being woken for
        // every op (a wake-up costs microseconds in a VM, and a forward pass
        // has hundreds of parallel ops).
        self.pool.install(|| {
            let stop = AtomicBool::new(false);
            let started = AtomicUsize::new(0);
            rayon::scope(|s| {
                for _ in 1..threads {
                    s.spawn(|_| keep_awake(&stop, &started));
                }
                // Every helper must be running (not queued) before the ops start,
                // or a waiting worker could pick one up and spin in place.
                while started.load(Ordering::Acquire) < threads - 1 {
                    std::hint::spin_loop();
                }
                // Set on every way out (a panicking op included), so the helpers end.
                struct Stop<'a>(&'a AtomicBool);
                impl Drop for Stop<'_> {
                    fn drop(&mut self) {
                        self.0.store(true, Ordering::Release);
                    }
                }
                let _stop = Stop(&stop);
                self.run_nodes(io)
            })
        })
    }
}

/// Partitions shorter than this run without helpers kept awake.
const KEEP_AWAKE_MIN_NODES: usize = 8;

/// A helper's loop while a partition runs: runs whatever work the pool has,
/// spins while there is none, and yields its core to other processes after a
/// stretch of nothing to do (so a busy machine is not fought over).
fn keep_awake(stop: &AtomicBool, started: &AtomicUsize) {
    started.fetch_add(1, Ordering::AcqRel);
    let mut idle_since: Option<Instant> = None;
    while !stop.load(Ordering::Acquire) {
        if rayon::yield_now() == Some(rayon::Yield::Executed) {
            idle_since = None;
            continue;
        }
        let since = *idle_since.get_or_insert_with(Instant::now);
        if since.elapsed().as_micros() > 200 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// `out += b`, where `b` has `out`'s shape (rows of `d`) or is one row
/// repeated (a bias); rows spread over the threads.
fn add_rows(k: &Kernels, out: &mut [f32], b: &[f32], d: usize) -> Result<(), EngineError> {
    use rayon::prelude::*;
    if b.is_empty() || d == 0 || !out.len().is_multiple_of(b.len()) || !out.len().is_multiple_of(d)
    {
        return Err(EngineError::Internal("add: shapes".into()));
    }
    let same = b.len() == out.len();
    let row = if same { d } else { b.len() };
    let per = split::rows_per_task(out.len() / row, row) * row;
    out.par_chunks_mut(per).enumerate().for_each(|(c, o)| {
        // `o + 1·b` fused is the plain sum, with the ISA's vectors.
        if same {
            (k.axpy_f32)(o, 1.0, &b[c * per..c * per + o.len()]);
        } else {
            for r in o.chunks_exact_mut(row) {
                (k.axpy_f32)(r, 1.0, b);
            }
        }
    });
    Ok(())
}

/// Weight `v`'s bytes as f32 values for the whole run (`None`: not a weight,
/// or not aligned to f32): the biases and norm parameters a fusion applies.
fn f32_weight<'a>(io: &Bindings<'a>, v: wisp_engine::ValueId) -> Option<&'a [f32]> {
    bytemuck::try_cast_slice(io.weight_bytes(v)?).ok()
}

impl CpuExec {
    /// Adds an op's time to the profile (when profiling).
    fn record(&self, op: &'static str, started: Option<Instant>) {
        if let (Some(p), Some(t)) = (&self.profile, started) {
            let mut map = p.lock().unwrap_or_else(|e| e.into_inner());
            let e = map.entry(op).or_insert((0, 0.0));
            e.0 += 1;
            e.1 += t.elapsed().as_secs_f64();
        }
    }

    /// Runs the partition's nodes in order (on a worker of the pool).
    fn run_nodes(&self, io: &mut Bindings) -> Result<(), EngineError> {
        // The int8 blocks of the last quantized matmul input, by value: the
        // next matmul of the same value (a layer's k and v after q) reuses them.
        // Values are written once per run, so the blocks stay valid.
        let mut last_blocks: Option<(wisp_engine::ValueId, Vec<kernels::BlockQ8>)> = None;
        // The bias `Add`s that earlier matmuls already applied.
        let mut skip: Vec<NodeId> = Vec::new();
        for &n in &self.nodes {
            if let Some(i) = skip.iter().position(|&s| s == n) {
                skip.swap_remove(i);
                io.observe(n)?;
                continue;
            }
            // A bias to add inside this matmul: (its `Add` node, the f32 bias).
            let fused_bias = self.bias_adds.get(&n).and_then(|&(add, b)| {
                if io.is_observed() || !io.is_inplace(add) {
                    return None;
                }
                let bias = f32_weight(io, b)?;
                Some((add, bias))
            });
            let started = self.profile.as_ref().map(|_| Instant::now());
            // A matmul's weight, when its packed form may be used: (store, weight id).
            let pack_key = match io.graph().node(n) {
                node if matches!(node.op, Op::MatMul) => {
                    let wv = io.graph().value(node.inputs[1]);
                    match (&wv.kind, io.weights_identity()) {
                        (&wisp_engine::ValueKind::Weight(id), Some(owner))
                            if self
                                .pack
                                .packs(wv.ty.dtype, wv.ty.bytes().unwrap_or(usize::MAX)) =>
                        {
                            Some((owner.clone(), id))
                        }
                        _ => None,
                    }
                }
                _ => None,
            };
            // A layer norm to run with this residual add: (its node, eps, weight, bias).
            let fused_norm = self.add_norms.get(&n).and_then(|&norm| {
                if io.is_observed() || !io.is_inplace(norm) {
                    return None;
                }
                let ln = io.graph().node(norm);
                let Op::LayerNorm { eps } = ln.op else {
                    return None;
                };
                let w = f32_weight(io, ln.inputs[1])?;
                let b = f32_weight(io, ln.inputs[2])?;
                Some((norm, eps, w, b))
            });
            // A GELU that reads this matmul's biased product in place: it runs in
            // the matmul's own tasks.
            let fused_gelu = fused_bias
                .and_then(|(add, _)| self.gelu_after.get(&add).copied())
                .filter(|&g| io.is_inplace(g));
            let x_id = io.graph().node(n).inputs.first().copied();
            let mut nio = io.node_io(n)?;
            let mut op_name = nio.op.name();
            match nio.op {
                Op::MatMul => {
                    let x = nio.inputs[0]
                        .ok_or_else(|| EngineError::Internal("matmul input".into()))?;
                    let w = nio.inputs[1]
                        .ok_or_else(|| EngineError::Internal("matmul weight".into()))?;
                    if self.profile.is_some() && profile_shapes() {
                        op_name = matmul_key(w.ty);
                    }
                    let tokens = x.f32().len() / x.ty.row_len().max(1);
                    let packed = match pack_key {
                        Some((owner, id)) if tokens >= matmul::PACK_MIN_TOKENS => self
                            .packs
                            .get_or_pack(&owner, id, || PackedMatrix::new(self.kernels, w)),
                        _ => None,
                    };
                    let bias = fused_bias.map(|(_, b)| b);
                    if let Some(pm) = packed.as_deref() {
                        let out = nio.output.f32();
                        let then = fused_gelu.map(|_| self.kernels.gelu_erf);
                        if matmul::matmul_packed_fused(self.kernels, x, w, pm, bias, then, out) {
                            if let Some((add, _)) = fused_bias {
                                skip.push(add);
                            }
                            if let Some(g) = fused_gelu {
                                skip.push(g);
                            }
                            drop(nio);
                            io.observe(n)?;
                            self.record(op_name, started);
                            continue;
                        }
                    }
                    let (xf, k) = (x.f32(), x.ty.row_len());
                    let quantize_started = started.filter(|_| profile_shapes());
                    let act = match last_blocks.take() {
                        Some((v, q))
                            if Some(v) == x_id
                                && w.ty.dtype.is_quantized()
                                && q.len() == xf.len() / k.max(1) * (k / 32) =>
                        {
                            matmul::Activations::with_blocks(xf, k, q)
                        }
                        other => {
                            if let Some((_, q)) = other {
                                scratch::give_q8(q);
                            }
                            matmul::Activations::new(self.kernels, xf, k, w.ty.dtype)
                        }
                    };
                    // Shapes mode: the activations' quantization on its own line.
                    self.record("matmul: quantize input", quantize_started);
                    matmul::matmul_act(
                        self.kernels,
                        &act,
                        w,
                        packed.as_deref(),
                        bias,
                        nio.output.f32(),
                    );
                    if let Some((add, _)) = fused_bias {
                        skip.push(add);
                    }
                    if let (Some(v), true) = (x_id, act.is_quantized()) {
                        last_blocks = act.into_blocks().map(|q| (v, q));
                    }
                }
                Op::Rope {
                    head_dim,
                    n_dims,
                    base,
                    mode,
                } => {
                    let pos = nio.inputs[1]
                        .ok_or_else(|| EngineError::Internal("rope positions".into()))?;
                    if let Some(x) = nio.inputs[0] {
                        nio.output.data.copy_from_slice(x.data);
                    }
                    rope::rope_inplace(
                        nio.output.f32(),
                        pos.i32(),
                        *head_dim,
                        *n_dims,
                        *base,
                        *mode,
                    );
                }
                Op::Gelu => {
                    if let Some(x) = nio.inputs[0] {
                        nio.output.data.copy_from_slice(x.data);
                    }
                    use rayon::prelude::*;
                    let f = self.kernels.gelu_erf;
                    nio.output.f32().par_chunks_mut(16 * 1024).for_each(f);
                }
                Op::Add => {
                    let b = nio.inputs[1]
                        .ok_or_else(|| EngineError::Internal("add input".into()))?
                        .f32();
                    if let Some(a) = nio.inputs[0] {
                        nio.output.data.copy_from_slice(a.data);
                    }
                    let d = nio.output.ty.row_len();
                    match fused_norm {
                        Some((norm, eps, w, nb)) => {
                            norm::add_layer_norm(self.kernels, nio.output.f32(), b, d, eps, w, nb);
                            skip.push(norm);
                        }
                        None => add_rows(self.kernels, nio.output.f32(), b, d)?,
                    }
                }
                Op::LayerNorm { eps } => {
                    let (w, b) = match (nio.inputs[1], nio.inputs[2]) {
                        (Some(w), Some(b)) => (w, b),
                        _ => return Err(EngineError::Internal("layer_norm inputs".into())),
                    };
                    if let Some(x) = nio.inputs[0] {
                        nio.output.data.copy_from_slice(x.data);
                    }
                    let d = nio.output.ty.row_len();
                    norm::layer_norm(self.kernels, nio.output.f32(), d, *eps, w.f32(), b.f32());
                }
                Op::GeGlu | Op::SwiGlu => {
                    let (g, u) = match (nio.inputs[0], nio.inputs[1]) {
                        (g, Some(u)) => (g, u),
                        _ => return Err(EngineError::Internal("gated unit inputs".into())),
                    };
                    if let Some(g) = g {
                        nio.output.data.copy_from_slice(g.data);
                    }
                    use rayon::prelude::*;
                    // SwiGLU with the same kernel as the fused matmul_swiglu, so the
                    // fused and unfused graphs stay bit-identical.
                    let f = if matches!(nio.op, Op::SwiGlu) {
                        self.kernels.swiglu
                    } else {
                        self.kernels.geglu
                    };
                    nio.output
                        .f32()
                        .par_chunks_mut(16 * 1024)
                        .zip(u.f32().par_chunks(16 * 1024))
                        .for_each(|(g, u)| f(g, u));
                }
                Op::EncoderAttention {
                    n_head,
                    head_dim,
                    scale,
                } => {
                    let get = |i: usize| {
                        nio.inputs[i]
                            .ok_or_else(|| EngineError::Internal("encoder_attention input".into()))
                    };
                    let (q, k, v, m) = (get(0)?, get(1)?, get(2)?, get(3)?);
                    let seq = m.ty.shape[1];
                    encoder_attention::encoder_attention(
                        self.kernels,
                        self.attention,
                        *n_head,
                        *head_dim,
                        *scale,
                        seq,
                        q.f32(),
                        k.f32(),
                        v.f32(),
                        m.f32(),
                        nio.output.f32(),
                    );
                }
                Op::MatMulSwiGlu => {
                    let get = |i: usize| {
                        nio.inputs[i]
                            .ok_or_else(|| EngineError::Internal("matmul_swiglu input".into()))
                    };
                    let (x, g, u) = (get(0)?, get(1)?, get(2)?);
                    matmul::matmul_swiglu(self.kernels, x, g, u, nio.output.f32());
                }
                Op::Attention {
                    n_head,
                    n_kv_head,
                    head_dim,
                    scale,
                    window,
                } => {
                    let shape = wisp_ops::reference::AttentionShape {
                        n_head: *n_head,
                        n_kv_head: *n_kv_head,
                        head_dim: *head_dim,
                        scale: *scale,
                        window: *window,
                    };
                    let get = |i: usize| {
                        nio.inputs[i].ok_or_else(|| EngineError::Internal("attention input".into()))
                    };
                    let (q, k, v, pos) = (get(0)?, get(1)?, get(2)?, get(3)?);
                    attention::attention(
                        self.kernels,
                        &shape,
                        q.f32(),
                        k,
                        v,
                        pos.i32(),
                        nio.output.f32(),
                    )?;
                }
                Op::GetRows => {
                    let (Some(table), Some(ids)) = (nio.inputs[0], nio.inputs[1]) else {
                        return Err(EngineError::Internal("get_rows inputs".into()));
                    };
                    let d = nio.output.ty.row_len();
                    let ids = ids.i32();
                    let out = nio.output.f32();
                    if d == 0 || out.len() != ids.len() * d {
                        return Err(EngineError::Internal("get_rows: shapes".into()));
                    }
                    // The reference lookup (ids checked against the table) on row
                    // chunks spread over the threads: a prompt's or a sentence's
                    // embeddings are dequantized row by row.
                    use rayon::prelude::*;
                    let per = split::rows_per_task(ids.len(), d);
                    out.par_chunks_mut(per * d)
                        .zip(ids.par_chunks(per))
                        .try_for_each(|(o, ids)| wisp_ops::reference::get_rows(table, ids, o))?;
                }
                op => wisp_ops::reference::execute(op, &nio.inputs, &mut nio.output)?,
            }
            drop(nio);
            io.observe(n)?;
            self.record(op_name, started);
        }
        if let Some((_, q)) = last_blocks {
            scratch::give_q8(q);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wisp_ops::{TensorType, TensorView};

    fn q8_matrix(rows: usize, k: usize) -> (TensorType, Vec<u8>) {
        let ty = TensorType::new(DType::Q8_0, &[rows, k]);
        let mut w: Vec<u8> = (0..DType::Q8_0.bytes_for(rows * k).unwrap())
            .map(|i| (i * 37 % 251) as u8)
            .collect();
        for blk in w.chunks_exact_mut(34) {
            blk[0] = 0;
            blk[1] = 0x20;
        }
        (ty, w)
    }

    /// A packed matrix is made once per (store, weight) and dropped with its store.
    #[test]
    fn pack_cache_lives_with_its_weights() {
        let k = Isa::best().kernels();
        let cache = PackCache::default();
        let (ty, w) = q8_matrix(48, 64);
        let view = TensorView { ty: &ty, data: &w };
        let owner = WeightsIdentity::new();
        let mut made = 0;
        let mut pack = || {
            made += 1;
            PackedMatrix::new(k, view)
        };
        let a = cache.get_or_pack(&owner, 3, &mut pack);
        let b = cache.get_or_pack(&owner, 3, &mut pack);
        if k.pack_q.is_none() {
            assert!(a.is_none() && b.is_none());
            return;
        }
        assert!(Arc::ptr_eq(a.as_ref().unwrap(), b.as_ref().unwrap()));
        assert_eq!(made, 1);
        drop(owner);
        // A new store's first pack purges the dead entry.
        let other = WeightsIdentity::new();
        cache.get_or_pack(&other, 3, || PackedMatrix::new(k, view));
        let map = cache.entries.lock().unwrap();
        assert_eq!(map.len(), 1);
        assert!(map.contains_key(&(other.id(), 3)));
    }

    #[test]
    fn pack_policy_parses_and_selects() {
        assert_eq!(PackPolicy::parse(" ALL ").unwrap(), PackPolicy::All);
        assert_eq!(PackPolicy::parse("").unwrap(), PackPolicy::Auto);
        assert!(PackPolicy::parse("sometimes").is_err());
        assert!(PackPolicy::Auto.packs(DType::Q8_0, 1 << 20));
        assert!(!PackPolicy::Auto.packs(DType::Q8_0, 178 << 20));
        assert!(!PackPolicy::Auto.packs(DType::Q4_K, 1 << 20));
        assert!(PackPolicy::All.packs(DType::Q4_K, 178 << 20));
        assert!(PackPolicy::All.packs(DType::F32, 1 << 20));
        assert!(PackPolicy::Auto.packs(DType::F32, 16 << 20));
        assert!(!PackPolicy::Auto.packs(DType::F16, 9 << 20));
        assert!(!PackPolicy::All.packs(DType::I32, 1 << 20));
        assert!(!PackPolicy::Off.packs(DType::Q8_0, 1 << 20));
        assert!(!PackPolicy::Off.packs(DType::F32, 1 << 20));
    }

    /// Through packed weights a matmul gives the same values as without.
    #[test]
    fn packed_matmul_matches_unpacked() {
        let k = Isa::best().kernels();
        let (ty, w) = q8_matrix(40, 96);
        let view = TensorView { ty: &ty, data: &w };
        let Some(pm) = PackedMatrix::new(k, view) else {
            return;
        };
        for n in [8usize, 9, 33] {
            let xty = TensorType::new(DType::F32, &[n, 96]);
            let x: Vec<f32> = (0..n * 96)
                .map(|i| ((i * 13 % 29) as f32 - 14.0) * 0.1)
                .collect();
            let xv = TensorView {
                ty: &xty,
                data: bytemuck::cast_slice(&x),
            };
            let mut want = vec![0f32; n * 40];
            matmul::matmul(k, xv, view, &mut want);
            let mut got = vec![0f32; n * 40];
            matmul::matmul_with(k, xv, view, Some(&pm), &mut got);
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - e).abs() <= 1e-4 * e.abs().max(1.0),
                    "n={n} [{i}] {g} vs {e}"
                );
            }
            // Quantizing inside the GEMM's tasks, with a bias: the same values plus it.
            let bias: Vec<f32> = (0..40).map(|r| r as f32 - 20.0).collect();
            let mut fused = vec![0f32; n * 40];
            if matmul::matmul_packed_fused(k, xv, view, &pm, Some(&bias), None, &mut fused) {
                for (i, (g, e)) in fused.iter().zip(&got).enumerate() {
                    assert_eq!(*g, e + bias[i % 40], "n={n} fused [{i}]");
                }
            }
        }
    }
}
