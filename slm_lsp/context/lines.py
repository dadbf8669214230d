"""The cursor's lines: finding the cursor without splitting the document, the lines
around it, and the window's text, capped. Pure text; no syntax tree."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

LINE_CAP = 4096  # characters of the cursor line kept on each side of the cursor
WINDOW_CAP = 32_768  # characters of prefix / suffix kept at most
_CHUNK = 8192


@dataclass(frozen=True)
class Cursor:
    row: int
    start: int  # offset of the cursor line's first character
    offset: int  # offset of the cursor
    end: int  # offset where the line's content ends (before "\r\n")
    before: str  # the line before the cursor, at most LINE_CAP characters
    after: str  # the line after the cursor, at most LINE_CAP characters


@dataclass(frozen=True)
class Line:
    row: int
    start: int
    text: str  # content without the line ending


def locate(text: str, line: int, character: int) -> Cursor:
    """Find the cursor line without splitting the document; clamp the position."""
    row, start, past_end = line_start(text, max(0, line))
    newline = text.find("\n", start)
    end = len(text) if newline < 0 else newline
    if end > start and text[end - 1] == "\r":
        end -= 1
    offset = start + (end - start if past_end else min(max(0, character), end - start))
    before = text[max(start, offset - LINE_CAP) : offset]
    return Cursor(row, start, offset, end, before, text[offset : min(end, offset + LINE_CAP)])


def line_start(text: str, row: int) -> tuple[int, int, bool]:
    """(row, offset of its start, clamped?) counting newlines chunk by chunk."""
    seen = pos = 0
    while seen < row:
        chunk_end = min(len(text), pos + _CHUNK)
        count = text.count("\n", pos, chunk_end)
        if seen + count >= row:
            for _ in range(row - seen):
                pos = text.index("\n", pos) + 1
            return row, pos, False
        if chunk_end == len(text):
            return seen + count, text.rfind("\n") + 1, True
        seen, pos = seen + count, chunk_end
    return row, pos, False


def lines_above(text: str, cur: Cursor, count: int) -> list[Line]:
    lines: list[Line] = []
    end = cur.start
    while len(lines) < count and end > 0:
        start = text.rfind("\n", 0, end - 1) + 1
        lines.append(Line(cur.row - 1 - len(lines), start, text[start : end - 1].removesuffix("\r")))
        end = start
    return lines[::-1]


def lines_below(text: str, cur: Cursor, count: int) -> list[Line]:
    lines: list[Line] = []
    newline = text.find("\n", cur.end)
    while len(lines) < count and newline >= 0:
        start = newline + 1
        newline = text.find("\n", start)
        content = text[start : len(text) if newline < 0 else newline]
        lines.append(Line(cur.row + 1 + len(lines), start, content.removesuffix("\r")))
    return lines


def prefix_text(text: str, above: list[Line], start_row: int, cur: Cursor) -> tuple[str, int]:
    first = next((ln.start for ln in above if ln.row == start_row), cur.start)
    prefix = text[first : cur.start].replace("\r\n", "\n")
    if len(prefix) > WINDOW_CAP:  # a few enormous lines: keep the tail, from a line start if possible
        tail_start = len(prefix) - WINDOW_CAP
        newline = prefix.find("\n", tail_start, len(prefix) - 1)
        cut = newline + 1 if newline >= 0 else tail_start
        start_row += prefix.count("\n", 0, cut)
        prefix = prefix[cut:]
    return prefix, start_row


def suffix_text(text: str, below: list[Line], end_row: int) -> str:
    kept = [ln for ln in below if ln.row <= end_row]
    if not kept:
        return ""
    last = text.find("\n", kept[-1].start)
    suffix = text[kept[0].start : len(text) if last < 0 else last + 1].replace("\r\n", "\n")
    if len(suffix) > WINDOW_CAP:
        newline = suffix.rfind("\n", 0, WINDOW_CAP)
        suffix = suffix[: newline + 1 if newline > 0 else WINDOW_CAP]
    return suffix


def leading(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def indent_unit(lines: list[str], language: str) -> str:
    """One indentation level: tabs if the file uses them, else the commonest step."""
    tabs = spaced = 0
    steps: Counter[int] = Counter()
    previous = 0
    for line in lines:
        if not line.strip():
            continue
        indent = leading(line)
        tabs += indent.startswith("\t")
        spaced += indent.startswith(" ")
        width = len(indent.expandtabs(4))
        if 2 <= width - previous <= 8 and "\t" not in indent:
            steps[width - previous] += 1
        previous = width
    if tabs > spaced or (language == "go" and not spaced):
        return "\t"
    if not steps:
        return "    "
    return " " * max(steps, key=lambda step: (steps[step], -step))
