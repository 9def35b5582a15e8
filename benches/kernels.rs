//! Kernel benchmarks at SmolLM2-135M's real shapes, per ISA this machine has.
//!
//! `cargo bench --bench kernels` (filter with a substring, e.g. `-- gemv`).
//! GEMV throughput is weight bytes per second (decode is memory-bound);
//! GEMM and attention throughput are multiply-accumulates per second
//! (criterion prints them as "elem/s"). `benches/README.md` puts the figures
//! beside this machine's memory bandwidth and int8 peak.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wisp::ops::quant::quantize_row;
use wisp::ops::reference::AttentionShape;
use wisp::ops::{DType, TensorType, TensorView};
use wisp_backend_cpu::kernels::{BlockQ8, Isa};
use wisp_backend_cpu::{attention, matmul};

fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

fn weights(dt: DType, m: usize, k: usize) -> Vec<u8> {
    let f = rand_vec(m * k, 7);
    let rb = dt.bytes_for(k).unwrap();
    let mut w = vec![0u8; m * rb];
    for r in 0..m {
        quantize_row(dt, &f[r * k..(r + 1) * k], &mut w[r * rb..(r + 1) * rb]);
    }
    w
}

/// (name, weight dtype, M rows, K inputs): every matmul of SmolLM2 (Q4_1,
/// tied Q8_0 output) and the formats of Gemma 3 270M Q4_K_M (Q5_0 q/k/v,
/// gate, up; Q4_K and Q6_K down/output projections) and MiniLM q8_0.
const SHAPES: &[(&str, DType, usize, usize)] = &[
    ("attn_q_576x576", DType::Q4_1, 576, 576),
    ("ffn_gate_576x1536", DType::Q4_1, 1536, 576),
    ("ffn_down_1536x576", DType::Q4_1, 576, 1536),
    ("gemma_gate_q5_0_640x2048", DType::Q5_0, 2048, 640),
    ("gemma_down_q4_k_2048x640", DType::Q4_K, 640, 2048),
    ("gemma_down_q6_k_2048x640", DType::Q6_K, 640, 2048),
    ("minilm_up_q8_0_384x1536", DType::Q8_0, 1536, 384),
    ("output_576x49152", DType::Q8_0, 49152, 576),
];

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn gemv(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemv");
    g.measurement_time(Duration::from_secs(2)).sample_size(20);
    let p1 = pool(1);
    for &(name, dt, m, k) in SHAPES {
        let w = weights(dt, m, k);
        let x = rand_vec(k, 3);
        let (xt, wt) = (
            TensorType::new(DType::F32, &[1, k]),
            TensorType::new(dt, &[m, k]),
        );
        g.throughput(Throughput::Bytes(w.len() as u64));
        for isa in Isa::supported() {
            let kern = isa.kernels();
            let mut out = vec![0f32; m];
            g.bench_with_input(BenchmarkId::new(name, isa.name()), &(), |b, _| {
                // Inside the pool, as the engine runs ops (one hand-off per token, not per op).
                p1.install(|| {
                    b.iter(|| {
                        let xv = TensorView {
                            ty: &xt,
                            data: bytemuck::cast_slice(&x),
                        };
                        let wv = TensorView { ty: &wt, data: &w };
                        matmul::matmul(kern, xv, wv, &mut out);
                        black_box(&out);
                    })
                })
            });
        }
    }
    g.finish();
}

fn gemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm_64tok");
    g.measurement_time(Duration::from_secs(2)).sample_size(10);
    let p1 = pool(1);
    let n = 64;
    for &(name, dt, m, k) in &SHAPES[..SHAPES.len() - 1] {
        let w = weights(dt, m, k);
        let x = rand_vec(n * k, 5);
        let (xt, wt) = (
            TensorType::new(DType::F32, &[n, k]),
            TensorType::new(dt, &[m, k]),
        );
        g.throughput(Throughput::Elements((n * m * k) as u64));
        for isa in Isa::supported() {
            let kern = isa.kernels();
            let mut out = vec![0f32; n * m];
            g.bench_with_input(BenchmarkId::new(name, isa.name()), &(), |b, _| {
                // Inside the pool, as the engine runs ops (one hand-off per token, not per op).
                p1.install(|| {
                    b.iter(|| {
                        let xv = TensorView {
                            ty: &xt,
                            data: bytemuck::cast_slice(&x),
                        };
                        let wv = TensorView { ty: &wt, data: &w };
                        matmul::matmul(kern, xv, wv, &mut out);
                        black_box(&out);
                    })
                })
            });
        }
    }
    g.finish();
}

fn quantize(c: &mut Criterion) {
    let mut g = c.benchmark_group("quantize_q8");
    g.measurement_time(Duration::from_secs(1)).sample_size(20);
    let x = rand_vec(64 * 576, 9);
    g.throughput(Throughput::Bytes((x.len() * 4) as u64));
    for isa in Isa::supported() {
        let mut q = vec![BlockQ8::default(); x.len() / 32];
        g.bench_function(isa.name(), |b| {
            b.iter(|| (isa.kernels().quantize_q8)(black_box(&x), &mut q))
        });
    }
    g.finish();
}

fn attn(c: &mut Criterion) {
    let mut g = c.benchmark_group("attention_decode");
    g.measurement_time(Duration::from_secs(2)).sample_size(20);
    let p1 = pool(1);
    let shape = AttentionShape {
        n_head: 9,
        n_kv_head: 3,
        head_dim: 64,
        scale: 0.125,
        window: None,
    };
    for ctx in [128usize, 1024] {
        let kv = shape.n_kv_head * shape.head_dim;
        let kf = rand_vec(ctx * kv, 11);
        let mut kb = vec![0u8; ctx * kv * 2];
        quantize_row(DType::F16, &kf, &mut kb);
        let ct = TensorType::new(DType::F16, &[ctx, kv]);
        let q = rand_vec(shape.n_head * shape.head_dim, 13);
        g.throughput(Throughput::Elements(
            (2 * ctx * shape.n_head * shape.head_dim) as u64,
        ));
        for isa in Isa::supported() {
            let mut out = vec![0f32; q.len()];
            g.bench_with_input(
                BenchmarkId::new(format!("ctx{ctx}"), isa.name()),
                &(),
                |b, _| {
                    p1.install(|| {
                        b.iter(|| {
                            let kv_ = TensorView { ty: &ct, data: &kb };
                            attention::attention(
                                isa.kernels(),
                                &shape,
                                &q,
                                kv_,
                                kv_,
                                &[(ctx - 1) as i32],
                                &mut out,
                            )
                            .unwrap();
                            black_box(&out);
                        })
                    })
                },
            );
        }
    }
    g.finish();
}

/// Streaming read bandwidth of this machine: a dot product over 2 × 128 MiB.
fn membw(c: &mut Criterion) {
    let mut g = c.benchmark_group("memory");
    g.measurement_time(Duration::from_secs(3)).sample_size(10);
    let n = 32 << 20;
    let (a, b) = (rand_vec(n, 1), rand_vec(n, 2));
    g.throughput(Throughput::Bytes((2 * n * 4) as u64));
    let isa = Isa::best();
    g.bench_function(format!("read_256MiB_{}", isa.name()), |bch| {
        bch.iter(|| black_box((isa.kernels().dot_f32)(&a, &b)))
    });
    g.finish();
}

criterion_group!(benches, gemv, gemm, quantize, attn, membw);
criterion_main!(benches);
