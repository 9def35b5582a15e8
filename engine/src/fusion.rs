//! Graph fusion: rewrites op patterns into fused ops where that saves memory
//! traffic or repeated work, before planning.
//!
//! * `rms_norm` → `mul` by a row vector ⇒ `rms_norm_mul` (one pass over the row).
//! * `matmul(x, w_gate)`, `matmul(x, w_up)` → `swiglu` ⇒ `matmul_swiglu` (x is
//!   quantized once for both projections; the gate and up activations never
//!   reach the arena).
//!
//! Rope already runs in place and attention is one fused op (scores, softmax
//! and the value sum), so they need no rewrite. A pattern is fused only when
//! the intermediate values have no other reader and are not graph outputs,
//! so the fused graph computes exactly what the original did.

use std::collections::HashMap;

use wisp_ops::{DType, Op};

use crate::graph::{Graph, GraphError, Rebuilder, ValueId, ValueKind};

/// Counts of the rewrites a fusion pass made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FusionStats {
    pub rms_norm_mul: usize,
    pub matmul_swiglu: usize,
}

/// Returns a fused copy of `g` and what was fused.
pub fn fuse(g: &Graph) -> Result<(Graph, FusionStats), GraphError> {
    let mut readers = vec![0usize; g.values.len()];
    for n in &g.nodes {
        for v in &n.inputs {
            readers[v.0] += 1;
        }
    }
    for v in &g.outputs {
        readers[v.0] += 1;
    }
    let private =
        |v: ValueId| readers[v.0] == 1 && matches!(g.value(v).kind, ValueKind::Activation);

    // Decide the rewrites: `skip` nodes vanish, `replace` nodes become a fused op.
    let mut skip = vec![false; g.nodes.len()];
    let mut replace: HashMap<usize, (Op, Vec<ValueId>)> = HashMap::new();
    let mut stats = FusionStats::default();
    for (i, n) in g.nodes.iter().enumerate() {
        match &n.op {
            Op::Mul => {
                let (a, w) = (n.inputs[0], n.inputs[1]);
                let Some(p) = g.producer(a) else { continue };
                let pn = g.node(p);
                let wty = &g.value(w).ty;
                let row = g.value(a).ty.row_len();
                if let Op::RmsNorm { eps } = pn.op {
                    if private(a) && wty.dtype == DType::F32 && wty.shape == [row] && !skip[p.0] {
                        skip[p.0] = true;
                        replace.insert(i, (Op::RmsNormMul { eps }, vec![pn.inputs[0], w]));
                        stats.rms_norm_mul += 1;
                    }
                }
            }
            Op::SwiGlu => {
                let (gate, up) = (n.inputs[0], n.inputs[1]);
                let (Some(pg), Some(pu)) = (g.producer(gate), g.producer(up)) else {
                    continue;
                };
                let (ng, nu) = (g.node(pg), g.node(pu));
                let both_matmul = matches!(ng.op, Op::MatMul) && matches!(nu.op, Op::MatMul);
                if both_matmul
                    && ng.inputs[0] == nu.inputs[0]
                    && private(gate)
                    && private(up)
                    && gate != up
                {
                    skip[pg.0] = true;
                    skip[pu.0] = true;
                    replace.insert(
                        i,
                        (
                            Op::MatMulSwiGlu,
                            vec![ng.inputs[0], ng.inputs[1], nu.inputs[1]],
                        ),
                    );
                    stats.matmul_swiglu += 1;
                }
            }
            _ => {}
        }
    }

    let mut rb = Rebuilder::new(g);
    for (i, n) in g.nodes.iter().enumerate() {
        if skip[i] {
            continue;
        }
        match replace.remove(&i) {
            Some((op, ins)) => rb.emit(n, op, &ins)?,
            None => rb.emit(n, n.op.clone(), &n.inputs)?,
        };
    }
    let out = rb.finish()?;
    Ok((out, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::WeightStore;
    use crate::buffer::AlignedBuf;
    use crate::executor::CompiledGraph;
    use crate::partition::PlacementOptions;
    use crate::reference_backend::ReferenceBackend;
    use std::sync::Arc;
    use wisp_ops::TensorType;

    struct Weights(Vec<Vec<u8>>);
    impl WeightStore for Weights {
        fn data(&self, id: usize) -> &[u8] {
            &self.0[id]
        }
    }

    fn run(g: Graph, w: &Weights, x: &[f32]) -> Vec<f32> {
        let cg = CompiledGraph::compile(
            g,
            &[Arc::new(ReferenceBackend)],
            &PlacementOptions::default(),
        )
        .unwrap();
        let mut arena = AlignedBuf::zeroed(cg.arena_bytes());
        let r = cg.value_range(cg.graph.inputs[0]).unwrap();
        arena.bytes_mut()[r].copy_from_slice(bytemuck::cast_slice(x));
        cg.run(w, &mut arena, &mut []).unwrap();
        let r = cg.value_range(cg.graph.outputs[0]).unwrap();
        bytemuck::cast_slice(&arena.bytes()[r]).to_vec()
    }

    /// A feed-forward block: norm × weight, gate/up, swiglu, down. Fusing it
    /// gives the same outputs, and a shared intermediate blocks the fusion.
    #[test]
    fn fused_ffn_equals_unfused() {
        let (n, d, f) = (3, 32, 64);
        let mut s = 7u64;
        let mut rnd = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        };
        let mk = |k: usize, rnd: &mut dyn FnMut() -> f32| -> Vec<u8> {
            let v: Vec<f32> = (0..k).map(|_| rnd()).collect();
            bytemuck::cast_slice(&v).to_vec()
        };
        let w = Weights(vec![
            mk(d, &mut rnd),
            mk(f * d, &mut rnd),
            mk(f * d, &mut rnd),
            mk(d * f, &mut rnd),
        ]);
        let x: Vec<f32> = (0..n * d).map(|_| rnd() * 3.0).collect();
        let build = |share: bool| {
            let mut g = Graph::new();
            let xi = g.input("x", TensorType::new(DType::F32, &[n, d]));
            let nw = g.weight("norm", TensorType::new(DType::F32, &[d]), 0);
            let wg = g.weight("gate", TensorType::new(DType::F32, &[f, d]), 1);
            let wu = g.weight("up", TensorType::new(DType::F32, &[f, d]), 2);
            let wd = g.weight("down", TensorType::new(DType::F32, &[d, f]), 3);
            let h = g.op("h", Op::RmsNorm { eps: 1e-5 }, &[xi]).unwrap();
            let h = g.op("hw", Op::Mul, &[h, nw]).unwrap();
            let gate = g.op("g", Op::MatMul, &[h, wg]).unwrap();
            let up = g.op("u", Op::MatMul, &[h, wu]).unwrap();
            let a = g.op("a", Op::SwiGlu, &[gate, up]).unwrap();
            let mut y = g.op("y", Op::MatMul, &[a, wd]).unwrap();
            if share {
                // `up` read twice: the swiglu fusion must not happen.
                let u2 = g
                    .op("u2", Op::TakeRows { start: 0, len: n }, &[up])
                    .unwrap();
                let _ = u2;
                y = g.op("y2", Op::Add, &[y, h]).unwrap();
            }
            g.output(y);
            g
        };
        let plain = build(false);
        let (fused, st) = fuse(&plain).unwrap();
        assert_eq!(
            st,
            FusionStats {
                rms_norm_mul: 1,
                matmul_swiglu: 1
            }
        );
        assert_eq!(fused.nodes.len(), plain.nodes.len() - 3);
        let (a, b) = (run(plain, &w, &x), run(fused, &w, &x));
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() <= 1e-5 * (1.0 + p.abs()), "{p} vs {q}");
        }
        let shared = build(true);
        let (fused, st) = fuse(&shared).unwrap();
        assert_eq!(st.matmul_swiglu, 0);
        assert_eq!(st.rms_norm_mul, 1);
        let (a, b) = (run(shared, &w, &x), run(fused, &w, &x));
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() <= 1e-5 * (1.0 + p.abs()), "{p} vs {q}");
        }
    }
}
