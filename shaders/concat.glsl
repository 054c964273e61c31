// concat, one pass per input: writes the input's block of the output along the axis
// and discards every other fragment (the other passes write those).
// The output is viewed as [outer, total, inner], the input as [outer, length, inner]
// placed at u_start along the axis.
// Inputs: u_x. Uniforms: u_out_size, u_total, u_inner, u_start, u_length.

uniform sampler2D u_x;
uniform int u_total;
uniform int u_inner;
uniform int u_start;
uniform int u_length;
out float o_value;

void main() {
  int index = outputIndex();
  if (index >= u_out_size) discard;
  int inner = index % u_inner;
  int along = (index / u_inner) % u_total - u_start;
  if (along < 0 || along >= u_length) discard;
  int outer = index / (u_inner * u_total);
  o_value = fetch(u_x, (outer * u_length + along) * u_inner + inner);
}
