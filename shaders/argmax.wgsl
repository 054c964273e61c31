// argmax.wgsl: index of the largest entry of each row of a contiguous [rows, len] view
// (numpy.argmax: the first maximum wins; a NaN counts as the maximum). The caller moves
// the axis last.
//
// Bindings: 0 params (uniform Params), 1 x: array<u32> (read), 2 y: array<i32> (read_write).
// Uniforms: rows, len, in_kind (0 f32, 1 i32, 2 bool as u32).
// Workgroup: 64 threads per row (strided scan, then a tree of (value, index) pairs in
//   workgroup memory); one workgroup per row over a 2-D grid of workgroups.

const LANES: u32 = 64u;

struct Params {
  rows: u32,
  len: u32,
  in_kind: u32,
  pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<i32>;

var<workgroup> best_value: array<f32, 64>;
var<workgroup> best_index: array<u32, 64>;

fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn load(i: u32) -> f32 {
  let w = x[i];
  switch params.in_kind {
    case 0u: { return bitcast<f32>(w); }
    case 1u: { return f32(bitcast<i32>(w)); }
    default: { return f32(w); }
  }
}

// Whether (u, iu) beats (v, iv); an index of 0xffffffff is "none yet".
fn beats(u: f32, iu: u32, v: f32, iv: u32) -> bool {
  if (iv == 0xffffffffu) {
    return iu != 0xffffffffu;
  }
  if (iu == 0xffffffffu) {
    return false;
  }
  let nan_u = is_nan(u);
  let nan_v = is_nan(v);
  if (nan_u != nan_v) {
    return nan_u;
  }
  if (!nan_u && u != v) {
    return u > v;
  }
  return iu < iv;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  let row = group.y * groups.x + group.x;
  if (row >= params.rows) {
    return;
  }
  let base = row * params.len;
  var value = 0.0;
  var index = 0xffffffffu;
  for (var j = lane; j < params.len; j = j + LANES) {
    let candidate = load(base + j);
    if (beats(candidate, j, value, index)) {
      value = candidate;
      index = j;
    }
  }
  best_value[lane] = value;
  best_index[lane] = index;
  for (var width = LANES / 2u; width > 0u; width = width / 2u) {
    workgroupBarrier();
    if (lane < width && beats(best_value[lane + width], best_index[lane + width],
                              best_value[lane], best_index[lane])) {
      best_value[lane] = best_value[lane + width];
      best_index[lane] = best_index[lane + width];
    }
  }
  if (lane == 0u) {
    y[row] = select(i32(best_index[0]), 0, best_index[0] == 0xffffffffu);
  }
}
