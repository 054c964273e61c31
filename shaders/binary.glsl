// binary: y = a (op) b with numpy broadcasting; either side may be a Python scalar.
// Inputs: u_a, u_b (samplers; absent when that side is a scalar).
// Uniforms: u_out_size; u_out_shape[MAX_RANK] (right-aligned output shape);
//   u_a_strides / u_b_strides[MAX_RANK] (0 on broadcast axes); u_a_scalar / u_b_scalar.
// Compile-time: OP_<NAME> (ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM, EQ, NE, LT, LE,
//   GT, GE); A_SCALAR / B_SCALAR (that side is a uniform); A_FLAT / B_FLAT (that side
//   has the output's shape: read at the output index, no coordinates); OUT_INT
//   (integer result: pow is rounded to the exact integer).

#ifdef A_SCALAR
uniform float u_a_scalar;
#else
uniform sampler2D u_a;
#ifndef A_FLAT
uniform int u_a_strides[MAX_RANK];
#endif
#endif
#ifdef B_SCALAR
uniform float u_b_scalar;
#else
uniform sampler2D u_b;
#ifndef B_FLAT
uniform int u_b_strides[MAX_RANK];
#endif
#endif
uniform int u_out_shape[MAX_RANK];
out float o_value;

// numpy's float power: negative bases only with integral exponents, 0 ** negative = inf.
float numpyPow(float x, float y) {
  if (y == 0.0) return 1.0;
  if (isNan(x) || isNan(y)) return notANumber();
  if (x == 0.0) return y > 0.0 ? 0.0 : positiveInfinity();
  if (x > 0.0) return pow(x, y);
  if (floor(y) != y) return notANumber();
  float magnitude = pow(-x, y);
  return mod(y, 2.0) == 1.0 ? -magnitude : magnitude;
}

float apply(float a, float b) {
#if defined(OP_ADD)
  return a + b;
#elif defined(OP_SUB)
  return a - b;
#elif defined(OP_MUL)
  return a * b;
#elif defined(OP_DIV)
  return a / b;
#elif defined(OP_POW)
#ifdef OUT_INT
  return round(numpyPow(a, b));
#else
  return numpyPow(a, b);
#endif
#elif defined(OP_MAXIMUM)
  return isNan(a) || isNan(b) ? notANumber() : max(a, b);
#elif defined(OP_MINIMUM)
  return isNan(a) || isNan(b) ? notANumber() : min(a, b);
#elif defined(OP_EQ)
  return a == b ? 1.0 : 0.0;
#elif defined(OP_NE)
  return a != b ? 1.0 : 0.0;
#elif defined(OP_LT)
  return a < b ? 1.0 : 0.0;
#elif defined(OP_LE)
  return a <= b ? 1.0 : 0.0;
#elif defined(OP_GT)
  return a > b ? 1.0 : 0.0;
#elif defined(OP_GE)
  return a >= b ? 1.0 : 0.0;
#endif
}

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  int coords[MAX_RANK];
  coordinates(index, u_out_shape, coords);
#if defined(A_SCALAR)
  float a = u_a_scalar;
#elif defined(A_FLAT)
  float a = fetch(u_a, index);
#else
  float a = fetch(u_a, dotStrides(coords, u_a_strides));
#endif
#if defined(B_SCALAR)
  float b = u_b_scalar;
#elif defined(B_FLAT)
  float b = fetch(u_b, index);
#else
  float b = fetch(u_b, dotStrides(coords, u_b_strides));
#endif
  o_value = apply(a, b);
}
