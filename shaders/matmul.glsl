// matmul: y[batch, r, c] = sum_t a[batch, r, t] * b[batch, t, c], batched with numpy
// broadcasting over the leading axes; transposes are folded into the strides.
// Inputs: u_a, u_b.
// Uniforms: u_out_size; u_rows, u_cols, u_inner (m, n, k); u_batch_shape[MAX_RANK]
//   (the output's batch axes, right-aligned); u_a_batch_strides / u_b_batch_strides
//   [MAX_RANK] (0 on broadcast axes); u_a_row_stride, u_a_inner_stride,
//   u_b_inner_stride, u_b_col_stride (element strides of the two matrix axes).

uniform sampler2D u_a;
uniform sampler2D u_b;
uniform int u_rows;
uniform int u_cols;
uniform int u_inner;
uniform int u_batch_shape[MAX_RANK];
uniform int u_a_batch_strides[MAX_RANK];
uniform int u_b_batch_strides[MAX_RANK];
uniform int u_a_row_stride;
uniform int u_a_inner_stride;
uniform int u_b_inner_stride;
uniform int u_b_col_stride;
out float o_value;

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  int col = index % u_cols;
  int row = (index / u_cols) % u_rows;
  int batch[MAX_RANK];
  coordinates(index / (u_cols * u_rows), u_batch_shape, batch);
  int a = dotStrides(batch, u_a_batch_strides) + row * u_a_row_stride;
  int b = dotStrides(batch, u_b_batch_strides) + col * u_b_col_stride;
  // Two accumulators: halves the rounding drift of one long running sum.
  float even = 0.0;
  float odd = 0.0;
  int t = 0;
  for (; t + 1 < u_inner; t += 2) {
    even += fetch(u_a, a) * fetch(u_b, b);
    odd += fetch(u_a, a + u_a_inner_stride) * fetch(u_b, b + u_b_inner_stride);
    a += 2 * u_a_inner_stride;
    b += 2 * u_b_inner_stride;
  }
  if (t < u_inner) even += fetch(u_a, a) * fetch(u_b, b);
  o_value = even + odd;
}
