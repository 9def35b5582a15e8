//! The planner: orders the nodes, computes every arena value's lifetime and
//! lays all of them out in one arena, reusing bytes of dead values and
//! letting elementwise ops write over their input where that input dies.
//!
//! Time is measured in steps: inputs are defined at step 0, the node at
//! position i of the order runs at step i + 1, and graph outputs stay alive
//! past the last step. A value is live from its definition to its last use,
//! inclusive; two values live at the same step never share a byte unless one
//! is the in-place output of the other at the step where the input dies.

use std::collections::VecDeque;
use std::ops::Range;

use crate::graph::{Graph, NodeId, ValueId, ValueKind};

/// Every arena offset is a multiple of this (one cache line; enough for any SIMD load).
pub const ARENA_ALIGN: usize = 64;

/// Live range of a value in steps (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    pub def: usize,
    pub last: usize,
}

/// Where each arena value lives.
#[derive(Clone, Debug, Default)]
pub struct ArenaLayout {
    /// Byte range per value id (`None` for weights and states).
    pub ranges: Vec<Option<Range<usize>>>,
    /// Arena size in bytes.
    pub size: usize,
    /// Sum of the sizes of all arena values: what the arena would take without reuse.
    pub total_value_bytes: usize,
}

/// The order, lifetimes and layout of a graph.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Nodes in execution order.
    pub order: Vec<NodeId>,
    /// Lifetime per value id (`None` for values outside the arena).
    pub lifetimes: Vec<Option<Lifetime>>,
    pub layout: ArenaLayout,
    /// Per node id: true when its output took over its in-place input's bytes.
    pub inplace: Vec<bool>,
}

/// Why a graph cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the graph has a cycle through node {0}")]
    Cycle(usize),
    #[error("value {0:?} has a size that cannot be computed")]
    BadSize(String),
}

/// A first-fit free list over the arena with coalescing.
#[derive(Default)]
struct FreeList {
    /// Sorted, non-adjacent free blocks.
    free: Vec<Range<usize>>,
    end: usize,
}

impl FreeList {
    fn alloc(&mut self, size: usize) -> Range<usize> {
        // Best fit: the smallest free block that holds `size`.
        let best = self
            .free
            .iter()
            .enumerate()
            .filter(|(_, r)| r.len() >= size)
            .min_by_key(|(_, r)| r.len())
            .map(|(i, _)| i);
        if let Some(i) = best {
            let r = self.free[i].clone();
            if r.len() == size {
                self.free.remove(i);
            } else {
                self.free[i] = r.start + size..r.end;
            }
            return r.start..r.start + size;
        }
        // Grow: reuse a free block at the very end if there is one.
        if let Some(last) = self.free.last() {
            if last.end == self.end {
                let start = last.start;
                self.free.pop();
                self.end = start + size;
                return start..start + size;
            }
        }
        let start = self.end;
        self.end += size;
        start..start + size
    }

    fn release(&mut self, r: Range<usize>) {
        let i = self.free.partition_point(|f| f.start < r.start);
        self.free.insert(i, r);
        // Coalesce with neighbours.
        if i + 1 < self.free.len() && self.free[i].end == self.free[i + 1].start {
            self.free[i].end = self.free[i + 1].end;
            self.free.remove(i + 1);
        }
        if i > 0 && self.free[i - 1].end == self.free[i].start {
            self.free[i - 1].end = self.free[i].end;
            self.free.remove(i);
        }
    }
}

fn aligned(n: usize) -> usize {
    n.div_ceil(ARENA_ALIGN) * ARENA_ALIGN
}

/// Whether a value lives in the arena.
pub fn in_arena(kind: &ValueKind) -> bool {
    matches!(kind, ValueKind::Input | ValueKind::Activation)
}

/// Plans `graph`.
pub fn plan(graph: &Graph) -> Result<Plan, PlanError> {
    let order = topological_order(graph)?;
    let nv = graph.values.len();
    let end_step = order.len() + 1;

    let mut lifetimes: Vec<Option<Lifetime>> = vec![None; nv];
    for &v in &graph.inputs {
        lifetimes[v.0] = Some(Lifetime { def: 0, last: 0 });
    }
    for (pos, &n) in order.iter().enumerate() {
        let step = pos + 1;
        let node = graph.node(n);
        for &i in &node.inputs {
            if let Some(lt) = lifetimes[i.0].as_mut() {
                lt.last = lt.last.max(step);
            }
        }
        if in_arena(&graph.value(node.output).kind) {
            lifetimes[node.output.0] = Some(Lifetime {
                def: step,
                last: step,
            });
        }
    }
    for &o in &graph.outputs {
        if let Some(lt) = lifetimes[o.0].as_mut() {
            lt.last = end_step;
        }
    }

    let mut sizes = vec![0usize; nv];
    let mut total = 0usize;
    for (i, v) in graph.values.iter().enumerate() {
        if in_arena(&v.kind) {
            let b =
                v.ty.bytes()
                    .ok_or_else(|| PlanError::BadSize(v.name.clone()))?;
            sizes[i] = aligned(b.max(1));
            total += sizes[i];
        }
    }

    let mut free = FreeList::default();
    let mut ranges: Vec<Option<Range<usize>>> = vec![None; nv];
    let mut inplace = vec![false; graph.nodes.len()];
    for &v in &graph.inputs {
        ranges[v.0] = Some(free.alloc(sizes[v.0]));
    }
    for (pos, &n) in order.iter().enumerate() {
        let step = pos + 1;
        let node = graph.node(n);
        let out = node.output;
        if lifetimes[out.0].is_some() {
            let reuse = node.op.inplace_input().and_then(|k| {
                let u = *node.inputs.get(k)?;
                let lt = lifetimes[u.0]?;
                let only_once = node.inputs.iter().filter(|&&x| x == u).count() == 1;
                (lt.last == step && sizes[u.0] == sizes[out.0] && only_once).then_some(u)
            });
            match reuse {
                Some(u) => {
                    ranges[out.0] = ranges[u.0].take();
                    inplace[n.0] = true;
                }
                None => ranges[out.0] = Some(free.alloc(sizes[out.0])),
            }
        }
        // Inputs dying here are freed only after the output is placed.
        let mut seen: Vec<ValueId> = Vec::new();
        for &i in &node.inputs {
            if seen.contains(&i) {
                continue;
            }
            seen.push(i);
            if lifetimes[i.0].is_some_and(|lt| lt.last == step) {
                if let Some(r) = ranges[i.0].clone() {
                    if !(inplace[n.0] && ranges[out.0].as_ref() == Some(&r)) {
                        free.release(r);
                    }
                }
            }
        }
        // An unused activation dies at its definition.
        if lifetimes[out.0].is_some_and(|lt| lt.last == step) && !graph.outputs.contains(&out) {
            if let Some(r) = ranges[out.0].clone() {
                free.release(r);
            }
        }
    }
    // Values taken over in place share their successor's bytes; walking
    // backwards gives every link of a chain the final range.
    for &n in order.iter().rev() {
        let node = graph.node(n);
        if inplace[n.0] {
            if let Some(k) = node.op.inplace_input() {
                let u = node.inputs[k];
                ranges[u.0] = ranges[node.output.0].clone();
            }
        }
    }

    Ok(Plan {
        order,
        lifetimes,
        layout: ArenaLayout {
            ranges,
            size: free.end,
            total_value_bytes: total,
        },
        inplace,
    })
}

/// Kahn's algorithm, taking ready nodes in id order so the builder's order is
/// kept when it is already valid.
fn topological_order(graph: &Graph) -> Result<Vec<NodeId>, PlanError> {
    let n = graph.nodes.len();
    let mut indeg = vec![0usize; n];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, node) in graph.nodes.iter().enumerate() {
        for &v in &node.inputs {
            if let Some(p) = graph.producer(v) {
                indeg[i] += 1;
                users[p.0].push(i);
            }
        }
    }
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_front() {
        order.push(NodeId(i));
        for &u in &users[i] {
            indeg[u] -= 1;
            if indeg[u] == 0 {
                ready.push_back(u);
            }
        }
    }
    if order.len() != n {
        let stuck = (0..n).find(|&i| indeg[i] > 0).unwrap_or(0);
        return Err(PlanError::Cycle(stuck));
    }
    Ok(order)
}

/// Checks the layout's central promise: no two values live at the same step
/// share a byte, except an in-place output and the input it replaced at the
/// step where that input dies. Returns the first offending pair.
pub fn check_no_live_overlap(graph: &Graph, plan: &Plan) -> Result<(), (ValueId, ValueId)> {
    let arena: Vec<usize> = (0..graph.values.len())
        .filter(|&i| plan.layout.ranges[i].is_some())
        .collect();
    // Pairs (input, output) joined in place.
    let mut joined: Vec<(usize, usize)> = Vec::new();
    for node in &graph.nodes {
        if let Some(pos) = plan
            .order
            .iter()
            .position(|&n| graph.node(n).output == node.output)
        {
            let n = plan.order[pos];
            if plan.inplace[n.0] {
                if let Some(k) = node.op.inplace_input() {
                    joined.push((node.inputs[k].0, node.output.0));
                }
            }
        }
    }
    // Values chained in place share bytes legitimately: group them.
    let mut group: Vec<usize> = (0..graph.values.len()).collect();
    fn root(g: &mut [usize], mut x: usize) -> usize {
        while g[x] != x {
            g[x] = g[g[x]];
            x = g[x];
        }
        x
    }
    for &(a, b) in &joined {
        let (ra, rb) = (root(&mut group, a), root(&mut group, b));
        group[ra] = rb;
    }
    for (ai, &a) in arena.iter().enumerate() {
        for &b in &arena[ai + 1..] {
            let (la, lb) = (plan.lifetimes[a], plan.lifetimes[b]);
            let (Some(la), Some(lb)) = (la, lb) else {
                continue;
            };
            let live_together = la.def <= lb.last && lb.def <= la.last;
            let ra = plan.layout.ranges[a].clone().unwrap_or(0..0);
            let rb = plan.layout.ranges[b].clone().unwrap_or(0..0);
            let share = ra.start < rb.end && rb.start < ra.end;
            if live_together && share {
                let same_chain = root(&mut group, a) == root(&mut group, b);
                // Within a chain, members may only meet at a hand-over step.
                let handover = la.last == lb.def || lb.last == la.def;
                if !(same_chain && handover) {
                    return Err((ValueId(a), ValueId(b)));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use wisp_ops::{DType, Op, TensorType};

    fn f32t(rows: usize, d: usize) -> TensorType {
        TensorType::new(DType::F32, &[rows, d])
    }

    #[test]
    fn chain_reuses_memory_and_runs_in_place() {
        let mut g = Graph::new();
        let x = g.input("x", f32t(4, 16));
        let a = g.op("a", Op::Silu, &[x]).unwrap();
        let b = g.op("b", Op::Silu, &[a]).unwrap();
        let c = g.op("c", Op::RmsNorm { eps: 1e-5 }, &[b]).unwrap();
        g.output(c);
        let p = plan(&g).unwrap();
        assert!(p.inplace.iter().all(|&b| b));
        assert_eq!(p.layout.size, 256);
        assert_eq!(p.layout.total_value_bytes, 4 * 256);
        check_no_live_overlap(&g, &p).unwrap();
    }

    #[test]
    fn value_read_later_is_not_overwritten() {
        let mut g = Graph::new();
        let x = g.input("x", f32t(1, 16));
        let a = g.op("a", Op::Silu, &[x]).unwrap();
        let b = g.op("b", Op::Add, &[a, x]).unwrap();
        g.output(b);
        let p = plan(&g).unwrap();
        // x is still needed by b, so a cannot take x's bytes.
        assert!(!p.inplace[0]);
        check_no_live_overlap(&g, &p).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Random DAGs of unary/binary ops on random widths: no two values live
        /// at the same step share bytes.
        #[test]
        fn random_dags_never_share_live_bytes(
            widths in proptest::collection::vec(1usize..5, 1..4),
            ops in proptest::collection::vec((0u8..4, any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..60),
            n_out in 1usize..4,
        ) {
            let mut g = Graph::new();
            let mut vals: Vec<ValueId> = Vec::new();
            for (i, w) in widths.iter().enumerate() {
                vals.push(g.input(&format!("in{i}"), f32t(1, w * 16)));
            }
            for (k, (kind, ia, ib)) in ops.iter().enumerate() {
                let a = vals[ia.index(vals.len())];
                let ta = g.value(a).ty.clone();
                let v = match kind {
                    0 => g.op(&format!("n{k}"), Op::Silu, &[a]),
                    1 => g.op(&format!("n{k}"), Op::RmsNorm { eps: 0.0 }, &[a]),
                    _ => {
                        // Pick a partner of the same width if there is one.
                        let same: Vec<ValueId> = vals.iter().copied().filter(|v| g.value(*v).ty == ta).collect();
                        let b = same[ib.index(same.len())];
                        let op = if *kind == 2 { Op::Add } else { Op::Mul };
                        g.op(&format!("n{k}"), op, &[a, b])
                    }
                };
                vals.push(v.unwrap());
            }
            for v in vals.iter().rev().take(n_out) {
                g.output(*v);
            }
            let p = plan(&g).unwrap();
            prop_assert!(p.layout.size <= p.layout.total_value_bytes);
            if let Err((a, b)) = check_no_live_overlap(&g, &p) {
                prop_assert!(false, "{} and {} share live bytes", g.value(a).name, g.value(b).name);
            }
        }
    }
}
