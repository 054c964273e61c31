"""Hostile share states: no Python from a link runs before a click, and every view still draws.

The corpus (``data/hostile_states.json``) changes one part of a valid state at a time: code,
quotes, backslashes and newlines in every string and index field, huge, negative and
fractional numbers, wrong types, ablation entries of every wrong shape, null where a string
belongs. Each payload, if it ever ran, would set ``builtins.PWNED`` and print a word that
appears nowhere in it. A property-based fuzzer (Hypothesis) draws states over the whole
schema with JSON values of every type in every field.

Three levels:
* the state functions (``validateState``, ``completeState``, ``repairState``) and the action
  calls (``web/lens_calls.js``): every state is refused with a ``ShareLinkError`` or
  completed into one whose every field has its type and range; the code each action *runs*
  is the same whatever the state (its inputs arrive as the global ``lens_args``); the code it
  *shows* parses as Python whose only calls are the expected ``lens`` function with literal
  arguments;
* the app (``LensApp.openState``, the path a link and a file take) on the demo model: the
  state's own view and the attention and ablation views draw, nothing ran;
* a real link in a fresh profile, for the first case (``neuronLayer`` holding code, which
  used to print on open).
"""

import ast
import copy
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .pages import BOOT_TIMEOUT_MS, new_page, site  # noqa: F401 (fixture)
from .test_app import ANALYSED, DEMO, open_app, show

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "data", "hostile_states.json"), encoding="utf-8") as handle:
    CORPUS = json.load(handle)
CASES = CORPUS["cases"]
MARKER, PRINTED = CORPUS["marker"], CORPUS["printed"]
VIEWS = ["tokens", "attention", "logit_lens", "activations", "ablation", "patching", "attribution", "circuit",
         "neurons", "probes", "notebook"]
PROBE_DATASETS = ["demo/ioi-order", "demo/facts-relation"]
PROBE_COMPONENTS = ["residual", "resid_pre", "attn_out", "mlp_out"]
NEURON_DATASETS = ["sample", "demo/text", "demo/ioi", "demo/facts"]
SCORE_KINDS = ["induction", "previous_token", "duplicate_token", "entropy"]
COMPONENTS = ["residual", "attention", "mlp"]
KINDS = ["zero", "mean", "resample"]
METHODS = ["atp", "eap-ig"]
CIRCUIT_METHODS = ["activation_patching", "path_patching", "acdc", "eap", "eap-ig"]
CIRCUIT_DATASETS = ["demo/ioi", "demo/facts"]
# The Python function each action's shown code calls (lens.<name>), by action.
SHOWN = {"loadModel": "from_huggingface", "analyze": "analyze", "ablate": "ablate", "patch": "patch",
         "attribute": "attribute", "neurons": "neurons", "probes": "probes", "findCircuit": "find_circuit",
         "ablateComponents": "ablate_components", "testHypothesis": "hypothesis_test"}

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(DEMO, "model.safetensors")),
                                reason="the demo model is not trained yet (python build.py train-demo)")


def base_state():
    return {
        "v": 1, "model": {"ref": "demo"}, "prompt": "When Mary and John went to the store, John gave a drink to",
        "corrupted": "When Mary and John went to the store, Kate gave a drink to", "answer": " Mary",
        "wrong": " John", "view": "attention",
        "selection": {"token": 3, "layer": 1, "head": 2, "scoreKind": "induction", "component": "residual",
                      "neuronLayer": 0, "neuron": 5, "ablations": [{"layer": 0, "head": 1, "kind": "zero"}],
                      "ablationKind": "zero"},
        "interventions": [], "notebook": [{"type": "markdown", "source": "# notes"}],
    }


def hostile(case):
    state = base_state()
    for key, value in case["patch"].items():
        if key == "selection" and isinstance(value, dict):
            state["selection"].update(value)
        else:
            state[key] = value
    return state


# In the page: every level-one check of one state, returned as data.
PROBE = """async ([state, info]) => {
  const share = await import('/web/share.js');
  const states = await import('/web/state.js');
  const calls = await import('/web/lens_calls.js');
  const lists = {datasets: states.PROBE_DATASETS, components: states.PROBE_COMPONENTS};
  const circuits = {datasets: states.CIRCUIT_DATASETS};
  try {
    share.validateState(state);
  } catch (error) {
    return {refused: error instanceof share.ShareLinkError, error: `${error.name}: ${error.message}`};
  }
  // The calls on the link's values as they came (before any repair): each refuses them
  // or runs the same code as for the defaults.
  const raw = {};
  const given = {...states.defaultState(), ...state, selection: {...states.defaultState().selection,
    ...(state.selection ?? {})}};
  const rawActions = {loadModel: () => calls.loadModel(given.model?.ref), analyze: () => calls.analyze(given.prompt),
    ablate: () => calls.ablate(given), patch: () => calls.patch(given), attribute: () => calls.attribute(given),
    neurons: () => calls.neurons(given.selection.neuronLayer, given.selection.neuron, given.selection.neuronDataset,
      states.NEURON_DATASETS),
    probes: () => calls.probes(given, lists), findCircuit: () => calls.findCircuit(given, circuits),
    ablateComponents: () => calls.ablateComponents(given, circuits),
    testHypothesis: () => calls.testHypothesis(given, circuits)};
  for (const [name, make] of Object.entries(rawActions)) {
    try { raw[name] = make().run; } catch (error) { raw[name] = null; }
  }
  const complete = states.completeState(state);
  const repaired = [...complete.repaired, ...states.repairState(complete, info)];
  delete complete.repaired;
  const actions = {loadModel: () => calls.loadModel(complete.model.ref), analyze: () => calls.analyze(complete.prompt),
    ablate: () => calls.ablate(complete), neurons: () => calls.neurons(complete.selection.neuronLayer,
      complete.selection.neuron, complete.selection.neuronDataset, states.NEURON_DATASETS), probes: () => calls.probes(complete, lists),
    findCircuit: () => calls.findCircuit(complete, circuits), ablateComponents: () => calls.ablateComponents(complete, circuits),
    testHypothesis: () => calls.testHypothesis(complete, circuits)};
  if (complete.corrupted !== null && complete.answer !== null && complete.wrong !== null) {
    actions.patch = () => calls.patch(complete);
    actions.attribute = () => calls.attribute(complete);
  }
  const made = {};
  for (const [name, make] of Object.entries(actions)) {
    try { made[name] = make(); } catch (error) { made[name] = {error: `${error.name}: ${error.message}`}; }
  }
  return {refused: false, state: complete, repaired, calls: made, raw,
          reference: Object.fromEntries(Object.entries({loadModel: calls.loadModel("demo"),
            analyze: calls.analyze("x"), ablate: calls.ablate(states.defaultState()),
            patch: calls.patch(states.defaultState()), attribute: calls.attribute(states.defaultState()),
            neurons: calls.neurons(0, 0),
            probes: calls.probes(states.defaultState(), lists),
            findCircuit: calls.findCircuit(states.defaultState(), circuits),
            ablateComponents: calls.ablateComponents(states.defaultState(), circuits),
            testHypothesis: calls.testHypothesis(states.defaultState(), circuits)}).map(([k, v]) => [k, v.run]))};
}"""


def check_state(state, info):
    """Every field of an opened state has its type and is in the model's range."""
    is_index = lambda value, limit: type(value) is int and 0 <= value < limit  # noqa: E731
    assert state["view"] in VIEWS
    for field in ("prompt", "corrupted", "answer", "wrong"):
        assert isinstance(state[field], str), field
    selection = state["selection"]
    assert is_index(selection["layer"], info["n_layers"]) and is_index(selection["head"], info["n_heads"])
    assert is_index(selection["neuronLayer"], info["n_layers"]) and is_index(selection["neuron"], info["d_mlp"])
    assert selection["token"] is None or is_index(selection["token"], 2**53)
    assert selection["scoreKind"] in SCORE_KINDS and selection["component"] in COMPONENTS
    assert selection["ablationKind"] in KINDS and selection["attributionMethod"] in METHODS
    assert selection["probeDataset"] in PROBE_DATASETS and selection["probeComponent"] in PROBE_COMPONENTS
    assert selection["neuronDataset"] in NEURON_DATASETS
    assert selection["circuitDataset"] in CIRCUIT_DATASETS and selection["circuitMethod"] in CIRCUIT_METHODS
    assert type(selection["circuitThreshold"]) in (int, float) and 0 <= selection["circuitThreshold"] <= 1
    assert is_index(selection["circuitCount"], 201) and selection["circuitCount"] >= 1
    assert isinstance(selection["hypothesis"], str) and len(selection["hypothesis"]) <= 500
    for label in selection["circuitAblated"]:
        assert isinstance(label, str) and (label.startswith("L") or label.startswith("MLP")), label
    for entry in selection["ablations"]:
        assert is_index(entry["layer"], info["n_layers"]), entry
        assert entry.get("mlp") is True or is_index(entry["head"], info["n_heads"]), entry
        assert entry.get("kind", "zero") in KINDS, entry


def literal_only(tree, function):
    """The shown code's calls are ``function`` (and the imports' names), its arguments literals."""
    called = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            called.append(name)
            if name == function:
                for argument in [*node.args, *(keyword.value for keyword in node.keywords)]:
                    if isinstance(argument, ast.Name) and argument.id == "model":
                        continue
                    if isinstance(argument, ast.Call):  # lens.sample_texts(model)
                        assert ast.unparse(argument) == "lens.sample_texts(model)", ast.unparse(argument)
                        continue
                    ast.literal_eval(argument)
    assert function in called, called
    assert set(called) <= {function, "sample_texts", "model_info", "str"}, called


def check_probe(result, state, info):
    if result["refused"] is not False:
        assert result["refused"] is True, f"not a ShareLinkError: {result['error']}"
        return "refused"
    check_state(result["state"], info)
    for action, run in result["raw"].items():
        assert run is None or run == result["reference"][action], f"{action}: a link's value entered the code that runs"
    for action, made in result["calls"].items():
        assert "error" not in made, f"{action} refused a repaired state: {made['error']}"
        assert made["run"] == result["reference"][action], f"{action}: the code that runs depends on the state"
        assert MARKER not in made["run"]
        literal_only(ast.parse(made["code"]), SHOWN[action])
    return "opened"


@pytest.fixture(scope="module")
def lens(browser, site):  # noqa: F811
    page = open_app(browser, site)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def info(lens):
    return lens.evaluate("() => { const i = window.neuroscope.app.modelInfo; "
                         "return {n_layers: i.n_layers, n_heads: i.n_heads, d_mlp: i.d_mlp}; }")


def nothing_ran(page):
    assert page.evaluate(f"window.neuroscope.python('hasattr(__import__(\"builtins\"), \"{MARKER}\")')") is False


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_each_hostile_state_is_refused_or_repaired(lens, info, case):
    state = hostile(case)
    assert check_probe(lens.evaluate(PROBE, [state, info]), state, info) == case["expect"]


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**60, 2**60) | st.floats(allow_nan=False,
                    allow_infinity=False) | st.text(max_size=30) | st.sampled_from([
                        case["patch"].get("prompt") for case in CASES if isinstance(case["patch"].get("prompt"), str)]),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
INDEX = st.integers(-3, 20) | JSON
SELECTION = st.fixed_dictionaries({}, optional={
    "token": INDEX, "layer": INDEX, "head": INDEX, "neuronLayer": INDEX, "neuron": st.integers(-3, 2000) | JSON,
    "scoreKind": st.sampled_from(SCORE_KINDS) | JSON, "component": st.sampled_from(COMPONENTS) | JSON,
    "ablationKind": st.sampled_from(KINDS) | JSON, "attributionMethod": st.sampled_from(METHODS) | JSON,
    "probeDataset": st.sampled_from(PROBE_DATASETS) | JSON,
    "probeComponent": st.sampled_from(PROBE_COMPONENTS) | JSON, "neuronDataset": st.sampled_from(NEURON_DATASETS) | JSON,
    "circuitDataset": st.sampled_from(CIRCUIT_DATASETS) | JSON, "circuitMethod": st.sampled_from(CIRCUIT_METHODS) | JSON,
    "circuitThreshold": st.floats(-1, 2) | JSON, "circuitCount": st.integers(-3, 300) | JSON,
    "circuitAblated": st.lists(st.sampled_from(["L0H1", "L9H0", "MLP2", "L0H99", "x"]) | JSON, max_size=3) | JSON,
    "hypothesis": st.text(max_size=40) | JSON,
    "ablations": st.lists(st.fixed_dictionaries({}, optional={"layer": INDEX, "head": INDEX, "mlp": JSON,
                                                             "kind": st.sampled_from(KINDS) | JSON}) | JSON,
                          max_size=4) | JSON})
STATE = st.fixed_dictionaries({}, optional={
    "prompt": st.text(max_size=40) | JSON, "corrupted": st.text(max_size=40) | JSON,
    "answer": st.text(max_size=8) | JSON, "wrong": st.text(max_size=8) | JSON,
    "view": st.sampled_from(VIEWS) | JSON, "selection": SELECTION | JSON,
    "model": st.fixed_dictionaries({"ref": st.just("demo")}) | JSON,
    "notebook": st.lists(st.fixed_dictionaries({"type": st.sampled_from(["markdown", "code", "view"]),
                                                "source": st.text(max_size=20)}), max_size=2) | JSON,
    "interventions": st.just([]) | JSON})


def fuzzed(changes):
    state = base_state()
    for key, value in changes.items():
        if key == "selection" and isinstance(value, dict):
            state["selection"].update(value)
        else:
            state[key] = value
    return state


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(changes=STATE)
def test_fuzzed_states_are_refused_or_repaired(lens, info, changes):
    state = fuzzed(changes)
    check_probe(lens.evaluate(PROBE, [state, info]), state, info)


def open_state(page, state):
    page.evaluate("async (state) => { await window.neuroscope.app.openState(state); }", state)
    page.wait_for_function(ANALYSED, timeout=BOOT_TIMEOUT_MS)


def draws(page, view):
    """``view`` draws (or, for the notebook, shows its cells) after opening a state."""
    show(page, view)
    if view == "notebook":
        return
    error = page.evaluate(f"""() => document.querySelector('.panel[data-view="{view}"] .view')
        .querySelector('.view-error')?.textContent ?? null""")
    assert error is None, f"{view}: {error}"


# The app-level cases: one of each kind (the first two payloads in every field, and every
# case without a payload); opening all 96 would take minutes for no new path.
APP_CASES = [case for case in CASES if case["expect"] == "opened"
             and not any(f"({i})" in case["name"] for i in range(2, 10))]


@pytest.mark.parametrize("case", APP_CASES, ids=[case["name"] for case in APP_CASES])
def test_the_app_opens_each_hostile_state_and_every_view_draws(lens, info, case):
    open_state(lens, hostile(case))
    nothing_ran(lens)
    state = lens.evaluate("JSON.parse(JSON.stringify(window.neuroscope.app.state))")
    check_state(state, info)
    for view in dict.fromkeys([state["view"], "attention", "ablation"]):
        draws(lens, view)
    nothing_ran(lens)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(changes=STATE)
def test_the_app_opens_fuzzed_states(lens, info, changes):
    state = fuzzed(changes)
    if lens.evaluate(PROBE, [copy.deepcopy(state), info])["refused"]:
        return
    open_state(lens, state)
    nothing_ran(lens)
    check_state(lens.evaluate("JSON.parse(JSON.stringify(window.neuroscope.app.state))"), info)
    draws(lens, "attention")


def test_a_link_with_code_in_the_neuron_layer_opens_without_running_it(browser, site, lens):  # noqa: F811
    state = hostile(next(case for case in CASES if "selection.neuronLayer" in case["name"]))
    assert state["view"] == "neurons"
    url = lens.evaluate("async (state) => (await import('/web/share.js')).shareURL(state, location.href)", state)
    page = new_page(browser.new_context())
    printed = []
    page.on("console", lambda message: printed.append(message.text))
    try:
        page.goto(url["url"])
        page.wait_for_function(ANALYSED, timeout=BOOT_TIMEOUT_MS)
        nothing_ran(page)
        assert page.evaluate("window.neuroscope.app.state.view") == "neurons"
        page.wait_for_function("() => !!window.neuroscope.app.results.neurons", timeout=BOOT_TIMEOUT_MS)
        assert page.evaluate("window.neuroscope.app.state.selection.neuronLayer") == 0
        assert "replaced or dropped: selection.neuronLayer" in page.inner_text("#messages")
        draws(page, "neurons")
        nothing_ran(page)
        assert not any(PRINTED in text for text in printed), printed
    finally:
        page.context.close()


def test_a_state_with_a_model_on_another_site_asks_before_fetching_it(lens):
    # A link (or file) chose the URL its model was fetched from, any site, without asking:
    # that site learned of the visit and chose the weights the analysis ran on.
    asked, fetched = [], []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.accept() if len(asked) == 2 else dialog.dismiss()

    def request(request):
        if request.url.startswith("http://127.0.0.1:9/"):
            fetched.append(request.url)

    lens.on("dialog", answer)
    lens.context.on("request", request)
    try:
        state = base_state()
        state["model"] = {"ref": "http://127.0.0.1:9/models/elsewhere/"}
        open_state(lens, state)  # declined: nothing fetched, the demo model instead
        assert len(asked) == 1 and "another site, http://127.0.0.1:9" in asked[0], asked
        assert fetched == []
        assert lens.evaluate("window.neuroscope.app.state.model.ref") == "demo"
        assert "was not loaded: it is on another site (http://127.0.0.1:9)" in lens.inner_text("#messages")
        open_state(lens, state)  # agreed: fetched (nothing answers there: reported, the demo instead)
        assert len(asked) == 2 and fetched, (asked, fetched)
        assert "http://127.0.0.1:9/models/elsewhere/ could not be loaded" in lens.inner_text("#messages")
        assert lens.evaluate("window.neuroscope.app.state.model.ref") == "demo"
        open_state(lens, base_state())  # a page-relative model ("demo") is not asked about
        assert len(asked) == 2
    finally:
        lens.remove_listener("dialog", answer)
        lens.context.remove_listener("request", request)
