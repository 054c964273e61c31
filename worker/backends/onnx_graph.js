// A small ONNX model writer: the protobuf bytes of one-graph models, built in JS so
// the CPU backend (cpu.js) can hand onnxruntime-web the tiny graphs it needs
// (MatMul, Gemm, Transpose, Reshape, and the runs of ops of cpu_graph.js) without
// shipping .onnx files. Field numbers are those of onnx/onnx.proto (IR version 8).
// Only what those graphs use is encoded: nodes with int / ints / float attributes,
// int64 initializers and float32 ones (raw_data: a baked weight),
// and inputs/outputs whose dimensions are symbolic (dim_param) or fixed.
//
//   const bytes = modelBytes({
//     inputs: [tensorInfo("A", FLOAT, ["m", "k"]), ...],
//     outputs: [tensorInfo("Y", FLOAT, ["m", "n"])],
//     nodes: [node("MatMul", ["A", "B"], ["Y"], { /* attributes */ })],
//     initializers: [int64Tensor("shape", [0, 2, -1, 0])],
//   });

export const ONNX_FLOAT = 1;
export const ONNX_INT32 = 6;
export const ONNX_INT64 = 7;
export const ONNX_BOOL = 9;
export const OPSET = 17;
const IR_VERSION = 8;

// Attribute types (AttributeProto.AttributeType).
const ATTRIBUTE_FLOAT = 1;
const ATTRIBUTE_INT = 2;
const ATTRIBUTE_INTS = 7;

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

// Builds a message as a list of chunks, so a large raw_data payload (a baked weight)
// is referenced, not copied, until the final concatenation.
class ProtoWriter {
  constructor() {
    this.chunks = [];
    this.pending = []; // small bytes not yet flushed into a chunk
    this.length = 0;
  }

  push(byte) {
    this.pending.push(byte);
    this.length += 1;
  }

  flush() {
    if (this.pending.length) {
      this.chunks.push(Uint8Array.from(this.pending));
      this.pending = [];
    }
  }

  varint(value) {
    // int64 fields: negative values are ten-byte two's complement varints.
    let big = BigInt.asUintN(64, BigInt(value));
    do {
      let byte = Number(big & 0x7fn);
      big >>= 7n;
      if (big) byte |= 0x80;
      this.push(byte);
    } while (big);
    return this;
  }

  tag(field, wire) {
    return this.varint((field << 3) | wire);
  }

  int(field, value) {
    return this.tag(field, WIRE_VARINT).varint(value);
  }

  float(field, value) {
    this.tag(field, WIRE_FIXED32);
    for (const byte of new Uint8Array(Float32Array.of(value).buffer)) this.push(byte);
    return this;
  }

  raw(field, bytes) {
    this.tag(field, WIRE_BYTES).varint(bytes.length);
    this.flush();
    this.chunks.push(bytes);
    this.length += bytes.length;
    return this;
  }

  string(field, text) {
    return this.raw(field, new TextEncoder().encode(text));
  }

  message(field, writer) {
    writer.flush();
    this.tag(field, WIRE_BYTES).varint(writer.length);
    this.flush();
    this.chunks.push(...writer.chunks);
    this.length += writer.length;
    return this;
  }

  packedInts(field, values) {
    const inner = new ProtoWriter();
    for (const value of values) inner.varint(value);
    return this.message(field, inner);
  }

  bytes() {
    this.flush();
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}

export const CONTRIB_DOMAIN = "com.microsoft";

// A NodeProto. attributes: {name: int | int[] | {float: number}}; domain "" (ONNX) or
// "com.microsoft" (onnxruntime's contrib ops, which its wasm build has).
export function node(opType, inputs, outputs, attributes = {}, domain = "") {
  return { opType, inputs, outputs, attributes, domain };
}

// A ValueInfoProto of a tensor; dims are numbers (fixed) or strings (symbolic).
export function tensorInfo(name, elemType, dims) {
  return { name, elemType, dims };
}

// An int64 initializer (e.g. a Reshape target); dims [] makes a scalar of values[0].
export function int64Tensor(name, values, dims = [values.length]) {
  return { name, values, dims };
}

// A float32 initializer holding `data` (a Float32Array, referenced until encoded).
export function floatTensor(name, dims, data) {
  return { name, dims, data, elemType: ONNX_FLOAT };
}


function encodeNode({ opType, inputs, outputs, attributes, domain }, index) {
  const w = new ProtoWriter();
  for (const input of inputs) w.string(1, input);
  for (const output of outputs) w.string(2, output);
  w.string(3, `${opType}_${index}`);
  w.string(4, opType);
  for (const [name, value] of Object.entries(attributes)) {
    const attribute = new ProtoWriter().string(1, name);
    if (Array.isArray(value)) attribute.packedInts(8, value).int(20, ATTRIBUTE_INTS);
    else if (typeof value === "object") attribute.float(2, value.float).int(20, ATTRIBUTE_FLOAT);
    else attribute.int(3, value).int(20, ATTRIBUTE_INT);
    w.message(5, attribute);
  }
  if (domain) w.string(7, domain);
  return w;
}

function encodeValueInfo({ name, elemType, dims }) {
  const shape = new ProtoWriter();
  for (const dim of dims) {
    const dimension = new ProtoWriter();
    if (typeof dim === "string") dimension.string(2, dim);
    else dimension.int(1, dim);
    shape.message(1, dimension);
  }
  const tensorType = new ProtoWriter().int(1, elemType).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, name).message(2, type);
}

function encodeInitializer({ name, values, dims, data, elemType }) {
  if (data) {
    // raw_data is little-endian, as typed arrays are on every platform browsers run on.
    return new ProtoWriter()
      .packedInts(1, dims)
      .int(2, elemType)
      .string(8, name)
      .raw(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return new ProtoWriter()
    .packedInts(1, dims)
    .int(2, ONNX_INT64)
    .packedInts(7, values)
    .string(8, name);
}

// The serialized ModelProto (a Uint8Array) of one graph.
export function modelBytes({ inputs, outputs, nodes, initializers = [], name = "neuroscope" }) {
  const graph = new ProtoWriter();
  nodes.forEach((n, i) => graph.message(1, encodeNode(n, i)));
  graph.string(2, name);
  for (const initializer of initializers) graph.message(5, encodeInitializer(initializer));
  for (const input of inputs) graph.message(11, encodeValueInfo(input));
  for (const output of outputs) graph.message(12, encodeValueInfo(output));
  const model = new ProtoWriter()
    .int(1, IR_VERSION)
    .string(2, "neuroscope")
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, "").int(2, OPSET))
    .message(8, new ProtoWriter().string(1, CONTRIB_DOMAIN).int(2, 1));
  return model.bytes();
}
