//! SmolLM2-135M on `--backend qnn` (the emulator, fp16): generation runs
//! through two static-shape bucket graphs (prefill chunks of 8 tokens and
//! the 1-token decode graph) with the KV cache as a graph input and a
//! host-computed attention mask; top-1 agreement with the CPU backend over
//! the greedy prompts (teacher-forced with llama.cpp's continuations), and
//! the placement report.

mod common;

use wisp::engine::model::GraphShape;
use wisp::ops::DType;
use wisp::{BackendChoice, LoadOptions, LogitsMode, QnnSettings, SessionOptions};

const STEPS: usize = 8;
const CHUNK: usize = 8;
const CTX: usize = 128;

#[test]
fn smollm2_generates_through_bucket_graphs_and_agrees_with_the_cpu() {
    let dir = std::env::temp_dir().join(format!("wisp-qnn-smollm2-{}", std::process::id()));
    let qnn = wisp::load_model(
        &common::model_path(),
        &LoadOptions {
            backend: BackendChoice::Qnn,
            threads: 2,
            qnn: QnnSettings {
                library: Some(wisp_qnn_emulator::locate_cdylib().expect("emulator cdylib")),
                cache_dir: Some(dir.clone()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap();
    let cpu = common::load(BackendChoice::Cpu, 2);

    let decode = qnn
        .compiled(&GraphShape {
            n_tokens: 1,
            n_ctx: CTX,
            kv_dtype: DType::F16,
            logits: LogitsMode::Last,
        })
        .unwrap();
    let r = &decode.report;
    eprintln!(
        "decode placement: {} nodes in {} partitions, fallback {:.1}% of nodes / {:.2}% of FLOPs, {} boundary copies ({} bytes)",
        r.total_nodes,
        r.partitions.len(),
        100.0 * r.fallback_rate_nodes(),
        100.0 * r.fallback_rate_flops(),
        r.boundary_copies,
        r.boundary_bytes
    );
    // Only the KV-cache writes stay on the host.
    assert!(r
        .nodes
        .iter()
        .all(|n| n.backend == "qnn" || n.op == "kv_store"));
    assert!(r.fallback_rate_flops() < 0.001);

    let doc = common::fixture("smollm2_greedy.json");
    let (mut agree, mut total, mut agree_llama) = (0usize, 0usize, 0usize);
    let nv = cpu.config().n_vocab;
    for case in doc["cases"].as_array().unwrap() {
        let prompt = common::ids(&case["prompt_ids"]);
        let gen = common::ids(&case["generated_ids"]);
        let gen = &gen[..STEPS.min(gen.len())];
        let mut all = prompt.clone();
        all.extend_from_slice(gen);
        // CPU: one teacher-forced pass, every position's logits.
        let mut cs = cpu
            .session(SessionOptions {
                n_ctx: CTX,
                ..Default::default()
            })
            .unwrap();
        let cl = cs.eval(&all[..all.len() - 1], LogitsMode::All).unwrap();
        // NPU: the prompt through the buckets, then one token at a time.
        let mut qs = qnn
            .session(SessionOptions {
                n_ctx: CTX,
                ..Default::default()
            })
            .unwrap();
        wisp::prefill_buckets(&mut qs, &prompt[..prompt.len() - 1], CHUNK).unwrap();
        let mut next = prompt[prompt.len() - 1];
        for (step, &want) in gen.iter().enumerate() {
            let ql = qs.eval(&[next], LogitsMode::Last).unwrap();
            let row = prompt.len() - 1 + step;
            let c = wisp::engine::sampling::argmax(&cl[row * nv..(row + 1) * nv]);
            let q = wisp::engine::sampling::argmax(&ql);
            agree += (c == q) as usize;
            agree_llama += (q == want) as usize;
            total += 1;
            next = want;
        }
    }
    let top1 = agree as f64 / total as f64;
    eprintln!(
        "SmolLM2 on the QNN emulator (fp16): top-1 agreement with the CPU {agree}/{total} ({:.1}%), with llama.cpp's greedy tokens {agree_llama}/{total}",
        100.0 * top1
    );
    // Only two decoder shapes were built: one cached context per NPU partition
    // of the decode bucket and of the prefill bucket.
    let qnn_parts = r.partitions.iter().filter(|(b, _)| b == "qnn").count();
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "qnnctx"))
        })
        .count();
    assert_eq!(
        files,
        2 * qnn_parts,
        "contexts for exactly two shape buckets"
    );
    assert!(top1 >= 0.9, "top-1 agreement {top1}");
    let _ = std::fs::remove_dir_all(&dir);
}
