// row_stats: two statistics per row of x, a row being the `length` elements along
// one axis (x viewed as [outer, length, inner]); the first pass of softmax,
// log_softmax, layer_norm and rms_norm (attention's softmax too).
// Outputs (two render targets, one element per row, row = outer * inner + inner index):
//   SOFTMAX:    o_first = max of the row, o_second = sum of exp(x - max)
//               (an all -inf row: max 0, so every exp is 0 and the sum 0)
//   LAYER_NORM: o_first = mean, o_second = 1 / sqrt(var + eps)
//   RMS_NORM:   o_first = mean of squares, o_second = 1 / sqrt(mean of squares + eps)
// Inputs: u_x. Uniforms: u_out_size (rows), u_length, u_inner, u_eps.
// Compile-time: SOFTMAX, LAYER_NORM or RMS_NORM.

uniform sampler2D u_x;
uniform int u_length;
uniform int u_inner;
uniform float u_eps;
layout(location = 0) out float o_first;
layout(location = 1) out float o_second;

void main() {
  int row = outputIndex();
  if (row >= u_out_size) { o_first = 0.0; o_second = 0.0; return; }
  int base = (row / u_inner) * u_length * u_inner + row % u_inner;
#if defined(SOFTMAX)
  float peak = fetch(u_x, base);
  for (int t = 1; t < u_length; t++) peak = max(peak, fetch(u_x, base + t * u_inner));
  if (!isFiniteValue(peak)) peak = 0.0;
  float total = 0.0;
  for (int t = 0; t < u_length; t++) total += exp(fetch(u_x, base + t * u_inner) - peak);
  o_first = peak;
  o_second = total;
#elif defined(LAYER_NORM)
  float total = 0.0;
  for (int t = 0; t < u_length; t++) total += fetch(u_x, base + t * u_inner);
  float mean = total / float(u_length);
  float squares = 0.0;
  for (int t = 0; t < u_length; t++) {
    float centered = fetch(u_x, base + t * u_inner) - mean;
    squares += centered * centered;
  }
  o_first = mean;
  o_second = 1.0 / sqrt(squares / float(u_length) + u_eps);
#else
  float squares = 0.0;
  for (int t = 0; t < u_length; t++) {
    float value = fetch(u_x, base + t * u_inner);
    squares += value * value;
  }
  float meanSquare = squares / float(u_length);
  o_first = meanSquare;
  o_second = 1.0 / sqrt(meanSquare + u_eps);
#endif
}
