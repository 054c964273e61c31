// layer_norm / rms_norm over the last axis, second pass: scale each element by its
// row's statistics from row_stats.glsl, then the optional weight and bias.
// Inputs: u_x; u_center (row means, LAYER_NORM only); u_scale (1 / sqrt(var + eps));
//   u_weight, u_bias ([length] vectors, when present).
// Uniforms: u_out_size, u_length (size of the last axis).
// Compile-time: LAYER_NORM (subtract the mean) or RMS_NORM; HAS_WEIGHT; HAS_BIAS.

uniform sampler2D u_x;
#ifdef LAYER_NORM
uniform sampler2D u_center;
#endif
uniform sampler2D u_scale;
#ifdef HAS_WEIGHT
uniform sampler2D u_weight;
#endif
#ifdef HAS_BIAS
uniform sampler2D u_bias;
#endif
uniform int u_length;
out float o_value;

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  int row = index / u_length;
  int feature = index % u_length;
#ifdef LAYER_NORM
  float value = (fetch(u_x, index) - fetch(u_center, row)) * fetch(u_scale, row);
#else
  float value = fetch(u_x, index) * fetch(u_scale, row);
#endif
#ifdef HAS_WEIGHT
  value *= fetch(u_weight, feature);
#endif
#ifdef HAS_BIAS
  value += fetch(u_bias, feature);
#endif
  o_value = value;
}
