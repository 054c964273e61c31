// CPU backend (cpu.js): indexing and layout ops, and the index helpers the other
// op modules share. Copies walk the output in row-major order with one table of
// source offsets per axis (affine for permute, broadcast_to and slices, explicit
// for index lists), copying contiguous runs with TypedArray.set.
// Semantics: py/neuroscope/backends/numpy_backend.py; slice keys as in bridge.js.

import { deviceArrayType } from "../dtypes.js";

export function sizeOf(shape) {
  let size = 1;
  for (const dim of shape) size *= dim;
  return size;
}

export function stridesOf(shape) {
  const strides = new Array(shape.length);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return strides;
}

export function normaliseAxis(axis, rank) {
  const normalised = axis < 0 ? axis + rank : axis;
  if (normalised < 0 || normalised >= Math.max(rank, 1)) {
    throw new Error(`axis ${axis} is out of range for a ${rank}-d tensor`);
  }
  return normalised;
}

// [outer, n, inner] sizes around `axis`: the view every per-axis kernel loops over.
export function aroundAxis(shape, axis) {
  return [sizeOf(shape.slice(0, axis)), shape[axis] ?? 1, sizeOf(shape.slice(axis + 1))];
}

// For numpy broadcasting of `shapes` to `outShape`: contiguous runs of `runLength`
// output elements, with each input's start offset per run (`bases[k]`) and its step
// inside a run (`steps[k]`, 0 for a broadcast input or 1).
export function broadcastPlan(outShape, shapes) {
  const rank = outShape.length;
  const strides = shapes.map((shape) => {
    const own = stridesOf(shape);
    return outShape.map((dim, axis) => {
      const i = axis - (rank - shape.length);
      return i < 0 || shape[i] === 1 ? 0 : own[i];
    });
  });
  // Merge adjacent axes that every input walks contiguously.
  const dims = [];
  const merged = shapes.map(() => []);
  for (let axis = 0; axis < rank; axis++) {
    const last = dims.length - 1;
    const mergeable = last >= 0 && strides.every((s, k) => merged[k][last] === s[axis] * outShape[axis]);
    if (mergeable) {
      dims[last] *= outShape[axis];
      strides.forEach((s, k) => { merged[k][last] = s[axis]; });
    } else {
      dims.push(outShape[axis]);
      strides.forEach((s, k) => merged[k].push(s[axis]));
    }
  }
  const runLength = dims.length ? dims[dims.length - 1] : 1;
  const runs = runLength === 0 ? 0 : sizeOf(outShape) / runLength;
  const steps = merged.map((s) => (dims.length ? s[s.length - 1] : 0));
  const bases = shapes.map(() => new Int32Array(runs));
  const outerDims = dims.slice(0, -1);
  const index = new Array(outerDims.length).fill(0);
  for (let run = 0; run < runs; run++) {
    for (let k = 0; k < shapes.length; k++) {
      let offset = 0;
      for (let a = 0; a < outerDims.length; a++) offset += index[a] * merged[k][a];
      bases[k][run] = offset;
    }
    for (let a = outerDims.length - 1; a >= 0; a--) {
      if (++index[a] < outerDims[a]) break;
      index[a] = 0;
    }
  }
  return { runLength, runs, bases, steps };
}

function affineTable(count, start, step) {
  const table = new Int32Array(count);
  for (let i = 0; i < count; i++) table[i] = start + i * step;
  return table;
}

function scaledTable(positions, stride) {
  const table = new Int32Array(positions.length);
  for (let i = 0; i < positions.length; i++) table[i] = positions[i] * stride;
  return table;
}

function isContiguous(table) {
  for (let i = 1; i < table.length; i++) if (table[i] !== table[0] + i) return false;
  return true;
}

const SET_MIN_RUN = 32; // below this a plain loop beats TypedArray.set's subarray

// out[o] = source[base + Σ tables[a][i_a]] for every index (i_0 .. i_n) of `dims`, in order.
export function gatherInto(out, source, dims, tables, base = 0) {
  const rank = dims.length;
  const total = sizeOf(dims);
  if (total === 0) return;
  if (rank === 0) {
    out[0] = source[base];
    return;
  }
  const last = tables[rank - 1];
  const runLength = dims[rank - 1];
  const useSet = runLength >= SET_MIN_RUN && isContiguous(last);
  const index = new Int32Array(rank);
  let offset = base;
  for (let a = 0; a < rank - 1; a++) offset += tables[a][0];
  for (let o = 0; o < total; o += runLength) {
    if (useSet) {
      const start = offset + last[0];
      out.set(source.subarray(start, start + runLength), o);
    } else {
      for (let i = 0; i < runLength; i++) out[o + i] = source[offset + last[i]];
    }
    for (let a = rank - 2; a >= 0; a--) {
      const table = tables[a];
      offset -= table[index[a]];
      if (++index[a] < dims[a]) {
        offset += table[index[a]];
        break;
      }
      index[a] = 0;
      offset += table[0];
    }
  }
}

// Σ tables[a][i_a] for every index (i_0 .. i_n) of `dims`, in row-major order.
export function offsetsOf(dims, tables) {
  const rank = dims.length;
  const offsets = new Int32Array(sizeOf(dims));
  const index = new Int32Array(rank);
  let offset = 0;
  for (let a = 0; a < rank; a++) offset += tables[a][0];
  for (let n = 0; n < offsets.length; n++) {
    offsets[n] = offset;
    for (let a = rank - 1; a >= 0; a--) {
      offset -= tables[a][index[a]];
      if (++index[a] < dims[a]) {
        offset += tables[a][index[a]];
        break;
      }
      index[a] = 0;
      offset += tables[a][0];
    }
  }
  return offsets;
}

// target[targetBase + Σ targetTables[a][i_a]] = value[Σ valueTables[a][i_a]] over `dims`.
function scatterInto(target, targetTables, targetBase, value, valueTables, dims) {
  const rank = dims.length;
  const total = sizeOf(dims);
  if (total === 0) return;
  const index = new Int32Array(rank);
  let t = targetBase;
  let v = 0;
  for (let a = 0; a < rank; a++) {
    t += targetTables[a][0];
    v += valueTables[a][0];
  }
  for (let n = 0; n < total; n++) {
    target[t] = value[v];
    for (let a = rank - 1; a >= 0; a--) {
      t -= targetTables[a][index[a]];
      v -= valueTables[a][index[a]];
      if (++index[a] < dims[a]) {
        t += targetTables[a][index[a]];
        v += valueTables[a][index[a]];
        break;
      }
      index[a] = 0;
      t += targetTables[a][0];
      v += valueTables[a][0];
    }
  }
}

// Tables of a tensor broadcast to `dims` (numpy rules; missing leading axes read offset 0).
function broadcastTables(shape, dims) {
  const strides = stridesOf(shape);
  return dims.map((dim, axis) => {
    const i = axis - (dims.length - shape.length);
    return i < 0 || shape[i] === 1 ? new Int32Array(dim) : affineTable(dim, 0, strides[i]);
  });
}

// A slice key (bridge.js) on `shape` -> the base offset of its integer entries,
// and for every axis kept (slices, index lists, untouched trailing axes) its size
// and table of source offsets: outer indexing, the integer axes dropped.
function keyTables(shape, key) {
  const strides = stridesOf(shape);
  const dims = [];
  const tables = [];
  let base = 0;
  shape.forEach((size, axis) => {
    const item = axis < key.length ? key[axis] : { s: [0, size, 1] };
    if (typeof item === "number") {
      const position = item < 0 ? item + size : item;
      if (position < 0 || position >= size) {
        throw new Error(`index ${item} is out of range for axis ${axis} of size ${size}`);
      }
      base += position * strides[axis];
    } else if (item.s) {
      const [start, stop, step] = item.s;
      const count = Math.max(0, Math.ceil((stop - start) / step));
      dims.push(count);
      tables.push(affineTable(count, start * strides[axis], step * strides[axis]));
    } else {
      for (const position of item.i) {
        if (position < 0 || position >= size) {
          throw new Error(`index ${position} is out of range for axis ${axis} of size ${size}`);
        }
      }
      dims.push(item.i.length);
      tables.push(scaledTable(item.i, strides[axis]));
    }
  });
  return { base, dims, tables };
}

// `values` as an array of the device type of `dtype` (shared when it already is one).
export function toDtype(values, dtype) {
  const Type = deviceArrayType(dtype);
  if (values instanceof Type) return values;
  const out = new Type(values.length);
  if (Type === Uint8Array) for (let i = 0; i < values.length; i++) out[i] = values[i] !== 0 ? 1 : 0;
  else out.set(values);
  return out;
}

function checkIndex(position, size, axis) {
  if (position < -size || position >= size) {
    throw new Error(`index ${position} is out of range for axis ${axis} of size ${size}`);
  }
  return position < 0 ? position + size : position;
}

// -- ops ------------------------------------------------------------------------

function gather(backend, [out], { x, indices, axis }) {
  const source = backend.input(x);
  const index = backend.input(indices);
  const ax = normaliseAxis(axis, source.shape.length);
  const [outer, size, inner] = aroundAxis(source.shape, ax);
  const data = backend.output(out);
  const positions = index.data;
  const count = positions.length;
  let o = 0;
  for (let b = 0; b < outer; b++) {
    const start = b * size * inner;
    for (let j = 0; j < count; j++) {
      const from = start + checkIndex(positions[j], size, ax) * inner;
      if (inner >= SET_MIN_RUN) data.set(source.data.subarray(from, from + inner), o);
      else for (let i = 0; i < inner; i++) data[o + i] = source.data[from + i];
      o += inner;
    }
  }
}

function takeAlong(backend, [out], { x, indices, axis }) {
  const source = backend.input(x);
  const index = backend.input(indices);
  const rank = source.shape.length;
  const ax = normaliseAxis(axis, rank);
  const dims = out.shape;
  const sourceStrides = stridesOf(source.shape);
  // Every axis but `axis` reads x at the output's position (size-1 axes broadcast).
  const tables = dims.map((dim, a) => (a === ax || source.shape[a] === 1
    ? new Int32Array(dim) : affineTable(dim, 0, sourceStrides[a])));
  const positions = new Int32Array(sizeOf(dims));
  gatherInto(positions, index.data, dims, broadcastTables(index.shape, dims));
  const offsets = offsetsOf(dims, tables);
  const data = backend.output(out);
  const size = source.shape[ax];
  const stride = sourceStrides[ax];
  for (let i = 0; i < data.length; i++) {
    data[i] = source.data[offsets[i] + checkIndex(positions[i], size, ax) * stride];
  }
}

function slice(backend, [out], { x, key }) {
  const source = backend.input(x);
  const { base, dims, tables } = keyTables(source.shape, key);
  gatherInto(backend.output(out), source.data, dims, tables, base);
}

function setSlice(backend, [out], { x, key, value }) {
  const source = backend.input(x);
  const data = backend.output(out);
  data.set(source.data);
  const { base, dims, tables } = keyTables(source.shape, key);
  const tensor = backend.input(value);
  const values = tensor ? toDtype(tensor.data, out.dtype) : toDtype([Number(value)], out.dtype);
  const valueShape = tensor ? tensor.shape : [];
  scatterInto(data, tables, base, values, broadcastTables(valueShape, dims), dims);
}

function concat(backend, [out], { xs, axis }) {
  const inputs = xs.map((x) => backend.input(x));
  const ax = normaliseAxis(axis, out.shape.length);
  const [outer] = aroundAxis(out.shape, ax);
  const data = backend.output(out);
  const chunks = inputs.map((t) => aroundAxis(t.shape, ax)[1] * aroundAxis(t.shape, ax)[2]);
  const converted = inputs.map((t) => toDtype(t.data, out.dtype));
  let o = 0;
  for (let b = 0; b < outer; b++) {
    for (let k = 0; k < inputs.length; k++) {
      const chunk = chunks[k];
      data.set(converted[k].subarray(b * chunk, (b + 1) * chunk), o);
      o += chunk;
    }
  }
}

function reshape(backend, [out], { x }) {
  const source = backend.input(x);
  // Tensors are never written after creation, so the data is shared, not copied.
  backend.define(out, toDtype(source.data, out.dtype));
}

function permute(backend, [out], { x, axes }) {
  const source = backend.input(x);
  const strides = stridesOf(source.shape);
  const tables = axes.map((a) => affineTable(source.shape[a], 0, strides[a]));
  gatherInto(backend.output(out), source.data, out.shape, tables);
}

function broadcastTo(backend, [out], { x }) {
  const source = backend.input(x);
  if (sizeOf(source.shape) === sizeOf(out.shape)) {
    backend.define(out, source.data); // only size-1 axes were added: same values
    return;
  }
  gatherInto(backend.output(out), source.data, out.shape, broadcastTables(source.shape, out.shape));
}

function full(backend, [out], { value }) {
  const data = backend.output(out);
  data.fill(data instanceof Uint8Array ? (Number(value) !== 0 ? 1 : 0) : Number(value));
}

function arange(backend, [out], { start }) {
  const data = backend.output(out);
  for (let i = 0; i < data.length; i++) data[i] = start + i;
}

export const LAYOUT_OPS = {
  gather, take_along: takeAlong, slice, set_slice: setSlice, concat, reshape, permute,
  broadcast_to: broadcastTo, full, arange,
};
