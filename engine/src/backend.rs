//! The backend interface: what a backend must answer and do.
//!
//! A backend answers one question per node — can you run it, and if not,
//! why — and compiles a partition (a run of consecutive nodes) into an
//! [`Executable`]. Placement, planning and memory belong to the engine; a
//! backend never sees another backend. Adding an NPU means implementing this
//! trait in its own crate.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use wisp_ops::{Op, TensorView, TensorViewMut};

use crate::buffer::AlignedBuf;
use crate::graph::{Graph, NodeId, ValueId, ValueKind};
use crate::planner::Plan;
use crate::EngineError;

/// A backend's answer to "can you run this node?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Support {
    Yes,
    /// No, with a reason shown in placement reports (op missing, dtype, rank, shape…).
    No(String),
}

/// A compute backend (CPU, QNN, NNAPI, the reference oracle).
pub trait Backend: Send + Sync {
    /// Stable short name ("cpu", "qnn", "reference"), used in reports and `--backend`.
    fn name(&self) -> &str;

    /// Whether this backend can run `node` of `graph`.
    fn supports(&self, graph: &Graph, node: NodeId) -> Support;

    /// Prepares `nodes` (a partition, in execution order) for repeated runs.
    fn compile(&self, graph: &Graph, nodes: &[NodeId]) -> Result<Box<dyn Executable>, EngineError>;

    /// One line describing the backend's configuration (ISA, threads…) for logs and reports.
    fn describe(&self) -> String {
        self.name().to_string()
    }

    /// Time spent per op since the last call, when the backend was asked to
    /// profile (`WISP_PROFILE=1`); `None` when it does not profile.
    fn take_profile(&self) -> Option<Vec<OpTime>> {
        None
    }
}

/// Accumulated time of one op name on one backend.
#[derive(Clone, Debug, PartialEq)]
pub struct OpTime {
    pub op: &'static str,
    pub calls: u64,
    pub seconds: f64,
}

/// A compiled partition.
pub trait Executable: Send + Sync {
    /// Runs the partition's nodes, reading and writing through `io`.
    fn run(&self, io: &mut Bindings) -> Result<(), EngineError>;
}

/// Read access to the model file's tensors, by the id a graph's weight values carry.
pub trait WeightStore: Send + Sync {
    /// The tensor's bytes (borrowed from the map).
    fn data(&self, id: usize) -> &[u8];

    /// The identity of this store's contents, for backends that keep derived
    /// copies of weights (a repacked layout) across runs and compiled graphs;
    /// `None` (the default) means "do not cache anything derived from me".
    fn identity(&self) -> Option<&Arc<WeightsIdentity>> {
        None
    }
}

/// A process-unique token for one weight store's contents. A backend's cache
/// keys derived data by [`WeightsIdentity::id`] and holds only a `Weak` to
/// the token, so an entry dies with the model that owned the weights (a
/// pointer-keyed cache could hand a new model another model's repacked weights).
#[derive(Debug)]
pub struct WeightsIdentity {
    id: u64,
}

impl WeightsIdentity {
    /// A fresh identity, never equal to another in this process.
    pub fn new() -> Arc<WeightsIdentity> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Arc::new(WeightsIdentity {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The identity's number.
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// The memory of one run: the arena, the session's states and the weights.
///
/// Hands each node disjoint views of its inputs and output, checked safely
/// against the plan's layout (no `unsafe`: the arena is split around the
/// output's bytes).
pub struct Bindings<'a> {
    graph: &'a Graph,
    plan: &'a Plan,
    weights: &'a dyn WeightStore,
    arena: &'a mut [u8],
    states: &'a mut [AlignedBuf],
    observer: Option<&'a mut Observer<'a>>,
}

/// Called with each f32 activation right after the node that produced it
/// ran (calibration records ranges this way). Sees sizes and values, never text.
pub type Observer<'a> = dyn FnMut(&str, &[f32]) + Send + 'a;

/// Views of one node's operands. An input is `None` when the node runs in
/// place on it: its data is already in `output`.
pub struct NodeIo<'b> {
    pub op: &'b Op,
    pub inputs: Vec<Option<TensorView<'b>>>,
    pub output: TensorViewMut<'b>,
}

fn sub<'s>(lo: &'s [u8], hi: &'s [u8], hole: &Range<usize>, r: &Range<usize>) -> Option<&'s [u8]> {
    if r.end <= hole.start {
        lo.get(r.clone())
    } else if r.start >= hole.end {
        hi.get(r.start - hole.end..r.end - hole.end)
    } else {
        None
    }
}

impl<'a> Bindings<'a> {
    /// Binds a run's memory. `states` are indexed like [`Graph::states`].
    pub fn new(
        graph: &'a Graph,
        plan: &'a Plan,
        weights: &'a dyn WeightStore,
        arena: &'a mut [u8],
        states: &'a mut [AlignedBuf],
    ) -> Bindings<'a> {
        Bindings {
            graph,
            plan,
            weights,
            arena,
            states,
            observer: None,
        }
    }

    /// Adds an observer of every activation (see [`Observer`]).
    pub fn with_observer(mut self, observer: &'a mut Observer<'a>) -> Bindings<'a> {
        self.observer = Some(observer);
        self
    }

    /// Backends call this after running `node`: hands its output to the
    /// observer, if any (a no-op otherwise). Backends that run a whole
    /// partition at once call it for each node after the partition.
    pub fn observe(&mut self, node: NodeId) -> Result<(), EngineError> {
        let Some(obs) = self.observer.as_mut() else {
            return Ok(());
        };
        let out = self.graph.node(node).output;
        let val = self.graph.value(out);
        if val.ty.dtype != wisp_ops::DType::F32 || !matches!(val.kind, ValueKind::Activation) {
            return Ok(());
        }
        let r = self.plan.layout.ranges[out.0]
            .clone()
            .ok_or_else(|| EngineError::Internal(format!("{} has no arena bytes", val.name)))?;
        let len = val.ty.bytes().unwrap_or(0);
        let bytes = &self.arena[r.start..r.start + len];
        obs(&val.name, bytemuck::cast_slice(bytes));
        Ok(())
    }

    /// The graph being run.
    pub fn graph(&self) -> &Graph {
        self.graph
    }

    /// Whether an observer sees every activation of this run (calibration):
    /// a backend that fuses nodes must then produce each value as the graph says.
    pub fn is_observed(&self) -> bool {
        self.observer.is_some()
    }

    /// The bytes of weight value `v`, borrowed from the store for the whole
    /// run (independent of this `Bindings`' borrows); `None` if `v` is not a weight.
    pub fn weight_bytes(&self, v: ValueId) -> Option<&'a [u8]> {
        match self.graph.value(v).kind {
            ValueKind::Weight(id) => Some(self.weights.data(id)),
            _ => None,
        }
    }

    /// The identity of the weights bound to this run (see [`WeightStore::identity`]).
    pub fn weights_identity(&self) -> Option<&Arc<WeightsIdentity>> {
        self.weights.identity()
    }

    /// Whether the planner ran `node` in place.
    pub fn is_inplace(&self, node: NodeId) -> bool {
        self.plan.inplace[node.0]
    }

    fn range(&self, v: ValueId) -> Result<Range<usize>, EngineError> {
        self.plan.layout.ranges[v.0]
            .clone()
            .map(|r| r.start..r.start + self.graph.value(v).ty.bytes().unwrap_or(0))
            .ok_or_else(|| {
                EngineError::Internal(format!("{} has no arena bytes", self.graph.value(v).name))
            })
    }

    /// Read-only bytes of any value.
    pub fn read(&self, v: ValueId) -> Result<TensorView<'_>, EngineError> {
        let val = self.graph.value(v);
        let data: &[u8] = match val.kind {
            ValueKind::Weight(id) => self.weights.data(id),
            ValueKind::State(s) => self.states[s].bytes(),
            ValueKind::Input | ValueKind::Activation => {
                let r = self.range(v)?;
                &self.arena[r]
            }
        };
        Ok(TensorView { ty: &val.ty, data })
    }

    /// Writable bytes of an arena or state value.
    pub fn write(&mut self, v: ValueId) -> Result<TensorViewMut<'_>, EngineError> {
        let val = self.graph.value(v);
        let data: &mut [u8] = match val.kind {
            ValueKind::Weight(_) => {
                return Err(EngineError::Internal(format!(
                    "weight {} is read-only",
                    val.name
                )))
            }
            ValueKind::State(s) => self.states[s].bytes_mut(),
            ValueKind::Input | ValueKind::Activation => {
                let r = self.range(v)?;
                &mut self.arena[r]
            }
        };
        Ok(TensorViewMut { ty: &val.ty, data })
    }

    /// Disjoint views of a node's inputs and output.
    pub fn node_io(&mut self, node: NodeId) -> Result<NodeIo<'_>, EngineError> {
        let graph = self.graph;
        let n = graph.node(node);
        let inplace_k = if self.plan.inplace[node.0] {
            n.op.inplace_input()
        } else {
            None
        };
        let out_val = graph.value(n.output);
        let bad = |what: &str| EngineError::Internal(format!("node {}: {what}", out_val.name));
        let weights = self.weights;
        let mut inputs = Vec::with_capacity(n.inputs.len());
        match out_val.kind {
            ValueKind::Activation | ValueKind::Input => {
                let hole = self.range(n.output)?;
                let ranges: Vec<Option<Range<usize>>> = n
                    .inputs
                    .iter()
                    .map(|&v| match graph.value(v).kind {
                        ValueKind::Input | ValueKind::Activation => self.range(v).ok(),
                        _ => None,
                    })
                    .collect();
                let (lo, rest) = self.arena.split_at_mut(hole.start);
                let (out, hi) = rest.split_at_mut(hole.len());
                let states: &[AlignedBuf] = self.states;
                for (k, &v) in n.inputs.iter().enumerate() {
                    let val = graph.value(v);
                    if Some(k) == inplace_k {
                        inputs.push(None);
                        continue;
                    }
                    let data: &[u8] = match val.kind {
                        ValueKind::Weight(id) => weights.data(id),
                        ValueKind::State(s) => states[s].bytes(),
                        _ => {
                            let r = ranges[k]
                                .as_ref()
                                .ok_or_else(|| bad("input without bytes"))?;
                            sub(lo, hi, &hole, r).ok_or_else(|| bad("input overlaps output"))?
                        }
                    };
                    inputs.push(Some(TensorView { ty: &val.ty, data }));
                }
                Ok(NodeIo {
                    op: &n.op,
                    inputs,
                    output: TensorViewMut {
                        ty: &out_val.ty,
                        data: out,
                    },
                })
            }
            ValueKind::State(s) => {
                let (before, rest) = self.states.split_at_mut(s);
                let (out, after) = rest.split_at_mut(1);
                let arena: &[u8] = self.arena;
                for &v in &n.inputs {
                    let val = graph.value(v);
                    let data: &[u8] = match val.kind {
                        ValueKind::Weight(id) => weights.data(id),
                        ValueKind::State(t) if t < s => before[t].bytes(),
                        ValueKind::State(t) if t > s => after[t - s - 1].bytes(),
                        ValueKind::State(_) => return Err(bad("reads the state it writes")),
                        _ => {
                            let r = self.plan.layout.ranges[v.0]
                                .clone()
                                .ok_or_else(|| bad("input without bytes"))?;
                            let len = val.ty.bytes().unwrap_or(0);
                            &arena[r.start..r.start + len]
                        }
                    };
                    inputs.push(Some(TensorView { ty: &val.ty, data }));
                }
                Ok(NodeIo {
                    op: &n.op,
                    inputs,
                    output: TensorViewMut {
                        ty: &out_val.ty,
                        data: out[0].bytes_mut(),
                    },
                })
            }
            ValueKind::Weight(_) => Err(bad("writes a weight")),
        }
    }
}
