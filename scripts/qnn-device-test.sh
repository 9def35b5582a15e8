#!/usr/bin/env bash
# Runs wisp's QNN parity and model tests on a Snapdragon device (Android, adb).
#
# What a person with the hardware and the QNN SDK runs; CI runs the same tests
# against the emulator instead. Needs:
#   QNN_SDK_ROOT      the QNN SDK (2.13, the pinned API 2.7.2; see sys/qnn-sys)
#   ANDROID_NDK_HOME  an Android NDK (r25+), for the aarch64-linux-android linker
#   HTP_ARCH          the device's Hexagon version: v68, v69, v73, v75 (default v73)
#   adb               with one device attached (or ANDROID_SERIAL set)
# and `rustup target add aarch64-linux-android`.
#
# Usage: scripts/qnn-device-test.sh [--models]   (--models also pushes and runs MiniLM/SmolLM2)
set -euo pipefail

: "${QNN_SDK_ROOT:?set QNN_SDK_ROOT to the QNN SDK}"
: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to an Android NDK}"
HTP_ARCH="${HTP_ARCH:-v73}"
API="${ANDROID_API:-31}"
DEV=/data/local/tmp/wisp
TARGET=aarch64-linux-android
cd "$(dirname "$0")/.."

toolchain="$ANDROID_NDK_HOME/toolchains/llvm/prebuilt/$(uname -s | tr A-Z a-z)-x86_64/bin"
export CARGO_TARGET_AARCH64_LINUX_ANDROID_LINKER="$toolchain/${TARGET}${API}-clang"
export CC_aarch64_linux_android="$toolchain/${TARGET}${API}-clang"
export AR_aarch64_linux_android="$toolchain/llvm-ar"

# 1. Cross-build the test binaries (not run here).
tests=(-p wisp-backend-qnn --test parity)
[[ "${1:-}" == "--models" ]] && tests+=(-p wisp --test qnn_minilm --test qnn_smollm2)
cargo test --release --target "$TARGET" "${tests[@]}" --no-run --message-format=json \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])' > target/qnn-device-tests.txt

# 2. Push the tests and the vendor libraries (HTP backend, its stub and the DSP skel).
adb shell "mkdir -p $DEV"
while read -r exe; do adb push "$exe" "$DEV/"; done < target/qnn-device-tests.txt
adb push "$QNN_SDK_ROOT/lib/aarch64-android/libQnnHtp.so" "$DEV/"
adb push "$QNN_SDK_ROOT/lib/aarch64-android/libQnnHtpPrepare.so" "$DEV/"
adb push "$QNN_SDK_ROOT/lib/aarch64-android/libQnnHtp${HTP_ARCH^}Stub.so" "$DEV/"
adb push "$QNN_SDK_ROOT/lib/hexagon-${HTP_ARCH}/unsigned/libQnnHtp${HTP_ARCH^}Skel.so" "$DEV/"
if [[ "${1:-}" == "--models" ]]; then
  models="${WISP_MODELS:-$HOME/.cache/wisp/models}"
  adb shell "mkdir -p $DEV/models"
  adb push "$models/all-MiniLM-L6-v2" "$DEV/models/"
  adb push "$models/SmolLM2-135M-Instruct.Q4_1.gguf" "$DEV/models/"
  adb push tests/fixtures "$DEV/"
fi

# 3. Run. The tests find "the emulator" through WISP_QNN_EMU_LIB, pointed here at the
#    real libQnnHtp.so: the same graphs, the device's arithmetic.
env="cd $DEV && LD_LIBRARY_PATH=$DEV ADSP_LIBRARY_PATH=$DEV WISP_QNN_LIB=$DEV/libQnnHtp.so \
WISP_QNN_EMU_LIB=$DEV/libQnnHtp.so WISP_MODELS=$DEV/models WISP_QNN_CACHE=$DEV/qnn-cache"
status=0
while read -r exe; do
  name="$(basename "$exe")"
  echo "== $name"
  adb shell "$env ./$name --nocapture --test-threads=1" || status=1
done < target/qnn-device-tests.txt
exit $status
