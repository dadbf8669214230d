"""Syntax trees: parsing (incrementally, from a previous tree and its edits), error
counts for post-processing, and a rough literal mask for bracket counting.

The context module builds on this; nothing here knows about prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tree_sitter

from slm_lsp.languages import TEXT, comment_prefix, parser

MAX_PARSE_BYTES = 1_000_000  # larger documents are never parsed
_QUOTES = {TEXT: "", "python": "\"'", "javascript": "\"'`", "typescript": "\"'`", "tsx": "\"'`", "go": "\"'`"}


def mask_literals(text: str, language: str, quote: str | None = None) -> tuple[str, str | None]:
    """`text` with string and comment contents blanked, and the quote still open at its end.

    A rough lexer: quotes and line comments only, state reset at each newline.
    `quote` is the string open where `text` starts.
    """
    quotes = _QUOTES.get(language, "\"'")
    comment = comment_prefix(language) if language != TEXT else None
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\n":
            quote = None
        elif quote is not None:
            if ch == "\\" and text[i + 1 : i + 2] not in ("", "\n"):
                out.append("  ")
                i += 2
                continue
            quote = None if ch == quote else quote
            ch = " "
        elif comment and text.startswith(comment, i):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            out.append(" " * (end - i))
            i = end
            continue
        elif ch in quotes and not (ch == "'" and language == "rust" and not _rust_char(text, i)):
            quote, ch = ch, " "
        out.append(ch)
        i += 1
    return "".join(out), quote


def _rust_char(text: str, i: int) -> bool:
    return text[i + 1 : i + 2] == "\\" or text[i + 2 : i + 3] == "'"


# --- syntax trees -------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """One text change in tree-sitter terms (UTF-8 bytes; points are (row, byte column))."""

    start_byte: int
    old_end_byte: int
    new_end_byte: int
    start_point: tuple[int, int]
    old_end_point: tuple[int, int]
    new_end_point: tuple[int, int]


def reparse(
    language: str, text: str, previous: tree_sitter.Tree | None = None, edits: Sequence[Edit] = ()
) -> tree_sitter.Tree | None:
    """The tree of ``text``: incrementally from ``previous`` when ``edits`` say how it
    changed into ``text``, else afresh. None without a grammar or when too large.

    ``previous`` itself is left as it was (the edits go to a copy): readers may hold it."""
    ts_parser = _parser_for(language)
    if ts_parser is None or _too_large(text):
        return None
    old = None
    if previous is not None and edits:
        old = previous.copy()
        for edit in edits:
            old.edit(**{name: getattr(edit, name) for name in Edit.__dataclass_fields__})
    return ts_parser.parse(text.encode(), old) if old is not None else ts_parser.parse(text.encode())


def parse_errors(language: str, text: str) -> int:
    """How many ERROR and MISSING nodes the grammar finds in `text` (0 without a grammar)."""
    tree = _parse(language, text)
    if tree is None:
        return 0
    count, stack = 0, [tree.root_node]
    while stack:
        node = stack.pop()
        if node.has_error or node.is_missing:
            count += node.is_error or node.is_missing
            stack.extend(node.children)
    return count


def _too_large(text: str) -> bool:
    return len(text) > MAX_PARSE_BYTES or (len(text) * 4 > MAX_PARSE_BYTES and len(text.encode()) > MAX_PARSE_BYTES)


def _parser_for(language: str) -> tree_sitter.Parser | None:
    return None if language == TEXT else parser(language)


def _parse(language: str, text: str) -> tree_sitter.Tree | None:
    ts_parser = _parser_for(language)
    return None if ts_parser is None or _too_large(text) else ts_parser.parse(text.encode())
