#!/usr/bin/env bash
# Runs here, before a device call: packs .device/ as for the GPU machine and runs the packed
# suites and benchmarks against the addon built for the host emulation of CUDA
# (npm run build:emulation -w @lrface/cuda-core), so a broken bundle or script shows up
# without spending device time. Timings here mean nothing; results must match the CPU.
#
# usage: bash tools/gpu/preflight.sh   (from the repository root, after npm ci and npm run build)
set -euo pipefail
npm run build:emulation -w @lrface/cuda-core > /dev/null
addon=$(find packages/cuda-core/build-emulation -name lrface_core.node | head -1)
[ -n "$addon" ] || { echo "preflight: the emulated addon did not build (see npm run build:emulation)"; exit 2; }
node tools/gpu/pack.mjs
export LRFACE_ADDON_PATH="$PWD/$addon"
node --test --test-reporter=dot .device/cuda-suite.mjs .device/cuda-conv-suite.mjs .device/cuda-cudnn-ops-suite.mjs .device/cuda-train-suite.mjs .device/nn-device-suite.mjs .device/recognition-train-suite.mjs .device/landmarks-train-suite.mjs
node .device/cuda-bench.mjs --reps 1 > /dev/null
node .device/cuda-train-bench.mjs --device cuda --quick --steps 2
node .device/cuda-train-bench.mjs --parity-out /tmp/lrface-preflight-parity.json > /dev/null
echo "preflight: the packed suites and benchmarks ran under the host emulation"
