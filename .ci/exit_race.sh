#!/usr/bin/env bash
# Measures the exit-time abort of `deno test` on WebGPU (RELIABILITY.md, "Exit code 134") with
# no cosgrad code: 8 test files that each run one compute dispatch on navigator.gpu, run N times
# with --parallel and 8 jobs, 2 processes at a time, niced. Prints how the runs exited.
#
#   .ci/exit_race.sh 200            # plain deno
#   .ci/exit_race.sh 200 --guard    # with .ci/deno_fast_exit.c preloaded
set -euo pipefail
n=${1:-100}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
export DENO_JOBS=8 NO_COLOR=1
if [[ ${2:-} == --guard ]]; then
  cc -O2 -shared -fPIC -o "$dir/deno_fast_exit.so" "$here/deno_fast_exit.c" -ldl
  export LD_PRELOAD="$dir/deno_fast_exit.so"
fi
cat >"$dir/work.ts" <<'EOF'
export async function gpuWork(): Promise<number> {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error("no WebGPU adapter");
  const device = await adapter.requestDevice();
  const code = `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < arrayLength(&a)) { a[g.x] = a[g.x] * 2.0 + 1.0; }
}`;
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
  });
  const n = 1024;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const buf = device.createBuffer({ size: n * 4, usage });
  device.queue.writeBuffer(buf, 0, new Float32Array(n).fill(1));
  const read = device.createBuffer({
    size: n * 4,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: buf } }],
  });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(n / 64);
  pass.end();
  enc.copyBufferToBuffer(buf, 0, read, 0, n * 4);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(read.getMappedRange().slice(0));
  read.unmap();
  return out[0];
}
EOF
for i in 1 2 3 4 5 6 7 8; do
  cat >"$dir/t${i}_test.ts" <<'EOF'
import { gpuWork } from "./work.ts";
Deno.test("one dispatch", async () => {
  if (await gpuWork() !== 3) throw new Error("wrong value");
});
EOF
done
seq 1 "$n" | xargs -P 2 -I{} bash -c \
  'cd "$1" && nice -n 10 deno test -A --no-check --parallel t?_test.ts >/dev/null 2>&1; echo $?' \
  _ "$dir" | sort | uniq -c | awk '{ printf "exit %s: %s runs\n", $2, $1 }'
