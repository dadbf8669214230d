"""A file's header: its top-level import statements.

When the prompt's window has scrolled past the top of the file, the model no
longer sees what the file imports, so it guesses names and modules. The header
gives it back those lines (only those: no docstrings, no code) in file order.
"""

from __future__ import annotations

from functools import lru_cache

from tree_sitter import Node

from .symbols import parse
from .nodes import last_line, text_of

HEAD_LINES = 200  # imports are looked for in the file's first lines only

_IMPORTS = {
    "python": frozenset({"import_statement", "import_from_statement", "future_import_statement"}),
    "javascript": frozenset({"import_statement"}),
    "typescript": frozenset({"import_statement"}),
    "tsx": frozenset({"import_statement"}),
    "go": frozenset({"package_clause", "import_declaration"}),
    "rust": frozenset({"use_declaration", "extern_crate_declaration", "mod_item"}),
    "java": frozenset({"package_declaration", "import_declaration"}),
    "c": frozenset({"preproc_include"}),
    "cpp": frozenset({"preproc_include", "using_declaration"}),
}
# containers looked through: `if TYPE_CHECKING:`, `try: import x except ImportError: ...`
_PY_CONTAINERS = frozenset({"if_statement", "try_statement", "block", "else_clause", "except_clause"})


def head_of(text: str) -> str:
    """The part of a document the header comes from."""
    return "\n".join(text.split("\n", HEAD_LINES)[:HEAD_LINES])


def import_statements(language: str, head: str, root: Node | None = None) -> tuple[tuple[int, str], ...]:
    """(last row, text) of each top-level import statement in `head`, in order; a statement
    written over several lines becomes one line where the language allows it (Python).
    `root`: the whole document's current tree, read instead of parsing `head`."""
    return tuple((last, text) for _, last, text in spans_of(language, head, root))


def spans_of(language: str, text: str, root: Node | None = None) -> tuple[tuple[int, int, str], ...]:
    """`import_spans` of a document: read from its tree `root` when there is one, else from
    its head, parsed here."""
    return spans_in(language, root) if root is not None else import_spans(language, head_of(text))


@lru_cache(maxsize=32)
def import_spans(language: str, head: str) -> tuple[tuple[int, int, str], ...]:
    """(first row, last row, one-line text) of each top-level import statement in `head`, in order."""
    return spans_in(language, parse(language, head) if language in _IMPORTS else None)


def spans_in(language: str, root: Node | None, max_row: int = HEAD_LINES) -> tuple[tuple[int, int, str], ...]:
    """`import_spans` of a parsed tree, the statements starting in its first `max_row` rows."""
    types = _IMPORTS.get(language)
    if root is None or types is None:
        return ()
    found: list[tuple[int, int, str]] = []

    def visit(node, depth: int) -> None:
        for child in node.named_children:
            if child.start_point[0] >= max_row:
                break
            if child.type in types and not child.has_error:
                found.append((child.start_point[0], last_line(child), _one_line(language, text_of(child))))
            elif language == "python" and depth < 3 and child.type in _PY_CONTAINERS:
                visit(child, depth + 1)

    visit(root, 0)
    return tuple(found)


def file_header(language: str, text: str, before_row: int, root: Node | None = None) -> str:
    """The import statements of `text` that end above `before_row`, one per line, in file order ("" if none).
    `root`: the document's current tree, when the caller has it."""
    statements = [s for row, s in import_statements(language, head_of(text), root) if row < before_row]
    return "".join(s + "\n" for s in statements)


def _one_line(language: str, statement: str) -> str:
    if language != "python" or "\n" not in statement:
        return statement
    flat = " ".join(part.strip() for part in statement.split("\n") if part.strip() and not part.strip().startswith("#"))
    return flat.replace("( ", "(").replace(", )", ")").replace(",)", ")").replace(" \\ ", " ")
