"""Writes NeuroScope's icons from one drawing: icon.svg and the PNGs the manifest lists.

    python web/icons/make_icons.py

The drawing (a lens over a tiny network) is a list of shapes in a 512-unit square; the
PNGs are rendered from it by a small pure-Python rasteriser (signed distances, one sample
per pixel, antialiased over one pixel) and written with zlib + struct, so the output is
the same byte for byte on every machine. tests/browser/test_offline.py checks that the
committed files are what this script writes.
"""

import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 512  # drawing units
PNG_SIZES = (192, 512)
BACKGROUND, GLASS, EDGE, NODE, METAL = "#16213e", "#22335f", "#5fb3ff", "#ffb648", "#eef3ff"
LENS, LENS_RADIUS = (220, 220), 150
NODES = [(150, 150), (150, 220), (150, 290), (292, 220)]
# (kind, colour, geometry), drawn in order
SHAPES = [
    ("rounded_rect", BACKGROUND, (0, 0, SIZE, SIZE, 104)),
    ("disk", GLASS, (*LENS, LENS_RADIUS)),
    *[("segment", EDGE, (*node, *NODES[-1], 14)) for node in NODES[:-1]],
    *[("disk", NODE, (x, y, 22)) for x, y in NODES[:-1]],
    ("disk", NODE, (*NODES[-1], 28)),
    ("ring", METAL, (*LENS, LENS_RADIUS, 30)),
    ("segment", METAL, (345, 345, 425, 425, 52)),
]


def svg():
    parts = []
    for kind, colour, g in SHAPES:
        if kind == "rounded_rect":
            parts.append(f'<rect x="{g[0]}" y="{g[1]}" width="{g[2]}" height="{g[3]}" rx="{g[4]}" fill="{colour}"/>')
        elif kind == "disk":
            parts.append(f'<circle cx="{g[0]}" cy="{g[1]}" r="{g[2]}" fill="{colour}"/>')
        elif kind == "ring":
            parts.append(f'<circle cx="{g[0]}" cy="{g[1]}" r="{g[2]}" fill="none" stroke="{colour}" '
                         f'stroke-width="{g[3]}"/>')
        else:
            parts.append(f'<line x1="{g[0]}" y1="{g[1]}" x2="{g[2]}" y2="{g[3]}" stroke="{colour}" '
                         f'stroke-width="{g[4]}" stroke-linecap="round"/>')
    body = "\n  ".join(parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SIZE} {SIZE}" width="{SIZE}" '
            f'height="{SIZE}">\n  <title>NeuroScope</title>\n  {body}\n</svg>\n')


def _distance(kind, g, x, y):
    """Signed distance (drawing units, negative inside) from (x, y) to the shape."""
    if kind == "disk":
        return math.hypot(x - g[0], y - g[1]) - g[2]
    if kind == "ring":
        return abs(math.hypot(x - g[0], y - g[1]) - g[2]) - g[3] / 2
    if kind == "segment":
        x1, y1, x2, y2, width = g
        dx, dy = x2 - x1, y2 - y1
        t = max(0.0, min(1.0, ((x - x1) * dx + (y - y1) * dy) / (dx * dx + dy * dy)))
        return math.hypot(x - x1 - t * dx, y - y1 - t * dy) - width / 2
    left, top, width, height, radius = g  # rounded rectangle
    qx = abs(x - left - width / 2) - width / 2 + radius
    qy = abs(y - top - height / 2) - height / 2 + radius
    return math.hypot(max(qx, 0.0), max(qy, 0.0)) + min(max(qx, qy), 0.0) - radius


def _extent(kind, g):
    """The shape's bounding box in drawing units: (left, top, right, bottom)."""
    if kind in ("disk", "ring"):
        reach = g[2] + (g[3] / 2 if kind == "ring" else 0)
        return g[0] - reach, g[1] - reach, g[0] + reach, g[1] + reach
    if kind == "segment":
        half = g[4] / 2
        return min(g[0], g[2]) - half, min(g[1], g[3]) - half, max(g[0], g[2]) + half, max(g[1], g[3]) + half
    return g[0], g[1], g[0] + g[2], g[1] + g[3]


def render(pixels):
    """RGBA rows (bytes) of the drawing at pixels x pixels."""
    scale = SIZE / pixels  # drawing units per pixel
    rgba = [[0.0, 0.0, 0.0, 0.0] for _ in range(pixels * pixels)]
    for kind, colour, g in SHAPES:
        red, green, blue = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
        left, top, right, bottom = _extent(kind, g)
        for row in range(max(0, int(top / scale) - 1), min(pixels, int(bottom / scale) + 2)):
            y = (row + 0.5) * scale
            for column in range(max(0, int(left / scale) - 1), min(pixels, int(right / scale) + 2)):
                cover = min(1.0, max(0.0, 0.5 - _distance(kind, g, (column + 0.5) * scale, y) / scale))
                if cover:
                    pixel = rgba[row * pixels + column]
                    alpha = cover + pixel[3] * (1 - cover)
                    for channel, value in enumerate((red, green, blue)):
                        pixel[channel] = (value * cover + pixel[channel] * pixel[3] * (1 - cover)) / alpha
                    pixel[3] = alpha
    return [bytes(round(v * 255) for pixel in rgba[row * pixels:(row + 1) * pixels] for v in pixel)
            for row in range(pixels)]


def png(rows, width, height):
    """A PNG file (8-bit RGBA, no filtering) of ``rows``."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\0" + row for row in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def files():
    """{file name: bytes} of every icon."""
    out = {"icon.svg": svg().encode()}
    for pixels in PNG_SIZES:
        out[f"icon-{pixels}.png"] = png(render(pixels), pixels, pixels)
    return out


if __name__ == "__main__":
    for name, data in files().items():
        with open(os.path.join(HERE, name), "wb") as handle:
            handle.write(data)
        print(f"wrote web/icons/{name} ({len(data)} bytes)")
