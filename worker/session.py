"""The worker's Python side: one session namespace, running code, results for the page.

worker/worker.js writes this file into Pyodide as the module ``neuroscope_session`` and
calls ``run`` (an async function, so ``pyodide.ffi.run_sync`` works inside the user's
code where the browser has JSPI). Values from the page arrive as a JS object and enter
the namespace as globals; they are never pasted into source. Results go back as
JSON-able values (a Tensor as ``{shape, dtype, data}`` with ``data`` a TypedArray), and
an exception as ``{pyType, message, traceback}``. See worker/protocol.js.
"""

import io
import signal
import sys
import traceback
from array import array
from contextlib import redirect_stderr, redirect_stdout

import js
from pyodide.code import eval_code_async
from pyodide.ffi import JsProxy, jsnull, to_js

from neuroscope.backends.js_backend import on_interrupt

FILENAME = "<neuroscope>"
CELL_FILENAME = "<cell>"
namespace = {"__name__": "__main__"}
_kernels = {"backend": None, "bridge": None}
_TYPECODES = {"float32": "f", "int64": "i", "int32": "i", "bool": "B", "uint8": "B"}


# The page's Interrupt arrives as SIGINT (Pyodide's interrupt buffer): raised once, never
# lost in a wait on the device (see the handler).
signal.signal(signal.SIGINT, on_interrupt)


def install_backend(bridge, name):
    """Make the worker's kernel bridge the active neuroscope backend."""
    import neuroscope
    from neuroscope.backends.js_backend import JsBackend
    _kernels["backend"] = neuroscope.set_backend(JsBackend(bridge, name))
    _kernels["bridge"] = bridge


def versions():
    import neuroscope
    return to_js({"python": sys.version.split()[0], "neuroscope": neuroscope.__version__},
                 dict_converter=js.Object.fromEntries)


async def run(code, injected=None):
    """Run ``code`` in the session namespace: {ok, result} or {ok: false, error}."""
    try:
        if injected is not None:
            namespace.update(_from_host(injected.to_py() if isinstance(injected, JsProxy) else injected))
        value = await eval_code_async(code, namespace, filename=FILENAME)
        reply = {"ok": True, "result": await to_host(value)}
    except BaseException as error:  # noqa: B036 - every failure goes back to the page
        reply = {"ok": False, "error": _describe(error)}
        del error
    return to_js(reply, dict_converter=js.Object.fromEntries, create_pyproxies=False)


async def run_cell(source):
    """A notebook cell: ``source`` run in the session namespace with its printed output kept.

    Returns ``{stdout, value}`` or ``{stdout, error: {pyType, message, traceback}}``; the
    page shows all of it under the cell (errors are results here, not rejections).
    """
    output = io.StringIO()
    with redirect_stdout(output), redirect_stderr(output):
        try:
            value = await eval_code_async(source, namespace, filename=CELL_FILENAME)
        except BaseException as error:  # noqa: B036 - the cell shows every failure
            return {"stdout": output.getvalue(), "error": _describe(error, CELL_FILENAME)}
    return {"stdout": output.getvalue(), "value": value}


def _from_host(value):
    """JS null arrives as ``jsnull``; the user's code expects None."""
    if value is jsnull:
        return None
    if isinstance(value, dict):
        return {key: _from_host(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_host(item) for item in value]
    return value


def _describe(error, filename=FILENAME):
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next  # drop this module's and Pyodide's frames above the user's code
    if tb is None:  # the code did not start (a SyntaxError): no frames worth showing
        lines = traceback.format_exception_only(type(error), error)
    else:
        lines = traceback.format_exception(type(error), error, tb)
    return {"pyType": type(error).__name__, "name": type(error).__name__, "message": str(error),
            "traceback": "".join(lines)}


async def to_host(value):
    """A value the page can receive: JSON-able, with Tensors as typed-array payloads."""
    from neuroscope.tensor import Tensor
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Tensor):
        return await _tensor_payload(value)
    if isinstance(value, (list, tuple)):
        return [await to_host(item) for item in value]
    if isinstance(value, dict):
        return {str(key): await to_host(item) for key, item in value.items()}
    if isinstance(value, JsProxy):
        return value
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy arrays and scalars
        return value.tolist()
    return repr(value)


async def _tensor_payload(tensor):
    shape, dtype = list(tensor.shape), tensor.dtype
    if _kernels["backend"] is not None and tensor.backend is _kernels["backend"]:
        device = await _kernels["bridge"].read(tensor.data.id)
        data = device.slice()  # a copy the page may own: the backend may keep `device`
    else:
        values = await tensor.tolist_async()
        for _ in range(len(shape) - 1):
            values = [item for row in values for item in row]
        data = to_js(array(_TYPECODES.get(dtype, "f"), values if shape else [values]))
    return {"shape": shape, "dtype": dtype, "data": data}
