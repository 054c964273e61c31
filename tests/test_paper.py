"""ResearchPaper: a LaTeX paper that compiles with pdflatex and carries the share link that
reproduces it; Python share links the Lens's share.js reads (node), and back.

The paper test runs Debian's pdflatex and bibtex (texlive-latex-base and
texlive-latex-recommended, which ``python build.py test`` installs where missing).
"""

import io
import json
import re
import shutil
import subprocess
import zipfile

import pytest

import neuroscope as ns
from neuroscope.analysis.circuits import Circuit, CircuitFinder
from neuroscope.analysis.hypothesis import HypothesisTester
from neuroscope.datasets import load_heldout
from neuroscope.paper import PaperError, ResearchPaper
from neuroscope.share import ShareLinkError, decode_state, encode_state, share_link, share_state

ROOT = __import__("os").path.dirname(__import__("os").path.dirname(__import__("os").path.abspath(__file__)))


@pytest.fixture(scope="module")
def demo():
    return ns.TransformerModel.from_huggingface("demo")


@pytest.fixture(scope="module")
def paper(demo):
    ioi = load_heldout("ioi")["prompts"]
    circuit = CircuitFinder(demo, progress=False).find_circuit_for("ioi", ioi[:8], method="eap-ig", threshold=0.02,
                                                                   heldout=ioi[32:48])
    result = HypothesisTester(demo, "Layer 3 head 6 moves the indirect object's name", ioi[:8], progress=False,
                              bootstrap=500).run()
    sweep = ns.tensor([[0.1, -0.2, 0.0], [0.5, 0.25, -0.75]])
    return (ResearchPaper(title="The IOI circuit of the demo model: 100% & more_", authors=["A. Researcher"],
                          abstract="A circuit, a test ~ and a table.")
            .add_results(circuit).add_results(result).add_results(sweep, caption="A patching sweep")
            .add_results([{"method": "eap-ig", "faithfulness": round(circuit.faithfulness, 3)}], caption="Methods")
            .add_visualizations(circuit, caption="The circuit"))


def _node(script):
    node = shutil.which("node")
    assert node, "node is needed to run the Lens's share.js"
    done = subprocess.run([node, "--input-type=module", "-e", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex (texlive-latex-base) is not installed")
def test_the_paper_compiles_with_pdflatex(paper, demo, tmp_path):
    main = paper.generate_latex(str(tmp_path / "paper"))
    folder = tmp_path / "paper"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["analysis.neuroscope", "figure1.pdf", "figure2.pdf", "figure3.pdf", "main.tex",
                     "references.bib"], names
    tex = (folder / "main.tex").read_text()
    assert demo.content_hash()[:16] in tex and "\\url{http://localhost:8000/#s=ns1." in tex
    bib = (folder / "references.bib").read_text()
    for key in ("hanna2024faith", "efron1979bootstrap", "good2005permutation", "heimersheim2024patching"):
        assert f"{{{key}," in bib and f"{key}" in tex
    for command in (["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"], ["bibtex", "main"],
                    ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"],
                    ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"]):
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout[-2000:]
    log = (folder / "main.log").read_text(errors="replace")
    assert "Citation" not in log or "undefined" not in log, "a citation is undefined"
    assert "Reference" not in log or "undefined" not in log
    pages = re.search(r"Output written on main.pdf \((\d+) pages", log)
    assert (folder / "main.pdf").read_bytes().startswith(b"%PDF") and pages and int(pages.group(1)) >= 3
    assert main.endswith("main.tex")


def test_the_share_link_opens_the_papers_notebook_in_the_lens(paper, demo):
    link = paper.share_link()
    state = json.loads(_node(f"""
        import {{ stateFromLocation }} from "./web/share.js";
        console.log(JSON.stringify(await stateFromLocation({json.dumps(link)})));"""))
    assert state["model"] == {"ref": "demo"} and state["view"] == "notebook"
    code = [cell["source"] for cell in state["notebook"] if cell["type"] == "code"]
    assert len(code) == 3  # the circuit (result and figure) and the hypothesis; the tables have no code
    # every code cell recomputes its result in CPython as the Lens notebook would run it
    scope = {"model": demo}
    exec(code[0], scope)
    assert scope["circuit"].to_spec() == paper.items[0][1].to_spec()
    scope = {"model": demo}
    exec(code[1], scope)
    assert scope["result"].to_dict() == paper.items[1][1].to_dict()
    assert zipfile.ZipFile(io.BytesIO(paper.to_zip())).namelist()[:2] == ["main.tex", "references.bib"]


def test_python_and_the_lens_read_each_others_links(demo):
    state = share_state(demo, prompt="Ünïcode & <tags>", notebook=[{"type": "code", "source": "print('hi')"}])
    ours = encode_state(state)
    theirs = _node(f"""
        import {{ decodeState, encodeState }} from "./web/share.js";
        const state = await decodeState({json.dumps(ours)});
        console.log(await encodeState(state));""").strip()
    assert decode_state(theirs) == state and decode_state(ours) == state
    assert decode_state(share_link(state, "https://lens.example/app/")) == state
    with pytest.raises(ShareLinkError, match="checksum"):
        decode_state(ours[:-3] + ("A" if ours[-3] != "A" else "B") + ours[-2:])
    with pytest.raises(ShareLinkError, match="truncated"):
        decode_state(ours[:20])
    with pytest.raises(ShareLinkError, match="should start with"):
        decode_state("xx1.abc")
    with pytest.raises(ShareLinkError, match='"notebook\\[0\\]"'):
        share_state(demo, notebook=[{"type": "python", "source": "x"}])


def test_what_a_paper_cannot_hold_is_refused(demo):
    paper = ResearchPaper(title="t")
    with pytest.raises(PaperError, match="cannot hold str"):
        paper.add_results("a sentence")
    with pytest.raises(PaperError, match="must be 2-D"):
        paper.add_results(ns.tensor([1.0, 2.0]))
    with pytest.raises(PaperError, match="cannot draw int"):
        paper.add_visualizations(3)
    shapeless = Circuit("ioi", "eap", 0.1, {("head", 0, 0): 0.5}, [], 0.9, {})
    for add in (paper.add_results, paper.add_visualizations):
        with pytest.raises(ValueError, match="does not say its model's shape"):
            add(shapeless)
    with pytest.raises(PaperError, match="title="):
        ResearchPaper(title=" ")
    with pytest.raises(PaperError, match="no model"):
        paper.share_link()


def test_a_circuit_is_drawn_once_per_item(paper, monkeypatch):
    """add_results / add_visualizations check a circuit without drawing it; files() draws each
    item once, the same bytes as the circuit's own figure, and the same files every time."""
    from neuroscope.analysis import circuit_figure

    circuit = paper.items[0][1]
    expected = circuit.visualize().pdf()
    drawn, draw = [], circuit_figure._draw
    monkeypatch.setattr(circuit_figure, "_draw", lambda *args: drawn.append(1) or draw(*args))
    one = ResearchPaper(title="t", date="2026-01-01").add_results(circuit)
    files = one.files()
    assert len(drawn) == 1 and files["figure1.pdf"] == expected
    assert "Figure~\\ref{fig:figure1} draws it." in files["main.tex"].decode()
    both = ResearchPaper(title="t", date="2026-01-01").add_results(circuit).add_visualizations(circuit)
    files = both.files()
    assert len(drawn) == 1 + 2 and files["figure1.pdf"] == files["figure2.pdf"] == expected
    assert both.files() == files
