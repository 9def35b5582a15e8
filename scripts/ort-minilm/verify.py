"""verify.py FIXTURE MODEL [MODEL...]: cosine of each model's mean-pooled embeddings
against the reference embeddings in FIXTURE (tests/fixtures/minilm_embeddings.json),
and the ops left after ORT's optimizer."""
import sys, json, collections
import numpy as np, onnx, onnxruntime as ort

ref = json.load(open(sys.argv[1]))
for path in sys.argv[2:]:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opt_path = path.replace(".onnx", ".opt.onnx")
    so.optimized_model_filepath = opt_path
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    cos = []
    for r in ref:
        ids = np.array([r["input_ids"]], np.int64)
        mask = np.ones_like(ids); tt = np.zeros_like(ids)
        h = s.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt})[0]
        e = (h * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        e = e[0] / np.linalg.norm(e[0])
        rr = np.array(r["embedding"], np.float64); rr /= np.linalg.norm(rr)
        cos.append(float(e @ rr))
    cos = np.array(cos)
    ops = collections.Counter(f"{n.domain + '.' if n.domain else ''}{n.op_type}" for n in onnx.load(opt_path).graph.node)
    print(f"{path}: cos mean {cos.mean():.6f} min {cos.min():.6f}")
    print("  optimized ops:", dict(sorted(ops.items(), key=lambda x: -x[1])))
