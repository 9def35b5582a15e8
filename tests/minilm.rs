//! all-MiniLM-L6-v2 from its safetensors folder against an independent
//! float32 reference (`minilm_embeddings.json`): WordPiece ids exactly,
//! embeddings with cosine ≥ 0.99999, one sentence at a time, as one padded batch
//! and in length-sorted batches (`embed_many`).

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
    // Sorted by length into batches of 3 (`wisp embed`'s path): in input order,
    // each text's vector equal to its own one-text run (padding is masked out).
    let many = model.embed_many(&texts, 3).unwrap();
    assert_eq!(many.len(), texts.len());
    let mut worst = 1f64;
    for (i, c) in cases.iter().enumerate() {
        let want_ids = common::ids(&c["input_ids"]);
        let ids = model.tokenizer().encode_with_specials(texts[i]).unwrap();
        assert_eq!(ids, want_ids, "{:?}", texts[i]);
        let want = common::floats(&c["embedding"]);
        let single = model.embed(&[texts[i]]).unwrap().remove(0);
        let diff = single
            .iter()
            .zip(&many[i])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            diff <= 1e-6,
            "embed_many [{i}] differs from a one-text run by {diff}"
        );
        for (label, got) in [("single", &single), ("batched", &batched[i])] {
            let cos = cosine(got, &want);
            worst = worst.min(cos);
            assert!(cos >= 0.99999, "{label} {:?}: cosine {cos}", texts[i]);
        }
    }
    eprintln!("min cosine vs f32 reference: {worst:.8}");
}

/// A hand-made batch with a token id past the vocabulary is a typed error
/// naming it (the CPU backend's parallel lookup checks every id), not a panic
/// or a read out of the table; the model keeps working afterwards.
#[test]
fn out_of_vocabulary_ids_are_an_error() {
    let model = encoder(BackendChoice::Cpu);
    let mut batch = model
        .tokenize(&["a short sentence", "another one"])
        .unwrap();
    let vocab = model.config().n_vocab as u32;
    let last = batch.ids.len() - 1;
    batch.ids[last] = vocab + 7;
    let err = model.embed_batch(&batch).unwrap_err().to_string();
    assert!(err.contains(&(vocab + 7).to_string()), "{err}");
    assert_eq!(model.embed(&["still fine"]).unwrap().len(), 1);
}

fn golden() -> (Vec<String>, Vec<Vec<f64>>) {
    let cases = common::fixture("minilm_embeddings.json");
    let cases = cases.as_array().unwrap();
    (
        cases
            .iter()
            .map(|c| c["text"].as_str().unwrap().to_string())
            .collect(),
        cases
            .iter()
            .map(|c| common::floats(&c["embedding"]))
            .collect(),
    )
}

/// Q8_0 via `wisp quantize`'s conversion: accuracy bars against the f32
/// reference, the file round trip (quantize → GGUF → load → embed) equal to
/// quantizing in memory, and agreement with llama.cpp's embeddings of its own
/// q8_0 conversion. Q4_0 figures are reported, not held to a bar.
#[test]
fn quantized_encoders_accuracy_and_round_trip() {
    let base = encoder(BackendChoice::Cpu);
    let (texts, want) = golden();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let stats = |got: &[Vec<f32>]| {
        let c: Vec<f64> = got.iter().zip(&want).map(|(g, w)| cosine(g, w)).collect();
        (
            c.iter().sum::<f64>() / c.len() as f64,
            c.iter().cloned().fold(1.0, f64::min),
        )
    };
    let q8 = base
        .quantized(wisp::ops::DType::Q8_0, &mut |_, _| {})
        .unwrap();
    let in_memory = q8.embed(&refs).unwrap();
    let (mean, min) = stats(&in_memory);
    eprintln!("q8_0: cosine mean {mean:.5} min {min:.5}");
    assert!(mean >= 0.999 && min >= 0.995, "q8_0 mean {mean} min {min}");

    let dir = std::env::temp_dir().join(format!("wisp-q8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("minilm-q8_0.gguf");
    wisp::quantize::quantize_encoder(&base, wisp::ops::DType::Q8_0, &path, &mut |_, _| {}).unwrap();
    let from_file = wisp::load_encoder(
        &path,
        &LoadOptions {
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        from_file.embed(&refs).unwrap(),
        in_memory,
        "file round trip differs from in-memory quantization"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // llama.cpp's embeddings of its own q8_0 file (8-bit activations, as ours).
    let lc = common::fixture("minilm_q8_0_llamacpp_embeddings.json");
    let lc_cases = lc["cases"].as_array().or_else(|| lc.as_array()).unwrap();
    let mut worst = 1f64;
    for (c, got) in lc_cases.iter().zip(&in_memory) {
        let v = common::floats(&c["embedding"]);
        worst = worst.min(cosine(got, &v));
    }
    eprintln!("q8_0 vs llama.cpp's q8_0 embeddings: min cosine {worst:.6}");
    // Both sides carry their own 8-bit activation noise (each is ~0.9991 from f32).
    assert!(worst >= 0.999, "vs llama.cpp {worst}");

    let q4 = base
        .quantized(wisp::ops::DType::Q4_0, &mut |_, _| {})
        .unwrap();
    let (mean4, min4) = stats(&q4.embed(&refs).unwrap());
    eprintln!("q4_0: cosine mean {mean4:.5} min {min4:.5}");
    assert!(mean4 > 0.9, "q4_0 collapsed: {mean4}");
}

/// Static activations, simulated as an NPU computes them (uint8, uint16 where
/// the calibration finds outliers), with ranges
/// calibrated on `calib_sentences.txt` (disjoint from the evaluation
/// sentences): the accuracy bar is a mean cosine of at least 0.99 against the
/// f32 reference. Masks and ids are graph inputs and are never quantized.
#[test]
fn static_uint8_simulation_accuracy() {
    use wisp::engine::calibration::SimOptions;
    let base = encoder(BackendChoice::Cpu);
    let calib_text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/calib_sentences.txt"),
    )
    .unwrap();
    let calib_inputs: Vec<&str> = calib_text.lines().filter(|l| !l.is_empty()).collect();
    let calib = wisp::calibrate_encoder(&base, &calib_inputs, 99.99, 16).unwrap();
    assert!(
        calib.entries.len() > 50,
        "only {} activations recorded",
        calib.entries.len()
    );
    assert!(calib
        .entries
        .iter()
        .all(|e| !e.name.contains("mask") && !e.name.contains("tokens")));
    // The file format round-trips.
    let calib = std::sync::Arc::new(
        wisp::engine::calibration::Calibration::parse(&calib.to_text()).unwrap(),
    );

    let (texts, want) = golden();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let sim = |opts: SimOptions| {
        let m = wisp::load_encoder(
            &wisp::default_encoder_path(),
            &LoadOptions {
                threads: 2,
                ..Default::default()
            },
        )
        .unwrap();
        let m = std::sync::Arc::try_unwrap(m)
            .ok()
            .unwrap()
            .with_sim_static(calib.clone(), opts);
        let got = m.embed(&refs).unwrap();
        let c: Vec<f64> = got.iter().zip(&want).map(|(g, w)| cosine(g, w)).collect();
        (
            c.iter().sum::<f64>() / c.len() as f64,
            c.iter().cloned().fold(1.0, f64::min),
        )
    };
    // The default: uint8, and uint16 for the tensors the calibration marks
    // as outlier-dominated (ffn activations, residual sums, norms).
    let n16 = calib.entries.iter().filter(|e| e.bits == 16).count();
    let (mean, min) = sim(SimOptions::default());
    eprintln!(
        "static uint8, uint16 for the {n16} of {} tensors with outliers: cosine mean {mean:.5} min {min:.5}",
        calib.entries.len()
    );
    assert!(mean >= 0.99, "mixed uint8/uint16 mean {mean}");
    let (mean16, min16) = sim(SimOptions {
        bits: 16,
        ..Default::default()
    });
    eprintln!("static uint16 everywhere: cosine mean {mean16:.5} min {min16:.5}");
    assert!(mean16 >= 0.999, "uint16 mean {mean16}");
    // uint8 everywhere is reported, not held to a bar: outliers break it.
    let (mean8, min8) = sim(SimOptions {
        bits: 8,
        ..Default::default()
    });
    eprintln!("static uint8 everywhere (percentile-clipped): cosine mean {mean8:.5} min {min8:.5}");
    let _ = base;
}
