// attention_scores: the first pass of attention. scores[b, h, p, j] =
// scale * (q[b, p, h, :] . k[b, j, h / group, :]), or -inf where the key is masked;
// row_stats.glsl + softmax.glsl then turn the scores into the pattern.
// Grouped-query attention: query head h reads key head h / (heads / kv_heads), as
// numpy's repeat of each key head.
// Inputs: u_q [b, p, heads, e], u_k [b, keys, kv_heads, e], u_mask [b, p, keys] (bool;
//   HAS_MASK only, batch may be 1 and broadcast).
// Uniforms: u_out_size, u_queries (p), u_keys, u_heads, u_kv_heads, u_depth (e),
//   u_scale, u_mask_batch_stride.
// Compile-time: HAS_MASK; without it the mask is causal with the queries aligned to
//   the last keys: key j is visible to query i when j <= i + keys - queries.

uniform sampler2D u_q;
uniform sampler2D u_k;
#ifdef HAS_MASK
uniform sampler2D u_mask;
uniform int u_mask_batch_stride;
#endif
uniform int u_queries;
uniform int u_keys;
uniform int u_heads;
uniform int u_kv_heads;
uniform int u_depth;
uniform float u_scale;
out float o_value;

void main() {
  int index = outputIndex();
  if (index >= u_out_size) { o_value = 0.0; return; }
  int key = index % u_keys;
  int query = (index / u_keys) % u_queries;
  int head = (index / (u_keys * u_queries)) % u_heads;
  int batch = index / (u_keys * u_queries * u_heads);
#ifdef HAS_MASK
  bool visible = fetch(u_mask, batch * u_mask_batch_stride + query * u_keys + key) != 0.0;
#else
  bool visible = key <= query + u_keys - u_queries;
#endif
  if (!visible) { o_value = -positiveInfinity(); return; }
  int kvHead = head / (u_heads / u_kv_heads);
  int q = ((batch * u_queries + query) * u_heads + head) * u_depth;
  int k = ((batch * u_keys + key) * u_kv_heads + kvHead) * u_depth;
  float dot_ = 0.0;
  for (int e = 0; e < u_depth; e++) dot_ += fetch(u_q, q + e) * fetch(u_k, k + e);
  o_value = dot_ * u_scale;
}
