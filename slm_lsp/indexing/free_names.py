"""The free names of a file: those its code uses the way imported names are used, and that it
does not bind anywhere. What ``autoimport`` looks up in the workspace as missing imports.

Python by its syntax tree (assignments, parameters, loop and `with`/`except` targets,
`global`, local imports all bind); other languages by a rough lexer over the text with
strings and comments masked. Pure.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections import Counter

from tree_sitter import Node

from ..syntax import mask_literals
from .symbols import parse

_NAME = re.compile(r"(?<![.\w])[A-Za-z_]\w*")
_USED = re.compile(r"\s*[(.]")  # a lower-case name counts when called or used as `name.`
_USED_BYTES = re.compile(rb"[ \t]*[(.]")
_NOT_IMPORTED = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"self", "cls", "this"}


def free_names(document: str, from_row: int, language: str, root: Node | None = None) -> list[str]:
    """Free names the code from `from_row` on uses as imported names are used, most used first:
    capitalised, called, `name.` or a decorator; names the file binds anywhere (parameters,
    assignments, loop targets, local imports) are not free. Python by its syntax tree; other
    languages by a rough lexer. `root`: the document's syntax tree when the caller has it."""
    if language == "python" and (root := root or parse(language, document)) is not None:
        counts, bound = _python_names(root, from_row)
    else:
        body, _ = mask_literals("\n".join(document.split("\n")[from_row:]), language)
        counts = Counter(m.group() for m in _NAME.finditer(body) if _import_like(body, m.start(), m.end()))
        bound = set()
    return [n for n, _ in counts.most_common() if n not in _NOT_IMPORTED and n not in bound and len(n) > 1]


def _import_like(text: str, start: int, end: int) -> bool:
    return text[start].isupper() or bool(_USED.match(text, end)) or text[start - 1 : start] == "@"


_TARGETS = {  # node type -> the field whose identifiers it binds
    "assignment": "left", "augmented_assignment": "left", "for_statement": "left", "for_in_clause": "left",
    "named_expression": "name", "default_parameter": "name", "typed_default_parameter": "name",
    "function_definition": "name", "class_definition": "name", "aliased_import": "alias",
}  # fmt: skip
_PATTERNS = frozenset({"pattern_list", "tuple_pattern", "list_pattern", "list_splat_pattern",
                       "dictionary_splat_pattern", "tuple", "list", "parenthesized_expression"})  # fmt: skip


def _python_names(root, from_row: int) -> tuple[Counter[str], set[str]]:
    """(free names used from `from_row` on that look imported, with counts; names bound anywhere)."""
    bound: set[str] = set()
    counts: Counter[str] = Counter()
    source = root.text or b""
    stack = [root]
    while stack:
        node = stack.pop()
        kind = node.type
        if kind in _TARGETS and (target := node.child_by_field_name(_TARGETS[kind])) is not None:
            bound.update(_pattern_names(target))
        elif kind in ("parameters", "lambda_parameters"):
            for child in node.named_children:
                first = child if child.type == "identifier" else next(
                    (c for c in child.named_children if c.type == "identifier"), None)  # fmt: skip
                if first is not None and first.text:
                    bound.add(first.text.decode())
        elif kind == "as_pattern_target" or kind in ("global_statement", "nonlocal_statement"):
            bound.update(_pattern_names(node))
        elif kind in ("import_statement", "import_from_statement"):
            for name in node.children_by_field_name("name"):
                if name.type == "dotted_name" and name.named_children and name.named_children[0].text:
                    bound.add(name.named_children[0].text.decode() if kind == "import_statement"
                              else name.named_children[-1].text.decode())  # fmt: skip
        elif kind == "identifier" and node.start_point[0] >= from_row and _free(node):
            start, end = node.start_byte, node.end_byte
            if source[start:end][:1].isupper() or _USED_BYTES.match(source, end) or source[start - 1 : start] == b"@":
                counts[source[start:end].decode()] += 1
        stack.extend(reversed(node.children))
    return counts, bound


def _free(node) -> bool:
    """Not `x.NAME`, not `f(NAME=...)`."""
    parent = node.parent
    if parent is None:
        return True
    if parent.type == "attribute" and parent.child_by_field_name("attribute") == node:
        return False
    return not (parent.type == "keyword_argument" and parent.child_by_field_name("name") == node)


def _pattern_names(node) -> set[str]:
    if node.type == "identifier":
        return {node.text.decode()} if node.text else set()
    if node.type in _PATTERNS or node.type == "as_pattern_target" or node.type.endswith("_statement"):
        return {n for child in node.named_children for n in _pattern_names(child)}
    return set()
