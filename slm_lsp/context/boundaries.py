"""Where statements start and end around the cursor, and whether it sits in a string or a
comment: from the syntax tree, or from the text when the tree cannot tell (an ERROR node)."""

from __future__ import annotations

import re

from tree_sitter import Node

from slm_lsp.context.lines import Line
from slm_lsp.syntax import mask_literals

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


def is_opener(root: Node | None, language: str, row: int, line: str) -> bool:
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
    return root is None or literal_at(root, (row, len(code.encode()) - 1), code[:-1], language) is None


def literal_at(root: Node, point: tuple[int, int], line_prefix: str, language: str) -> str | None:
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


def snap_start(root: Node, above: list[Line], base: int) -> int:
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


def snap_end(root: Node, below: list[Line]) -> int:
    """The last suffix line on which a statement ends (the window never grows)."""
    for i in range(len(below) - 1, -1, -1):
        verdict = _tree_boundary(root, below[i], False, at_end=True)
        nxt = below[i + 1].text if i + 1 < len(below) else ""
        if verdict or verdict is None and _plain_end(below[i].text, nxt):
            return below[i].row
    return below[-1].row if below else 0


def _tree_boundary(root: Node, ln: Line, top_only: bool, *, at_end: bool) -> bool | None:
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
