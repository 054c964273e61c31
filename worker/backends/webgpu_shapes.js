// Shape arithmetic shared by the WebGPU op modules: element strides, numpy
// broadcasting as strides (0 on broadcast axes), axis normalisation, device kinds.

const KINDS = { float32: 0, int64: 1, int32: 1, bool: 2, uint8: 2 };
export const FLOAT = 0;
export const INT = 1;
export const BOOL = 2;

// 0 f32, 1 i32, 2 bool as u32: the in_kind / out_kind codes the kernels take.
export function kindOf(dtype) {
  const kind = KINDS[dtype];
  if (kind === undefined) throw new Error(`unsupported dtype ${dtype}; expected float32, int64, int32 or bool`);
  return kind;
}

export function product(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

export function contiguousStrides(shape) {
  const strides = new Array(shape.length);
  let step = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = step;
    step *= shape[d];
  }
  return strides;
}

// Strides that read `shape` (right-aligned) at every coordinate of `outShape`.
export function broadcastStrides(shape, outShape) {
  const own = contiguousStrides(shape);
  const offset = outShape.length - shape.length;
  if (offset < 0) throw new Error(`cannot broadcast [${shape}] to [${outShape}]`);
  return outShape.map((size, d) => {
    const axis = d - offset;
    if (axis < 0 || shape[axis] === 1) return 0;
    if (shape[axis] !== size) throw new Error(`cannot broadcast [${shape}] to [${outShape}]`);
    return own[axis];
  });
}

export function normalizeAxis(axis, ndim) {
  const normal = axis < 0 ? axis + ndim : axis;
  if (!(normal >= 0 && normal < Math.max(ndim, 1))) {
    throw new Error(`axis ${axis} is out of range for a ${ndim}-d tensor`);
  }
  return normal;
}

// Kernels index at most 8 axes (two vec4 uniforms).
export function checkRank(shape, what) {
  if (shape.length > 8) throw new Error(`${what}: ${shape.length}-d tensors are not supported; at most 8 axes`);
}

// Float32 bits of a JS number, as the unsigned word a uniform or buffer holds.
export function floatBits(value) {
  return new Uint32Array(new Float32Array([value]).buffer)[0];
}

// The 32-bit word that stores `value` in a tensor of `kind`.
export function scalarWord(value, kind) {
  const number = Number(value);
  if (kind === FLOAT) return floatBits(number);
  if (kind === INT) return Math.trunc(number) >>> 0;
  return number !== 0 ? 1 : 0;
}
