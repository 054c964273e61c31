"""The Lens app (web/index.html + web/app.js) in Chromium, on the built-in demo model.

Each view is opened from its tab and checked for what it draws (non-blank canvas/SVG,
labels) and for its state; the equivalent Python it shows is run in the notebook and
gives the same numbers. Also: ablation clicks re-run the model, the share link round
trip in a fresh profile (code cells not run), a corrupt link, a bad model, local files,
and the notebook (output, traceback, view cells, .ipynb export/import). Every view is
drawn on each backend (cpu, webgl, webgpu). Screenshots go to tests/browser/screenshots/.
"""

import json
import os

import numpy as np
import pytest

from .pages import BOOT_TIMEOUT_MS, new_page, require_backend, site  # noqa: F401 (fixture)

SCREENSHOTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "screenshots")
DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "py", "neuroscope", "demo", "model")
VIEWS = ["tokens", "attention", "logit_lens", "activations", "ablation", "patching", "attribution", "neurons"]
SHORT = "The capital of France is"
GPU_VIEW_TIMEOUT_MS = 300_000
ANALYSED = "() => { const a = window.neuroscope.app; return !!(a && a.results.analysis && a.busy.size === 0); }"

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(DEMO, "model.safetensors")),
                                reason="the demo model is not trained yet (python build.py train-demo)")


def open_app(browser, site, backend="cpu", fragment="", context=None):  # noqa: F811
    require_backend(backend)
    page = new_page(context or browser.new_context())
    page.goto(f"{site.url}/web/index.html?backend={backend}{fragment}")
    page.wait_for_function(ANALYSED, timeout=BOOT_TIMEOUT_MS)
    return page


def wait_idle(page):
    page.wait_for_function(ANALYSED, timeout=BOOT_TIMEOUT_MS)


def show(page, view, timeout=BOOT_TIMEOUT_MS):
    page.click(f'#tabs button[data-view="{view}"]')
    if view == "notebook":
        page.wait_for_selector('.panel[data-view="notebook"]:not([hidden]) #notebook .notebook-bar')
        return
    page.wait_for_function(f"""() => {{
        const app = window.neuroscope.app;
        const el = document.querySelector('.panel[data-view="{view}"] .view');
        return app.busy.size === 0 && !el.closest('.panel').hidden && el.querySelector('canvas, svg, div, p')
          && el.dataset.view === '{view}';
    }}""", timeout=timeout)


def inked(page, view):
    """Non-white pixels in the view's screenshot, and its text."""
    element = page.locator(f'.panel[data-view="{view}"] .view')
    png = element.screenshot()
    pixels = page.evaluate("""async (bytes) => {
        const blob = new Blob([new Uint8Array(bytes)], {type: 'image/png'});
        const bitmap = await createImageBitmap(blob);
        const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
        const context = canvas.getContext('2d');
        context.drawImage(bitmap, 0, 0);
        const data = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
        let ink = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i] < 235 || data[i + 1] < 235 || data[i + 2] < 235) ink++;
        return ink;
    }""", list(png))
    return pixels, element.inner_text()


def screenshot(page, name):
    os.makedirs(SCREENSHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SCREENSHOTS, f"app-{name}.png"), full_page=True)


def state(page):
    return page.evaluate("JSON.parse(JSON.stringify(window.neuroscope.app.state))")


@pytest.fixture(scope="module")
def app(browser, site):  # noqa: F811
    page = open_app(browser, site)
    yield page
    page.context.close()


def test_opens_on_the_demo_model_with_a_default_prompt(app):
    info = app.evaluate("window.neuroscope.app.modelInfo")
    assert info["name"] == "demo" and info["n_layers"] >= 2
    assert app.input_value("#prompt").startswith("When Mary and John")
    assert "demo" in app.inner_text("#model-status")
    assert 'TransformerModel.from_huggingface("demo")' in app.text_content("#model-code code")
    assert not [m for m in app.messages if m.startswith("pageerror")], app.messages


@pytest.mark.parametrize("view", VIEWS)
def test_each_view_draws_and_shows_its_python(app, view):
    show(app, view)
    pixels, text = inked(app, view)
    assert pixels > 500, f"{view}: only {pixels} non-white pixels"
    code = app.inner_text(f'.panel[data-view="{view}"] .code code')
    assert "from neuroscope import lens" in code and "model" in code
    if view in ("tokens", "attention", "activations", "logit_lens"):
        assert "Mary" in text or "·Mary" in text, text[:300]
    screenshot(app, f"{view}-cpu")


def test_tokens_hover_shows_predictions(app):
    show(app, "tokens")
    app.evaluate("window.neuroscope.app.state.selection.token = 3; window.neuroscope.app.draw()")
    text = app.inner_text('.panel[data-view="tokens"] .view')
    analysis = app.evaluate("window.neuroscope.app.results.analysis.predictions[3][0].text")
    assert analysis.strip() in text


def test_attention_selection_is_state(app):
    show(app, "attention")
    app.evaluate("window.neuroscope.app.props('attention').onSelect({layer: 1, head: 2})")
    selection = state(app)["selection"]
    assert (selection["layer"], selection["head"]) == (1, 2)
    assert "Layer 1, head 2" in app.inner_text('.panel[data-view="attention"] .view')


def test_ablation_click_reruns_the_model(app):
    show(app, "ablation")
    before = app.evaluate("window.neuroscope.app.results.ablation")
    app.click('.panel[data-view="ablation"] [data-layer="0"][data-mlp="true"]')
    app.wait_for_function("(b) => { const r = window.neuroscope.app.results.ablation;"
                          " return r && r.spec.length === b.spec.length + 1 && window.neuroscope.app.busy.size === 0; }",
                          arg=before)
    after = app.evaluate("window.neuroscope.app.results.ablation")
    assert after["ablated"] != after["baseline"]
    assert {"layer": 0, "component": "mlp_out", "heads": None,
            "intervention": {"type": "zero_ablation"}} in after["spec"]
    # None arrives in JS as undefined, which JSON leaves out: the same spec for from_spec
    assert state(app)["interventions"] == [{k: v for k, v in spec.items() if v is not None}
                                           for spec in after["spec"]]
    # the shown Python reproduces the numbers in the notebook
    code = app.inner_text('.panel[data-view="ablation"] .code code')
    rerun = app.evaluate("(code) => window.neuroscope.python(code)", code)
    assert rerun["ablated"] == after["ablated"]
    app.click('.panel[data-view="ablation"] [data-layer="0"][data-mlp="true"]')  # undo
    wait_idle(app)


def test_patching_view_from_demo_prompts(app):
    show(app, "patching")
    result = app.evaluate("window.neuroscope.app.results.patching")
    layers = app.evaluate("window.neuroscope.app.modelInfo.n_layers")
    assert len(result["resid"]) == layers and len(result["heads"]) == layers
    assert result["clean_logit_diff"] != result["corrupted_logit_diff"]
    options = app.evaluate("[...document.querySelectorAll('#examples option')].length")
    assert options > 2  # the demo's IOI and fact pairs are offered


def test_patching_view_averages_heads_over_the_demo_pairs_on_the_pool(app):
    """The patching view's button averages head patching over 64 IOI pairs on the page's workers
    (both cores here), with CPython's numbers, and shows the call."""
    show(app, "patching")
    panel = '.panel[data-view="patching"]'
    app.click(f"{panel} [data-role=run-average]")
    app.wait_for_function("() => window.neuroscope.app.results.patchingAverage && window.neuroscope.app.busy.size === 0",
                          timeout=BOOT_TIMEOUT_MS)
    result = app.evaluate("window.neuroscope.app.results.patchingAverage")
    cores = app.evaluate("navigator.hardwareConcurrency")
    from neuroscope import TransformerModel, lens
    expected = lens.patch_dataset(TransformerModel.from_huggingface(DEMO), "demo/ioi", 64, progress=False)
    assert result["n_pairs"] == 64 and result["workers"] == (cores if cores > 1 else 1)
    np.testing.assert_allclose(result["heads"], expected["heads"], atol=1e-3)
    assert app.locator(f"{panel} [data-role=average] canvas[data-rows]").count() == 1
    assert 'lens.patch_dataset(model, "demo/ioi", count=64)' in app.inner_text(f"{panel} .code code")


def test_circuit_view_finds_ablates_tests_and_exports(app, tmp_path):
    """The circuit tab finds the IOI circuit on 16 pairs (the numbers CPython gives), a click on a
    node ablates it, the hypothesis form tests a claim, and "Export paper" downloads the .zip."""
    show(app, "circuit")
    result = app.evaluate("window.neuroscope.app.results.circuit")
    from neuroscope import TransformerModel, lens
    demo = TransformerModel.from_huggingface(DEMO)
    expected = lens.find_circuit(demo, "demo/ioi", "activation_patching", 0.05, 16, progress=False)
    assert [c["label"] for c in result["components"]] == [c["label"] for c in expected["components"]]
    np.testing.assert_allclose([c["score"] for c in result["components"]],
                               [c["score"] for c in expected["components"]], rtol=1e-3, atol=1e-4)
    assert abs(result["faithfulness"] - expected["faithfulness"]) < 1e-3 and result["n_heldout"] == 16
    panel = '.panel[data-view="circuit"]'
    assert app.locator(f"{panel} circle[data-node]").count() == 36
    assert app.locator(f'{panel} circle[data-member="1"]').count() == len(result["components"])
    assert app.locator(f"{panel} script, {panel} [onclick]").count() == 0
    assert app.locator(f"{panel} [data-role=components] tbody tr").count() == len(result["components"])
    code = app.inner_text(f"{panel} .code code")
    assert code.startswith("from neuroscope import lens\nlens.find_circuit(model, ")
    top = result["components"][0]["label"]
    app.click(f'{panel} circle[data-node="{top}"]')
    app.wait_for_function("() => window.neuroscope.app.results.circuitAblation && window.neuroscope.app.busy.size === 0",
                          timeout=BOOT_TIMEOUT_MS)
    ablation = app.evaluate("window.neuroscope.app.results.circuitAblation")
    assert ablation["components"] == [top] and ablation["removed"] > 0.1
    assert state(app)["selection"]["circuitAblated"] == [top]
    assert app.get_attribute(f'{panel} circle[data-node="{top}"]', "aria-pressed") == "true"
    app.fill("#hypothesis-text", "Layer 3 moves the name")  # a layer, not a head or an MLP
    app.click("#hypothesis-form button[type=submit]")
    app.wait_for_function("() => document.querySelector('#messages').textContent.includes('could not parse')",
                          timeout=BOOT_TIMEOUT_MS)
    wait_idle(app)
    assert app.evaluate("window.neuroscope.app.results.circuit") is not None  # the circuit stays
    app.fill("#hypothesis-text", f"{top} moves the indirect object's name")
    app.click("#hypothesis-form button[type=submit]")
    app.wait_for_function("() => window.neuroscope.app.results.hypothesis && window.neuroscope.app.busy.size === 0",
                          timeout=BOOT_TIMEOUT_MS)
    hypothesis = app.evaluate("window.neuroscope.app.results.hypothesis")
    assert hypothesis["supported"] and hypothesis["p_value"] < 0.05
    assert app.get_attribute(f"{panel} [data-role=hypothesis]", "data-supported") == "true"
    with app.expect_download() as download:
        app.click("#export-paper")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    import zipfile
    names = zipfile.ZipFile(saved).namelist()
    assert {"main.tex", "references.bib", "figure1.pdf", "analysis.neuroscope"} <= set(names), names
    tex = zipfile.ZipFile(saved).read("main.tex").decode()
    assert demo.content_hash()[:16] in tex and "#s=ns1." in tex
    screenshot(app, "circuit")
    app.click(f'{panel} circle[data-node="{top}"]')  # restore
    wait_idle(app)


def test_a_circuit_search_can_be_cancelled(app):
    """Cancel interrupts a long search (ACDC): its error is shown, the app stays usable."""
    assert app.evaluate("crossOriginIsolated") is True
    show(app, "circuit")
    app.select_option("#circuit-method", "acdc")
    app.click("#circuit-form button[type=submit]")
    app.wait_for_function("() => window.neuroscope.app.busy.has('circuit')")
    app.wait_for_selector("#circuit-cancel:not([hidden])")
    app.click("#circuit-cancel")
    app.wait_for_function("() => window.neuroscope.app.busy.size === 0", timeout=60_000)
    assert "KeyboardInterrupt" in app.inner_text("#messages")
    assert app.evaluate("window.neuroscope.app.results.circuit") is None
    assert app.is_hidden("#circuit-cancel")
    app.select_option("#circuit-method", "activation_patching")
    app.click("#circuit-form button[type=submit]")
    app.wait_for_function("() => window.neuroscope.app.results.circuit?.method === 'activation_patching'"
                          " && window.neuroscope.app.busy.size === 0", timeout=BOOT_TIMEOUT_MS)
    assert app.evaluate("window.neuroscope.python('1 + 1')") == 2


def test_attribution_view_beside_exact_patching(app):
    """One click gives the heatmaps and the token strip; their Python reproduces them; a second click
    adds exact patching beside them with the rank correlation; the method is state."""
    show(app, "tokens")  # a new prompt from here runs no patching
    app.evaluate("""() => { const a = window.neuroscope.app; a.state.prompt = 'The capital of France is';
        a.state.corrupted = 'The capital of Japan is'; a.state.answer = ' Paris'; a.state.wrong = ' Tokyo';
        a.syncInputs(); return a.analyze(); }""")
    wait_idle(app)
    show(app, "attribution")
    assert app.evaluate("window.neuroscope.app.results.patching") is None
    result = app.evaluate("window.neuroscope.app.results.attribution")
    from neuroscope import TransformerModel, lens
    demo = TransformerModel.from_huggingface(DEMO)
    expected = lens.attribute(demo, "The capital of France is", "The capital of Japan is", " Paris", " Tokyo",
                              progress=False)
    for key in ("resid", "heads", "mlp"):  # the worker's gradients are CPython's
        np.testing.assert_allclose(result[key], expected[key], rtol=1e-3, atol=1e-4, err_msg=key)
    np.testing.assert_allclose(result["saliency"]["scores"], expected["saliency"]["scores"], rtol=1e-3, atol=1e-4)
    code = app.inner_text('.panel[data-view="attribution"] .code code')
    assert code.startswith("from neuroscope import lens\nlens.attribute(model, ") and "method=\"atp\"" in code
    rerun = app.evaluate("(code) => window.neuroscope.python(code)", code)
    assert rerun["heads"] == result["heads"]
    assert app.locator('.panel[data-view="attribution"] [data-role=saliency] [data-index]').count() == \
        len(result["tokens"])
    app.click('.panel[data-view="attribution"] [data-role=run-patching]')
    assert app.evaluate("""() => { const b = document.querySelector('.panel[data-view="attribution"] '
        + '[data-role=run-patching]'); return !b || b.disabled; }""")  # no second sweep from a second click
    app.wait_for_selector('.panel[data-view="attribution"] [data-role=corr-heads]', timeout=BOOT_TIMEOUT_MS)
    patched = app.evaluate("window.neuroscope.app.results.patching")
    rho = float(app.get_attribute('.panel[data-view="attribution"] [data-role=corr-heads]', "data-rho"))
    assert rho > 0.5, (rho, result["heads"], patched["heads"])
    assert app.locator('.panel[data-view="attribution"] [data-role=exact-resid] canvas[data-rows]').count() == 1
    app.click('.panel[data-view="attribution"] button[data-choice="eap-ig"]')
    app.wait_for_function("() => window.neuroscope.app.results.attribution?.method === 'eap-ig'"
                          " && window.neuroscope.app.busy.size === 0", timeout=BOOT_TIMEOUT_MS)
    assert state(app)["selection"]["attributionMethod"] == "eap-ig"
    assert "method=\"eap-ig\"" in app.inner_text('.panel[data-view="attribution"] .code code')
    screenshot(app, "attribution-compared")
    app.evaluate("""async () => { const a = window.neuroscope.app; const d = (await import('/web/state.js')).defaultState();
        for (const k of ['prompt', 'corrupted', 'answer', 'wrong']) a.state[k] = d[k];
        a.state.selection.attributionMethod = 'atp'; a.syncInputs(); return a.analyze(); }""")
    wait_idle(app)


def test_the_repeated_random_tokens_example_shows_the_induction_head(app):
    show(app, "attention")
    app.wait_for_function("() => !!window.neuroscope.app.results.prompts", timeout=BOOT_TIMEOUT_MS)
    index = app.evaluate("window.neuroscope.app.results.prompts.findIndex((p) => p.label.startsWith('Induction'))")
    assert index >= 0
    clean = app.evaluate(f"window.neuroscope.app.results.prompts[{index}].clean")
    app.select_option("#examples", str(index))
    app.wait_for_function(f"() => window.neuroscope.app.state.prompt === {json.dumps(clean)}"
                          " && window.neuroscope.app.results.analysis?.tokens.length === 40"
                          " && window.neuroscope.app.busy.size === 0", timeout=BOOT_TIMEOUT_MS)
    scores = np.asarray(app.evaluate("window.neuroscope.app.results.analysis.attention.scores.induction"))
    from neuroscope import TransformerModel, lens
    from neuroscope.demo.evaluate import induction
    demo = TransformerModel.from_huggingface(DEMO)
    want = np.asarray(lens.analyze(demo, clean)["attention"]["scores"]["induction"])
    np.testing.assert_allclose(scores, want, atol=1e-3)  # the page's scores are CPython's
    # The best head on this prompt is one of the model's induction heads (layer 2 has several).
    best = [int(i) for i in np.unravel_index(np.argmax(scores), scores.shape)]
    assert best in [head[:2] for head in induction(demo)["top_heads"]], best
    assert scores.max() >= 0.3  # 19 of the 40 positions can attend to the token after their copy
    assert app.evaluate("window.neuroscope.app.state.selection.scoreKind") == "induction"
    screenshot(app, "attention-induction")


def test_neuron_view(app):
    show(app, "neurons")
    app.fill("#neuron-layer", "1")
    app.fill("#neuron-index", "5")
    app.click("#neuron-form button")
    app.wait_for_function("() => window.neuroscope.app.results.neurons && "
                          "window.neuroscope.app.results.neurons.layer === 1 && window.neuroscope.app.busy.size === 0")
    assert len(app.evaluate("window.neuroscope.app.results.neurons.examples")) > 0


def test_neuron_view_over_a_whole_dataset(app):
    show(app, "neurons")
    app.fill("#neuron-layer", "1")
    app.fill("#neuron-index", "9")
    app.select_option("#neuron-dataset", "demo/ioi")
    app.click("#neuron-form button")
    app.wait_for_function("() => window.neuroscope.app.results.neurons?.dataset === 'demo/ioi'"
                          " && window.neuroscope.app.busy.size === 0")
    got = app.evaluate("window.neuroscope.app.results.neurons")
    from neuroscope import TransformerModel, lens
    want = lens.neurons(TransformerModel.from_huggingface(DEMO), 1, 9, dataset="demo/ioi")
    assert got["n_tokens"] == want["n_tokens"] and sum(got["histogram"]["counts"]) == want["n_tokens"]
    np.testing.assert_allclose([e["activation"] for e in got["examples"]],
                               [e["activation"] for e in want["examples"]], rtol=1e-3, atol=1e-3)
    assert [t for t, _ in got["logit_effect"]["top"]] == [t for t, _ in want["logit_effect"]["top"]]
    panel = '.panel[data-view="neurons"]'
    assert app.locator(f"{panel} [data-role=histogram] [data-role=bin]").count() == 30
    assert 'dataset="demo/ioi"' in app.inner_text(f"{panel} .code code")
    screenshot(app, "neurons-dataset-cpu")


def test_probe_view_plots_accuracy_per_layer(app):
    show(app, "probes")
    app.wait_for_function("() => !!window.neuroscope.app.results.probes && window.neuroscope.app.busy.size === 0")
    result = app.evaluate("window.neuroscope.app.results.probes")
    assert result["layers"] == [0, 1, 2, 3] and result["dataset"] == "demo/ioi-order"
    assert app.locator('.panel[data-view="probes"] [data-role=test-point]').count() == 4
    assert "lens.probes(model, " in app.inner_text('.panel[data-view="probes"] .code code')
    from neuroscope import TransformerModel, lens
    want = lens.probes(TransformerModel.from_huggingface(DEMO), "demo/ioi-order", "residual")
    np.testing.assert_allclose(result["test"], want["test"], atol=0.041)  # float32 solvers: 2 of 50 may differ
    app.select_option("#probe-dataset", "demo/facts-relation")
    app.select_option("#probe-component", "mlp_out")
    app.click("#probe-form button")
    app.wait_for_function("() => window.neuroscope.app.results.probes.dataset === 'demo/facts-relation'"
                          " && window.neuroscope.app.busy.size === 0")
    assert app.evaluate("window.neuroscope.app.state.selection.probeComponent") == "mlp_out"
    facts = app.evaluate("window.neuroscope.app.results.probes")
    assert max(facts["test"]) > facts["chance"] + 0.15  # the relation is decodable from the MLP outputs
    pixels, _ = inked(app, "probes")
    assert pixels > 500
    screenshot(app, "probes-cpu")


def test_notebook_cells_output_errors_views_and_ipynb(app):
    show(app, "notebook")
    app.evaluate("""() => {
        const nb = window.neuroscope.app.notebook;
        nb.setCells([
          {type: 'code', source: 'print("hello")\\n6 * 7'},
          {type: 'code', source: 'def f():\\n    raise ValueError("bad value 3")\\nf()'},
          {type: 'view', view: 'logit_lens', source: 'from neuroscope import lens\\nlens.analyze(model, "The capital of France is")'},
        ]);
        return nb.runAll();
    }""")
    outputs = app.locator("#notebook .cell .output")
    assert "hello" in outputs.nth(0).inner_text() and "42" in outputs.nth(0).inner_text()
    error = outputs.nth(1).inner_text()
    assert "ValueError: bad value 3" in error and "line 2" in error and "Traceback" in error
    assert outputs.nth(2).locator("canvas, .nsv-cell, div").count() > 0
    exported = app.evaluate("window.neuroscope.app.notebook.toIpynb()")
    assert exported["nbformat"] == 4 and exported["cells"][3]["metadata"]["neuroscope"]["view"] == "logit_lens"
    assert exported["cells"][0]["metadata"]["neuroscope"]["role"] == "load-model"
    cells = app.evaluate("(nb) => import('/web/notebook.js').then(m => m.cellsFromIpynb(nb))", exported)
    assert [c["type"] for c in cells] == ["code", "code", "view"]
    screenshot(app, "notebook-cpu")


def test_share_link_round_trip_in_a_fresh_profile(browser, site, app):  # noqa: F811
    app.evaluate("""() => {
        const a = window.neuroscope.app;
        a.state.selection.layer = 2; a.state.selection.head = 3; a.state.view = 'logit_lens';
        a.notebook.setCells([{type: 'markdown', source: '# Shared'},
                             {type: 'code', source: 'shared_cell_ran = True\\n1'}]);
    }""")
    app.fill("#prompt", SHORT)
    app.click("#prompt-form button[type=submit]")
    wait_idle(app)
    app.click("#share")
    app.wait_for_selector("#share-url")
    url = app.input_value("#share-url")
    assert "#s=" in url
    shared = state(app)
    other = open_app(browser, site, fragment="#" + url.split("#", 1)[1])
    try:
        restored = state(other)
        for key in ("prompt", "view", "model", "corrupted", "answer", "wrong"):
            assert restored[key] == shared[key], key
        assert (restored["selection"]["layer"], restored["selection"]["head"]) == (2, 3)
        assert restored["notebook"] == shared["notebook"]
        assert "not run" in other.inner_text("#notebook")
        assert other.evaluate("window.neuroscope.python('\"shared_cell_ran\" in globals()')") is False
        screenshot(other, "shared-link")
    finally:
        other.context.close()


def test_state_too_large_for_a_link_travels_as_a_file(browser, site, app, tmp_path):  # noqa: F811
    """Share with a notebook too large for a URL gives a .neuroscope download; opening that
    file (the "Open" picker) in a fresh profile restores the state, code cells not run."""
    # ~24 kB of incompressible text: the compressed state cannot fit a link of 8,000 characters.
    app.evaluate("""() => {
        let text = '', seed = 7;
        for (let i = 0; i < 24000; i++) { seed = (seed * 1103515245 + 12345) % 2147483648;
            text += String.fromCharCode(33 + seed % 90); }
        window.neuroscope.app.notebook.setCells([{type: 'markdown', source: '# Large'},
            {type: 'code', source: 'large_cell_ran = True\\nblob = ' + JSON.stringify(text) + '\\nlen(blob)'}]);
    }""")
    app.click("#share")
    link = app.wait_for_selector("#share-file")
    assert link.get_attribute("download").endswith(".neuroscope")
    with app.expect_download() as download:
        link.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert json.loads(saved.read_text())["format"]
    shared = state(app)
    other = open_app(browser, site)
    try:
        other.set_input_files("#open-state", str(saved))
        other.wait_for_function("() => window.neuroscope.app.state.notebook.length === 2"
                                " && window.neuroscope.app.busy.size === 0")
        wait_idle(other)
        restored = state(other)
        for key in ("prompt", "model", "notebook"):
            assert restored[key] == shared[key], key
        assert "not run" in other.inner_text("#notebook")
        assert other.evaluate("window.neuroscope.python('\"large_cell_ran\" in globals()')") is False
        # A file that is not a share file is refused with a message; the app keeps working.
        bad = tmp_path / "not-a-share.neuroscope"
        bad.write_text("{\"hello\": 1}")
        other.set_input_files("#open-state", str(bad))
        other.wait_for_function("() => document.querySelector('#messages').innerText.includes('not-a-share')")
        assert "share file" in other.inner_text("#messages")
        assert other.evaluate("window.neuroscope.app.state.notebook.length") == 2
    finally:
        other.context.close()
    app.evaluate("window.neuroscope.app.notebook.setCells([])")


@pytest.mark.parametrize("fragment", ["#s=ns1.garbage!!", "#s=", "#s=ns9.AAAA"])
def test_corrupt_link_gives_a_message_and_a_working_app(browser, site, fragment):  # noqa: F811
    page = open_app(browser, site, fragment=fragment)
    try:
        messages = page.inner_text("#messages")
        assert "share link" in messages.lower(), messages
        assert page.evaluate("window.neuroscope.app.results.analysis.tokens.length") > 3
    finally:
        page.context.close()


def test_bad_model_is_reported_and_the_current_model_stays(app, site, tmp_path):  # noqa: F811
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (folder / name).write_bytes(open(os.path.join(DEMO, name), "rb").read())
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}")
    path = site.add(str(folder), "test-models/broken")
    app.select_option("#model-kind", "url")
    app.fill("#model-ref", f"{site.url}/{path}/")
    app.click("#model-form button[type=submit]")
    app.wait_for_function("() => document.querySelector('#model-status').className === 'error'")
    status = app.inner_text("#model-status")
    assert "ModelFormatError" in status and "demo" in status, status
    app.fill("#prompt", SHORT)
    app.click("#prompt-form button[type=submit]")
    wait_idle(app)
    assert app.evaluate("window.neuroscope.app.results.analysis.tokens.length") == \
        len(app.evaluate("window.neuroscope.app.results.analysis.tokens"))
    assert "France" in json.dumps(app.evaluate("window.neuroscope.app.results.analysis.tokens"))


def test_local_files_load(app):
    app.select_option("#model-kind", "local")
    app.set_input_files("#model-files", [os.path.join(DEMO, name) for name in
                                         ("config.json", "model.safetensors", "tokenizer.json")])
    app.click("#model-form button[type=submit]")
    app.wait_for_function("() => document.querySelector('#model-status').className === 'ok'"
                          " && window.neuroscope.app.busy.size === 0")
    assert app.evaluate("window.neuroscope.app.state.model.ref").startswith("local:")
    app.select_option("#model-kind", "demo")
    app.click("#model-form button[type=submit]")
    app.wait_for_function("() => window.neuroscope.app.state.model.ref === 'demo' && window.neuroscope.app.busy.size === 0")


def test_dropped_files_load_and_an_incomplete_drop_is_refused(app, site):  # noqa: F811
    """Files dropped on the model panel (a real DataTransfer of File objects) load like picked
    ones; a drop without the weights names what is missing and keeps the current model."""
    path = site.add(DEMO, "test-models/dropped")
    drop = """async ([base, names]) => {
        const transfer = new DataTransfer();
        for (const name of names) {
            const bytes = await (await fetch(base + name)).arrayBuffer();
            transfer.items.add(new File([bytes], name));
        }
        const panel = document.querySelector('#model-panel');
        panel.dispatchEvent(new DragEvent('dragover', {dataTransfer: transfer, bubbles: true, cancelable: true}));
        panel.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }"""
    base = f"{site.url}/{path}/"
    app.evaluate(drop, [base, ["config.json", "tokenizer.json"]])
    app.wait_for_function("() => document.querySelector('#model-status').className === 'error'")
    assert "model.safetensors" in app.inner_text("#model-status")
    assert app.evaluate("window.neuroscope.app.state.model.ref") == "demo"
    app.evaluate(drop, [base, ["config.json", "model.safetensors", "tokenizer.json"]])
    app.wait_for_function("() => document.querySelector('#model-status').className === 'ok'"
                          " && window.neuroscope.app.state.model.ref.startsWith('local:')"
                          " && window.neuroscope.app.busy.size === 0")
    assert app.evaluate("window.neuroscope.app.results.analysis.tokens.length") > 3
    app.select_option("#model-kind", "demo")
    app.click("#model-form button[type=submit]")
    app.wait_for_function("() => window.neuroscope.app.state.model.ref === 'demo' && window.neuroscope.app.busy.size === 0")


def test_hub_name_downloads_with_progress_then_loads_from_the_cache(browser, site):  # noqa: F811
    """A hub name ("org/name") with the page's ?hub= mirror (huggingface.co itself is out of
    reach here): the model picker fetches {hub}/org/name/resolve/main/*, shows a progress bar,
    caches the weights, and a second load reads them from IndexedDB."""
    path = site.add(DEMO, "test-hub/neuroscope/tiny-demo/resolve/main")
    hub = f"{site.url}/test-hub"
    page = open_app(browser, site, fragment=f"&hub={hub}")
    try:
        def load_hub_name():
            page.evaluate("window.neuroscope.progress.length = 0")
            page.select_option("#model-kind", "hub")
            page.fill("#model-ref", "neuroscope/tiny-demo")
            page.click("#model-form button[type=submit]")
            page.wait_for_function("() => window.neuroscope.app.state.model.ref === 'neuroscope/tiny-demo'"
                                   " && window.neuroscope.app.busy.size === 0")
            return [event for event in page.evaluate("window.neuroscope.progress")
                    if event["stage"] == "download" and event["url"].endswith("model.safetensors")]

        first = load_hub_name()
        assert first and first[0]["url"] == f"{site.url}/{path}/model.safetensors", first
        assert not any(event.get("cached") for event in first)
        assert first[-1]["done"] == first[-1]["total"] == os.path.getsize(os.path.join(DEMO, "model.safetensors"))
        assert page.evaluate("window.neuroscope.app.modelInfo.name") == "neuroscope/tiny-demo"
        assert page.locator("#progress [role=progressbar]").count() == 1, "no progress bar was drawn"
        assert "from_huggingface(\"neuroscope/tiny-demo\")" in page.text_content("#model-code code")
        assert page.evaluate("window.neuroscope.app.state.model.sha256"), "no content hash for the share link"
        again = load_hub_name()
        assert again and all(event.get("cached") for event in again), again
        assert not [m for m in page.messages if m.startswith("pageerror")], page.messages
    finally:
        page.context.close()


@pytest.mark.parametrize("backend", ["webgl", "webgpu"])
def test_every_view_on_gpu_backends(browser, site, backend):  # noqa: F811
    page = open_app(browser, site, backend=backend)
    try:
        assert page.evaluate("window.neuroscope.ready")["backend"] == backend
        # Short prompts of the same token length (6): the software GPU here (SwiftShader) runs
        # the patching view's 80 cells, batched, in about 30 s.
        page.evaluate("""() => { const a = window.neuroscope.app; a.state.prompt = 'The capital of France is';
            a.state.corrupted = 'The capital of Japan is'; a.state.answer = ' Paris'; a.state.wrong = ' Tokyo'; a.syncInputs();
            return a.analyze(); }""")
        for view in VIEWS:
            show(page, view, timeout=GPU_VIEW_TIMEOUT_MS)
            pixels, _ = inked(page, view)
            assert pixels > 500, f"{backend}/{view}: blank"
            screenshot(page, f"{view}-{backend}")
        # The GPU kernels give the patching numbers CPython gives (normalised scores, rounded).
        from neuroscope import TransformerModel, lens
        expected = lens.patch(TransformerModel.from_huggingface(DEMO), "The capital of France is",
                              "The capital of Japan is", " Paris", " Tokyo", progress=False)
        got = page.evaluate("window.neuroscope.app.results.patching")
        for key in ("resid", "heads", "mlp"):
            np.testing.assert_allclose(got[key], expected[key], atol=0.02, err_msg=f"{backend}/{key}")
        # and the attribution numbers: backward passes on the GPU kernels
        expected = lens.attribute(TransformerModel.from_huggingface(DEMO), "The capital of France is",
                                  "The capital of Japan is", " Paris", " Tokyo", progress=False)
        got = page.evaluate("window.neuroscope.app.results.attribution")
        for key in ("resid", "heads", "mlp"):
            np.testing.assert_allclose(got[key], expected[key], atol=0.02, err_msg=f"{backend}/{key}")
        np.testing.assert_allclose(got["saliency"]["scores"], expected["saliency"]["scores"], atol=0.05)
        assert not [m for m in page.messages if m.startswith("pageerror")], page.messages
    finally:
        page.context.close()
