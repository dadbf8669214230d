"""The in-memory lookup tables of the index; not thread-safe (the index locks around them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from .model import Chunk, Definition, FileEntry, Import


def local_names(imp: Import) -> tuple[str, ...]:
    """The names an import statement binds in the importing file."""
    if imp.alias:
        return (imp.alias,)
    if imp.names:
        return tuple(n for n in imp.names if n != "*")
    return (imp.module.split(".")[0].split("/")[-1],) if imp.module and imp.module[0].isalpha() else ()


@dataclass(frozen=True)
class LexicalView:
    """What BM25 needs for one query: collection statistics and the chunks that match."""

    n_chunks: int
    average_tokens: float
    document_frequency: Mapping[str, int]  # for every query token (0 when unknown)
    cap: int  # tokens in more chunks than this were too common to look up
    matches: tuple[tuple[Chunk, frozenset[str]], ...]  # chunks holding looked-up tokens, and which


class Tables:
    def __init__(self) -> None:
        self.entries: dict[str, FileEntry] = {}
        self._by_name: dict[str, list[Definition]] = {}
        self._importers: dict[str, list[tuple[str, Import]]] = {}  # bound name -> (importing file, import)
        self._postings: dict[str, set[tuple[str, int]]] = {}
        self._token_total = 0
        self._chunk_total = 0

    def put(self, entry: FileEntry) -> None:
        self.drop(entry.path)
        self.entries[entry.path] = entry
        for definition in entry.symbols.definitions:
            self._by_name.setdefault(definition.name, []).append(definition)
        for imp in entry.symbols.imports:
            for name in local_names(imp):
                self._importers.setdefault(name, []).append((entry.path, imp))
        for i, chunk in enumerate(entry.chunks):
            for token in chunk.tokens:
                self._postings.setdefault(token, set()).add((entry.path, i))
            self._token_total += len(chunk.tokens)
        self._chunk_total += len(entry.chunks)

    def drop(self, path: str) -> FileEntry | None:
        entry = self.entries.pop(path, None)
        if entry is None:
            return None
        for definition in entry.symbols.definitions:
            found = self._by_name.get(definition.name, [])
            found[:] = [d for d in found if d.path != path]
            if not found:
                self._by_name.pop(definition.name, None)
        for imp in entry.symbols.imports:
            for name in local_names(imp):
                importers = self._importers.get(name, [])
                importers[:] = [(p, i) for p, i in importers if p != path]
                if not importers:
                    self._importers.pop(name, None)
        for i, chunk in enumerate(entry.chunks):
            for token in chunk.tokens:
                postings = self._postings.get(token)
                if postings is not None:
                    postings.discard((path, i))
                    if not postings:
                        del self._postings[token]
            self._token_total -= len(chunk.tokens)
        self._chunk_total -= len(entry.chunks)
        return entry

    def definitions_named(self, name: str) -> list[Definition]:
        return list(self._by_name.get(name, ()))

    def importers_of(self, name: str) -> list[tuple[str, Import]]:
        return list(self._importers.get(name, ()))

    def definition_count(self) -> int:
        return sum(len(e.symbols.definitions) for e in self.entries.values())

    def chunk_count(self) -> int:
        return self._chunk_total

    def lexical(self, tokens: Iterable[str], max_ratio: float, min_cap: int) -> LexicalView:
        """Term at a time: the cost is the postings of the query's rarer tokens, not the collection."""
        cap = max(min_cap, int(self._chunk_total * max_ratio))
        frequency: dict[str, int] = {}
        hits: dict[tuple[str, int], list[str]] = {}
        for token in set(tokens):
            postings = self._postings.get(token, ())
            frequency[token] = len(postings)
            if len(postings) <= cap:
                for key in postings:
                    hits.setdefault(key, []).append(token)
        matches = tuple((self.entries[path].chunks[i], frozenset(found)) for (path, i), found in hits.items())
        average = self._token_total / self._chunk_total if self._chunk_total else 0.0
        return LexicalView(self._chunk_total, average, frequency, cap, matches)
