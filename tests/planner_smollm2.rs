//! The planner on the real SmolLM2 graphs.

mod common;

use wisp::engine::model::GraphShape;
use wisp::engine::planner::check_no_live_overlap;
use wisp::ops::DType;
use wisp::{BackendChoice, LogitsMode};

#[test]
fn decode_arena_is_under_half_of_all_activations() {
    let model = common::load(BackendChoice::Cpu, 1);
    for n_tokens in [1, 7, 64] {
        let cg = model
            .compiled(&GraphShape {
                n_tokens,
                n_ctx: 512,
                kv_dtype: DType::F16,
                logits: LogitsMode::Last,
            })
            .unwrap();
        let l = &cg.plan.layout;
        assert!(
            l.size * 2 < l.total_value_bytes,
            "n={n_tokens}: arena {} vs values {}",
            l.size,
            l.total_value_bytes
        );
        check_no_live_overlap(&cg.graph, &cg.plan).unwrap();
        assert_eq!(cg.report.fallback_nodes, 0);
        assert_eq!(cg.partitions.len(), 1);
        eprintln!(
            "n={n_tokens}: arena {} B for {} B of activations",
            l.size, l.total_value_bytes
        );
    }
}

#[test]
fn sessions_share_one_model_across_threads() {
    let model = common::load(BackendChoice::Cpu, 1);
    let prompt = model
        .encode_prompt("The capital of France is", false)
        .unwrap();
    let run = move |m: std::sync::Arc<wisp::Model>, prompt: Vec<u32>| {
        let mut s = m.session(Default::default()).unwrap();
        let mut ids = Vec::new();
        let mut logits = s.eval(&prompt, LogitsMode::Last).unwrap();
        for _ in 0..8 {
            let id = wisp::engine::sampling::argmax(&logits);
            ids.push(id);
            logits = s.eval(&[id], LogitsMode::Last).unwrap();
        }
        ids
    };
    let alone = run(model.clone(), prompt.clone());
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let m = model.clone();
            let p = prompt.clone();
            std::thread::spawn(move || run(m, p))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), alone);
    }
}

/// The fusion pass changes the graph, not the numbers: fused and unfused
/// graphs give bit-identical logits on the CPU backend, prefill and decode.
#[test]
fn fused_graph_equals_unfused_graph() {
    let load = |no_fusion: bool| {
        let opts = wisp::LoadOptions {
            backend: BackendChoice::Cpu,
            threads: 2,
            no_fusion,
            ..Default::default()
        };
        wisp::load_model(&common::model_path(), &opts).unwrap()
    };
    let (fused, plain) = (load(false), load(true));
    let shape = GraphShape {
        n_tokens: 7,
        n_ctx: 64,
        kv_dtype: DType::F16,
        logits: LogitsMode::All,
    };
    let (cf, cp) = (
        fused.compiled(&shape).unwrap(),
        plain.compiled(&shape).unwrap(),
    );
    // Per layer: two rms_norm·mul pairs and one gate/up/swiglu triple fused, plus the output norm.
    let layers = fused.config().n_layer;
    assert_eq!(
        cp.graph.nodes.len() - cf.graph.nodes.len(),
        layers * (2 + 2) + 1
    );
    let prompt = fused
        .encode_prompt("Fusion must not change a single bit.", false)
        .unwrap();
    let mut sf = fused.session(Default::default()).unwrap();
    let mut sp = plain.session(Default::default()).unwrap();
    assert_eq!(
        sf.eval(&prompt, LogitsMode::All).unwrap(),
        sp.eval(&prompt, LogitsMode::All).unwrap()
    );
    for id in [1u32, 504, 2988] {
        assert_eq!(
            sf.eval(&[id], LogitsMode::Last).unwrap(),
            sp.eval(&[id], LogitsMode::Last).unwrap()
        );
    }
}
