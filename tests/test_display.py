"""neuroscope.display in CPython: the inspector's text, the HTML (self-contained, props that decode
back to the values), the display value the Lens notebook draws, the visualizers, the bundle's
freshness against web/views/, and show() / _repr_html_ in a real Jupyter kernel."""

import base64
import json
import re
from array import array

import pytest

import neuroscope as ns
from display_objects import PROMPT, demo, objects
from neuroscope.display import (
    Display,
    html_of,
    inspect,
    show,
    view_html,
)
from neuroscope.display import bundle as bundle_module
from neuroscope.display.core import VIEW_NAMES

URL = re.compile(r"https?://[^\s\"'`<>()\\{}]+")


def _spec(html):
    """The JSON handed to NeuroScopeDisplay.mount in one display's HTML."""
    call = html.rsplit("NeuroScopeDisplay.mount(", 1)[1]
    return json.loads(call.split(", ", 1)[1].rsplit(");</script>", 1)[0])


def _floats(encoded):
    return array("f", base64.b64decode(encoded["$float32"])).tolist()


def test_the_committed_bundle_is_built_from_the_current_views():
    if not bundle_module.ESBUILD.exists():
        pytest.skip("esbuild is not installed (npm ci)")
    built = bundle_module.build_bundle()
    assert bundle_module.TARGET.read_text(encoding="utf-8") == built, (
        "py/neuroscope/display/views_bundle.js is stale: run python3 -m neuroscope.display.bundle")
    entry = (bundle_module.HERE / "entry.js").read_text(encoding="utf-8")
    assert sorted(re.findall(r'import \* as (\w+) from "\.\./\.\./\.\./web/views/\1\.js"', entry)) == sorted(VIEW_NAMES)


@pytest.mark.parametrize("name", sorted(objects()))
def test_every_objects_html_is_self_contained(name):
    obj = objects()[name]
    html = html_of(obj)
    assert not hasattr(obj, "_repr_html_") or obj._repr_html_().split("neuroscope-display-", 1)[0] == \
        html.split("neuroscope-display-", 1)[0]
    assert set(URL.findall(html)) <= {"http://www.w3.org/2000/svg"}  # a namespace name, never fetched
    assert "<script src" not in html and "import(" not in html and "fetch(" not in html
    assert html.count("<script>") == 1 and html.count("</script>") == 1
    spec = _spec(html)
    assert spec["parts"] and all(part["view"] in VIEW_NAMES for part in spec["parts"]) or name == "probe"


def test_tensor_props_decode_back_to_the_values():
    tensor = objects()["tensor_2d"]
    spec = _spec(tensor._repr_html_())
    (part,) = spec["parts"]
    props = part["props"]
    assert part["view"] == "tensor" and props["shape"] == [9, 12] and props["dtype"] == "float32"
    heatmap = props["heatmap"]
    assert (heatmap["rows"], heatmap["cols"], heatmap["rowStep"], heatmap["colStep"]) == (9, 12, 1, 1)
    assert _floats(heatmap["data"]["data"]) == [float(i - j) for i in range(9) for j in range(12)]
    assert props["stats"]["min"] == -11 and props["stats"]["max"] == 8 and props["stats"]["count"] == 108
    assert props["text"].splitlines()[0].startswith("[[  0,  -1,  -2,")


def test_attention_patterns_travel_as_float32_exactly():
    analysis = objects()["attention"]
    props = _spec(html_of(analysis))["parts"][0]["props"]
    expected = ns.stack([analysis.patterns[layer][0] for layer in analysis.layers])
    assert props["patterns"]["shape"] == list(expected.shape)
    assert _floats(props["patterns"]["data"]) == array("f", expected.numpy().ravel().tolist()).tolist()
    assert props["tokens"] == analysis.str_tokens
    assert set(props["scores"]) == set(analysis.scores)


def test_a_large_tensor_is_summarised_like_numpy():
    np = pytest.importorskip("numpy")
    values = np.arange(2 * 10 * 100, dtype="int64").reshape(2, 10, 100) - 1000
    display = show(ns.tensor(values))
    props = display["parts"][0]["props"]
    ours = props["text"]
    theirs = np.array2string(values, threshold=1000, edgeitems=3, separator=", ")
    assert ours.replace(" ", "") == theirs.replace(" ", "")
    floats = show(ns.tensor([[0.5, -1.25], [3.0, 1e-5]]))["parts"][0]["props"]["text"]
    assert [float(v) for v in re.findall(r"[-\d.e+]+", floats)] == [0.5, -1.25, 3.0, 1e-5]
    assert props["histogram"]["counts"] and sum(props["histogram"]["counts"]) == 2000
    wide = show(ns.tensor(np.ones((300, 1000), dtype="float32")))["parts"][0]["props"]["heatmap"]
    assert (wide["rows"], wide["cols"], wide["rowStep"], wide["colStep"]) == (100, 125, 3, 8)


def test_the_inspector_lists_fields_in_text():
    tensor = objects()["tensor_2d"]
    text = str(inspect(tensor))
    assert text.startswith("neuroscope.tensor.Tensor") and "[9, 12]" in text and "'float32'" in text
    assert "'numpy'" in text and repr(tensor.inspect()) == text
    cache_text = str(objects()["cache"].inspect())
    assert "blocks.0.attn.hook_pattern  Tensor [1, 8, 15, 15] float32 on numpy" in cache_text
    model = demo()
    assert re.search(r"hooks registered\s+0", str(inspect(model)))
    hook = model.hook_manager.add_hook("blocks.0.hook_resid_post", lambda activation, hook: activation)
    try:
        text = str(model.inspect())
        assert re.search(r"hooks registered\s+1", text) and "blocks.0.hook_resid_post" in text
    finally:
        model.hook_manager.remove_hook(hook)
    assert "Ablating L3H6 (resample ablation)" in str(objects()["hypothesis"].inspect())


@pytest.mark.parametrize("name", sorted(objects()))
def test_inspect_works_on_every_object_and_keeps_its_views(name):
    obj = objects()[name]
    inspector = inspect(obj)
    assert isinstance(inspector, Display) and inspector["neuroscope_display"] == 1
    assert str(inspector).splitlines()[0].endswith(type(obj).__name__)
    drawn = [part["view"] for part in _spec(html_of(obj))["parts"]]
    assert [part["view"] for part in inspector["parts"]] == drawn


def test_the_display_value_is_the_documented_dict():
    value = show(objects()["analysis"])  # no IPython kernel here: the value comes back
    assert type(value) is Display and isinstance(value, dict)
    assert set(value) == {"neuroscope_display", "title", "text", "parts"}
    assert [part["view"] for part in value["parts"]] == ["tokens", "attention", "logit_lens", "activations"]
    assert all(set(part) == {"view", "props", "title"} for part in value["parts"])
    assert isinstance(value["parts"][1]["props"]["patterns"], ns.Tensor)  # the worker sends it as a typed array
    with pytest.raises(TypeError, match="no NeuroScope view draws a set"):
        show({1, 2})
    with pytest.raises(ValueError, match="no view named 'heatmap'"):
        view_html("heatmap", {})
    with pytest.raises(TypeError, match="pass its props too"):
        show("attention")


def test_visualizers_build_their_views_props():
    items = objects()
    cache, analysis = items["cache"], items["analysis"]
    attention = ns.AttentionVisualizer.show(cache, tokens=demo().to_str_tokens(PROMPT), layer=2, head=3)
    props = attention["parts"][0]["props"]
    assert attention["parts"][0]["view"] == "attention" and props["selected"] == {"layer": 2, "head": 3}
    assert props["patterns"].shape == (4, 8, 15, 15) and len(props["tokens"]) == 15
    assert ns.AttentionVisualizer.props(items["attention"])["patterns"].shape == (4, 8, 15, 15)
    assert ns.AttentionVisualizer.props(cache["blocks.1.attn.hook_pattern"][0])["patterns"].shape == (1, 8, 15, 15)
    assert ns.LogitLensVisualizer.props(analysis)["table"] == analysis["logit_lens"]
    assert len(ns.LogitLensVisualizer.props(items["logit_lens"])["table"]) == 5
    assert ns.PatchingVisualizer.props(items["patching"])["resid"] == items["patching"]["resid"]
    sweep = ns.PatchingVisualizer.props({"heads": ns.tensor([[0.5, 1.0]])})
    assert sweep == {"heads": [[0.5, 1.0]]}
    assert ns.AttributionVisualizer.props(items["attribution"])["method"] == "atp"
    assert ns.NeuronVisualizer.props(items["neurons"], neuron=5)["neuron"] == 5
    assert ns.ProbeVisualizer.props(items["probe_sweep"])["layers"] == items["probe_sweep"].layers
    assert ns.CircuitVisualizer.props(items["circuit"])["components"][0]["label"] == "L3H6"
    norms = ns.ActivationsVisualizer.props(cache)["norms"]
    assert set(norms) == {"residual", "attention", "mlp"} and len(norms["mlp"]) == 4 and len(norms["mlp"][0]) == 15
    expected = cache["blocks.3.hook_mlp_out"][0].norm(-1).tolist()
    assert norms["mlp"][3] == pytest.approx(expected)
    for visualizer, wrong in [(ns.AttentionVisualizer, items["circuit"]), (ns.CircuitVisualizer, analysis),
                              (ns.PatchingVisualizer, [1, 2]), (ns.TensorVisualizer, "x")]:
        with pytest.raises(TypeError, match=f"{visualizer.__name__}.show takes"):
            visualizer.show(wrong)
    with pytest.raises(ValueError, match="must be \\[layers, heads, q, k\\]"):
        ns.AttentionVisualizer.props(ns.tensor([1.0, 2.0]))


NOTEBOOK = r'''
import neuroscope as ns
t = ns.tensor([[1.0, 2.0], [3.0, 4.0]])
t
---
ns.show(t)
---
ns.inspect(t)
---
print(ns.inspect(t))
'''


def test_jupyter_shows_the_html_from_repr_and_show():
    nbclient = pytest.importorskip("nbclient", reason="the ref extra (nbclient, ipykernel) is not installed")
    nbformat = pytest.importorskip("nbformat")
    cells = [nbformat.v4.new_code_cell(source.strip()) for source in NOTEBOOK.split("---")]
    cells[0].source = f"import sys; sys.path.insert(0, {str(bundle_module.ROOT / 'py')!r})\n" + cells[0].source
    notebook = nbformat.v4.new_notebook(cells=cells)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    outputs = [cell.outputs for cell in notebook.cells]
    for index in (0, 1, 2):
        (output,) = outputs[index]
        assert output.output_type in ("execute_result", "display_data")
        assert "NeuroScopeDisplay.mount(" in output.data["text/html"], index
    assert outputs[1][0].output_type == "display_data"  # show() displays and returns None
    assert outputs[3][0].text.startswith("neuroscope.tensor.Tensor")


def test_the_bundle_module_refuses_a_stale_check(tmp_path, monkeypatch):
    if not bundle_module.ESBUILD.exists():
        pytest.skip("esbuild is not installed (npm ci)")
    stale = tmp_path / "views_bundle.js"
    stale.write_text("// old\n", encoding="utf-8")
    monkeypatch.setattr(bundle_module, "TARGET", stale)
    assert bundle_module.main(["--check"]) == 1
