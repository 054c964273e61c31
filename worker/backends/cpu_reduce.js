// CPU backend (cpu.js): reductions and the row-wise ops of a transformer (softmax,
// log_softmax, layer_norm, rms_norm, topk, rotary). A per-axis op walks lanes of
// the [outer, n, inner] view around its axis; the last axis (inner = 1) is the
// common case and reads memory in order. Sums accumulate in float64 (numpy sums
// float32 pairwise, so both are well inside the 1e-4 tolerance), except cumsum,
// which rounds each partial sum to float32 as numpy's sequential add does.
// Semantics: py/neuroscope/backends/numpy_backend.py.

import { fastExp } from "./cpu_elementwise.js";
import { aroundAxis, normaliseAxis, offsetsOf, stridesOf } from "./cpu_layout.js";

// -- reduce -----------------------------------------------------------------------

// result[o] = op over r of x[kept[o] + reduced[r]].
function reduceLanes(op, x, out, kept, reduced) {
  const n = reduced.length;
  for (let o = 0; o < out.length; o++) {
    const base = kept[o];
    let result;
    if (op === "max" || op === "min") {
      result = op === "max" ? -Infinity : Infinity;
      const pick = op === "max" ? Math.max : Math.min;
      for (let r = 0; r < n; r++) result = pick(result, x[base + reduced[r]]);
    } else {
      let sum = 0;
      for (let r = 0; r < n; r++) sum += x[base + reduced[r]];
      result = op === "sum" ? sum : sum / n;
      if (op === "var") {
        const mean = result;
        let squares = 0;
        for (let r = 0; r < n; r++) {
          const d = x[base + reduced[r]] - mean;
          squares += d * d;
        }
        result = squares / n;
      }
    }
    out[o] = result;
  }
}

function reduce(backend, [out], { op, x, axes }) {
  const input = backend.input(x);
  const shape = input.shape;
  const reducedAxes = new Set(axes.map((a) => normaliseAxis(a, shape.length)));
  const strides = stridesOf(shape);
  const table = (a) => Int32Array.from({ length: shape[a] }, (_, i) => i * strides[a]);
  const keptAxes = shape.map((_, a) => a).filter((a) => !reducedAxes.has(a));
  const reducedList = [...reducedAxes].sort((a, b) => a - b);
  const kept = offsetsOf(keptAxes.map((a) => shape[a]), keptAxes.map(table));
  const reduced = offsetsOf(reducedList.map((a) => shape[a]), reducedList.map(table));
  reduceLanes(op, input.data, backend.output(out), kept, reduced);
}

function argmax(backend, [out], { x, axis }) {
  const input = backend.input(x);
  const [outer, n, inner] = aroundAxis(input.shape, normaliseAxis(axis, input.shape.length));
  const data = backend.output(out);
  const values = input.data;
  for (let b = 0; b < outer; b++) {
    for (let i = 0; i < inner; i++) {
      const start = b * n * inner + i;
      let best = values[start];
      let bestIndex = 0;
      // The first maximum wins; a NaN is a maximum (numpy).
      for (let j = 1; j < n && best === best; j++) {
        const v = values[start + j * inner];
        if (v > best || v !== v) {
          best = v;
          bestIndex = j;
        }
      }
      data[b * inner + i] = bestIndex;
    }
  }
}

function cumsum(backend, [out], { x, axis }) {
  const input = backend.input(x);
  const [outer, n, inner] = aroundAxis(input.shape, normaliseAxis(axis, input.shape.length));
  const data = backend.output(out);
  const values = input.data;
  const float = data instanceof Float32Array;
  for (let b = 0; b < outer; b++) {
    for (let i = 0; i < inner; i++) {
      let p = b * n * inner + i;
      let sum = 0;
      for (let j = 0; j < n; j++, p += inner) {
        sum = float ? Math.fround(sum + values[p]) : sum + values[p];
        data[p] = sum;
      }
    }
  }
}

// -- softmax --------------------------------------------------------------------

function softmax(backend, [out], { x, axis }) {
  const input = backend.input(x);
  const [outer, n, inner] = aroundAxis(input.shape, normaliseAxis(axis, input.shape.length));
  const data = backend.output(out);
  if (inner === 1) {
    softmaxRows(input.data, data, n);
    return;
  }
  const values = input.data;
  for (let b = 0; b < outer; b++) {
    for (let i = 0; i < inner; i++) {
      const start = b * n * inner + i;
      const end = start + n * inner;
      let peak = -Infinity;
      for (let p = start; p < end; p += inner) peak = Math.max(peak, values[p]);
      if (!Number.isFinite(peak)) peak = 0; // all -inf: zeros, not NaN (safe softmax)
      let total = 0;
      for (let p = start; p < end; p += inner) {
        const e = fastExp(values[p] - peak);
        data[p] = e;
        total += e;
      }
      const inverse = total === 0 ? 1 : 1 / total;
      for (let p = start; p < end; p += inner) data[p] *= inverse;
    }
  }
}

// Safe softmax over contiguous rows of n (the last axis). A NaN is skipped by the
// peak but still makes its row NaN through the total, as numpy's does.
export function softmaxRows(values, data, n) {
  for (let start = 0; start < data.length; start += n) {
    const end = start + n;
    let peak = -Infinity;
    for (let p = start; p < end; p++) {
      const v = values[p];
      if (v > peak) peak = v;
    }
    if (peak === Infinity || peak === -Infinity) peak = 0;
    let total = 0;
    for (let p = start; p < end; p++) {
      const e = fastExp(values[p] - peak);
      data[p] = e;
      total += e;
    }
    const inverse = total === 0 ? 1 : 1 / total;
    for (let p = start; p < end; p++) data[p] *= inverse;
  }
}

function logSoftmax(backend, [out], { x, axis }) {
  const input = backend.input(x);
  const [outer, n, inner] = aroundAxis(input.shape, normaliseAxis(axis, input.shape.length));
  const data = backend.output(out);
  const values = input.data;
  for (let b = 0; b < outer; b++) {
    for (let i = 0; i < inner; i++) {
      const start = b * n * inner + i;
      const end = start + n * inner;
      let peak = -Infinity;
      for (let p = start; p < end; p += inner) peak = Math.max(peak, values[p]);
      let total = 0;
      for (let p = start; p < end; p += inner) total += fastExp(values[p] - peak);
      const logTotal = Math.log(total);
      for (let p = start; p < end; p += inner) data[p] = Math.fround(values[p] - peak) - logTotal;
    }
  }
}

// -- normalisation --------------------------------------------------------------

function layerNorm(backend, [out], { x, weight, bias, eps }) {
  const input = backend.input(x);
  const w = backend.input(weight);
  const b = backend.input(bias);
  const d = input.shape[input.shape.length - 1] || 1;
  const values = input.data;
  const data = backend.output(out);
  const wData = w ? w.data : null;
  const bData = b ? b.data : null;
  for (let start = 0; start < data.length; start += d) {
    const end = start + d;
    // One pass over the row: sums of x - x0 and its squares, shifted by the first
    // value so the variance keeps its precision when |mean| >> std.
    const shift = values[start];
    let sum = 0;
    let squares = 0;
    for (let p = start; p < end; p++) {
      const c = values[p] - shift;
      sum += c;
      squares += c * c;
    }
    const meanShifted = sum / d;
    const mean = shift + meanShifted;
    const variance = Math.max(squares / d - meanShifted * meanShifted, 0);
    const inverse = 1 / Math.sqrt(variance + eps);
    if (wData && bData) {
      for (let p = start, j = 0; p < end; p++, j++) data[p] = (values[p] - mean) * inverse * wData[j] + bData[j];
    } else if (wData) {
      for (let p = start, j = 0; p < end; p++, j++) data[p] = (values[p] - mean) * inverse * wData[j];
    } else if (bData) {
      for (let p = start, j = 0; p < end; p++, j++) data[p] = (values[p] - mean) * inverse + bData[j];
    } else {
      for (let p = start; p < end; p++) data[p] = (values[p] - mean) * inverse;
    }
  }
}

function rmsNorm(backend, [out], { x, weight, eps }) {
  const input = backend.input(x);
  const w = backend.input(weight);
  const d = input.shape[input.shape.length - 1] || 1;
  const values = input.data;
  const data = backend.output(out);
  const wData = w ? w.data : null;
  for (let start = 0; start < data.length; start += d) {
    const end = start + d;
    let squares = 0;
    for (let p = start; p < end; p++) squares += values[p] * values[p];
    const inverse = 1 / Math.sqrt(squares / d + eps);
    if (wData) for (let p = start, j = 0; p < end; p++, j++) data[p] = values[p] * inverse * wData[j];
    else for (let p = start; p < end; p++) data[p] = values[p] * inverse;
  }
}

// -- topk -----------------------------------------------------------------------

const INSERTION_TOPK = 64; // above this k a full sort of the lane is cheaper

// The k largest of each lane, sorted descending; equal values keep the lower index first.
function topk(backend, [valuesOut, indicesOut], { x, k, axis }) {
  const input = backend.input(x);
  const [outer, n, inner] = aroundAxis(input.shape, normaliseAxis(axis, input.shape.length));
  const values = backend.output(valuesOut);
  const indices = backend.output(indicesOut);
  const source = input.data;
  const bestValues = new Float64Array(k);
  const bestIndices = new Int32Array(k);
  const order = k > INSERTION_TOPK ? new Int32Array(n) : null;
  // NaN ranks below every number, as in numpy's sort of -x.
  const keyOf = (v) => (v !== v ? -Infinity : v);
  for (let b = 0; b < outer; b++) {
    for (let i = 0; i < inner; i++) {
      const start = b * n * inner + i;
      if (order) {
        for (let j = 0; j < n; j++) order[j] = j;
        order.sort((p, q) => keyOf(source[start + q * inner]) - keyOf(source[start + p * inner]) || p - q);
        for (let j = 0; j < k; j++) bestIndices[j] = order[j];
      } else {
        let count = 0;
        for (let j = 0; j < n; j++) {
          const v = keyOf(source[start + j * inner]);
          if (count === k && !(v > bestValues[k - 1])) continue;
          let position = count < k ? count++ : k - 1;
          while (position > 0 && bestValues[position - 1] < v) {
            bestValues[position] = bestValues[position - 1];
            bestIndices[position] = bestIndices[position - 1];
            position--;
          }
          bestValues[position] = v;
          bestIndices[position] = j;
        }
      }
      for (let j = 0; j < k; j++) {
        const o = b * k * inner + j * inner + i;
        indices[o] = bestIndices[j];
        values[o] = source[start + bestIndices[j] * inner];
      }
    }
  }
}

// -- rotary ---------------------------------------------------------------------

// x [b, p, h, e]: the first rotary_dim features rotated GPT-NeoX style (rotate_half)
// by cos/sin [b, p, rotary_dim] (size-1 batch or position axes broadcast). Each
// product is rounded to float32 before the sum, as numpy computes it.
function rotary(backend, [out], { x, cos, sin, rotary_dim: rotaryDim }) {
  const input = backend.input(x);
  const cosine = backend.input(cos);
  const sine = backend.input(sin);
  const [batch, positions, heads, dHead] = input.shape;
  const half = rotaryDim >> 1;
  const values = input.data;
  const data = backend.output(out);
  const cosData = cosine.data;
  const sinData = sine.data;
  const tableBatchStride = cosine.shape[0] === 1 ? 0 : cosine.shape[1] * rotaryDim;
  const tablePosStride = cosine.shape[1] === 1 ? 0 : rotaryDim;
  let p = 0;
  for (let bi = 0; bi < batch; bi++) {
    for (let pi = 0; pi < positions; pi++) {
      const t = bi * tableBatchStride + pi * tablePosStride;
      for (let hi = 0; hi < heads; hi++, p += dHead) {
        for (let j = 0; j < half; j++) {
          data[p + j] = Math.fround(values[p + j] * cosData[t + j])
            - Math.fround(values[p + j + half] * sinData[t + j]);
        }
        for (let j = half; j < rotaryDim; j++) {
          data[p + j] = Math.fround(values[p + j] * cosData[t + j])
            + Math.fround(values[p + j - half] * sinData[t + j]);
        }
        for (let j = rotaryDim; j < dHead; j++) data[p + j] = values[p + j];
      }
    }
  }
}

export const REDUCTION_OPS = {
  reduce, argmax, cumsum, softmax, log_softmax: logSoftmax, layer_norm: layerNorm,
  rms_norm: rmsNorm, topk, rotary,
};
