// Shape arithmetic for the WebGL2 kernels: row-major strides, numpy broadcasting
// strides, and the right-aligned MAX_RANK arrays the shaders take as uniforms
// (shaders/common.glsl).

import { MAX_RANK } from "./webgl_context.js";

export function sizeOf(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

export function stridesOf(shape) {
  const strides = new Array(shape.length);
  let stride = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    strides[axis] = stride;
    stride *= shape[axis];
  }
  return strides;
}

export function sameShape(a, b) {
  return a.length === b.length && a.every((size, i) => size === b[i]);
}

export function normaliseAxis(axis, rank) {
  const out = axis < 0 ? axis + rank : axis;
  if (out < 0 || out >= Math.max(rank, 1)) {
    throw new Error(`axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return out;
}

// `values` padded on the left with `fill` to MAX_RANK entries.
export function rightAlign(values, fill) {
  if (values.length > MAX_RANK) {
    throw new Error(`WebGL2 kernels take tensors of rank up to ${MAX_RANK}, got rank ${values.length}`);
  }
  return [...new Array(MAX_RANK - values.length).fill(fill), ...values];
}

export const alignedShape = (shape) => rightAlign(shape, 1);
export const alignedStrides = (strides) => rightAlign(strides, 0);

// Strides (right-aligned to MAX_RANK) that read a tensor of `shape` at the
// coordinates of `outShape` under numpy broadcasting: 0 on stretched axes.
// `strides` default to the tensor's own row-major strides.
export function broadcastStrides(shape, outShape, strides = stridesOf(shape)) {
  const shift = outShape.length - shape.length;
  if (shift < 0) throw new Error(`cannot broadcast [${shape}] to [${outShape}]`);
  const out = outShape.map((size, axis) => {
    const own = axis - shift;
    if (own < 0 || shape[own] === 1) return 0;
    if (shape[own] !== size) throw new Error(`cannot broadcast [${shape}] to [${outShape}]`);
    return strides[own];
  });
  return alignedStrides(out);
}

// A tensor viewed as [outer, length, inner] around `axis`.
export function splitAxis(shape, axis) {
  return {
    outer: sizeOf(shape.slice(0, axis)),
    length: shape[axis],
    inner: sizeOf(shape.slice(axis + 1)),
  };
}
