// softmax / log_softmax along one axis, second pass: normalise each element with
// its row's statistics from row_stats.glsl (SOFTMAX mode).
// x is viewed as [outer, length, inner]; row = outer index * inner + inner index.
// Inputs: u_x, u_peak (row maxima, 0 for an all -inf row), u_total (row sums of
//   exp(x - peak)).
// Uniforms: u_out_size, u_length, u_inner.
// Compile-time: LOG (log_softmax: x - peak - log(total); an all -inf row gives nan,
//   as numpy does); otherwise softmax, with an all -inf row (total 0) giving zeros.

uniform sampler2D u_x;
uniform sampler2D u_peak;
uniform sampler2D u_total;
uniform int u_length;
uniform int u_inner;
out float o_value;

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  int row = (index / (u_length * u_inner)) * u_inner + index % u_inner;
  float shifted = fetch(u_x, index) - fetch(u_peak, row);
  float total = fetch(u_total, row);
#ifdef LOG
  o_value = shifted - log(total);
#else
  o_value = total == 0.0 ? 0.0 : exp(shifted) / total;
#endif
}
