// gather (numpy take along an axis): y[o, j, i] = x[o, indices[j], i], where x is
// viewed as [outer, length, inner] and the index tensor is flattened to [count];
// negative indices count from the end, as in numpy.
// Inputs: u_x, u_indices (int tensor).
// Uniforms: u_out_size, u_length (x's size on the axis), u_count (index elements),
//   u_inner.

uniform sampler2D u_x;
uniform sampler2D u_indices;
uniform int u_length;
uniform int u_count;
uniform int u_inner;
out float o_value;

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  int inner = index % u_inner;
  int j = (index / u_inner) % u_count;
  int outer = index / (u_inner * u_count);
  int at = int(fetch(u_indices, j));
  if (at < 0) at += u_length;
  o_value = fetch(u_x, (outer * u_length + at) * u_inner + inner);
}
