//! Shared helpers of the model tests: fixtures and the default model.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use wisp::{BackendChoice, LoadOptions, Model};

/// A fixture of `tests/fixtures`, parsed.
pub fn fixture(name: &str) -> serde_json::Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The default model's path; fails with the fetch command when it is missing.
pub fn model_path() -> PathBuf {
    let p = wisp::default_model_path();
    assert!(
        p.exists(),
        "{} is missing: run {} first",
        p.display(),
        wisp::FETCH_COMMAND
    );
    p
}

/// Loads the default model on `backend`.
pub fn load(backend: BackendChoice, threads: usize) -> Arc<Model> {
    let opts = LoadOptions {
        backend,
        threads,
        ..Default::default()
    };
    wisp::load_model(&model_path(), &opts).expect("load model")
}

/// A JSON array of integers as u32s.
pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

/// `[[id, logit], ...]` pairs.
pub fn pairs(v: &serde_json::Value) -> Vec<(u32, f32)> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_f64().unwrap() as f32))
        .collect()
}

/// Floats of a JSON array.
pub fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("float"))
        .collect()
}
