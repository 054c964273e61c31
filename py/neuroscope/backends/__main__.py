"""``python -m neuroscope.backends > worker/backends/op_table.js``: print the op
table (``ops.py``) as the ES module the worker's kernel bridge imports."""

from .ops import js_module

print(js_module(), end="")
