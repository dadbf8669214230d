"""Positions: LSP's UTF-16 columns, code points, lines.

Pure functions over strings; fast on huge documents (no full splitlines).

Text from a client may hold lone surrogates (a JSON ``"\\udc80"``), which
cannot be encoded as UTF-8 (tree-sitter, the tokenizer, the cache all encode):
``clean_text`` replaces each with U+FFFD, one code point (and one UTF-16 unit)
for one, so every position stays where the client has it. A UTF-16 column in
the middle of a surrogate pair (an astral character) snaps to the pair's start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
_CHUNK = 8192  # characters whose newlines are counted at once


def clean_text(text: str) -> str:
    """``text`` with every lone surrogate (anything UTF-8 cannot encode) replaced by U+FFFD.

    Same length in code points and in UTF-16 units, so positions are unchanged.
    Returns ``text`` itself when it is already valid (the common case, one pass).
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(REPLACEMENT, text)
    return text


def line_start(text: str, line: int) -> int | None:
    """Offset where 0-based ``line`` starts (lines end at "\\n"), or None past the last line.

    Counts newlines chunk by chunk at C speed, so a far line of a huge document is cheap."""
    pos = 0
    while line > 0:
        chunk_end = min(len(text), pos + _CHUNK)
        count = text.count("\n", pos, chunk_end)
        if count >= line:
            for _ in range(line):
                pos = text.index("\n", pos) + 1
            return pos
        if chunk_end == len(text):
            return None
        line, pos = line - count, chunk_end
    return pos


def line_bounds(text: str, line: int) -> tuple[int, int] | None:
    """Start and end offsets (end excludes the line break) of a line, or None past the end."""
    start = line_start(text, line)
    if start is None:
        return None
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    if end > start and text[end - 1] == "\r":
        end -= 1
    return start, end


def utf16_to_codepoints(line_text: str, character: int) -> int:
    """A UTF-16 column as a code-point column, clamped to the line; a column in the
    middle of a surrogate pair snaps to the pair's start."""
    units = 0
    for i, ch in enumerate(line_text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > character:
            return i
    return len(line_text)


def codepoints_to_utf16(line_text: str, column: int) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in line_text[:column])


@dataclass(frozen=True)
class Cursor:
    line: int  # clamped to the document
    character: int  # code points, clamped to the line (and snapped out of a surrogate pair)
    line_text: str
    in_range: bool  # False when the client's position was outside the document

    @property
    def utf16_character(self) -> int:
        """The cursor's column in UTF-16 units: the client's, or where it snapped to."""
        return codepoints_to_utf16(self.line_text, self.character)


def cursor_at(text: str, line: int, character: int, utf16: bool = True) -> Cursor:
    """The clamped cursor for an LSP position."""
    bounds = line_bounds(text, max(line, 0))
    in_range = bounds is not None and line >= 0
    if bounds is None:
        last = text.count("\n")
        bounds = line_bounds(text, last) or (0, 0)
        line, character = last, 1 << 30
    line_text = text[bounds[0] : bounds[1]]
    col = utf16_to_codepoints(line_text, max(character, 0)) if utf16 else min(max(character, 0), len(line_text))
    in_range = in_range and 0 <= character <= codepoints_to_utf16(line_text, len(line_text))
    return Cursor(max(line, 0), col, line_text, in_range)


def common_prefix_len(a: str, b: str) -> int:
    """Length of the common prefix, by bisection on C-speed slice comparisons."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo
