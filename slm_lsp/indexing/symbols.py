"""One file's analysis: parse once, then definitions, imports and chunks."""

from __future__ import annotations

from tree_sitter import Node

from .. import languages
from .chunks import chunk_text
from .definitions import extract_definitions
from .imports import extract_imports
from .model import Chunk, FileSymbols
from .rules import GO, JAVA, JAVASCRIPT, PYTHON, RUST
from .rules_c import C

RULES = {
    "python": PYTHON,
    "javascript": JAVASCRIPT,
    "typescript": JAVASCRIPT,
    "tsx": JAVASCRIPT,
    "go": GO,
    "rust": RUST,
    "java": JAVA,
    "c": C,
    "cpp": C,
}


def parse(language: str, text: str) -> Node | None:
    """The root of the file's syntax tree, or None for text and unknown grammars."""
    parser = languages.parser(language) if language in RULES else None
    if parser is None:
        return None
    return parser.parse(text.encode("utf-8")).root_node


def symbols_of(path_rel: str, language: str, root: Node | None) -> FileSymbols:
    if root is None or language not in RULES:
        return FileSymbols(path_rel, language)
    definitions = extract_definitions(root, path_rel, language, RULES[language])
    return FileSymbols(path_rel, language, definitions, extract_imports(root, language))


def extract(path_rel: str, language: str, text: str) -> FileSymbols:
    """Definitions and imports of one file ("text" files have none)."""
    return symbols_of(path_rel, language, parse(language, text))


def analyze(path_rel: str, language: str, text: str) -> tuple[FileSymbols, tuple[Chunk, ...]]:
    """Symbols and chunks from a single parse."""
    root = parse(language, text)
    return symbols_of(path_rel, language, root), chunk_text(path_rel, text, root)
