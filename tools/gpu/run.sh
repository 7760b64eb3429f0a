#!/usr/bin/env bash
# Runs on the lent GPU machine (no Node, no registry), from the repository root, after
# `node tools/gpu/pack.mjs` here and with .device/ carried along:
#   1. unpacks node, finds cuDNN and cuBLAS in the pip wheels (nvidia-cudnn-*, nvidia-cublas*),
#   2. builds the addon with plain CMake + Ninja for sm_90 (cmake-js is not shipped),
#   3. runs the CUDA suites (packages/cuda-core/test/cuda*.test.ts, bundled),
#   4. runs the training benchmark, lrface (tools/gpu/bench-train.mjs, bundled) against
#      PyTorch (tools/gpu/bench_torch.py): train-bench.json and a table of the ratios in
#      run.log; then the CUDA training suite (packages/sr/test/cuda-train.test.ts, bundled),
#   5. runs the op benchmark (tools/gpu/bench.mjs, bundled).
# Logs and results go to $OUT (the device run's output folder) or /tmp/lrface-gpu.
# LRFACE_GPU_BUILD_ONLY=1 stops after the build (to check the build recipe on any machine
# with nvcc). LRFACE_GPU_ARCH overrides the architecture (default 90). LRFACE_GPU_STAGES picks
# what runs after the build, any of "suite train bench" (default all three; they run in that
# order whatever the order named). LRFACE_GPU_DEADLINE_S bounds the whole run: set it a little
# under the device call's own limit, so that steps are cut short or skipped (and say so in
# run.log) before the call is killed. The build folder is inside the repository (git-ignored),
# which a warm machine keeps between calls, so later calls rebuild nothing.
set -uo pipefail
root=$(pwd)
out=${OUT:-/tmp/lrface-gpu}
mkdir -p "$out"
log() { echo "[gpu $(date -u +%H:%M:%S)] $*" | tee -a "$out/run.log"; }
[ -f .device/node.xz ] || { log "no .device/node.xz: run node tools/gpu/pack.mjs first and carry .device"; exit 2; }

{ nvidia-smi; nvcc --version; cmake --version; ninja --version; python3 --version; } > "$out/env.txt" 2>&1
log "environment in env.txt"

bin=$(mktemp -d)
xz -d -c .device/node.xz > "$bin/node" && chmod +x "$bin/node"
export PATH="$bin:$PATH"
log "node $(node --version)"

# Folders of pip packages that may be namespace packages (no __file__): take __path__.
pip_dir() { python3 -c "import importlib; m = importlib.import_module('$1'); print(list(m.__path__)[0])" 2>/dev/null; }
cudnn=$(pip_dir nvidia.cudnn)
cublas=$(pip_dir nvidia.cublas)
# The wheels' layouts differ between CUDA versions (nvidia/cublas, nvidia/cu13, ...): name the
# library files themselves to the addon's run-time loader too.
site=$(python3 -c "import site; print(' '.join(site.getsitepackages()))" 2>/dev/null)
find_lib() { find $site -path '*nvidia*' -name "$1.so.*" 2>/dev/null | grep -E "/$1\.so\.[0-9]+$" | sort | tail -1; }
cudnn_lib=$(find_lib libcudnn)
cublas_lib=$(find_lib libcublas)
[ -z "$cudnn" ] && [ -n "$cudnn_lib" ] && cudnn=$(dirname "$(dirname "$cudnn_lib")")
[ -z "$cublas" ] && [ -n "$cublas_lib" ] && cublas=$(dirname "$(dirname "$cublas_lib")")
[ -n "$cudnn_lib" ] && export LRFACE_CUDNN_LIBRARY="$cudnn_lib"
[ -n "$cublas_lib" ] && export LRFACE_CUBLAS_LIBRARY="$cublas_lib"
log "cuDNN: ${cudnn:-not found} (${cudnn_lib:-no library}); cuBLAS: ${cublas:-not found} (${cublas_lib:-no library})"

build=${LRFACE_GPU_BUILD_DIR:-$root/packages/cuda-core/build-gpu}
export NODE_PATH="$root/.device/node_modules"  # node-addon-api, asked for by CMakeLists.txt
cmake -S packages/cuda-core -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLRFACE_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${LRFACE_GPU_ARCH:-90}" \
  -DCMAKE_JS_INC="$root/.device/node_modules/node-api-headers/include" \
  ${cudnn:+-DCUDNN_ROOT="$cudnn"} ${cublas:+-DCUBLAS_ROOT="$cublas"} > "$out/configure.log" 2>&1 \
  || { log "configure failed: see configure.log"; tail -20 "$out/configure.log"; exit 1; }
grep 'lrface:' "$out/configure.log" | tee -a "$out/run.log"
cmake --build "$build" -j "$(nproc)" > "$out/build.log" 2>&1 || { log "build failed: see build.log"; tail -40 "$out/build.log"; exit 1; }
addon=$(find "$build" -name lrface_core.node | head -1)
log "built $addon"
[ "${LRFACE_GPU_BUILD_ONLY:-0}" = 1 ] && exit 0

export LRFACE_ADDON_PATH="$addon"
export LD_LIBRARY_PATH="${cudnn:+$cudnn/lib:}${cublas:+$cublas/lib:}${LD_LIBRARY_PATH:-}"
node -e "const i = require(process.argv[1]).cudaInfo(); console.log(JSON.stringify({ devices: i.devices, reason: i.reason, cudnn: i.cudnnLibrary, cublas: i.cublasLibrary }))" "$addon" 2>&1 | tee "$out/cuda-info.json" | tee -a "$out/run.log"
status=0
stages=" ${LRFACE_GPU_STAGES:-suite train bench} "
stage() { [[ "$stages" == *" $1 "* ]]; }
skipped=""
# step NAME CAP_SECONDS LOG COMMAND...: runs COMMAND under `timeout`, output to $out/LOG. With
# LRFACE_GPU_DEADLINE_S, the timeout is also cut to what is left before the deadline (less a
# margin for the logs), and a step with under 20 s left is not started: it is listed as
# skipped and the run's status is non-zero, so a skipped step never reads as a passed one.
step() {
  local name=$1 cap=$2 logfile=$3
  shift 3
  local limit=$cap
  if [ -n "${LRFACE_GPU_DEADLINE_S:-}" ]; then
    local left=$((LRFACE_GPU_DEADLINE_S - SECONDS - 10))
    if [ "$left" -lt 20 ]; then
      log "$name: skipped, ${left}s left before the ${LRFACE_GPU_DEADLINE_S}s deadline"
      skipped="$skipped $name"
      status=1
      return 1
    fi
    [ "$left" -lt "$limit" ] && limit=$left
  fi
  log "$name (at most ${limit}s)"
  timeout "$limit" "$@" > "$out/$logfile" 2>&1
  local rc=$?
  [ "$rc" = 124 ] && log "$name: timed out after ${limit}s"
  [ "$rc" = 0 ] || status=1
  return $rc
}

# The steps run in the order of what the issue needs most: the CUDA suites (their pass is the
# done criterion), then the training benchmark's ratios against PyTorch, then the training
# suite, then the op benchmark.
if stage suite; then
  step "CUDA suite" 300 suite.log node --test --test-reporter=spec .device/cuda-suite.mjs .device/cuda-conv-suite.mjs .device/cuda-cudnn-ops-suite.mjs
  tail -12 "$out/suite.log" 2>/dev/null | tee -a "$out/run.log"
fi

# Training on the device: the training benchmark, lrface and PyTorch in the same run (sizes in
# tools/gpu/train-workloads.json), after a check that both sides build the same models; then
# VDSR/SRINC steps against the CPU (the training suite). LRFACE_GPU_TRAIN_STEPS sets the timed
# steps per workload (default 20), LRFACE_GPU_PYTHON the Python with PyTorch (python3).
if stage train; then
  steps=${LRFACE_GPU_TRAIN_STEPS:-20}
  py=${LRFACE_GPU_PYTHON:-python3}
  step "architecture parity: lrface's quick VDSR and SRINC loaded into bench_torch.py's (CPU)" 240 parity.log \
    bash -c 'node .device/cuda-train-bench.mjs --parity-out "$1/parity.json" && "$2" .device/bench_torch.py --parity "$1/parity.json"' \
    parity "$out" "$py"
  cat "$out/parity.log" 2>/dev/null | tee -a "$out/run.log"
  rm -f "$out/train-bench-lrface.json" "$out/train-bench-torch.json"
  step "training benchmark: lrface" 300 train-bench-lrface.log \
    node .device/cuda-train-bench.mjs --device cuda --steps "$steps" --json "$out/train-bench-lrface.json"
  cat "$out/train-bench-lrface.log" 2>/dev/null | tee -a "$out/run.log"
  step "training benchmark: PyTorch" 300 train-bench-torch.log \
    "$py" .device/bench_torch.py --device cuda --steps "$steps" --json "$out/train-bench-torch.json"
  cat "$out/train-bench-torch.log" 2>/dev/null | tee -a "$out/run.log"
  node tools/gpu/train-bench-report.mjs "$out/train-bench-lrface.json" "$out/train-bench-torch.json" "$out/train-bench.json" 2>&1 | tee -a "$out/run.log"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
  step "CUDA training suite" 240 train-suite.log node --test --test-reporter=spec .device/cuda-train-suite.mjs .device/nn-device-suite.mjs .device/recognition-train-suite.mjs .device/landmarks-train-suite.mjs
  tail -12 "$out/train-suite.log" 2>/dev/null | tee -a "$out/run.log"
fi

if stage bench; then
  step "op benchmark" 240 bench.log node .device/cuda-bench.mjs --json "$out/bench.json"
  cat "$out/bench.log" 2>/dev/null | tee -a "$out/run.log"
fi
log "done (status $status${skipped:+; skipped:$skipped})"
exit $status
