//! wisp's QNN backend: runs partitions of a wisp graph on a Qualcomm HTP
//! (Hexagon NPU) through the QNN C API, loaded at run time
//! (`libQnnHtp.so`, or `$WISP_QNN_LIB`; CI points it at `wisp-qnn-emulator`).
//!
//! - [`capability`]: which nodes the HTP takes, with a reason for each refusal;
//! - [`lower`]: a partition → one QNN graph of `qti.aisw` ops (decompositions
//!   for what the pinned op set lacks), activations in uint8/uint16 from a
//!   calibration file or fp16, weights int8 per channel or fp16 ([`quant`]);
//! - [`runtime`]: the FFI (build, finalize, context binaries, execute);
//! - [`cache`]: finalized contexts saved per model / partition / bucket /
//!   library / options, verified before the library sees them.
//!
//! Weights are only reachable through a run's bindings, so a partition's
//! QNN graph is built (or loaded from the cache) on its first run.
//! Failures are typed ([`QnnError`]); with `cpu_fallback` a partition whose
//! graph cannot be built, or whose execution fails, runs on the scalar
//! reference kernels instead, with a warning.

pub mod cache;
pub mod capability;
pub mod digest;
pub mod error;
pub mod ir;
pub mod lower;
pub mod quant;
pub mod runtime;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wisp_engine::calibration::{Calibration, SimOptions};
use wisp_engine::{Backend, Bindings, EngineError, Executable, Graph, NodeId, Support};

pub use error::QnnError;
use ir::{Data, QGraph, Source};
use runtime::{Context, Runtime};

/// How activations are represented on the NPU.
#[derive(Clone, Debug)]
pub enum Precision {
    /// fp16 activations and weights (no calibration needed).
    Fp16,
    /// Static uint8/uint16 activations with the calibration's ranges (QNN's
    /// `(q + offset) · scale`), chosen per tensor as `sim` says (the same rules
    /// as `--sim-static`), int8 per-channel weights.
    Quantized {
        calib: Arc<Calibration>,
        sim: SimOptions,
    },
}

impl Precision {
    /// A stable description for cache keys and logs.
    pub fn describe(&self) -> String {
        match self {
            Precision::Fp16 => "fp16".into(),
            Precision::Quantized { calib, sim } => format!(
                "uint{} clip={} wide={:?} calib={:032x}",
                match sim.bits {
                    0 => "8/16".to_string(),
                    b => b.to_string(),
                },
                sim.clip,
                sim.wide,
                digest::digest128(calib.to_text().as_bytes())
            ),
        }
    }
}

/// QNN backend settings.
#[derive(Clone, Debug)]
pub struct QnnOptions {
    /// The backend library; `None` takes `$WISP_QNN_LIB`, else `libQnnHtp.so`.
    pub library: Option<PathBuf>,
    pub precision: Precision,
    /// Where finalized contexts are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Run a partition on the reference kernels when its graph cannot be
    /// built or executed (else the failure is an error).
    pub cpu_fallback: bool,
    /// Return every node's output from the graph (for `wisp diff`).
    pub expose_all: bool,
}

impl Default for QnnOptions {
    fn default() -> Self {
        QnnOptions {
            library: None,
            precision: Precision::Fp16,
            cache_dir: None,
            cpu_fallback: false,
            expose_all: false,
        }
    }
}

/// Counters of what the backend did (tests assert on them; `bench` reports them).
#[derive(Debug, Default)]
pub struct Stats {
    /// Graphs built and finalized.
    pub graphs_built: AtomicU64,
    /// Contexts restored from the cache.
    pub cache_loads: AtomicU64,
    /// Cache files found but rejected (stale, corrupt, refused by the library).
    pub cache_rejected: AtomicU64,
    /// Cache files written.
    pub cache_writes: AtomicU64,
    /// Graph executions.
    pub executions: AtomicU64,
    /// Partition runs that fell back to the CPU reference kernels.
    pub fallbacks: AtomicU64,
    /// Nanoseconds inside `graphExecute` (with the host's input/output copies).
    pub exec_nanos: AtomicU64,
    /// Warnings, in order (cache rebuilds, fallbacks).
    pub warnings: Mutex<Vec<String>>,
}

impl Stats {
    fn warn(&self, msg: String) {
        tracing::warn!("qnn: {msg}");
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(msg);
    }

    /// A counter's value.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// The QNN backend: one loaded library, shared by every compiled partition.
pub struct QnnBackend {
    rt: Arc<Runtime>,
    opts: Arc<QnnOptions>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for QnnBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl QnnBackend {
    /// Opens the library. Without one, the error says `unavailable: …` and
    /// names `WISP_QNN_LIB`.
    pub fn new(opts: QnnOptions) -> Result<QnnBackend, QnnError> {
        let path = opts
            .library
            .clone()
            .unwrap_or_else(|| PathBuf::from(wisp_qnn_sys::default_library_path()));
        let rt = Runtime::open(&path)?;
        Ok(QnnBackend {
            rt: Arc::new(rt),
            opts: Arc::new(opts),
            stats: Arc::new(Stats::default()),
        })
    }

    /// What the backend did so far.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Whether the library is wisp's emulator (latencies are then emulator latencies).
    pub fn is_emulator(&self) -> bool {
        self.rt.is_emulator()
    }

    /// The library's build id.
    pub fn build_id(&self) -> &str {
        &self.rt.build_id
    }

    /// The options.
    pub fn options(&self) -> &QnnOptions {
        &self.opts
    }
}

impl Backend for QnnBackend {
    fn name(&self) -> &str {
        "qnn"
    }

    fn supports(&self, graph: &Graph, node: NodeId) -> Support {
        match capability::check(
            graph,
            node,
            &self.opts.precision,
            self.rt.supported.as_ref(),
        ) {
            Ok(()) => Support::Yes,
            Err(why) => Support::No(why),
        }
    }

    fn compile(&self, graph: &Graph, nodes: &[NodeId]) -> Result<Box<dyn Executable>, EngineError> {
        let state = match lower::lower(graph, nodes, &self.opts.precision, self.opts.expose_all) {
            Ok(q) => {
                let structure = digest::digest128(q.structure().as_bytes());
                tracing::debug!(ops = ?q.op_histogram(), "qnn: lowered {} nodes", nodes.len());
                return Ok(Box::new(QnnExec {
                    rt: self.rt.clone(),
                    opts: self.opts.clone(),
                    stats: self.stats.clone(),
                    nodes: nodes.to_vec(),
                    name: format!("wisp_{:016x}", structure as u64),
                    structure,
                    q,
                    state: Mutex::new(State::Pending),
                }));
            }
            Err(e) if self.opts.cpu_fallback => {
                self.stats.warn(format!(
                    "lowering failed ({e}); the partition runs on the CPU"
                ));
                State::Cpu
            }
            Err(e) => return Err(QnnError::Lowering(e).into()),
        };
        Ok(Box::new(QnnExec {
            rt: self.rt.clone(),
            opts: self.opts.clone(),
            stats: self.stats.clone(),
            nodes: nodes.to_vec(),
            name: String::new(),
            structure: 0,
            q: QGraph::default(),
            state: Mutex::new(state),
        }))
    }

    fn describe(&self) -> String {
        let lib = self
            .rt
            .path()
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!(
            "qnn ({lib}{}; activations {}; context cache {})",
            if self.is_emulator() {
                ": EMULATOR, a CPU test double — latencies are emulator latencies"
            } else {
                ""
            },
            match &self.opts.precision {
                Precision::Fp16 => "fp16".to_string(),
                Precision::Quantized { .. } => "uint8/uint16 from calibration".to_string(),
            },
            self.opts
                .cache_dir
                .as_ref()
                .map_or("off".to_string(), |d| d.display().to_string())
        )
    }
}

enum State {
    /// Not built yet (first run builds or loads it).
    Pending,
    Ready(Box<Ready>),
    /// Runs on the reference kernels (the reason was logged as a warning).
    Cpu,
}

struct Ready {
    ctx: Context,
    inputs: Vec<Vec<u8>>,
    outputs: Vec<Vec<u8>>,
}

struct QnnExec {
    rt: Arc<Runtime>,
    opts: Arc<QnnOptions>,
    stats: Arc<Stats>,
    nodes: Vec<NodeId>,
    name: String,
    structure: u128,
    q: QGraph,
    state: Mutex<State>,
}

impl QnnExec {
    /// The cache key: library, options, structure and the weights' bytes.
    fn key(&self, io: &Bindings) -> Result<u128, EngineError> {
        let mut d = digest::Digest::new();
        d.update(b"wisp-qnn context v1\n");
        d.update(self.rt.identity().as_bytes());
        d.update(self.opts.precision.describe().as_bytes());
        d.update(&self.structure.to_le_bytes());
        for t in &self.q.tensors {
            if let Data::Weight { value, .. } = &t.data {
                d.update(&digest::digest128(io.read(*value)?.data).to_le_bytes());
            }
        }
        Ok(d.finish())
    }

    /// Loads the cached context or builds (and caches) the graph.
    fn prepare(&self, io: &Bindings) -> Result<Ready, EngineError> {
        let key = self.key(io)?;
        let n = self.q.tensors.len();
        if let Some(dir) = &self.opts.cache_dir {
            let path = cache::path(dir, key);
            if let Ok(bytes) = std::fs::read(&path) {
                let loaded = cache::decode(&bytes, key, n)
                    .map_err(QnnError::Cache)
                    .and_then(|(ids, payload)| {
                        Context::from_binary(&self.rt, &self.name, &self.q, &ids, payload)
                    });
                match loaded {
                    Ok(ctx) => {
                        self.stats.cache_loads.fetch_add(1, Ordering::Relaxed);
                        return Ok(self.ready(ctx));
                    }
                    Err(e) => {
                        self.stats.cache_rejected.fetch_add(1, Ordering::Relaxed);
                        self.stats.warn(format!(
                            "cached context {} is stale or corrupt ({e}); rebuilding",
                            path.display()
                        ));
                    }
                }
            }
        }
        let mut q = self.q.clone();
        let g = io.graph();
        for t in &mut q.tensors {
            if let Data::Weight { value, .. } = t.data {
                let view = io.read(value)?;
                quant::materialize(t, &g.value(value).ty, view.data).map_err(QnnError::Lowering)?;
            }
        }
        let (ctx, ids) = Context::build(&self.rt, &self.name, &q)?;
        drop(q);
        self.stats.graphs_built.fetch_add(1, Ordering::Relaxed);
        if let Some(dir) = &self.opts.cache_dir {
            match ctx
                .binary()
                .map_err(|e| e.to_string())
                .and_then(|bin| cache::write(dir, key, &ids, &bin).map_err(|e| e.to_string()))
            {
                Ok(_) => {
                    self.stats.cache_writes.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => self.stats.warn(format!("could not cache the context: {e}")),
            }
        }
        Ok(self.ready(ctx))
    }

    fn ready(&self, ctx: Context) -> Ready {
        Ready {
            ctx,
            inputs: self
                .q
                .inputs
                .iter()
                .map(|b| vec![0u8; self.q.tensors[b.tensor].bytes()])
                .collect(),
            outputs: self
                .q
                .outputs
                .iter()
                .map(|b| vec![0u8; self.q.tensors[b.tensor].bytes()])
                .collect(),
        }
    }

    /// Runs the partition on the reference kernels.
    fn run_cpu(&self, io: &mut Bindings) -> Result<(), EngineError> {
        self.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
        for &n in &self.nodes {
            let mut nio = io.node_io(n)?;
            wisp_ops::reference::execute(nio.op, &nio.inputs, &mut nio.output)?;
            io.observe(n)?;
        }
        Ok(())
    }

    fn fill_inputs(&self, io: &Bindings, bufs: &mut [Vec<u8>]) -> Result<(), EngineError> {
        for (b, buf) in self.q.inputs.iter().zip(bufs.iter_mut()) {
            match &b.source {
                Source::Value(v) => {
                    let data = io.read(*v)?.data;
                    if data.len() != buf.len() {
                        return Err(EngineError::Internal(format!(
                            "qnn input {}: {} bytes, the graph takes {}",
                            self.q.tensors[b.tensor].name,
                            data.len(),
                            buf.len()
                        )));
                    }
                    buf.copy_from_slice(data);
                }
                Source::CausalMask { pos, ctx, window } => {
                    let pos = io.read(*pos)?;
                    for (row, &p) in buf.chunks_exact_mut(4 * ctx).zip(pos.i32()) {
                        for (j, c) in row.chunks_exact_mut(4).enumerate() {
                            let p = p as i64;
                            let j = j as i64;
                            let visible = j <= p && window.is_none_or(|w| p - j < w as i64);
                            let v = if visible { 0.0f32 } else { lower::MASK_HIDDEN };
                            c.copy_from_slice(&v.to_le_bytes());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn write_outputs(&self, io: &mut Bindings, bufs: &[Vec<u8>]) -> Result<(), EngineError> {
        // Values exposed for inspection first (each observed right away), then
        // the ones the graph needs: a later write never clobbers a needed value.
        for pass in [false, true] {
            for (b, buf) in self.q.outputs.iter().zip(bufs) {
                if b.needed != pass {
                    continue;
                }
                let out = io.write(b.value)?;
                if out.data.len() != buf.len() {
                    return Err(EngineError::Internal(format!(
                        "qnn output {}: {} bytes, the value holds {}",
                        self.q.tensors[b.tensor].name,
                        buf.len(),
                        out.data.len()
                    )));
                }
                out.data.copy_from_slice(buf);
                io.observe(b.node)?;
            }
        }
        Ok(())
    }
}

impl Executable for QnnExec {
    fn run(&self, io: &mut Bindings) -> Result<(), EngineError> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*st, State::Pending) {
            match self.prepare(io) {
                Ok(r) => *st = State::Ready(Box::new(r)),
                Err(e) if self.opts.cpu_fallback => {
                    self.stats.warn(format!(
                        "graph {} could not be prepared ({e}); its {} nodes run on the CPU",
                        self.name,
                        self.nodes.len()
                    ));
                    *st = State::Cpu;
                }
                Err(e) => return Err(e),
            }
        }
        let ready = match &mut *st {
            State::Ready(r) => r,
            State::Cpu => {
                drop(st);
                return self.run_cpu(io);
            }
            State::Pending => return Err(EngineError::Internal("qnn graph not prepared".into())),
        };
        let t = Instant::now();
        self.fill_inputs(io, &mut ready.inputs)?;
        let done = ready.ctx.execute(&ready.inputs, &mut ready.outputs);
        self.stats.executions.fetch_add(1, Ordering::Relaxed);
        match done {
            Ok(()) => {
                self.write_outputs(io, &ready.outputs)?;
                self.stats
                    .exec_nanos
                    .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) if self.opts.cpu_fallback => {
                drop(st);
                self.stats.warn(format!(
                    "{e}; this run of graph {} falls back to the CPU",
                    self.name
                ));
                self.run_cpu(io)
            }
            Err(e) => Err(e.into()),
        }
    }
}
