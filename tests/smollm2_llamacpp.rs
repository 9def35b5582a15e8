//! The fast CPU path (int8 activations, f16 KV cache) against llama.cpp's own
//! Q4_1 outputs, with the tolerances its two attention paths need
//! (`smollm2_greedy.json`, `smollm2_logits_top20.json`).

mod common;

use wisp::engine::sampling::{argmax, top_k};
use wisp::{
    generate, BackendChoice, GenerateOptions, LogitsMode, Sampler, SamplingParams, SessionOptions,
};

const MARGIN: f64 = 0.25;

#[test]
fn last_prompt_position_top20_logits() {
    let model = common::load(BackendChoice::Cpu, 2);
    let doc = common::fixture("smollm2_logits_top20.json");
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let prompt = common::ids(&case["prompt_ids"]);
        let mut s = model.session(SessionOptions::default()).unwrap();
        let logits = s.eval(&prompt, LogitsMode::Last).unwrap();
        let want = common::pairs(&case["top20"]);
        let ours: Vec<u32> = top_k(&logits, 20).iter().map(|p| p.0).collect();
        assert_eq!(ours[0], want[0].0, "{name}: top-1");
        let shared = want.iter().filter(|(id, _)| ours.contains(id)).count();
        assert!(
            shared >= 16,
            "{name}: only {shared} of llama.cpp's top-20 in ours"
        );
        let mut worst = 0f32;
        for (id, l) in &want {
            let d = (logits[*id as usize] - l).abs();
            worst = worst.max(d);
            assert!(
                d <= 0.6,
                "{name}: logit of {id}: {} vs llama.cpp {l}",
                logits[*id as usize]
            );
        }
        eprintln!("{name}: {shared}/20 shared, max |Δlogit| {worst:.3}");
    }
}

#[test]
fn greedy_teacher_forced_and_free() {
    let model = common::load(BackendChoice::Cpu, 2);
    let doc = common::fixture("smollm2_greedy.json");
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
        let want = common::ids(&case["generated_ids"]);
        let margins = common::floats(&case["top1_top2_margins"]);

        // Teacher-forced on llama.cpp's ids, one token at a time like llama.cpp.
        let mut s = model.session(SessionOptions::default()).unwrap();
        let mut logits = s.eval(&prompt, LogitsMode::Last).unwrap();
        for (step, &id) in want.iter().enumerate() {
            if margins[step] >= MARGIN {
                assert_eq!(
                    argmax(&logits),
                    id,
                    "{name}: teacher-forced step {step} (margin {})",
                    margins[step]
                );
            }
            if step + 1 < want.len() {
                logits = s.eval(&[id], LogitsMode::Last).unwrap();
            }
        }
        assert_eq!(logits.len(), n_vocab);

        // Free-running greedy: equal up to the first fragile step.
        let mut s = model.session(SessionOptions::default()).unwrap();
        let mut sampler = Sampler::new(SamplingParams::greedy());
        let opts = GenerateOptions {
            max_tokens: want.len(),
            ..Default::default()
        };
        let out = generate(&mut s, &prompt, &mut sampler, &opts, |_| true).unwrap();
        let fragile = margins
            .iter()
            .position(|&m| m < MARGIN)
            .unwrap_or(want.len());
        let upto = fragile.min(want.len());
        assert_eq!(
            &out.ids[..upto.min(out.ids.len())],
            &want[..upto],
            "{name}: free greedy before step {fragile}"
        );
        assert!(out.ids.len() >= upto, "{name}: stopped early");
    }
}
