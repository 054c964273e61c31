"""Vector figures drawn by NeuroScope itself: one list of shapes, written as SVG (the Lens,
Jupyter, the web) or as a one-page PDF (papers: ``pdflatex`` includes it with
``\\includegraphics``). Standard library only, so it runs in Pyodide as in CPython.

Coordinates are in points, y downwards (SVG's convention; the PDF writer flips them).
Colours are ``"#rrggbb"``. Text uses Helvetica (a PDF base font; SVG falls back to the
browser's sans-serif).
"""

import math
import zlib
from xml.sax.saxutils import escape

_HELVETICA_WIDTH = 0.56  # mean advance of a Helvetica glyph, in ems: for anchoring text in the PDF


class Figure:
    """``Figure(width, height)`` with ``line``, ``circle``, ``rect`` and ``text``; ``.svg()``,
    ``.pdf()`` (bytes), ``.save(path)`` (by extension), shown inline in Jupyter."""

    def __init__(self, width, height, title=None):
        self.width, self.height, self.title = float(width), float(height), title
        self.shapes = []

    def line(self, x1, y1, x2, y2, color="#000000", width=1.0, title=None):
        self.shapes.append(("line", (x1, y1, x2, y2), {"color": color, "width": width, "title": title}))
        return self

    def circle(self, x, y, r, fill=None, stroke="#000000", width=1.0, title=None, data=None):
        """``data``: ``{name: value}`` written as SVG ``data-<name>`` attributes (ignored in PDF)."""
        for key in data or {}:
            if not (
                isinstance(key, str) and key and all(c.isalnum() or c == "-" for c in key) and key.islower()
            ):
                raise ValueError(f"data attribute {key!r}; expected lower-case letters, digits and '-'")
        self.shapes.append(
            (
                "circle",
                (x, y, r),
                {"fill": fill, "stroke": stroke, "width": width, "title": title, "data": dict(data or {})},
            )
        )
        return self

    def rect(self, x, y, w, h, fill=None, stroke="#000000", width=1.0, title=None):
        self.shapes.append(
            ("rect", (x, y, w, h), {"fill": fill, "stroke": stroke, "width": width, "title": title})
        )
        return self

    def text(self, x, y, string, size=10.0, color="#000000", anchor="start"):
        if anchor not in ("start", "middle", "end"):
            raise ValueError(f"anchor={anchor!r}; expected 'start', 'middle' or 'end'")
        self.shapes.append(("text", (x, y, str(string)), {"size": size, "color": color, "anchor": anchor}))
        return self

    # -- SVG ------------------------------------------------------------------------------------
    def svg(self):
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(self.width)}" height="{_n(self.height)}" '
            f'viewBox="0 0 {_n(self.width)} {_n(self.height)}" font-family="Helvetica, Arial, sans-serif">'
        ]
        if self.title:
            parts.append(f"<title>{escape(self.title)}</title>")
        for kind, args, style in self.shapes:
            tip = f"<title>{escape(style['title'])}</title>" if style.get("title") else ""
            if kind == "line":
                x1, y1, x2, y2 = args
                parts.append(
                    f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" '
                    f'stroke="{_color(style["color"])}" stroke-width="{_n(style["width"])}" '
                    f'stroke-linecap="round">{tip}</line>'
                )
            elif kind == "circle":
                x, y, r = args
                data = "".join(
                    f' data-{key}="{escape(str(value), {chr(34): "&quot;"})}"'
                    for key, value in style["data"].items()
                )
                parts.append(
                    f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(r)}" {_paint(style)}{data}>{tip}</circle>'
                )
            elif kind == "rect":
                x, y, w, h = args
                parts.append(
                    f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" '
                    f"{_paint(style)}>{tip}</rect>"
                )
            else:
                x, y, string = args
                parts.append(
                    f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(style["size"])}" '
                    f'fill="{_color(style["color"])}" text-anchor="{style["anchor"]}">{escape(string)}</text>'
                )
        parts.append("</svg>")
        return "".join(parts)

    def _repr_svg_(self):
        return self.svg()

    # -- PDF ------------------------------------------------------------------------------------
    def pdf(self):
        """A one-page PDF of the figure (vector; Helvetica text), as bytes."""
        h = self.height
        ops = []
        for kind, args, style in self.shapes:
            if kind == "line":
                x1, y1, x2, y2 = args
                ops.append(
                    f"{_rgb(style['color'])} RG {_n(style['width'])} w 1 J "
                    f"{_n(x1)} {_n(h - y1)} m {_n(x2)} {_n(h - y2)} l S"
                )
            elif kind in ("circle", "rect"):
                path = (
                    _circle_path(args[0], h - args[1], args[2])
                    if kind == "circle"
                    else f"{_n(args[0])} {_n(h - args[1] - args[3])} {_n(args[2])} {_n(args[3])} re"
                )
                fill, stroke = style["fill"], style["stroke"]
                if fill is None and stroke is None:
                    continue
                paint = "B" if fill and stroke else ("f" if fill else "S")
                ops.append(
                    (f"{_rgb(fill)} rg " if fill else "")
                    + (f"{_rgb(stroke)} RG {_n(style['width'])} w " if stroke else "")
                    + f"{path} {paint}"
                )
            else:
                x, y, string = args
                size = style["size"]
                shift = (
                    {"start": 0.0, "middle": 0.5, "end": 1.0}[style["anchor"]]
                    * len(string)
                    * size
                    * _HELVETICA_WIDTH
                )
                ops.append(
                    f"BT {_rgb(style['color'])} rg /F1 {_n(size)} Tf {_n(x - shift)} {_n(h - y)} Td "
                    f"({_pdf_string(string)}) Tj ET"
                )
        content = zlib.compress("\n".join(ops).encode("latin-1", "replace"))
        objects = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            (
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_n(self.width)} {_n(self.height)}] "
                f"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
            ).encode(),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
            f"<< /Length {len(content)} /Filter /FlateDecode >>\nstream\n".encode()
            + content
            + b"\nendstream",
        ]
        if self.title:
            objects.append(
                f"<< /Title ({_pdf_string(self.title)}) /Producer (NeuroScope) >>".encode(
                    "latin-1", "replace"
                )
            )
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(objects, 1):
            offsets.append(len(out))
            out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
        xref = len(out)
        out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
        for offset in offsets:
            out += f"{offset:010d} 00000 n \n".encode()
        info = f" /Info {len(objects)} 0 R" if self.title else ""
        out += (
            f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
        )
        return bytes(out)

    def save(self, path):
        """Write ``path`` as SVG (``.svg``) or PDF (``.pdf``); returns the path."""
        if path.endswith(".svg"):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(self.svg())
        elif path.endswith(".pdf"):
            with open(path, "wb") as handle:
                handle.write(self.pdf())
        else:
            raise ValueError(f"path={path!r}; expected a .svg or .pdf file name")
        return path


def _n(value):
    text = f"{float(value):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _color(value):
    if not (
        isinstance(value, str)
        and len(value) == 7
        and value[0] == "#"
        and all(c in "0123456789abcdefABCDEF" for c in value[1:])
    ):
        raise ValueError(f"colour {value!r}; expected '#rrggbb'")
    return value


def _rgb(value):
    value = _color(value)
    return " ".join(_n(int(value[i : i + 2], 16) / 255) for i in (1, 3, 5))


def _paint(style):
    fill = _color(style["fill"]) if style["fill"] else "none"
    stroke = (
        f'stroke="{_color(style["stroke"])}" stroke-width="{_n(style["width"])}"'
        if style["stroke"]
        else 'stroke="none"'
    )
    return f'fill="{fill}" {stroke}'


def _circle_path(x, y, r):
    k = r * 4 * (math.sqrt(2) - 1) / 3  # the cubic Bezier quarter-circle constant
    points = [
        (x + r, y),
        (x + r, y + k),
        (x + k, y + r),
        (x, y + r),
        (x - k, y + r),
        (x - r, y + k),
        (x - r, y),
        (x - r, y - k),
        (x - k, y - r),
        (x, y - r),
        (x + k, y - r),
        (x + r, y - k),
        (x + r, y),
    ]
    out = [f"{_n(points[0][0])} {_n(points[0][1])} m"]
    for i in range(1, 13, 3):
        out.append(" ".join(f"{_n(px)} {_n(py)}" for px, py in points[i : i + 3]) + " c")
    return " ".join(out) + " h"


def _pdf_string(text):
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


__all__ = ["Figure"]
