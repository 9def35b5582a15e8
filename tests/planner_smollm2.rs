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
