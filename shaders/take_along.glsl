// take_along (numpy take_along_axis): y[c] = x[c with c[axis] := indices[c]], both x
// and the index tensor broadcast against the output's coordinates c.
// Inputs: u_x, u_indices (int tensor).
// Uniforms: u_out_size; u_out_shape[MAX_RANK]; u_x_strides[MAX_RANK] (0 on the axis
//   and on broadcast axes); u_axis_stride (x's stride along the axis); u_axis_length;
//   u_index_strides[MAX_RANK] (0 on broadcast axes).

uniform sampler2D u_x;
uniform sampler2D u_indices;
uniform int u_out_shape[MAX_RANK];
uniform int u_x_strides[MAX_RANK];
uniform int u_index_strides[MAX_RANK];
uniform int u_axis_stride;
uniform int u_axis_length;
out float o_value;

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  int coords[MAX_RANK];
  coordinates(index, u_out_shape, coords);
  int at = int(fetch(u_indices, dotStrides(coords, u_index_strides)));
  if (at < 0) at += u_axis_length;
  o_value = fetch(u_x, dotStrides(coords, u_x_strides) + at * u_axis_stride);
}
