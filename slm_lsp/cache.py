"""The completion cache: a pure key function, an in-memory LRU and diskcache.

Keys are sha256 digests of the model identity (model + adapter + template)
and the whole prompt, so no path or code is readable from a key, and a
different model or adapter never sees another's entries. Values are the raw
model output that follows the prompt.

Typed-through reuse: the prompt only grows while the user types (see
prompt.py), so when the prompt minus its last k characters has an entry whose
text starts with those k characters, the rest of that entry is the answer.

The disk is an extra: no disk problem ever reaches a completion. A corrupt
database (garbage, truncated, a directory where ``cache.db`` should be) is
moved aside as ``cache.db.corrupt-<time>`` and the cache starts empty; a
directory that cannot be written, a full disk or a database that breaks
mid-session leaves the memory cache alone for the session. Each problem is
reported once through ``on_problem``, in a sentence that says what to fix.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from slm_lsp.paths import private_dir

log = logging.getLogger(__name__)

LOCK_WAIT_S = 0.2  # a database another process holds locked is a miss, never a stall of the server
TYPED_THROUGH_CHARS = 48  # how far back a typed-through lookup looks
DB_NAME = "cache.db"  # diskcache's database file in the cache directory
CORRUPT_SUFFIX = ".corrupt-"  # cache.db.corrupt-<time>: a corrupt database moved aside (the newest one is kept)


def cache_key(identity: str, prompt: str) -> str:
    digest = hashlib.sha256()
    digest.update(identity.encode())
    digest.update(b"\0")
    digest.update(prompt.encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()


@dataclass(frozen=True)
class Hit:
    text: str  # the completion for the current prompt
    source: str  # "cache" (exact) or "typed" (typed-through)


def typed_through(prompt: str, cached_prompt_len: int, cached_text: str) -> str | None:
    """The rest of a cached completion when the user typed its head, else None."""
    typed = prompt[cached_prompt_len:]
    if cached_text.startswith(typed) and len(cached_text) > len(typed):
        return cached_text[len(typed) :]
    return None


# -- disk problems -----------------------------------------------------------
def classify(exc: BaseException) -> str:
    """What a disk error means: "busy" (another process holds the lock: a miss),
    "full" (no space), "corrupt" (the database is damaged) or "broken" (the rest)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "full"
    if type(exc).__name__ == "Timeout":  # diskcache.Timeout: the database stayed locked
        return "busy"
    if isinstance(exc, sqlite3.Error):
        name, text = getattr(exc, "sqlite_errorname", "") or "", str(exc).lower()
        if name in ("SQLITE_BUSY", "SQLITE_LOCKED") or "locked" in text:
            return "busy"
        if name == "SQLITE_FULL" or "disk is full" in text:
            return "full"
        if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or "malformed" in text or "not a database" in text:
            return "corrupt"
    return "broken"


def unusable_message(directory: Path, exc: BaseException) -> str:
    if directory.exists() and not directory.is_dir():
        fix = f"Remove the file {directory} or set cache.dir to a writable directory."
    else:
        fix = f"Make {directory} writable (chmod u+rwx) or set cache.dir to a writable directory."
    return (f"slm-lsp: the completion cache directory {directory} cannot be used ({exc}); completions "
            f"are cached in memory only for this session. {fix}")  # fmt: skip


def failure_message(directory: Path, exc: BaseException, kind: str, aside: Path | None) -> str:
    memory = "completions are cached in memory for the rest of this session"
    if kind == "full":
        return (f"slm-lsp: the disk holding the completion cache {directory} is full; {memory}. "
                "Free some space (or set cache.dir to another disk) and restart the server.")  # fmt: skip
    if kind == "corrupt" and aside is not None:
        return (f"slm-lsp: the completion cache database in {directory} is corrupt ({exc}); it was moved "
                f"to {aside} and a new, empty one is made at the next start; {memory}.")  # fmt: skip
    return (f"slm-lsp: the completion cache in {directory} failed ({exc}); {memory}. "
            f"Check that {directory} is writable and its disk healthy, or delete it, or set cache.dir.")  # fmt: skip


def move_aside(directory: Path, stamp: str | None = None) -> Path:
    """Rename ``cache.db`` (a file or a directory) to ``cache.db.corrupt-<stamp>`` and drop
    its journal files; earlier corrupt copies are deleted (the cache stays bounded)."""
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    db = directory / DB_NAME
    for old in directory.glob(DB_NAME + CORRUPT_SUFFIX + "*"):
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
    aside = directory / f"{DB_NAME}{CORRUPT_SUFFIX}{stamp}"
    os.replace(db, aside)
    for journal in ("-wal", "-shm", "-journal"):
        (directory / (DB_NAME + journal)).unlink(missing_ok=True)
    return aside


SQLITE_PAGES = 512  # sqlite's page cache for the disk cache (4 KiB pages: 2 MiB)


def _open(directory: Path, size_mb: int) -> Any:
    import diskcache

    # diskcache's defaults map 64 MB of the database and keep 32 MB of pages: the server's
    # memory grew with the cache file (the soak: +7 % in 10,000 requests on the fake model).
    # Lookups are one small row by key; sqlite's own 2 MB of pages serve them, no mapping.
    return diskcache.Cache(
        str(directory), size_limit=size_mb << 20, eviction_policy="least-recently-used", timeout=LOCK_WAIT_S,
        sqlite_mmap_size=0, sqlite_cache_size=SQLITE_PAGES,
    )  # fmt: skip


def open_disk(directory: Path, size_mb: int) -> tuple[Any | None, str]:
    """The disk cache in ``directory`` and a message for the user ("" when all went well).
    A corrupt database is moved aside and a new one made; None when there is no disk cache."""
    try:
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(directory))
        private_dir(directory)
        if not os.access(directory, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "not writable", str(directory))
    except OSError as exc:
        return None, unusable_message(directory, exc)
    try:
        return _open(directory, size_mb), ""
    except Exception as exc:
        kind, db = classify(exc), directory / DB_NAME
        if kind != "corrupt" and not (db.exists() and not db.is_file()):
            return None, failure_message(directory, exc, kind, None)
        first = exc
    try:
        aside = move_aside(directory)
        disk = _open(directory, size_mb)
    except Exception as exc:
        log.warning("could not rebuild the completion cache in %s: %s", directory, exc)
        return None, failure_message(directory, exc, classify(exc), None)
    return disk, (f"slm-lsp: the completion cache database {directory / DB_NAME} was unreadable ({first}); "
                  f"it was moved to {aside} and a new, empty cache started.")  # fmt: skip


class CompletionCache:
    """Memory LRU in front of an optional, bounded diskcache.

    ``get`` runs on the event loop's thread, ``put`` on the model thread; the
    memory LRU is locked, and the disk is dropped (one assignment, under the
    lock) at its first failure, after which only memory is used.
    """

    def __init__(
        self,
        identity: str,
        directory: Path | None,
        size_mb: int = 256,
        memory_entries: int = 2048,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        self.identity = identity
        self.directory = directory
        self.problem = ""  # the last disk problem told to the user
        self._on_problem = on_problem
        self._memory: OrderedDict[str, str] = OrderedDict()
        self._max = memory_entries
        self._lock = threading.Lock()
        self._disk = None
        if directory is not None:
            self._disk, problem = open_disk(directory, size_mb)
            if problem:
                self._report(problem)

    @property
    def on_disk(self) -> bool:
        return self._disk is not None

    def get(self, prompt: str) -> Hit | None:
        key = cache_key(self.identity, prompt)
        text = self._memory_get(key)
        if text is None and (disk := self._disk) is not None:
            text = self._disk_get(disk, key)
            if text is not None:
                self._memory_put(key, text)
        if text:
            return Hit(text, "cache")
        for k in range(1, min(TYPED_THROUGH_CHARS, len(prompt)) + 1):
            earlier = self._memory_get(cache_key(self.identity, prompt[:-k]))
            if earlier is not None and (rest := typed_through(prompt, len(prompt) - k, earlier)):
                return Hit(rest, "typed")
        return None

    def put(self, prompt: str, text: str) -> None:
        if not text:
            return
        key = cache_key(self.identity, prompt)
        self._memory_put(key, text)
        if (disk := self._disk) is not None:
            try:
                disk.set(key, text)
            except Exception as exc:  # a full or broken disk must not break completion
                self._disk_failed(disk, exc)

    def _memory_get(self, key: str) -> str | None:
        with self._lock:
            text = self._memory.get(key)
            if text is not None:
                self._memory.move_to_end(key)
            return text

    def _memory_put(self, key: str, text: str) -> None:
        with self._lock:
            self._memory[key] = text
            self._memory.move_to_end(key)
            while len(self._memory) > self._max:
                self._memory.popitem(last=False)

    def _disk_get(self, disk: Any, key: str) -> str | None:
        try:
            value = disk.get(key)
        except Exception as exc:
            self._disk_failed(disk, exc)
            return None
        return value if isinstance(value, str) else None

    def _disk_failed(self, disk: Any, exc: BaseException) -> None:
        """A disk error mid-session: a miss when the database is busy; otherwise stop using
        the disk (memory goes on), move a corrupt database aside, and tell the user once."""
        kind = classify(exc)
        if kind == "busy":
            return
        with self._lock:
            if self._disk is not disk:
                return  # another thread dropped it already (and told the user)
            self._disk = None
        log.warning("completion cache on disk off for this session (%s): %r", kind, exc)
        _quietly(disk.close)
        aside = None
        if kind == "corrupt" and self.directory is not None:
            try:
                aside = move_aside(self.directory)
            except OSError as err:
                log.warning("could not move the corrupt cache aside: %s", err)
        self._report(failure_message(self.directory or Path("?"), exc, kind, aside))

    def _report(self, message: str) -> None:
        log.warning("%s", message)
        self.problem = message
        if self._on_problem is not None:
            self._on_problem(message)

    def clear(self) -> None:
        with self._lock:
            self._memory.clear()
        if (disk := self._disk) is not None:
            try:
                disk.clear()
            except Exception as exc:
                self._disk_failed(disk, exc)

    def close(self) -> None:
        if (disk := self._disk) is not None:
            _quietly(disk.close)


def _quietly(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception:  # closing a broken database: nothing left to save
        log.debug("closing the disk cache failed", exc_info=True)
