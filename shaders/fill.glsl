// fill: the allocators. full: y[i] = u_start (u_step = 0); arange: y[i] = u_start + i.
// Inputs: none. Uniforms: u_out_size, u_start, u_step.

uniform float u_start;
uniform float u_step;
out float o_value;

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  o_value = u_step == 0.0 ? u_start : u_start + u_step * float(index);
}
