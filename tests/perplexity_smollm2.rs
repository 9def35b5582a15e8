//! Perplexity of the dev text at -c 512 against llama.cpp's figure
//! (`smollm2_ppl.json`): within 1%, and the same number of scored tokens.

mod common;

use wisp::ops::DType;
use wisp::BackendChoice;

#[test]
fn dev_text_perplexity_within_one_percent_of_llama_cpp() {
    let model = common::load(BackendChoice::Cpu, 2);
    let doc = common::fixture("smollm2_ppl.json");
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ppl_text_dev.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let tokens = model.tokenizer().encode(&text, false).unwrap();
    assert_eq!(tokens.len() as u64, doc["n_tokens"].as_u64().unwrap());
    let r = wisp::engine::perplexity::perplexity(
        &model,
        &tokens,
        512,
        None,
        DType::F16,
        &mut |_, _, _| {},
    )
    .unwrap();
    let want = doc["ppl"].as_f64().unwrap();
    assert_eq!(r.windows as u64, doc["n_chunks"].as_u64().unwrap());
    assert_eq!(r.tokens, r.windows * 255);
    let rel = (r.ppl - want).abs() / want;
    eprintln!(
        "wisp {:.4} ± {:.4}, llama.cpp {want} ({:.3}% apart)",
        r.ppl,
        r.ppl_stderr,
        rel * 100.0
    );
    assert!(rel < 0.01, "ppl {} vs llama.cpp {want}", r.ppl);
    // The running estimate after the first window matches llama.cpp's too.
    let first = doc["running_ppl_per_chunk"][0].as_f64().unwrap();
    assert!(
        (r.running[0] - first).abs() / first < 0.02,
        "{} vs {first}",
        r.running[0]
    );
}
