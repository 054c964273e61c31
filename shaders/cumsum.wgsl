// cumsum.wgsl: inclusive running sum along each row of a contiguous [rows, len] view,
// accumulated sequentially (the order numpy.cumsum uses). The caller moves the axis last.
//
// Bindings: 0 params (uniform Params), 1 x: array<u32> (read), 2 y: array<u32> (read_write).
// Uniforms: rows, len, in_kind / out_kind (0 f32, 1 i32, 2 bool as u32); integer input
//   sums in i32.
// Workgroup: 64 threads, one row each, over a 2-D grid of workgroups.

struct Params {
  rows: u32,
  len: u32,
  in_kind: u32,
  out_kind: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  let row = (group.y * groups.x + group.x) * 64u + lane;
  if (row >= params.rows) {
    return;
  }
  let base = row * params.len;
  if (params.in_kind == 0u) {
    var total = 0.0;
    for (var j = 0u; j < params.len; j = j + 1u) {
      total = total + bitcast<f32>(x[base + j]);
      y[base + j] = select(bitcast<u32>(total), bitcast<u32>(i32(total)), params.out_kind != 0u);
    }
  } else {
    var total = 0;
    for (var j = 0u; j < params.len; j = j + 1u) {
      total = total + bitcast<i32>(x[base + j]);
      y[base + j] = select(bitcast<u32>(total), bitcast<u32>(f32(total)), params.out_kind == 0u);
    }
  }
}
