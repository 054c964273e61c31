"""neuroscope.display's HTML in Chromium with the network off: every object's ``_repr_html_()``
is written to a file, opened, and must draw its Lens views (canvas or SVG ink, the expected text)
without a single request leaving the page; with scripts off it must still read (the fallback). In the
Lens notebook, cells returning neuroscope.inspect(...) and a visualizer's show(...) draw the same views."""

import json

import pytest
from tests.display_objects import objects

from neuroscope.display import html_of

from .pages import site  # noqa: F401 (fixture)
from .test_app import open_app
from .test_app import show as show_tab

# name -> text the drawn output must contain (beside the views' ink)
EXPECTED = {
    "tensor_2d": "Tensor [9, 12] float32", "tensor_3d": "Tensor [1, 15, 256] float32",
    "cache": "blocks.0.hook_resid_pre", "attention": "Layer 0, head 0", "logit_lens": "final_post",
    "analysis": "Residual stream norm", "patching": "Residual stream", "attribution": "Attribution",
    "probe": "LinearProbe", "probe_sweep": "residual", "neurons": "neuron", "circuit": "L3H6",
    "hypothesis": "permutation test", "dataset_attention": "induction: mean over 8 examples",
    "patching_average": "mean over 2 pairs",
}

INK = """(root) => {
  const count = (data) => { let ink = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 16 && (data[i] < 245 || data[i + 1] < 245 || data[i + 2] < 245)) ink++;
    return ink; };
  return [...root.querySelectorAll("section.nsd-part")].map((part) => ({
    view: part.dataset.view, error: part.querySelector(".view-error")?.textContent ?? null,
    canvas: [...part.querySelectorAll("canvas")].reduce((sum, c) => sum + count(c.getContext("2d")
      .getImageData(0, 0, c.width, c.height).data), 0),
    svg: part.querySelectorAll("svg rect, svg circle, svg line, svg path").length,
    cells: part.querySelectorAll("td, [data-role]").length}));
}"""


@pytest.fixture
def offline(browser):
    context = browser.new_context(offline=True)
    requests = []

    def handle(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            requests.append(route.request.url)
            route.abort()

    context.route("**/*", handle)
    page = context.new_page()
    page.requests, page.errors = requests, []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def _open(page, tmp_path, name, html):
    path = tmp_path / f"{name}.html"
    path.write_text(f"<!doctype html><meta charset=utf-8><body>{html}</body>", encoding="utf-8")
    page.goto(path.as_uri())
    return page


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_objects_html_draws_its_views_offline(offline, tmp_path, name):
    obj = objects()[name]
    html = obj._repr_html_() if hasattr(obj, "_repr_html_") else html_of(obj)
    page = _open(offline, tmp_path, name, html)
    mount = page.locator(".neuroscope-display > div[id]")
    parts = json.loads(html.rsplit("NeuroScopeDisplay.mount(", 1)[1].split(", ", 1)[1].rsplit(");</script>", 1)[0])
    assert mount.get_attribute("data-drawn") == str(len(parts["parts"])), page.errors
    drawn = mount.evaluate(INK)
    assert len(drawn) == len(parts["parts"]) >= (0 if name == "probe" else 1)
    for part in drawn:
        assert part["error"] is None, part
        assert part["canvas"] > 50 or part["svg"] > 2 or part["cells"] > 2, part
    assert EXPECTED[name] in page.inner_text("body")
    assert not page.requests and not page.errors, (page.requests, page.errors)


def test_two_outputs_in_one_page_draw_independently(offline, tmp_path):
    items = objects()
    html = items["tensor_2d"]._repr_html_() + items["attention"]._repr_html_()
    page = _open(offline, tmp_path, "two", html)
    mounts = page.locator(".neuroscope-display > div[id]")
    assert mounts.count() == 2
    assert [mounts.nth(i).get_attribute("data-drawn") for i in range(2)] == ["1", "1"]
    assert [mounts.nth(i).evaluate(INK)[0]["view"] for i in range(2)] == ["tensor", "attention"]
    assert not page.requests and not page.errors


def test_without_scripts_the_output_still_reads(browser, tmp_path):
    context = browser.new_context(java_script_enabled=False, offline=True)
    try:
        page = _open(context.new_page(), tmp_path, "static", objects()["tensor_2d"]._repr_html_())
        text = page.inner_text("body")
        assert "trust the notebook" in text and "[[  0,  -1,  -2," in text
        assert page.locator("canvas").count() == 0
    finally:
        context.close()


LENS_CELLS = [
    "import neuroscope\nt = neuroscope.tensor([[float(i - j) for j in range(6)] for i in range(5)])\n"
    "neuroscope.inspect(t)",
    "from neuroscope import lens\nneuroscope.AttentionVisualizer.show(lens.analyze(model, 'The cat sat'), layer=1)",
]


def test_inspect_and_visualizers_draw_in_the_lens_notebook(browser, site):  # noqa: F811
    page = open_app(browser, site)
    try:
        show_tab(page, "notebook")
        page.evaluate("""(sources) => {
            const nb = window.neuroscope.app.notebook;
            nb.setCells(sources.map((source) => ({type: 'code', source})));
            return nb.runAll();
        }""", LENS_CELLS)
        outputs = page.locator("#notebook .cell .output")
        inspector = outputs.nth(0)
        assert "shape" in inspector.inner_text() and "[5, 6]" in inspector.inner_text(), inspector.inner_text()
        drawn = inspector.locator(".view.display").evaluate(INK)
        assert [part["view"] for part in drawn] == ["tensor"] and drawn[0]["canvas"] > 50, drawn
        attention = outputs.nth(1).locator(".view.display").evaluate(INK)
        assert [part["view"] for part in attention] == ["attention"] and attention[0]["canvas"] > 50, attention
        assert "Layer 1, head 0" in outputs.nth(1).inner_text()
        assert not [m for m in page.messages if m.startswith("pageerror")], page.messages
    finally:
        page.context.close()
