// Prelude of every WebGL2 fragment kernel (shaders/*.glsl except fullscreen.glsl).
// worker/backends/webgl_context.js builds each program as
//   "#version 300 es" + one "#define NAME VALUE" line per compile-time parameter
//   (always TEX_WIDTH and MAX_RANK, plus the kernel's own) + this file + the kernel.
// Tensors are R32F textures holding the flat row-major data, TEX_WIDTH texels per
// row (a tensor smaller than a row is one row of its own length), so flat index i
// lives at texel (i % TEX_WIDTH, i / TEX_WIDTH) whatever the tensor's size.
// Integers and booleans are stored as exact float values (ints exact to 2^24).
// Shapes are right-aligned into MAX_RANK ints, padded on the left with 1s (strides
// with 0s), so one loop over MAX_RANK axes serves every rank.
// Uniform: u_out_size, the number of elements of the output (fragments past it in
// the last texture row compute nothing).

precision highp float;
precision highp int;
precision highp sampler2D;

uniform int u_out_size;

int outputIndex() {
  ivec2 texel = ivec2(gl_FragCoord.xy);
  return texel.y * TEX_WIDTH + texel.x;
}

float fetch(sampler2D tensor, int index) {
  return texelFetch(tensor, ivec2(index % TEX_WIDTH, index / TEX_WIDTH), 0).r;
}

// Row-major coordinates of `index` in a right-aligned MAX_RANK shape.
void coordinates(int index, int shape[MAX_RANK], out int coords[MAX_RANK]) {
  for (int axis = MAX_RANK - 1; axis >= 0; axis--) {
    coords[axis] = index % shape[axis];
    index /= shape[axis];
  }
}

int dotStrides(int coords[MAX_RANK], int strides[MAX_RANK]) {
  int offset = 0;
  for (int axis = 0; axis < MAX_RANK; axis++) offset += coords[axis] * strides[axis];
  return offset;
}

// Bit tests instead of isnan/isinf: they survive compilers that assume finite math.
bool isNan(float x) {
  uint bits = floatBitsToUint(x);
  return (bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0u;
}

bool isFiniteValue(float x) {
  return (floatBitsToUint(x) & 0x7f800000u) != 0x7f800000u;
}

float positiveInfinity() {
  return uintBitsToFloat(0x7f800000u);
}

float notANumber() {
  return uintBitsToFloat(0x7fc00000u);
}
