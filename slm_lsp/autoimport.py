"""Missing imports: the names a file uses but does not bind, how the workspace imports them,
and, on a line of the file's import block, the statement the user is writing.

Completing an import is a lookup more than a guess. The code below the import block says
which names are missing (`SafeFileCache(...)` is called, nothing binds it); the workspace
index says how other files import them (`from pip._internal.network.cache import
SafeFileCache`), or which module defines them when nobody imports them yet; the block's
own order (isort's, when the block is sorted) says which of them belongs on the cursor's
line. `missing_imports` finds the hints (retrieval also shows them to the model);
`suggest` answers from them only when the line, the hints and the order agree, and
otherwise leaves the line to the model. Everything here is pure over the index view.
"""

from __future__ import annotations

import posixpath
import re
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from tree_sitter import Node

from .indexing.header import head_of, import_spans, spans_of
from .indexing.model import Definition, FileSymbols, Import
from .indexing.free_names import free_names
from .indexing.symbols import extract, symbols_of
from .indexing.tables import local_names

LANGUAGES = frozenset({"python", "javascript", "typescript", "tsx"})
LOOKUPS = 48  # missing names looked up, most used first
MAX_NAMES = 8  # hints kept, and names in one hint
_STARTS = {"python": re.compile(r"(from|import)\b"), "javascript": re.compile(r"import\b")}


@dataclass(frozen=True)
class Hint:
    module: str  # as the workspace writes it: "pip._internal.network.cache", ".pathlib", "./util"
    alias: str  # `import numpy as np`: "np"; "" otherwise
    names: tuple[str, ...]  # the missing names it binds, most used first; () for a whole module
    path: str  # the file that imports it this way (or defines the names): the snippet's path


class ImportIndex(Protocol):
    def definitions_named(self, name: str) -> list[Definition]: ...
    def importers_of(self, name: str) -> list[tuple[str, Import]]: ...


def missing_imports(index: ImportIndex, own: FileSymbols, document: str, row: int, root: Node | None = None) -> list[Hint]:
    """With the cursor on `row` in (or just below) the file's import block: how to import the names
    the code uses but neither imports nor defines (`indexing.free_names`), best first: as most other files
    import each name (never the file's own module, never `import a.b`: it binds `a`), else by the
    module its defining file is imported as, else, for a standard-library module, `import name`.
    `root`: the document's current syntax tree, when there is one (else it is parsed here)."""
    if own.language not in LANGUAGES:
        return []
    spans = spans_of(own.language, document, root)
    last = max((end for _, end, _ in spans), default=-1)
    if row > last + 2 and not (last < 0 and row < 5):
        return []
    # the whole file's definitions; for Python `free_names` already leaves out every name the file binds (one parse)
    defined: tuple[Definition, ...] = ()
    if own.language != "python":
        defined = (symbols_of(own.path, own.language, root) if root else extract(own.path, own.language, document)).definitions
    bound = {n for imp in own.imports for n in local_names(imp)} | {d.name for d in own.definitions + defined}
    itself = _module_of(own.path)
    wanted = [n for n in free_names(document, last + 1, own.language, root) if n not in bound]
    groups: dict[tuple[str, str], list[str]] = {}  # (module, alias) -> names; "" name: the module itself
    importers: Counter[tuple[tuple[str, str], str]] = Counter()
    homes: dict[str, tuple[str, str]] = {}  # defining file -> (module, alias) it is imported as
    unresolved: list[str] = []
    for name in wanted[:LOOKUPS]:
        if not (places := _importers(index, name, own.path, itself)):
            unresolved.append(name)
            continue
        forms = Counter((imp.module, imp.alias if not imp.names else "", bool(imp.names)) for _, imp in places)
        module, alias, from_form = forms.most_common(1)[0][0]
        renamed = Counter(imp.names[0] for _, imp in places if imp.module == module and imp.names and imp.alias == name)
        entry = f"{renamed.most_common(1)[0][0]} as {name}" if renamed and from_form else name  # `i16be as i16`
        groups.setdefault((module, alias), []).append(entry if from_form else "")
        importers.update(((module, alias), p) for p, imp in places if imp.module == module)
        if from_form and (home := _home(index, name, own)):
            homes.setdefault(home, (module, alias))
    for imp in own.imports:  # the modules this file already imports from, by the file that defines them
        for name in imp.names[:3]:
            if name != "*" and (home := _home(index, name, own)):
                homes.setdefault(home, (imp.module, ""))
    for name in unresolved:  # nobody imports it yet: its module is known if its file is, or it is the stdlib's
        home = _home(index, name, own)
        if not home and own.language == "python" and name in sys.stdlib_module_names:
            groups.setdefault((name, ""), []).append("")
            importers[((name, ""), own.path)] += 0
        elif home in homes:
            groups.setdefault(homes[home], []).append(name)
            importers[(homes[home], home)] += 0
        elif home and own.language == "python" and (prefix := _package_prefix(homes)) is not None:
            module = prefix + _dotted(home)  # a file nobody imports from yet, named like the files that are
            groups.setdefault((module, ""), []).append(name)
            importers[((module, ""), home)] += 0
    relative = own.language == "python" and any(imp.module.startswith(".") for imp in own.imports)
    hints: list[Hint] = []
    for (module, alias), names in groups.items():
        keyed = [p for key, p in importers if key == (module, alias)]
        path = max(keyed, key=lambda p: (importers[((module, alias), p)], p), default="")
        kept = tuple(n for n in names if n)[:MAX_NAMES]
        if relative and kept and not module.startswith("."):
            module = _relative(module, _home(index, kept[0], own), own.path)
        hints.append(Hint(module, alias, kept, path))
    return hints[:MAX_NAMES]


def _dotted(path: str) -> str:
    """`assertion/_guards.py` -> `assertion._guards` (a package's `__init__.py` is the package)."""
    return path.rsplit(".", 1)[0].removesuffix("/__init__").replace("/", ".")


def _package_prefix(homes: dict[str, tuple[str, str]]) -> str | None:
    """What absolute module names put before a file's path here (`_pytest.` for `assertion/_guards.py`
    imported as `_pytest.assertion._guards`), when the files imported absolutely agree on it."""
    prefixes = Counter(
        module[: len(module) - len(_dotted(path))]
        for path, (module, _) in homes.items()
        if not module.startswith(".") and (module == _dotted(path) or module.endswith("." + _dotted(path)))
    )
    if not prefixes:
        return None
    prefix, count = prefixes.most_common(1)[0]
    return prefix if count >= 2 and count * 4 >= sum(prefixes.values()) * 3 else None


def _importers(index: ImportIndex, name: str, path: str, itself: str) -> list[tuple[str, Import]]:
    """The other files' imports that bind `name` and would mean the same in `path`."""
    return [
        (p, imp)
        for p, imp in index.importers_of(name)
        if p != path and not _is(imp.module, itself) and (imp.names or imp.alias or "." not in imp.module)
        and (not imp.module.startswith(".") or posixpath.dirname(p) == posixpath.dirname(path))
    ]  # `import a.b.c` binds `a`: no hint for that; a relative module means the same only beside us


def _relative(module: str, home: str, path: str) -> str:
    """`_pytest.reports` as `.reports` in a file that imports its neighbours relatively, when the
    module's file is beside it."""
    stem = home.rsplit(".", 1)[0]
    if not home or stem.endswith("/__init__") or posixpath.dirname(stem) != posixpath.dirname(path):
        return module
    name = posixpath.basename(stem)
    return "." + name if module == name or module.endswith("." + name) else module


def _home(index: ImportIndex, name: str, own: FileSymbols) -> str:
    """The one other file that defines `name` at its top level ("" when none or several)."""
    homes = {d.path for d in index.definitions_named(name) if not d.parent and d.path != own.path}
    return homes.pop() if len(homes) == 1 else ""


def _module_of(path: str) -> str:
    """`pkg/sub/mod.py` -> `pkg.sub.mod`; a package's `__init__`/`index` file is the package."""
    stem = path.rsplit(".", 1)[0]
    for init in ("/__init__", "/index"):
        stem = stem.removesuffix(init)
    return stem.replace("/", ".")


def _is(module: str, itself: str) -> bool:
    """An import of the current file's own module (`pip._internal.vcs.versioncontrol` in vcs/versioncontrol.py)."""
    module = module.replace("/", ".").lstrip(".")
    return module == itself or module.endswith("." + itself)


# -- rendering, in the file's own style ------------------------------------------------------


def single_name_style(language: str, document: str, root: Node | None = None) -> bool:
    """Does the file import one name per statement (`from typing import Any` / `from typing import cast`)?
    `root`: the document's current tree, when the caller has it."""
    if language != "python":
        return False
    spans = spans_of(language, document, root)
    froms = [t for _, _, t in spans if t.startswith("from ")]
    by_module = Counter(t.split(" import ", 1)[0] for t in froms)
    repeated = sum(c - 1 for c in by_module.values())
    multi = sum("," in t for t in froms)
    return repeated > multi


def render(language: str, hints: Sequence[Hint], single: bool = False) -> list[str]:
    """Each hint as import statements: one per name when `single`."""
    lines: list[str] = []
    for hint in hints:
        names = sorted(hint.names, key=_name_key)
        groups = [[n] for n in names] if single and names else [names]
        lines += [_statement(language, hint.module, hint.alias, g) for g in groups]
    return lines


def _name_key(name: str) -> tuple[int, str]:
    """isort's order within a statement: CONSTANTS, Classes, functions."""
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[0].isupper() else 2
    return kind, name.lower()


def _statement(language: str, module: str, alias: str, names: list[str]) -> str:
    if language == "python":
        if names:
            return f"from {module} import {', '.join(names)}"
        return f"import {module} as {alias}" if alias else f"import {module}"
    if names:
        return f'import {{ {", ".join(names)} }} from "{module}";'
    return f'import * as {alias} from "{module}";' if alias else f'import "{module}";'


# -- the statement on the cursor's line --------------------------------------------------------


def complete_line(
    language: str, document: str, row: int, line_prefix: str, line_suffix: str, hints: Sequence[Hint]
) -> str | None:
    """`suggest` over the hints (best first) written in the file's own style."""
    statements = render(language, hints, single_name_style(language, document))
    return suggest(language, document, row, line_prefix, line_suffix, statements)


def suggest(language: str, document: str, row: int, line_prefix: str, line_suffix: str, statements: Sequence[str]) -> str | None:
    """The rest of the cursor's line when it is an import statement the hints make certain, else None.

    `statements` are hint statements best first (`render`). The typed part must start one of
    them; an empty line must be inside the import block (statements above and below it) and
    touch one. Where the block's sections are sorted (isort's default order, or its
    force_sort_within_sections order), the statement must also fall between its neighbours;
    the first that does is the answer."""
    if line_suffix.strip() or not statements:
        return None
    typed = line_prefix.lstrip()
    starts = _STARTS.get("javascript" if language in {"typescript", "tsx"} else language)
    if starts is None or (typed and not starts.match(typed)):
        return None
    lines = document.split("\n")
    spans = import_spans(language, head_of("\n".join(lines[:row] + [""] + lines[row + 1 :])))
    above = [s for s in spans if s[1] < row]
    below = [s for s in spans if s[0] > row]
    touching_above = bool(above) and above[-1][1] == row - 1
    touching_below = bool(below) and below[0][0] == row + 1
    if not typed and not (above and below and (touching_above or touching_below)):
        return None
    fitting = [s[len(typed) :] for s in statements if s.startswith(typed) and len(s) > len(typed)]
    if not fitting or language != "python":
        return fitting[0] if fitting else None
    keys = _sort_keys(_sections(above, below, row))
    if not keys:  # no order to check against: the best hint (right more often than the model, measured)
        return fitting[0]
    for rest in fitting:
        statement = typed + rest
        for key in keys:
            low = key(above[-1][2]) if touching_above else None
            high = key(below[0][2]) if touching_below else None
            if (low is None or low <= key(statement)) and (high is None or key(statement) <= high):
                return rest
    return None


def _sections(above: list[tuple[int, int, str]], below: list[tuple[int, int, str]], row: int) -> list[list[str]]:
    """The import statements in runs without a blank line between them; the cursor's line joins its neighbours."""
    sections: list[list[str]] = []
    edge = -2
    for first, last, text in above + below:
        joined = first == edge + 1 or (edge == row - 1 and first == row + 1)
        if joined and sections:
            sections[-1].append(text)
        else:
            sections.append([text])
        edge = last
    return sections


def _parts(statement: str) -> tuple[str, int, str]:
    """(module, 0 for `import m` / 1 for `from m import ...`, names), lower-cased."""
    statement = statement.strip()
    if statement.startswith("from "):
        module, _, names = statement[5:].partition(" import ")
        return module.strip().lower(), 1, names.strip().strip("()").lower()
    return statement[7:].strip().lower(), 0, ""


def _by_kind(statement: str) -> tuple:
    module, kind, names = _parts(statement)
    return kind, module, names


def _by_module(statement: str) -> tuple:
    module, kind, names = _parts(statement)
    return module, kind, names


def _sort_keys(sections: list[list[str]]) -> list[Callable[[str], tuple]]:
    """The orders (isort's default, its force_sort_within_sections) every section is sorted in."""
    if sum(len(s) - 1 for s in sections) < 2:
        return []  # too few neighbours to tell an order from chance
    return [
        key for key in (_by_kind, _by_module)
        if all(key(a) <= key(b) for section in sections for a, b in zip(section, section[1:]))
    ]  # fmt: skip
