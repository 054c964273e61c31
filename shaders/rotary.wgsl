// rotary.wgsl: GPT-NeoX rotary embedding (rotate_half) of the first rotary_dim features
// of x [batch, pos, head, d_head]; later features pass through.
//   y[f] = x[f] * cos[f] + rotated[f] * sin[f],  rotated = concat(-x[half:], x[:half])
// cos / sin are [batch, pos, rotary_dim], shared by every head.
//
// Bindings: 0 params (uniform Params), 1 x: array<f32> (read), 2 cos_table: array<f32>
//   (read), 3 sin_table: array<f32> (read), 4 y: array<f32> (read_write).
// Uniforms: total, d_head, rotary_dim, heads, positions; table_b_stride and
//   table_p_stride (elements; 0 where the tables broadcast).
// Workgroup: 64 threads, one element each, over a 2-D grid of workgroups.

struct Params {
  total: u32,
  d_head: u32,
  rotary_dim: u32,
  heads: u32,
  positions: u32,
  table_b_stride: u32,
  table_p_stride: u32,
  pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> cos_table: array<f32>;
@group(0) @binding(3) var<storage, read> sin_table: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  let i = (group.y * groups.x + group.x) * 64u + lane;
  if (i >= params.total) {
    return;
  }
  let feature = i % params.d_head;
  if (feature >= params.rotary_dim) {
    y[i] = x[i];
    return;
  }
  let token = i / (params.d_head * params.heads);
  let pos = token % params.positions;
  let batch = token / params.positions;
  let at = batch * params.table_b_stride + pos * params.table_p_stride + feature;
  let half = params.rotary_dim / 2u;
  var rotated = 0.0;
  if (feature < half) {
    rotated = -x[i + half];
  } else {
    rotated = x[i - half];
  }
  y[i] = x[i] * cos_table[at] + rotated * sin_table[at];
}
