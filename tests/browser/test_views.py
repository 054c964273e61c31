"""The views (web/views/*.js) drawn in Chromium from props built here.

tests/browser/view_gallery.html renders one view at a time through web/render.js
(``gallery.show(name, props, callbackNames)``); callbacks record their calls in
``gallery.calls``. Each test checks that pixels were drawn (canvas pixels and a
screenshot that are not white), that the labels are DOM text, and that clicks
and hovers call back with the right arguments; screenshots go to
tests/browser/screenshots/. Props are synthetic but shaped like GPT-2 small's:
12 layers x 12 heads, 40 tokens, plus 1-token and 128-token cases.
"""

import base64
import math
import os
import random

import pytest

np = pytest.importorskip("numpy")

SCREENSHOTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "screenshots")
LAYERS, HEADS = 12, 12
WORDS = ["When", " Mary", " and", " John", " went", " to", " the", " store", ",", " John", " gave", " a",
         " drink", " to", "\n", " Mary", ".", " The", " cat", "  sat", " on", " the", "\t", "mat"]


def make_tokens(n):
    return [{"id": 100 + i, "text": WORDS[i % len(WORDS)]} for i in range(n)]


def float32(array):
    return {"$float32": base64.b64encode(np.asarray(array, dtype="<f4").tobytes()).decode()}


def make_patterns(n, layers=LAYERS, heads=HEADS, seed=0):
    """Causal attention: random logits, softmax per query row; L0H1 attends to the previous
    token, L5H5 to the first token."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, size=(layers, heads, n, n))
    logits[0, 1] += 12 * np.eye(n, k=-1)
    logits[5, 5, :, 0] += 12
    logits[:, :, np.triu_indices(n, 1)[0], np.triu_indices(n, 1)[1]] = -np.inf
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    return weights / weights.sum(-1, keepdims=True)


def make_scores(seed=1):
    rng = random.Random(seed)
    table = lambda scale: [[round(rng.random() * scale, 4) for _ in range(HEADS)] for _ in range(LAYERS)]  # noqa: E731
    return {"previous_token": table(1), "duplicate_token": table(1), "induction": table(1), "entropy": table(3)}


def top_k(rng, k=5):
    probs = sorted((rng.random() ** 3 for _ in range(k)), reverse=True)
    total = sum(probs) * 1.3
    return [{"id": rng.randrange(50257), "text": rng.choice(WORDS), "prob": p / total} for p in probs]


@pytest.fixture
def gallery(page, repo_server):
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{repo_server}/tests/browser/view_gallery.html")
    page.wait_for_function("window.gallery !== undefined", timeout=30_000)
    yield page
    problems = [m for m in page.messages if m.startswith(("pageerror", "error"))]
    assert not problems, "\n".join(problems)


def show(page, view, props, callbacks=()):
    """Renders the view; returns the time draw took, in ms."""
    return page.evaluate("([view, props, callbacks]) => gallery.show(view, props, callbacks)",
                         [view, props, list(callbacks)])


def calls(page):
    return page.evaluate("gallery.calls")


def screenshot_ink(page, name):
    """Saves #stage as screenshots/<name>.png; returns how many of its pixels are not white."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    png = page.locator("#stage").screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"))
    return page.evaluate("png => gallery.pngInk(png)", base64.b64encode(png).decode())


def grids(page, selector="canvas[data-rows]"):
    return page.evaluate("selector => gallery.canvasInk(selector)", selector)


def cell_position(page, selector, row, col):
    """The centre of grid cell (row, col) of a canvas, relative to the canvas."""
    box = page.locator(selector).bounding_box()
    rows, cols = page.locator(selector).evaluate("c => [Number(c.dataset.rows), Number(c.dataset.cols)]")
    return {"x": (col + 0.5) * box["width"] / cols, "y": (row + 0.5) * box["height"] / rows}


def click_cell(page, selector, row, col):
    page.locator(selector).click(position=cell_position(page, selector, row, col))


def pixel(page, selector, row, col):
    at = cell_position(page, selector, row, col)
    return page.evaluate("([s, x, y]) => gallery.pixel(s, x, y)", [selector, at["x"], at["y"]])


def texts(page, selector):
    return page.locator(selector).all_inner_texts()


# -- tokens ------------------------------------------------------------------------------------

def tokens_props(n, hovered=None):
    rng = random.Random(n)
    return {"tokens": make_tokens(n), "predictions": [top_k(rng) for _ in range(n)],
            "residualNorms": [[10 + 8 * layer + rng.random() for _ in range(n)] for layer in range(LAYERS + 1)],
            "hovered": hovered}


def test_tokens_chips_show_whitespace_and_hover_calls_back(gallery):
    show(gallery, "tokens", tokens_props(40), ["onHover"])
    chips = texts(gallery, "[data-role=chips] > span")
    assert len(chips) == 40
    assert chips[:3] == ["When", "·Mary", "·and"] and chips[14] == "⏎" and chips[19] == "··sat" and chips[22] == "⇥"
    assert "Hover a token" in gallery.inner_text("[data-role=token-panel]")
    gallery.hover("[data-role=chips] > span[data-index='3']")
    gallery.hover("[data-role=chips] > span[data-index='7']")
    assert calls(gallery) == [{"name": "onHover", "args": [3]}, {"name": "onHover", "args": [7]}]
    assert screenshot_ink(gallery, "tokens_unhovered") > 500


def test_tokens_panel_shows_id_predictions_and_residual_norms(gallery):
    props = tokens_props(40, hovered=3)
    show(gallery, "tokens", props, ["onHover"])
    panel = gallery.inner_text("[data-role=token-panel]")
    assert "Position 3" in panel and "id 103" in panel and "·John" in panel
    predictions = texts(gallery, "[data-role=predictions] > span")
    for item in props["predictions"][3]:
        assert predictions.count(item["text"].replace(" ", "·").replace("\n", "⏎").replace("\t", "⇥")) >= 1
    assert "%" in "".join(predictions)
    bars = gallery.eval_on_selector_all(".nsv-bar", "bars => bars.map(b => b.getBoundingClientRect().width)")
    assert len(bars) == 5 and bars == sorted(bars, reverse=True) and bars[0] > bars[-1] > 0
    chart = gallery.locator("[data-role=residual-norms]")
    assert chart.locator("circle").count() == LAYERS + 1
    assert {"0", "6", "12", "layer"} <= set(chart.locator("text").all_text_contents())
    gallery.hover("[data-role=chips] > span[data-index='3']")  # already hovered: no call
    gallery.focus("[data-role=chips] > span[data-index='3']")
    gallery.keyboard.press("Escape")
    assert calls(gallery) == [{"name": "onHover", "args": [None]}]
    assert screenshot_ink(gallery, "tokens") > 2000


def test_tokens_one_token(gallery):
    show(gallery, "tokens", tokens_props(1, hovered=0), ["onHover"])
    assert texts(gallery, "[data-role=chips] > span") == ["When"]
    assert gallery.locator("[data-role=residual-norms] circle").count() == LAYERS + 1
    assert screenshot_ink(gallery, "tokens_1") > 500


# -- attention ---------------------------------------------------------------------------------

def attention_props(n, selected=(5, 5)):
    return {"patterns": {"shape": [LAYERS, HEADS, n, n], "data": float32(make_patterns(n))},
            "tokens": make_tokens(n), "scores": make_scores(), "scoreKind": "induction",
            "selected": {"layer": selected[0], "head": selected[1]} if selected else None}


THUMBS = "[data-role=thumbnails] canvas[data-rows]"
PATTERN = "[data-role=pattern] canvas[data-rows]"
SCORES = "[data-role=scores] canvas[data-rows]"


def test_attention_grid_pattern_and_scores_draw_and_select(gallery):
    show(gallery, "attention", attention_props(40), ["onSelect", "onScoreKind"])
    thumbs, pattern, scores = grids(gallery)
    assert (thumbs["rows"], thumbs["cols"]) == (LAYERS, HEADS) and thumbs["ink"] > 0.1 * thumbs["width"] * thumbs["height"]
    assert (pattern["rows"], pattern["cols"]) == (40, 40) and pattern["ink"] > 0
    assert (scores["rows"], scores["cols"]) == (LAYERS, HEADS) and scores["ink"] > 0.5 * scores["width"] * scores["height"]
    assert gallery.inner_text("[data-role=pattern] .nsv-title") == "Layer 5, head 5"
    labels = texts(gallery, "[data-role=pattern] .nsv-axis > span")
    assert len(labels) == 80 and labels.count("·Mary") == 8 and "⏎" in labels  # every query and key
    assert sorted(texts(gallery, "[data-role=thumbnails] .nsv-axis > span")) == sorted(
        [f"L{i}" for i in range(LAYERS)] + [f"H{i}" for i in range(HEADS)])
    assert "Head scores: induction" in gallery.inner_text("[data-role=scores]")
    # L5H5 attends to the first token: the large pattern's first column is dark, the rest light.
    first, later = pixel(gallery, PATTERN, 30, 0), pixel(gallery, PATTERN, 30, 20)
    assert sum(first[:3]) < 200 and sum(later[:3]) > 600
    # The selected score cell is outlined in orange: its edge pixel differs from its centre.
    centre = cell_position(gallery, SCORES, 5, 5)
    edge_x = 5 * centre["x"] / 5.5 + 1  # one pixel inside the cell's left edge
    edge = gallery.evaluate("([s, x, y]) => gallery.pixel(s, x, y)", [SCORES, edge_x, centre["y"]])
    assert edge[0] > 200 and 120 < edge[1] < 200 and edge[2] < 60
    click_cell(gallery, THUMBS, 3, 7)
    click_cell(gallery, SCORES, 11, 0)
    gallery.click("[data-role=scores] button[data-choice=entropy]")
    gallery.click("[data-role=scores] button[data-choice=induction]")  # the current kind: no call
    assert calls(gallery) == [{"name": "onSelect", "args": [{"layer": 3, "head": 7}]},
                              {"name": "onSelect", "args": [{"layer": 11, "head": 0}]},
                              {"name": "onScoreKind", "args": ["entropy"]}]
    gallery.locator(THUMBS).hover(position=cell_position(gallery, THUMBS, 2, 4))
    assert gallery.inner_text("[data-role=thumbnails] .nsv-tooltip").startswith("L2 H4 · induction: ")
    gallery.locator(PATTERN).hover(position=cell_position(gallery, PATTERN, 2, 1))
    assert gallery.inner_text("[data-role=pattern] .nsv-tooltip").startswith("query 2 “·and” → key 1 “·Mary”: ")
    assert screenshot_ink(gallery, "attention") > 20_000


def test_attention_without_selection_and_one_token(gallery):
    show(gallery, "attention", attention_props(1, selected=None), ["onSelect"])
    assert gallery.locator("[data-role=pattern]").count() == 0
    show(gallery, "attention", {**attention_props(1), "selected": {"layer": None, "head": None}}, ["onSelect"])
    assert gallery.locator("[data-role=pattern]").count() == 0
    assert [g["ink"] > 0 for g in grids(gallery)] == [True, True]
    show(gallery, "attention", attention_props(1, selected=(0, 0)), ["onSelect"])
    thumbs, pattern, _ = grids(gallery)
    assert (pattern["rows"], pattern["cols"]) == (1, 1) and pattern["ink"] == pattern["width"] * pattern["height"]
    assert texts(gallery, "[data-role=pattern] .nsv-axis > span") == ["When", "When"]
    assert screenshot_ink(gallery, "attention_1") > 5000


def test_attention_draws_at_gpt2_small_size(gallery):
    # How long this takes is measured in bench/app.py (attention draw), not here.
    show(gallery, "attention", attention_props(128), ["onSelect"])
    thumbs, pattern, scores = grids(gallery)
    assert (pattern["rows"], pattern["cols"]) == (128, 128) and pattern["ink"] > 0 and thumbs["ink"] > 0
    shown = gallery.locator("[data-role=pattern] .nsv-axis > span").count()
    assert 2 * 128 / 4 <= shown < 2 * 128  # dense axes label every n-th token
    click_cell(gallery, THUMBS, 11, 11)
    assert calls(gallery) == [{"name": "onSelect", "args": [{"layer": 11, "head": 11}]}]
    screenshot_ink(gallery, "attention_128")


# -- logit lens --------------------------------------------------------------------------------

def lens_props(n):
    rng = random.Random(n)
    table = [[top_k(rng) for _ in range(n)] for _ in range(LAYERS + 1)]
    table[LAYERS][0] = [{"text": " Paris", "prob": 0.97}, {"text": " London", "prob": 0.02}]
    table[0][0] = [{"text": "\n", "prob": 0.04}, {"text": " the", "prob": 0.03}]
    return {"table": table, "tokens": make_tokens(n)}


def test_logit_lens_cells_show_top_token_shaded_by_probability(gallery):
    show(gallery, "logit_lens", lens_props(40))
    cells = gallery.locator("[role=cell]")
    assert cells.count() == (LAYERS + 1) * 40
    rows = texts(gallery, "[role=rowheader]")
    assert rows[0] == "0_pre" and rows[-1] == "final_post" and len(rows) == LAYERS + 1
    headers = texts(gallery, "[role=columnheader]")
    assert headers[1:4] == ["When", "·Mary", "·and"]
    confident = gallery.locator(f"[role=cell][data-layer='{LAYERS}'][data-pos='0']")
    unsure = gallery.locator("[role=cell][data-layer='0'][data-pos='0']")
    assert confident.inner_text() == "·Paris" and unsure.inner_text() == "⏎"
    assert confident.get_attribute("title") == "final_post · position 0 “When”\n·Paris  97%\n·London  2.0%"
    background = "e => getComputedStyle(e).backgroundColor.match(/\\d+/g).slice(0, 3).reduce((a, b) => a + +b, 0)"
    assert confident.evaluate(background) < 200 < 600 < unsure.evaluate(background)
    assert confident.evaluate("e => getComputedStyle(e).color") == "rgb(255, 255, 255)"
    assert screenshot_ink(gallery, "logit_lens") > 10_000


def test_logit_lens_one_token_and_custom_layer_labels(gallery):
    props = lens_props(1)
    props["layers"] = ["embed"] + [f"L{i}" for i in range(LAYERS)]
    show(gallery, "logit_lens", props)
    assert gallery.locator("[role=cell]").count() == LAYERS + 1
    assert texts(gallery, "[role=rowheader]")[:2] == ["embed", "L0"]
    assert screenshot_ink(gallery, "logit_lens_1") > 1000


# -- activations -------------------------------------------------------------------------------

def activation_props(n, component="residual"):
    rng = random.Random(n)
    norms = {kind: [[scale * (1 + layer) * (0.5 + rng.random()) for _ in range(n)] for layer in range(LAYERS)]
             for kind, scale in (("residual", 10), ("attention", 2), ("mlp", 4))}
    norms["mlp"][11][0] = 500.0
    return {"norms": norms, "tokens": make_tokens(n), "component": component}


def test_activations_heatmap_labels_and_component_switch(gallery):
    show(gallery, "activations", activation_props(40, "mlp"), ["onComponent", "onHover"])
    (grid,) = grids(gallery)
    assert (grid["rows"], grid["cols"]) == (LAYERS, 40) and grid["ink"] > 0.25 * grid["width"] * grid["height"]
    assert gallery.inner_text(".nsv-title") == "MLP output norm"
    labels = texts(gallery, ".nsv-axis > span")
    assert [str(i) for i in range(LAYERS)] == labels[:LAYERS] and "·Mary" in labels and "⏎" in labels
    assert texts(gallery, ".nsv-legend-ticks > span") == ["500", "250", "0"]
    assert sum(pixel(gallery, "canvas[data-rows]", 11, 0)[:3]) < sum(pixel(gallery, "canvas[data-rows]", 0, 5)[:3])
    gallery.locator("canvas[data-rows]").hover(position=cell_position(gallery, "canvas[data-rows]", 11, 0))
    assert gallery.inner_text(".nsv-tooltip") == "layer 11, position 0 “When”: 500"
    gallery.click("button[data-choice=attention]")
    gallery.click("button[data-choice=mlp]")
    assert calls(gallery) == [{"name": "onHover", "args": [{"layer": 11, "pos": 0}]},
                              {"name": "onHover", "args": [None]},
                              {"name": "onComponent", "args": ["attention"]}]
    assert screenshot_ink(gallery, "activations") > 10_000


def test_activations_one_token_and_128_tokens(gallery):
    show(gallery, "activations", activation_props(1), ["onComponent"])
    (grid,) = grids(gallery)
    assert (grid["rows"], grid["cols"]) == (LAYERS, 1) and grid["ink"] > 0
    assert screenshot_ink(gallery, "activations_1") > 1000
    show(gallery, "activations", activation_props(128), ["onComponent"])
    (grid,) = grids(gallery)
    assert (grid["rows"], grid["cols"]) == (LAYERS, 128) and grid["ink"] > 0.8 * grid["width"] * grid["height"]
    assert grid["width"] <= 1000 * 2  # fits the page: cells shrink instead of overflowing
    screenshot_ink(gallery, "activations_128")


# -- ablation ----------------------------------------------------------------------------------

def ablation_props(**changes):
    baseline = [{"text": " Mary", "prob": 0.62}, {"text": " John", "prob": 0.11}, {"text": " the", "prob": 0.04}]
    ablated = [{"text": " John", "prob": 0.35}, {"text": " Mary", "prob": 0.30}, {"text": " them", "prob": 0.05}]
    props = {"nLayers": LAYERS, "nHeads": HEADS, "kind": "mean", "baseline": baseline, "ablated": ablated,
             "ablations": [{"layer": 9, "head": 9}, {"layer": 10, "head": 0, "kind": "zero"}, {"layer": 2, "mlp": True}],
             "logitDiff": {"baseline": 3.5, "ablated": 0.25}, "busy": False}
    props.update(changes)
    return props


def test_ablation_grid_marks_ablated_cells_and_toggles(gallery):
    show(gallery, "ablation", ablation_props(), ["onToggle", "onKind"])
    cells = gallery.locator("[data-role=ablation-grid] button")
    assert cells.count() == LAYERS * (HEADS + 1)
    pressed = gallery.eval_on_selector_all("[data-role=ablation-grid] button[aria-pressed=true]",
                                           "cells => cells.map(c => [c.getAttribute('aria-label'), c.textContent, c.title])")
    assert pressed == [["L2 MLP", "×", "L2 MLP: ablated (mean)"], ["L9 H9", "×", "L9 H9: ablated (mean)"],
                       ["L10 H0", "×", "L10 H0: ablated (zero)"]]
    grid_text = gallery.inner_text("[data-role=ablation-grid]")
    assert "H11" in grid_text and "L11" in grid_text and "MLP" in grid_text
    assert gallery.get_attribute("button[data-choice=mean]", "aria-pressed") == "true"
    gallery.click("button[aria-label='L2 H7']")
    gallery.click("button[aria-label='L4 MLP']")
    gallery.click("button[aria-label='L9 H9']")
    gallery.click("button[data-choice=resample]")
    assert calls(gallery) == [{"name": "onToggle", "args": [{"layer": 2, "head": 7}]},
                              {"name": "onToggle", "args": [{"layer": 4, "mlp": True}]},
                              {"name": "onToggle", "args": [{"layer": 9, "head": 9}]},
                              {"name": "onKind", "args": ["resample"]}]
    results = gallery.inner_text("[data-role=ablation-results]")
    assert "3 components mean-ablated" in results
    assert texts(gallery, "[data-role=baseline] > span")[:3] == ["·Mary", "62%", "·John"]
    assert texts(gallery, "[data-role=ablated] > span")[:8] == ["·John", "35%", "+24.0 pp", "·Mary", "30%", "−32.0 pp",
                                                                 "·them", "5.0%"]
    diff = gallery.inner_text("[data-role=logit-diff]")
    assert diff == "Logit difference: 3.5 baseline → 0.25 ablated (Δ −3.25)"
    assert screenshot_ink(gallery, "ablation") > 10_000


def test_ablation_before_a_run_and_while_busy(gallery):
    show(gallery, "ablation", ablation_props(ablations=[], ablated=None, logitDiff={"baseline": 2.0, "ablated": None}),
         ["onToggle", "onKind"])
    assert "Not run yet." in gallery.inner_text("[data-role=ablated]")
    assert "Click heads or MLPs" in gallery.inner_text("[data-role=ablation-results]")
    assert gallery.inner_text("[data-role=logit-diff]") == "Logit difference: 2 baseline"
    show(gallery, "ablation", ablation_props(busy=True, ablated=None, nLayers=1, nHeads=1), ["onToggle"])
    assert gallery.inner_text("[data-role=busy]") == "Running…"
    assert gallery.get_attribute("#stage", "aria-busy") == "true"
    assert gallery.locator("[data-role=ablation-grid] button").count() == 2
    assert gallery.is_disabled("button[data-choice=zero]")  # no onKind: the kind is shown, not editable
    assert screenshot_ink(gallery, "ablation_busy") > 1000


# -- patching ----------------------------------------------------------------------------------

def patching_props(n):
    rng = random.Random(n)
    resid = [[0.0] * n for _ in range(LAYERS)]
    for layer in range(LAYERS):  # the answer moves from the name's position to the last one
        resid[layer][min(2, n - 1)] = max(0.0, 1 - layer / 8)
        resid[layer][n - 1] = min(1.0, layer / 8)
    mlp = [[round(rng.gauss(0, 0.05), 3) for _ in range(n)] for _ in range(LAYERS)]
    heads = [[round(rng.gauss(0, 0.03), 3) for _ in range(HEADS)] for _ in range(LAYERS)]
    heads[9][9], heads[10][7] = 0.6, -0.4
    return {"resid": resid, "mlp": mlp, "heads": heads, "tokens": make_tokens(n),
            "cleanLogitDiff": 3.52, "corruptedLogitDiff": -3.1}


def test_patching_heatmaps_use_a_diverging_scale_centred_on_zero(gallery):
    show(gallery, "patching", patching_props(40))
    resid, mlp, heads = grids(gallery)
    assert [(g["rows"], g["cols"]) for g in (resid, mlp, heads)] == [(LAYERS, 40), (LAYERS, 40), (LAYERS, HEADS)]
    assert all(g["ink"] > 0 for g in (resid, mlp, heads))
    assert gallery.inner_text("[data-role=logit-diffs]") == "Clean logit difference 3.52 · corrupted -3.1"
    resid_canvas, heads_canvas = "[data-role=resid] canvas[data-rows]", "[data-role=heads] canvas[data-rows]"
    zero, recovered = pixel(gallery, resid_canvas, 5, 10), pixel(gallery, resid_canvas, 0, 2)
    assert min(zero[:3]) > 240  # 0 is white
    assert recovered[2] > recovered[0] + 50  # +1 is blue
    positive, negative = pixel(gallery, heads_canvas, 9, 9), pixel(gallery, heads_canvas, 10, 7)
    assert positive[2] > positive[0] + 50 and negative[0] > negative[2] + 50  # blue vs red
    assert texts(gallery, "[data-role=heads] .nsv-legend-ticks > span") == ["1", "0", "-1"]
    assert {"Residual stream", "MLP output", "Attention heads (all positions)"} <= set(texts(gallery, "section > .nsv-title"))
    gallery.locator(heads_canvas).hover(position=cell_position(gallery, heads_canvas, 9, 9))
    assert gallery.inner_text("[data-role=heads] .nsv-tooltip") == "L9 H9: 0.6"
    assert screenshot_ink(gallery, "patching") > 10_000


def test_patching_one_token_and_missing_tables(gallery):
    props = patching_props(1)
    del props["mlp"]
    props["tokens"] = ["<|endoftext|>"]  # neuroscope.lens.patch gives str tokens
    show(gallery, "patching", props)
    assert [(g["rows"], g["cols"]) for g in grids(gallery)] == [(LAYERS, 1), (LAYERS, HEADS)]
    assert "<|endoftext|>" in texts(gallery, "[data-role=resid] .nsv-axis > span")
    assert gallery.locator("[data-role=mlp]").count() == 0
    assert screenshot_ink(gallery, "patching_1") > 1000


def test_patching_average_over_a_dataset_button_then_heatmap(gallery):
    show(gallery, "patching", patching_props(6), ["onAverage"])
    gallery.click("[data-role=run-average]")
    assert calls(gallery) == [{"name": "onAverage", "args": []}]
    show(gallery, "patching", {**patching_props(6), "averageBusy": True}, ["onAverage"])
    assert gallery.is_disabled("[data-role=run-average]")
    heads = [[0.0] * HEADS for _ in range(LAYERS)]
    heads[3][6] = 0.8
    average = {"heads": heads, "nPairs": 64, "dataset": "demo/ioi", "workers": 2}
    show(gallery, "patching", {**patching_props(6), "average": average}, ["onAverage"])
    assert gallery.locator("[data-role=run-average]").count() == 0
    assert gallery.inner_text("[data-role=average] > .nsv-title") == \
        "Attention heads, mean over 64 pairs of demo/ioi on 2 workers"
    canvas = "[data-role=average] canvas[data-rows]"
    cell = pixel(gallery, canvas, 3, 6)
    assert grids(gallery)[-1]["rows"] == LAYERS and cell[2] > cell[0] + 50  # blue: recovered
    with pytest.raises(Exception, match="average.heads must be"):
        show(gallery, "patching", {**patching_props(2), "average": {"heads": "x"}})


# -- attribution -------------------------------------------------------------------------------

def attribution_props(n, exact=True):
    props = patching_props(n)
    estimate = {key: [[round(v * 0.9 + 0.01 * ((layer + i) % 3), 4) for i, v in enumerate(row)]
                      for layer, row in enumerate(props[key])] for key in ("resid", "mlp", "heads")}
    scores = [0.0] * n
    scores[min(2, n - 1)], scores[n - 1] = 2.5, -1.0
    return {**estimate, "method": "atp", "tokens": props["tokens"], "cleanLogitDiff": 3.52,
            "corruptedLogitDiff": -3.1,
            "saliency": {"scores": scores, "value": 3.52, "baselineValue": 2.0, "delta": -0.02, "steps": 20},
            "exact": {key: props[key] for key in ("resid", "mlp", "heads")} if exact else None}


def _spearman(a, b):
    def rank(values):  # ties share their average rank
        values = np.ravel(values)
        return np.array([np.mean(np.flatnonzero(np.sort(values) == v)) for v in values])
    return float(np.corrcoef(rank(a), rank(b))[0, 1])


def test_attribution_heatmaps_beside_exact_patching_with_rank_correlation(gallery):
    props = attribution_props(40)
    show(gallery, "attribution", props, ["onMethod", "onPatch"])
    shapes = [(g["rows"], g["cols"]) for g in grids(gallery)]
    assert shapes == [(LAYERS, 40), (LAYERS, 40), (LAYERS, HEADS), (LAYERS, HEADS), (LAYERS, 40), (LAYERS, 40)]
    for role in ("attr-resid", "exact-resid", "attr-heads", "exact-heads", "attr-mlp", "exact-mlp"):
        assert gallery.locator(f"[data-role={role}] canvas[data-rows]").count() == 1, role
    rho = float(gallery.get_attribute("[data-role=corr-heads]", "data-rho"))
    assert rho == pytest.approx(_spearman(props["heads"], props["exact"]["heads"]), abs=1e-9)
    assert "Spearman, 144 cells" in gallery.inner_text("[data-role=corr-heads]")
    assert gallery.locator("[data-role=run-patching]").count() == 0  # computed already: no button
    positive, negative = pixel(gallery, "[data-role=attr-heads] canvas[data-rows]", 9, 9), \
        pixel(gallery, "[data-role=attr-heads] canvas[data-rows]", 10, 7)
    assert positive[2] > positive[0] + 50 and negative[0] > negative[2] + 50  # one diverging scale
    chips = gallery.locator("[data-role=saliency] [data-index]")
    assert chips.count() == 40 and chips.nth(2).get_attribute("title") == "position 2 “·and”: 2.5"
    assert "sum to 1.5, the metric moves 2 → 3.52 (completeness error -0.02)" in \
        gallery.inner_text("[data-role=saliency]")
    gallery.click("button[data-choice='eap-ig']")
    assert calls(gallery) == [{"name": "onMethod", "args": ["eap-ig"]}]
    assert screenshot_ink(gallery, "attribution") > 20_000


def test_attribution_before_exact_patching_and_one_token(gallery):
    show(gallery, "attribution", attribution_props(1, exact=False), ["onPatch"])
    assert [(g["rows"], g["cols"]) for g in grids(gallery)] == [(LAYERS, 1), (LAYERS, HEADS), (LAYERS, 1)]
    assert gallery.locator("[data-role^=corr-]").count() == 0
    assert gallery.is_disabled("button[data-choice=atp]")  # no onMethod: shown, not editable
    gallery.click("[data-role=run-patching]")
    assert calls(gallery) == [{"name": "onPatch", "args": []}]
    props = attribution_props(5, exact=False)
    props["patchBusy"] = True
    del props["saliency"]
    show(gallery, "attribution", props, ["onPatch"])
    assert gallery.is_disabled("[data-role=run-patching]")
    assert gallery.locator("[data-role=saliency]").count() == 0
    assert screenshot_ink(gallery, "attribution_1") > 1000


def test_attribution_refuses_an_unknown_method(gallery):
    props = attribution_props(3)
    props["method"] = "eap"
    with pytest.raises(Exception, match="method must be one of atp, eap-ig"):
        show(gallery, "attribution", props)


# -- neurons and progress ----------------------------------------------------------------------

def test_neurons_highlight_tokens_by_activation(gallery):
    examples = [{"tokens_left": ["The", " cat", " sat", " on"], "token": " the", "tokens_right": [" mat", "."],
                 "activation": 4.2},
                {"left": ["Hello", "\n"], "token": "world", "right": [], "activation": 2.1},  # lens names
                {"tokens_left": [], "token": " a", "tokens_right": [" b"], "activation": 0.3}]
    show(gallery, "neurons", {"layer": 3, "neuron": 1024, "examples": examples})
    assert gallery.inner_text(".nsv-title") == "Neuron L3 N1024: top activations"
    assert texts(gallery, "mark[data-role=token]") == ["·the", "world", "·a"]
    assert texts(gallery, "[data-role=activation]") == ["4.2", "2.1", "0.3"]
    lines = texts(gallery, "[data-role=examples] li .nsv-mono")
    assert lines == ["The cat sat on·the mat.", "Hello⏎world", "·a b"]
    shade = "e => getComputedStyle(e).backgroundColor.match(/\\d+/g).slice(0, 3).reduce((a, b) => a + +b, 0)"
    marks = [gallery.locator("mark").nth(i).evaluate(shade) for i in range(3)]
    assert marks[0] < marks[1] < marks[2]
    assert screenshot_ink(gallery, "neurons") > 1000
    show(gallery, "neurons", {"layer": 0, "neuron": 0, "examples": []})
    assert "No examples." in gallery.inner_text("#stage")
    # Over a whole dataset: the histogram and the direct logit effect too.
    show(gallery, "neurons", {"layer": 1, "neuron": 9, "examples": examples, "dataset": "demo/ioi", "nTokens": 3200,
                              "histogram": {"edges": [-0.2, 0.0, 0.5, 1.0], "counts": [3000, 190, 10]},
                              "logitEffect": {"top": [[" Mary", 0.4], [" John", 0.3]], "bottom": [[" the", -0.2]]}})
    assert "over demo/ioi (3,200 tokens)" in gallery.inner_text(".nsv-title")
    assert gallery.locator("[data-role=histogram] [data-role=bin]").count() == 3
    assert texts(gallery, "[data-role=promotes] li") == ["·Mary  0.4", "·John  0.3"]
    assert texts(gallery, "[data-role=suppresses] li") == ["·the  -0.2"]
    assert screenshot_ink(gallery, "neurons-dataset") > 1000


def test_probes_plot_train_test_and_chance(gallery):
    props = {"layers": [0, 1, 2, 3], "train": [0.9, 1.0, 1.0, 1.0], "test": [0.5, 0.8, 0.85, None], "chance": 0.5,
             "dataset": "demo/ioi-order", "component": "residual", "classes": ["0", "1"], "nTrain": 150, "nTest": 50}
    show(gallery, "probes", props)
    assert gallery.locator("[data-role=test-point]").count() == 3  # no point where the test accuracy is missing
    assert gallery.locator("[data-role=train-point]").count() == 4
    assert gallery.locator("[data-role=chance]").count() == 1
    assert "Linear probe on residual — demo/ioi-order (2 classes: 0, 1)" in gallery.inner_text(".nsv-title")
    assert screenshot_ink(gallery, "probes") > 1000
    with pytest.raises(Exception, match="train has 2 values for 4 layers"):
        show(gallery, "probes", {**props, "train": [1, 1]})


def test_progress_bar_known_unknown_and_bytes(gallery):
    show(gallery, "progress", {"label": "Patching sweep", "done": 30, "total": 120})
    assert gallery.inner_text("[data-role=label]") == "Patching sweep"
    assert gallery.inner_text("[data-role=count]") == "30 / 120 (25%)"
    assert gallery.get_attribute("[role=progressbar]", "aria-valuenow") == "30"
    fill = gallery.locator("[data-role=fill]").bounding_box()["width"]
    track = gallery.locator("[role=progressbar]").bounding_box()["width"]
    assert math.isclose(fill / track, 0.25, abs_tol=0.01)
    assert screenshot_ink(gallery, "progress") > 200
    show(gallery, "progress", {"label": "Downloading gpt2", "done": 52_400_000, "total": 548_000_000, "unit": "bytes"})
    assert gallery.inner_text("[data-role=count]") == "52.4 MB / 548.0 MB (9%)"
    show(gallery, "progress", {"label": "Downloading", "done": 1500, "total": 3000, "bytes": True})
    assert gallery.inner_text("[data-role=count]") == "1.5 kB / 3.0 kB (50%)"
    show(gallery, "progress", {"label": "Loading", "done": 7, "total": None})
    assert gallery.inner_text("[data-role=count]") == "7"
    assert gallery.get_attribute("[role=progressbar]", "aria-valuenow") is None


# -- render() and bad props --------------------------------------------------------------------

def test_render_reuses_the_element_and_names_bad_arguments(gallery):
    show(gallery, "progress", {"label": "a", "done": 1, "total": 2})
    show(gallery, "neurons", {"layer": 0, "neuron": 1, "examples": []})
    assert gallery.get_attribute("#stage", "data-view") == "neurons"
    assert gallery.locator("[role=progressbar]").count() == 0  # the previous view was cleared
    errors = gallery.evaluate("""async () => {
      const {render} = await import('/web/render.js');
      const attempt = (f) => { try { f(); return null; } catch (e) { return `${e.name}: ${e.message}`; } };
      const stage = document.getElementById('stage');
      return [attempt(() => render(null, {draw() {}}, {})), attempt(() => render(stage, {name: 'x'}, {})),
              attempt(() => gallery.show('attention', {patterns: {shape: [1, 1, 2, 2], data: [0.5, 0.5, 1]}}))];
    }""")
    assert errors == ["TypeError: render: el must be a DOM Element, got null",
                      "TypeError: render: View must export draw(el, props); got exports: name",
                      "TypeError: attention view: patterns.data has 3 values; shape [1,1,2,2] needs 4"]


def circuit_props():
    """A 12 x 12 circuit drawn by Circuit.visualize, with hostile additions the view must drop."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                    "py"))
    from neuroscope.analysis.circuits import Circuit
    scores = {("head", 11, 3): 0.4, ("head", 9, 6): 0.25, ("mlp", 0): 0.1, ("head", 5, 5): -0.05}
    edges = [(("head", 9, 6), ("head", 11, 3, "q"), 0.2), (("embed",), ("mlp", 0), 0.1),
             (("head", 11, 3), ("logits",), 0.35)]
    circuit = Circuit("task <b>bold</b>", "path_patching", 0.05, scores, edges, 0.7, {}, n_layers=LAYERS,
                      n_heads=HEADS)
    svg = circuit.visualize().svg().replace(
        "</svg>", '<script>window.PWNED = 1</script><a href="javascript:alert(1)"><text>x</text></a>'
        '<foreignObject><div onclick="window.PWNED=2">y</div></foreignObject></svg>')
    svg = svg.replace("<circle ", '<circle onmouseover="window.PWNED=3" ', 1)
    return {"svg": svg, "components": [{"label": "L11H3", "kind": "head", "layer": 11, "head": 3, "score": 0.4},
                                       {"label": "L9H6", "kind": "head", "layer": 9, "head": 6, "score": 0.25},
                                       {"label": "MLP0", "kind": "mlp", "layer": 0, "head": None, "score": 0.1},
                                       {"label": "L5H5", "kind": "head", "layer": 5, "head": 5, "score": -0.05}],
            "method": "path_patching", "threshold": 0.05, "task": "task <b>bold</b>", "nExamples": 32,
            "nHeldout": 64, "nComponents": 156, "faithfulness": 0.7, "edgeFaithfulness": None,
            "metric": {"full": 3.2, "corrupted": 0.1}, "ablated": ["L9H6"],
            "ablation": {"full": 3.2, "corrupted": 0.1, "ablated": 2.5, "removed": 0.2258, "components": ["L9H6"]},
            "hypothesis": {"hypothesis": "L11H3 moves names", "effect": -1.5, "ci": [-2.0, -1.0], "p_value": 0.0064,
                           "supported": True, "summary": "Ablating L11H3 ...", "null": [0.01 * i for i in range(-20, 40)]}}


def test_circuit_graph_is_sanitized_and_its_nodes_ablate(gallery):
    show(gallery, "circuit", circuit_props(), ["onNode"])
    stage = "#stage"
    assert gallery.locator(f"{stage} [data-role=circuit-graph] circle[data-node]").count() == LAYERS * (HEADS + 1)
    assert gallery.locator(f'{stage} circle[data-member="1"]').count() == 4
    for selector in ("script", "a", "foreignObject", "[onclick]", "[onmouseover]", "[href]"):
        assert gallery.locator(f"{stage} {selector}").count() == 0, selector
    assert gallery.evaluate("window.PWNED") is None
    assert gallery.get_attribute(f'{stage} circle[data-node="L9H6"]', "aria-pressed") == "true"
    assert "task <b>bold</b>" in gallery.inner_text(f"{stage} .nsv-title")  # text, not markup
    gallery.click(f'{stage} circle[data-node="L11H3"]')
    gallery.dispatch_event(f'{stage} circle[data-node="L0H0"]', "click")
    assert calls(gallery) == [{"name": "onNode", "args": ["L11H3"]}, {"name": "onNode", "args": ["L0H0"]}]
    assert "22.6% of the effect removed" in gallery.inner_text(f"{stage} [data-role=ablation-result]")
    assert gallery.get_attribute(f"{stage} [data-role=hypothesis]", "data-supported") == "true"
    assert gallery.locator(f"{stage} [data-role=null-histogram] rect").count() == 24
    assert gallery.locator(f"{stage} [data-role=components] tbody tr").count() == 4
    assert screenshot_ink(gallery, "circuit") > 10_000


def test_circuit_nodes_do_not_click_while_busy(gallery):
    props = circuit_props()
    props["busy"] = "ablation"
    show(gallery, "circuit", props, ["onNode"])
    gallery.dispatch_event('#stage circle[data-node="L11H3"]', "click")
    assert calls(gallery) == []
    assert "Ablating" in gallery.inner_text("#stage [data-role=ablation-result]")
