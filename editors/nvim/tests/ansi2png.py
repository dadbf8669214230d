"""Render `tmux capture-pane -e -p` output (text with SGR colour codes) to a PNG.

usage: python ansi2png.py SCREEN.ansi OUT.png [--size PX] [--cursor COL,ROW]
Needs Pillow. Handles the SGR codes a terminal editor uses: 16/256/24-bit
colours, bold, italic, underline, reverse.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SGR = re.compile(r"\x1b\[([0-9;:]*)m")
OTHER_ESCAPE = re.compile(r"\x1b(?:\[[0-9;?]*[A-Za-z]|\][^\x07]*\x07|[()][A-Z0-9])")
FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Oblique.ttf",
)
# Neovim's default dark colours (NvimLightGrey2 on NvimDarkGrey2) for "default".
DEFAULT_FG = (0xE0, 0xE2, 0xEA)
DEFAULT_BG = (0x14, 0x16, 0x1B)
BASE16 = [
    (0x07, 0x08, 0x0D), (0xFF, 0xC0, 0xB9), (0xB3, 0xF6, 0xC0), (0xFC, 0xE0, 0x94),
    (0xA6, 0xDB, 0xFF), (0xFF, 0xCA, 0xFF), (0x8C, 0xF8, 0xF7), (0xE0, 0xE2, 0xEA),
    (0x4F, 0x52, 0x58), (0xFF, 0xC0, 0xB9), (0xB3, 0xF6, 0xC0), (0xFC, 0xE0, 0x94),
    (0xA6, 0xDB, 0xFF), (0xFF, 0xCA, 0xFF), (0x8C, 0xF8, 0xF7), (0xEE, 0xF1, 0xF8),
]

Color = tuple[int, int, int]


@dataclass(frozen=True)
class Style:
    fg: Color | None = None
    bg: Color | None = None
    bold: bool = False
    italic: bool = False
    underline: bool = False
    reverse: bool = False


def xterm256(n: int) -> Color:
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        steps = (0, 95, 135, 175, 215, 255)
        return steps[n // 36], steps[n // 6 % 6], steps[n % 6]
    level = 8 + (n - 232) * 10
    return level, level, level


def apply_sgr(style: Style, params: str) -> Style:
    codes = [int(p) if p else 0 for p in re.split("[;:]", params)] if params else [0]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0:
            style = Style()
        elif c in (1, 3, 4, 7):
            style = replace(style, **{{1: "bold", 3: "italic", 4: "underline", 7: "reverse"}[c]: True})
        elif c in (22, 23, 24, 27):
            style = replace(style, **{{22: "bold", 23: "italic", 24: "underline", 27: "reverse"}[c]: False})
        elif 30 <= c <= 37 or 90 <= c <= 97:
            style = replace(style, fg=BASE16[c - 30 if c < 90 else c - 82])
        elif 40 <= c <= 47 or 100 <= c <= 107:
            style = replace(style, bg=BASE16[c - 40 if c < 100 else c - 92])
        elif c in (39, 49):
            style = replace(style, **{"fg" if c == 39 else "bg": None})
        elif c in (38, 48) and i + 1 < len(codes):
            if codes[i + 1] == 5 and i + 2 < len(codes):
                color, i = xterm256(codes[i + 2]), i + 2
            elif codes[i + 1] == 2 and i + 4 < len(codes):
                color, i = (codes[i + 2], codes[i + 3], codes[i + 4]), i + 4
            else:
                break
            style = replace(style, **{"fg" if c == 38 else "bg": color})
        i += 1
    return style


def parse(text: str) -> list[list[tuple[str, Style]]]:
    """Lines of (character, style) cells."""
    rows: list[list[tuple[str, Style]]] = []
    style = Style()
    for raw in text.rstrip("\n").split("\n"):
        row: list[tuple[str, Style]] = []
        pos = 0
        for match in SGR.finditer(raw):
            for ch in OTHER_ESCAPE.sub("", raw[pos : match.start()]):
                row.append((ch, style))
            style = apply_sgr(style, match.group(1))
            pos = match.end()
        for ch in OTHER_ESCAPE.sub("", raw[pos:]):
            row.append((ch, style))
        rows.append(row)
    return rows


def render(
    rows: list[list[tuple[str, Style]]], out: Path, size: int, columns: int, cursor: tuple[int, int] | None = None
) -> None:
    regular, bold, italic = (ImageFont.truetype(path, size) for path in FONTS)
    cell_w = round(regular.getlength("M"))
    ascent, descent = regular.getmetrics()
    cell_h = ascent + descent + 2
    pad = 10
    image = Image.new("RGB", (columns * cell_w + 2 * pad, len(rows) * cell_h + 2 * pad), DEFAULT_BG)
    draw = ImageDraw.Draw(image)
    for y, row in enumerate(rows):
        for x, (ch, style) in enumerate(row):
            fg, bg = style.fg or DEFAULT_FG, style.bg or DEFAULT_BG
            if style.reverse:
                fg, bg = bg, fg
            left, top = pad + x * cell_w, pad + y * cell_h
            draw.rectangle([left, top, left + cell_w - 1, top + cell_h - 1], fill=bg)
            font = bold if style.bold else italic if style.italic else regular
            draw.text((left, top + 1), ch, font=font, fill=fg)
            if style.underline:
                draw.line([left, top + cell_h - 2, left + cell_w - 1, top + cell_h - 2], fill=fg)
    if cursor:  # an insert-mode bar
        left, top = pad + cursor[0] * cell_w, pad + cursor[1] * cell_h
        draw.rectangle([left, top, left + 1, top + cell_h - 1], fill=DEFAULT_FG)
    image.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("screen", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--cursor", help="COL,ROW (0-based) to draw a bar cursor at")
    args = parser.parse_args()
    cursor = tuple(int(n) for n in args.cursor.split(",")) if args.cursor else None
    rows = parse(args.screen.read_text(encoding="utf-8"))
    columns = max((len(row) for row in rows), default=1)
    render(rows, args.out, args.size, columns, cursor)


if __name__ == "__main__":
    main()
