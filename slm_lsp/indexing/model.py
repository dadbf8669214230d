"""The records of the workspace index: small frozen dataclasses, no logic.

Line numbers are 0-based like LSP positions and tree-sitter rows; end lines
are inclusive. Paths are relative posix paths under the workspace root: an
absolute path never enters the index, its store or a prompt.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Definition:
    name: str
    kind: str  # function, method, class, constant, type, interface, struct, enum, trait, macro, module, union
    path: str
    start_line: int  # first line, decorators and `export` included
    end_line: int
    signature: str  # the header up to the body: `def add(a: int, b: int) -> int:`
    doc: str  # the docstring's or the leading comment's first paragraph (at most 3 lines)
    parent: str = ""  # the enclosing class (struct, impl, trait, interface) or ""


@dataclass(frozen=True)
class Import:
    module: str  # as written: "os.path", ".util", "./math", "fmt", "crate::geo", "java.util", "geo.h"
    names: tuple[str, ...] = ()  # imported names ("*" for a wildcard); () for a whole module
    alias: str = ""  # the local name when renamed (`as`), else ""


@dataclass(frozen=True)
class FileSymbols:
    path: str
    language: str
    definitions: tuple[Definition, ...] = ()
    imports: tuple[Import, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """A run of whole lines cut at syntax boundaries; a file's chunks tile it."""

    path: str
    start_line: int
    end_line: int  # inclusive
    text: str
    tokens: frozenset[str]  # lower-cased identifiers and their snake/camel sub-words


@dataclass(frozen=True)
class FileEntry:
    """Everything the index holds about one file."""

    path: str
    language: str
    mtime_ns: int  # -1: indexed from an unsaved buffer, re-read at the next build
    size: int
    symbols: FileSymbols
    chunks: tuple[Chunk, ...]
