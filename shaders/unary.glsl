// unary: y[i] = f(x[i]) for one elementwise function.
// Inputs: u_x (sampler, any dtype stored as float).
// Uniforms: u_out_size.
// Compile-time: OP_<NAME> (NEG, EXP, LOG, SQRT, RSQRT, TANH, ABS, SQUARE, RELU,
// SIGMOID, SILU, GELU, GELU_NEW, ISFINITE).

uniform sampler2D u_x;
out float o_value;

// Overflow-free tanh: exp of a non-positive argument only.
float stableTanh(float x) {
  float t = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - t) / (1.0 + t);
}

// Abramowitz & Stegun 7.1.26, the formula of the numpy reference's _erf.
float erfApprox(float x) {
  float a = abs(x);
  float t = 1.0 / (1.0 + 0.3275911 * a);
  float poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
               + t * (-1.453152027 + t * 1.061405429))));
  return sign(x) * (1.0 - poly * exp(-a * a));
}

float apply(float x) {
#if defined(OP_NEG)
  return -x;
#elif defined(OP_EXP)
  return exp(x);
#elif defined(OP_LOG)
  // GLSL leaves log of 0 and of negatives undefined; numpy gives -inf and nan.
  return x > 0.0 ? log(x) : (x == 0.0 ? -positiveInfinity() : notANumber());
#elif defined(OP_SQRT)
  return x >= 0.0 ? sqrt(x) : notANumber();
#elif defined(OP_RSQRT)
  return x > 0.0 ? 1.0 / sqrt(x) : (x == 0.0 ? positiveInfinity() : notANumber());
#elif defined(OP_TANH)
  return stableTanh(x);
#elif defined(OP_ABS)
  return abs(x);
#elif defined(OP_SQUARE)
  return x * x;
#elif defined(OP_RELU)
  return isNan(x) ? x : max(x, 0.0);
#elif defined(OP_SIGMOID)
  return 1.0 / (1.0 + exp(-x));
#elif defined(OP_SILU)
  return x / (1.0 + exp(-x));
#elif defined(OP_GELU)
  return 0.5 * x * (1.0 + erfApprox(x / 1.4142135623730951));
#elif defined(OP_GELU_NEW)
  return 0.5 * x * (1.0 + stableTanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
#elif defined(OP_ISFINITE)
  return isFiniteValue(x) ? 1.0 : 0.0;
#endif
}

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  o_value = apply(fetch(u_x, index));
}
