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
from collections import OrderedDict
from pathlib import Path
from typing import Callable

from slm_lsp.config import IndexConfig
from slm_lsp.context import Context
from slm_lsp.engine import Document
from slm_lsp.index import WorkspaceIndex, default_store_dir
from slm_lsp.prompt import estimate_tokens
from slm_lsp.retrieval import Snippet, retrieve

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int, str], None]  # (begin|report|end, done, total, path)
EDIT_QUIET_S = 2.0  # an edited buffer is re-indexed after this long without edits
RECENT = 8
_CALLED = re.compile(r"\b[A-Za-z_]\w*(?=\s*[(.])")


class Workspace:
    def __init__(self, root: Path, config: IndexConfig, progress: Progress, store_dir: Path | None = None) -> None:
        self.root = root
        self.config = config
        self.index = WorkspaceIndex(root, store_dir or default_store_dir(), config)
        self.progress = progress
        self.ready = False
        self.done, self.total = 0, 0
        self.recent: list[str] = []  # relative paths, most recent first
        self._memo: OrderedDict[tuple, tuple[Snippet, ...]] = OrderedDict()
        self._timers: dict[str, threading.Timer] = {}
        self._cancel = threading.Event()
        self._lock = threading.Lock()

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
        for timer in list(self._timers.values()):
            timer.cancel()

    # -- keeping it current -------------------------------------------------
    def touched(self, doc: Document) -> None:
        """A document was opened or edited: it is recent; re-index it once edits pause."""
        with self._lock:
            if doc.path in self.recent:
                self.recent.remove(doc.path)
            self.recent.insert(0, doc.path)
            del self.recent[RECENT:]
            if (old := self._timers.pop(doc.uri, None)) is not None:
                old.cancel()
            timer = threading.Timer(EDIT_QUIET_S, self._update, args=(self.root / doc.path, doc.text))
            timer.daemon = True
            self._timers[doc.uri] = timer
        timer.start()

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
            recent=recent, document=doc.text, row=ctx.prefix_start_line + ctx.prefix.count("\n"),
            count_tokens=estimate_tokens,
        )  # fmt: skip
        with self._lock:
            self._memo[key] = found
            while len(self._memo) > 64:
                self._memo.popitem(last=False)
        return found
