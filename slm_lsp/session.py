"""One editor session: the server's state behind the handlers (config, model loading, cache, index, status).

Model loading and indexing run on background threads, so the server answers
from the first message on (with no items until the model is ready). Problems
reach the user through ``show`` (one message each) and the ``slm/status``
notification; nothing here knows about LSP types.

Faults degrade, they do not stop the server: a disk cache that cannot be used
leaves the memory cache (cache.py says which faults); a model that raises on a
request answers it empty and goes on, until ``MODEL_FAILURES`` calls in a row
fail (then the state is "error" until the model reloads); a reload that fails
keeps the model loaded before serving. Each is told once, through ``show`` and
the status message.

Threads: the engine (and so the model it runs) is the event loop's. The loader
thread only builds: a model, its template and caches; it hands them to the event
loop (``on_loop``), which swaps them in with one assignment (scheduler.py,
``Models``) and closes what they replace. Warm-up runs there too.

Over 300 lines because loading, faults, the toggle and the status all read and
replace the same state on the event loop's thread; splitting it would hand that
state between modules (the pure parts are in config, cache, scheduler and workspace).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable

from slm_lsp import gguf, logs, models, paths, templates
from slm_lsp.backend import Backend
from slm_lsp.fake_backend import FakeBackend
from slm_lsp.cache import CompletionCache
from slm_lsp.config import Config, read_toggle, toggle_path
from slm_lsp.engine import Completion, Document, Engine
from slm_lsp.templates import FimTemplate
from slm_lsp.workspace import Workspace

log = logging.getLogger(__name__)

MODEL_FAILURES = 3  # model calls failing in a row that turn completion off (state "error")

BackendFactory = Callable[[Config], tuple[Backend, FimTemplate, str]]


def default_backend_factory(config: Config) -> tuple[Backend, FimTemplate, str]:
    """The configured model (the bundled default when none is set), or the fake for tests."""
    if os.environ.get("SLM_LSP_BACKEND") == "fake":  # tests: SLM_LSP_FAKE_MS_PER_TOKEN makes it slow,
        ms = float(os.environ.get("SLM_LSP_FAKE_MS_PER_TOKEN", "0"))  # SLM_LSP_FAKE_FAIL=<text>: prompts
        fail_on = os.environ.get("SLM_LSP_FAKE_FAIL", "")  # containing it make the model raise
        return FakeBackend(ms_per_token=ms, fail_on=fail_on), templates.QWEN, "fake"
    from slm_lsp.llama_backend import LlamaBackend

    path = models.resolve(config.model.path or os.environ.get("SLM_LSP_MODEL", ""), out=None)
    template = templates.choose(gguf.read_metadata(path))
    adapter = Path(config.model.adapter).expanduser() if config.model.adapter else None
    if adapter is not None and not adapter.is_file():
        raise models.ModelError(f"LoRA adapter {adapter} does not exist. Fix model.adapter in your settings.")
    backend = LlamaBackend(
        path, template, adapter_path=adapter, n_ctx=config.model.n_ctx,
        n_threads=config.model.n_threads, n_batch=config.model.n_batch,
    )  # fmt: skip
    return backend, template, path.name + (f" + {adapter.name}" if adapter else "")


SETUP_ERRORS = (models.ModelError, gguf.GGUFError, templates.TemplateError)


def cache_dir(config: Config) -> Path:
    if config.cache.dir:
        return Path(config.cache.dir).expanduser()
    return paths.cache_home() / "completions"


def _no_progress(kind: str, done: int, total: int, path: str) -> None:
    pass


class Session:
    """Built and called on the event loop's thread; the loader thread reaches it only
    through ``on_loop`` (and ``show``/``notify``, which the server makes thread-safe).

    ``on_loop(fn)`` runs ``fn`` on the event loop's thread (the server's ``_call_soon``);
    the default runs it inline, for callers without an event loop."""

    def __init__(
        self,
        factory: BackendFactory,
        notify: Callable[[dict], None],
        show: Callable[[str], None],
        progress: Callable[[str, int, int, str], None] = _no_progress,
        on_loop: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.factory = factory
        self.notify = notify
        self.show = show
        self.progress = progress
        self.workspace: Workspace | None = None
        self.config = Config()
        self.root: Path | None = None
        self.engine = Engine(self.config, templates.QWEN)
        self.model_name = ""
        self.state = "loading"
        self.message = "loading the model"
        # "cache" | "model" -> a problem told once, while serving; any thread replaces it whole
        self.notices: dict[str, str] = {}
        self._model_broken = False  # the loaded model failed MODEL_FAILURES calls in a row
        self.engine.scheduler.on_model_error = lambda exc, n: self._post(self._model_failed, exc, n)
        self._loader: threading.Thread | None = None
        self._last_opened: Document | None = None
        self._on_loop = on_loop or (lambda fn: fn())
        self._closed = False

    # -- lifecycle -------------------------------------------------------
    def configure(self, config: Config, root: Path | None, problems: list[str]) -> None:
        self.root = root
        self.config = self._with_toggle(config)
        self.engine.config = self.config
        self.engine.repo_name = root.name if root else ""
        logs.set_level(self.config.log_level)
        self._report_problems(problems)

    def start(self) -> None:
        self._loader = threading.Thread(target=self._load, name="slm-load", daemon=True)
        self._loader.start()
        if self.workspace is None and self.root is not None and self.config.index.enable:
            self.start_index(self.root)

    def start_index(self, root: Path) -> None:
        def progress(kind: str, done: int, total: int, path: str) -> None:
            self.progress(kind, done, total, path)
            if kind == "end":
                self.notify(self.status())

        self.workspace = Workspace(root, self.config.index, progress)
        self.engine.retriever = self.workspace.snippets
        self.workspace.start()

    def _load(self) -> None:
        """On the loader thread: build the model part, then hand it to the event loop."""
        config = self.config
        try:
            backend, template, name = self.factory(config)
        except SETUP_ERRORS as exc:
            self._post(self._load_failed, str(exc))
            return
        except Exception as exc:  # llama.cpp errors, corrupt files, ...
            log.exception("loading the model failed")
            self._post(self._load_failed, f"slm-lsp could not load the model: {exc}")
            return
        cache = self._cache(backend.identity) if config.cache.enable else None
        self._post(self._loaded, backend, template, name, cache)
        if config.model.large_path:
            self._load_large(config)

    def _loaded(self, backend: Backend, template: FimTemplate, name: str, cache: CompletionCache | None) -> None:
        """On the event loop: swap the new model in (closing the one it replaces), warm it up."""
        if self._closed:
            return
        self.model_name = name
        self._notice("model", "")
        self._model_broken = False
        self.engine.set_model(backend, template, cache)
        if self.config.model.warmup:
            self.engine.warmup(self._last_opened)
        self._set_state("ready" if self.config.completion.enable else "disabled", "")

    def _load_large(self, config: Config) -> None:
        """The router's model for explicit requests; on failure explicit requests use the small one."""
        large = dataclasses.replace(config.model, path=config.model.large_path, adapter="")
        try:
            backend, _template, name = self.factory(dataclasses.replace(config, model=large))
        except Exception as exc:
            self.show(f"slm-lsp: the model for explicit requests could not be loaded ({exc}); using the default one.")
            return
        cache = CompletionCache(backend.identity, None, memory_entries=256) if config.cache.enable else None
        self._post(self._large_loaded, backend, name, cache)

    def _large_loaded(self, backend: Backend, name: str, cache: CompletionCache | None) -> None:
        if self._closed:
            return
        self.engine.set_large(backend, cache)
        self.model_name += f" (explicit: {name})"
        self.notify(self.status())

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        self._on_loop(lambda: fn(*args))

    def _cache(self, identity: str) -> CompletionCache:
        """Memory + disk; a disk that cannot be used leaves memory (cache.py), told once."""
        cc = self.config.cache
        self._notice("cache", "")
        try:
            return CompletionCache(identity, cache_dir(self.config), cc.size_mb, cc.memory_entries, self._cache_failed)
        except Exception as exc:  # cache.py catches the disk's faults; this is for the unforeseen
            log.exception("opening the completion cache failed")
            self._cache_failed(f"slm-lsp: the completion cache could not be opened ({exc}); memory only.")
            return CompletionCache(identity, None, memory_entries=cc.memory_entries)

    def _cache_failed(self, message: str) -> None:
        """From any thread: the disk cache is off for this session (the message says why)."""
        self._notice("cache", message)

    def _model_failed(self, exc: Exception, in_a_row: int) -> None:
        """On the event loop (posted from the model thread): a model call raised; the request was answered empty."""
        detail = f"{type(exc).__name__}: {exc}"
        if in_a_row >= MODEL_FAILURES and not self._model_broken:
            self._model_broken = True
            self._fail(
                f"slm-lsp: the model failed {in_a_row} times in a row ({detail}); completion is off until it "
                "reloads: restart the server or change a model setting (details in the log)."
            )
        elif in_a_row < MODEL_FAILURES and "model" not in self.notices:
            self._notice(
                "model", f"slm-lsp: the model failed on a request ({detail}); that request was answered empty "
                "and the model keeps serving (details in the log).",
            )  # fmt: skip

    def _load_failed(self, message: str) -> None:
        """A load that failed: with a model already serving (a reload), it goes on serving."""
        if self.engine.scheduler.models.worker is None or self._model_broken:
            self._fail(message)
            return
        self.engine.set_unavailable("")
        self._set_state("ready" if self.config.completion.enable else "disabled", "")
        self._notice("model", f"{message} Still serving the model loaded before ({self.model_name}).")

    def _notice(self, key: str, message: str) -> None:
        """Tell ``message`` once (and keep it in the status); "" forgets that key's notice."""
        self.notices = {**{k: v for k, v in self.notices.items() if k != key}, **({key: message} if message else {})}
        if message:
            self.show(message)
            self.notify(self.status())

    def _fail(self, message: str) -> None:
        self.engine.set_unavailable(message)
        self._set_state("error", message)
        self.show(message)

    def reconfigure(self, config: Config, problems: list[str]) -> None:
        old = self.config
        self.configure(config, self.root, problems)
        if (old.model, old.cache) != (self.config.model, self.config.cache) and self.state != "loading":
            self.engine.set_unavailable("reloading the model")
            self._set_state("loading", "reloading the model")
            self.start()
        elif self.state in ("ready", "disabled"):
            self._set_state("ready" if self.config.completion.enable else "disabled", "")

    def close(self) -> None:
        """On shutdown: stop the model thread; the process exit frees the model."""
        self._closed = True
        if self.workspace is not None:
            self.workspace.close()
        self.engine.close(free=False)

    # -- documents ---------------------------------------------------------
    def opened(self, doc: Document) -> None:
        self._last_opened = doc
        if self.workspace is not None:
            self.workspace.touched(doc)
        if self.config.model.warmup and not self.engine.unavailable:
            self.engine.warmup(doc)

    def edited(self, doc: Document | None, cursor: tuple[int, int] | None = None) -> None:
        """A change of ``doc`` ending at ``cursor`` (line, character in code points)."""
        if doc is None:
            return
        if self.workspace is not None:
            self.workspace.touched(doc)
        if cursor is not None:
            self.engine.edited(doc, *cursor)

    def closed(self, uri: str) -> None:
        self.engine.scheduler.closed(uri)

    def saved(self, doc: Document | None) -> None:
        if doc is not None and self.workspace is not None:
            self.workspace.saved(self.workspace.root / doc.path)

    def files_changed(self, changes: list[tuple[str | None, bool]]) -> None:
        if self.workspace is None:
            return
        for path, deleted in changes:
            if path:
                self.workspace.changed(Path(path), deleted)

    def record(self, completion: Completion) -> None:
        if completion.source != "none":
            self.notify(self.status())

    # -- toggle and status ------------------------------------------------
    def _toggle_file(self) -> Path:
        return toggle_path(self.root)

    def _with_toggle(self, config: Config) -> Config:
        enabled = read_toggle(self._toggle_file())
        if enabled is None:
            return config
        return dataclasses.replace(config, completion=dataclasses.replace(config.completion, enable=enabled))

    def clear_toggle(self) -> None:
        self._toggle_file().unlink(missing_ok=True)

    def toggle(self) -> bool:
        enabled = not self.config.completion.enable
        path = self._toggle_file()
        paths.private_dir(path.parent)
        path.write_text(json.dumps({"enabled": enabled}))
        self.config = self._with_toggle(self.config)
        self.engine.config = self.config
        if self.state in ("ready", "disabled"):
            self._set_state("ready" if enabled else "disabled", "")
        return enabled

    def status(self) -> dict[str, Any]:
        last = self.engine.last
        ws = self.workspace
        return {
            "state": self.state,
            "message": self.message or " ".join(self.notices.values()),
            "model": self.model_name,
            "adapter": self.config.model.adapter,
            "lastLatencyMs": round(last.latency_ms, 1) if last else None,
            "lastSource": last.source if last else None,
            "lastReason": last.reason if last else None,
            "index": {"done": ws.done, "total": ws.total, "ready": ws.ready} if ws else {"done": 0, "total": 0},
        }

    def _set_state(self, state: str, message: str) -> None:
        self.state, self.message = state, message
        self.notify(self.status())

    def _report_problems(self, problems: list[str]) -> None:
        if problems:
            self.show("slm-lsp settings: " + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))

