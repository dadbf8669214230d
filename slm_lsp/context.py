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
import re
from collections import Counter
from dataclasses import dataclass

import tree_sitter
from tree_sitter import Node

from slm_lsp.languages import LANGUAGES, TEXT
from slm_lsp.syntax import MAX_PARSE_BYTES, _parse, _too_large, mask_literals, parse_errors

__all__ = ["Context", "Mode", "build_context", "mask_literals"]
__all__ += ["parse_errors", "MAX_PARSE_BYTES"]  # re-exported from slm_lsp.syntax

LINE_CAP = 4096  # characters of the cursor line kept on each side of the cursor
WINDOW_CAP = 32_768  # characters of prefix / suffix kept at most
_CHUNK = 8192
_CLOSING = frozenset(")]}\"'`;,")
_MID_EXPRESSION = frozenset("([{,=+-*/%<>&|!^~.:?@\\")
_CONTINUES = "([,\\=+-*/%&|^<>.?"  # a line ending with one of these goes on on the next
_LEADS = ".,)]}=|&?+:"  # a line starting with one of these continues the previous one
_STRINGS = frozenset(
    "string string_content string_fragment template_string string_literal raw_string_literal"
    " interpreted_string_literal char_literal character_literal rune_literal text_block system_lib_string".split()
)
_COMMENTS = frozenset({"comment", "line_comment", "block_comment"})
_CODE_IN_STRING = frozenset({"interpolation", "template_substitution"})
_CONTAINERS = frozenset(
    "class_body declaration_list field_declaration_list interface_body enum_body object_type".split()
)
_BLOCKS = frozenset("block statement_block compound_statement statement_list constructor_body switch_body".split())
_PY_OPENER = re.compile(r"\s*(async\s+)?(def|class|if|elif|else|for|while|with|try|except|finally|match|case)\b")


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
class _Cursor:
    row: int
    start: int  # offset of the cursor line's first character
    offset: int  # offset of the cursor
    end: int  # offset where the line's content ends (before "\r\n")
    before: str  # the line before the cursor, at most LINE_CAP characters
    after: str  # the line after the cursor, at most LINE_CAP characters


@dataclass(frozen=True)
class _Line:
    row: int
    start: int
    text: str  # content without the line ending


@dataclass(frozen=True)
class _Window:
    above: list[_Line]  # lines before the cursor line, in order
    below: list[_Line]  # lines after it, in order
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
    cur = _locate(text, line, character)
    large = _too_large(text)
    tree = None if large else (tree or _parse(language, text))
    root = tree.root_node if tree is not None else None
    window = _window(text, cur, language, max(0, prefix_lines), max(0, suffix_lines), max(1, window_step))
    start_row = _snap_start(root, window.above, window.base) if root is not None else window.base
    end_row = _snap_end(root, window.below) if root is not None else cur.row + len(window.below)
    prefix, start_row = _prefix_text(text, window.above, start_row, cur)
    mode, reason, indent = _decide(text, root, language, cur, window, explicit, large)
    return Context(
        language=language if language in LANGUAGES else TEXT,
        prefix=prefix,
        line_prefix=cur.before,
        line_suffix=cur.after,
        suffix=_suffix_text(text, window.below, end_row),
        mode=mode,
        indent=indent,
        prefix_start_line=start_row,
        row=cur.row,
        reason=reason,
        indent_unit=window.unit,
    )


def _window(text: str, cur: _Cursor, language: str, prefix_lines: int, suffix_lines: int, step: int) -> _Window:
    """The candidate lines around the cursor; the window start moves in steps."""
    base = max(0, cur.row - prefix_lines) // step * step
    above = _lines_above(text, cur, cur.row - max(0, base - step))
    below = _lines_below(text, cur, suffix_lines)
    lines = [ln.text for ln in above] + [cur.before + cur.after] + [ln.text for ln in below]
    return _Window(above, below, _indent_unit(lines, language), base)


def _decide(
    text: str, root: Node | None, language: str, cur: _Cursor, window: _Window, explicit: bool, large: bool
) -> tuple[Mode, str, str]:
    """(mode, reason, indent) from the syntax at the cursor and the text after it."""
    lp, after, line_indent = cur.before, cur.after.strip(), _leading(cur.before + cur.after)
    if not text or text.isspace():
        return (Mode.BLOCK if explicit else Mode.NONE), "empty-document", ""
    if large:
        return Mode.LINE, "too-large", line_indent
    head = text[cur.start : cur.offset]  # uncapped: tree columns count every byte
    literal = _literal_at(root, (cur.row, len(head.encode())), lp, language) if root is not None else None
    if literal:
        return (Mode.LINE, "explicit", line_indent) if explicit else (Mode.NONE, literal, line_indent)
    if any(ch not in _CLOSING and not ch.isspace() for ch in after):
        return Mode.LINE, "text-after-cursor", line_indent
    if not lp.strip() and not after:
        prev = next((ln for ln in reversed(window.above) if ln.text.strip()), None)
        if prev is not None and _is_opener(root, language, prev.row, prev.text):
            opened = _leading(prev.text) + window.unit
            return Mode.BLOCK, "after-block-opener", lp if len(lp) > len(opened) else opened
        indent = lp or _blank_line_indent(window)
        nxt = next((ln.text for ln in window.below if ln.text.strip()), None)
        if nxt is not None and len(_leading(nxt).expandtabs(4)) >= len(indent.expandtabs(4)):
            return Mode.LINE, "between-statements", indent  # inserting into code that goes on: one line
        return Mode.BLOCK, "empty-line", indent
    if not after and _is_opener(root, language, cur.row, head):
        return Mode.BLOCK, "after-block-opener", line_indent + window.unit
    code = lp.rstrip()
    mid = code[-1:] in _MID_EXPRESSION and not code.endswith("*/")
    return Mode.LINE, ("mid-expression" if mid else "end-of-line"), line_indent


def _is_opener(root: Node | None, language: str, row: int, line: str) -> bool:
    """Does `line` (up to the cursor) end by opening a block?"""
    code = line.rstrip()
    if language == "python":
        if not code.endswith(":"):
            return False
        colon = (row, len(code.encode()) - 1)
        node = root.descendant_for_point_range(colon, colon) if root is not None else None
        if node is not None and node.type == ":" and not _in_error(node):
            return node.parent.type.endswith(("_statement", "_clause", "_definition"))
        return _PY_OPENER.match(code) is not None  # the tree is broken here: go by the keyword
    if not code.endswith("{"):
        return False
    return root is None or _literal_at(root, (row, len(code.encode()) - 1), code[:-1], language) is None


def _blank_line_indent(window: _Window) -> str:
    """Indentation for a new statement typed at column 0 of a blank line."""
    nxt = next((ln.text for ln in window.below if ln.text.strip()), None)
    if nxt is not None:
        return _leading(nxt) + (window.unit if nxt.lstrip()[0] in ")]}" else "")
    prev = next((ln.text for ln in reversed(window.above) if ln.text.strip()), "")
    return _leading(prev)


def _literal_at(root: Node, point: tuple[int, int], line_prefix: str, language: str) -> str | None:
    """"in-string" / "in-comment" when `point` lies inside one, else None."""
    probes = [point] + ([(point[0], point[1] - 1)] if point[1] > 0 else [])
    for probe in probes:
        node = root.descendant_for_point_range(probe, probe)
        while node is not None and node.type not in _CODE_IN_STRING:
            start, end = tuple(node.start_point), tuple(node.end_point)
            if node.type in _STRINGS and start < point < end:
                return "in-string"
            if node.type in _COMMENTS and start < point <= end:
                if point < end or not line_prefix.rstrip().endswith("*/"):
                    return "in-comment"
            node = node.parent
    if root.has_error and mask_literals(line_prefix, language)[1] is not None:
        return "in-string"  # an unterminated string the grammar could not place
    return None


def _snap_start(root: Node, above: list[_Line], base: int) -> int:
    """The latest statement start in [base - step, base]; top-level ones first."""
    previous = [""] + [ln.text for ln in above]
    for i in range(1, len(previous)):  # the previous non-blank line of each line
        previous[i] = previous[i] if previous[i].strip() else previous[i - 1]
    candidates = [(ln, previous[i]) for i, ln in enumerate(above) if ln.row <= base][::-1]
    for top_only in (True, False):
        for ln, prev in candidates:
            verdict = _tree_boundary(root, ln, top_only, at_end=False)
            if verdict or verdict is None and _plain_start(ln.text, prev, top_only):
                return ln.row
    return base


def _snap_end(root: Node, below: list[_Line]) -> int:
    """The last suffix line on which a statement ends (the window never grows)."""
    for i in range(len(below) - 1, -1, -1):
        verdict = _tree_boundary(root, below[i], False, at_end=True)
        nxt = below[i + 1].text if i + 1 < len(below) else ""
        if verdict or verdict is None and _plain_end(below[i].text, nxt):
            return below[i].row
    return below[-1].row if below else 0


def _tree_boundary(root: Node, ln: _Line, top_only: bool, *, at_end: bool) -> bool | None:
    """Does a statement (top-level-ish when `top_only`) start / end on this line?

    None when the tree cannot tell: the line lies in an ERROR node, as a whole
    file does in some grammars while the user types an unclosed bracket.
    """
    code = ln.text.rstrip() if at_end else ln.text.lstrip()
    if not code:
        return False
    if at_end:
        point = (ln.row, len(code.encode()))
        node = root.descendant_for_point_range((ln.row, point[1] - 1), (ln.row, point[1] - 1))
        same = lambda a, b: a.end_point == b.end_point  # noqa: E731
    else:
        point = (ln.row, len(ln.text[: len(ln.text) - len(code)].encode()))
        node = root.descendant_for_point_range(point, point)
        same = lambda a, b: a.start_point == b.start_point  # noqa: E731
    if node is None or _in_error(node):
        return None
    if tuple(node.end_point if at_end else node.start_point) != point:
        return False
    while node.parent is not None and node.parent.parent is not None and same(node.parent, node):
        node = node.parent
    parent = node.parent
    if parent is None or parent.parent is None or parent.type in _CONTAINERS:
        return parent is not None
    if parent.type == "block" and parent.parent.type == "class_definition":
        return True
    return not top_only and parent.type in _BLOCKS


def _in_error(node: Node | None) -> bool:
    while node is not None:
        if node.is_error:
            return True
        node = node.parent
    return False


def _plain_start(line: str, previous: str, top_only: bool) -> bool:
    """Without a usable tree: does a statement seem to start on this line?"""
    code = line.lstrip()
    if not code or code[0] in _LEADS or (top_only and code != line):
        return False
    return not previous.strip() or previous.rstrip()[-1] not in _CONTINUES


def _plain_end(line: str, following: str) -> bool:
    """Without a usable tree: does a statement seem to end on this line?"""
    code, following = line.rstrip(), following.lstrip()
    continued = following[:1] in tuple(_LEADS.replace("}", ""))
    return bool(code) and code[-1] not in _CONTINUES + "{:" and not continued


def _locate(text: str, line: int, character: int) -> _Cursor:
    """Find the cursor line without splitting the document; clamp the position."""
    row, start, past_end = _line_start(text, max(0, line))
    newline = text.find("\n", start)
    end = len(text) if newline < 0 else newline
    if end > start and text[end - 1] == "\r":
        end -= 1
    offset = start + (end - start if past_end else min(max(0, character), end - start))
    before = text[max(start, offset - LINE_CAP) : offset]
    return _Cursor(row, start, offset, end, before, text[offset : min(end, offset + LINE_CAP)])


def _line_start(text: str, row: int) -> tuple[int, int, bool]:
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


def _lines_above(text: str, cur: _Cursor, count: int) -> list[_Line]:
    lines: list[_Line] = []
    end = cur.start
    while len(lines) < count and end > 0:
        start = text.rfind("\n", 0, end - 1) + 1
        lines.append(_Line(cur.row - 1 - len(lines), start, text[start : end - 1].removesuffix("\r")))
        end = start
    return lines[::-1]


def _lines_below(text: str, cur: _Cursor, count: int) -> list[_Line]:
    lines: list[_Line] = []
    newline = text.find("\n", cur.end)
    while len(lines) < count and newline >= 0:
        start = newline + 1
        newline = text.find("\n", start)
        content = text[start : len(text) if newline < 0 else newline]
        lines.append(_Line(cur.row + 1 + len(lines), start, content.removesuffix("\r")))
    return lines


def _prefix_text(text: str, above: list[_Line], start_row: int, cur: _Cursor) -> tuple[str, int]:
    first = next((ln.start for ln in above if ln.row == start_row), cur.start)
    prefix = text[first : cur.start].replace("\r\n", "\n")
    if len(prefix) > WINDOW_CAP:  # a few enormous lines: keep the tail, from a line start if possible
        tail_start = len(prefix) - WINDOW_CAP
        newline = prefix.find("\n", tail_start, len(prefix) - 1)
        cut = newline + 1 if newline >= 0 else tail_start
        start_row += prefix.count("\n", 0, cut)
        prefix = prefix[cut:]
    return prefix, start_row


def _suffix_text(text: str, below: list[_Line], end_row: int) -> str:
    kept = [ln for ln in below if ln.row <= end_row]
    if not kept:
        return ""
    last = text.find("\n", kept[-1].start)
    suffix = text[kept[0].start : len(text) if last < 0 else last + 1].replace("\r\n", "\n")
    if len(suffix) > WINDOW_CAP:
        newline = suffix.rfind("\n", 0, WINDOW_CAP)
        suffix = suffix[: newline + 1 if newline > 0 else WINDOW_CAP]
    return suffix


def _leading(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _indent_unit(lines: list[str], language: str) -> str:
    """One indentation level: tabs if the file uses them, else the commonest step."""
    tabs = spaced = 0
    steps: Counter[int] = Counter()
    previous = 0
    for line in lines:
        if not line.strip():
            continue
        indent = _leading(line)
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
