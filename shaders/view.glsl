// view: copy a strided view of x: permute, broadcast_to and slice (including
// numpy-outer indexing with integer lists on some axes).
// y[c] = x[u_offset + sum over axes d of term(d)], with term(d) = c[d] * u_strides[d],
// or, on a list axis (u_list_offsets[d] >= 0), u_lists[u_list_offsets[d] + c[d]] *
// u_strides[d] (the chosen index times x's stride on that axis).
// Inputs: u_x; u_lists (all index lists of the key, concatenated; HAS_LISTS only).
// Uniforms: u_out_size; u_out_shape[MAX_RANK]; u_strides[MAX_RANK]; u_offset;
//   u_list_offsets[MAX_RANK] (-1 on axes that are not lists).
// Compile-time: HAS_LISTS.

uniform sampler2D u_x;
uniform int u_out_shape[MAX_RANK];
uniform int u_strides[MAX_RANK];
uniform int u_offset;
#ifdef HAS_LISTS
uniform sampler2D u_lists;
uniform int u_list_offsets[MAX_RANK];
#endif
out float o_value;

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  int coords[MAX_RANK];
  coordinates(index, u_out_shape, coords);
#ifdef HAS_LISTS
  for (int axis = 0; axis < MAX_RANK; axis++) {
    if (u_list_offsets[axis] >= 0) coords[axis] = int(fetch(u_lists, u_list_offsets[axis] + coords[axis]));
  }
#endif
  o_value = fetch(u_x, u_offset + dotStrides(coords, u_strides));
}
