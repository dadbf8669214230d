"""The language registry: which tree-sitter grammar serves which file.

Everything that needs a parser gets it from here (one `Parser` per language,
created lazily and reused). Languages without a grammar are "text": callers
fall back to plain line-based handling.
"""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass

import threading

import tree_sitter

TEXT = "text"


@dataclass(frozen=True)
class LanguageSpec:
    """What slm-lsp knows about one language."""

    name: str
    module: str  # the grammar package
    function: str  # the function in it returning the grammar pointer
    extensions: tuple[str, ...]
    language_ids: tuple[str, ...]  # LSP languageId values
    line_comment: str  # used when rendering file headers in prompts


LANGUAGES: dict[str, LanguageSpec] = {
    spec.name: spec
    for spec in (
        LanguageSpec("python", "tree_sitter_python", "language", (".py", ".pyi", ".pyw"), ("python",), "#"),
        LanguageSpec(
            "javascript",
            "tree_sitter_javascript",
            "language",
            (".js", ".mjs", ".cjs", ".jsx"),
            ("javascript", "javascriptreact"),
            "//",
        ),
        LanguageSpec(
            "typescript", "tree_sitter_typescript", "language_typescript", (".ts", ".mts", ".cts"), ("typescript",), "//"
        ),
        LanguageSpec("tsx", "tree_sitter_typescript", "language_tsx", (".tsx",), ("typescriptreact",), "//"),
        LanguageSpec("go", "tree_sitter_go", "language", (".go",), ("go",), "//"),
        LanguageSpec("rust", "tree_sitter_rust", "language", (".rs",), ("rust",), "//"),
        LanguageSpec("java", "tree_sitter_java", "language", (".java",), ("java",), "//"),
        LanguageSpec("c", "tree_sitter_c", "language", (".c", ".h"), ("c",), "//"),
        LanguageSpec(
            "cpp",
            "tree_sitter_cpp",
            "language",
            (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx", ".c++", ".h++"),
            ("cpp", "cuda-cpp"),
            "//",
        ),
    )
}

_BY_ID = {lang_id: spec.name for spec in LANGUAGES.values() for lang_id in spec.language_ids}
_BY_EXT = {ext: spec.name for spec in LANGUAGES.values() for ext in spec.extensions}


def detect_language(path: str, language_id: str | None = None) -> str:
    """The canonical language name for a document, or ``TEXT``.

    The client's ``languageId`` wins; the file extension decides otherwise.
    """
    if language_id and language_id in _BY_ID:
        return _BY_ID[language_id]
    _, ext = os.path.splitext(path.lower())
    return _BY_EXT.get(ext, TEXT)


def has_grammar(language: str) -> bool:
    return grammar(language) is not None


@functools.cache
def grammar(language: str) -> tree_sitter.Language | None:
    """The tree-sitter ``Language`` for a name, or None (unknown or broken grammar)."""
    spec = LANGUAGES.get(language)
    if spec is None:
        return None
    try:
        module = importlib.import_module(spec.module)
        return tree_sitter.Language(getattr(module, spec.function)())
    except (ImportError, AttributeError, ValueError, OSError):
        return None


def parser(language: str) -> tree_sitter.Parser | None:
    """A parser for the language (one per language and thread), or None."""
    lang = grammar(language)
    if lang is None:
        return None
    parsers = _local.__dict__.setdefault("parsers", {})
    if language not in parsers:
        parsers[language] = tree_sitter.Parser(lang)
    return parsers[language]


_local = threading.local()  # tree-sitter parsers are not thread-safe


def comment_prefix(language: str) -> str:
    spec = LANGUAGES.get(language)
    return spec.line_comment if spec else "#"
