"""Reusing the KV cache across prompts: llama-server's ``--cache-reuse``, with gaps and rules.

The cache holds the tokens of the last prompt (and what was generated after
it). A new prompt keeps the longest common prefix in place; after it, runs of
at least ``min_chunk`` cached tokens that the new prompt contains again, in the
same order, are kept and moved to their new positions (the K vectors are
re-rotated, RoPE being relative); the tokens between and after those runs are
evaluated. A moved run's state was computed with the old text before it, so
the result only approximates a fresh evaluation, and which runs may move
decides how closely (``bench/kv_reuse.py`` measures it): runs that start a part
of the prompt (a snippet, the file's FIM prefix...) and only where text was
inserted before them (a run moved down still holds the removed text, which a
code model copies from).

Applying a plan, in position order (llama.cpp only appends to a sequence at
its end, and a query never sees cells of another sequence or a later position):
1. ``park``: copy the kept runs to sequence 1, drop everything after the prefix
   from sequence 0, and move the runs to their new positions inside sequence 1;
2. for each run: evaluate the new tokens before it into sequence 0 (they see
   the prefix and the runs placed so far, never the parked ones), then
   ``unpark`` it into sequence 0;
3. evaluate the tail (the last token always: its logits start generation).
Planning is pure; the three small functions at the end are the only llama.cpp calls.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Sequence

PARKING = 1  # the sequence id that holds kept runs while the gaps before them are evaluated
CANDIDATES = 8  # occurrences of a run's first tokens tried in the cache, the longest match wins


@dataclass(frozen=True)
class Chunk:
    """Cached tokens [src, src + size) kept and moved to [dst, dst + size) of the new prompt."""

    src: int
    dst: int
    size: int

    @property
    def end(self) -> int:
        return self.dst + self.size


@dataclass(frozen=True)
class Plan:
    prefix: int  # tokens kept in place: the common prefix
    chunks: tuple[Chunk, ...]  # cached runs kept and moved, in increasing src and dst
    total: int  # tokens in the new prompt

    @property
    def reused(self) -> int:
        return self.prefix + sum(c.size for c in self.chunks)

    @property
    def evaluated(self) -> int:
        return self.total - self.reused


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


PARTS = ("any", "same", "whole")  # which cached runs may move: see ``plan``


def plan(
    cached: Sequence[int],
    new: Sequence[int],
    min_chunk: int = 16,
    *,
    marks: frozenset[int] = frozenset(),
    parts: str = "any",
    down: bool = True,
    gaps: bool = True,
) -> Plan:
    """How to bring a cache holding ``cached`` to ``new`` with the least evaluation.

    ``min_chunk`` 0 keeps the common prefix only. ``marks`` are the tokens that
    open a part of the prompt (FIM prefix, suffix, middle, a file). ``parts``:
    "any" run may move; "same": runs move within the same kind of part (the
    same mark is the last before the run in the cache and in the new prompt:
    text computed as the FIM suffix does not stand in for the prefix);
    "whole": a run also starts at a mark, parts' text from their start. A run
    never ends fewer than ``min_chunk`` tokens past a mark (it stops before
    it). Without ``down``, a run never moves to an earlier position. Without
    ``gaps``, runs are kept only while they follow one another from the prefix
    (llama-server's scheme: a deleted piece is skipped, an inserted one ends
    reuse). The last token is never reused.
    """
    new, cached = list(new), list(cached)
    if not new:
        return Plan(0, (), 0)
    limit = len(new) - 1  # the last token is evaluated: its logits start generation
    prefix = min(common_prefix(cached, new), limit)
    if min_chunk <= 0:
        return Plan(prefix, (), len(new))
    marks = marks if parts != "any" else frozenset()
    part_c, part_n = _last_marks(cached, marks), _last_marks(new, marks)
    match = _Match(cached, new, limit, min_chunk, part_c, part_n, marks, parts == "whole", down)
    if match.whole:
        prefix = _reopen(match, prefix)
    chunks: list[Chunk] = []
    i = j = prefix  # next cache position that may be kept, next new position to cover
    while j + min_chunk <= limit:
        found = match.longest(i, j) if not match.whole or new[j] in marks else None
        if found is None:
            if not gaps:
                break
            j += 1
            continue
        src, size = found
        chunks.append(Chunk(src, j, size))
        i, j = src + size, j + size
    return Plan(prefix, tuple(chunks), len(new))


def _reopen(match: _Match, prefix: int) -> int:
    """Whole parts: the prefix may end inside a part that opens like another (two snippets' file
    separator); when that part of the new prompt matches a later part of the cache for longer, the
    prefix gives the part up, so that it moves whole."""
    opened = max((p for p in range(prefix) if match.new[p] in match.marks), default=None)
    if opened is None:
        return prefix
    found = match.longest(opened, opened)
    return opened if found is not None and found[0] != opened and found[1] > prefix - opened else prefix


@dataclass
class _Match:
    """Finding cached runs of the new prompt: the inputs of ``plan`` and an index of the cache."""

    cached: list[int]
    new: list[int]
    limit: int  # new[limit:] is never reused
    k: int  # min_chunk
    part_c: list[int]  # per cache position, the last mark before it
    part_n: list[int]
    marks: frozenset[int]
    whole: bool
    down: bool
    index: dict[tuple[int, ...], list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for p in range(len(self.cached) - self.k + 1):
            self.index.setdefault(tuple(self.cached[p : p + self.k]), []).append(p)

    def longest(self, i: int, j: int) -> tuple[int, int] | None:
        """The cache position at or after i whose run matches new[j:limit] longest (>= k) within the
        rules on parts, and that length."""
        positions = self.index.get(tuple(self.new[j : j + self.k]))
        if not positions:
            return None
        best: tuple[int, int] | None = None
        first = bisect_left(positions, i)
        for src in positions[first : first + CANDIDATES]:
            if (self.part_c[src] != self.part_n[j] and self.new[j] not in self.marks) or (src > j and not self.down):
                continue
            size = self.k
            cached, new = self.cached, self.new
            while src + size < len(cached) and j + size < self.limit and cached[src + size] == new[j + size]:
                size += 1
            size = self._trim(j, size)
            if size >= self.k and (best is None or size > best[1]):
                best = (src, size)
        return best

    def _trim(self, j: int, size: int) -> int:
        """A run ending just past a mark stops before it: the next part, which opens with that mark,
        may match further on (and a whole part is never a lone piece of one)."""
        last = max((p for p in range(j + 1, j + size) if self.new[p] in self.marks), default=None)
        return last - j if last is not None and j + size - last < self.k else size


def _last_marks(tokens: list[int], marks: frozenset[int]) -> list[int]:
    """Per position, the last mark token before it (-1: none)."""
    out, last = [], -1
    for t in tokens:
        out.append(last)
        if t in marks:
            last = t
    return out


def fit(tokens: Sequence[int], budget: int, keep: int = 1) -> list[int]:
    """At most ``budget`` tokens: the first ``keep`` and the last ones (llama.cpp's n_keep).

    Cutting after the head keeps the prompt's opening special tokens, and the
    same cut on the next, slightly longer prompt is a shift the plan reuses.
    """
    tokens = list(tokens)
    if len(tokens) <= budget:
        return tokens
    keep = max(0, min(keep, budget // 2))
    return tokens[:keep] + tokens[len(tokens) - (budget - keep) :]


# -- applying a plan (llama.cpp memory calls; ``mem`` is llama_get_memory(ctx)) --
def park(mem, p: Plan) -> None:
    """Keep the prefix in sequence 0 and the moved runs, at their new positions, in PARKING."""
    import llama_cpp

    for c in p.chunks:
        llama_cpp.llama_memory_seq_cp(mem, 0, PARKING, c.src, c.src + c.size)
    llama_cpp.llama_memory_seq_rm(mem, 0, p.prefix, -1)
    # positions are moved by range: runs moving down go first to last, runs moving up last to
    # first, so a moved run never lands on the range of one not yet moved
    for c in [c for c in p.chunks if c.dst < c.src] + [c for c in reversed(p.chunks) if c.dst > c.src]:
        llama_cpp.llama_memory_seq_add(mem, PARKING, c.src, c.src + c.size, c.dst - c.src)


def unpark(mem, c: Chunk) -> None:
    """A parked run joins sequence 0 (which must end just before it)."""
    import llama_cpp

    llama_cpp.llama_memory_seq_cp(mem, PARKING, 0, c.dst, c.end)
    llama_cpp.llama_memory_seq_rm(mem, PARKING, c.dst, c.end)


def drop_parked(mem) -> None:
    import llama_cpp

    llama_cpp.llama_memory_seq_rm(mem, PARKING, -1, -1)
