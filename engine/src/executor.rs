//! The executor: a graph planned, partitioned and compiled, ready to run
//! against a session's memory.

use std::sync::Arc;

use crate::backend::{Backend, Bindings, Executable, WeightStore};
use crate::buffer::AlignedBuf;
use crate::graph::{Graph, ValueId};
use crate::partition::{partition, Partition, PlacementOptions, PlacementReport};
use crate::planner::{plan, Plan};
use crate::EngineError;

/// A graph with its plan and one executable per partition. Immutable and
/// shared by every session that runs this shape.
pub struct CompiledGraph {
    pub graph: Graph,
    pub plan: Plan,
    pub partitions: Vec<Partition>,
    pub report: PlacementReport,
    executables: Vec<Box<dyn Executable>>,
}

impl CompiledGraph {
    /// Plans, partitions and compiles `graph` over `backends` (priority order, CPU last).
    pub fn compile(
        graph: Graph,
        backends: &[Arc<dyn Backend>],
        opts: &PlacementOptions,
    ) -> Result<CompiledGraph, EngineError> {
        let plan = plan(&graph)?;
        let (partitions, report) = partition(&graph, &plan, backends, opts)?;
        let executables = partitions
            .iter()
            .map(|p| backends[p.backend].compile(&graph, &p.nodes))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CompiledGraph {
            graph,
            plan,
            partitions,
            report,
            executables,
        })
    }

    /// Bytes the arena needs.
    pub fn arena_bytes(&self) -> usize {
        self.plan.layout.size
    }

    /// Runs every partition in order. The caller has written the graph's
    /// inputs into `arena` (see [`CompiledGraph::input_mut`]).
    pub fn run(
        &self,
        weights: &dyn WeightStore,
        arena: &mut AlignedBuf,
        states: &mut [AlignedBuf],
    ) -> Result<(), EngineError> {
        if arena.len() < self.arena_bytes() {
            arena.resize(self.arena_bytes());
        }
        let mut io = Bindings::new(&self.graph, &self.plan, weights, arena.bytes_mut(), states);
        for e in &self.executables {
            e.run(&mut io)?;
        }
        Ok(())
    }

    /// Like [`CompiledGraph::run`], handing every activation to `observer`
    /// right after it is produced (calibration).
    pub fn run_observed(
        &self,
        weights: &dyn WeightStore,
        arena: &mut AlignedBuf,
        states: &mut [AlignedBuf],
        observer: &mut (dyn FnMut(&str, &[f32]) + Send),
    ) -> Result<(), EngineError> {
        if arena.len() < self.arena_bytes() {
            arena.resize(self.arena_bytes());
        }
        let mut io = Bindings::new(&self.graph, &self.plan, weights, arena.bytes_mut(), states)
            .with_observer(observer);
        for e in &self.executables {
            e.run(&mut io)?;
        }
        Ok(())
    }

    /// The bytes of arena value `v` (an input to fill or an output to read).
    pub fn value_range(&self, v: ValueId) -> Result<std::ops::Range<usize>, EngineError> {
        let r = self.plan.layout.ranges[v.0].clone().ok_or_else(|| {
            EngineError::Internal(format!("{} is not in the arena", self.graph.value(v).name))
        })?;
        let len = self.graph.value(v).ty.bytes().unwrap_or(0);
        Ok(r.start..r.start + len)
    }
}
