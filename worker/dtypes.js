// Raw little-endian bytes in a safetensors dtype -> a TypedArray of the device dtype.
// float32 tensors become Float32Array (F16 and BF16 widened exactly), integer tensors
// Int32Array (I64 values must fit in int32: token ids and positions do), bool Uint8Array.

const FLOAT_SOURCES = new Set(["F32", "F16", "BF16", "F64"]);

export function deviceArrayType(dtype) {
  if (dtype === "float32") return Float32Array;
  if (dtype === "int64" || dtype === "int32") return Int32Array;
  if (dtype === "bool" || dtype === "uint8") return Uint8Array;
  throw new Error(`unknown device dtype ${dtype}; expected float32, int64, int32 or bool`);
}

function halfToFloat(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function sourceValues(bytes, source, count) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(count);
  const readers = {
    F32: (i) => view.getFloat32(4 * i, true),
    F64: (i) => view.getFloat64(8 * i, true),
    F16: (i) => halfToFloat(view.getUint16(2 * i, true)),
    BF16: (i) => {
      scratch.setUint32(0, view.getUint16(2 * i, true) << 16, true);
      return scratch.getFloat32(0, true);
    },
    I64: (i) => Number(view.getBigInt64(8 * i, true)),
    I32: (i) => view.getInt32(4 * i, true),
    I16: (i) => view.getInt16(2 * i, true),
    I8: (i) => view.getInt8(i),
    U8: (i) => view.getUint8(i),
    BOOL: (i) => view.getUint8(i),
  };
  const read = readers[source];
  if (!read) throw new Error(`unknown source dtype ${source}`);
  for (let i = 0; i < count; i++) out[i] = read(i);
  return out;
}

const scratch = new DataView(new ArrayBuffer(4));

export function decodeSource(bytes, source, dtype, shape) {
  const count = shape.reduce((a, b) => a * b, 1);
  const Type = deviceArrayType(dtype);
  // Fast paths: bytes already in the device layout.
  if ((source === "F32" && Type === Float32Array) || (source === "I32" && Type === Int32Array) ||
      ((source === "U8" || source === "BOOL") && Type === Uint8Array)) {
    const copy = new Uint8Array(count * Type.BYTES_PER_ELEMENT);
    copy.set(bytes.subarray(0, copy.length));
    return new Type(copy.buffer);
  }
  const values = sourceValues(bytes, source, count);
  const out = new Type(count);
  if (Type === Float32Array || !FLOAT_SOURCES.has(source)) out.set(values);
  else for (let i = 0; i < count; i++) out[i] = Math.trunc(values[i]);
  return out;
}
