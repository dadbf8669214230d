"""How a definition elsewhere relates to the current file: imported, reached, nearby, or a guess.

Imports become path stems, best effort per language: a stem matches a file
whose path without extension, or whose directory, ends with it. `from .util
import x` in `pkg/a.py` gives `pkg/util` and `pkg/util/x`; `#include "geo.h"`
gives `geo` (so `geo.c` counts too); `use crate::geo::Point` gives `geo`.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from .model import Definition, Import

_RUST_ROOTS = ("crate", "self", "super")
SIBLING = 0.8  # defined beside the current file (Go packages, C, Java packages see these)
NEAR = 0.5  # called, not imported, under the same top-level directory
FAR = 0.35  # called, not imported, elsewhere


@dataclass
class NameUse:
    """How an identifier is used near the cursor."""

    weight: float  # closeness to the cursor, in (0, 1]
    attribute: bool = False  # used as `x.name`
    called: bool = False  # followed by `(` or `.`: a function, class or module


_USE = re.compile(r"(\.\s*)?\b([A-Za-z_][A-Za-z0-9_]*)")
_CALL = re.compile(r"\s*[(.]")


def note_uses(uses: dict[str, NameUse], text: str, weight: float, only_called: bool = False) -> None:
    for match in _USE.finditer(text):
        dot, name = match.groups()
        after = _CALL.match(text, match.end()) is not None
        if only_called and not after:
            continue
        use = uses.setdefault(name, NameUse(weight))
        use.weight = max(use.weight, weight)
        use.attribute = use.attribute or bool(dot)
        use.called = use.called or after


@dataclass(frozen=True)
class Reach:
    path: str
    stems: frozenset[str] = frozenset()
    imported: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)  # local -> (name, stems)

    def original(self, name: str) -> str:
        """The name a local (maybe aliased) import refers to."""
        return self.imported[name][0] if name in self.imported else name

    def factor(self, local: str, definition: Definition, use: NameUse) -> float:
        """How likely the use refers to the definition, in [0, 1]; 0: it does not."""
        if definition.parent and not use.attribute:
            return 0.0  # a bare name never means a method of another file
        if local in self.imported:
            return 1.0 if _matches(definition.path, self.imported[local][1]) else 0.0
        if _matches(definition.path, self.stems):
            return 1.0
        if posixpath.dirname(definition.path) == posixpath.dirname(self.path):
            return SIBLING
        if not use.called:
            return 0.0
        return NEAR if definition.path.split("/")[0] == self.path.split("/")[0] else FAR


def _matches(path: str, stems: frozenset[str]) -> bool:
    stem, directory = posixpath.splitext(path)[0], posixpath.dirname(path)
    return any(_ends_with(stem, s) or _ends_with(directory, s) for s in stems)


def _ends_with(path: str, stem: str) -> bool:
    return path == stem or path.endswith("/" + stem)


def _relative(path: str, module: str) -> str:
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), module))
    return "" if joined == "." else joined


def _python(path: str, imp: Import) -> list[str]:
    dots = len(imp.module) - len(imp.module.lstrip("."))
    base = imp.module[dots:].replace(".", "/")
    if dots:
        up = posixpath.dirname(path)
        for _ in range(dots - 1):
            up = posixpath.dirname(up)
        base = posixpath.join(up, base) if base else up
    return [base] + [posixpath.join(base, n) for n in imp.names if n != "*"]


def _stems(path: str, language: str, imp: Import) -> list[str]:
    module = imp.module
    if language == "python":
        return _python(path, imp)
    if language in ("javascript", "typescript", "tsx"):
        if module.startswith("."):
            return [_relative(path, posixpath.splitext(module)[0])]
        return [module.split("/", 1)[1]] if module[:2] in ("@/", "~/") else []
    if language in ("c", "cpp"):
        return [_relative(path, posixpath.splitext(module)[0]), posixpath.splitext(module)[0]]
    if language == "go":
        return ["/".join(module.split("/")[-2:]), module.rsplit("/", 1)[-1]]
    if language == "rust":
        parts = [p for p in module.split("::") if p and p not in _RUST_ROOTS]
        return ["/".join(parts)] if parts and module.split("::")[0] in _RUST_ROOTS else []
    if language == "java":
        base = module.replace(".", "/")
        return [base] + [posixpath.join(base, n) for n in imp.names if n != "*"]
    return []


def reach_of(path: str, language: str, imports: tuple[Import, ...]) -> Reach:
    stems: set[str] = set()
    imported: dict[str, tuple[str, frozenset[str]]] = {}
    for imp in imports:
        found = frozenset(s for s in _stems(path, language, imp) if s and s != ".")
        stems |= found
        names = [n for n in imp.names if n != "*"]
        if imp.alias and len(names) == 1:
            imported[imp.alias] = (names[0], found)
        else:
            imported.update((n, (n, found)) for n in names)
    return Reach(path, frozenset(stems), imported)
