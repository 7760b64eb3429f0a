#!/usr/bin/env bash
# Runs on the lent GPU machine (no Node, no registry), from the repository root, after
# `node tools/gpu/pack.mjs` here and with .device/ carried along:
#   1. unpacks node, finds cuDNN and cuBLAS in the pip wheels (nvidia-cudnn-*, nvidia-cublas*),
#   2. builds the addon with plain CMake + Ninja for sm_90 (cmake-js is not shipped),
#   3. runs the CUDA suite (packages/cuda-core/test/cuda.test.ts, bundled) and the benchmark,
#   4. runs the CUDA training suite (packages/sr/test/cuda-train.test.ts, bundled) and the
#      training benchmark, lrface (tools/gpu/bench-train.mjs, bundled) against PyTorch
#      (tools/gpu/bench_torch.py): train-bench.json and a table of the ratios in run.log.
# Logs and results go to $OUT (the device run's output folder) or /tmp/lrface-gpu.
# LRFACE_GPU_BUILD_ONLY=1 stops after the build (to check the build recipe on any machine
# with nvcc). LRFACE_GPU_ARCH overrides the architecture (default 90). LRFACE_GPU_STAGES picks
# what runs after the build, any of "suite bench train" (default all three): one device call
# is limited to 10 minutes, so a run can be split over calls; the build folder is inside the
# repository (git-ignored), which a warm machine keeps between calls, so later calls rebuild
# nothing.
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
stages=" ${LRFACE_GPU_STAGES:-suite bench train} "
stage() { [[ "$stages" == *" $1 "* ]]; }
if stage suite; then
  log "CUDA suite"
  timeout 300 node --test --test-reporter=spec .device/cuda-suite.mjs .device/cuda-conv-suite.mjs .device/cuda-cudnn-ops-suite.mjs > "$out/suite.log" 2>&1 || status=1
  tail -12 "$out/suite.log" | tee -a "$out/run.log"
fi
if stage bench; then
  log "benchmark"
  timeout 240 node .device/cuda-bench.mjs --json "$out/bench.json" > "$out/bench.log" 2>&1 || status=1
  cat "$out/bench.log" | tee -a "$out/run.log"
fi
stage train || { log "done (status $status)"; exit $status; }

# Training on the device: VDSR/SRINC steps against the CPU, then the training benchmark,
# lrface and PyTorch in the same run (sizes in tools/gpu/train-workloads.json), each under
# its own timeout so one failure leaves the others' logs. LRFACE_GPU_TRAIN_STEPS sets the
# timed steps per workload (default 20), LRFACE_GPU_PYTHON the Python with PyTorch (python3).
steps=${LRFACE_GPU_TRAIN_STEPS:-20}
py=${LRFACE_GPU_PYTHON:-python3}
log "CUDA training suite"
timeout 240 node --test --test-reporter=spec .device/cuda-train-suite.mjs > "$out/train-suite.log" 2>&1 || status=1
tail -12 "$out/train-suite.log" | tee -a "$out/run.log"
log "architecture parity: lrface's quick VDSR and SRINC loaded into bench_torch.py's (CPU)"
{ timeout 120 node .device/cuda-train-bench.mjs --parity-out "$out/parity.json" \
    && timeout 120 "$py" .device/bench_torch.py --parity "$out/parity.json"; } > "$out/parity.log" 2>&1 || status=1
cat "$out/parity.log" | tee -a "$out/run.log"
log "training benchmark: lrface"
rm -f "$out/train-bench-lrface.json" "$out/train-bench-torch.json"
timeout 300 node .device/cuda-train-bench.mjs --device cuda --steps "$steps" --json "$out/train-bench-lrface.json" > "$out/train-bench-lrface.log" 2>&1 || status=1
cat "$out/train-bench-lrface.log" | tee -a "$out/run.log"
log "training benchmark: PyTorch"
timeout 300 "$py" .device/bench_torch.py --device cuda --steps "$steps" --json "$out/train-bench-torch.json" > "$out/train-bench-torch.log" 2>&1 || status=1
cat "$out/train-bench-torch.log" | tee -a "$out/run.log"
node tools/gpu/train-bench-report.mjs "$out/train-bench-lrface.json" "$out/train-bench-torch.json" "$out/train-bench.json" 2>&1 | tee -a "$out/run.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
log "done (status $status)"
exit $status
