"""The op table (backends/ops.py) is the one list of primitive ops: every backend and the
kernel test cases implement exactly its ops, with its parameter names, and the JS bridge
gets the same message however a caller spelled the arguments.

The JS backends are checked by importing their modules in node (they load there: nothing
touches a GPU until a backend is created), so a missing kernel fails here on a CPU-only
machine, before any browser test runs.
"""

import inspect
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from browser.op_cases import cases, run_case
from browser.replay import RecordingBridge
from neuroscope.backends import Backend, ops
from neuroscope.backends.js_backend import JsBackend
from neuroscope.backends.numpy_backend import NumpyBackend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JS_BACKENDS = ("cpu", "webgl", "webgpu")
MESSAGE_OPS = set(ops.PRIMITIVE_OPS) | set(ops.ALLOCATORS)  # what the kernel bridge runs

# Prints each JS backend's op names, the WebGPU shader op numbers, and the bridge's binding.
NODE_SCRIPT = """
const out = {};
for (const name of JSON.parse(process.env.JS_BACKENDS)) out[name] = Object.keys((await import(`./worker/backends/${name}.js`)).OPS);
const layout = await import("./worker/backends/webgpu_layout.js");
const math = await import("./worker/backends/webgpu_math.js");
out.codes = { unary: layout.UNARY_CODES, binary: layout.BINARY_CODES, reduce: math.REDUCE_CODES };
const { bindParams } = await import("./worker/bridge.js");
out.bound = bindParams("matmul", { a: { t: 1 }, b: { t: 2 }, transpose_b: true });
out.errors = [];
for (const [op, params] of [["nonsense", {}], ["toString", {}], ["softmax", { x: { t: 1 } }],
                            ["softmax", { x: { t: 1 }, axis: 0, dim: 1 }]]) {
  try { bindParams(op, params); out.errors.push(null); } catch (error) { out.errors.push(error.message); }
}
console.log(JSON.stringify(out));
"""


@pytest.fixture(scope="module")
def js_tables():
    node = shutil.which("node")
    assert node, "node is needed to import the worker's backends (build.py installs node_modules with npm)"
    result = subprocess.run([node, "--input-type=module", "-e", NODE_SCRIPT], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env=dict(os.environ, JS_BACKENDS=json.dumps(JS_BACKENDS)))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_worker_copy_of_the_table_is_current():
    with open(os.path.join(ROOT, "worker", "backends", "op_table.js"), encoding="utf-8") as handle:
        committed = handle.read()
    assert committed == ops.js_module(), (
        "worker/backends/op_table.js is out of date with backends/ops.py; regenerate it with "
        "`python -m neuroscope.backends > worker/backends/op_table.js`")


@pytest.mark.parametrize("backend", JS_BACKENDS)
def test_every_js_backend_has_a_kernel_for_every_op(js_tables, backend):
    names = set(js_tables[backend])
    assert not MESSAGE_OPS - names, f"{backend}.js has no kernel for {sorted(MESSAGE_OPS - names)}"
    assert not names - MESSAGE_OPS, f"{backend}.js has kernels for ops not in the table: {sorted(names - MESSAGE_OPS)}"


@pytest.mark.parametrize("op", ["unary", "binary", "reduce"])
def test_webgpu_shader_op_numbers_cover_the_table_choices(js_tables, op):
    codes = js_tables["codes"][op]
    assert set(codes) == set(ops.PRIMITIVE_OPS[op].param("op").choices)
    assert len(set(codes.values())) == len(codes), f"two {op} ops share a shader number: {codes}"


def test_the_bridge_binds_params_against_the_table(js_tables):
    assert js_tables["bound"] == {"a": {"tensor": 1}, "b": {"tensor": 2}, "transpose_a": False,
                                  "transpose_b": True}
    unknown, inherited, missing, extra = js_tables["errors"]
    assert unknown.startswith("unknown op nonsense; expected one of unary, binary")
    assert inherited.startswith("unknown op toString")
    assert missing == "op softmax is missing parameter axis; its parameters: x, axis"
    assert extra == "op softmax has no parameter dim; its parameters: x, axis"


@pytest.mark.parametrize("name", sorted(ops.PRIMITIVE_OPS))
def test_numpy_reference_has_the_tables_signature(name):
    method = getattr(NumpyBackend, name, None)
    assert callable(method), f"NumpyBackend has no method {name}"
    params = list(inspect.signature(method).parameters.values())[1:]  # after self
    got = [(p.name, None if p.default is inspect.Parameter.empty else repr(p.default)) for p in params]
    want = [(p.name, None if p.required else repr(p.default)) for p in ops.PRIMITIVE_OPS[name].params]
    assert got == want, f"NumpyBackend.{name}{inspect.signature(method)} vs the table's {ops.PRIMITIVE_OPS[name].signature}"


def test_op_cases_cover_every_op_and_every_choice():
    all_cases = cases()
    covered = {case[1] for case in all_cases}
    assert not MESSAGE_OPS - covered, f"tests/browser/op_cases.py has no case for {sorted(MESSAGE_OPS - covered)}"
    for name, spec in ops.PRIMITIVE_OPS.items():
        for index, param in enumerate(spec.params):
            if param.choices is None:
                continue
            seen = {case[2][index] for case in all_cases if case[1] == name}
            missing = set(param.choices) - seen
            assert not missing, f"op_cases.py has no {name} case with {param.name} in {sorted(missing)}"


def _messages(by_name):
    bridge = RecordingBridge()
    backend = JsBackend(bridge, "recording")
    keep = [run_case(backend, case, by_name=by_name) for case in cases()]
    return bridge.calls, keep


def test_positional_and_keyword_arguments_send_the_same_messages():
    positional, _ = _messages(by_name=False)
    keyword, _ = _messages(by_name=True)
    assert len(positional) == len(keyword)
    for a, b in zip(positional, keyword):
        assert a == b
    ran = {json.loads(call[1])["op"] for call in positional if call[0] == "run"}
    assert ran == MESSAGE_OPS


def test_every_message_names_every_parameter_in_table_order():
    bridge = RecordingBridge()
    backend = JsBackend(bridge, "recording")
    x = backend.from_host(np.arange(6, dtype=np.float32), (2, 3), "float32")
    backend.dispatch("softmax", x, 1)
    backend.dispatch("softmax", x, axis=1)
    backend.dispatch("softmax", axis=1, x=x)
    backend.dispatch("matmul", x, x, False, True)
    backend.dispatch("matmul", x, x, transpose_b=True)
    backend.dispatch("unary", op="exp", x=x)
    runs = [json.loads(call[1]) for call in bridge.calls if call[0] == "run"]
    params = [run["params"] for run in runs]
    assert params[0] == params[1] == params[2] == {"x": {"t": x.id}, "axis": 1}
    assert params[3] == params[4] == {"a": {"t": x.id}, "b": {"t": x.id}, "transpose_a": False,
                                      "transpose_b": True}
    assert list(params[3]) == list(ops.PRIMITIVE_OPS["matmul"].names)
    assert params[5] == {"op": "exp", "x": {"t": x.id}}


def test_bad_arguments_are_named_before_anything_is_sent():
    bridge = RecordingBridge()
    backend = JsBackend(bridge, "recording")
    x = backend.from_host([1.0, 2.0], (2,), "float32")
    sent = len(bridge.calls)
    with pytest.raises(TypeError, match=r"softmax\(x, axis\) got an unexpected argument 'dim'"):
        backend.dispatch("softmax", x, dim=0)
    with pytest.raises(TypeError, match=r"softmax\(x, axis\) is missing argument 'axis'"):
        backend.dispatch("softmax", x)
    with pytest.raises(TypeError, match=r"got two values for argument 'axis'"):
        backend.dispatch("softmax", x, 0, axis=0)
    with pytest.raises(TypeError, match=r"takes 2 arguments, got 3"):
        backend.dispatch("softmax", x, 0, 1)
    with pytest.raises(ValueError, match=r"unary: op 'cube' is not one of \['neg'"):
        backend.dispatch("unary", "cube", x)
    with pytest.raises(NotImplementedError, match=r"op 'conv' is not a primitive op; expected one of"):
        backend.dispatch("conv", x)
    assert len(bridge.calls) == sent


def test_a_backend_without_every_op_is_refused_when_defined():
    with pytest.raises(TypeError, match=r"backend Partial lacks the primitive ops \['binary'"):
        type("Partial", (Backend,), {"unary": lambda self, op, x: x})


def test_base_docstring_lists_the_table():
    from neuroscope.backends import base
    for spec in ops.PRIMITIVE_OPS.values():
        assert spec.signature in base.__doc__
