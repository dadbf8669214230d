"""Chunks for lexical retrieval, and the identifier tokens BM25 works on.

A file is cut into runs of about 20 to 40 lines. Cuts fall, in order of
preference, where a top-level definition starts (its leading comment stays
with it), where a member of a large definition starts, and after a blank line.
"""

from __future__ import annotations

import re

from tree_sitter import Node

from .model import Chunk
from .nodes import COMMENT_TYPES, last_line

MIN_LINES = 20
MAX_LINES = 40
_MEMBER_DEPTH = 3

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SUBWORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
STOPWORDS = frozenset(
    """
    and as assert async await auto bool break byte case catch char class const continue def default defer del do
    double elif else end enum except export extends false final finally float fn for from func function go if impl
    implements import in include int interface is let long match mod mut new nil none not null or package pass pub
    private protected public raise ref return self short signed static std str string struct super switch this throw
    true try type typedef unsigned use var void while with yield the to of an it be on at by we define ifdef ifndef
    endif pragma usize u8 u32 u64 i32 i64 f32 f64 isize
    """.split()
)


def identifier_tokens(text: str) -> frozenset[str]:
    """Lower-cased identifiers and their snake_case/camelCase sub-words, without keywords."""
    tokens: set[str] = set()
    for identifier in set(_IDENTIFIER.findall(text)):
        whole = identifier.lower()
        if len(whole) > 1 and whole not in STOPWORDS:
            tokens.add(whole)
        if "_" in identifier or not identifier.islower():
            for word in _SUBWORD.findall(identifier):
                word = word.lower()
                if len(word) > 1 and word not in STOPWORDS:
                    tokens.add(word)
    return frozenset(tokens)


def split_lines(text: str) -> list[str]:
    """Lines as tree-sitter counts them (only "\\n" ends a line)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _start_with_comments(node: Node) -> int:
    """A node's first line, or that of the comment block directly above it."""
    start = node.start_point[0]
    sibling = node.prev_named_sibling
    while sibling is not None and sibling.type in COMMENT_TYPES and last_line(sibling) >= start - 1:
        start = sibling.start_point[0]
        sibling = sibling.prev_named_sibling
    return start


def _member_starts(node: Node, depth: int, out: set[int]) -> None:
    """Starts of the members of a large node (methods of a class, items of a namespace...)."""
    if depth == 0 or last_line(node) - node.start_point[0] < MAX_LINES:
        return
    body = node.child_by_field_name("body") or node.child_by_field_name("definition") or node
    for child in body.named_children:
        if child.type not in COMMENT_TYPES and child.start_point[0] > node.start_point[0]:
            out.add(_start_with_comments(child))
        _member_starts(child, depth - 1, out)


def break_lines(root: Node | None, lines: list[str]) -> tuple[set[int], set[int], set[int]]:
    """Lines where a chunk may start: (top-level, member, after a blank line)."""
    top: set[int] = set()
    members: set[int] = set()
    if root is not None:
        for child in root.named_children:
            if child.type not in COMMENT_TYPES:
                top.add(_start_with_comments(child))
            _member_starts(child, _MEMBER_DEPTH, members)
    blank = {i + 1 for i, line in enumerate(lines) if not line.strip()}
    return top, members, blank


def _next_cut(start: int, total: int, breaks: tuple[set[int], set[int], set[int]]) -> int:
    if total - start <= MAX_LINES:
        return total
    top, members, blank = breaks
    limit = start + MAX_LINES
    candidates = [b for b in top if start < b <= limit]
    for level in (members, blank):
        if candidates:
            break
        candidates = [b for b in level if start + MIN_LINES <= b <= limit]
    return max(candidates) if candidates else limit


def chunk_text(path: str, text: str, root: Node | None) -> tuple[Chunk, ...]:
    """Cut a file into chunks that tile it, each with its token set."""
    lines = split_lines(text)
    breaks = break_lines(root, lines)
    chunks: list[Chunk] = []
    start = 0
    while start < len(lines):
        end = _next_cut(start, len(lines), breaks)
        body = "\n".join(lines[start:end])
        chunks.append(Chunk(path, start, end - 1, body, identifier_tokens(body)))
        start = end
    return tuple(chunks)
