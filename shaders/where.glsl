// where: y = cond ? a : b with numpy broadcasting; a or b may be a Python scalar.
// Inputs: u_cond, u_a, u_b (samplers; u_a / u_b absent when scalar). cond is bool (0/1).
// Uniforms: u_out_size; u_out_shape[MAX_RANK]; u_cond_strides / u_a_strides /
//   u_b_strides[MAX_RANK] (0 on broadcast axes); u_a_scalar, u_b_scalar.
// Compile-time: A_SCALAR, B_SCALAR.

uniform sampler2D u_cond;
uniform int u_cond_strides[MAX_RANK];
#ifdef A_SCALAR
uniform float u_a_scalar;
#else
uniform sampler2D u_a;
uniform int u_a_strides[MAX_RANK];
#endif
#ifdef B_SCALAR
uniform float u_b_scalar;
#else
uniform sampler2D u_b;
uniform int u_b_strides[MAX_RANK];
#endif
uniform int u_out_shape[MAX_RANK];
out float o_value;

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  int coords[MAX_RANK];
  coordinates(index, u_out_shape, coords);
  if (fetch(u_cond, dotStrides(coords, u_cond_strides)) != 0.0) {
#ifdef A_SCALAR
    o_value = u_a_scalar;
#else
    o_value = fetch(u_a, dotStrides(coords, u_a_strides));
#endif
  } else {
#ifdef B_SCALAR
    o_value = u_b_scalar;
#else
    o_value = fetch(u_b, dotStrides(coords, u_b_strides));
#endif
  }
}
