// WebGL2 ops that loop over an axis inside the kernel: matmul, reduce, argmax,
// cumsum, softmax, log_softmax, layer_norm, rms_norm, topk, attention.
// Row-wise ops take two passes where one would redo the row per element:
// shaders/row_stats.glsl writes per-row statistics, a second kernel applies them.

import {
  alignedShape, alignedStrides, broadcastStrides, normaliseAxis, sizeOf, splitAxis, stridesOf,
} from "./webgl_layout.js";

function matmul(backend, [out], { a, b, transpose_a: transposeA, transpose_b: transposeB }) {
  const left = backend.input(a);
  const right = backend.input(b);
  const [sa, sb] = [left.shape, right.shape];
  const rows = out.shape[out.shape.length - 2];
  const cols = out.shape[out.shape.length - 1];
  const inner = transposeA ? sa[sa.length - 2] : sa[sa.length - 1];
  const batchShape = out.shape.slice(0, -2);
  const leftStrides = stridesOf(sa).slice(0, -2);
  const rightStrides = stridesOf(sb).slice(0, -2);
  const output = backend.output(out);
  backend.gl.draw("matmul", {}, {
    u_a: left.record,
    u_b: right.record,
    u_rows: rows,
    u_cols: cols,
    u_inner: inner,
    u_batch_shape: alignedShape(batchShape),
    u_a_batch_strides: broadcastStrides(sa.slice(0, -2), batchShape, leftStrides),
    u_b_batch_strides: broadcastStrides(sb.slice(0, -2), batchShape, rightStrides),
    // a is [.., rows, inner] (or [.., inner, rows] transposed); b [.., inner, cols] (or [.., cols, inner]).
    u_a_row_stride: transposeA ? 1 : sa[sa.length - 1],
    u_a_inner_stride: transposeA ? sa[sa.length - 1] : 1,
    u_b_inner_stride: transposeB ? 1 : sb[sb.length - 1],
    u_b_col_stride: transposeB ? sb[sb.length - 1] : 1,
  }, [output.record]);
}

function reduce(backend, [out], { op, x, axes, keepdims }) {
  const input = backend.input(x);
  const shape = input.shape;
  const reduced = new Set(axes.map((axis) => normaliseAxis(axis, shape.length)));
  const strides = stridesOf(shape);
  const keepShape = shape.map((size, axis) => (reduced.has(axis) ? 1 : size));
  const reduceShape = shape.map((size, axis) => (reduced.has(axis) ? size : 1));
  // The reduced elements are consecutive when the reduced axes are the trailing
  // ones (after dropping size-1 axes).
  const sized = shape.map((size, axis) => [size, reduced.has(axis)]).filter(([size]) => size > 1);
  const firstReduced = sized.findIndex(([, isReduced]) => isReduced);
  const contiguous = firstReduced < 0 || sized.slice(firstReduced).every(([, isReduced]) => isReduced);
  const defines = { [`OP_${op.toUpperCase()}`]: 1 };
  if (contiguous) defines.CONTIGUOUS = 1;
  const output = backend.output(out);
  backend.gl.draw("reduce", defines, {
    u_x: input.record,
    u_keep_shape: alignedShape(keepShape),
    u_keep_strides: alignedStrides(strides.map((s, axis) => (reduced.has(axis) ? 0 : s))),
    u_reduce_shape: alignedShape(reduceShape),
    u_reduce_strides: alignedStrides(strides.map((s, axis) => (reduced.has(axis) ? s : 0))),
    u_reduce_size: sizeOf(reduceShape),
  }, [output.record]);
}

// Uniforms viewing `shape` as [outer, length, inner] around `axis`.
function rows(shape, axis) {
  const { outer, length, inner } = splitAxis(shape, normaliseAxis(axis, shape.length));
  return { count: outer * inner, uniforms: { u_length: length, u_inner: inner } };
}

function argmax(backend, [out], { x, axis }) {
  const input = backend.input(x);
  const output = backend.output(out);
  backend.gl.draw("argmax", {}, { u_x: input.record, ...rows(input.shape, axis).uniforms }, [output.record]);
}

function cumsum(backend, [out], { x, axis }) {
  const input = backend.input(x);
  const output = backend.output(out);
  backend.gl.draw("cumsum", {}, { u_x: input.record, ...rows(input.shape, axis).uniforms }, [output.record]);
}

// Per-row statistics of `record` (shape viewed around axis) into two scratch
// textures; the caller releases them.
function rowStats(backend, mode, record, shape, axis, eps = 0) {
  const { count, uniforms } = rows(shape, axis);
  const first = backend.scratch(count);
  const second = backend.scratch(count);
  backend.gl.draw("row_stats", { [mode]: 1 }, { u_x: record, u_eps: eps, ...uniforms }, [first, second]);
  return [first, second, uniforms];
}

function softmaxInto(backend, record, shape, axis, outputRecord, log = false) {
  const [peak, total, uniforms] = rowStats(backend, "SOFTMAX", record, shape, axis);
  backend.gl.draw("softmax", log ? { LOG: 1 } : {}, {
    u_x: record, u_peak: peak, u_total: total, ...uniforms,
  }, [outputRecord]);
  backend.gl.release(peak);
  backend.gl.release(total);
}

function softmax(backend, [out], { x, axis }) {
  const input = backend.input(x);
  softmaxInto(backend, input.record, input.shape, axis, backend.output(out).record);
}

function logSoftmax(backend, [out], { x, axis }) {
  const input = backend.input(x);
  softmaxInto(backend, input.record, input.shape, axis, backend.output(out).record, true);
}

function normalise(backend, out, mode, x, weight, bias, eps) {
  const input = backend.input(x);
  const last = input.shape.length - 1;
  const [center, scale, uniforms] = rowStats(backend, mode, input.record, input.shape, last, eps);
  const defines = { [mode]: 1 };
  const values = { u_x: input.record, u_center: center, u_scale: scale, u_length: uniforms.u_length };
  const weightTensor = backend.input(weight);
  const biasTensor = backend.input(bias);
  if (weightTensor) { defines.HAS_WEIGHT = 1; values.u_weight = weightTensor.record; }
  if (biasTensor) { defines.HAS_BIAS = 1; values.u_bias = biasTensor.record; }
  backend.gl.draw("norm", defines, values, [backend.output(out).record]);
  backend.gl.release(center);
  backend.gl.release(scale);
}

function layerNorm(backend, [out], { x, weight, bias, eps }) {
  normalise(backend, out, "LAYER_NORM", x, weight, bias, eps);
}

function rmsNorm(backend, [out], { x, weight, eps }) {
  normalise(backend, out, "RMS_NORM", x, weight, null, eps);
}

function topk(backend, [valuesOut, indicesOut], { x, k, axis }) {
  const input = backend.input(x);
  const values = backend.output(valuesOut);
  const indices = backend.output(indicesOut);
  backend.gl.draw("topk", {}, {
    u_x: input.record, u_k: k, ...rows(input.shape, axis).uniforms,
  }, [values.record, indices.record]);
}

// scores (masked, scaled) -> softmax over keys -> pattern; z = pattern . v.
function attention(backend, outs, { q, k, v, mask, scale, return_pattern: returnPattern }) {
  const [query, key, value] = [q, k, v].map((arg) => backend.input(arg));
  const maskTensor = backend.input(mask);
  const [batch, queries, heads] = query.shape;
  const [, keys, kvHeads, depth] = key.shape;
  if (heads % kvHeads !== 0) {
    throw new Error(`attention: ${heads} query heads are not a multiple of ${kvHeads} key/value heads`);
  }
  const patternShape = [batch, heads, queries, keys];
  const common = { u_queries: queries, u_keys: keys, u_heads: heads, u_kv_heads: kvHeads };
  const scores = backend.scratch(sizeOf(patternShape));
  const defines = {};
  const values = { ...common, u_q: query.record, u_k: key.record, u_depth: depth, u_scale: scale };
  if (maskTensor) {
    defines.HAS_MASK = 1;
    values.u_mask = maskTensor.record;
    values.u_mask_batch_stride = maskTensor.shape[0] === 1 ? 0 : queries * keys;
  }
  backend.gl.draw("attention_scores", defines, values, [scores]);
  const pattern = returnPattern && outs[1] ? backend.output(outs[1]).record : backend.scratch(scores.size);
  softmaxInto(backend, scores, patternShape, 3, pattern);
  backend.gl.release(scores);
  backend.gl.draw("attention_values", {}, {
    ...common, u_pattern: pattern, u_v: value.record, u_depth: value.shape[3],
  }, [backend.output(outs[0]).record]);
  if (!(returnPattern && outs[1])) backend.gl.release(pattern);
}

export const REDUCTION_OPS = {
  matmul, reduce, argmax, cumsum, softmax, log_softmax: logSoftmax, layer_norm: layerNorm,
  rms_norm: rmsNorm, topk, attention,
};
