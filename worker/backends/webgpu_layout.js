// WebGPU ops that are elementwise or move data: unary, binary, where, cast, the
// allocators, reshape, permute, broadcast_to, concat, gather, take_along, slice and
// set_slice. Each function is (backend, outs, params) as backend.run calls it;
// semantics are those of py/neuroscope/backends/numpy_backend.py.

import { Uniforms } from "./webgpu_device.js";
import {
  BOOL, FLOAT, INT, broadcastStrides, checkRank, contiguousStrides, kindOf,
  normalizeAxis, product, scalarWord,
} from "./webgpu_shapes.js";

// The op numbers of unary.wgsl and binary.wgsl (their headers): the shaders' own
// numbering, one per sub-op of the op table's unary / binary (tests/test_op_table.py).
export const UNARY_CODES = {
  neg: 0, exp: 1, log: 2, sqrt: 3, rsqrt: 4, tanh: 5, abs: 6, square: 7, relu: 8, sigmoid: 9,
  silu: 10, gelu: 11, gelu_new: 12, isfinite: 13,
};
const IDENTITY = 14; // unary.wgsl's conversion-only op, used by cast
export const BINARY_CODES = {
  add: 0, sub: 1, mul: 2, div: 3, pow: 4, maximum: 5, minimum: 6, eq: 7, ne: 8, lt: 9, le: 10,
  gt: 11, ge: 12,
};

export function opCode(codes, name, what) {
  if (!Object.hasOwn(codes, name)) {
    throw new Error(`unknown ${what} op ${name}; expected one of ${Object.keys(codes).join(", ")}`);
  }
  return codes[name];
}

// -- helpers shared with webgpu_math.js -----------------------------------------

// dst[dstOffset + c.dstStrides] = src[srcOffset + c.srcStrides] over `shape`.
export function copyStrided(backend, src, dst, shape, srcStrides, dstStrides, srcOffset = 0, dstOffset = 0) {
  checkRank(shape, "copy");
  const total = product(shape);
  if (!total) return;
  const uniforms = new Uniforms().u32(total, shape.length, srcOffset, dstOffset)
    .vector(shape).vector(srcStrides).vector(dstStrides);
  backend.gpu.dispatch("copy", uniforms, [src.buffer, dst.buffer], backend.gpu.elementGrid(total));
}

// x with its axes reordered (numpy transpose), into `dst` or a new scratch tensor.
export function permuteInto(backend, x, axes, dst = null) {
  const shape = axes.map((a) => x.shape[a]);
  const target = dst ?? backend.temp(shape, x.dtype);
  const strides = contiguousStrides(x.shape);
  copyStrided(backend, x, target, shape, axes.map((a) => strides[a]), contiguousStrides(shape));
  return target;
}

// Elementwise conversion of x into dst (dtypes from the tensors).
export function convertInto(backend, x, dst) {
  const uniforms = new Uniforms().u32(x.size, IDENTITY, x.kind, dst.kind);
  backend.gpu.dispatch("unary", uniforms, [x.buffer, dst.buffer], backend.gpu.elementGrid(x.size));
}

// x itself when it already has `dtype`'s kind, else a converted scratch copy.
export function asKind(backend, x, dtype) {
  if (x.kind === kindOf(dtype)) return x;
  const converted = backend.temp(x.shape, dtype);
  convertInto(backend, x, converted);
  return converted;
}

// -- elementwise ------------------------------------------------------------------

function unary(backend, [out], { op, x: xArg }) {
  const x = backend.input(xArg);
  const y = backend.output(out);
  const uniforms = new Uniforms().u32(x.size, opCode(UNARY_CODES, op, "unary"), x.kind, y.kind);
  backend.gpu.dispatch("unary", uniforms, [x.buffer, y.buffer], backend.gpu.elementGrid(y.size));
}

function cast(backend, [out], { x: xArg }) {
  const x = backend.input(xArg);
  if (x.kind === kindOf(out.dtype)) {
    backend.alias(out, x);
    return;
  }
  convertInto(backend, x, backend.output(out));
}

// Operand description for binary/where: a tensor (bound, strided) or a scalar (uniform).
function operand(backend, arg, outShape) {
  const tensor = backend.input(arg);
  if (tensor) return { tensor, kind: tensor.kind, strides: broadcastStrides(tensor.shape, outShape) };
  if (arg === null || arg === undefined) throw new Error("a scalar operand is missing (got null)");
  const value = Number(arg);
  return { value, kind: Number.isInteger(value) || typeof arg === "boolean" ? INT : FLOAT, strides: [] };
}

function scalarInts(operands, outKind) {
  return operands.map((o) => ("value" in o ? (outKind === BOOL ? (o.value !== 0 ? 1 : 0) : Math.trunc(o.value) || 0) : 0));
}

function binary(backend, [out], { op, a: aArg, b: bArg }) {
  checkRank(out.shape, "binary");
  const operands = [operand(backend, aArg, out.shape), operand(backend, bArg, out.shape)];
  const y = backend.output(out);
  const floatDomain = y.kind === FLOAT || operands.some((o) => o.kind === FLOAT);
  const [a, b] = operands;
  const scalars = ("value" in a ? 1 : 0) | ("value" in b ? 2 : 0);
  const uniforms = new Uniforms()
    .u32(y.size, out.shape.length, opCode(BINARY_CODES, op, "binary"), floatDomain ? 0 : 1)
    .u32(a.tensor?.kind ?? 0, b.tensor?.kind ?? 0, y.kind, scalars)
    .f32(a.value ?? 0, b.value ?? 0).i32(...scalarInts(operands, INT))
    .vector(out.shape).vector(a.strides).vector(b.strides);
  const dummy = backend.gpu.dummy;
  backend.gpu.dispatch("binary", uniforms, [a.tensor?.buffer ?? dummy, b.tensor?.buffer ?? dummy, y.buffer],
    backend.gpu.elementGrid(y.size));
}

function where(backend, [out], { cond: condArg, a: aArg, b: bArg }) {
  checkRank(out.shape, "where");
  const cond = operand(backend, condArg, out.shape);
  if (!cond.tensor) throw new Error("where needs a condition tensor");
  const a = operand(backend, aArg, out.shape);
  const b = operand(backend, bArg, out.shape);
  const y = backend.output(out);
  const scalars = ("value" in a ? 1 : 0) | ("value" in b ? 2 : 0);
  const uniforms = new Uniforms()
    .u32(y.size, out.shape.length, cond.kind, y.kind, a.tensor?.kind ?? 0, b.tensor?.kind ?? 0, scalars, 0)
    .f32(a.value ?? 0, b.value ?? 0).i32(...scalarInts([a, b], y.kind))
    .vector(out.shape).vector(cond.strides).vector(a.strides).vector(b.strides);
  const dummy = backend.gpu.dummy;
  backend.gpu.dispatch("where", uniforms,
    [cond.tensor.buffer, a.tensor?.buffer ?? dummy, b.tensor?.buffer ?? dummy, y.buffer],
    backend.gpu.elementGrid(y.size));
}

// -- allocators -------------------------------------------------------------------

// An allocator's output, written from the host at creation (no kernel needed).
function hostTensor(backend, out, fill) {
  const kind = kindOf(out.dtype);
  const values = new (kind === FLOAT ? Float32Array : kind === INT ? Int32Array : Uint8Array)(product(out.shape));
  fill(values, kind);
  backend.upload(out.id, out.shape, out.dtype, values);
}

function full(backend, [out], { value: fill }) {
  const value = Number(fill);
  hostTensor(backend, out, (values, kind) => values.fill(kind === FLOAT ? value : kind === INT
    ? Math.trunc(value) || 0 : value !== 0 ? 1 : 0));
}

function arange(backend, [out], { start }) {
  hostTensor(backend, out, (values) => {
    for (let i = 0; i < values.length; i++) values[i] = start + i;
  });
}

// -- layout -------------------------------------------------------------------------

function reshape(backend, [out], { x: xArg }) {
  backend.alias(out, backend.input(xArg));
}

function permute(backend, [out], { x: xArg, axes }) {
  const x = backend.input(xArg);
  permuteInto(backend, x, axes.map((a) => normalizeAxis(a, x.shape.length)), backend.output(out));
}

function broadcastTo(backend, [out], { x: xArg }) {
  checkRank(out.shape, "broadcast_to");
  const x = backend.input(xArg);
  const y = backend.output(out);
  copyStrided(backend, x, y, out.shape, broadcastStrides(x.shape, out.shape), contiguousStrides(out.shape));
}

function concat(backend, [out], { xs: parts, axis: axisArg }) {
  const y = backend.output(out);
  const axis = normalizeAxis(axisArg, out.shape.length);
  const outStrides = contiguousStrides(out.shape);
  let at = 0;
  for (const part of parts) {
    const x = backend.input(part);
    const source = x.kind === y.kind ? x : asKind(backend, x, out.dtype);
    copyStrided(backend, source, y, x.shape, contiguousStrides(x.shape), outStrides, 0, at * outStrides[axis]);
    if (source !== x) backend.drop(source);
    at += x.shape[axis];
  }
}

function gatherKernel(backend, x, indices, y, xStrides, idxStrides, axis) {
  checkRank(y.shape, "gather");
  const uniforms = new Uniforms().u32(y.size, y.shape.length, x.shape[axis], contiguousStrides(x.shape)[axis])
    .vector(y.shape).vector(xStrides).vector(idxStrides);
  backend.gpu.dispatch("gather", uniforms, [x.buffer, indices.buffer, y.buffer], backend.gpu.elementGrid(y.size));
}

function gather(backend, [out], { x: xArg, indices: indicesArg, axis: axisArg }) {
  const x = backend.input(xArg);
  const indices = backend.input(indicesArg);
  const axis = normalizeAxis(axisArg, x.shape.length);
  const own = contiguousStrides(x.shape);
  const idx = contiguousStrides(indices.shape);
  const before = own.slice(0, axis);
  const after = own.slice(axis + 1);
  const xStrides = [...before, ...indices.shape.map(() => 0), ...after];
  const idxStrides = [...before.map(() => 0), ...idx, ...after.map(() => 0)];
  gatherKernel(backend, x, indices, backend.output(out), xStrides, idxStrides, axis);
}

function takeAlong(backend, [out], { x: xArg, indices: indicesArg, axis: axisArg }) {
  const x = backend.input(xArg);
  const indices = backend.input(indicesArg);
  const axis = normalizeAxis(axisArg, x.shape.length);
  const own = contiguousStrides(x.shape);
  const xStrides = x.shape.map((size, d) => (d === axis || size === 1 ? 0 : own[d]));
  gatherKernel(backend, x, indices, backend.output(out), xStrides, broadcastStrides(indices.shape, out.shape), axis);
}

// Keys arrive normalised by Python's slice.indices; clamping again the way it does is a
// no-op for those and keeps a raw out-of-range bound from reading past the axis. A
// negative step keeps -1 as "before index 0", as slice.indices writes it.
function clampRange([start, stop, step], size) {
  if (step > 0) {
    const clamp = (v) => Math.min(Math.max(v < 0 ? v + size : v, 0), size);
    return [clamp(start), clamp(stop), step];
  }
  const clamp = (v) => Math.min(Math.max(v, -1), size - 1);
  return [clamp(start), clamp(stop), step];
}

// A slice key (bridge.js) as per-axis maps over the selected region.
function parseKey(shape, key) {
  const strides = contiguousStrides(shape);
  const dims = [];
  const table = [];
  let base = 0;
  key.forEach((item, d) => {
    if (typeof item === "number") {
      base += (item < 0 ? item + shape[d] : item) * strides[d];
    } else if ("s" in item) {
      const [start, stop, step] = clampRange(item.s, shape[d]);
      const size = step > 0 ? Math.max(0, Math.ceil((stop - start) / step)) : Math.max(0, Math.ceil((start - stop) / -step));
      dims.push({ size, mode: 0, start, step, stride: strides[d] });
    } else {
      dims.push({ size: item.i.length, mode: 1, start: table.length, step: 0, stride: strides[d] });
      for (const index of item.i) table.push(index < 0 ? index + shape[d] : index);
    }
  });
  for (let d = key.length; d < shape.length; d++) dims.push({ size: shape[d], mode: 0, start: 0, step: 1, stride: strides[d] });
  return { base, dims, table, shape: dims.map((dim) => dim.size) };
}

function sliceKernel(backend, parsed, src, dst, { scatter, scalar = null, valueStrides = [] }) {
  checkRank(parsed.shape, "slice");
  const total = product(parsed.shape);
  if (!total) return;
  const { dims } = parsed;
  const uniforms = new Uniforms()
    .u32(total, dims.length, parsed.base, scatter ? 1 : 0, scalar === null ? 0 : 1, scalar ?? 0, 0, 0)
    .vector(parsed.shape).vector(dims.map((d) => d.mode))
    .vector(dims.map((d) => d.start), "i").vector(dims.map((d) => d.step), "i")
    .vector(dims.map((d) => d.stride)).vector(valueStrides);
  const table = parsed.table.length ? backend.gpu.transientStorage(Int32Array.from(parsed.table)) : backend.gpu.dummy;
  backend.gpu.dispatch("slice", uniforms, [src?.buffer ?? backend.gpu.dummy, table, dst.buffer],
    backend.gpu.elementGrid(total));
}

function slice(backend, [out], { x: xArg, key }) {
  const x = backend.input(xArg);
  const parsed = parseKey(x.shape, key);
  if (product(parsed.shape) !== product(out.shape)) {
    throw new Error(`slice: key ${JSON.stringify(key)} selects [${parsed.shape}] of [${x.shape}], but the ` +
      `output was allocated as [${out.shape}]; ranges must be normalised with slice.indices`);
  }
  sliceKernel(backend, parsed, x, backend.output(out), { scatter: false });
}

function setSlice(backend, [out], { x: xArg, key, value: valueArg }) {
  const x = backend.input(xArg);
  const y = backend.output(out);
  backend.gpu.copyBuffer(x.buffer, y.buffer, x.size * 4);
  const parsed = parseKey(x.shape, key);
  const value = backend.input(valueArg);
  if (!value) {
    sliceKernel(backend, parsed, null, y, { scatter: true, scalar: scalarWord(valueArg, y.kind) });
    return;
  }
  const source = asKind(backend, value, out.dtype);
  sliceKernel(backend, parsed, source, y, { scatter: true, valueStrides: broadcastStrides(value.shape, parsed.shape) });
  if (source !== value) backend.drop(source);
}

export const LAYOUT_OPS = {
  unary, cast, binary, where, full, arange, reshape, permute, broadcast_to: broadcastTo, concat,
  gather, take_along: takeAlong, slice, set_slice: setSlice,
};
