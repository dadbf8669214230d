"""The latency picture of the benchmarks: a CDF per series on a log axis, as PNG.

matplotlib when installed; otherwise a tiny built-in renderer (a pixel canvas, a
3x5 font, zlib for the PNG), so a clean install still gets a picture. Pure but
for writing the file.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path
from typing import Sequence


def cdf_points(values: Sequence[float]) -> list[tuple[float, float]]:
    """(x, share of values <= x) steps for a CDF plot."""
    xs = sorted(values)
    return [(x, (i + 1) / len(xs)) for i, x in enumerate(xs)]


def plot_cdf(path: Path, series: dict[str, Sequence[float]], title: str, deadline_ms: float | None = None) -> str:
    """A latency CDF (log x axis) of each series as PNG; returns the renderer used.

    matplotlib when installed (``pip install matplotlib``), else a tiny built-in
    PNG renderer (zlib only), so a clean install still gets a picture.
    """
    series = {name: list(v) for name, v in series.items() if v}
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        write_png(path, render_cdf(series, deadline_ms=deadline_ms))
        return "builtin"
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for name, values in series.items():
        pts = cdf_points(values)
        ax.step([x for x, _ in pts], [100 * y for _, y in pts], where="post", label=f"{name} (n={len(values)})")
    if deadline_ms:
        ax.axvline(deadline_ms, color="grey", linestyle=":", label=f"deadline {deadline_ms:g} ms")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("requests answered within (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return "matplotlib"


_FONT = {  # 3x5 glyphs, rows top to bottom
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", "A": "010101111101101", "B": "110101110101110",
    "C": "011100100100011", "D": "110101101101110", "E": "111100110100111", "F": "111100110100100",
    "G": "011100101101011", "H": "101101111101101", "I": "111010010010111", "L": "100100100100111",
    "M": "101111111101101", "N": "110101101101101", "O": "010101101101010", "P": "110101110100100",
    "R": "110101110101101", "S": "011100010001110", "T": "111010010010010", "U": "101101101101111",
    "V": "101101101101010", "W": "101101111111101", "Y": "101101010010010", "%": "101001010100101",
    ".": "000000000000010", "-": "000000111000000", "(": "010100100100010", ")": "010001001001010",
    "=": "000111000111000", ",": "000000000010100",
}  # fmt: skip
_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(b"\xff" * (width * height * 3))

    def dot(self, x: int, y: int, rgb: tuple[int, int, int]) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = 3 * (y * self.width + x)
            self.pixels[i : i + 3] = bytes(rgb)

    def line(self, x0: int, y0: int, x1: int, y1: int, rgb: tuple[int, int, int], width: int = 1) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for s in range(steps + 1):
            x, y = x0 + (x1 - x0) * s // steps, y0 + (y1 - y0) * s // steps
            for d in range(width):
                self.dot(x + (0 if y0 == y1 else d), y + (d if y0 == y1 else 0), rgb)

    def text(self, x: int, y: int, text: str, rgb: tuple[int, int, int] = (0, 0, 0), scale: int = 2) -> None:
        for k, ch in enumerate(text.upper()):
            glyph = _FONT.get(ch, "0" * 15)
            for bit, on in enumerate(glyph):
                if on == "1":
                    for dx in range(scale):
                        for dy in range(scale):
                            self.dot(x + 4 * scale * k + (bit % 3) * scale + dx, y + (bit // 3) * scale + dy, rgb)


def render_cdf(series: dict[str, list[float]], width: int = 800, height: int = 500, deadline_ms: float | None = None) -> Canvas:
    """The CDF picture drawn pixel by pixel: log x axis in ms, 0-100 % y axis, a legend."""
    c = Canvas(width, height)
    left, right, top, bottom = 70, width - 20, 20, height - 50
    everything = [v for values in series.values() for v in values] or [1.0]
    lo = 10 ** math.floor(math.log10(max(min(everything), 0.1)))
    hi = 10 ** math.ceil(math.log10(max(max(everything), lo * 10)))

    def px(ms: float) -> int:
        share = (math.log10(max(ms, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        return left + round(share * (right - left))

    def py(share: float) -> int:
        return bottom - round(share * (bottom - top))

    decade = lo
    while decade <= hi:
        for m in (1, 2, 5):
            if decade * m <= hi:
                c.line(px(decade * m), top, px(decade * m), bottom, (200, 200, 200) if m == 1 else (235, 235, 235))
        c.text(px(decade) - 8, bottom + 8, f"{decade:g}")
        decade *= 10
    for pct in range(0, 101, 25):
        c.line(left, py(pct / 100), right, py(pct / 100), (220, 220, 220))
        c.text(left - 40, py(pct / 100) - 5, f"{pct}%")
    if deadline_ms and lo <= deadline_ms <= hi:
        for y in range(top, bottom, 8):  # dotted
            c.line(px(deadline_ms), y, px(deadline_ms), y + 3, (120, 120, 120))
    c.line(left, bottom, right, bottom, (0, 0, 0))
    c.line(left, top, left, bottom, (0, 0, 0))
    c.text(width // 2 - 60, height - 20, "latency ms (log)")
    for n, (name, values) in enumerate(series.items()):
        rgb = _COLOURS[n % len(_COLOURS)]
        x_prev, y_prev = px(min(values)), py(0)
        for ms, share in cdf_points(values):
            x, y = px(ms), py(share)
            c.line(x_prev, y_prev, x, y_prev, rgb, 2)
            c.line(x, y_prev, x, y, rgb, 2)
            x_prev, y_prev = x, y
        c.line(right - 230, bottom - 40 - 18 * n, right - 205, bottom - 40 - 18 * n, rgb, 3)
        c.text(right - 195, bottom - 45 - 18 * n, f"{name} (n={len(values)})", rgb)
    return c


def write_png(path: Path, canvas: Canvas) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    stride = canvas.width * 3
    raw = b"".join(b"\x00" + bytes(canvas.pixels[r * stride : (r + 1) * stride]) for r in range(canvas.height))
    header = struct.pack(">IIBBBBB", canvas.width, canvas.height, 8, 2, 0, 0, 0)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
