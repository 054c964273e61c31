// unary.wgsl: elementwise y = f(x) for the op table's UNARY_OPS (py/neuroscope/backends/ops.py), plus "identity" for cast.
//
// Bindings: 0 params (uniform Params), 1 x: array<u32> (read), 2 y: array<u32> (read_write).
// Uniforms: total (elements); op (0 neg, 1 exp, 2 log, 3 sqrt, 4 rsqrt, 5 tanh, 6 abs,
//   7 square, 8 relu, 9 sigmoid, 10 silu, 11 gelu, 12 gelu_new, 13 isfinite, 14 identity);
//   in_kind / out_kind (0 f32, 1 i32, 2 bool stored as u32 0/1).
// Workgroup: 64 threads, one element each, over a 2-D grid of workgroups (> 65535 groups).
// Integer inputs stay integer for neg/abs/square/relu/identity; other ops compute in f32.

struct Params {
  total: u32,
  op: u32,
  in_kind: u32,
  out_kind: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;

fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn is_finite(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

// Abramowitz & Stegun 7.1.26, as numpy_backend._erf.
fn erf(v: f32) -> f32 {
  let a = abs(v);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
      + t * (-1.453152027 + t * 1.061405429))));
  return sign(v) * (1.0 - poly * exp(-a * a));
}

// tanh(±15) is ±1 in f32; clamping keeps exp-based implementations away from inf/inf.
fn safe_tanh(v: f32) -> f32 {
  return tanh(clamp(v, -15.0, 15.0));
}

fn load_float(i: u32) -> f32 {
  let w = x[i];
  switch params.in_kind {
    case 0u: { return bitcast<f32>(w); }
    case 1u: { return f32(bitcast<i32>(w)); }
    default: { return f32(w); }
  }
}

fn float_op(v: f32) -> f32 {
  switch params.op {
    case 0u: { return -v; }
    case 1u: { return exp(v); }
    case 2u: { return log(v); }
    case 3u: { return sqrt(v); }
    case 4u: { return 1.0 / sqrt(v); }
    case 5u: { return safe_tanh(v); }
    case 6u: { return abs(v); }
    case 7u: { return v * v; }
    case 8u: { return select(0.0, v, v > 0.0 || is_nan(v)); }
    case 9u: { return 1.0 / (1.0 + exp(-v)); }
    case 10u: { return v / (1.0 + exp(-v)); }
    case 11u: { return 0.5 * v * (1.0 + erf(v / 1.4142135623730951)); }
    case 12u: {
      let inner = (v * v) * (0.044715 * v) + v;
      return (safe_tanh(inner * 0.7978845608028654) + 1.0) * v * 0.5;
    }
    case 13u: { return select(0.0, 1.0, is_finite(v)); }
    default: { return v; }
  }
}

fn int_op(v: i32) -> i32 {
  switch params.op {
    case 0u: { return -v; }
    case 6u: { return abs(v); }
    case 7u: { return v * v; }
    case 8u: { return max(v, 0); }
    default: { return v; }
  }
}

fn store_float(i: u32, v: f32) {
  switch params.out_kind {
    case 0u: { y[i] = bitcast<u32>(v); }
    case 1u: { y[i] = bitcast<u32>(i32(v)); }
    default: { y[i] = select(1u, 0u, (bitcast<u32>(v) & 0x7fffffffu) == 0u); }
  }
}

fn store_int(i: u32, v: i32) {
  switch params.out_kind {
    case 0u: { y[i] = bitcast<u32>(f32(v)); }
    case 1u: { y[i] = bitcast<u32>(v); }
    default: { y[i] = select(0u, 1u, v != 0); }
  }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  let i = (group.y * groups.x + group.x) * 64u + lane;
  if (i >= params.total) {
    return;
  }
  let integer_op = params.op == 0u || params.op == 6u || params.op == 7u || params.op == 8u ||
      params.op == 14u;
  if (params.in_kind != 0u && integer_op) {
    store_int(i, int_op(bitcast<i32>(x[i])));
  } else if (params.in_kind != 0u && params.op == 13u) {
    store_int(i, 1);
  } else {
    store_float(i, float_op(load_float(i)));
  }
}
