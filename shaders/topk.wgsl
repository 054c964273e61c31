// topk.wgsl: the k largest entries of each row of a contiguous [rows, len] view, largest
// first; equal values keep the lower index first, NaN sorts after every number. The
// caller moves the axis last (and back).
// Selection by repeated scans, O(k * len) per row: each pass takes the best entry that
// comes after the previous pick in (value descending, index ascending) order.
//
// Bindings: 0 params (uniform Params), 1 x: array<u32> (read), 2 values: array<u32>
//   (read_write; x's words copied), 3 indices: array<i32> (read_write).
// Uniforms: rows, len, k, in_kind (0 f32, 1 i32, 2 bool as u32).
// Workgroup: 64 threads, one row each, over a 2-D grid of workgroups.

struct Params {
  rows: u32,
  len: u32,
  k: u32,
  in_kind: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> values: array<u32>;
@group(0) @binding(3) var<storage, read_write> indices: array<i32>;

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

// Whether (u, iu) comes before (v, iv) in the output order.
fn before(u: f32, iu: u32, v: f32, iv: u32) -> bool {
  let nan_u = is_nan(u);
  let nan_v = is_nan(v);
  if (nan_u != nan_v) {
    return nan_v;
  }
  if (!nan_u && u != v) {
    return u > v;
  }
  return iu < iv;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  let row = (group.y * groups.x + group.x) * 64u + lane;
  if (row >= params.rows) {
    return;
  }
  let base = row * params.len;
  let out_base = row * params.k;
  var previous_value = 0.0;
  var previous_index = 0u;
  for (var pick = 0u; pick < params.k; pick = pick + 1u) {
    var best_value = 0.0;
    var best_index = 0xffffffffu;
    for (var j = 0u; j < params.len; j = j + 1u) {
      let v = load(base + j);
      let eligible = pick == 0u || before(previous_value, previous_index, v, j);
      if (eligible && (best_index == 0xffffffffu || before(v, j, best_value, best_index))) {
        best_value = v;
        best_index = j;
      }
    }
    if (best_index == 0xffffffffu) {
      best_index = 0u;
    }
    values[out_base + pick] = x[base + best_index];
    indices[out_base + pick] = i32(best_index);
    previous_value = best_value;
    previous_index = best_index;
  }
}
