"""Snippets of the workspace for the prompt: pure functions over the index.

Three kinds of candidates, each scored in [0, 1]:
  definition  definitions, in other files, of identifiers used near the cursor:
              closeness to the cursor times how surely the name means that
              definition (imported from its file 1.0, beside the file 0.8, only
              called and found elsewhere 0.5 or 0.35), over sqrt(places); only
              the surest places count, and not at all when more than 4
  similar     chunks of other files sharing the rarer identifiers (and their
              snake/camel sub-words) around the cursor: the query's BM25 weight
              found in the chunk over the query's whole weight
  recent      the best chunks of recently used files, their score raised by recency
Nothing under ``min_score`` is kept; the rest fills the budget best first,
without overlaps, and is returned sorted by (path, start_line), not by score,
so that the prompt (and llama.cpp's KV cache) stays the same while the user
types. The query is the lines above the cursor line and the lines below it,
never the cursor line itself, except `name(` and `name.` in it, which look up
definitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from tree_sitter import Node

from . import autoimport, bm25
from .indexing.chunks import STOPWORDS, identifier_tokens
from .indexing.header import head_of
from .indexing.model import Chunk, Definition, FileSymbols
from .indexing.outline import definition_text
from .indexing.reach import NameUse, note_uses, reach_of
from .indexing.symbols import extract, symbols_of
from .indexing.tables import LexicalView
from .languages import TEXT, detect_language
from .prompt import estimate_tokens

QUERY_LINES = 15  # lines above the cursor line that make the query
SUFFIX_LINES = 5  # lines below the cursor line that join it
HEAD_LINES = 200  # the buffer's first lines are parsed for its imports (the index may lag behind)
MAX_PLACES = 4  # a name defined in more places than this is too ambiguous to look up
SIMILAR_KEEP = 8
RECENT_FILES = 5
_FAMILIES = ({"javascript", "typescript", "tsx"}, {"c", "cpp"})


@dataclass(frozen=True)
class Snippet:
    path: str
    text: str
    score: float
    start_line: int
    kind: str  # "definition" | "module" | "similar" | "recent" | "import"
    imports: tuple[autoimport.Hint, ...] = ()  # kind "import": the hints its text shows, best first


@dataclass(frozen=True)
class _Candidate:
    snippet: Snippet
    end_line: int


class IndexView(Protocol):
    def definitions_named(self, name: str) -> list[Definition]: ...
    def symbols(self, path: str) -> FileSymbols | None: ...
    def chunks(self, path: str | None = None) -> list[Chunk]: ...
    def text(self, path: str, start_line: int, end_line: int) -> str | None: ...
    def lexical(self, tokens: set[str] | frozenset[str]) -> LexicalView: ...
    def files(self) -> list[str]: ...


def retrieve(
    index: IndexView,
    path: str,
    language: str,
    prefix: str,
    line_prefix: str,
    suffix: str,
    *,
    budget_tokens: int,
    min_score: float,
    recent: Sequence[str] = (),
    document: str = "",
    row: int = -1,
    count_tokens: Callable[[str], int] = estimate_tokens,
    root: Node | None = None,
) -> tuple[Snippet, ...]:
    """The snippets worth their tokens for a completion at the cursor, in a stable order.

    `document` is the whole buffer (its imports, the names it uses) and `row` the cursor's line;
    without them, the prefix stands in. `root`: the document's current syntax tree (the
    document layer's), so that nothing here parses the buffer again.
    """
    if budget_tokens <= 0:
        return ()
    above, below = cursor_context(prefix, suffix)
    candidates: list[_Candidate] = []
    if language != TEXT:
        own = own_symbols(index, path, language, head_of(document) if document else prefix, root if document else None)
        uses = names_near_cursor(above, line_prefix, below)
        candidates += definition_candidates(index, own, language, uses)
        candidates += module_candidates(index, own, language, uses)
        if document and row >= 0:
            candidates += import_candidates(index, own, document, row, root)
    query = identifier_tokens(above + "\n" + below)
    if len(query) >= 3:
        scorer = Scorer(index.lexical(query), query)
        candidates += similar_candidates(scorer, path)
        candidates += recent_candidates(index, scorer, path, recent)
    passing = [c for c in candidates if c.snippet.score >= min_score]
    return select(passing, budget_tokens, count_tokens)


def cursor_context(prefix: str, suffix: str) -> tuple[str, str]:
    """(the lines above the cursor line, the lines below it): the part of the query typing leaves alone."""
    above = prefix[: prefix.rfind("\n") + 1].split("\n")[-QUERY_LINES - 1 : -1]
    below = suffix.split("\n")[1 : SUFFIX_LINES + 1]
    return "\n".join(above), "\n".join(below)


def own_symbols(index: IndexView, path: str, language: str, text: str, root: Node | None = None) -> FileSymbols:
    """The current file's definitions and imports: as indexed, plus those of the buffer (maybe
    unsaved): all of it from its tree `root`, else its head parsed here."""
    indexed = index.symbols(path) or FileSymbols(path, language)
    if root is not None:
        head = symbols_of(path, language, root)
    else:
        head = extract(path, language, "\n".join(text.split("\n", HEAD_LINES)[:HEAD_LINES]))
    imports = tuple(dict.fromkeys(indexed.imports + head.imports))
    return FileSymbols(path, language, indexed.definitions + head.definitions, imports)


def names_near_cursor(above: str, line_prefix: str, below: str) -> dict[str, NameUse]:
    """Identifiers near the cursor, weighted by closeness (1.0: called on the cursor line)."""
    uses: dict[str, NameUse] = {}
    for distance, line in enumerate(reversed(above.split("\n"))):
        note_uses(uses, line, 0.95 - 0.03 * distance)
    for distance, line in enumerate(below.split("\n")):
        note_uses(uses, line, 0.8 - 0.05 * distance)
    note_uses(uses, line_prefix, 1.0, only_called=True)
    return {n: u for n, u in uses.items() if len(n) > 1 and n.lower() not in STOPWORDS}


def _compatible(language: str, path: str) -> bool:
    other = detect_language(path)
    return other == language or any(language in f and other in f for f in _FAMILIES)


def definition_candidates(
    index: IndexView, own: FileSymbols, language: str, uses: dict[str, NameUse]
) -> list[_Candidate]:
    local = {d.name for d in own.definitions}
    reach = reach_of(own.path, language, own.imports)
    found: list[_Candidate] = []
    for name, use in uses.items():
        if name in local:
            continue
        places = [
            (reach.factor(name, d, use), d)
            for d in index.definitions_named(reach.original(name))
            if d.path != own.path and _compatible(language, d.path)
        ]
        best = max((f for f, _ in places), default=0.0)
        places = [(f, d) for f, d in places if f == best > 0]  # guesses lose to surer places
        if len(places) > MAX_PLACES:
            continue
        for factor, definition in places:
            score = use.weight * factor / math.sqrt(len(places))
            text = definition_text(index, definition)
            snippet = Snippet(definition.path, text, score, definition.start_line, "definition")
            found.append(_Candidate(snippet, definition.end_line))
    return found


MODULE_LINES = 40  # a module's outline is cut to this many lines


def module_candidates(
    index: IndexView, own: FileSymbols, language: str, uses: dict[str, NameUse]
) -> list[_Candidate]:
    """Outlines of imported modules used as `module.` near the cursor (`from pkg import module`)."""
    reach = reach_of(own.path, language, own.imports)
    wanted = {name: use for name, use in uses.items() if name in reach.imported and use.called and not use.attribute}
    if not wanted:
        return []
    stems_of = {path.rsplit(".", 1)[0]: path for path in index.files() if path != own.path}
    found: list[_Candidate] = []
    for name, use in wanted.items():
        original, stems = reach.imported[name]
        path = next((stems_of[s] for s in sorted(stems) if s.endswith(original) and s in stems_of), None)
        symbols = index.symbols(path) if path else None
        if symbols is None or not symbols.definitions:
            continue
        top = [d for d in symbols.definitions if not d.parent]
        text = "\n\n".join(definition_text(index, d) for d in top)
        lines = text.split("\n")[:MODULE_LINES]
        end = max(d.end_line for d in top)
        found.append(_Candidate(Snippet(symbols.path, "\n".join(lines), use.weight, top[0].start_line, "module"), end))
    return found


IMPORT_SCORE = 0.9


def import_candidates(
    index: IndexView, own: FileSymbols, document: str, row: int, root: Node | None = None
) -> list[_Candidate]:
    """In a file's import block: how other files import the names this file uses but neither
    imports nor defines (`autoimport.missing_imports`), in the file's own import style. A file's
    snippet scores by its best hint (a hair lower per rank), so the engine can read them best first."""
    hints = autoimport.missing_imports(index, own, document, row, root)
    single = autoimport.single_name_style(own.language, document, root)
    by_path: dict[str, list[autoimport.Hint]] = {}
    rank: dict[str, int] = {}
    for i, hint in enumerate(hints):
        by_path.setdefault(hint.path, []).append(hint)
        rank.setdefault(hint.path, i)
    return [
        _Candidate(Snippet(p, "\n".join(autoimport.render(own.language, found, single)), IMPORT_SCORE - rank[p] / 1000, 0, "import", tuple(found)), 0)
        for p, found in sorted(by_path.items())
    ]


class Scorer(bm25.Scorer):
    """BM25 (``bm25``) of the query over the index's chunks, which keeps the chunks that match it."""

    def __init__(self, view: LexicalView, query: frozenset[str]) -> None:
        super().__init__(query, view.n_chunks, view.document_frequency, view.average_tokens, cap=view.cap)
        self.view = view


def _chunk_candidate(chunk: Chunk, score: float, kind: str) -> _Candidate:
    return _Candidate(Snippet(chunk.path, chunk.text, score, chunk.start_line, kind), chunk.end_line)


def similar_candidates(scorer: Scorer, path: str) -> list[_Candidate]:
    scored = [(scorer.score(m, len(c.tokens)), c) for c, m in scorer.view.matches if c.path != path]
    scored.sort(key=lambda sc: (-sc[0], sc[1].path, sc[1].start_line))
    return [_chunk_candidate(c, s, "similar") for s, c in scored[:SIMILAR_KEEP] if s > 0]


def recent_candidates(index: IndexView, scorer: Scorer, path: str, recent: Sequence[str]) -> list[_Candidate]:
    found: list[_Candidate] = []
    for rank, other in enumerate([p for p in dict.fromkeys(recent) if p != path][:RECENT_FILES]):
        boost = 2.0 - rank / RECENT_FILES
        chunks = index.chunks(other)
        scored = sorted(((scorer.score(c.tokens, len(c.tokens)), c) for c in chunks), key=lambda sc: -sc[0])
        found += [_chunk_candidate(c, min(1.0, s * boost), "recent") for s, c in scored[:2] if s > 0]
    return found


def _overlaps(a: _Candidate, b: _Candidate) -> bool:
    if a.snippet.text == b.snippet.text:
        return True
    same_file = a.snippet.path == b.snippet.path
    return same_file and a.snippet.start_line <= b.end_line and b.snippet.start_line <= a.end_line


def select(
    candidates: Sequence[_Candidate], budget_tokens: int, count_tokens: Callable[[str], int]
) -> tuple[Snippet, ...]:
    """Best first within the budget (each snippet's text and path count), no overlaps, then in file order."""
    chosen: list[_Candidate] = []
    used = 0
    for candidate in sorted(candidates, key=lambda c: (-c.snippet.score, c.snippet.path, c.snippet.start_line)):
        if any(_overlaps(candidate, other) for other in chosen):
            continue
        cost = count_tokens(candidate.snippet.text) + count_tokens(candidate.snippet.path)
        if used + cost > budget_tokens:
            continue
        chosen.append(candidate)
        used += cost
    return tuple(sorted((c.snippet for c in chosen), key=lambda s: (s.path, s.start_line)))
