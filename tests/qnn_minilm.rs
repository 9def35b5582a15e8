//! all-MiniLM-L6-v2 on `--backend qnn` through the QNN emulator (the
//! `wisp-qnn-emulator` test double loaded exactly like `libQnnHtp.so`):
//! static uint8/uint16 activations from the calibration of
//! `calib_sentences.txt`, int8 per-channel weights, against the golden f32
//! embeddings; fp16; the placement report; the context cache.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use wisp::engine::calibration::Calibration;
use wisp::engine::model::bert::EncoderShape;
use wisp::{BackendChoice, EncoderModel, LoadOptions, QnnSettings};

fn emulator() -> PathBuf {
    wisp_qnn_emulator::locate_cdylib()
        .expect("the emulator cdylib is built next to the test binary")
}

fn encoder_path() -> PathBuf {
    let p = wisp::default_encoder_path();
    assert!(
        p.exists(),
        "{} is missing: run {} first",
        p.display(),
        wisp::FETCH_COMMAND
    );
    p
}

fn calibration() -> Arc<Calibration> {
    let base = wisp::load_encoder(
        &encoder_path(),
        &LoadOptions {
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/calib_sentences.txt"),
    )
    .unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let c = wisp::calibrate_encoder(&base, &lines, 99.99, 16).unwrap();
    // Through the file format, as `wisp calibrate` writes it.
    Arc::new(Calibration::parse(&c.to_text()).unwrap())
}

fn qnn_encoder(calibration: Option<Arc<Calibration>>, cache: Option<PathBuf>) -> Arc<EncoderModel> {
    let placement = wisp::PlacementOptions {
        no_fallback: true,
        ..Default::default()
    };
    wisp::load_encoder(
        &encoder_path(),
        &LoadOptions {
            backend: BackendChoice::Qnn,
            threads: 2,
            placement,
            qnn: QnnSettings {
                library: Some(emulator()),
                calibration,
                no_cache: cache.is_none(),
                cache_dir: cache,
                ..Default::default()
            },
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

/// Cosine mean and min against the golden f32 embeddings.
fn accuracy(model: &EncoderModel) -> (f64, f64) {
    let cases = common::fixture("minilm_embeddings.json");
    let cases = cases.as_array().unwrap();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let mut got = Vec::new();
    for chunk in texts.chunks(5) {
        got.extend(model.embed(chunk).unwrap());
    }
    let c: Vec<f64> = got
        .iter()
        .zip(cases)
        .map(|(g, c)| cosine(g, &common::floats(&c["embedding"])))
        .collect();
    (
        c.iter().sum::<f64>() / c.len() as f64,
        c.iter().cloned().fold(1.0, f64::min),
    )
}

#[test]
fn minilm_quantized_on_the_emulator_matches_the_f32_reference() {
    let calib = calibration();
    let model = qnn_encoder(Some(calib), None);
    // Placement: every node of the encoder on the NPU (no fallback at all).
    let cg = model.compiled(&EncoderShape { batch: 1, seq: 16 }).unwrap();
    let r = &cg.report;
    let off: Vec<_> = r.nodes.iter().filter(|n| n.backend != "qnn").collect();
    eprintln!(
        "placement: {} nodes, {} partitions, fallback {:.1}% of nodes / {:.1}% of FLOPs, {} boundary copies",
        r.total_nodes,
        r.partitions.len(),
        100.0 * r.fallback_rate_nodes(),
        100.0 * r.fallback_rate_flops(),
        r.boundary_copies
    );
    assert!(off.is_empty(), "nodes off the NPU: {off:?}");
    assert_eq!(r.partitions.len(), 1);
    let (mean, min) = accuracy(&model);
    eprintln!("MiniLM on the QNN emulator (uint8/uint16 from calibration, int8 weights): cosine mean {mean:.5} min {min:.5}");
    assert!(mean >= 0.99, "cosine mean {mean} (min {min})");
}

#[test]
fn minilm_fp16_on_the_emulator() {
    let model = qnn_encoder(None, None);
    let (mean, min) = accuracy(&model);
    eprintln!("MiniLM on the QNN emulator (fp16): cosine mean {mean:.6} min {min:.6}");
    assert!(
        mean >= 0.9999 && min >= 0.999,
        "fp16 cosine mean {mean} min {min}"
    );
}
