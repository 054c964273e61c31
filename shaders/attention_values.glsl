// attention_values: the last pass of attention. z[b, p, h, c] =
// sum over keys j of pattern[b, h, p, j] * v[b, j, h / group, c].
// Inputs: u_pattern [b, heads, p, keys], u_v [b, keys, kv_heads, e_v].
// Uniforms: u_out_size, u_queries, u_keys, u_heads, u_kv_heads, u_depth (e_v).

uniform sampler2D u_pattern;
uniform sampler2D u_v;
uniform int u_queries;
uniform int u_keys;
uniform int u_heads;
uniform int u_kv_heads;
uniform int u_depth;
out float o_value;

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  int feature = index % u_depth;
  int head = (index / u_depth) % u_heads;
  int query = (index / (u_depth * u_heads)) % u_queries;
  int batch = index / (u_depth * u_heads * u_queries);
  int kvHead = head / (u_heads / u_kv_heads);
  int p = ((batch * u_heads + head) * u_queries + query) * u_keys;
  int v = (batch * u_keys * u_kv_heads + kvHead) * u_depth + feature;
  int vStride = u_kv_heads * u_depth;
  float total = 0.0;
  for (int j = 0; j < u_keys; j++) total += fetch(u_pattern, p + j) * fetch(u_v, v + j * vStride);
  o_value = total;
}
