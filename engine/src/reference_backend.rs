//! The reference backend: runs every op with the scalar reference kernels of
//! `wisp_ops::reference`. It is the oracle a new backend proves parity
//! against (same graph, same plan, compare outputs), and what the exact-math
//! model test runs on. Slow by design.

use crate::backend::{Backend, Bindings, Executable, Support};
use crate::graph::{Graph, NodeId};
use crate::EngineError;

/// Runs any node with the scalar reference kernels.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReferenceBackend;

struct ReferenceExec {
    nodes: Vec<NodeId>,
}

impl Backend for ReferenceBackend {
    fn name(&self) -> &str {
        "reference"
    }

    fn supports(&self, _graph: &Graph, _node: NodeId) -> Support {
        Support::Yes
    }

    fn compile(
        &self,
        _graph: &Graph,
        nodes: &[NodeId],
    ) -> Result<Box<dyn Executable>, EngineError> {
        Ok(Box::new(ReferenceExec {
            nodes: nodes.to_vec(),
        }))
    }

    fn describe(&self) -> String {
        "reference (scalar oracle, f32 activations, f64 sums)".into()
    }
}

impl Executable for ReferenceExec {
    fn run(&self, io: &mut Bindings) -> Result<(), EngineError> {
        for &n in &self.nodes {
            let mut nio = io.node_io(n)?;
            wisp_ops::reference::execute(nio.op, &nio.inputs, &mut nio.output)?;
            io.observe(n)?;
        }
        Ok(())
    }
}
