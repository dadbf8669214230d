"""Small helpers over tree-sitter nodes shared by definition and import extraction."""

from __future__ import annotations

import inspect
import re
from typing import Iterator

from tree_sitter import Node

COMMENT_TYPES = frozenset({"comment", "line_comment", "block_comment"})
_SKIPPED_BEFORE_DEFINITION = frozenset({"attribute_item", "decorator"})  # between a doc comment and its item
MAX_SIGNATURE_LINES = 6
MAX_DOC_LINES = 3


def text_of(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", errors="replace")


def last_line(node: Node) -> int:
    """The last row a node really covers (preprocessor lines end at column 0 of the next row)."""
    row, column = node.end_point
    if column == 0 and row > node.start_point[0]:
        return row - 1
    return row


def field(node: Node, name: str) -> Node | None:
    return node.child_by_field_name(name)


def descend(node: Node, types: frozenset[str]) -> Iterator[Node]:
    """Named children, looking through container nodes of the given types (e.g. `#ifdef` blocks)."""
    for child in node.named_children:
        if child.type in types:
            yield from descend(child, types)
        else:
            yield child


def signature(sig_node: Node, body: Node | None) -> str:
    """The header of a definition: its text up to the body, or a short form of it."""
    source = sig_node.text or b""
    if body is not None and sig_node.start_byte <= body.start_byte <= sig_node.end_byte:
        source = source[: body.start_byte - sig_node.start_byte]
    lines = source.decode("utf-8", errors="replace").rstrip().split("\n")
    if body is None and len(lines) > 3:
        brace = next((i for i, line in enumerate(lines[:3]) if "{" in line), None)
        if brace is None:
            return lines[0].rstrip()
        lines = lines[: brace + 1]
        lines[-1] = lines[-1][: lines[-1].index("{")]
    if len(lines) > MAX_SIGNATURE_LINES:
        lines = lines[:MAX_SIGNATURE_LINES]
    return "\n".join(line.rstrip() for line in lines).rstrip()


def first_paragraph(text: str) -> str:
    lines: list[str] = []
    for line in text.strip().split("\n"):
        if not line.strip():
            if lines:
                break
            continue
        lines.append(line.rstrip())
        if len(lines) == MAX_DOC_LINES:
            break
    return "\n".join(lines)


_STRING_PREFIX = re.compile(r"^[rRbBuUfF]*('''|\"\"\"|'|\")")


def python_docstring(definition: Node) -> str:
    """The first paragraph of a Python function's or class's docstring, or ""."""
    body = field(definition, "body")
    if body is None or body.named_child_count == 0:
        return ""
    first = body.named_children[0]
    if first.type != "expression_statement" or first.named_child_count != 1:
        return ""
    string = first.named_children[0]
    if string.type != "string":
        return ""
    raw = text_of(string)
    match = _STRING_PREFIX.match(raw)
    if match is None:
        return ""
    quote = match.group(1)
    inner = raw[match.end() :]
    if inner.endswith(quote):
        inner = inner[: -len(quote)]
    return first_paragraph(inspect.cleandoc(inner))


_COMMENT_MARKS = re.compile(r"^\s*(?:/\*\*?|\*/|\*(?!/)|///?!?|#+)\s?")


def clean_comment(raw: str) -> str:
    lines = []
    for line in raw.split("\n"):
        line = line.rstrip()
        if line.endswith("*/"):
            line = line[:-2]
        lines.append(_COMMENT_MARKS.sub("", line, count=1).rstrip())
    return "\n".join(lines)


def leading_comment(node: Node) -> str:
    """The comment block directly above a node (attributes may stand between)."""
    parts: list[str] = []
    expected = node.start_point[0] - 1
    sibling = node.prev_named_sibling
    while sibling is not None and expected >= 0:
        if sibling.type in _SKIPPED_BEFORE_DEFINITION and last_line(sibling) == expected:
            expected = sibling.start_point[0] - 1
        elif sibling.type in COMMENT_TYPES and last_line(sibling) == expected:
            before = sibling.prev_named_sibling
            if before is not None and last_line(before) == sibling.start_point[0]:
                break  # a trailing comment of the line above, not a doc comment
            parts.append(clean_comment(text_of(sibling)))
            expected = sibling.start_point[0] - 1
        else:
            break
        sibling = sibling.prev_named_sibling
    return first_paragraph("\n".join(reversed(parts)))
