// reduce: sum / mean / max / min / var of x over a set of axes (numpy, ddof 0).
// Each output element loops over the reduced axes of its own slice of x.
// Inputs: u_x.
// Uniforms: u_out_size; u_keep_shape[MAX_RANK] (x's shape with the reduced axes set
//   to 1: the output's element order); u_keep_strides[MAX_RANK] (x's strides on the
//   kept axes, 0 elsewhere); u_reduce_shape[MAX_RANK] (x's shape with the kept axes
//   set to 1); u_reduce_strides[MAX_RANK]; u_reduce_size (elements per output).
// Compile-time: OP_SUM, OP_MEAN, OP_MAX, OP_MIN or OP_VAR; CONTIGUOUS (the reduced
//   elements of one output are consecutive in x: no coordinates per element).

uniform sampler2D u_x;
uniform int u_keep_shape[MAX_RANK];
uniform int u_keep_strides[MAX_RANK];
uniform int u_reduce_shape[MAX_RANK];
uniform int u_reduce_strides[MAX_RANK];
uniform int u_reduce_size;
out float o_value;

float element(int base, int r) {
#ifdef CONTIGUOUS
  return fetch(u_x, base + r);
#else
  int coords[MAX_RANK];
  coordinates(r, u_reduce_shape, coords);
  return fetch(u_x, base + dotStrides(coords, u_reduce_strides));
#endif
}

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  int kept[MAX_RANK];
  coordinates(index, u_keep_shape, kept);
  int base = dotStrides(kept, u_keep_strides);
#if defined(OP_MAX) || defined(OP_MIN)
  float best = element(base, 0);
  for (int r = 1; r < u_reduce_size; r++) {
    float value = element(base, r);
#ifdef OP_MAX
    if (value > best || isNan(value)) best = isNan(best) ? best : value;
#else
    if (value < best || isNan(value)) best = isNan(best) ? best : value;
#endif
  }
  o_value = best;
#else
  float total = 0.0;
  for (int r = 0; r < u_reduce_size; r++) total += element(base, r);
#if defined(OP_SUM)
  o_value = total;
#else
  float mean = total / float(u_reduce_size);
#ifdef OP_MEAN
  o_value = mean;
#else
  float squares = 0.0;
  for (int r = 0; r < u_reduce_size; r++) {
    float centered = element(base, r) - mean;
    squares += centered * centered;
  }
  o_value = squares / float(u_reduce_size);
#endif
#endif
#endif
}
