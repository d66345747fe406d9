#!/usr/bin/env bash
# The comparison of bench/compare.ts on an NVIDIA GPU machine (no network): every workload
# including the GPU-only M4 and T2, cosgrad and the peers on WebGPU, and PyTorch CUDA (float32,
# TF32 off, in bench/peers/torch.py). CPU and wasm backends are left out: this run is about the GPU.
#
# Prepare here (needs the npm registry), then send the tree with .gpu/ and run there:
#   bash ../shared/gpu/prepare.sh          # builds .gpu/ (Deno, Vulkan loader, filled cache)
#   bash bench/gpu.sh                      # on the GPU machine, from the project root
# Results: the printed table and out/compare_gpu.json (or $OUT/compare_gpu.json when $OUT is set).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -f .gpu/on-device.sh ]; then
  echo "bench/gpu.sh: .gpu/on-device.sh is missing; run bash ../shared/gpu/prepare.sh first" >&2
  exit 2
fi
out=${OUT:-out}
mkdir -p "$out"
exec bash .gpu/on-device.sh deno task compare \
  --workloads L1,M1,M4,C1-fwd,C1-fwdbwd,T1,T2 \
  --frameworks cosgrad-webgpu,tfjs-webgpu,jax-webgpu,torch-cuda \
  --reps 10 --max-call-ms 20000 --timeout-s 300 \
  --json "$out/compare_gpu.json" "$@"
