//! The tensor graph: values and the op nodes that produce them.
//!
//! A model builder describes the forward pass once, as data; the planner,
//! partitioner and backends all work from this description. Weights are
//! referenced by id into the model file (never copied), KV caches are
//! *state* values owned by a session, and everything else is an activation
//! the planner lays out in one arena.

use std::collections::HashMap;

use wisp_ops::{Op, OpError, TensorType};

/// Index of a value in [`Graph::values`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

/// Index of a node in [`Graph::nodes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// Where a value's bytes live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// Fed by the caller before each run (token ids, positions); lives in the arena.
    Input,
    /// A tensor of the model file, by the weight store's id; read in place.
    Weight(usize),
    /// Session state (a KV cache) by index into [`Graph::states`]; persists across runs.
    State(usize),
    /// Produced by a node; lives in the arena for its lifetime.
    Activation,
}

/// One value: a name (stable across runs, used in logs, reports and
/// calibration files), its type and where it lives.
#[derive(Clone, Debug)]
pub struct Value {
    pub name: String,
    pub ty: TensorType,
    pub kind: ValueKind,
}

/// One op application.
#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub output: ValueId,
}

/// Why a graph could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("node {name:?}: {source}")]
    Op { name: String, source: OpError },
    #[error("state {0:?} is written by more than one node")]
    StateWrittenTwice(String),
    #[error("value {0:?} is not a state")]
    NotAState(String),
    #[error("invalid graph: {0}")]
    Invalid(String),
}

/// A whole computation: values, nodes in a valid order, inputs and outputs.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub values: Vec<Value>,
    pub nodes: Vec<Node>,
    /// Values fed by the caller, in declaration order.
    pub inputs: Vec<ValueId>,
    /// Values read back by the caller.
    pub outputs: Vec<ValueId>,
    /// State values in state-index order.
    pub states: Vec<ValueId>,
    producer: Vec<Option<NodeId>>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    fn push_value(&mut self, name: String, ty: TensorType, kind: ValueKind) -> ValueId {
        self.values.push(Value { name, ty, kind });
        self.producer.push(None);
        ValueId(self.values.len() - 1)
    }

    /// Declares a caller-fed input.
    pub fn input(&mut self, name: &str, ty: TensorType) -> ValueId {
        let v = self.push_value(name.to_string(), ty, ValueKind::Input);
        self.inputs.push(v);
        v
    }

    /// Declares a weight of the model file.
    pub fn weight(&mut self, name: &str, ty: TensorType, store_id: usize) -> ValueId {
        self.push_value(name.to_string(), ty, ValueKind::Weight(store_id))
    }

    /// Declares a session state (KV cache).
    pub fn state(&mut self, name: &str, ty: TensorType) -> ValueId {
        let idx = self.states.len();
        let v = self.push_value(name.to_string(), ty, ValueKind::State(idx));
        self.states.push(v);
        v
    }

    /// Marks a value as read back by the caller.
    pub fn output(&mut self, v: ValueId) {
        self.outputs.push(v);
    }

    /// Adds a node producing a new activation named `name`.
    pub fn op(&mut self, name: &str, op: Op, inputs: &[ValueId]) -> Result<ValueId, GraphError> {
        self.op_with_hint(name, op, inputs, None)
    }

    /// Adds a `reshape` node giving `x` the type `to`.
    pub fn reshape(
        &mut self,
        name: &str,
        x: ValueId,
        to: TensorType,
    ) -> Result<ValueId, GraphError> {
        self.op_with_hint(name, Op::Reshape, &[x], Some(to))
    }

    fn op_with_hint(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[ValueId],
        hint: Option<TensorType>,
    ) -> Result<ValueId, GraphError> {
        let tys: Vec<&TensorType> = inputs.iter().map(|v| &self.values[v.0].ty).collect();
        let ty = op
            .infer(&tys, hint.as_ref())
            .map_err(|source| GraphError::Op {
                name: name.to_string(),
                source,
            })?;
        let out = self.push_value(name.to_string(), ty, ValueKind::Activation);
        self.nodes.push(Node {
            op,
            inputs: inputs.to_vec(),
            output: out,
        });
        self.producer[out.0] = Some(NodeId(self.nodes.len() - 1));
        Ok(out)
    }

    /// Adds a node that writes into `state` (e.g. `kv_store`) and returns the
    /// state, so readers of the state depend on this write.
    pub fn write_state(
        &mut self,
        op: Op,
        inputs: &[ValueId],
        state: ValueId,
    ) -> Result<ValueId, GraphError> {
        let sv = &self.values[state.0];
        if !matches!(sv.kind, ValueKind::State(_)) {
            return Err(GraphError::NotAState(sv.name.clone()));
        }
        if self.producer[state.0].is_some() {
            return Err(GraphError::StateWrittenTwice(sv.name.clone()));
        }
        let tys: Vec<&TensorType> = inputs.iter().map(|v| &self.values[v.0].ty).collect();
        op.infer(&tys, Some(&sv.ty))
            .map_err(|source| GraphError::Op {
                name: sv.name.clone(),
                source,
            })?;
        self.nodes.push(Node {
            op,
            inputs: inputs.to_vec(),
            output: state,
        });
        self.producer[state.0] = Some(NodeId(self.nodes.len() - 1));
        Ok(state)
    }

    /// The node that produces `v`, if any.
    pub fn producer(&self, v: ValueId) -> Option<NodeId> {
        self.producer.get(v.0).copied().flatten()
    }

    /// A value.
    pub fn value(&self, v: ValueId) -> &Value {
        &self.values[v.0]
    }

    /// A node.
    pub fn node(&self, n: NodeId) -> &Node {
        &self.nodes[n.0]
    }

    /// Types of a node's inputs.
    pub fn input_types(&self, n: NodeId) -> Vec<&TensorType> {
        self.nodes[n.0]
            .inputs
            .iter()
            .map(|v| &self.values[v.0].ty)
            .collect()
    }

    /// Estimated FLOPs of a node.
    pub fn flops(&self, n: NodeId) -> u64 {
        let node = &self.nodes[n.0];
        node.op
            .flops(&self.input_types(n), &self.values[node.output.0].ty)
    }

    /// Finds a value by name.
    pub fn find(&self, name: &str) -> Option<ValueId> {
        self.values.iter().position(|v| v.name == name).map(ValueId)
    }
}

/// Copies a graph node by node into a new one, so that passes (fusion,
/// fake quantization) only say what changes: inputs and states are declared
/// first in their original order, weights when first read, and each emitted
/// node's output is remembered under the old value's id.
pub struct Rebuilder<'g> {
    src: &'g Graph,
    /// The graph being built.
    pub out: Graph,
    map: HashMap<ValueId, ValueId>,
}

impl<'g> Rebuilder<'g> {
    /// Starts a copy of `src` with its inputs and states.
    pub fn new(src: &'g Graph) -> Rebuilder<'g> {
        let mut out = Graph::new();
        let mut map = HashMap::new();
        for &v in &src.inputs {
            let val = src.value(v);
            map.insert(v, out.input(&val.name, val.ty.clone()));
        }
        for &v in &src.states {
            let val = src.value(v);
            map.insert(v, out.state(&val.name, val.ty.clone()));
        }
        Rebuilder { src, out, map }
    }

    /// The new id of an old value (weights are declared on first use).
    pub fn get(&mut self, v: ValueId) -> Result<ValueId, GraphError> {
        if let Some(&m) = self.map.get(&v) {
            return Ok(m);
        }
        let val = self.src.value(v);
        let ValueKind::Weight(id) = val.kind else {
            return Err(GraphError::Invalid(format!(
                "{} is read before it is produced",
                val.name
            )));
        };
        let new = self.out.weight(&val.name, val.ty.clone(), id);
        self.map.insert(v, new);
        Ok(new)
    }

    /// Emits `op` on the (old) `inputs` in place of `node`, keeping its
    /// output's name and kind; returns the new output.
    pub fn emit(&mut self, node: &Node, op: Op, inputs: &[ValueId]) -> Result<ValueId, GraphError> {
        let ins = inputs
            .iter()
            .map(|&v| self.get(v))
            .collect::<Result<Vec<_>, _>>()?;
        let val = self.src.value(node.output);
        let new = match val.kind {
            ValueKind::State(_) => {
                let st = self.get(node.output)?;
                self.out.write_state(op, &ins, st)?
            }
            _ if matches!(op, Op::Reshape) => {
                self.out.reshape(&val.name, ins[0], val.ty.clone())?
            }
            _ => self.out.op(&val.name, op, &ins)?,
        };
        self.map.insert(node.output, new);
        Ok(new)
    }

    /// Makes later readers of the old value `old` read `new` instead.
    pub fn redirect(&mut self, old: ValueId, new: ValueId) {
        self.map.insert(old, new);
    }

    /// Declares the outputs and returns the new graph.
    pub fn finish(mut self) -> Result<Graph, GraphError> {
        for &v in &self.src.outputs {
            let m = self.get(v)?;
            self.out.output(m);
        }
        Ok(self.out)
    }
}
