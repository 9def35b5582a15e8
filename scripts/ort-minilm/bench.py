"""ORT latency benchmark for a MiniLM ONNX model, batch 1.
usage: bench.py --model PATH --threads N --seq S [--runs 100] [--warmup 10] [--fixture JSON]
Times session.run alone (no tokenizer, no pooling), one call at a time, as
`wisp bench` times an embedding call of the same length.
"""
import argparse, json, os, time
import numpy as np
import onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--threads", type=int, required=True)
ap.add_argument("--seq", type=int, required=True)
ap.add_argument("--runs", type=int, default=100)
ap.add_argument("--warmup", type=int, default=10)
ap.add_argument("--fixture", default=os.path.join(os.path.dirname(__file__), "../../tests/fixtures/minilm_embeddings.json"))
a = ap.parse_args()

so = ort.SessionOptions()
so.intra_op_num_threads = a.threads
so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])

# token ids of a real sentence (longest one in the reference fixture), tiled/truncated to S
try:
    base = max((r["input_ids"] for r in json.load(open(a.fixture))), key=len)
except OSError:  # fallback: "the quick brown fox jumps over the lazy dog" (bert-base-uncased vocab)
    base = [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 102]
ids = np.array([(base * (a.seq // len(base) + 1))[: a.seq]], dtype=np.int64)
feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
names = [i.name for i in sess.get_inputs()]
feed = {k: v for k, v in feed.items() if k in names}

for _ in range(a.warmup):
    sess.run(None, feed)
t = []
for _ in range(a.runs):
    t0 = time.perf_counter()
    sess.run(None, feed)
    t.append((time.perf_counter() - t0) * 1e3)
t = np.array(t)
print(f"ort {os.path.basename(a.model)} threads {a.threads} seq {a.seq} "
      f"p50 {np.percentile(t, 50):.2f} p95 {np.percentile(t, 95):.2f}")
