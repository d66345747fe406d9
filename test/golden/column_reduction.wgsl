// loop:sum+mul[6,1]: workgroups 1x1x1
// loop float32[6,1]: permute, sum, scalar, reshape, broadcast, mul (reads 1)
@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read_write> out0: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lin = wid.x;
  let gid = lin * 256u + lid;
  if (gid >= 6u) { return; }
  var acc: f32 = 0.0;
  for (var r = 0u; r < 16u; r = r + 1u) {
    let f2 = r * 6u + gid;
    let v3 = in0[f2];
    acc = acc + v3;
  }
  let v0 = 0.0625;
  let v1 = acc * v0;
  out0[gid] = v1;
}
