"""Which work runs on the model thread, and when: requests, joins, speculation, prefill.

One model, one thread (``backend.Worker``). The engine plans a request (context,
prompt, cache lookup); this module runs it and everything around it:

- **request**: the newest wins (it preempts whatever runs, at the next batch or
  token boundary) and is answered when its suggestion is complete, bounded by
  the request's hard deadline (``completion.deadlineMs``), not empty at a short
  deadline. It is answered empty the moment it is superseded: by a newer
  request for the same document, or by an edit of that document. So a late
  answer never lands at an old position, whatever the editor does with it.
- **join**: a request whose prompt is the running job's prompt plus text the
  job has generated (the user typed what the model is writing) waits for that
  job's answer instead of restarting it.
- **cold start**: a request whose prompt is far from what the KV cache holds
  carries a short fallback prompt (the local window); the backend answers from
  it first (the reply) and goes on evaluating the full prompt (the job), which
  the next keystrokes then find warm (backend.py says how).
- **speculation**: after a line answer, the next line, for the cache.
- **prefill**: after an edit, when no request followed it within
  ``PREFILL_DELAY_S`` and the model is idle, the request the next pause at the
  edit's location will need is run ahead (it generates too; its answer goes to
  the cache, and a request for that prompt joins it). After ``didOpen``, the
  prompt at the last edit in that file, else near the top, is evaluated.
  Prefill and speculation never preempt; every request preempts them.

Nothing is cached (memory or disk) for a prompt or a text that held a
credential (``secrets.cacheable``).

Threads: the public methods run on the event loop's thread (``set_models`` and
``set_large`` too: the session builds a model on its loader thread and hands it
to the event loop to swap in). Done-callbacks of
the model's futures (``_store``, ``_store_next_line``) run on the model thread;
they touch only the cache (locked) and ``Worker.submit`` (locked).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable

from slm_lsp.backend import MODEL_ERROR, Backend, Generation, Request, Worker
from slm_lsp.cache import CompletionCache
from slm_lsp.secrets import cacheable

log = logging.getLogger(__name__)

PREFILL_DELAY_S = 0.12  # an edit with no request this soon after it: run the next request ahead
WAIT_GRACE_S = 1.0  # past the hard deadline, how long to wait for the model to notice it (one batch)
SPECULATE_S = 4.0  # how long the next-line speculation may run


@dataclass(frozen=True)
class Models:
    """What the model thread runs on; replaced whole when a model (re)loads."""

    worker: Worker | None = None
    cache: CompletionCache | None = None
    large: Worker | None = None  # the router's model for explicit requests
    large_cache: CompletionCache | None = None


def consistent(generated: str, typed: str) -> bool:
    """The typed characters agree with the generation so far (one is a prefix of the other)."""
    return generated.startswith(typed) or typed.startswith(generated)


def second_line_started(text: str) -> bool:
    return "\n" in text[1:] if text.startswith("\n") else "\n" in text


class Scheduler:
    """Runs on the event loop's thread; the models it hands work to run on their own
    threads (``Worker``), and ``models`` is replaced whole, never changed in place.
    ``on_model_error(exc, in_a_row)``: a backend raised (called on the model thread;
    see ``Worker``); set before ``set_models`` to hear about it."""

    def __init__(self, backend: Backend | None = None, cache: CompletionCache | None = None) -> None:
        self.on_model_error: Callable[[Exception, int], None] | None = None
        self.models = Models(self._worker(backend) if backend is not None else None, cache)
        self._pending: dict[str, asyncio.Event] = {}  # uri -> set when that request is superseded
        self._prefill: dict[str, asyncio.TimerHandle] = {}  # uri -> the prefill waiting for quiet
        self.last_edit: dict[str, tuple[int, int]] = {}  # uri -> (line, character) of its latest edit

    # -- models --------------------------------------------------------------
    def set_models(self, backend: Backend, cache: CompletionCache | None) -> None:
        """A newly loaded model: swap it in whole, then close what it replaces."""
        old, self.models = self.models, Models(self._worker(backend), cache)
        _close(old)

    def set_large(self, backend: Backend, cache: CompletionCache | None) -> None:
        """The router's model: swap it in whole, then close the large worker and cache it replaces."""
        old = self.models
        self.models = Models(old.worker, old.cache, self._worker(backend, "slm-model-large"), cache)
        _close(Models(large=old.large, large_cache=old.large_cache))

    def _worker(self, backend: Backend, name: str = "slm-model") -> Worker:
        return Worker(backend, name=name, on_error=self._model_error)

    def _model_error(self, exc: Exception, in_a_row: int) -> None:
        if self.on_model_error is not None:
            self.on_model_error(exc, in_a_row)

    def route(self, explicit: bool) -> tuple[Worker | None, CompletionCache | None]:
        """Automatic requests: the small, fast model. Explicit ones: the large one, when loaded."""
        m = self.models
        if explicit and m.large is not None:
            return m.large, m.large_cache
        return m.worker, m.cache

    # -- requests ------------------------------------------------------------
    def begin(self, uri: str) -> asyncio.Event:
        """A request for ``uri`` starts: the one before it is superseded, prefill waits."""
        self.supersede(uri)
        if (handle := self._prefill.pop(uri, None)) is not None:
            handle.cancel()
        self._pending[uri] = ticket = asyncio.Event()
        return ticket

    def end(self, uri: str, ticket: asyncio.Event) -> None:
        if self._pending.get(uri) is ticket:
            del self._pending[uri]

    def supersede(self, uri: str) -> None:
        if (ticket := self._pending.pop(uri, None)) is not None:
            ticket.set()

    async def answer(
        self, request: Request, ticket: asyncio.Event, explicit: bool, speculate: bool
    ) -> tuple[Generation | None, bool]:
        """Run ``request`` (or join the job already writing it) and wait for the whole
        suggestion. Returns (generation, joined); the generation is None when the
        request was superseded before the model finished."""
        worker, cache = self.route(explicit)
        if worker is None:
            return Generation("", "error"), False
        main = self.models.worker
        if worker is not main and main is not None:
            main.cancel_all()  # two models must not share the cores
        joined = await self._join(worker, request, ticket)
        if joined is not None:
            return joined, True
        if ticket.is_set():
            return None, False
        reply, result, _cancel = worker.submit(request)
        speculate = speculate and worker is main
        result.add_done_callback(lambda fut: self._store(request.prompt, fut, speculate, cache))
        # the reply: the whole suggestion, or a cold request's first answer from its short prompt
        if not await _wait(reply, ticket, request.stop_at):
            return (None if ticket.is_set() else Generation("", "deadline")), False
        return _generation(reply), False

    async def _join(self, worker: Worker, request: Request, ticket: asyncio.Event) -> Generation | None:
        """Typed-through for a generation still running: wait for that job instead of
        cancelling it, when this prompt is its prompt plus what it generated."""
        job = worker.current()
        if job is None or not job.request.joinable or not request.prompt.startswith(job.request.prompt):
            return None
        typed = request.prompt[len(job.request.prompt) :]
        if not consistent(job.partial, typed):
            return None
        await _wait(job.reply, ticket, min(request.stop_at, job.request.stop_at))
        if ticket.is_set():
            return Generation("", "cancelled")  # superseded: the caller answers nothing
        final = _generation(job.reply) if job.reply.done() else None
        if final is None or final.stop_reason in ("cancelled", "error", MODEL_ERROR) or len(final.text) <= len(typed):
            return None  # it ended before reaching what was typed: ask anew
        if not final.text.startswith(typed):
            return None
        return Generation(final.text[len(typed) :], final.stop_reason)

    # -- the cache behind the model ------------------------------------------
    def _store(self, prompt: str, fut: Future, speculate: bool, cache: CompletionCache | None) -> None:
        gen = _generation(fut)
        if gen is None or cache is None:
            return
        log.debug("final %s: %r prompt=%d reused=%d %.0f+%.0f ms", gen.stop_reason, gen.text[:40],
                  gen.prompt_tokens, gen.reused_tokens, gen.prompt_ms, gen.generate_ms)  # fmt: skip
        if gen.stop_reason in ("stop", "length") and gen.text and cacheable(prompt, gen.text):
            cache.put(prompt, gen.text)
            if speculate and gen.stop_reason == "stop":
                self._speculate_next_line(prompt + gen.text, cache)

    def _speculate_next_line(self, prompt: str, cache: CompletionCache, max_tokens: int = 48) -> None:
        """The line after an answered one, in the background, for the cache: accepting
        and pressing Enter is then a typed-through hit."""
        worker = self.models.worker
        if worker is None:
            return
        request = Request(
            prompt, max_tokens=max_tokens, stop_at=time.monotonic() + SPECULATE_S,
            heal=False, should_stop=second_line_started, joinable=False,
        )  # fmt: skip
        _reply, result, _cancel = worker.submit(request, preempt=False)
        result.add_done_callback(lambda fut: _store_next_line(prompt, fut, cache))

    # -- prefill -------------------------------------------------------------
    def edited(self, uri: str, line: int, character: int, plan: Callable[[int, int], Request | None]) -> None:
        """An edit of ``uri`` ending at (line, character): supersede its pending request,
        and once no request followed for a moment, run ``plan``'s request ahead."""
        self.supersede(uri)
        self.last_edit[uri] = (line, character)
        if (handle := self._prefill.pop(uri, None)) is not None:
            handle.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a synchronous caller): no prefill
            return
        self._prefill[uri] = loop.call_later(PREFILL_DELAY_S, self._run_prefill, uri, line, character, plan)

    def _run_prefill(self, uri: str, line: int, character: int, plan: Callable[[int, int], Request | None]) -> None:
        self._prefill.pop(uri, None)
        worker = self.models.worker
        if worker is None or not worker.idle():
            return
        try:
            request = plan(line, character)
        except Exception:  # prefill is an extra: never let it break the server
            log.exception("planning a prefill failed")
            return
        if request is not None:
            _reply, result, _cancel = worker.submit(request, preempt=False)
            cache = self.models.cache
            result.add_done_callback(lambda fut: self._store(request.prompt, fut, False, cache))

    def prefill_now(self, request: Request) -> None:
        """Evaluate a prompt when the model is free (after didOpen); never preempts."""
        worker = self.models.worker
        if worker is not None:
            worker.submit(request, preempt=False)

    def closed(self, uri: str) -> None:
        self.supersede(uri)
        if (handle := self._prefill.pop(uri, None)) is not None:
            handle.cancel()

    def close(self, free: bool = True) -> None:
        for handle in self._prefill.values():
            handle.cancel()
        self._prefill.clear()
        _close(self.models, free)


async def _wait(fut: Future, ticket: asyncio.Event, stop_at: float) -> bool:
    """Wait for the model's future until done, superseded, or past the hard deadline
    (plus the time the model takes to notice it). True when the future is done."""
    if fut.done():
        return True
    timeout = max(0.0, stop_at - time.monotonic()) + WAIT_GRACE_S if stop_at != float("inf") else None
    superseded = asyncio.ensure_future(ticket.wait())
    try:  # asyncio.wait never cancels what it waits for: the model job lives on (joins, cache)
        await asyncio.wait([asyncio.wrap_future(fut), superseded], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        superseded.cancel()
    return fut.done()


def _generation(fut: Future) -> Generation | None:
    """The model's answer; None while it runs; empty with MODEL_ERROR when the backend raised."""
    if not fut.done():
        return None
    if fut.cancelled():
        return Generation("", "cancelled")
    return Generation("", MODEL_ERROR) if fut.exception() is not None else fut.result()


def _store_next_line(prompt: str, fut: Future, cache: CompletionCache) -> None:
    gen = _generation(fut)
    if gen is None or gen.stop_reason not in ("stop", "length"):
        return
    text = gen.text
    if text.startswith("\n") and text.strip() and cacheable(prompt, text):
        cut = text.find("\n", 1)
        cache.put(prompt, text if cut < 0 else text[:cut])


def _close(models: Models, free: bool = True) -> None:
    for worker in (models.worker, models.large):
        if worker is not None:
            worker.close(free=free)
    for cache in (models.cache, models.large_cache):
        if cache is not None:
            cache.close()
