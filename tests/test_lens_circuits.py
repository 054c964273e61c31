"""The Lens's circuit view in CPython (neuroscope.lens.circuits): each result's code reproduces it,
clicked nodes ablate what they name, the paper export holds the session's results, bad input is
refused by name. The browser runs the same functions (tests/browser/test_app.py)."""

import base64
import io
import zipfile

import pytest

import neuroscope as ns
from neuroscope import lens
from neuroscope.analysis import circuit_runs as runs


@pytest.fixture(scope="module")
def demo():
    return ns.TransformerModel.from_huggingface("demo")


@pytest.fixture(scope="module")
def found(demo):
    return lens.find_circuit(demo, "demo/ioi", "eap", 0.02, 8, progress=False)


def test_the_view_result_and_its_code(demo, found):
    assert found["method"] == "eap" and found["n_examples"] == 8 and found["n_heldout"] == 8
    labels = [c["label"] for c in found["components"]]
    assert "L3H6" in labels[:3] and len(labels) == len(set(labels))
    assert found["svg"].startswith("<svg") and found["svg"].count("data-node=") == 36
    assert all(u != v for u, v, _ in found["edges"])
    scope = {"model": demo}
    exec(found["code"], scope)
    assert scope["circuit"].to_spec() == found["spec"]


def test_clicked_nodes_are_what_is_ablated(demo, found):
    result = lens.ablate_components(demo, "demo/ioi", 8, ["L3H6", "MLP2"])
    pairs = runs.PromptPairs(demo, lens.circuits.circuit_examples(demo, "demo/ioi", 8)[0])
    values = pairs.node_values([{runs.head(3, 6), runs.mlp(2)}])[0]
    assert result["ablated"] == pytest.approx(sum(values) / len(values), rel=1e-4)
    assert 0.1 < result["removed"] < 1 and result["components"] == ["L3H6", "MLP2"]
    scope = {"model": demo}
    exec(result["code"], scope)
    assert scope["with_ablation"] == pytest.approx(result["ablated"], rel=1e-4)


def test_a_hypothesis_and_the_paper_of_the_session(demo, found):
    result = lens.hypothesis_test(demo, "Layer 3 head 6 moves the indirect object's name", "demo/ioi", 16,
                                  progress=False)
    assert result["supported"] and result["components"] == [["head", 3, 6]] and len(result["null"]) == 32
    paper = lens.export_paper(demo, "The demo's IOI circuit", ["A. Researcher"])
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(paper["zip_base64"])))
    assert sorted(archive.namelist()) == paper["files"] == ["analysis.neuroscope", "figure1.pdf", "main.tex",
                                                            "references.bib"]
    tex = archive.read("main.tex").decode()
    assert "The demo's IOI circuit" in tex and "Hypothesis" in tex and demo.content_hash()[:16] in tex


@pytest.mark.parametrize("call, message", [
    (lambda m: lens.find_circuit(m, "demo/text", progress=False), "dataset='demo/text'"),
    (lambda m: lens.find_circuit(m, "demo/ioi", "magic", progress=False), "method='magic'"),
    (lambda m: lens.find_circuit(m, "demo/ioi", count=0, progress=False), "count=0"),
    (lambda m: lens.ablate_components(m, "demo/ioi", 4, ["L9H0"]), "layers 0-3"),
    (lambda m: lens.ablate_components(m, "demo/ioi", 4, ["head 3"]), "expected 'L<layer>H<head>'"),
    (lambda m: lens.hypothesis_test(m, "the name movers", "demo/ioi", 4), "no head or MLP named"),
])
def test_bad_input_is_refused_by_name(demo, call, message):
    with pytest.raises(ValueError, match=message):
        call(demo)
