"""Output shape and dtype of every primitive op: the shape rules of the op table.

The rules live with the ops they describe, in ``ops.py``; this module keeps the
names ``infer`` and ``broadcast`` where their importers look for them.
"""

from .ops import broadcast, infer

__all__ = ["broadcast", "infer"]
