// CPU backend (cpu.js): elementwise ops (unary, binary, where, cast) as tight loops
// over typed arrays. Arithmetic runs in float64 and rounds once on the store into
// the float32 output, which for + - * / sqrt gives numpy's float32 result exactly.
// A Python float meeting a float32 tensor is rounded to float32 first, as numpy does
// (NEP 50). gelu uses the Abramowitz-Stegun 7.1.26 erf of numpy_backend._erf.
// Semantics: py/neuroscope/backends/numpy_backend.py.

import { deviceArrayType } from "../dtypes.js";
import { broadcastPlan, toDtype } from "./cpu_layout.js";

const SQRT_HALF = Math.SQRT1_2;
const GELU_NEW_C = Math.sqrt(2 / Math.PI);
const GELU_NEW_C3 = 0.044715 * GELU_NEW_C;

// exp(x) in float64 to ~1e-12 relative (well below float32's 6e-8), faster than
// V8's Math.exp: x = (32 k + j) ln2/32 + r with |r| <= ln2/64, so
// exp(x) = 2^k 2^(j/32) (1 + r + r^2/2 + r^3/6 + r^4/24), both powers from tables.
// Overflow gives Infinity, underflow 0, NaN NaN.
const EXP_SCALE = 32 / Math.LN2;
const EXP_STEP = Math.LN2 / 32;
const ROUND_MAGIC = 6755399441055744.0; // 1.5 * 2^52: adding it rounds to an integer
const POW2_BIAS = 1100;
const POW2 = Float64Array.from({ length: 2 * POW2_BIAS }, (_, i) => 2 ** (i - POW2_BIAS));
const POW2_FRACTION = Float64Array.from({ length: 32 }, (_, j) => 2 ** (j / 32));

export function fastExp(x) {
  if (x > 709.78) return Infinity;
  const c = x < -745.2 ? -745.2 : x;
  const steps = (c * EXP_SCALE + ROUND_MAGIC) - ROUND_MAGIC;
  const r = c - steps * EXP_STEP;
  const k = steps | 0;
  const p = 1 + r * (1 + r * (0.5 + r * (1 / 6 + r * (1 / 24))));
  return p * POW2_FRACTION[k & 31] * POW2[(k >> 5) + POW2_BIAS];
}

// tanh(x) to 3e-7 absolute: the [13/6] rational minimax approximation that Eigen
// and MLAS use for float32; exactly +-1 beyond |x| = 7.9 (where 1 - |tanh| < 3e-7),
// so gelu_new of a very negative x is 0, not a residue growing with |x|. No exp.
const TANH_SATURATION = 7.90531110763549805;

export function rationalTanh(x) {
  if (x > TANH_SATURATION) return 1;
  if (x < -TANH_SATURATION) return -1;
  const c = x;
  const c2 = c * c;
  let p = c2 * -2.76076847742355e-16 + 2.00018790482477e-13;
  p = c2 * p - 8.60467152213735e-11;
  p = c2 * p + 5.12229709037114e-08;
  p = c2 * p + 1.48572235717979e-05;
  p = c2 * p + 6.37261928875436e-04;
  p = c2 * p + 4.89352455891786e-03;
  let q = c2 * 1.19825839466702e-06 + 1.18534705686654e-04;
  q = c2 * q + 2.26843463243900e-03;
  q = c2 * q + 4.89352518554385e-03;
  return (c * p) / q;
}

export function erf(x) {
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
    + t * (-1.453152027 + t * 1.061405429))));
  const magnitude = 1 - poly * fastExp(-a * a);
  return x < 0 ? -magnitude : x > 0 ? magnitude : 0 * x;
}

// One small function per op, so each loop is optimised (and fastExp inlined) on its own.
const UNARY_KERNELS = {
  neg(x, out) { for (let i = 0; i < out.length; i++) out[i] = -x[i]; },
  exp(x, out) { for (let i = 0; i < out.length; i++) out[i] = fastExp(x[i]); },
  log(x, out) { for (let i = 0; i < out.length; i++) out[i] = Math.log(x[i]); },
  sqrt(x, out) { for (let i = 0; i < out.length; i++) out[i] = Math.sqrt(x[i]); },
  // numpy: 1 / sqrt(x) with the float32 sqrt rounded first.
  rsqrt(x, out) { for (let i = 0; i < out.length; i++) out[i] = 1 / Math.fround(Math.sqrt(x[i])); },
  tanh(x, out) { for (let i = 0; i < out.length; i++) out[i] = Math.tanh(x[i]); },
  abs(x, out) { for (let i = 0; i < out.length; i++) out[i] = Math.abs(x[i]); },
  square(x, out) { for (let i = 0; i < out.length; i++) out[i] = x[i] * x[i]; },
  relu(x, out) {
    for (let i = 0; i < out.length; i++) {
      const v = x[i];
      out[i] = v > 0 || v !== v ? v : 0;
    }
  },
  sigmoid(x, out) { for (let i = 0; i < out.length; i++) out[i] = 1 / (1 + fastExp(-x[i])); },
  silu(x, out) {
    for (let i = 0; i < out.length; i++) {
      const v = x[i];
      out[i] = v / (1 + fastExp(-v));
    }
  },
  gelu(x, out) {
    for (let i = 0; i < out.length; i++) {
      const v = x[i];
      out[i] = 0.5 * v * (1 + erf(v * SQRT_HALF));
    }
  },
  // 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), with a rational tanh:
  // numpy_backend._gelu_new computes the same function as x / (1 + exp(-2u)).
  gelu_new(x, out) {
    for (let i = 0; i < out.length; i++) {
      const v = x[i];
      out[i] = 0.5 * v * (1 + rationalTanh(v * (GELU_NEW_C + GELU_NEW_C3 * v * v)));
    }
  },
  isfinite(x, out) { for (let i = 0; i < out.length; i++) out[i] = Number.isFinite(x[i]) ? 1 : 0; },
};

// out[o + i] = a[ia + i*sa] (op) b[ib + i*sb] for i < n; sa, sb are 0 or 1.
const BINARY_KERNELS = {
  add(out, o, a, ia, sa, b, ib, sb, n) { for (const end = o + n; o < end; o++, ia += sa, ib += sb) out[o] = a[ia] + b[ib]; },
  sub(out, o, a, ia, sa, b, ib, sb, n) { for (const end = o + n; o < end; o++, ia += sa, ib += sb) out[o] = a[ia] - b[ib]; },
  mul(out, o, a, ia, sa, b, ib, sb, n) { for (const end = o + n; o < end; o++, ia += sa, ib += sb) out[o] = a[ia] * b[ib]; },
  div(out, o, a, ia, sa, b, ib, sb, n) { for (const end = o + n; o < end; o++, ia += sa, ib += sb) out[o] = a[ia] / b[ib]; },
  pow(out, o, a, ia, sa, b, ib, sb, n) { for (const end = o + n; o < end; o++, ia += sa, ib += sb) out[o] = Math.pow(a[ia], b[ib]); },
  maximum(out, o, a, ia, sa, b, ib, sb, n) { for (const end = o + n; o < end; o++, ia += sa, ib += sb) out[o] = Math.max(a[ia], b[ib]); },
  minimum(out, o, a, ia, sa, b, ib, sb, n) { for (const end = o + n; o < end; o++, ia += sa, ib += sb) out[o] = Math.min(a[ia], b[ib]); },
  eq(out, o, a, ia, sa, b, ib, sb, n) { for (const end = o + n; o < end; o++, ia += sa, ib += sb) out[o] = a[ia] === b[ib] ? 1 : 0; },
  ne(out, o, a, ia, sa, b, ib, sb, n) { for (const end = o + n; o < end; o++, ia += sa, ib += sb) out[o] = a[ia] !== b[ib] ? 1 : 0; },
  lt(out, o, a, ia, sa, b, ib, sb, n) { for (const end = o + n; o < end; o++, ia += sa, ib += sb) out[o] = a[ia] < b[ib] ? 1 : 0; },
  le(out, o, a, ia, sa, b, ib, sb, n) { for (const end = o + n; o < end; o++, ia += sa, ib += sb) out[o] = a[ia] <= b[ib] ? 1 : 0; },
  gt(out, o, a, ia, sa, b, ib, sb, n) { for (const end = o + n; o < end; o++, ia += sa, ib += sb) out[o] = a[ia] > b[ib] ? 1 : 0; },
  ge(out, o, a, ia, sa, b, ib, sb, n) { for (const end = o + n; o < end; o++, ia += sa, ib += sb) out[o] = a[ia] >= b[ib] ? 1 : 0; },
};

function whereRun(out, o, c, ic, sc, a, ia, sa, b, ib, sb, n) {
  for (const end = o + n; o < end; o++, ic += sc, ia += sa, ib += sb) out[o] = c[ic] !== 0 ? a[ia] : b[ib];
}

// A tensor argument as {data, shape}; a Python scalar as a one-element array, in
// float32 when it meets float32 tensors (numpy's weak scalars).
function operands(backend, values) {
  const tensors = values.map((v) => backend.input(v));
  const floatTensor = tensors.some((t) => t && t.data instanceof Float32Array);
  return values.map((value, i) => {
    if (tensors[i]) return tensors[i];
    const number = typeof value === "boolean" ? Number(value) : value;
    return { data: floatTensor ? Float32Array.of(number) : Float64Array.of(number), shape: [] };
  });
}

// Integer results of integer operands wrap like int32 (the device integer type);
// for bool results of mul/maximum/minimum the 0/1 values carry over unchanged.
function unary(backend, [out], { op, x }) {
  const kernel = UNARY_KERNELS[op];
  if (!kernel) throw new Error(`unknown unary op ${op}; expected one of ${Object.keys(UNARY_KERNELS).join(", ")}`);
  const input = backend.input(x);
  const data = backend.output(out);
  if (data instanceof Uint8Array && op !== "isfinite") {
    // A bool tensor through an arithmetic op: compute in float, then truthiness.
    const scratch = new Float64Array(data.length);
    kernel(input.data, scratch);
    for (let i = 0; i < data.length; i++) data[i] = scratch[i] !== 0 ? 1 : 0;
    return;
  }
  kernel(input.data, data);
}

function binary(backend, [out], { op, a, b }) {
  const kernel = BINARY_KERNELS[op];
  if (!kernel) throw new Error(`unknown binary op ${op}; expected one of ${Object.keys(BINARY_KERNELS).join(", ")}`);
  const [left, right] = operands(backend, [a, b]);
  const data = backend.output(out);
  const { runLength, runs, bases, steps } = broadcastPlan(out.shape, [left.shape, right.shape]);
  const [baseA, baseB] = bases;
  const [stepA, stepB] = steps;
  for (let run = 0; run < runs; run++) {
    kernel(data, run * runLength, left.data, baseA[run], stepA, right.data, baseB[run], stepB, runLength);
  }
}

function where(backend, [out], { cond, a, b }) {
  const [condition, left, right] = operands(backend, [cond, a, b]);
  const data = backend.output(out);
  const conditionData = condition.data instanceof Uint8Array ? condition.data : toDtype(condition.data, "bool");
  const { runLength, runs, bases, steps } = broadcastPlan(out.shape, [condition.shape, left.shape, right.shape]);
  for (let run = 0; run < runs; run++) {
    whereRun(data, run * runLength, conditionData, bases[0][run], steps[0],
      left.data, bases[1][run], steps[1], right.data, bases[2][run], steps[2], runLength);
  }
}

function cast(backend, [out], { x }) {
  const input = backend.input(x);
  if (input.data instanceof deviceArrayType(out.dtype)) {
    backend.define(out, input.data); // same device type (int64 <-> int32): shared
    return;
  }
  // Stores into Int32Array truncate toward zero, as numpy's astype does.
  backend.define(out, toDtype(input.data, out.dtype));
}

export const ELEMENTWISE_OPS = { unary, binary, where, cast };
