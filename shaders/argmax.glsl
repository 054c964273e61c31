// argmax along one axis: index of the first maximum (the first nan if any, as numpy).
// x is viewed as [outer, length, inner]; the output is [outer, inner].
// Inputs: u_x. Uniforms: u_out_size, u_length, u_inner.

uniform sampler2D u_x;
uniform int u_length;
uniform int u_inner;
out float o_value;

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  int base = (index / u_inner) * u_length * u_inner + index % u_inner;
  float best = fetch(u_x, base);
  int bestAt = 0;
  for (int t = 1; t < u_length && !isNan(best); t++) {
    float value = fetch(u_x, base + t * u_inner);
    if (value > best || isNan(value)) { best = value; bestAt = t; }
  }
  o_value = float(bestAt);
}
