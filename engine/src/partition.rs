//! The partitioner: gives each node to the highest-priority backend that
//! supports it, falls back to the last backend (the CPU), groups consecutive
//! nodes of one backend into partitions, and reports the placement.

use std::collections::HashSet;
use std::sync::Arc;

use crate::backend::{Backend, Support};
use crate::graph::{Graph, NodeId, ValueKind};
use crate::planner::Plan;
use crate::EngineError;

/// How the caller constrains placement.
#[derive(Clone, Debug, Default)]
pub struct PlacementOptions {
    /// Op names forced onto the fallback backend (`WISP_DENY_OPS`).
    pub deny_ops: HashSet<String>,
    /// Turn any fallback into an error.
    pub no_fallback: bool,
}

impl PlacementOptions {
    /// Reads `WISP_DENY_OPS` (comma-separated op names); unknown names are an error.
    pub fn from_env() -> Result<PlacementOptions, EngineError> {
        let mut o = PlacementOptions::default();
        if let Ok(list) = std::env::var("WISP_DENY_OPS") {
            o.deny_ops = parse_deny_list(&list)?;
        }
        Ok(o)
    }
}

/// Parses a comma-separated list of stable op names.
pub fn parse_deny_list(list: &str) -> Result<HashSet<String>, EngineError> {
    let mut set = HashSet::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !wisp_ops::Op::NAMES.contains(&name) {
            return Err(EngineError::InvalidArgument(format!(
                "WISP_DENY_OPS names unknown op {name:?} (known: {})",
                wisp_ops::Op::NAMES.join(", ")
            )));
        }
        set.insert(name.to_string());
    }
    Ok(set)
}

/// A run of consecutive nodes on one backend.
#[derive(Clone, Debug)]
pub struct Partition {
    /// Index into the backend list.
    pub backend: usize,
    pub nodes: Vec<NodeId>,
}

/// Where one node went and why.
#[derive(Clone, Debug)]
pub struct NodePlacement {
    pub node: NodeId,
    pub op: &'static str,
    pub value: String,
    pub backend: String,
    /// Why preferred backends refused it (empty when it runs on the first choice).
    pub refused: Vec<(String, String)>,
}

/// The placement report shared by every backend: per-node placement,
/// partitions, boundary traffic, and the fallback rate by nodes and FLOPs.
#[derive(Clone, Debug, Default)]
pub struct PlacementReport {
    pub backends: Vec<String>,
    pub nodes: Vec<NodePlacement>,
    /// (backend name, node count) per partition in order.
    pub partitions: Vec<(String, usize)>,
    /// Values crossing between partitions of different backends.
    pub boundary_copies: usize,
    pub boundary_bytes: usize,
    pub fallback_nodes: usize,
    pub total_nodes: usize,
    pub fallback_flops: u64,
    pub total_flops: u64,
}

impl PlacementReport {
    /// Share of nodes that did not run on the preferred backend.
    pub fn fallback_rate_nodes(&self) -> f64 {
        if self.total_nodes == 0 {
            0.0
        } else {
            self.fallback_nodes as f64 / self.total_nodes as f64
        }
    }

    /// Share of FLOPs that did not run on the preferred backend.
    pub fn fallback_rate_flops(&self) -> f64 {
        if self.total_flops == 0 {
            0.0
        } else {
            self.fallback_flops as f64 / self.total_flops as f64
        }
    }

    /// Node counts per (op, backend), sorted, for summaries.
    pub fn op_counts(&self) -> Vec<(String, String, usize)> {
        let mut m: std::collections::BTreeMap<(String, String), usize> = Default::default();
        for n in &self.nodes {
            *m.entry((n.op.to_string(), n.backend.clone())).or_default() += 1;
        }
        m.into_iter().map(|((o, b), c)| (o, b, c)).collect()
    }
}

/// Assigns every node of `plan.order` to a backend. `backends` are in
/// priority order; the last one is the fallback and must support every node
/// it receives.
pub fn partition(
    graph: &Graph,
    plan: &Plan,
    backends: &[Arc<dyn Backend>],
    opts: &PlacementOptions,
) -> Result<(Vec<Partition>, PlacementReport), EngineError> {
    if backends.is_empty() {
        return Err(EngineError::InvalidArgument("no backend given".into()));
    }
    let fallback = backends.len() - 1;
    let mut report = PlacementReport {
        backends: backends.iter().map(|b| b.name().to_string()).collect(),
        ..Default::default()
    };
    let mut assigned = vec![usize::MAX; graph.nodes.len()];
    for &n in &plan.order {
        let node = graph.node(n);
        let op = node.op.name();
        let denied = opts.deny_ops.contains(op);
        let mut refused = Vec::new();
        let mut chosen = None;
        for (bi, b) in backends.iter().enumerate() {
            if denied && bi != fallback {
                refused.push((
                    b.name().to_string(),
                    format!("op {op} denied by WISP_DENY_OPS"),
                ));
                continue;
            }
            match b.supports(graph, n) {
                Support::Yes => {
                    chosen = Some(bi);
                    break;
                }
                Support::No(why) => refused.push((b.name().to_string(), why)),
            }
        }
        let value = graph.value(node.output).name.clone();
        let Some(bi) = chosen else {
            let reasons = refused
                .iter()
                .map(|(b, w)| format!("{b}: {w}"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(EngineError::NoBackend {
                node: value,
                op,
                reasons,
            });
        };
        let flops = graph.flops(n);
        report.total_nodes += 1;
        report.total_flops += flops;
        if bi != 0 {
            report.fallback_nodes += 1;
            report.fallback_flops += flops;
            if opts.no_fallback {
                return Err(EngineError::FallbackRefused(format!(
                    "node {value:?} ({op}) would run on {}: {}",
                    backends[bi].name(),
                    refused
                        .iter()
                        .map(|(b, w)| format!("{b}: {w}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                )));
            }
        }
        assigned[n.0] = bi;
        report.nodes.push(NodePlacement {
            node: n,
            op,
            value,
            backend: backends[bi].name().to_string(),
            refused,
        });
    }

    let mut parts: Vec<Partition> = Vec::new();
    for &n in &plan.order {
        let b = assigned[n.0];
        match parts.last_mut() {
            Some(p) if p.backend == b => p.nodes.push(n),
            _ => parts.push(Partition {
                backend: b,
                nodes: vec![n],
            }),
        }
    }
    // Boundary traffic: activations consumed by a node on another backend than their producer's.
    let mut crossing = HashSet::new();
    for node in &graph.nodes {
        let Some(consumer) = graph.producer(node.output).map(|n| assigned[n.0]) else {
            continue;
        };
        for &v in &node.inputs {
            if matches!(graph.value(v).kind, ValueKind::Weight(_)) {
                continue;
            }
            if let Some(p) = graph.producer(v) {
                if assigned[p.0] != consumer && crossing.insert((v, consumer)) {
                    report.boundary_copies += 1;
                    report.boundary_bytes += graph.value(v).ty.bytes().unwrap_or(0);
                }
            }
        }
    }
    report.partitions = parts
        .iter()
        .map(|p| (backends[p.backend].name().to_string(), p.nodes.len()))
        .collect();
    Ok((parts, report))
}
