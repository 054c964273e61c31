// WebGL2 elementwise ops and allocators: unary, binary, where, cast, full, arange
// (kernels shaders/unary.glsl, binary.glsl, where.glsl, cast.glsl, fill.glsl).
// Ops take (backend, outs, params) with params named as in the op table (op_table.js).

import { alignedShape, broadcastStrides, sameShape } from "./webgl_layout.js";

const INT_DTYPES = new Set(["int64", "int32", "uint8"]);
export const isInt = (dtype) => INT_DTYPES.has(dtype);

function scalarValue(value) {
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value !== "number") throw new Error(`expected a tensor or a number, got ${JSON.stringify(value)}`);
  return value;
}

// Defines and uniforms that read operand `name` ("a", "b", ...) at the output's
// coordinates: a uniform for a scalar, the output index for a same-shaped tensor,
// broadcast strides otherwise.
function operand(backend, name, value, outShape, defines, uniforms, allowFlat = true) {
  const upper = name.toUpperCase();
  const tensor = backend.input(value);
  if (!tensor) {
    defines[`${upper}_SCALAR`] = 1;
    uniforms[`u_${name}_scalar`] = scalarValue(value);
    return;
  }
  uniforms[`u_${name}`] = tensor.record;
  if (allowFlat && sameShape(tensor.shape, outShape)) defines[`${upper}_FLAT`] = 1;
  else uniforms[`u_${name}_strides`] = broadcastStrides(tensor.shape, outShape);
}

function unary(backend, [out], { op, x }) {
  const input = backend.input(x);
  const output = backend.output(out);
  backend.gl.draw("unary", { [`OP_${op.toUpperCase()}`]: 1 }, { u_x: input.record }, [output.record]);
}

function binary(backend, [out], { op, a, b }) {
  const defines = { [`OP_${op.toUpperCase()}`]: 1 };
  const uniforms = { u_out_shape: alignedShape(out.shape) };
  operand(backend, "a", a, out.shape, defines, uniforms);
  operand(backend, "b", b, out.shape, defines, uniforms);
  if (isInt(out.dtype)) defines.OUT_INT = 1;
  const output = backend.output(out);
  backend.gl.draw("binary", defines, uniforms, [output.record]);
}

function where(backend, [out], { cond, a, b }) {
  const defines = {};
  const uniforms = { u_out_shape: alignedShape(out.shape) };
  const condition = backend.input(cond) || backend.constant(cond, "bool");
  uniforms.u_cond = condition.record;
  uniforms.u_cond_strides = broadcastStrides(condition.shape, out.shape);
  operand(backend, "a", a, out.shape, defines, uniforms, false);
  operand(backend, "b", b, out.shape, defines, uniforms, false);
  const output = backend.output(out);
  backend.gl.draw("where", defines, uniforms, [output.record]);
  if (condition.scratch) backend.gl.release(condition.record);
}

// Stored values are already exact for float32 <- int/bool and int <- int/bool;
// only float -> int (truncation) and anything -> bool (nonzero) compute.
function cast(backend, [out], { x }) {
  const input = backend.input(x);
  const target = out.dtype;
  let define = null;
  if (target === "bool" && input.dtype !== "bool") define = "TO_BOOL";
  else if (isInt(target) && !isInt(input.dtype) && input.dtype !== "bool") define = "TO_INT";
  if (!define) {
    backend.share(out, input);
    return;
  }
  const output = backend.output(out);
  backend.gl.draw("cast", { [define]: 1 }, { u_x: input.record }, [output.record]);
}

function full(backend, [out], { value }) {
  let start = scalarValue(value);
  if (out.dtype === "bool") start = start !== 0 ? 1 : 0;
  else if (isInt(out.dtype)) start = Math.trunc(start);
  const output = backend.output(out);
  backend.gl.draw("fill", {}, { u_start: start, u_step: 0 }, [output.record]);
}

function arange(backend, [out], { start }) {
  const output = backend.output(out);
  backend.gl.draw("fill", {}, { u_start: scalarValue(start), u_step: 1 }, [output.record]);
}

export const ELEMENTWISE_OPS = { unary, binary, where, cast, full, arange };
