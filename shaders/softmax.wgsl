// softmax.wgsl: softmax / log_softmax of each row of a contiguous [rows, len] view, and
// the masked softmax of attention scores.
//   mode 0 softmax (safe: a row that is all -inf gives zeros), 1 log_softmax,
//   2 attention with a boolean mask, 3 causal attention (queries aligned to the last keys).
// In modes 2 and 3 rows are [batch, head, q_pos] and len is k_pos; masked scores become
// -inf before the safe softmax, as in numpy_backend.attention.
//
// Bindings: 0 params (uniform Params), 1 x: array<f32> (read), 2 mask: array<u32> (read;
//   a dummy unless mode 2), 3 y: array<f32> (read_write).
// Uniforms: rows, len, mode; q_len and heads (to split a row index); mask_b_stride and
//   mask_p_stride (elements; 0 where the mask broadcasts).
// Workgroup: 64 threads per row (strided partial max and sum, trees in workgroup memory);
//   one workgroup per row over a 2-D grid of workgroups.

const LANES: u32 = 64u;

struct Params {
  rows: u32,
  len: u32,
  mode: u32,
  q_len: u32,
  heads: u32,
  mask_b_stride: u32,
  mask_p_stride: u32,
  pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<f32, 64>;

fn is_finite(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

fn negative_infinity() -> f32 {
  var bits = 0xff800000u;
  return bitcast<f32>(bits);
}

fn tree_max(lane: u32) -> f32 {
  for (var width = LANES / 2u; width > 0u; width = width / 2u) {
    workgroupBarrier();
    if (lane < width) {
      partial[lane] = max(partial[lane], partial[lane + width]);
    }
  }
  workgroupBarrier();
  let result = partial[0];
  workgroupBarrier();
  return result;
}

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
  let q_pos = row % max(params.q_len, 1u);
  let batch = row / max(params.q_len * params.heads, 1u);
  let mask_base = batch * params.mask_b_stride + q_pos * params.mask_p_stride;
  // Causal: key j is visible to query q_pos when j <= q_pos + (k_len - q_len).
  let last_visible = i32(q_pos) + i32(params.len) - i32(params.q_len);
  let minus_inf = negative_infinity();

  var peak = minus_inf;
  for (var j = lane; j < params.len; j = j + LANES) {
    var v = x[base + j];
    if ((params.mode == 2u && mask[mask_base + j] == 0u) ||
        (params.mode == 3u && i32(j) > last_visible)) {
      v = minus_inf;
    }
    peak = max(peak, v);
  }
  partial[lane] = peak;
  peak = tree_max(lane);
  let safe_peak = select(0.0, peak, is_finite(peak) || params.mode == 1u);

  var total = 0.0;
  for (var j = lane; j < params.len; j = j + LANES) {
    var v = x[base + j];
    if ((params.mode == 2u && mask[mask_base + j] == 0u) ||
        (params.mode == 3u && i32(j) > last_visible)) {
      v = minus_inf;
    }
    total = total + exp(v - safe_peak);
  }
  partial[lane] = total;
  total = tree_sum(lane);

  if (params.mode == 1u) {
    let log_total = log(total);
    for (var j = lane; j < params.len; j = j + LANES) {
      y[base + j] = (x[base + j] - safe_peak) - log_total;
    }
    return;
  }
  let divisor = select(total, 1.0, total == 0.0);
  for (var j = lane; j < params.len; j = j + LANES) {
    var v = x[base + j];
    if ((params.mode == 2u && mask[mask_base + j] == 0u) ||
        (params.mode == 3u && i32(j) > last_visible)) {
      v = minus_inf;
    }
    y[base + j] = exp(v - safe_peak) / divisor;
  }
}
