//! Exact math: the whole graph on the scalar reference kernels (f32
//! activations, f32 KV cache) against a float64 forward pass on the exactly
//! dequantized weights (`smollm2_exact_ref.json`). Pins the graph, planner and
//! reference kernels to the math.

mod common;

use wisp::ops::DType;
use wisp::{BackendChoice, LogitsMode, SessionOptions};

#[test]
fn reference_backend_matches_float64_forward_pass() {
    let model = common::load(BackendChoice::Reference, 1);
    let doc = common::fixture("smollm2_exact_ref.json");
    let n_vocab = model.config().n_vocab;
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let prompt = common::ids(&case["prompt_ids"]);
        let text = case["prompt"].as_str().unwrap();
        let parse_special = case["parse_special"].as_bool().unwrap();
        assert_eq!(
            model.encode_prompt(text, parse_special).unwrap(),
            prompt,
            "{name}: prompt ids"
        );
        let generated = common::ids(&case["generated_ids"]);
        let margins = common::floats(&case["top1_top2_margins"]);
        // Teacher forcing: one pass over prompt + generated[..-1] gives every step's logits.
        let mut seq = prompt.clone();
        seq.extend_from_slice(&generated[..generated.len() - 1]);
        let mut s = model
            .session(SessionOptions {
                n_ctx: seq.len(),
                kv_dtype: DType::F32,
                n_batch: 512,
            })
            .unwrap();
        let logits = s.eval(&seq, LogitsMode::All).unwrap();
        let row = |pos: usize| &logits[pos * n_vocab..(pos + 1) * n_vocab];

        let last = row(prompt.len() - 1);
        let mut worst = 0f32;
        for (id, want) in common::pairs(&case["top20"]) {
            let d = (last[id as usize] - want).abs();
            worst = worst.max(d);
            assert!(
                d <= 0.01,
                "{name}: logit of {id} is {} vs {want}",
                last[id as usize]
            );
        }
        for (step, (&want, &margin)) in generated.iter().zip(&margins).enumerate() {
            let got = wisp::engine::sampling::argmax(row(prompt.len() - 1 + step));
            if margin >= 0.05 {
                assert_eq!(got, want, "{name}: step {step} (margin {margin})");
            }
        }
        eprintln!("{name}: max |Δlogit| over top-20 = {worst:.5}");
    }
}
