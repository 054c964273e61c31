"""A research paper from an analysis: ``ResearchPaper(title=..., authors=...)``, then
``.add_results(obj)`` / ``.add_visualizations(figures)`` (chainable) and
``.generate_latex(folder)``.

The folder gets ``main.tex`` (article class, packages of Debian's ``texlive-latex-base`` and
``texlive-latex-recommended`` only), ``references.bib`` (the papers of the methods used),
one PDF per figure (vector graphics drawn by ``figures.Figure``, not screenshots) and
``analysis.neuroscope`` (the Lens share file). The paper names the model with its content
hash and carries the share link: a Lens notebook with one code cell per result, the Python
that recomputes it (cells run only when clicked). ``to_zip()`` gives the same files as one
archive (the Lens's "Export paper").

Results: ``Circuit``, ``HypothesisResult``, ``ProbeSweep``, a 2-D patching or attribution
Tensor (``[layer, head]`` / ``[layer, pos]``: a table and a heatmap), or a table
(``{"columns": [...], "rows": [[...]]}`` or a list of dicts). Figures: ``Circuit``,
``CircuitFigure``, ``Figure``, or a 2-D Tensor (a heatmap).
"""

import datetime
import io
import json
import os
import zipfile

from .figures import Figure
from .share import share_link, share_state

REFERENCES = {
    "wang2022ioi": (
        "article",
        {
            "title": "Interpretability in the Wild: a Circuit for Indirect Object "
            "Identification in {GPT}-2 small",
            "author": "Wang, Kevin and Variengien, Alexandre and Conmy, Arthur and Shlegeris, "
            "Buck and Steinhardt, Jacob",
            "journal": "arXiv preprint arXiv:2211.00593",
            "year": "2022",
        },
    ),
    "conmy2023acdc": (
        "inproceedings",
        {
            "title": "Towards Automated Circuit Discovery for Mechanistic Interpretability",
            "author": "Conmy, Arthur and Mavor-Parker, Augustine N. and Lynch, Aengus "
            "and Heimersheim, Stefan and Garriga-Alonso, Adri{\\`a}",
            "booktitle": "Advances in Neural Information Processing Systems",
            "year": "2023",
        },
    ),
    "syed2023eap": (
        "article",
        {
            "title": "Attribution Patching Outperforms Automated Circuit Discovery",
            "author": "Syed, Aaquib and Rager, Can and Conmy, Arthur",
            "journal": "arXiv preprint arXiv:2310.10348",
            "year": "2023",
        },
    ),
    "hanna2024faith": (
        "inproceedings",
        {
            "title": "Have Faith in Faithfulness: Going Beyond Circuit Overlap When Finding Model Mechanisms",
            "author": "Hanna, Michael and Pezzelle, Sandro and Belinkov, Yonatan",
            "booktitle": "Conference on Language Modeling",
            "year": "2024",
        },
    ),
    "heimersheim2024patching": (
        "article",
        {
            "title": "How to use and interpret activation patching",
            "author": "Heimersheim, Stefan and Nanda, Neel",
            "journal": "arXiv preprint arXiv:2404.15255",
            "year": "2024",
        },
    ),
    "meng2022rome": (
        "inproceedings",
        {
            "title": "Locating and Editing Factual Associations in {GPT}",
            "author": "Meng, Kevin and Bau, David and Andonian, Alex and Belinkov, Yonatan",
            "booktitle": "Advances in Neural Information Processing Systems",
            "year": "2022",
        },
    ),
    "efron1979bootstrap": (
        "article",
        {
            "title": "Bootstrap Methods: Another Look at the Jackknife",
            "author": "Efron, Bradley",
            "journal": "The Annals of Statistics",
            "volume": "7",
            "number": "1",
            "pages": "1--26",
            "year": "1979",
        },
    ),
    "good2005permutation": (
        "book",
        {
            "title": "Permutation, Parametric, and Bootstrap Tests of Hypotheses",
            "author": "Good, Phillip",
            "publisher": "Springer",
            "edition": "3",
            "year": "2005",
        },
    ),
    "alain2016probes": (
        "article",
        {
            "title": "Understanding intermediate layers using linear classifier probes",
            "author": "Alain, Guillaume and Bengio, Yoshua",
            "journal": "arXiv preprint arXiv:1610.01644",
            "year": "2016",
        },
    ),
    "chan2022scrubbing": (
        "misc",
        {
            "title": "Causal Scrubbing: a method for rigorously testing interpretability hypotheses",
            "author": "Chan, Lawrence and Garriga-Alonso, Adri{\\`a} and Goldowsky-Dill, "
            "Nicholas and Greenblatt, Ryan and Nitishinskaya, Jenny and "
            "Radhakrishnan, Ansh and Shlegeris, Buck and Thomas, Nate",
            "howpublished": "AI Alignment Forum",
            "year": "2022",
        },
    ),
}
_METHOD_CITES = {
    "activation_patching": ["heimersheim2024patching", "meng2022rome"],
    "path_patching": ["wang2022ioi"],
    "acdc": ["conmy2023acdc"],
    "eap": ["syed2023eap"],
    "eap-ig": ["hanna2024faith"],
}
_METHOD_NAMES = {
    "activation_patching": "activation patching of each head and MLP",
    "path_patching": "path patching",
    "acdc": "ACDC",
    "eap": "edge attribution patching (EAP)",
    "eap-ig": "EAP with integrated gradients (EAP-IG)",
}


class PaperError(ValueError):
    """Something a paper cannot hold."""


class ResearchPaper:
    """``ResearchPaper(title=..., authors=[...], abstract=None, model=None, lens_url=...)``."""

    def __init__(self, title, authors=(), abstract=None, model=None, lens_url=None, date=None):
        if not isinstance(title, str) or not title.strip():
            raise PaperError(f"title={title!r}; expected a non-empty string")
        self.title = title
        self.authors = [authors] if isinstance(authors, str) else list(authors)
        self.abstract, self.model = abstract, model
        self.lens_url = lens_url
        self.date = date or datetime.date.today().isoformat()
        self.items = []  # ("section", title, text) | ("result", obj, caption) | ("figure", fig, caption)

    # -- building ---------------------------------------------------------------------------
    def add_section(self, title, text):
        self.items.append(("section", str(title), str(text)))
        return self

    def add_results(self, results, caption=None):
        """One result or a list of them (see the module docstring); returns the paper."""
        for obj in results if isinstance(results, (list, tuple)) and not _is_table(results) else [results]:
            _describe(obj, draw=False)  # refuse what a paper cannot hold now, not when it is written
            self._adopt_model(obj)
            self.items.append(("result", obj, caption))
        return self

    def add_visualizations(self, figures, caption=None):
        """One figure or a list of them: ``Circuit``, ``CircuitFigure``, ``Figure``, 2-D Tensor."""
        for figure in figures if isinstance(figures, (list, tuple)) else [figures]:
            _as_figure(figure, draw=False)
            self._adopt_model(figure)
            self.items.append(("figure", figure, caption))
        return self

    def _adopt_model(self, obj):
        model = getattr(obj, "model", None)
        if self.model is None and model is not None and hasattr(model, "content_hash"):
            self.model = model

    # -- the share link -----------------------------------------------------------------------
    def share_state(self):
        """The Lens state that reproduces the paper: a markdown cell with the title, then each
        result's and figure's Python as a code cell (run only when clicked)."""
        if self.model is None:
            raise PaperError("the paper has no model: pass model= (or add a result that carries one)")
        cells = [
            {
                "type": "markdown",
                "source": f"# {self.title}\n\nReproduces every result and figure of the "
                "paper; run each cell to recompute it.",
            }
        ]
        for kind, obj, _ in self.items:
            if kind == "section":
                continue
            code = getattr(obj, "code", None) or getattr(getattr(obj, "circuit", None), "code", None)
            if code:
                cells.append({"type": "code", "source": code})
        return share_state(self.model, view="notebook", notebook=cells)

    def share_link(self):
        return share_link(self.share_state(), **({"base": self.lens_url} if self.lens_url else {}))

    # -- writing ------------------------------------------------------------------------------
    def files(self):
        """``{file name: bytes}``: main.tex, references.bib, the figures' PDFs, analysis.neuroscope."""
        figures, body, cites = {}, [], set()

        def add_figure(figure, caption):
            name = f"figure{len(figures) + 1}.pdf"
            figures[name] = figure.pdf()
            label = name[:-4]
            body.append(
                "\\begin{figure}[ht]\n\\centering\n"
                f"\\includegraphics[width=\\linewidth,height=0.45\\textheight,keepaspectratio]{{{name}}}\n"
                f"\\caption{{{_tex(caption or figure.title or label)}}}\n\\label{{fig:{label}}}\n"
                "\\end{figure}\n"
            )
            return label

        for kind, obj, caption in self.items:
            if kind == "section":
                body.append(f"\\section{{{_tex(obj)}}}\n{_tex(caption)}\n")
            elif kind == "figure":
                add_figure(_as_figure(obj), caption)
            else:
                text, used, figure = _describe(obj, caption)
                cites |= set(used)
                if figure is not None:
                    label = add_figure(figure, caption or figure.title)
                    text += f"\nFigure~\\ref{{fig:{label}}} draws it.\n"
                body.append(text)
        link = self.share_link() if self.model is not None else None
        tex = self._tex(body, sorted(cites), link)
        out = {"main.tex": tex.encode("utf-8"), "references.bib": _bib(sorted(cites)).encode("utf-8")}
        out.update(figures)
        if link is not None:
            from .share import encode_state

            out["analysis.neuroscope"] = json.dumps(
                {"format": "neuroscope-share", "version": 1, "state": encode_state(self.share_state())}
            ).encode("utf-8")
        return out

    def generate_latex(self, folder):
        """Write the paper's files into ``folder`` (created if needed); returns main.tex's path."""
        os.makedirs(folder, exist_ok=True)
        for name, data in self.files().items():
            with open(os.path.join(folder, name), "wb") as handle:
                handle.write(data)
        return os.path.join(folder, "main.tex")

    def to_zip(self):
        """The paper's files as a .zip archive (bytes)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in self.files().items():
                archive.writestr(name, data)
        return buffer.getvalue()

    def _tex(self, body, cites, link):
        model = self.model
        if model is not None:
            from .share import model_ref

            cfg = model.cfg
            about = (
                f"All results are computed with NeuroScope on the model \\texttt{{{_tex(model_ref(model))}}} "
                f"({_tex(cfg.family)}, {cfg.n_layers} layers, {cfg.n_heads} heads per layer, "
                f"$d_{{model}} = {cfg.d_model}$), content hash "
                f"\\texttt{{{_tex(model.content_hash()[:16])}}}\\ldots\\ (SHA-256 of its configuration and "
                "weights). The share link in the appendix opens the NeuroScope Lens on this model with a "
                "notebook holding the code of every result and figure."
            )
        else:
            about = "All results are computed with NeuroScope."
        authors = " \\and ".join(_tex(a) for a in self.authors) or "~"
        abstract = f"\\begin{{abstract}}\n{_tex(self.abstract)}\n\\end{{abstract}}\n" if self.abstract else ""
        appendix = ""
        if link is not None:
            appendix = (
                "\\appendix\n\\section{Reproducing this paper}\n"
                "Open this link in a browser (the Lens runs offline once loaded; the file "
                "\\texttt{analysis.neuroscope} next to this paper holds the same state):\n\n"
                f"{{\\footnotesize\\url{{{link}}}}}\n"
            )
        bibliography = "\\bibliographystyle{plain}\n\\bibliography{references}\n" if cites else ""
        return (
            "\\documentclass[11pt]{article}\n\\usepackage[utf8]{inputenc}\n"
            "\\usepackage[margin=2.5cm]{geometry}\n\\usepackage{graphicx}\n\\usepackage{booktabs}\n"
            "\\usepackage{amsmath}\n\\usepackage{url}\n"
            "\\makeatletter\\g@addto@macro{\\UrlBreaks}{\\do\\a\\do\\b\\do\\c\\do\\d\\do\\e\\do\\f\\do\\g\\do\\h"
            "\\do\\i\\do\\j\\do\\k\\do\\l\\do\\m\\do\\n\\do\\o\\do\\p\\do\\q\\do\\r\\do\\s\\do\\t\\do\\u\\do\\v"
            "\\do\\w\\do\\x\\do\\y\\do\\z\\do\\A\\do\\B\\do\\C\\do\\D\\do\\E\\do\\F\\do\\G\\do\\H\\do\\I\\do\\J"
            "\\do\\K\\do\\L\\do\\M\\do\\N\\do\\O\\do\\P\\do\\Q\\do\\R\\do\\S\\do\\T\\do\\U\\do\\V\\do\\W\\do\\X"
            "\\do\\Y\\do\\Z\\do0\\do1\\do2\\do3\\do4\\do5\\do6\\do7\\do8\\do9\\do\\-\\do\\_}\\makeatother\n"
            f"\\title{{{_tex(self.title)}}}\n\\author{{{authors}}}\n\\date{{{_tex(self.date)}}}\n"
            "\\begin{document}\n\\maketitle\n"
            + abstract
            + f"\\section*{{Setup}}\n{about}\n\n"
            + "\n".join(body)
            + "\n"
            + bibliography
            + appendix
            + "\\end{document}\n"
        )


# -- results -------------------------------------------------------------------------------------
def _describe(obj, caption=None, draw=True):
    """``(LaTeX, citation keys, Figure or None)`` for one result; PaperError for anything else.
    ``draw=False`` (checking a result as it is added) leaves a circuit's Figure out: files() draws it."""
    from .analysis.circuits import Circuit
    from .analysis.hypothesis import HypothesisResult
    from .analysis.probes import ProbeSweep
    from .tensor import Tensor

    if isinstance(obj, Circuit):
        return _circuit(obj, caption, draw)
    if isinstance(obj, HypothesisResult):
        return _hypothesis(obj, caption)
    if isinstance(obj, ProbeSweep):
        rows = [
            [layer, f"{train:.3f}", f"{test:.3f}"]
            for layer, train, test in zip(obj.layers, obj.train_accuracy, obj.test_accuracy)
        ]
        text = (
            f"\\subsection*{{{_tex(caption or 'Linear probes')}}}\nA logistic-regression probe "
            f"\\cite{{alain2016probes}} on \\texttt{{{_tex(obj.component)}}} at each layer ({obj.n_train} "
            f"training and {obj.n_test} test examples, classes {_tex(', '.join(map(str, obj.classes)))}); "
            "the "
            f"best layer is {obj.best_layer}.\n" + _table(["layer", "train accuracy", "test accuracy"], rows)
        )
        return text, ["alain2016probes"], None
    if isinstance(obj, Tensor):
        if obj.ndim != 2:
            raise PaperError(
                f"a Tensor result must be 2-D ([layer, head] or [layer, pos]); got shape {list(obj.shape)}"
            )
        values = obj.tolist()
        rows = [[i] + [f"{v:.3f}" for v in row] for i, row in enumerate(values)]
        columns = ["layer"] + [str(j) for j in range(len(values[0]))]
        title = caption or "Activation patching"
        text = (
            f"\\subsection*{{{_tex(title)}}}\nEach cell is the metric with one activation patched "
            "\\cite{heimersheim2024patching}.\n" + (_table(columns, rows) if len(columns) <= 14 else "")
        )
        return text, ["heimersheim2024patching"], heatmap(values, title)
    if _is_table(obj):
        columns, rows = _table_parts(obj)
        return (f"\\subsection*{{{_tex(caption or 'Table')}}}\n" + _table(columns, rows)), [], None
    raise PaperError(
        f"a paper cannot hold {type(obj).__name__} results: expected a Circuit, HypothesisResult, "
        "ProbeSweep, 2-D Tensor or a table ({'columns', 'rows'} or a list of dicts)"
    )


def _circuit(circuit, caption, draw):
    cites = _METHOD_CITES.get(circuit.method, [])
    cite = f" \\cite{{{','.join(cites)}}}" if cites else ""
    kept, total = circuit.size
    heldout = f" on {circuit.n_heldout} held-out examples" if circuit.n_heldout else ""
    edge = (
        f" With every edge outside it removed as well, the model keeps {circuit.edge_faithfulness:.2f} of it."
        if circuit.edge_faithfulness is not None
        else ""
    )
    rows = [[_tex(label), f"{score:.3f}"] for label, score in circuit.table()[:20]]
    text = (
        f"\\subsection*{{{_tex(caption or 'The ' + str(circuit.task) + ' circuit')}}}\n"
        f"We find the circuit of \\emph{{{_tex(circuit.task)}}} by "
        f"{_tex(_METHOD_NAMES.get(circuit.method, circuit.method))}{cite} on {circuit.n_examples} "
        "clean/corrupted "
        f"prompt pairs, keeping components (and edges) whose effect is at least {circuit.threshold:g} of the "
        f"full effect. It has {kept} of the model's {total} heads and MLPs and {len(circuit.edges())} edges. "
        "With every head and MLP outside it patched from the corrupted run at all positions, the model keeps "
        f"{circuit.faithfulness:.2f} of its mean metric{heldout} (faithfulness).{edge} Its components, most "
        "important first (score: fraction of the full effect):\n" + _table(["component", "score"], rows)
    )
    return text, cites, _as_figure(circuit, draw)


def _hypothesis(result, caption):
    cites = ["efron1979bootstrap", "good2005permutation"] + (
        ["chan2022scrubbing"] if result.ablation == "resample" else []
    )
    verdict = "supported" if result.supported else "not supported"
    rows = [
        ["effect (mean change of the metric)", f"{result.effect:+.3f}"],
        ["95\\% bootstrap interval", f"[{result.ci[0]:+.3f}, {result.ci[1]:+.3f}]"],
        ["permutation p-value", f"{result.p_value:.4f}"],
        ["null sets" + (" (exact)" if result.exact else " (random draws)"), str(len(result.null))],
        ["examples", str(result.n_examples)],
        ["verdict (p < 0.05)", verdict],
    ]
    text = (
        f"\\subsection*{{{_tex(caption or 'Hypothesis: ' + result.hypothesis.text)}}}\n"
        f"\\emph{{{_tex(result.hypothesis.text)}}}. {_tex(result.summary())} The interval is a percentile "
        "bootstrap over examples \\cite{efron1979bootstrap}; the p-value compares the effect with the same "
        "ablation of random components of the same kinds \\cite{good2005permutation}"
        + (
            " (resampling ablation from corrupted inputs, as in causal scrubbing \\cite{chan2022scrubbing})"
            if result.ablation == "resample"
            else ""
        )
        + ".\n"
        + _table(["", ""], rows, header=False)
    )
    return text, cites, None


def _is_table(obj):
    return (isinstance(obj, dict) and "columns" in obj and "rows" in obj) or (
        isinstance(obj, list) and obj and all(isinstance(row, dict) for row in obj)
    )


def _table_parts(obj):
    if isinstance(obj, dict):
        return [str(c) for c in obj["columns"]], [list(row) for row in obj["rows"]]
    columns = list(dict.fromkeys(key for row in obj for key in row))
    return columns, [[row.get(c, "") for c in columns] for row in obj]


def _table(columns, rows, header=True):
    spec = "l" + "r" * (len(columns) - 1)
    head = (
        " & ".join(_tex(c) if "\\" not in str(c) else str(c) for c in columns) + " \\\\\n\\midrule\n"
        if header
        else ""
    )
    lines = [" & ".join(_cell(v) for v in row) + " \\\\" for row in rows]
    return (
        f"\\begin{{center}}\n\\begin{{tabular}}{{{spec}}}\n\\toprule\n{head}"
        + "\n".join(lines)
        + "\n\\bottomrule\n\\end{tabular}\n\\end{center}\n"
    )


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if text.startswith("[") or "\\%" in text else _tex(text)


def _as_figure(obj, draw=True):
    """``obj`` as a ``Figure``; ``draw=False`` checks a circuit without drawing it (None), for adding it."""
    from .analysis.circuit_figure import CircuitFigure, check_drawable
    from .analysis.circuits import Circuit
    from .tensor import Tensor

    if isinstance(obj, Figure):
        return obj
    if isinstance(obj, CircuitFigure):
        return obj.figure
    if isinstance(obj, Circuit):
        if not draw:
            check_drawable(obj)  # files() draws it
            return None
        return obj.visualize().figure
    if isinstance(obj, Tensor) and obj.ndim == 2:
        return heatmap(obj.tolist(), "heatmap")
    raise PaperError(
        f"a paper cannot draw {type(obj).__name__}: expected a Circuit, CircuitFigure, Figure or a 2-D Tensor"
    )


def heatmap(values, title, row_label="layer"):
    """A blue-white-red heatmap ``Figure`` of a 2-D list (rows = layers), zero in white."""
    n_rows, n_cols = len(values), len(values[0])
    cell = max(10.0, min(28.0, 420.0 / n_cols))
    left, top = 46.0, 28.0
    figure = Figure(left + cell * n_cols + 70, top + cell * n_rows + 30, title=title)
    largest = max(abs(v) for row in values for v in row) or 1.0
    for i, row in enumerate(values):
        figure.text(left - 6, top + cell * (i + 0.5) + 3, f"{i}", size=8, anchor="end")
        for j, value in enumerate(row):
            figure.rect(
                left + cell * j,
                top + cell * i,
                cell,
                cell,
                fill=_diverging(value / largest),
                stroke=None,
                title=f"{row_label} {i}, {j}: {value:.4g}",
            )
    for j in range(0, n_cols, max(1, n_cols // 12)):
        figure.text(left + cell * (j + 0.5), top + cell * n_rows + 12, f"{j}", size=8, anchor="middle")
    figure.text(8, 16, title, size=10)
    figure.text(left + cell * n_cols + 8, top + 10, f"max {largest:.3g}", size=8)
    return figure


def _diverging(x):
    x = max(-1.0, min(1.0, x))
    if x >= 0:
        r, g, b = 255, int(255 - 180 * x), int(255 - 200 * x)
    else:
        r, g, b = int(255 + 200 * x), int(255 + 150 * x), 255
    return f"#{r:02x}{g:02x}{b:02x}"


# -- LaTeX ------------------------------------------------------------------------------------------
_TEX = {
    "\\": "\\textbackslash{}",
    "&": "\\&",
    "%": "\\%",
    "$": "\\$",
    "#": "\\#",
    "_": "\\_",
    "{": "\\{",
    "}": "\\}",
    "~": "\\textasciitilde{}",
    "^": "\\textasciicircum{}",
    "<": "\\textless{}",
    ">": "\\textgreater{}",
}


def _tex(text):
    """``text`` as LaTeX prose: special characters escaped, non-Latin-1 characters dropped to '?'."""
    if text is None:
        return ""
    out = "".join(_TEX.get(ch, ch) for ch in str(text))
    return out.encode("latin-1", "replace").decode("latin-1")


def _bib(keys):
    entries = []
    for key in keys:
        kind, fields = REFERENCES[key]
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields.items())
        entries.append(f"@{kind}{{{key},\n{body}\n}}\n")
    return "\n".join(entries)


__all__ = ["PaperError", "REFERENCES", "ResearchPaper", "heatmap"]
