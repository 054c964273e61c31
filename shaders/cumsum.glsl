// cumsum along one axis: y[o, t, i] = sum of x[o, 0..t, i].
// x is viewed as [outer, length, inner], y has the same shape.
// Inputs: u_x. Uniforms: u_out_size, u_length, u_inner.

uniform sampler2D u_x;
uniform int u_length;
uniform int u_inner;
out float o_value;

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  int position = (index / u_inner) % u_length;
  int base = index - position * u_inner;
  float total = 0.0;
  for (int t = 0; t <= position; t++) total += fetch(u_x, base + t * u_inner);
  o_value = total;
}
