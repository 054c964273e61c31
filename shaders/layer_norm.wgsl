// layer_norm.wgsl: normalisation over the last axis of a contiguous [rows, len] tensor.
//   mode 0 layer norm: (x - mean) / sqrt(var + eps) * weight + bias (two passes, as numpy)
//   mode 1 RMS norm:   x / sqrt(mean(x^2) + eps) * weight
// weight and bias are optional (has_weight / has_bias; a dummy buffer is bound instead).
//
// Bindings: 0 params (uniform Params), 1 x: array<f32> (read), 2 weight: array<f32> (read),
//   3 bias: array<f32> (read), 4 y: array<f32> (read_write).
// Uniforms: rows, len, mode, has_weight, has_bias, eps.
// Workgroup: 64 threads per row (strided partial sums, a tree in workgroup memory); one
//   workgroup per row over a 2-D grid of workgroups.

const LANES: u32 = 64u;

struct Params {
  rows: u32,
  len: u32,
  mode: u32,
  has_weight: u32,
  has_bias: u32,
  eps: f32,
  pad0: u32,
  pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<f32, 64>;

fn tree_sum(lane: u32) -> f32 {
  for (var width = LANES / 2u; width > 0u; width = width / 2u) {
    workgroupBarrier();
    if (lane < width) {
      partial[lane] = partial[lane] + partial[lane + width];
    }
  }
  workgroupBarrier();
  let result = partial[0];
  workgroupBarrier();
  return result;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  let row = group.y * groups.x + group.x;
  if (row >= params.rows) {
    return;
  }
  let base = row * params.len;
  let count = f32(params.len);
  var center = 0.0;
  if (params.mode == 0u) {
    var total = 0.0;
    for (var j = lane; j < params.len; j = j + LANES) {
      total = total + x[base + j];
    }
    partial[lane] = total;
    center = tree_sum(lane) / count;
  }
  var squares = 0.0;
  for (var j = lane; j < params.len; j = j + LANES) {
    let centered = x[base + j] - center;
    squares = squares + centered * centered;
  }
  partial[lane] = squares;
  let scale = sqrt(tree_sum(lane) / count + params.eps);
  for (var j = lane; j < params.len; j = j + LANES) {
    var v = (x[base + j] - center) / scale;
    if (params.has_weight == 1u) {
      v = v * weight[j];
    }
    if (params.has_bias == 1u) {
      v = v + bias[j];
    }
    y[base + j] = v;
  }
}
