"""The workspace index: definitions, imports and chunks of every source file.

Built in a background thread while requests read it (every method takes the
lock briefly), persisted per workspace and reused: a build re-reads only the
files whose (mtime_ns, size) changed and drops the ones gone. Paths inside are
relative posix paths. The parts live in ``slm_lsp.indexing``; this module is
the API the server, retrieval and the command line use.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from .. import paths
from ..config import IndexConfig
from ..languages import detect_language
from ..secrets import mask_credentials
from . import store
from .files import Candidate, acceptable_text, candidates, indexable_path, read_source, walk
from .model import Chunk, Definition, FileEntry, FileSymbols, Import
from .symbols import analyze, extract
from .tables import LexicalView, Tables

__all__ = [
    "BuildResult", "Chunk", "Definition", "FileSymbols", "Import", "LexicalView", "WorkspaceIndex",
    "default_store_dir", "extract", "index_command", "walk",
]  # fmt: skip

log = logging.getLogger(__name__)
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class BuildResult:
    files: int  # files in the index afterwards
    read: int  # files read (new or changed)
    removed: int  # entries dropped (deleted or now excluded)
    cancelled: bool
    seconds: float


def default_store_dir() -> Path:
    return paths.cache_home() / "index"


class WorkspaceIndex:
    """The index of one workspace root; safe to read while another thread builds it."""

    def __init__(self, root: Path, store_dir: Path, config: IndexConfig) -> None:
        self.root = root.resolve()
        self.config = config
        self.store_path = store.store_path(self.root, store_dir)
        self._tables = Tables()
        self._skipped: store.Skipped = {}
        self._lock = threading.RLock()
        self._build_lock = threading.Lock()
        self._loaded = False
        self._dirty = False  # changed since loaded or saved
        self._buffers: set[str] = set()  # indexed from unsaved buffers: builds leave them alone
        inside = self.relative(self.store_path.parent)  # a store inside the workspace is not indexed
        self._skip_dirs = frozenset({inside} if inside and inside != "." else ())

    # --- building -------------------------------------------------------------

    def load(self) -> int:
        """Read the persisted index (once); the number of files it held."""
        with self._lock:
            if self._loaded:
                return len(self._tables.entries)
            self._loaded = True
        entries, skipped = store.load(self.store_path)
        with self._lock:
            for entry in entries:
                if entry.path not in self._tables.entries:  # a buffer indexed meanwhile is newer
                    self._tables.put(entry)
            self._skipped = skipped | self._skipped
            return len(entries)

    def save(self, force: bool = False) -> None:
        """Persist the index if it changed since it was loaded or saved (or ``force``)."""
        with self._lock:
            if not (self._dirty or force):
                return
            entries = list(self._tables.entries.values())
            skipped = dict(self._skipped)
            self._dirty = False
        try:
            store.save(self.store_path, entries, skipped)
        except OSError as exc:
            log.warning("could not save the index: %s", exc)
            with self._lock:
                self._dirty = True

    def build(self, progress: Progress | None = None, cancel: threading.Event | None = None) -> BuildResult:
        """Bring the index up to date with the files on disk, then save it.

        Files indexed from buffers (``update_file`` with text) keep their contents
        until ``update_file`` without text or ``remove_file``.
        """
        with self._build_lock:
            started = time.monotonic()
            self.load()
            found = self._candidates()
            seen: set[str] = set()
            read = 0
            for done, candidate in enumerate(found, 1):
                if cancel is not None and cancel.is_set():
                    break
                if len(seen) >= self.config.max_files:
                    break
                changed, kept = self._refresh(candidate)
                read += changed
                if kept:
                    seen.add(candidate.rel)
                if progress is not None:
                    progress(done, len(found), candidate.rel)
            cancelled = cancel is not None and cancel.is_set()
            removed = 0 if cancelled else self._drop_unseen(seen, {c.rel for c in found})
            self.save()
            return BuildResult(len(self.files()), read, removed, cancelled, time.monotonic() - started)

    def _candidates(self) -> list[Candidate]:
        found: list[Candidate] = []
        for candidate in candidates(self.root, self.config, self._skip_dirs):
            found.append(candidate)
            if len(found) >= 4 * self.config.max_files:
                break
        return found

    def _refresh(self, candidate: Candidate) -> tuple[bool, bool]:
        """Re-read a candidate if it changed: (was read, is in the index)."""
        stamp = (candidate.mtime_ns, candidate.size)
        with self._lock:
            if candidate.rel in self._buffers:
                return False, True
            entry = self._tables.entries.get(candidate.rel)
            if entry is not None and (entry.mtime_ns, entry.size) == stamp:
                return False, True
            if self._skipped.get(candidate.rel) == stamp:
                return False, False
        text = read_source(self.root / candidate.rel, self.config.max_file_kb * 1024)
        if text is None:
            with self._lock:
                self._tables.drop(candidate.rel)
                self._skipped[candidate.rel] = stamp
                self._dirty = True
            return True, False
        self._put(candidate.rel, text, candidate.mtime_ns, candidate.size)
        return True, True

    def _put(self, rel: str, text: str, mtime_ns: int, size: int) -> None:
        language = detect_language(rel)
        try:  # credentials never enter the index (nor its store on disk), line for line
            symbols, chunks = analyze(rel, language, mask_credentials(text))
        except Exception:  # noqa: BLE001 - one bad file must not stop the build
            log.exception("could not analyze %s", rel)
            return
        with self._lock:
            self._skipped.pop(rel, None)
            self._tables.put(FileEntry(rel, language, mtime_ns, size, symbols, chunks))
            self._dirty = True

    def _drop_unseen(self, seen: set[str], present: set[str]) -> int:
        with self._lock:
            gone = [p for p in self._tables.entries if p not in seen and p not in self._buffers]
            for path in gone:
                self._tables.drop(path)
            stale = [p for p in self._skipped if p not in present]
            for path in stale:
                del self._skipped[path]
            self._dirty = self._dirty or bool(gone or stale)
            return len(gone)

    def relative(self, path: Path | str) -> str | None:
        """The index's name for a path (absolute, or relative to the root), or None outside it."""
        path = Path(path)
        absolute = path if path.is_absolute() else self.root / path
        try:
            return Path(os.path.normpath(absolute)).relative_to(self.root).as_posix()
        except ValueError:
            return None

    def update_file(self, path: Path | str, text: str | None = None) -> bool:
        """Index one file now; ``text`` is an unsaved buffer's contents. False when not indexable."""
        rel = self.relative(path)
        if rel is None or not indexable_path(self.root, rel, self.config, self._skip_dirs):
            return False
        if text is not None:
            accepted = acceptable_text(text.encode("utf-8", errors="replace"))
            if accepted is None or len(text) > self.config.max_file_kb * 1024:
                self.remove_file(rel)
                return False
            self._put(rel, accepted, -1, len(text))  # -1: re-read at the first build of another process
            with self._lock:
                self._buffers.add(rel)
            return True
        with self._lock:
            self._buffers.discard(rel)
        try:
            stat = (self.root / rel).stat()
        except OSError:
            self.remove_file(rel)
            return False
        changed, kept = self._refresh(Candidate(rel, stat.st_mtime_ns, stat.st_size))
        return kept

    def remove_file(self, path: Path | str) -> None:
        rel = self.relative(path)
        if rel is not None:
            with self._lock:
                self._buffers.discard(rel)
                dropped = self._tables.drop(rel) is not None
                self._dirty = self._dirty or dropped or self._skipped.pop(rel, None) is not None

    # --- reading ----------------------------------------------------------------

    def files(self) -> list[str]:
        with self._lock:
            return sorted(self._tables.entries)

    def definitions_named(self, name: str) -> list[Definition]:
        with self._lock:
            return self._tables.definitions_named(name)

    def importers_of(self, name: str) -> list[tuple[str, Import]]:
        """(file, import statement) for each indexed file that binds `name` by an import."""
        with self._lock:
            return self._tables.importers_of(name)

    def symbols(self, path: str) -> FileSymbols | None:
        with self._lock:
            entry = self._tables.entries.get(path)
            return entry.symbols if entry is not None else None

    def chunks(self, path: str | None = None) -> list[Chunk]:
        """All chunks (by path, then line), or those of one file."""
        with self._lock:
            if path is not None:
                entry = self._tables.entries.get(path)
                return list(entry.chunks) if entry is not None else []
            return [c for p in sorted(self._tables.entries) for c in self._tables.entries[p].chunks]

    def text(self, path: str, start_line: int, end_line: int) -> str | None:
        """Lines start_line..end_line (inclusive) of an indexed file, as indexed."""
        lines: list[str] = []
        for chunk in self.chunks(path):
            if chunk.end_line >= start_line and chunk.start_line <= end_line:
                chunk_lines = chunk.text.split("\n")
                lo = max(start_line - chunk.start_line, 0)
                hi = min(end_line, chunk.end_line) - chunk.start_line + 1
                lines.extend(chunk_lines[lo:hi])
        return "\n".join(lines) if lines else None

    def lexical(self, tokens: set[str] | frozenset[str], max_ratio: float = 0.01, min_cap: int = 50) -> LexicalView:
        """Chunks sharing query tokens; tokens in more than max(min_cap, max_ratio of all chunks) are not looked up."""
        with self._lock:
            return self._tables.lexical(tokens, max_ratio, min_cap)

    def counts(self) -> tuple[int, int, int]:
        """(files, definitions, chunks)."""
        with self._lock:
            tables = self._tables
            return len(tables.entries), tables.definition_count(), tables.chunk_count()


def index_command(root: Path, store_dir: Path | None = None, *, out: TextIO | None = None) -> int:
    """`slm-lsp index DIR`: build (or refresh) the index with a progress line, then a summary.

    ``out`` defaults to the current ``sys.stderr`` (looked up at call time).
    """
    out = out if out is not None else sys.stderr
    if not root.is_dir():
        print(f"slm-lsp index: not a directory: {root}", file=out)
        return 2
    index = WorkspaceIndex(root, store_dir or default_store_dir(), IndexConfig())
    shown = [0.0]

    def progress(done: int, total: int, rel: str) -> None:
        now = time.monotonic()
        if now - shown[0] >= 0.05 or done == total:
            shown[0] = now
            width = len(str(total))
            line = f"\r[{done:>{width}}/{total:>{width}}] {rel}"
            out.write(line[:100].ljust(100))
            out.flush()

    result = index.build(progress)
    files, definitions, chunks = index.counts()
    out.write("\r" + " " * 100 + "\r")
    print(
        f"indexed {files} files: {definitions} definitions, {chunks} chunks "
        f"({result.read} read, {result.removed} removed) in {result.seconds:.2f} s",
        file=out,
    )
    return 0
