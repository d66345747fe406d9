// loop:sum+log[8,1]: workgroups 8x1x1
// loop float32[8,1]: broadcast, sub, exp, sum, log (reads 2)
@group(0) @binding(0) var<storage, read> in0: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read_write> out0: array<f32>;
var<workgroup> red: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lin = wid.x;
  let gid = lin;
  var acc: f32 = 0.0;
  let v7 = in1[gid];
  for (var rq = lid; rq < 32u; rq = rq + 64u) {
    let r0 = rq * 4u;
    let f2 = gid * 128u + r0;
    let in0_v = in0[f2 / 4u];
    let v6 = in0_v[0];
    let v8 = v6 - v7;
    let v9 = exp(v8);
    let v10 = in0_v[1];
    let v11 = v10 - v7;
    let v12 = exp(v11);
    let v13 = in0_v[2];
    let v14 = v13 - v7;
    let v15 = exp(v14);
    let v16 = in0_v[3];
    let v17 = v16 - v7;
    let v18 = exp(v17);
    acc = acc + v9 + v12 + v15 + v18;
  }
  red[lid] = acc;
  workgroupBarrier();
  if (lid == 0u) {
    for (var j = 1u; j < 64u; j = j + 1u) { red[0u] = red[0u] + red[j]; }
  }
  let cg_bits0 = 0x7fc00000u;
  if (lid == 0u) {
    let total = red[0u];
    let v1 = select(log(total), bitcast<f32>(cg_bits0), total < 0.0);
    out0[gid] = v1;
  }
}
