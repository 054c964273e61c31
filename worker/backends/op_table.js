// Generated from py/neuroscope/backends/ops.py (the op table) by
// `python -m neuroscope.backends > worker/backends/op_table.js`; do not edit.
export const OP_TABLE = {
  "primitive": {
    "unary": {"params": [{"name": "op", "kind": "name", "choices": ["neg", "exp", "log", "sqrt", "rsqrt", "tanh", "abs", "square", "relu", "sigmoid", "silu", "gelu", "gelu_new", "isfinite"]}, {"name": "x", "kind": "tensor"}], "outputs": 1, "doc": ""},
    "binary": {"params": [{"name": "op", "kind": "name", "choices": ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge"]}, {"name": "a", "kind": "operand"}, {"name": "b", "kind": "operand"}], "outputs": 1, "doc": "numpy broadcasting; a or b may be a Python scalar"},
    "where": {"params": [{"name": "cond", "kind": "tensor"}, {"name": "a", "kind": "operand"}, {"name": "b", "kind": "operand"}], "outputs": 1, "doc": "numpy broadcasting; a or b may be a Python scalar"},
    "cast": {"params": [{"name": "x", "kind": "tensor"}, {"name": "dtype", "kind": "dtype"}], "outputs": 1, "doc": ""},
    "matmul": {"params": [{"name": "a", "kind": "tensor"}, {"name": "b", "kind": "tensor"}, {"name": "transpose_a", "kind": "bool", "default": false}, {"name": "transpose_b", "kind": "bool", "default": false}], "outputs": 1, "doc": "batched over leading axes, which broadcast"},
    "reduce": {"params": [{"name": "op", "kind": "name", "choices": ["sum", "mean", "max", "min", "var"]}, {"name": "x", "kind": "tensor"}, {"name": "axes", "kind": "ints"}, {"name": "keepdims", "kind": "bool"}], "outputs": 1, "doc": ""},
    "argmax": {"params": [{"name": "x", "kind": "tensor"}, {"name": "axis", "kind": "int"}], "outputs": 1, "doc": "int64 result"},
    "cumsum": {"params": [{"name": "x", "kind": "tensor"}, {"name": "axis", "kind": "int"}], "outputs": 1, "doc": ""},
    "softmax": {"params": [{"name": "x", "kind": "tensor"}, {"name": "axis", "kind": "int"}], "outputs": 1, "doc": "safe: a row that is entirely -inf gives zeros, not NaN"},
    "log_softmax": {"params": [{"name": "x", "kind": "tensor"}, {"name": "axis", "kind": "int"}], "outputs": 1, "doc": ""},
    "layer_norm": {"params": [{"name": "x", "kind": "tensor"}, {"name": "weight", "kind": "tensor?"}, {"name": "bias", "kind": "tensor?"}, {"name": "eps", "kind": "float"}], "outputs": 1, "doc": "over the last axis; weight and bias may be None"},
    "rms_norm": {"params": [{"name": "x", "kind": "tensor"}, {"name": "weight", "kind": "tensor?"}, {"name": "eps", "kind": "float"}], "outputs": 1, "doc": "over the last axis; weight may be None"},
    "gather": {"params": [{"name": "x", "kind": "tensor"}, {"name": "indices", "kind": "tensor"}, {"name": "axis", "kind": "int"}], "outputs": 1, "doc": "numpy take: result shape x[:axis] + indices + x[axis+1:]"},
    "take_along": {"params": [{"name": "x", "kind": "tensor"}, {"name": "indices", "kind": "tensor"}, {"name": "axis", "kind": "int"}], "outputs": 1, "doc": "numpy take_along_axis"},
    "slice": {"params": [{"name": "x", "kind": "tensor"}, {"name": "key", "kind": "key"}], "outputs": 1, "doc": "outer indexing in axis order; an int drops its axis"},
    "set_slice": {"params": [{"name": "x", "kind": "tensor"}, {"name": "key", "kind": "key"}, {"name": "value", "kind": "operand"}], "outputs": 1, "doc": "a copy of x with x[key] = value"},
    "concat": {"params": [{"name": "xs", "kind": "tensors"}, {"name": "axis", "kind": "int"}], "outputs": 1, "doc": ""},
    "reshape": {"params": [{"name": "x", "kind": "tensor"}, {"name": "shape", "kind": "ints"}], "outputs": 1, "doc": ""},
    "permute": {"params": [{"name": "x", "kind": "tensor"}, {"name": "axes", "kind": "ints"}], "outputs": 1, "doc": ""},
    "broadcast_to": {"params": [{"name": "x", "kind": "tensor"}, {"name": "shape", "kind": "ints"}], "outputs": 1, "doc": ""},
    "topk": {"params": [{"name": "x", "kind": "tensor"}, {"name": "k", "kind": "int"}, {"name": "axis", "kind": "int"}], "outputs": 2, "doc": "(values, int64 indices), sorted descending; ties keep the lower index first"},
    "rotary": {"params": [{"name": "x", "kind": "tensor"}, {"name": "cos", "kind": "tensor"}, {"name": "sin", "kind": "tensor"}, {"name": "rotary_dim", "kind": "int"}], "outputs": 1, "doc": "GPT-NeoX rotate_half on the first rotary_dim features of x [batch, pos, head, d_head]; cos, sin [batch, pos, rotary_dim]"},
    "attention": {"params": [{"name": "q", "kind": "tensor"}, {"name": "k", "kind": "tensor"}, {"name": "v", "kind": "tensor"}, {"name": "mask", "kind": "tensor?"}, {"name": "scale", "kind": "float"}, {"name": "return_pattern", "kind": "bool"}], "outputs": 2, "doc": "(z, pattern or None); q [batch, q_pos, head, d_head], k, v [batch, k_pos, kv_head, d_head], head a multiple of kv_head; mask bool [batch, q_pos, k_pos] (True = may attend) or None for causal attention with the queries aligned to the last keys"}
  },
  "allocators": {
    "full": {"params": [{"name": "value", "kind": "number"}], "outputs": 1, "doc": "every element = value"},
    "arange": {"params": [{"name": "start", "kind": "int"}], "outputs": 1, "doc": "start, start + 1, ... along the one axis"}
  }
};
