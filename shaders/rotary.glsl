// rotary: GPT-NeoX rotary embedding (rotate_half) on the first u_rotary features of
// x [batch, pos, head, d_head]; the remaining features are copied.
//   y[e] = x[e] * cos[e] + rotated[e] * sin[e],  rotated = concat(-x[half:], x[:half])
// cos / sin are [batch, pos, rotary_dim], shared by every head (batch or pos may be 1
// and broadcast: stride 0).
// Inputs: u_x, u_cos, u_sin.
// Uniforms: u_out_size, u_positions, u_heads, u_features (d_head), u_rotary,
//   u_table_batch_stride, u_table_position_stride.

uniform sampler2D u_x;
uniform sampler2D u_cos;
uniform sampler2D u_sin;
uniform int u_positions;
uniform int u_heads;
uniform int u_features;
uniform int u_rotary;
uniform int u_table_batch_stride;
uniform int u_table_position_stride;
out float o_value;

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  int feature = index % u_features;
  float x = fetch(u_x, index);
  if (feature >= u_rotary) { o_value = x; return; }
  int position = (index / (u_features * u_heads)) % u_positions;
  int batch = index / (u_features * u_heads * u_positions);
  int table = batch * u_table_batch_stride + position * u_table_position_stride + feature;
  int half_ = u_rotary / 2;
  float rotated = feature < half_ ? -fetch(u_x, index + half_) : fetch(u_x, index - half_);
  o_value = x * fetch(u_cos, table) + rotated * fetch(u_sin, table);
}
