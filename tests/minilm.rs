//! all-MiniLM-L6-v2 from its safetensors folder against an independent
//! float32 reference (`minilm_embeddings.json`): WordPiece ids exactly,
//! embeddings with cosine ≥ 0.99999, one sentence at a time and as one padded batch.

mod common;

use std::sync::Arc;

use wisp::{BackendChoice, EncoderModel, LoadOptions};

pub fn encoder(backend: BackendChoice) -> Arc<EncoderModel> {
    let p = wisp::default_encoder_path();
    assert!(
        p.exists(),
        "{} is missing: run {} first",
        p.display(),
        wisp::FETCH_COMMAND
    );
    wisp::load_encoder(
        &p,
        &LoadOptions {
            backend,
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap()
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * y).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn ids_and_f32_embeddings_match_the_reference() {
    let model = encoder(BackendChoice::Cpu);
    let cases = common::fixture("minilm_embeddings.json");
    let cases = cases.as_array().unwrap();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let batched = model.embed(&texts).unwrap();
    let mut worst = 1f64;
    for (i, c) in cases.iter().enumerate() {
        let want_ids = common::ids(&c["input_ids"]);
        let ids = model.tokenizer().encode_with_specials(texts[i]).unwrap();
        assert_eq!(ids, want_ids, "{:?}", texts[i]);
        let want = common::floats(&c["embedding"]);
        let single = model.embed(&[texts[i]]).unwrap().remove(0);
        for (label, got) in [("single", &single), ("batched", &batched[i])] {
            let cos = cosine(got, &want);
            worst = worst.min(cos);
            assert!(cos >= 0.99999, "{label} {:?}: cosine {cos}", texts[i]);
        }
    }
    eprintln!("min cosine vs f32 reference: {worst:.8}");
}
