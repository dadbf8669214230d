"""The model boundary: the ``Backend`` protocol and its worker thread (the fake is ``fake_backend``).

A backend completes one prompt at a time, synchronously, on the single model
thread owned by ``Worker`` (never pygls's pool: the model must not compete with
the thread reading stdin). Between tokens it checks the cancel event and the
deadlines:

- ``reply_at``: the soft deadline. When it passes, the backend calls
  ``on_reply`` once with what it has, so the editor gets an answer in time,
  and keeps generating (speculative continuation) until
- ``stop_at``: the hard deadline, ``max_tokens``, a stop condition, or a cancel.

A cold request (its prompt needs more than ``cold_tokens`` tokens evaluated
beyond what the KV cache holds) with a ``fallback`` prompt is answered first
from the fallback (the local window alone, evaluated where it leaves the main
KV cache alone): that answer goes to ``on_reply``; then the full prompt is
evaluated, without generating, until done, cancelled or ``stop_at``, so the
following keystrokes find it warm. The result is the fallback's generation.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Protocol


log = logging.getLogger(__name__)

MODEL_ERROR = "model error"  # the stop reason of a request whose backend raised


@dataclass(frozen=True)
class Request:
    prompt: str
    max_tokens: int = 48
    reply_at: float = float("inf")  # time.monotonic() of the soft deadline
    stop_at: float = float("inf")  # time.monotonic() of the hard deadline
    stop: tuple[str, ...] = ()  # generation ends where any of these appear (cut before it)
    heal: bool = True  # token healing: re-generate the prompt's last token constrained to its text
    should_stop: Callable[[str], bool] | None = field(default=None, compare=False)  # e.g. block ended
    on_token: Callable[[str], None] | None = field(default=None, compare=False)  # the text so far, per token
    joinable: bool = True  # a later request may wait for this one (False: warm-up, speculation)
    fallback: str = ""  # a short prompt answering first when this one is cold ("" : none)
    cold_tokens: int = 0  # more prompt tokens to evaluate than this: cold (0: never)


@dataclass(frozen=True)
class Generation:
    text: str
    stop_reason: str  # "stop" | "length" | "deadline" | "cancelled" | "error" (no model) | MODEL_ERROR
    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens whose KV state was already there
    generated_tokens: int = 0
    prompt_ms: float = 0.0
    generate_ms: float = 0.0
    fallback: bool = False  # answered from the request's short fallback prompt


class Backend(Protocol):
    """A code model. ``identity`` goes into cache keys (model + adapter hashes)."""

    identity: str

    def complete(
        self, request: Request, cancel: threading.Event, on_reply: Callable[[Generation], None] | None = None
    ) -> Generation: ...

    def close(self) -> None: ...


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """The text before the first stop string, and whether one was found."""
    cut = min((i for s in stops if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


@dataclass
class Job:
    """A request on the model thread; ``partial`` is what it has generated so far."""

    request: Request
    cancel: threading.Event
    result: Future
    reply: Future
    partial: str = ""


class Worker:
    """Runs backend calls one at a time on a dedicated thread.

    ``submit`` returns two futures: the reply (at the soft deadline or the end)
    and the final generation. A new submission cancels the job in flight: the
    newest request wins.

    A backend that raises does not stop the thread: ``on_error(exc, in_a_row)``
    is called on the model thread with the number of backend calls that failed
    in a row (a call that returns resets it), then the job's reply is an empty
    generation with ``MODEL_ERROR`` and its result future holds the exception.
    """

    def __init__(
        self, backend: Backend, name: str = "slm-model", on_error: Callable[[Exception, int], None] | None = None
    ) -> None:
        self.backend = backend
        self.on_error = on_error
        self.failures = 0  # backend calls that raised in a row (model thread only)
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._current: Job | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, request: Request, preempt: bool = True) -> tuple[Future, Future, threading.Event]:
        job = Job(request, threading.Event(), Future(), Future())
        job.request = dataclasses.replace(request, on_token=lambda text: setattr(job, "partial", text))
        with self._lock:
            if preempt:
                self._cancel_all_locked()
            self._queue.put(job)
        return job.reply, job.result, job.cancel

    def current(self) -> Job | None:
        """The job running now, if any (for joining it instead of starting anew)."""
        with self._lock:
            job = self._current
        return job if job is not None and not job.cancel.is_set() and not job.result.done() else None

    def idle(self) -> bool:
        """Nothing running and nothing queued."""
        with self._lock:
            return self._current is None and self._queue.empty()

    def cancel_all(self) -> None:
        with self._lock:
            self._cancel_all_locked()

    def _cancel_all_locked(self) -> None:
        if self._current is not None:
            self._current.cancel.set()
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.cancel.set()
                gen = Generation("", "cancelled")
                job.reply.set_result(gen)
                job.result.set_result(gen)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            with self._lock:
                self._current = job
            try:
                self._execute(job)
            except Exception:  # never let the model thread die: it serves every later request
                log.exception("the model thread failed on a job")
            with self._lock:
                self._current = None

    def _execute(self, job: Job) -> None:
        def on_reply(gen: Generation) -> None:
            if not job.reply.done():
                job.reply.set_result(gen)

        if job.cancel.is_set():
            gen = Generation("", "cancelled")
        else:
            try:
                gen = self.backend.complete(job.request, job.cancel, on_reply)
            except Exception as exc:  # the worker must survive anything a backend does
                self._failed(job, exc, on_reply)
                return
            self.failures = 0
        on_reply(gen)
        job.result.set_result(gen)

    def _failed(self, job: Job, exc: Exception, on_reply: Callable[[Generation], None]) -> None:
        """The backend raised: count the failure, tell ``on_error`` (before the answer, so
        whoever gets it sees the state that follows), answer the job empty."""
        self.failures += 1
        log.error("the model failed (%d in a row): %r", self.failures, exc, exc_info=exc)
        if self.on_error is not None:
            try:
                self.on_error(exc, self.failures)
            except Exception:
                log.exception("reporting a model failure failed")
        on_reply(Generation("", MODEL_ERROR))
        if not job.result.done():
            job.result.set_exception(exc)

    def close(self, free: bool = True) -> None:
        """Stop the thread; free the model only once the thread is gone (freeing it
        under a running decode crashes llama.cpp)."""
        self.cancel_all()
        self._queue.put(None)
        self._thread.join(timeout=10)
        if free and not self._thread.is_alive():
            self.backend.close()
