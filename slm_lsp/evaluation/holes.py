"""Holes at syntax boundaries in real files, sampled deterministically. Pure.

Four kinds, found with tree-sitter:
  line            a statement alone on its line: the whole line's code
  rest-of-line    such a line from the start of a syntax node after its indentation
  block           the body of a compound statement (if, for, while, ...), 2-8 lines
  function-body   the body of a function or method, 2-10 lines (a Python docstring stays)
The document keeps the cursor line's indentation (whole-line holes) or its head
(rest-of-line) and drops the removed lines, as a user writing the code would have it.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Iterable, Sequence

from tree_sitter import Node

from slm_lsp.languages import parser

KINDS = ("line", "rest-of-line", "block", "function-body")
SINGLE_LINE_KINDS = frozenset({"line", "rest-of-line"})
BLOCK_LINES = (2, 8)
FUNCTION_LINES = (2, 10)
MIN_EXPECTED = 3  # characters of code a hole must hold at least
_BODIES = frozenset(
    "module block program source_file statement_block compound_statement translation_unit statement_list"
    " class_body declaration_list constructor_body switch_body".split()
)
_FUNCTIONS = frozenset(
    "function_definition function_declaration method_definition method_declaration function_item"
    " constructor_declaration arrow_function function_expression function generator_function_declaration"
    " func_literal".split()
)
_BLOCKS = frozenset("block statement_block compound_statement constructor_body".split())


@dataclass(frozen=True)
class Hole:
    path: str  # workspace-relative posix path
    language: str
    kind: str  # one of KINDS
    line: int  # the cursor in `document`, 0-based, code points
    character: int
    offset: int  # the cursor as an offset into `document`
    document: str  # the file with the hole's text removed
    expected: str  # the removed text (no trailing newline, lines right-stripped)


def find_holes(path: str, language: str, text: str, seed: int = 0) -> dict[str, list[Hole]]:
    """Every candidate hole of each kind in one file (rest-of-line: one start per line, seeded)."""
    found: dict[str, list[Hole]] = {kind: [] for kind in KINDS}
    ts_parser = parser(language)
    if ts_parser is None:
        return found
    text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    raw = [line.encode() for line in lines]
    root = ts_parser.parse(text.encode()).root_node
    seen_rows: set[int] = set()
    for node in _walk(root):
        parent = node.parent
        row = node.start_point.row
        if parent is not None and parent.type in _BODIES and row not in seen_rows and _alone_on_line(node, raw):
            seen_rows.add(row)
            if _is_code(lines[row].strip()) and "comment" not in node.type:
                found["line"].append(_whole_lines(path, language, lines, row, row))
                rest = _rest_of_line(path, language, lines, raw, node, seed)
                if rest is not None:
                    found["rest-of-line"].append(rest)
        if node.type in _BLOCKS and parent is not None:
            hole = _body_hole(path, language, lines, raw, node, parent)
            if hole is not None:
                found[hole.kind].append(hole)
    return found


def sample_holes(candidates: dict[str, list[Hole]], limit: int, seed: int) -> list[Hole]:
    """`limit` holes, as evenly spread over the kinds as the candidates allow, in file order."""
    rng = random.Random(seed)
    pools = {kind: sorted(candidates.get(kind, []), key=_order) for kind in KINDS}
    quotas = {kind: 0 for kind in KINDS}
    remaining = max(0, limit)
    while remaining > 0:
        open_kinds = [k for k in KINDS if quotas[k] < len(pools[k])]
        if not open_kinds:
            break
        for kind in open_kinds[:remaining]:
            quotas[kind] += 1
            remaining -= 1
    chosen = [hole for kind in KINDS for hole in rng.sample(pools[kind], quotas[kind])]
    return sorted(chosen, key=_order)


def collect(files: Iterable[tuple[str, str, str]], seed: int) -> dict[str, list[Hole]]:
    """All candidates of (path, language, text) files, by kind."""
    pools: dict[str, list[Hole]] = {kind: [] for kind in KINDS}
    for path, language, text in files:
        for kind, holes in find_holes(path, language, text, seed).items():
            pools[kind].extend(holes)
    return pools


def fill(hole: Hole, completion: str) -> str:
    """The holed document with `completion` inserted at the cursor."""
    return hole.document[: hole.offset] + completion + hole.document[hole.offset :]


def _order(hole: Hole) -> tuple:
    return (hole.path, hole.line, hole.character, hole.kind)


def _walk(root: Node) -> Iterable[Node]:
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.named_children))


def _alone_on_line(node: Node, raw: Sequence[bytes]) -> bool:
    row, col = node.start_point
    if node.end_point.row != row:
        return False
    line = raw[row]
    return not line[:col].strip() and not line[node.end_point.column :].strip()


def _is_code(text: str) -> bool:
    return len(text) >= MIN_EXPECTED and any(ch.isalnum() for ch in text)


def _char_col(raw: bytes, byte_col: int) -> int:
    return len(raw[:byte_col].decode("utf-8", errors="ignore"))


def _whole_lines(path: str, language: str, lines: list[str], first: int, last: int, kind: str = "line") -> Hole:
    """Lines first..last removed; one line left holding the first line's indentation, the cursor after it."""
    indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
    head = "".join(line + "\n" for line in lines[:first])
    tail = "\n".join(lines[last + 1 :])
    document = head + indent + ("\n" + tail if last + 1 < len(lines) else "")
    body = [lines[first][len(indent) :]] + lines[first + 1 : last + 1]
    expected = "\n".join(line.rstrip() for line in body).rstrip("\n")
    return Hole(path, language, kind, first, len(indent), len(head) + len(indent), document, expected)


def _rest_of_line(
    path: str, language: str, lines: list[str], raw: list[bytes], statement: Node, seed: int
) -> Hole | None:
    """From a node starting inside the statement's line (not at its indentation) to the line's end."""
    row = statement.start_point.row
    starts = sorted(
        {
            node.start_point.column
            for node in _walk(statement)
            if node.start_point.row == row and node.start_point.column > statement.start_point.column
            and not _in_literal(node, statement)
        }
    )  # fmt: skip
    starts = [c for c in starts if _is_code(raw[row][c:].decode("utf-8", errors="ignore").strip())]
    if not starts:
        return None
    digest = hashlib.sha256(f"{seed}:{path}:{row}".encode()).digest()
    col = _char_col(raw[row], starts[digest[0] % len(starts)])
    head = "".join(line + "\n" for line in lines[:row])
    tail = "\n".join(lines[row + 1 :])
    document = head + lines[row][:col] + ("\n" + tail if row + 1 < len(lines) else "")
    expected = lines[row][col:].rstrip()
    return Hole(path, language, "rest-of-line", row, col, len(head) + col, document, expected)


def _in_literal(node: Node, stop: Node) -> bool:
    """Inside (or at the inner parts of) a string or comment below `stop`?"""
    current: Node | None = node.parent
    while current is not None and current != stop:
        if "string" in current.type or "comment" in current.type:
            return True
        current = current.parent
    return "comment" in node.type or (node.type != "string" and "string" in node.type)


def _body_hole(
    path: str, language: str, lines: list[str], raw: list[bytes], block: Node, owner: Node
) -> Hole | None:
    """The statements of a block as whole lines, if they stand on lines of their own."""
    if "class" in owner.type:
        return None
    children = list(block.named_children)
    if len(children) == 1 and children[0].type == "statement_list":
        children = list(children[0].named_children)
    function = owner.type in _FUNCTIONS
    if function and language == "python" and len(children) > 1 and _is_docstring(children[0]):
        children = children[1:]
    if not children:
        return None
    first, last = children[0], children[-1]
    r0, r1 = first.start_point.row, last.end_point.row
    if raw[r0][: first.start_point.column].strip() or raw[r1][last.end_point.column :].strip():
        return None
    low, high = FUNCTION_LINES if function else BLOCK_LINES
    if not low <= r1 - r0 + 1 <= high:
        return None
    hole = _whole_lines(path, language, lines, r0, r1, "function-body" if function else "block")
    return hole if _is_code(hole.expected) else None


def _is_docstring(node: Node) -> bool:
    only = node.named_children[0] if node.named_child_count == 1 else None
    return node.type == "expression_statement" and only is not None and only.type == "string"
