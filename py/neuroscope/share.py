"""Lens share links from Python: the encoding of ``web/share.js``, byte for byte.

``"ns1." + base64url(length[4, big-endian] + SHA-256(compressed)[:8] + compressed)`` where
``compressed`` is raw deflate of the state's UTF-8 JSON. ``share_state(model, ...)`` builds a
state the Lens opens (its model, prompt, view and notebook cells; cells never run until
clicked), ``encode_state`` / ``decode_state`` convert it, ``share_link(state, base)`` makes the
URL. Standard library only.
"""

import base64
import hashlib
import json
import os
import re
import struct
import zlib

from .errors import NeuroScopeError

FORMAT = "ns1"
STATE_VERSION = 1
CELL_TYPES = ("markdown", "code", "view")
DEFAULT_BASE = "http://localhost:8000/"
DEFAULT_PROMPT = "When Mary and John went to the store, John gave a drink to"  # web/state.js
_MAX_STATE_BYTES = 64 << 20
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class ShareLinkError(NeuroScopeError, ValueError):
    """A share link or state that cannot be read or written."""


def model_ref(model):
    """How the Lens names ``model``: ``"demo"`` for the packaged demo model, else its source."""
    from .demo import MODEL_DIR
    source = getattr(model, "source", None)
    if isinstance(source, str) and os.path.abspath(source) == os.path.abspath(MODEL_DIR):
        return "demo"
    return source if isinstance(source, str) and source else "demo"


def share_state(model, prompt=DEFAULT_PROMPT, view="notebook", notebook=(), selection=None, interventions=()):
    """A Lens state (``v`` 1): ``notebook`` is a list of ``{"type": "markdown" | "code" | "view",
    "source": str}`` cells."""
    state = {"v": STATE_VERSION, "model": {"ref": model_ref(model)}, "prompt": prompt, "view": view,
             "selection": dict(selection or {}), "interventions": list(interventions),
             "notebook": [dict(cell) for cell in notebook]}
    return validate_state(state)


def validate_state(state):
    """The checks of ``share.js``'s ``validateState`` (the fields the Lens reads)."""
    def fail(field, expected, value):
        raise ShareLinkError(f'share state: field "{field}" is {value!r}, expected {expected}')
    if not isinstance(state, dict):
        fail("(root)", "an object", state)
    if state.get("v") != STATE_VERSION:
        fail("v", STATE_VERSION, state.get("v"))
    model = state.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("ref"), str) or not model["ref"]:
        fail("model.ref", "a non-empty string", model)
    sha256 = model.get("sha256")
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
        fail("model.sha256", "64 hexadecimal digits (a SHA-256 digest)", sha256)
    for field in ("prompt", "view"):
        if not isinstance(state.get(field), str):
            fail(field, "a string", state.get(field))
    for field in ("corrupted", "answer", "wrong"):
        if state.get(field) is not None and not isinstance(state[field], str):
            fail(field, "a string or nothing", state[field])
    if not isinstance(state.get("selection"), dict):
        fail("selection", "an object", state.get("selection"))
    if not isinstance(state.get("interventions"), list):
        fail("interventions", "an array of intervention specs", state.get("interventions"))
    for index, spec in enumerate(state["interventions"]):
        where = f"interventions[{index}]"
        if not isinstance(spec, dict):
            fail(where, "an object (an intervention spec)", spec)
        if "intervention" in spec:
            inner = spec["intervention"]
            if not isinstance(inner, dict) or not isinstance(inner.get("type"), str):
                fail(f"{where}.intervention.type", "a string naming the intervention",
                     inner.get("type") if isinstance(inner, dict) else None)
        elif not isinstance(spec.get("type"), str):
            fail(f"{where}.type", 'a string naming the intervention (e.g. "zero_ablation")', spec.get("type"))
    cells = state.get("notebook")
    if not isinstance(cells, list):
        fail("notebook", "an array of cells", cells)
    for index, cell in enumerate(cells):
        if (
            not isinstance(cell, dict)
            or cell.get("type") not in CELL_TYPES
            or not isinstance(cell.get("source"), str)
        ):
            fail(f"notebook[{index}]", f"an object {{type: one of {list(CELL_TYPES)}, source: string}}", cell)
    return state


def encode_state(state):
    validate_state(state)
    try:  # JSON has no NaN or Infinity: the Lens's JSON.parse would refuse the link
        text = json.dumps(state, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ShareLinkError(f"the share state cannot be written as JSON: {error}") from None
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    compressed = compressor.compress(text.encode("utf-8")) + compressor.flush()
    header = struct.pack(">I", len(compressed)) + hashlib.sha256(compressed).digest()[:8]
    return f"{FORMAT}." + base64.urlsafe_b64encode(header + compressed).decode("ascii").rstrip("=")


def decode_state(fragment):
    if not isinstance(fragment, str) or not fragment.strip():
        raise ShareLinkError("the share link is empty: it holds no state after #s=")
    text = fragment.strip()
    if "#" in text:
        text = next((part[2:] for part in text.split("#", 1)[1].split("&") if part.startswith("s=")), "")
    if not text.startswith(FORMAT + "."):
        raise ShareLinkError(f"this is not a NeuroScope share link: it should start with {FORMAT!r}.")
    body = text[len(FORMAT) + 1 :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError as error:
        raise ShareLinkError(f"the share link is not valid base64url ({error})") from None
    if len(raw) < 12:
        raise ShareLinkError(f"the share link is truncated: {len(raw)} bytes, fewer than its 12-byte header")
    declared = struct.unpack(">I", raw[:4])[0]
    compressed = raw[12:]
    if declared != len(compressed):
        raise ShareLinkError(
            f"the share link is truncated or damaged: it holds {len(compressed)} of the "
            f"{declared} bytes it declares"
        )
    if hashlib.sha256(compressed).digest()[:8] != raw[4:12]:
        raise ShareLinkError("the share link's checksum does not match its content")
    try:
        inflater = zlib.decompressobj(-15)
        data = inflater.decompress(compressed, _MAX_STATE_BYTES)
        if inflater.unconsumed_tail:
            raise ShareLinkError("the share state is larger than 64 MiB once decompressed")
        state = json.loads(data.decode("utf-8"), parse_constant=_not_json)
    except (zlib.error, UnicodeDecodeError, ValueError) as error:
        raise ShareLinkError(f"the share link's content is corrupt ({error})") from None
    return validate_state(state)


def _not_json(name):
    raise ValueError(f"{name} is not a JSON value")


def share_link(state, base=DEFAULT_BASE):
    """``base`` + ``#s=`` + the encoded state (where the Lens is served: ``base``)."""
    return f"{base.split('#', 1)[0]}#s={encode_state(state)}"


__all__ = [
    "ShareLinkError",
    "decode_state",
    "encode_state",
    "model_ref",
    "share_link",
    "share_state",
    "validate_state",
]
