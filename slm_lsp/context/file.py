"""The current file beyond the prompt's window: its imports, and the parts of it most like
the code around the cursor.

The window (``ContextConfig.prefix_lines`` / ``suffix_lines``) shows the lines around the
cursor; files are often longer, and what the model needs (the names the file imports, the
sibling method that does the same thing, the variable set up far above) is elsewhere in
the file. The prompt then shows a sparse view of the file, in file order:

    <|fim_prefix|> imports | parts above the window | the window above the cursor
    <|fim_suffix|> the window below the cursor | parts below the window

The parts are runs of at most ``SEGMENT_LINES`` lines cut at blank lines, scored by BM25
(``bm25``; IDF over the file's own segments) against the identifiers of the lines around the
cursor (not the cursor line: typing must not change the selection, so the KV cache
survives keystrokes). Everything here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tree_sitter import Node

from slm_lsp import bm25
from slm_lsp.indexing.chunks import identifier_tokens
from slm_lsp.indexing.header import file_header, head_of, import_statements

SEGMENT_LINES = 12  # a part is at most this many lines
MIN_SCORE = 0.25  # parts scoring lower are not worth their tokens
QUERY_ABOVE, QUERY_BELOW = 15, 5  # the lines around the cursor that make the query


@dataclass(frozen=True)
class FileContext:
    header: str = ""  # the import statements above the window
    above: str = ""  # chosen parts above the window, in file order
    below: str = ""  # chosen parts below the window, in file order


@dataclass(frozen=True)
class Segment:
    start: int  # first row
    end: int  # last row, inclusive
    text: str
    tokens: frozenset[str]


def file_context(
    language: str,
    text: str,
    row: int,
    window: tuple[int, int],
    *,
    parts_tokens: int,
    count_tokens: Callable[[str], int],
    root: Node | None = None,
) -> FileContext:
    """What the prompt shows of the file outside `window` (first and last row shown) for a cursor
    on `row`. `root`: the document's current syntax tree (else the file's head is parsed here)."""
    header = file_header(language, text, window[0], root)
    if parts_tokens <= 0:
        return FileContext(header=header)
    lines = text.split("\n")
    header_rows = {r for r, _ in import_statements(language, head_of(text), root)}
    query = identifier_tokens("\n".join(lines[max(0, row - QUERY_ABOVE) : row] + lines[row + 1 : row + 1 + QUERY_BELOW]))
    outside = [s for s in segments(lines) if (s.end < window[0] or s.start > window[1]) and not _only(s, header_rows)]
    chosen = select(outside, query, parts_tokens, count_tokens)
    above = "".join(s.text + "\n\n" for s in chosen if s.end < window[0])
    below = "".join("\n" + s.text + "\n" for s in chosen if s.start > window[1])
    return FileContext(header, above, below)


def segments(lines: list[str]) -> list[Segment]:
    """Runs of non-blank lines, cut to at most SEGMENT_LINES; blank lines separate them."""
    found: list[Segment] = []
    start = None
    for i, line in enumerate(lines + [""]):
        if line.strip() and start is None:
            start = i
        if start is not None and (not line.strip() or i - start + 1 > SEGMENT_LINES):
            body = "\n".join(lines[start:i])
            found.append(Segment(start, i - 1, body, identifier_tokens(body)))
            start = i if line.strip() else None
    return found


def _only(segment: Segment, header_rows: set[int]) -> bool:
    """Nothing but import statements (already in the header)."""
    return all(r in header_rows for r in range(segment.start, segment.end + 1))


def select(
    candidates: list[Segment], query: frozenset[str], budget: int, count_tokens: Callable[[str], int]
) -> list[Segment]:
    """The best-scoring segments within the budget, in file order."""
    if len(query) < 3 or not candidates:
        return []
    frequency = {t: sum(t in s.tokens for s in candidates) for t in query}
    average = sum(len(s.tokens) for s in candidates) / len(candidates)
    scorer = bm25.Scorer([t for t in query if frequency[t]], len(candidates), frequency, average)

    def score(s: Segment) -> float:
        return scorer.score(s.tokens) if len(s.tokens & query) >= 2 else 0.0

    scored = sorted(((score(s), s) for s in candidates), key=lambda x: (-x[0], x[1].start))
    chosen: list[Segment] = []
    used = 0
    for value, segment in scored:
        if value < MIN_SCORE:
            break
        cost = count_tokens(segment.text)
        if used + cost <= budget:
            chosen.append(segment)
            used += cost
    return sorted(chosen, key=lambda s: s.start)
