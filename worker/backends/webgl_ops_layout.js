// WebGL2 indexing and layout ops: gather, take_along, slice, set_slice, concat,
// reshape, permute, broadcast_to, and rotary (kernels shaders/gather.glsl,
// take_along.glsl, view.glsl, set_slice.glsl, concat.glsl, rotary.glsl).
// Slice keys arrive as the bridge sends them: per leading axis an int (select,
// axis dropped), {s: [start, stop, step]} or {i: [indices]} (numpy-outer lists).

import { isInt } from "./webgl_ops_elementwise.js";
import {
  alignedShape, alignedStrides, broadcastStrides, normaliseAxis, rightAlign, sizeOf, splitAxis,
  stridesOf,
} from "./webgl_layout.js";

function gather(backend, [out], { x, indices, axis }) {
  const input = backend.input(x);
  const index = backend.input(indices);
  const { length, inner } = splitAxis(input.shape, normaliseAxis(axis, input.shape.length));
  const output = backend.output(out);
  backend.gl.draw("gather", {}, {
    u_x: input.record, u_indices: index.record, u_length: length,
    u_count: sizeOf(index.shape), u_inner: inner,
  }, [output.record]);
}

function takeAlong(backend, [out], { x, indices, axis }) {
  const input = backend.input(x);
  const index = backend.input(indices);
  const along = normaliseAxis(axis, input.shape.length);
  // x broadcasts against the output on every axis but `along`, where the index decides.
  const ownShape = input.shape.map((size, i) => (i === along ? 1 : size));
  const strides = stridesOf(input.shape);
  const output = backend.output(out);
  backend.gl.draw("take_along", {}, {
    u_x: input.record, u_indices: index.record,
    u_out_shape: alignedShape(out.shape),
    u_x_strides: broadcastStrides(ownShape, out.shape, strides),
    u_axis_stride: strides[along],
    u_axis_length: input.shape[along],
    u_index_strides: broadcastStrides(index.shape, out.shape),
  }, [output.record]);
}

// The last `count` entries of a right-aligned MAX_RANK array.
const lastAxes = (aligned, count) => (count ? aligned.slice(-count) : []);

// The key as one entry per axis of x: {kind: "int" | "range" | "list", ...}.
function parseKey(key, shape) {
  return shape.map((size, axis) => {
    const item = axis < key.length ? key[axis] : { s: [0, size, 1] };
    if (typeof item === "number") return { kind: "int", index: item < 0 ? item + size : item };
    if (item.s) {
      // Triples come from Python's slice.indices (range arguments: stop may be -1
      // for a negative step); only clip a stop past the axis, as numpy would.
      const [start, stop, step] = item.s;
      const end = step > 0 ? Math.min(stop, size) : Math.max(stop, -1);
      return { kind: "range", start, step, count: Math.max(0, Math.ceil((end - start) / step)) };
    }
    if (item.i) return { kind: "list", list: item.i.map((i) => (i < 0 ? i + size : i)), count: item.i.length };
    throw new Error(`bad slice key entry ${JSON.stringify(item)} for axis ${axis}`);
  });
}

// All the key's lists in one scratch texture, and each list axis' offset in it.
function listTable(backend, entries) {
  const values = [];
  const offsets = entries.map((entry) => {
    if (entry.kind !== "list") return -1;
    values.push(...entry.list);
    return values.length - entry.list.length;
  });
  return values.length ? { record: backend.gl.upload(values), offsets } : null;
}

// Copies x through a strided view: y[c] = x[offset + sum c[d] * strides[d]] (list
// axes map c[d] through the list first).
function drawView(backend, out, input, { offset = 0, strides, lists = null, listOffsets = null }) {
  const values = {
    u_x: input.record, u_out_shape: alignedShape(out.shape),
    u_strides: alignedStrides(strides), u_offset: offset,
  };
  const defines = {};
  if (lists) {
    defines.HAS_LISTS = 1;
    values.u_lists = lists;
    values.u_list_offsets = rightAlign(listOffsets, -1);
  }
  backend.gl.draw("view", defines, values, [backend.output(out).record]);
}

function slice(backend, [out], { x, key }) {
  const input = backend.input(x);
  const entries = parseKey(key, input.shape);
  const xStrides = stridesOf(input.shape);
  let offset = 0;
  const strides = [];
  const kept = [];
  entries.forEach((entry, axis) => {
    if (entry.kind === "int") offset += entry.index * xStrides[axis];
    else if (entry.kind === "range") {
      offset += entry.start * xStrides[axis];
      strides.push(entry.step * xStrides[axis]);
      kept.push(entry);
    } else {
      strides.push(xStrides[axis]);
      kept.push(entry);
    }
  });
  const selected = kept.map((entry) => entry.count);
  if (selected.join() !== out.shape.join()) {
    throw new Error(`slice: key ${JSON.stringify(key)} selects [${selected}] from [${input.shape}], ` +
                    `but the output is [${out.shape}]; ranges must be normalised by slice.indices`);
  }
  const table = listTable(backend, kept);
  drawView(backend, out, input, {
    offset, strides, lists: table && table.record, listOffsets: table && table.offsets,
  });
  if (table) backend.gl.release(table.record);
}

function setSlice(backend, [out], { x, key, value }) {
  const input = backend.input(x);
  const entries = parseKey(key, input.shape);
  const valueTensor = backend.input(value);
  // Strides of the value over the slice's own axes (the non-int entries).
  const sliceShape = entries.filter((e) => e.kind !== "int").map((e) => e.count);
  const sliceStrides = valueTensor ? lastAxes(broadcastStrides(valueTensor.shape, sliceShape), sliceShape.length) : [];
  let next = 0;
  const valueStrides = entries.map((e) => (e.kind === "int" ? 0 : (valueTensor ? sliceStrides[next++] : 0)));
  const table = listTable(backend, entries);
  const defines = {};
  const values = {
    u_x: input.record,
    u_out_shape: alignedShape(input.shape),
    u_kind: rightAlign(entries.map((e) => ({ range: 0, int: 1, list: 2 })[e.kind]), 0),
    u_start: rightAlign(entries.map((e) => (e.kind === "int" ? e.index : e.start || 0)), 0),
    u_step: rightAlign(entries.map((e) => e.step || 1), 1),
    u_count: rightAlign(entries.map((e) => (e.kind === "int" ? 1 : e.count)), 1),
    u_value_strides: rightAlign(valueStrides, 0),
  };
  if (valueTensor) values.u_value = valueTensor.record;
  else {
    defines.VALUE_SCALAR = 1;
    values.u_value_scalar = typeof value === "boolean" ? Number(value) : value;
  }
  if (table) {
    defines.HAS_LISTS = 1;
    values.u_lists = table.record;
    values.u_list_offsets = rightAlign(table.offsets, -1);
  }
  if (isInt(input.dtype)) defines.OUT_INT = 1;
  backend.gl.draw("set_slice", defines, values, [backend.output(out).record]);
  if (table) backend.gl.release(table.record);
}

function concat(backend, [out], { xs, axis }) {
  const along = normaliseAxis(axis, out.shape.length);
  const { length: total, inner } = splitAxis(out.shape, along);
  const output = backend.output(out);
  let start = 0;
  for (const item of xs) {
    const input = backend.input(item);
    const length = input.shape[along];
    // Every fragment of the output is drawn; each pass keeps only its own block.
    backend.gl.draw("concat", {}, {
      u_x: input.record, u_total: total, u_inner: inner, u_start: start, u_length: length,
    }, [output.record], sizeOf(input.shape) ? output.record.size : 0);
    start += length;
  }
}

function reshape(backend, [out], { x }) {
  backend.share(out, backend.input(x));
}

function permute(backend, [out], { x, axes }) {
  const input = backend.input(x);
  const strides = stridesOf(input.shape);
  drawView(backend, out, input, { strides: axes.map((axis) => strides[normaliseAxis(axis, input.shape.length)]) });
}

function broadcastTo(backend, [out], { x }) {
  const input = backend.input(x);
  const strides = lastAxes(broadcastStrides(input.shape, out.shape), out.shape.length);
  drawView(backend, out, input, { strides });
}

function rotary(backend, [out], { x, cos, sin, rotary_dim: rotaryDim }) {
  const input = backend.input(x);
  const [cosTensor, sinTensor] = [backend.input(cos), backend.input(sin)];
  const [, positions, heads, features] = input.shape;
  const [tableBatch, tablePositions, tableWidth] = cosTensor.shape;
  const output = backend.output(out);
  backend.gl.draw("rotary", {}, {
    u_x: input.record, u_cos: cosTensor.record, u_sin: sinTensor.record,
    u_positions: positions, u_heads: heads, u_features: features, u_rotary: rotaryDim,
    u_table_batch_stride: tableBatch === 1 ? 0 : tablePositions * tableWidth,
    u_table_position_stride: tablePositions === 1 ? 0 : tableWidth,
  }, [output.record]);
}

export const LAYOUT_OPS = {
  gather, take_along: takeAlong, slice, set_slice: setSlice, concat, reshape, permute,
  broadcast_to: broadcastTo, rotary,
};
