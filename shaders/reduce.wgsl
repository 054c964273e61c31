// reduce.wgsl: one reduction per row of a contiguous [rows, len] view:
// op 0 sum, 1 mean, 2 max, 3 min, 4 var (two passes: mean, then mean squared deviation,
// as numpy). The caller moves the reduced axes last. Accumulates in f32; max/min
// propagate NaN as numpy does.
//
// Bindings: 0 params (uniform Params), 1 x: array<u32> (read), 2 y: array<u32> (read_write).
// Uniforms: rows, len, op, in_kind / out_kind (0 f32, 1 i32, 2 bool as u32).
// Workgroup: 64 threads per row (strided partial results, then a tree in workgroup
//   memory); one workgroup per row over a 2-D grid of workgroups.

const LANES: u32 = 64u;

struct Params {
  rows: u32,
  len: u32,
  op: u32,
  in_kind: u32,
  out_kind: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;

var<workgroup> partial: array<f32, 64>;

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

// op: 0 sum, 2 max, 3 min (mean and var sum).
fn combine(op: u32, u: f32, v: f32) -> f32 {
  if (op == 2u || op == 3u) {
    if (is_nan(u) || is_nan(v)) {
      return u + v;
    }
    return select(min(u, v), max(u, v), op == 2u);
  }
  return u + v;
}

fn identity(op: u32) -> f32 {
  var infinity_bits = 0x7f800000u;
  let infinity = bitcast<f32>(infinity_bits);
  switch op {
    case 2u: { return -infinity; }
    case 3u: { return infinity; }
    default: { return 0.0; }
  }
}

// Tree over `partial`; every lane returns the row's result.
fn tree(op: u32, lane: u32) -> f32 {
  for (var width = LANES / 2u; width > 0u; width = width / 2u) {
    workgroupBarrier();
    if (lane < width) {
      partial[lane] = combine(op, partial[lane], partial[lane + width]);
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
  let op = params.op;
  let base = row * params.len;
  var acc = identity(op);
  for (var j = lane; j < params.len; j = j + LANES) {
    acc = combine(op, acc, load(base + j));
  }
  partial[lane] = acc;
  var result = tree(op, lane);
  let count = f32(params.len);
  if (op == 1u) {
    result = result / count;
  } else if (op == 4u) {
    let mean = result / count;
    var squares = 0.0;
    for (var j = lane; j < params.len; j = j + LANES) {
      let centered = load(base + j) - mean;
      squares = squares + centered * centered;
    }
    partial[lane] = squares;
    result = tree(0u, lane) / count;
  }
  if (lane == 0u) {
    switch params.out_kind {
      case 0u: { y[row] = bitcast<u32>(result); }
      case 1u: { y[row] = bitcast<u32>(i32(result)); }
      default: { y[row] = select(1u, 0u, result == 0.0); }
    }
  }
}
