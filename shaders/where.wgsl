// where.wgsl: y = cond ? a : b with numpy broadcasting (numpy.where).
//
// Bindings: 0 params (uniform Params), 1 cond: array<u32> (read), 2 a: array<u32> (read),
//   3 b: array<u32> (read), 4 y: array<u32> (read_write). A scalar a or b is bound to a
//   dummy buffer and read from the uniforms.
// Uniforms: total, rank (<= 8), shape of y; c/a/b_strides in elements (0 on broadcast
//   axes); cond_kind / a_kind / b_kind / out_kind (0 f32, 1 i32, 2 bool as u32);
//   scalars (bit 0: a is a_scalar / a_scalar_int, bit 1: b likewise).
// Workgroup: 64 threads, one element each, over a 2-D grid of workgroups.
// The chosen value is converted to out_kind (an int chosen into a float result, ...).

struct Params {
  total: u32,
  rank: u32,
  cond_kind: u32,
  out_kind: u32,
  a_kind: u32,
  b_kind: u32,
  scalars: u32,
  pad0: u32,
  a_scalar: f32,
  b_scalar: f32,
  a_scalar_int: i32,
  b_scalar_int: i32,
  shape: array<vec4<u32>, 2>,
  c_strides: array<vec4<u32>, 2>,
  a_strides: array<vec4<u32>, 2>,
  b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> cond: array<u32>;
@group(0) @binding(2) var<storage, read> a: array<u32>;
@group(0) @binding(3) var<storage, read> b: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<u32>;

// The stored word converted from `kind` to out_kind.
fn convert(w: u32, kind: u32) -> u32 {
  if (kind == params.out_kind || (kind == 2u && params.out_kind == 1u)) {
    return w;
  }
  if (params.out_kind == 0u) {
    return bitcast<u32>(select(f32(bitcast<i32>(w)), bitcast<f32>(w), kind == 0u));
  }
  if (params.out_kind == 1u) {
    return bitcast<u32>(i32(bitcast<f32>(w)));
  }
  let magnitude = select(w, w & 0x7fffffffu, kind == 0u);
  return select(0u, 1u, magnitude != 0u);
}

fn pick_a(i: u32) -> u32 {
  if ((params.scalars & 1u) != 0u) {
    return select(bitcast<u32>(params.a_scalar_int), bitcast<u32>(params.a_scalar), params.out_kind == 0u);
  }
  return convert(a[i], params.a_kind);
}

fn pick_b(i: u32) -> u32 {
  if ((params.scalars & 2u) != 0u) {
    return select(bitcast<u32>(params.b_scalar_int), bitcast<u32>(params.b_scalar), params.out_kind == 0u);
  }
  return convert(b[i], params.b_kind);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  let i = (group.y * groups.x + group.x) * 64u + lane;
  if (i >= params.total) {
    return;
  }
  var rest = i;
  var offset_c = 0u;
  var offset_a = 0u;
  var offset_b = 0u;
  for (var d = i32(params.rank) - 1; d >= 0; d = d - 1) {
    let size = params.shape[d / 4][d % 4];
    let coord = rest % size;
    rest = rest / size;
    offset_c = offset_c + coord * params.c_strides[d / 4][d % 4];
    offset_a = offset_a + coord * params.a_strides[d / 4][d % 4];
    offset_b = offset_b + coord * params.b_strides[d / 4][d % 4];
  }
  let w = cond[offset_c];
  let truthy = select(w != 0u, (w & 0x7fffffffu) != 0u, params.cond_kind == 0u);
  if (truthy) {
    y[i] = pick_a(offset_a);
  } else {
    y[i] = pick_b(offset_b);
  }
}
