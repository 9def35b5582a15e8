//! Shared helpers of the backend's tests: the emulator, small graphs with
//! in-memory weights, and running a graph on a list of backends.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use wisp_backend_qnn::{Precision, QnnBackend, QnnOptions};
use wisp_engine::buffer::AlignedBuf;
use wisp_engine::calibration::{Calibration, RangeRecorder, SimOptions};
use wisp_engine::{
    Backend, CompiledGraph, Graph, PlacementOptions, ReferenceBackend, ValueId, WeightStore,
};

/// Tests share process-wide state (environment variables read by the
/// emulator, its fault counters), so they run one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The emulator library.
pub fn emulator() -> PathBuf {
    wisp_qnn_emulator::locate_cdylib().expect("emulator cdylib next to the test binary")
}

/// A fresh temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "wisp-qnn-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Weights held in memory.
#[derive(Default)]
pub struct Weights(pub Vec<Vec<u8>>);

impl WeightStore for Weights {
    fn data(&self, id: usize) -> &[u8] {
        &self.0[id]
    }
}

impl Weights {
    /// Adds an f32 weight to `g`.
    pub fn f32(&mut self, g: &mut Graph, name: &str, shape: &[usize], vals: &[f32]) -> ValueId {
        self.0.push(bytemuck::cast_slice(vals).to_vec());
        g.weight(
            name,
            wisp_ops::TensorType::new(wisp_ops::DType::F32, shape),
            self.0.len() - 1,
        )
    }
}

/// A QNN backend on the emulator.
pub fn qnn(precision: Precision, cache: Option<PathBuf>, fallback: bool) -> Arc<QnnBackend> {
    Arc::new(
        QnnBackend::new(QnnOptions {
            library: Some(emulator()),
            precision,
            cache_dir: cache,
            cpu_fallback: fallback,
            expose_all: false,
        })
        .unwrap(),
    )
}

/// Inputs of a run: value and its bytes.
pub type Feed = Vec<(ValueId, Vec<u8>)>;

/// An activation observer.
pub type Obs<'a> = &'a mut (dyn FnMut(&str, &[f32]) + Send);

/// Compiles `g` on `backends` and runs it once; returns the outputs as f32.
pub fn run_with(
    g: &Graph,
    backends: &[Arc<dyn Backend>],
    opts: &PlacementOptions,
    w: &Weights,
    feed: &Feed,
    observer: Option<Obs>,
) -> Result<(Vec<Vec<f32>>, wisp_engine::PlacementReport), wisp_engine::EngineError> {
    let cg = CompiledGraph::compile(g.clone(), backends, opts)?;
    let mut arena = AlignedBuf::zeroed(cg.arena_bytes());
    for (v, bytes) in feed {
        let r = cg.value_range(*v)?;
        arena.bytes_mut()[r].copy_from_slice(bytes);
    }
    let mut states: Vec<AlignedBuf> = g
        .states
        .iter()
        .map(|&s| AlignedBuf::zeroed(g.value(s).ty.bytes().unwrap()))
        .collect();
    match observer {
        Some(o) => cg.run_observed(w, &mut arena, &mut states, o)?,
        None => cg.run(w, &mut arena, &mut states)?,
    }
    let outs = g
        .outputs
        .iter()
        .map(|&o| {
            let r = cg.value_range(o).unwrap();
            bytemuck::cast_slice::<u8, f32>(&arena.bytes()[r]).to_vec()
        })
        .collect();
    Ok((outs, cg.report.clone()))
}

/// Runs on the reference backend alone.
pub fn run_reference(g: &Graph, w: &Weights, feed: &Feed) -> Vec<Vec<f32>> {
    let backends: Vec<Arc<dyn Backend>> = vec![Arc::new(ReferenceBackend)];
    run_with(g, &backends, &PlacementOptions::default(), w, feed, None)
        .unwrap()
        .0
}

/// Runs with the QNN backend first and the reference backend as fallback.
pub fn run_qnn(
    g: &Graph,
    qnn: &Arc<QnnBackend>,
    opts: &PlacementOptions,
    w: &Weights,
    feed: &Feed,
) -> Result<(Vec<Vec<f32>>, wisp_engine::PlacementReport), wisp_engine::EngineError> {
    let backends: Vec<Arc<dyn Backend>> = vec![qnn.clone(), Arc::new(ReferenceBackend)];
    run_with(g, &backends, opts, w, feed, None)
}

/// Every activation's min/max over the reference run (percentile 100).
pub fn calibrate(g: &Graph, w: &Weights, feed: &Feed) -> Arc<Calibration> {
    let backends: Vec<Arc<dyn Backend>> = vec![Arc::new(ReferenceBackend)];
    let mut rec = RangeRecorder::new();
    for pass in 0..2 {
        if pass == 1 {
            rec.start_second_pass();
        }
        let mut obs = |n: &str, d: &[f32]| rec.observe(n, d);
        run_with(
            g,
            &backends,
            &PlacementOptions::default(),
            w,
            feed,
            Some(&mut obs),
        )
        .unwrap();
    }
    let mut c = rec.finish(1, 100.0);
    // Graph inputs are never recorded; give f32 ones their range (tests feed activations).
    for (v, b) in feed {
        let val = g.value(*v);
        if val.ty.dtype == wisp_ops::DType::F32 {
            let d: &[f32] = bytemuck::cast_slice(b);
            let lo = d.iter().cloned().fold(f32::INFINITY, f32::min);
            let hi = d.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            c.entries.push(wisp_engine::calibration::CalibEntry {
                name: val.name.clone(),
                min: lo,
                max: hi,
                lo,
                hi,
                bits: 8,
            });
        }
    }
    Arc::new(c)
}

/// Quantized precision with fixed bits for every tensor, no clipping.
pub fn quantized(calib: Arc<Calibration>, bits: u32) -> Precision {
    Precision::Quantized {
        calib,
        sim: SimOptions {
            bits,
            wide: vec![],
            clip: false,
        },
    }
}

/// f32 values as bytes.
pub fn bytes(v: &[f32]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

/// i32 values as bytes.
pub fn ibytes(v: &[i32]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

/// Deterministic pseudo-random values in [-1, 1).
pub fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The lines of the emulator trace file that record `call`.
pub fn trace_calls(path: &std::path::Path, call: &str) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let pat = format!("\"call\":\"{call}\"");
    text.lines().filter(|l| l.contains(&pat)).count()
}
