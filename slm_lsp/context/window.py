"""What the model sees around the cursor, and how much it may write.

`build_context` cuts a syntax-aligned window of lines around the cursor and
decides, llm-ls style, whether to complete nothing, one line or a block.
The window start moves in steps of `window_step` lines, so the prompt head
(and the model's KV cache) stays put while the user types. A caller that
keeps the document's tree current (documents.py) passes it in; without one the
text is parsed here. Everything here is pure; nothing here knows about LSP or
the model.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import tree_sitter
from tree_sitter import Node

from slm_lsp.context.boundaries import is_opener, literal_at, snap_end, snap_start
from slm_lsp.context.lines import (
    Cursor, Line, indent_unit, leading, lines_above, lines_below, locate, prefix_text, suffix_text,
)
from slm_lsp.languages import LANGUAGES, TEXT
from slm_lsp.syntax import _parse, _too_large

_CLOSING = frozenset(")]}\"'`;,")
_MID_EXPRESSION = frozenset("([{,=+-*/%<>&|!^~.:?@\\")


class Mode(enum.Enum):
    NONE = "none"
    LINE = "line"
    BLOCK = "block"


@dataclass(frozen=True)
class Context:
    """The text around the cursor, laid out for a FIM prompt, and what to complete."""

    language: str  # canonical name from languages.py or "text"
    prefix: str  # window start up to the start of the cursor line ("" or ends with "\n")
    line_prefix: str  # cursor line before the cursor
    line_suffix: str  # cursor line after the cursor (no "\n")
    suffix: str  # text after the cursor line, windowed; "" at EOF
    mode: Mode
    indent: str  # indentation for the completion's following lines
    prefix_start_line: int  # 0-based first line of the prefix window
    row: int  # 0-based cursor line: prefix_start_line + the prefix's line count
    reason: str  # why this mode: "after-block-opener", "in-string", ...
    indent_unit: str = "    "  # one indentation level in this file


@dataclass(frozen=True)
class _Window:
    above: list[Line]  # lines before the cursor line, in order
    below: list[Line]  # lines after it, in order
    unit: str  # inferred indentation unit
    base: int  # the window start before snapping: a multiple of the step


def build_context(
    text: str,
    line: int,
    character: int,
    language: str,
    *,
    prefix_lines: int = 48,
    suffix_lines: int = 16,
    window_step: int = 16,
    explicit: bool = False,
    tree: tree_sitter.Tree | None = None,
) -> Context:
    """The context around (line, character), both 0-based code points, clamped."""
    cur = locate(text, line, character)
    large = _too_large(text)
    tree = None if large else (tree or _parse(language, text))
    root = tree.root_node if tree is not None else None
    window = _window(text, cur, language, max(0, prefix_lines), max(0, suffix_lines), max(1, window_step))
    start_row = snap_start(root, window.above, window.base) if root is not None else window.base
    end_row = snap_end(root, window.below) if root is not None else cur.row + len(window.below)
    prefix, start_row = prefix_text(text, window.above, start_row, cur)
    mode, reason, indent = _decide(text, root, language, cur, window, explicit, large)
    return Context(
        language=language if language in LANGUAGES else TEXT,
        prefix=prefix,
        line_prefix=cur.before,
        line_suffix=cur.after,
        suffix=suffix_text(text, window.below, end_row),
        mode=mode,
        indent=indent,
        prefix_start_line=start_row,
        row=cur.row,
        reason=reason,
        indent_unit=window.unit,
    )


def _window(text: str, cur: Cursor, language: str, prefix_lines: int, suffix_lines: int, step: int) -> _Window:
    """The candidate lines around the cursor; the window start moves in steps."""
    base = max(0, cur.row - prefix_lines) // step * step
    above = lines_above(text, cur, cur.row - max(0, base - step))
    below = lines_below(text, cur, suffix_lines)
    lines = [ln.text for ln in above] + [cur.before + cur.after] + [ln.text for ln in below]
    return _Window(above, below, indent_unit(lines, language), base)


def _decide(
    text: str, root: Node | None, language: str, cur: Cursor, window: _Window, explicit: bool, large: bool
) -> tuple[Mode, str, str]:
    """(mode, reason, indent) from the syntax at the cursor and the text after it."""
    lp, after, line_indent = cur.before, cur.after.strip(), leading(cur.before + cur.after)
    if not text or text.isspace():
        return (Mode.BLOCK if explicit else Mode.NONE), "empty-document", ""
    if large:
        return Mode.LINE, "too-large", line_indent
    head = text[cur.start : cur.offset]  # uncapped: tree columns count every byte
    literal = literal_at(root, (cur.row, len(head.encode())), lp, language) if root is not None else None
    if literal:
        return (Mode.LINE, "explicit", line_indent) if explicit else (Mode.NONE, literal, line_indent)
    if any(ch not in _CLOSING and not ch.isspace() for ch in after):
        return Mode.LINE, "text-after-cursor", line_indent
    if not lp.strip() and not after:
        prev = next((ln for ln in reversed(window.above) if ln.text.strip()), None)
        if prev is not None and is_opener(root, language, prev.row, prev.text):
            opened = leading(prev.text) + window.unit
            return Mode.BLOCK, "after-block-opener", lp if len(lp) > len(opened) else opened
        indent = lp or _blank_line_indent(window)
        nxt = next((ln.text for ln in window.below if ln.text.strip()), None)
        if nxt is not None and len(leading(nxt).expandtabs(4)) >= len(indent.expandtabs(4)):
            return Mode.LINE, "between-statements", indent  # inserting into code that goes on: one line
        return Mode.BLOCK, "empty-line", indent
    if not after and is_opener(root, language, cur.row, head):
        return Mode.BLOCK, "after-block-opener", line_indent + window.unit
    code = lp.rstrip()
    mid = code[-1:] in _MID_EXPRESSION and not code.endswith("*/")
    return Mode.LINE, ("mid-expression" if mid else "end-of-line"), line_indent


def _blank_line_indent(window: _Window) -> str:
    """Indentation for a new statement typed at column 0 of a blank line."""
    nxt = next((ln.text for ln in window.below if ln.text.strip()), None)
    if nxt is not None:
        return leading(nxt) + (window.unit if nxt.lstrip()[0] in ")]}" else "")
    prev = next((ln.text for ln in reversed(window.above) if ln.text.strip()), "")
    return leading(prev)
