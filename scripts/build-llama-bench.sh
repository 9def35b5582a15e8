#!/usr/bin/env bash
# Builds llama.cpp's llama-bench at commit 0c1e570 (the peer the README's
# tables compare with) for side-by-side runs on this machine. The source comes
# from the llama-cpp-python 0.3.36 sdist on PyPI, which vendors exactly that
# commit; the build is CPU-only with the native ISA, as in ../shared/anchors.md.
# Not used by the tests or CI. Needs curl, python3 and a C++ compiler; cmake
# is installed with pip when missing.
#
#   ./scripts/build-llama-bench.sh [DIR]   (default: ~/.cache/wisp/peers)
#   then: DIR/llama.cpp/build/bin/llama-bench -m MODEL.gguf -p 512 -n 64 -t 1,2 -r 3
set -euo pipefail

dir="${1:-$HOME/.cache/wisp/peers}"
version="0.3.36"
sdist="llama_cpp_python-$version.tar.gz"
mkdir -p "$dir"
cd "$dir"

if [ ! -f "$sdist" ]; then
  url="$(curl -fsSL "https://pypi.org/pypi/llama-cpp-python/$version/json" | python3 -c '
import json, sys
for u in json.load(sys.stdin)["urls"]:
    if u["packagetype"] == "sdist":
        print(u["url"])
')"
  case "$url" in
    http*) ;;
    *) url="https://pypi.org/${url#../../}" ;; # mirrors answer with a relative path
  esac
  curl -fsSL -o "$sdist" "$url"
fi
if [ ! -d llama.cpp ]; then
  tar xzf "$sdist"
  mv "llama_cpp_python-$version/vendor/llama.cpp" llama.cpp
  rm -rf "llama_cpp_python-$version"
fi
command -v cmake >/dev/null 2>&1 || python3 -m pip install --quiet cmake
cd llama.cpp
cmake -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
cmake --build build -j"$(nproc)" --target llama-bench
echo "built: $dir/llama.cpp/build/bin/llama-bench"
