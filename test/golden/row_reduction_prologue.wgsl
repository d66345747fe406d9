// loop:sum+log[8,1]: workgroups 8x1x1
// loop float32[8,1]: broadcast, sub, exp, sum, log (reads 2)
@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read_write> out0: array<f32>;
var<workgroup> red: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lin = wid.x;
  let gid = lin;
  let v2 = in1[gid];
  let cg_bits5 = 0x7fc00000u;
  var acc: f32 = 0.0;
  for (var r = lid; r < 128u; r = r + 64u) {
    let f0 = gid * 128u + r;
    let v1 = in0[f0];
    let v3 = v1 - v2;
    let v4 = exp(v3);
    acc = acc + v4;
  }
  red[lid] = acc;
  workgroupBarrier();
  if (lid < 32u) { red[lid] = red[lid] + red[lid + 32u]; }
  workgroupBarrier();
  if (lid < 16u) { red[lid] = red[lid] + red[lid + 16u]; }
  workgroupBarrier();
  if (lid < 8u) { red[lid] = red[lid] + red[lid + 8u]; }
  workgroupBarrier();
  if (lid < 4u) { red[lid] = red[lid] + red[lid + 4u]; }
  workgroupBarrier();
  if (lid < 2u) { red[lid] = red[lid] + red[lid + 2u]; }
  workgroupBarrier();
  if (lid < 1u) { red[lid] = red[lid] + red[lid + 1u]; }
  workgroupBarrier();
  if (lid == 0u) {
    let total = red[0];
    let v6 = select(log(total), bitcast<f32>(cg_bits5), total < 0.0);
    out0[gid] = v6;
  }
}
