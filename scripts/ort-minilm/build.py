"""Build an ONNX graph of all-MiniLM-L6-v2 (HF BertModel) by hand, mimicking a
torch.onnx export of transformers' eager BertModel (opset 17).

usage: build.py MODEL_DIR OUT.onnx [--mask-value finfo|-10000]

Part of scripts/ort-minilm-bench.sh (wisp's side-by-side with ONNX Runtime):
no torch needed. The graph has the op pattern of an export, so ORT's optimizer
fuses what it would fuse there (SkipLayerNormalization, BiasGelu, FusedMatMul;
its in-session Attention fusion does not match opset-17 exports either).
"""
import argparse, json, os
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
from safetensors.numpy import load_file

ap = argparse.ArgumentParser()
ap.add_argument("model_dir")
ap.add_argument("out")
ap.add_argument("--mask-value", default="finfo", help="finfo (HF>=4.21: torch.finfo(f32).min) or a number e.g. -10000")
args = ap.parse_args()

MD = os.path.expanduser(args.model_dir)
cfg = json.load(open(f"{MD}/config.json"))
W = load_file(f"{MD}/model.safetensors")
pre = "bert." if any(k.startswith("bert.") for k in W) else ""
H = cfg["hidden_size"]; NH = cfg["num_attention_heads"]; HD = H // NH
EPS = cfg["layer_norm_eps"]; L = cfg["num_hidden_layers"]
MASKV = float(np.finfo(np.float32).min) if args.mask_value == "finfo" else float(args.mask_value)

nodes, inits = [], []
_c = [0]
def uid(p):
    _c[0] += 1
    return f"{p}_{_c[0]}"
def init(name, arr):
    inits.append(numpy_helper.from_array(np.asarray(arr), name)); return name
def const(arr, p="const"):
    return init(uid(p), arr)
def node(op, ins, p=None, **attrs):
    out = uid(p or op)
    nodes.append(helper.make_node(op, ins, [out], name=out, **attrs)); return out
def w(k): return W[pre + k]

def linear(x, k):
    # nn.Linear -> MatMul(x, W^T) + Add(bias), as torch exports for 3-D input
    wt = init(k + ".weight_T", np.ascontiguousarray(w(k + ".weight").T))
    b = init(k + ".bias", w(k + ".bias"))
    return node("Add", [node("MatMul", [x, wt]), b])

def layernorm(x, k):
    g = init(k + ".weight", w(k + ".weight")); b = init(k + ".bias", w(k + ".bias"))
    return node("LayerNormalization", [x, g, b], axis=-1, epsilon=EPS)

i0 = const(np.array(0, np.int64), "idx0"); i1 = const(np.array(1, np.int64), "idx1")
ax0 = const(np.array([0], np.int64), "axes0")

def dims01(x):
    """Shape(x) -> Gather(0/1) -> Unsqueeze(0): as torch exports x.size()[:k] with dynamic axes."""
    outs = []
    for i in (i0, i1):
        s = node("Shape", [x])
        outs.append(node("Unsqueeze", [node("Gather", [s, i], axis=0), ax0]))
    return outs

def split_heads(x, kperm=False):
    b, s = dims01(x)
    shp = node("Concat", [b, s, const(np.array([NH], np.int64)), const(np.array([HD], np.int64))], axis=0)
    r = node("Reshape", [x, shp])
    # key: permute(0,2,1,3) followed by transpose(-1,-2) -> torch peephole merges into one Transpose(0,2,3,1)
    return node("Transpose", [r], perm=[0, 2, 3, 1] if kperm else [0, 2, 1, 3])

# ---- inputs
ins = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
       for n in ("input_ids", "attention_mask", "token_type_ids")]

# ---- embeddings (BertEmbeddings.forward)
we = init("embeddings.word_embeddings.weight", w("embeddings.word_embeddings.weight"))
te = init("embeddings.token_type_embeddings.weight", w("embeddings.token_type_embeddings.weight"))
pe = init("embeddings.position_embeddings.weight", w("embeddings.position_embeddings.weight"))
pid_buf = init("embeddings.position_ids", np.arange(cfg["max_position_embeddings"], dtype=np.int64)[None, :])
inputs_embeds = node("Gather", [we, "input_ids"], axis=0)
tt_emb = node("Gather", [te, "token_type_ids"], axis=0)
emb = node("Add", [inputs_embeds, tt_emb])
# position_ids = self.position_ids[:, 0:seq_length]
seq = node("Unsqueeze", [node("Gather", [node("Shape", ["input_ids"]), i1], axis=0), ax0])
pos_ids = node("Slice", [pid_buf, const(np.array([0], np.int64)), seq, const(np.array([1], np.int64)),
                         const(np.array([1], np.int64))])
emb = node("Add", [emb, node("Gather", [pe, pos_ids], axis=0)])
h = layernorm(emb, "embeddings.LayerNorm")

# ---- extended attention mask: (1.0 - mask[:, None, None, :].to(f32)) * large_negative
m = node("Unsqueeze", [node("Unsqueeze", ["attention_mask", const(np.array([1], np.int64))]),
                       const(np.array([2], np.int64))])
m = node("Cast", [m], to=TensorProto.FLOAT)
m = node("Sub", [const(np.array(1.0, np.float32), "one"), m])
ext_mask = node("Mul", [m, const(np.array(MASKV, np.float32), "maskval")])

sqrt_hd = np.float32(np.sqrt(HD))
for l in range(L):
    p = f"encoder.layer.{l}."
    q = split_heads(linear(h, p + "attention.self.query"))
    k = split_heads(linear(h, p + "attention.self.key"), kperm=True)
    v = split_heads(linear(h, p + "attention.self.value"))
    sc = node("Div", [node("MatMul", [q, k]), const(np.array(sqrt_hd, np.float32), "sqrt_hd")])
    sc = node("Add", [sc, ext_mask])
    pr = node("Softmax", [sc], axis=-1)
    ctx = node("Transpose", [node("MatMul", [pr, v])], perm=[0, 2, 1, 3])
    b, s = dims01(ctx)
    ctx = node("Reshape", [ctx, node("Concat", [b, s, const(np.array([H], np.int64))], axis=0)])
    a = linear(ctx, p + "attention.output.dense")
    h = layernorm(node("Add", [a, h]), p + "attention.output.LayerNorm")
    f = linear(h, p + "intermediate.dense")
    # torch's gelu symbolic: x * (erf(x / sqrt2) + 1) * 0.5
    e = node("Erf", [node("Div", [f, const(np.array(np.sqrt(2.0), np.float32), "sqrt2")])])
    e = node("Add", [e, const(np.array(1.0, np.float32), "one")])
    f = node("Mul", [node("Mul", [f, e]), const(np.array(0.5, np.float32), "half")])
    o = linear(f, p + "output.dense")
    h = layernorm(node("Add", [o, h]), p + "output.LayerNorm")

nodes[-1].output[0] = "last_hidden_state"
outs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", H])]
g = helper.make_graph(nodes, "bert", ins, outs, inits)
model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="hand-built")
model.ir_version = 8
onnx.checker.check_model(model)
# value_info with consistent symbolic dims (batch, sequence), as torch's exporter writes them;
# plain onnx.shape_inference gives unrelated unk__N dims past each Reshape, which blocks
# ORT's SkipLayerNormalization fusion on the attention residual and the embedding LN.
from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
model = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
onnx.save(model, args.out)
print("saved", args.out, len(nodes), "nodes")
