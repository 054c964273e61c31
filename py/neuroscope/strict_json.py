"""``loads``: JSON as the standard has it, for files and links made elsewhere.

Python's ``json`` keeps the last of a key given twice in one object, silently, and reads
``NaN`` / ``Infinity``, which are not JSON (a browser's ``JSON.parse`` refuses them): both are
refused here with a ``ValueError`` naming them (``json.JSONDecodeError`` is one too).
"""

import json


def _unique(items):
    value = {}
    for key, item in items:
        if key in value:
            raise ValueError(f"key {key!r} twice in one object")
        value[key] = item
    return value


def _not_json(name):
    raise ValueError(f"{name} is not a JSON value")


def loads(text):
    return json.loads(text, object_pairs_hook=_unique, parse_constant=_not_json)


__all__ = ["loads"]
