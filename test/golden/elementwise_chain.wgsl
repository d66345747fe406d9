// map:where[4,8]: workgroups 1x1x1
// map float32[4,8]: scalar, reshape, broadcast, reshape, broadcast, mul, reshape, broadcast, add, cmplt, where (reads 3)
@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read> in2: array<f32>;
@group(0) @binding(3) var<storage, read_write> out0: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lin = wid.x;
  let gid = lin * 256u + lid;
  if (gid >= 32u) { return; }
  let v0 = 0.0;
  let v1 = in0[gid];
  let i3 = gid % 8u;
  let v4 = in1[i3];
  let v5 = v1 * v4;
  let v6 = in2[i3];
  let v7 = v5 + v6;
  let v8 = select(0.0, 1.0, v0 < v7);
  let v9 = select(v0, v7, v8 != 0.0);
  out0[gid] = v9;
}
