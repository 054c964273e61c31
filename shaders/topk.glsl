// topk along one axis: the k largest values, sorted descending, and their indices;
// equal values keep the lower index first. The j-th output of a row is found by
// j + 1 rounds of "largest element ranked after the previous one" in the order
// (value descending, index ascending): O(k * length) per output.
// x is viewed as [outer, length, inner]; outputs are [outer, k, inner].
// Outputs (two render targets): o_values, o_indices.
// Inputs: u_x. Uniforms: u_out_size, u_length, u_inner, u_k.

uniform sampler2D u_x;
uniform int u_length;
uniform int u_inner;
uniform int u_k;
layout(location = 0) out float o_values;
layout(location = 1) out float o_indices;

// Ranked strictly after (previous, previousAt): smaller, or equal with a larger index.
bool after(float value, int at, float previous, int previousAt) {
  return value < previous || (value == previous && at > previousAt);
}

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_values = 0.0; o_indices = 0.0; return; }
  int rank = (index / u_inner) % u_k;
  int base = (index / (u_inner * u_k)) * u_length * u_inner + index % u_inner;
  float previous = positiveInfinity();
  int previousAt = -1;
  for (int pass = 0; pass <= rank; pass++) {
    float best = 0.0;
    int bestAt = -1;
    for (int t = 0; t < u_length; t++) {
      float value = fetch(u_x, base + t * u_inner);
      if (!after(value, t, previous, previousAt)) continue;
      if (bestAt < 0 || value > best) { best = value; bestAt = t; }
    }
    previous = best;
    previousAt = bestAt;
  }
  o_values = previous;
  o_indices = float(previousAt);
}
