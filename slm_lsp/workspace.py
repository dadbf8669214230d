"""The live workspace: its index built in the background, kept current, and
turned into snippets for the prompt.

Retrieval results are memoised on the text above the cursor line and below
it, so typing on one line reuses the same snippets: the prompt stays stable
and the model's KV cache survives keystrokes.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable

from slm_lsp.config import IndexConfig
from slm_lsp.context import Context
from slm_lsp.engine import Document
from slm_lsp.indexing.index import WorkspaceIndex, default_store_dir
from slm_lsp.prompt import estimate_tokens
from slm_lsp.retrieval import Snippet, retrieve

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int, str], None]  # (begin|report|end, done, total, path)
EDIT_QUIET_S = 2.0  # an edited buffer is re-indexed after this long without edits
RECENT = 8
_CALLED = re.compile(r"\b[A-Za-z_]\w*(?=\s*[(.])")


class Debouncer:
    """Runs `action(path, text)` for a key once it has had no new `put` for `quiet_s`; one thread for all keys."""

    def __init__(self, quiet_s: float, action: Callable[[Path, str | None], None]) -> None:
        self.quiet_s = quiet_s
        self.action = action
        self._pending: dict[str, tuple[float, Path, str]] = {}  # key -> (due, path, text)
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def put(self, key: str, path: Path, text: str) -> None:
        with self._wake:
            if self._closed:
                return
            self._pending[key] = (time.monotonic() + self.quiet_s, path, text)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="slm-reindex", daemon=True)
                self._thread.start()
            self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._pending.clear()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed:
                    now = time.monotonic()
                    due = [k for k, (at, _, _) in self._pending.items() if at <= now]
                    if due:
                        break
                    soonest = min((at for at, _, _ in self._pending.values()), default=now + 3600)
                    self._wake.wait(soonest - now)
                if self._closed:
                    return
                ready = [self._pending.pop(k) for k in due]
            for _, path, text in ready:
                self.action(path, text)


class Workspace:
    """One workspace's index and retrieval. Threads: ``start`` builds the index on its own
    thread ("slm-index"), re-indexing after edits runs on the debouncer's thread, and
    ``snippets`` runs on the event loop's; the index is safe to read while it is built, and
    ``_lock`` guards the memo and the recent files."""

    def __init__(
        self, root: Path, config: IndexConfig, progress: Progress, store_dir: Path | None = None,
        quiet_s: float = EDIT_QUIET_S,
    ) -> None:  # fmt: skip
        self.root = root
        self.config = config
        self.index = WorkspaceIndex(root, store_dir or default_store_dir(), config)
        self.progress = progress
        self.ready = False
        self.done, self.total = 0, 0
        self.recent: list[str] = []  # relative paths, most recent first
        self._memo: OrderedDict[tuple, tuple[Snippet, ...]] = OrderedDict()
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._edits = Debouncer(quiet_s, self._update)

    # -- building ----------------------------------------------------------
    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._build, name="slm-index", daemon=True)
        thread.start()
        return thread

    def _build(self) -> None:
        self.progress("begin", 0, 0, "")
        last = [0]

        def report(done: int, total: int, rel: str) -> None:
            self.done, self.total = done, total
            if done - last[0] >= 25 or done == total:
                last[0] = done
                self.progress("report", done, total, rel)

        try:
            result = self.index.build(progress=report, cancel=self._cancel)
            self.index.save()
            self.ready = not result.cancelled
            log.info("indexed %d files (%d read) in %.1fs", result.files, result.read, result.seconds)
        except Exception:  # a broken index means no retrieval, never a broken server
            log.exception("indexing %s failed", self.root)
        finally:
            self.progress("end", self.done, self.total, "")

    def close(self) -> None:
        self._cancel.set()
        self._edits.close()

    # -- keeping it current -------------------------------------------------
    def touched(self, doc: Document) -> None:
        """A document was opened or edited: it is recent; re-index it once edits pause."""
        with self._lock:
            if doc.path in self.recent:
                self.recent.remove(doc.path)
            self.recent.insert(0, doc.path)
            del self.recent[RECENT:]
        self._edits.put(doc.uri, self.root / doc.path, doc.text)

    def saved(self, path: Path) -> None:
        self._update(path, None)

    def changed(self, path: Path, deleted: bool) -> None:
        if deleted:
            self.index.remove_file(path)
        else:
            self._update(path, None)

    def _update(self, path: Path, text: str | None) -> None:
        try:
            self.index.update_file(path, text)
        except Exception:
            log.exception("re-indexing %s failed", path)

    # -- retrieval ----------------------------------------------------------
    def snippets(self, doc: Document, ctx: Context) -> tuple[Snippet, ...]:
        if not self.ready:
            return ()
        recent = tuple(p for p in self.recent if p != doc.path)
        # typing changes only line_prefix; of it, retrieval uses just `name(` and `name.`
        called = tuple(_CALLED.findall(ctx.line_prefix))
        key = (doc.path, ctx.prefix, ctx.suffix, ctx.line_suffix, recent, called)
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        found = retrieve(
            # retrieval expects the suffix to start with the rest of the cursor line
            self.index, doc.path, doc.language, ctx.prefix, ctx.line_prefix, ctx.line_suffix + "\n" + ctx.suffix,
            budget_tokens=self.config.retrieval_tokens, min_score=self.config.min_score,
            recent=recent, document=doc.text, row=ctx.row,
            count_tokens=estimate_tokens, root=doc.root,
        )  # fmt: skip
        with self._lock:
            self._memo[key] = found
            while len(self._memo) > 64:
                self._memo.popitem(last=False)
        return found
