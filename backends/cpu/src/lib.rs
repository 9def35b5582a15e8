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

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wisp_engine::{Backend, Bindings, EngineError, Executable, Graph, NodeId, OpTime, Support};
use wisp_ops::{DType, Op};

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
}

/// The CPU backend. Holds its thread pool; cheap to share in an `Arc`.
pub struct CpuBackend {
    kernels: &'static Kernels,
    pool: Arc<rayon::ThreadPool>,
    threads: usize,
    profile: Option<Arc<Profile>>,
}

/// Per-op time, kept only when `WISP_PROFILE` is set (one clock read per node).
type Profile = Mutex<BTreeMap<&'static str, (u64, f64)>>;

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
        Ok(CpuBackend {
            kernels: isa.kernels(),
            pool: Arc::new(pool),
            threads,
            profile,
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
    kernels: &'static Kernels,
    pool: Arc<rayon::ThreadPool>,
    profile: Option<Arc<Profile>>,
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

    fn compile(
        &self,
        _graph: &Graph,
        nodes: &[NodeId],
    ) -> Result<Box<dyn Executable>, EngineError> {
        Ok(Box::new(CpuExec {
            nodes: nodes.to_vec(),
            kernels: self.kernels,
            pool: self.pool.clone(),
            profile: self.profile.clone(),
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

impl Executable for CpuExec {
    fn run(&self, io: &mut Bindings) -> Result<(), EngineError> {
        self.pool.install(|| {
            for &n in &self.nodes {
                let started = self.profile.as_ref().map(|_| Instant::now());
                let mut nio = io.node_io(n)?;
                let op_name = nio.op.name();
                match nio.op {
                    Op::MatMul => {
                        let x = nio.inputs[0]
                            .ok_or_else(|| EngineError::Internal("matmul input".into()))?;
                        let w = nio.inputs[1]
                            .ok_or_else(|| EngineError::Internal("matmul weight".into()))?;
                        matmul::matmul(self.kernels, x, w, nio.output.f32());
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
                            nio.inputs[i].ok_or_else(|| {
                                EngineError::Internal("encoder_attention input".into())
                            })
                        };
                        let (q, k, v, m) = (get(0)?, get(1)?, get(2)?, get(3)?);
                        let seq = m.ty.shape[1];
                        encoder_attention::encoder_attention(
                            self.kernels,
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
                            nio.inputs[i]
                                .ok_or_else(|| EngineError::Internal("attention input".into()))
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
                    op => wisp_ops::reference::execute(op, &nio.inputs, &mut nio.output)?,
                }
                drop(nio);
                io.observe(n)?;
                if let (Some(p), Some(t)) = (&self.profile, started) {
                    let mut map = p.lock().unwrap_or_else(|e| e.into_inner());
                    let e = map.entry(op_name).or_insert((0, 0.0));
                    e.0 += 1;
                    e.1 += t.elapsed().as_secs_f64();
                }
            }
            Ok(())
        })
    }
}
