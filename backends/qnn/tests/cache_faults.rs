//! Context caching and fault handling on the emulator: a second run loads
//! the cached context without building (asserted on the emulator's call
//! trace), truncated or bit-flipped cache files are caught before the
//! library sees them and rebuilt, multi-partition graphs round-trip,
//! injected graphFinalize / graphExecute failures become typed errors or a
//! CPU fallback, and a missing library says "unavailable".

mod common;

use common::*;
use wisp_backend_qnn::{Precision, QnnBackend, QnnError, QnnOptions, Stats};
use wisp_engine::{Graph, PlacementOptions};
use wisp_ops::{DType, Op, TensorType};

/// x [4, 16] → matmul → +bias → gelu → layer_norm → matmul: a small MLP.
fn mlp() -> (Graph, Weights, Feed) {
    let mut g = Graph::new();
    let mut w = Weights::default();
    let x = g.input("x", TensorType::new(DType::F32, &[4, 16]));
    let w1 = w.f32(&mut g, "w1", &[8, 16], &noise(1, 128));
    let b1 = w.f32(&mut g, "b1", &[8], &noise(2, 8));
    let lw = w.f32(&mut g, "ln_w", &[8], &noise(3, 8));
    let lb = w.f32(&mut g, "ln_b", &[8], &noise(4, 8));
    let w2 = w.f32(&mut g, "w2", &[4, 8], &noise(5, 32));
    let h = g.op("h", Op::MatMul, &[x, w1]).unwrap();
    let h = g.op("h_b", Op::Add, &[h, b1]).unwrap();
    let h = g.op("h_act", Op::Gelu, &[h]).unwrap();
    let h = g
        .op("h_norm", Op::LayerNorm { eps: 1e-5 }, &[h, lw, lb])
        .unwrap();
    let y = g.op("y", Op::MatMul, &[h, w2]).unwrap();
    g.output(y);
    let feed = vec![(x, bytes(&noise(6, 64)))];
    (g, w, feed)
}

fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

#[test]
fn second_run_loads_the_cached_context_without_building() {
    let _s = serial();
    let dir = temp_dir("cache");
    let trace = dir.join("trace.jsonl");
    std::env::set_var("WISP_QNN_EMU_TRACE", &trace);
    let (g, w, feed) = mlp();
    let want = run_reference(&g, &w, &feed);

    let first = qnn(Precision::Fp16, Some(dir.clone()), false);
    let (out1, _) = run_qnn(&g, &first, &PlacementOptions::default(), &w, &feed).unwrap();
    assert_eq!(Stats::get(&first.stats().graphs_built), 1);
    assert_eq!(Stats::get(&first.stats().cache_writes), 1);
    assert!(
        close(&out1[0], &want[0], 0.02),
        "{:?} vs {:?}",
        out1[0],
        want[0]
    );
    assert_eq!(trace_calls(&trace, "graphFinalize"), 1);

    std::fs::remove_file(&trace).unwrap();
    let second = qnn(Precision::Fp16, Some(dir.clone()), false);
    let (out2, _) = run_qnn(&g, &second, &PlacementOptions::default(), &w, &feed).unwrap();
    std::env::remove_var("WISP_QNN_EMU_TRACE");
    assert_eq!(out2, out1, "the cached context computes the same");
    assert_eq!(Stats::get(&second.stats().cache_loads), 1);
    assert_eq!(Stats::get(&second.stats().graphs_built), 0);
    // The trace proves it: restored from the binary, nothing built or finalized.
    assert_eq!(trace_calls(&trace, "contextCreateFromBinary"), 1);
    assert_eq!(trace_calls(&trace, "graphRetrieve"), 1);
    for call in [
        "graphCreate",
        "graphAddNode",
        "tensorCreateGraphTensor",
        "graphFinalize",
    ] {
        assert_eq!(trace_calls(&trace, call), 0, "{call} on a cache hit");
    }
    assert_eq!(trace_calls(&trace, "graphExecute"), 1);

    // Other options (here: quantized activations) are another key: no false hit.
    let calib = calibrate(&g, &w, &feed);
    let third = qnn(quantized(calib, 16), Some(dir.clone()), false);
    run_qnn(&g, &third, &PlacementOptions::default(), &w, &feed).unwrap();
    assert_eq!(Stats::get(&third.stats().cache_loads), 0);
    assert_eq!(Stats::get(&third.stats().graphs_built), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

fn cache_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "qnnctx"))
        .collect();
    v.sort();
    v
}

#[test]
fn corrupt_cache_files_are_caught_before_the_library_and_rebuilt() {
    let _s = serial();
    let (g, w, feed) = mlp();
    let dir = temp_dir("corrupt");
    let trace = dir.join("trace.jsonl");
    let b = qnn(Precision::Fp16, Some(dir.clone()), false);
    let (good, _) = run_qnn(&g, &b, &PlacementOptions::default(), &w, &feed).unwrap();
    let files = cache_files(&dir);
    assert_eq!(files.len(), 1);
    let pristine = std::fs::read(&files[0]).unwrap();
    let corruptions: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", pristine[..pristine.len() / 2].to_vec()),
        (
            "truncated by one byte",
            pristine[..pristine.len() - 1].to_vec(),
        ),
        ("bit flip in the payload", {
            let mut c = pristine.clone();
            let i = c.len() - 100;
            c[i] ^= 0x04;
            c
        }),
        ("bit flip in the header", {
            let mut c = pristine.clone();
            c[30] ^= 0x01;
            c
        }),
        ("empty", Vec::new()),
    ];
    for (what, bad) in corruptions {
        std::fs::write(&files[0], &bad).unwrap();
        let _ = std::fs::remove_file(&trace);
        std::env::set_var("WISP_QNN_EMU_TRACE", &trace);
        let b = qnn(Precision::Fp16, Some(dir.clone()), false);
        let (out, _) = run_qnn(&g, &b, &PlacementOptions::default(), &w, &feed).unwrap();
        std::env::remove_var("WISP_QNN_EMU_TRACE");
        assert_eq!(out, good, "{what}: rebuilt graph differs");
        assert_eq!(Stats::get(&b.stats().cache_rejected), 1, "{what}");
        assert_eq!(Stats::get(&b.stats().graphs_built), 1, "{what}");
        let warnings = b.stats().warnings.lock().unwrap().clone();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("stale or corrupt") && w.contains("rebuilding")),
            "{what}: {warnings:?}"
        );
        // Verified before the vendor call: the library never saw the bad bytes.
        assert_eq!(trace_calls(&trace, "contextCreateFromBinary"), 0, "{what}");
        assert_eq!(
            std::fs::read(&files[0]).unwrap(),
            pristine,
            "{what}: not rewritten"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn multi_partition_graphs_round_trip_through_the_cache() {
    let _s = serial();
    let (g, w, feed) = mlp();
    let dir = temp_dir("multi");
    let opts = PlacementOptions {
        deny_ops: ["gelu".to_string()].into_iter().collect(),
        no_fallback: false,
    };
    let a = qnn(Precision::Fp16, Some(dir.clone()), false);
    let (out1, report) = run_qnn(&g, &a, &opts, &w, &feed).unwrap();
    let parts: Vec<&str> = report.partitions.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(parts, ["qnn", "reference", "qnn"]);
    assert_eq!(report.boundary_copies, 2);
    assert_eq!(Stats::get(&a.stats().graphs_built), 2);
    assert_eq!(cache_files(&dir).len(), 2);
    let b = qnn(Precision::Fp16, Some(dir.clone()), false);
    let (out2, _) = run_qnn(&g, &b, &opts, &w, &feed).unwrap();
    assert_eq!(out2, out1);
    assert_eq!(Stats::get(&b.stats().cache_loads), 2);
    assert_eq!(Stats::get(&b.stats().graphs_built), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn injected_finalize_and_execute_failures_are_typed_errors_or_fall_back() {
    let _s = serial();
    let (g, w, feed) = mlp();
    let want = run_reference(&g, &w, &feed);
    for (rule, entry, code) in [
        (
            "graphFinalize:1:1002",
            "graphFinalize",
            "1002 (QNN_COMMON_ERROR_MEM_ALLOC)",
        ),
        (
            "graphExecute:1:6033",
            "graphExecute",
            "6033 (QNN_GRAPH_ERROR_TIMED_OUT)",
        ),
    ] {
        // Without fallback: a typed error naming the call and the code.
        std::env::set_var("WISP_QNN_EMU_FAIL", rule);
        let b = qnn(Precision::Fp16, None, false);
        let err = run_qnn(&g, &b, &PlacementOptions::default(), &w, &feed).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(&err, wisp_engine::EngineError::Backend { backend, .. } if backend == "qnn"),
            "{err:?}"
        );
        assert!(
            msg.contains(&format!("{entry} failed with error {code}")),
            "{msg}"
        );
        // With fallback: the partition runs on the CPU reference kernels, with a warning.
        std::env::set_var("WISP_QNN_EMU_FAIL", format!("{rule},x:1:1"));
        let b = qnn(Precision::Fp16, None, true);
        let (out, _) = run_qnn(&g, &b, &PlacementOptions::default(), &w, &feed).unwrap();
        assert_eq!(out, want, "{entry}: fallback must be the reference result");
        assert_eq!(Stats::get(&b.stats().fallbacks), 1);
        assert!(!b.stats().warnings.lock().unwrap().is_empty());
        // The next run: after a finalize failure the partition stays on the CPU;
        // after an execute failure the graph is used again.
        let (out, _) = run_qnn(&g, &b, &PlacementOptions::default(), &w, &feed).unwrap();
        assert!(close(&out[0], &want[0], 0.02));
        std::env::remove_var("WISP_QNN_EMU_FAIL");
    }
}

#[test]
fn a_missing_library_is_unavailable() {
    let err = QnnBackend::new(QnnOptions {
        library: Some("/nonexistent/libQnnHtp.so".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, QnnError::Unavailable(_)));
    let msg = err.to_string();
    assert!(
        msg.starts_with("unavailable:") && msg.contains("WISP_QNN_LIB"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
    // Not a QNN library at all (a plain shared object without the provider symbol).
    let not_qnn = std::env::current_exe().unwrap();
    let err = QnnBackend::new(QnnOptions {
        library: Some(not_qnn),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().starts_with("unavailable:"), "{err}");
}
