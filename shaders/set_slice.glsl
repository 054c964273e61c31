// set_slice: a copy of x with x[key] = value (value a tensor broadcast to the
// slice's shape, or a scalar); with integer lists the key indexes numpy-outer style,
// and where a list repeats an index the last occurrence wins.
// Each output element decides, axis by axis of x, whether it lies inside the key:
//   kind 0 (range start, start + step, ... count terms): on the grid and in range;
//   kind 1 (integer): equal to u_start; kind 2 (list): present in the list.
// Its position inside the slice times u_value_strides gives the value's element.
// Inputs: u_x; u_value (VALUE_SCALAR: the uniform u_value_scalar instead); u_lists
//   (all lists of the key, concatenated; HAS_LISTS only).
// Uniforms: u_out_size; u_out_shape[MAX_RANK] (x's shape, right-aligned); per axis
//   [MAX_RANK]: u_kind, u_start, u_step, u_count, u_list_offsets, u_value_strides
//   (0 for integer axes and for axes the value broadcasts over).
// Compile-time: VALUE_SCALAR, HAS_LISTS, OUT_INT (x is integer: truncate the value).

uniform sampler2D u_x;
#ifdef VALUE_SCALAR
uniform float u_value_scalar;
#else
uniform sampler2D u_value;
#endif
#ifdef HAS_LISTS
uniform sampler2D u_lists;
uniform int u_list_offsets[MAX_RANK];
#endif
uniform int u_out_shape[MAX_RANK];
uniform int u_kind[MAX_RANK];
uniform int u_start[MAX_RANK];
uniform int u_step[MAX_RANK];
uniform int u_count[MAX_RANK];
uniform int u_value_strides[MAX_RANK];
out float o_value;

// Position of coord in the range (start, step, count), or -1. Divides non-negative
// numbers only: GLSL leaves / and % of negatives loosely defined.
int rangePosition(int coord, int start, int step, int count) {
  int distance = step > 0 ? coord - start : start - coord;
  int stride = abs(step);
  if (distance < 0 || distance % stride != 0) return -1;
  int position = distance / stride;
  return position < count ? position : -1;
}

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  int coords[MAX_RANK];
  coordinates(index, u_out_shape, coords);
  int valueIndex = 0;
  bool inside = true;
  for (int axis = 0; axis < MAX_RANK && inside; axis++) {
    int position = -1;
    if (u_kind[axis] == 0) {
      position = rangePosition(coords[axis], u_start[axis], u_step[axis], u_count[axis]);
    } else if (u_kind[axis] == 1) {
      position = coords[axis] == u_start[axis] ? 0 : -1;
#ifdef HAS_LISTS
    } else {
      for (int j = 0; j < u_count[axis]; j++) {
        if (int(fetch(u_lists, u_list_offsets[axis] + j)) == coords[axis]) position = j;
      }
#endif
    }
    inside = position >= 0;
    valueIndex += position * u_value_strides[axis];
  }
  if (!inside) {
    o_value = fetch(u_x, index);
    return;
  }
#ifdef VALUE_SCALAR
  float value = u_value_scalar;
#else
  float value = fetch(u_value, valueIndex);
#endif
#ifdef OUT_INT
  value = trunc(value);
#endif
  o_value = value;
}
