// binary.wgsl: elementwise y = a (op) b with numpy broadcasting, for the op table's BINARY_OPS (py/neuroscope/backends/ops.py).
//
// Bindings: 0 params (uniform Params), 1 a: array<u32> (read), 2 b: array<u32> (read),
//   3 y: array<u32> (read_write). A scalar operand is bound to a dummy buffer and read
//   from the uniforms instead.
// Uniforms: total, rank (<= 8) and shape of y; a_strides / b_strides in elements, 0 on
//   broadcast axes; op (0 add, 1 sub, 2 mul, 3 div, 4 pow, 5 maximum, 6 minimum, 7 eq,
//   8 ne, 9 lt, 10 le, 11 gt, 12 ge); int_domain (1: compute in i32, else f32);
//   a_kind / b_kind / out_kind (0 f32, 1 i32, 2 bool as u32); scalars (bit 0: a is the
//   scalar a_scalar / a_scalar_int, bit 1: b likewise).
// Workgroup: 64 threads, one element each, over a 2-D grid of workgroups.

struct Params {
  total: u32,
  rank: u32,
  op: u32,
  int_domain: u32,
  a_kind: u32,
  b_kind: u32,
  out_kind: u32,
  scalars: u32,
  a_scalar: f32,
  b_scalar: f32,
  a_scalar_int: i32,
  b_scalar_int: i32,
  shape: array<vec4<u32>, 2>,
  a_strides: array<vec4<u32>, 2>,
  b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<u32>;

fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn to_float(w: u32, kind: u32) -> f32 {
  switch kind {
    case 0u: { return bitcast<f32>(w); }
    case 1u: { return f32(bitcast<i32>(w)); }
    default: { return f32(w); }
  }
}

fn load_a_float(i: u32) -> f32 {
  if ((params.scalars & 1u) != 0u) {
    return params.a_scalar;
  }
  return to_float(a[i], params.a_kind);
}

fn load_b_float(i: u32) -> f32 {
  if ((params.scalars & 2u) != 0u) {
    return params.b_scalar;
  }
  return to_float(b[i], params.b_kind);
}

fn load_a_int(i: u32) -> i32 {
  if ((params.scalars & 1u) != 0u) {
    return params.a_scalar_int;
  }
  return bitcast<i32>(a[i]);
}

fn load_b_int(i: u32) -> i32 {
  if ((params.scalars & 2u) != 0u) {
    return params.b_scalar_int;
  }
  return bitcast<i32>(b[i]);
}

// numpy's power for negative bases with integral exponents, and x**0 == 1.
fn float_pow(base: f32, exponent: f32) -> f32 {
  if (exponent == 0.0) {
    return 1.0;
  }
  if (base < 0.0 && floor(exponent) == exponent) {
    let magnitude = pow(-base, exponent);
    return select(magnitude, -magnitude, (abs(exponent) % 2.0) == 1.0);
  }
  return pow(base, exponent);
}

fn int_pow(base: i32, exponent: i32) -> i32 {
  var result = 1;
  var factor = base;
  var e = exponent;
  loop {
    if (e <= 0) {
      break;
    }
    if ((e & 1) == 1) {
      result = result * factor;
    }
    factor = factor * factor;
    e = e >> 1u;
  }
  return result;
}

fn float_op(u: f32, v: f32) -> f32 {
  switch params.op {
    case 0u: { return u + v; }
    case 1u: { return u - v; }
    case 2u: { return u * v; }
    case 3u: { return u / v; }
    case 4u: { return float_pow(u, v); }
    case 5u: { return select(max(u, v), u + v, is_nan(u) || is_nan(v)); }
    case 6u: { return select(min(u, v), u + v, is_nan(u) || is_nan(v)); }
    case 7u: { return select(0.0, 1.0, u == v); }
    case 8u: { return select(0.0, 1.0, u != v); }
    case 9u: { return select(0.0, 1.0, u < v); }
    case 10u: { return select(0.0, 1.0, u <= v); }
    case 11u: { return select(0.0, 1.0, u > v); }
    default: { return select(0.0, 1.0, u >= v); }
  }
}

fn int_op(u: i32, v: i32) -> i32 {
  switch params.op {
    case 0u: { return u + v; }
    case 1u: { return u - v; }
    case 2u: { return u * v; }
    case 3u: { return select(0, u / v, v != 0); }
    case 4u: { return int_pow(u, v); }
    case 5u: { return max(u, v); }
    case 6u: { return min(u, v); }
    case 7u: { return select(0, 1, u == v); }
    case 8u: { return select(0, 1, u != v); }
    case 9u: { return select(0, 1, u < v); }
    case 10u: { return select(0, 1, u <= v); }
    case 11u: { return select(0, 1, u > v); }
    default: { return select(0, 1, u >= v); }
  }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  let i = (group.y * groups.x + group.x) * 64u + lane;
  if (i >= params.total) {
    return;
  }
  var rest = i;
  var offset_a = 0u;
  var offset_b = 0u;
  for (var d = i32(params.rank) - 1; d >= 0; d = d - 1) {
    let size = params.shape[d / 4][d % 4];
    let coord = rest % size;
    rest = rest / size;
    offset_a = offset_a + coord * params.a_strides[d / 4][d % 4];
    offset_b = offset_b + coord * params.b_strides[d / 4][d % 4];
  }
  if (params.int_domain == 1u) {
    let r = int_op(load_a_int(offset_a), load_b_int(offset_b));
    switch params.out_kind {
      case 0u: { y[i] = bitcast<u32>(f32(r)); }
      case 1u: { y[i] = bitcast<u32>(r); }
      default: { y[i] = select(0u, 1u, r != 0); }
    }
  } else {
    let r = float_op(load_a_float(offset_a), load_b_float(offset_b));
    switch params.out_kind {
      case 0u: { y[i] = bitcast<u32>(r); }
      case 1u: { y[i] = bitcast<u32>(i32(r)); }
      default: { y[i] = select(1u, 0u, (bitcast<u32>(r) & 0x7fffffffu) == 0u); }
    }
  }
}
