#!/usr/bin/env bash
# ONNX Runtime's dynamic int8 all-MiniLM-L6-v2 timed side by side with wisp's
# q8_0, alternating rounds on the same machine (the host's load moves both).
#
#   ./scripts/ort-minilm-bench.sh [ROUNDS]      (after ./scripts/fetch-models.sh and cargo build --release)
#
# Builds an ONNX graph of the model from its safetensors with the op pattern of
# a torch export (scripts/ort-minilm/build.py; no torch), quantizes it with
# ORT's default `quantize_dynamic` recipe (per-tensor int8 weights, the recipe
# of ../shared/anchors.md), checks both against the reference embeddings, then
# times ORT (`bench.py`: int8 and f32) and `wisp bench` (q8_0 and the f32
# safetensors) at 16 and 128 tokens on 1 and 2 threads. Everything it installs goes to a venv under the model cache.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cache="${WISP_CACHE:-$HOME/.cache/wisp}"
model_dir="$cache/models/all-MiniLM-L6-v2"
work="$cache/ort-minilm"
rounds="${1:-3}"
wisp="$root/target/release/wisp"
[ -x "$wisp" ] || { echo "build wisp first: cargo build --release" >&2; exit 1; }
[ -f "$model_dir/model.safetensors" ] || { echo "fetch the models first: ./scripts/fetch-models.sh" >&2; exit 1; }
mkdir -p "$work"
if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q onnxruntime==1.32.0 onnx==1.23.2 numpy safetensors sympy
fi
py="$work/venv/bin/python"
if [ ! -f "$work/minilm_int8_dyn.onnx" ]; then
  "$py" "$here/ort-minilm/build.py" "$model_dir" "$work/minilm_f32.onnx"
  "$py" -c "from onnxruntime.quantization import quantize_dynamic, QuantType; \
quantize_dynamic('$work/minilm_f32.onnx', '$work/minilm_int8_dyn.onnx', weight_type=QuantType.QInt8)"
  "$py" "$here/ort-minilm/verify.py" "$root/tests/fixtures/minilm_embeddings.json" \
    "$work/minilm_f32.onnx" "$work/minilm_int8_dyn.onnx"
fi
q8="$work/minilm-q8_0.gguf"
[ -f "$q8" ] || "$wisp" quantize "$model_dir" "$q8" --type q8_0
for r in $(seq "$rounds"); do
  echo "round $r"
  for m in minilm_int8_dyn minilm_f32; do
    for t in 1 2; do
      for s in 16 128; do
        "$py" "$here/ort-minilm/bench.py" --model "$work/$m.onnx" --threads "$t" --seq "$s"
      done
    done
  done
  "$wisp" bench -m "$q8" -p 16,128 -t 1,2 -r 100 | grep embed
  "$wisp" bench -m "$model_dir" -p 16,128 -t 1,2 -r 100 | grep embed
done
