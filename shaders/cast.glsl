// cast: float -> integer (truncation toward zero, as numpy's astype) or -> bool.
// (Casts that keep the stored values — int <-> int, int/bool -> float — share the
// input texture and run no kernel.)
// Inputs: u_x. Uniforms: u_out_size. Compile-time: TO_INT or TO_BOOL.

uniform sampler2D u_x;
out float o_value;

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  float x = fetch(u_x, index);
#ifdef TO_BOOL
  o_value = x != 0.0 ? 1.0 : 0.0;
#else
  o_value = trunc(x);
#endif
}
