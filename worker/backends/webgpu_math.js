// WebGPU ops that compute along axes: matmul, reductions, argmax, cumsum, softmax,
// log_softmax, layer/RMS norm, top-k, rotary embedding and attention. Row kernels
// work on a contiguous [rows, len] view; an axis that is not last is moved there by a
// strided copy first (and back after, for ops that keep the axis).
// Semantics are those of py/neuroscope/backends/numpy_backend.py.

import { Uniforms } from "./webgpu_device.js";
import { asKind, convertInto, copyStrided, opCode, permuteInto } from "./webgpu_layout.js";
import { FLOAT, broadcastStrides, contiguousStrides, normalizeAxis, product } from "./webgpu_shapes.js";

// reduce.wgsl's op numbers (its header), one per sub-op of the op table's reduce.
export const REDUCE_CODES = { sum: 0, mean: 1, max: 2, min: 3, var: 4 };
const SOFTMAX = 0;
const LOG_SOFTMAX = 1;
const MASKED = 2;
const CAUSAL = 3;
const TILE = 16;
const MAX_BATCH = 65535;

// -- matmul -------------------------------------------------------------------------

// One strided, batched product y = alpha * A @ B (see matmul.wgsl's header).
// `batch` = {shape, a, b, y}: up to 4 batch axes with each operand's strides.
function matmulKernel(backend, a, b, y, { m, n, k, a_row, a_col, b_row, b_col, y_row, y_col, alpha = 1, batch }) {
  const count = product(batch.shape);
  if (batch.shape.length > 4) throw new Error(`matmul: ${batch.shape.length} batch axes; at most 4 are supported`);
  if (count > MAX_BATCH) throw new Error(`matmul: ${count} batches exceed the ${MAX_BATCH} dispatch limit`);
  const uniforms = new Uniforms().u32(m, n, k, batch.shape.length, a_row, a_col, b_row, b_col, y_row, y_col)
    .f32(alpha).u32(0).vector(batch.shape, "u", 4).vector(batch.a, "u", 4).vector(batch.b, "u", 4)
    .vector(batch.y, "u", 4);
  backend.gpu.dispatch("matmul", uniforms, [a.buffer, b.buffer, y.buffer],
    [Math.ceil(n / TILE), Math.ceil(m / TILE), count]);
}

function matmul(backend, [out], { a: aArg, b: bArg, transpose_a: transposeA, transpose_b: transposeB }) {
  const [aIn, bIn] = [backend.input(aArg), backend.input(bArg)];
  if (aIn.shape.length < 2 || bIn.shape.length < 2) {
    throw new Error(`matmul needs 2-d operands, got [${aIn.shape}] and [${bIn.shape}]`);
  }
  const a = asKind(backend, aIn, "float32");
  const b = asKind(backend, bIn, "float32");
  const y = backend.output(out);
  const target = y.kind === FLOAT ? y : backend.temp(out.shape, "float32");
  const [ra, ca] = a.shape.slice(-2);
  const cb = b.shape.at(-1);
  const batchShape = out.shape.slice(0, -2);
  const [m, n] = out.shape.slice(-2);
  const k = transposeA ? ra : ca;
  const batchStrides = (shape) => broadcastStrides(shape.slice(0, -2), batchShape)
    .map((s) => s * shape.at(-1) * shape.at(-2));
  matmulKernel(backend, a, b, target, {
    m, n, k,
    a_row: transposeA ? 1 : ca, a_col: transposeA ? ca : 1,
    b_row: transposeB ? 1 : cb, b_col: transposeB ? cb : 1,
    y_row: n, y_col: 1,
    batch: { shape: batchShape, a: batchStrides(a.shape), b: batchStrides(b.shape),
      y: contiguousStrides(batchShape).map((s) => s * m * n) },
  });
  if (target !== y) {
    convertInto(backend, target, y);
    backend.drop(target);
  }
  if (a !== aIn) backend.drop(a);
  if (b !== bIn) backend.drop(b);
}

// -- row kernels --------------------------------------------------------------------

// x with `axis` moved last (x itself when it already is), and the permutation used.
function axisLast(backend, x, axis) {
  const ndim = x.shape.length;
  if (axis === ndim - 1) return x;
  const axes = [...Array(ndim).keys()].filter((d) => d !== axis).concat([axis]);
  return permuteInto(backend, x, axes);
}

// Copy `moved` (laid out with `axis` last) into `y` (the original axis order).
function axisBack(backend, moved, y, axis) {
  const own = contiguousStrides(moved.shape);
  const last = own.length - 1;
  const strides = y.shape.map((_, d) => (d === axis ? own[last] : own[d < axis ? d : d - 1]));
  copyStrided(backend, moved, y, y.shape, strides, contiguousStrides(y.shape));
}

// Run `body(xLast, yLast)` on the axis-last layout, for ops whose output keeps the
// input's shape except along the axis (softmax, cumsum, top-k).
function alongAxis(backend, x, ys, axis, body) {
  const ndim = x.shape.length;
  const xLast = axisLast(backend, x, axis);
  if (axis === ndim - 1) {
    body(xLast, ys);
    return;
  }
  const movedShape = (y) => [...y.shape.filter((_, d) => d !== axis), y.shape[axis]];
  const temps = ys.map((y) => backend.temp(movedShape(y), y.dtype));
  body(xLast, temps);
  ys.forEach((y, i) => axisBack(backend, temps[i], y, axis));
  temps.forEach((t) => backend.drop(t));
  backend.drop(xLast);
}

function rowsOf(x) {
  const len = x.shape.length ? x.shape.at(-1) : 1;
  return { len, rows: len ? x.size / len : 0 };
}

function reduce(backend, [out], { op, x: xArg, axes: axesArg }) {
  const x = backend.input(xArg);
  const ndim = x.shape.length;
  const axes = [...new Set(axesArg.map((a) => normalizeAxis(a, ndim)))].sort((p, q) => p - q);
  const kept = [...Array(ndim).keys()].filter((d) => !axes.includes(d));
  const order = kept.concat(axes);
  const inOrder = order.every((d, i) => d === i);
  const source = inOrder ? x : permuteInto(backend, x, order);
  const y = backend.output(out);
  const len = product(axes.map((d) => x.shape[d]));
  const rows = product(kept.map((d) => x.shape[d]));
  const index = opCode(REDUCE_CODES, op, "reduce");
  const uniforms = new Uniforms().u32(rows, len, index, x.kind, y.kind, 0, 0, 0);
  backend.gpu.dispatch("reduce", uniforms, [source.buffer, y.buffer], backend.gpu.grid(rows));
  if (source !== x) backend.drop(source);
}

function argmax(backend, [out], { x: xArg, axis: axisArg }) {
  const x = backend.input(xArg);
  const source = axisLast(backend, x, normalizeAxis(axisArg, x.shape.length));
  const y = backend.output(out);
  const { rows, len } = rowsOf(source);
  const uniforms = new Uniforms().u32(rows, len, x.kind, 0);
  backend.gpu.dispatch("argmax", uniforms, [source.buffer, y.buffer], backend.gpu.grid(rows));
  if (source !== x) backend.drop(source);
}

function cumsum(backend, [out], { x: xArg, axis: axisArg }) {
  const x = backend.input(xArg);
  const y = backend.output(out);
  alongAxis(backend, x, [y], normalizeAxis(axisArg, x.shape.length), (source, [target]) => {
    const { rows, len } = rowsOf(source);
    const uniforms = new Uniforms().u32(rows, len, source.kind, target.kind);
    backend.gpu.dispatch("cumsum", uniforms, [source.buffer, target.buffer], backend.gpu.elementGrid(rows));
  });
}

function softmaxKernel(backend, x, y, mode, { rows, len, qLen = 1, heads = 1, mask = null, maskStrides = [0, 0] }) {
  const uniforms = new Uniforms().u32(rows, len, mode, qLen, heads, maskStrides[0], maskStrides[1], 0);
  backend.gpu.dispatch("softmax", uniforms, [x.buffer, mask?.buffer ?? backend.gpu.dummy, y.buffer],
    backend.gpu.grid(rows));
}

function softmaxOp(mode) {
  return (backend, [out], { x: xArg, axis: axisArg }) => {
    const x = asKind(backend, backend.input(xArg), "float32");
    const y = backend.output(out);
    alongAxis(backend, x, [y], normalizeAxis(axisArg, x.shape.length), (source, [target]) => {
      softmaxKernel(backend, source, target, mode, rowsOf(source));
    });
    if (x !== backend.input(xArg)) backend.drop(x);
  };
}

function normKernel(backend, out, xArg, weightArg, biasArg, eps, mode) {
  const x = backend.input(xArg);
  const weight = backend.input(weightArg);
  const bias = backend.input(biasArg);
  const y = backend.output(out);
  const { rows, len } = rowsOf(x);
  const uniforms = new Uniforms().u32(rows, len, mode, weight ? 1 : 0, bias ? 1 : 0).f32(eps).u32(0, 0);
  const dummy = backend.gpu.dummy;
  backend.gpu.dispatch("layer_norm", uniforms,
    [x.buffer, weight?.buffer ?? dummy, bias?.buffer ?? dummy, y.buffer], backend.gpu.grid(rows));
}

function layerNorm(backend, [out], { x: xArg, weight: weightArg, bias: biasArg, eps }) {
  normKernel(backend, out, xArg, weightArg, biasArg, eps, 0);
}

function rmsNorm(backend, [out], { x: xArg, weight: weightArg, eps }) {
  normKernel(backend, out, xArg, weightArg, null, eps, 1);
}

function topk(backend, [valuesOut, indicesOut], { x: xArg, k, axis: axisArg }) {
  const x = backend.input(xArg);
  const values = backend.output(valuesOut);
  const indices = backend.output(indicesOut);
  alongAxis(backend, x, [values, indices], normalizeAxis(axisArg, x.shape.length), (source, [v, i]) => {
    const { rows, len } = rowsOf(source);
    const uniforms = new Uniforms().u32(rows, len, k, source.kind);
    backend.gpu.dispatch("topk", uniforms, [source.buffer, v.buffer, i.buffer], backend.gpu.elementGrid(rows));
  });
}

// -- fused transformer ops ----------------------------------------------------------

function rotary(backend, [out], { x: xArg, cos: cosArg, sin: sinArg, rotary_dim: rotaryDim }) {
  const x = backend.input(xArg);
  const cos = backend.input(cosArg);
  const sin = backend.input(sinArg);
  const y = backend.output(out);
  const [, positions, heads, dHead] = x.shape;
  const [tableBatch, tablePositions, width] = cos.shape;
  const uniforms = new Uniforms().u32(y.size, dHead, rotaryDim, heads, positions,
    tableBatch === 1 ? 0 : tablePositions * width, tablePositions === 1 ? 0 : width, 0);
  backend.gpu.dispatch("rotary", uniforms, [x.buffer, cos.buffer, sin.buffer, y.buffer],
    backend.gpu.elementGrid(y.size));
}

// q [b, p, h, e], k/v [b, k, g, e]: scores = scale * q k^T per head (a batched strided
// matmul whose batch axes are [b, g, h/g], so grouped heads read their shared k/v),
// the masked safe softmax, then z = pattern v written straight into [b, p, h, e].
function attention(backend, [zOut, patternOut], { q: qArg, k: kArg, v: vArg, mask: maskArg, scale }) {
  const q = backend.input(qArg);
  const k = backend.input(kArg);
  const v = backend.input(vArg);
  const mask = backend.input(maskArg);
  const [batch, qLen, heads, dHead] = q.shape;
  const [, kLen, groups] = k.shape;
  const dValue = v.shape[3];
  if (heads % groups) throw new Error(`attention: ${heads} query heads are not a multiple of ${groups} key/value heads`);
  const repeat = heads / groups;
  const z = backend.output(zOut);
  const pattern = patternOut ? backend.output(patternOut) : backend.temp([batch, heads, qLen, kLen], "float32");
  const scores = backend.temp([batch, heads, qLen, kLen], "float32");
  const scoreBatch = [heads * qLen * kLen, repeat * qLen * kLen, qLen * kLen];
  matmulKernel(backend, q, k, scores, {
    m: qLen, n: kLen, k: dHead, alpha: scale,
    a_row: heads * dHead, a_col: 1, b_row: 1, b_col: groups * dHead, y_row: kLen, y_col: 1,
    batch: { shape: [batch, groups, repeat], a: [qLen * heads * dHead, repeat * dHead, dHead],
      b: [kLen * groups * dHead, dHead, 0], y: scoreBatch },
  });
  let maskStrides = [0, 0];
  if (mask) {
    const [maskBatch, maskRows, maskCols] = mask.shape;
    maskStrides = [maskBatch === 1 ? 0 : maskRows * maskCols, maskRows === 1 ? 0 : maskCols];
  }
  softmaxKernel(backend, scores, pattern, mask ? MASKED : CAUSAL,
    { rows: batch * heads * qLen, len: kLen, qLen, heads, mask, maskStrides });
  matmulKernel(backend, pattern, v, z, {
    m: qLen, n: dValue, k: kLen,
    a_row: kLen, a_col: 1, b_row: groups * dValue, b_col: 1, y_row: heads * dValue, y_col: 1,
    batch: { shape: [batch, groups, repeat], a: scoreBatch,
      b: [kLen * groups * dValue, dValue, 0], y: [qLen * heads * dValue, repeat * dValue, dValue] },
  });
  backend.drop(scores);
  if (!patternOut) backend.drop(pattern);
}

export const MATH_OPS = {
  matmul, reduce, argmax, cumsum, softmax: softmaxOp(SOFTMAX), log_softmax: softmaxOp(LOG_SOFTMAX),
  layer_norm: layerNorm, rms_norm: rmsNorm, topk, rotary, attention,
};
