"""The completion engine: context → prompt → cache → model → post-processing.

No LSP here: the server converts positions and calls ``Engine.complete``.
The engine decides whether to complete, serves cache and typed-through hits
at once, and otherwise asks the model worker with a soft deadline (the reply)
and a later hard one (speculation: the rest of the line or block goes into the
cache for the next keystrokes). A new request preempts the one in flight.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Callable

from slm_lsp import autoimport
from slm_lsp import context as ctxmod
from slm_lsp.backend import Backend, Generation, Request, Worker
from slm_lsp.cache import CompletionCache
from slm_lsp.config import Config
from slm_lsp.context import Context, Mode
from slm_lsp.filecontext import FileContext, file_context
from slm_lsp.postprocess import postprocess
from slm_lsp.prompt import Prompt, PromptBudget, build_prompt, estimate_tokens
from slm_lsp.templates import FimTemplate

log = logging.getLogger(__name__)

GRACE_S = 0.015  # how long past the soft deadline the engine waits for the model's reply
SPECULATE_S = 4.0  # how long the model may go on after replying


@dataclass(frozen=True)
class Document:
    uri: str
    path: str  # workspace-relative posix path (never absolute in prompts or caches)
    text: str
    language: str  # canonical name (languages.py)
    version: int = 0
    language_id: str = ""  # the client's languageId, also accepted in completion.languages


@dataclass(frozen=True)
class Completion:
    text: str  # ghost text to insert at the cursor; "" for nothing
    source: str  # "cache" | "typed" | "joined" (a running generation) | "model" | "import" (autoimport) | "none"
    reason: str = ""  # why nothing, or how the model ended
    latency_ms: float = 0.0  # engine time, request to answer
    model_ms: float = 0.0  # of which the model took
    prompt_tokens: int = 0
    reused_tokens: int = 0
    mode: str = ""
    context_chars: int = 0  # characters of repository context in the prompt


def _consistent(generated: str, typed: str) -> bool:
    """The typed characters agree with the generation so far (one is a prefix of the other)."""
    return generated.startswith(typed) or typed.startswith(generated)


def _second_line_started(text: str) -> bool:
    return "\n" in text[1:] if text.startswith("\n") else "\n" in text


def should_stop_block(ctx: Context, max_lines: int) -> Callable[[str], bool]:
    """A cheap early stop for blocks: enough lines, or a line dedented out of the block."""
    base = len(ctx.indent)

    def stop(text: str) -> bool:
        lines = text.split("\n")
        if len(lines) > max_lines + 1:
            return True
        for line in lines[1:-1]:  # complete lines after the first
            if line.strip() and len(line) - len(line.lstrip()) < base:
                return True
        return False

    return stop


class Engine:
    def __init__(
        self,
        config: Config,
        template: FimTemplate,
        backend: Backend | None = None,
        cache: CompletionCache | None = None,
        retriever: Callable[[Document, Context], tuple] | None = None,
        repo_name: str = "",
    ) -> None:
        self.config = config
        self.template = template
        self.cache = cache
        self.retriever = retriever
        self._file_memo: dict[tuple, FileContext] = {}
        self.repo_name = repo_name
        self.worker: Worker | None = Worker(backend) if backend is not None else None
        self.unavailable = "" if backend is not None else "loading the model"  # why there is no model
        self.last: Completion | None = None
        self.large: tuple[Worker, CompletionCache | None] | None = None

    def set_backend(self, backend: Backend) -> None:
        old, self.worker = self.worker, Worker(backend)
        self.unavailable = ""
        if old is not None:
            old.close()

    def set_large(self, backend: Backend, cache: CompletionCache | None) -> None:
        """The router's second model: explicitly invoked requests go to it."""
        self.large = (Worker(backend, name="slm-model-large"), cache)

    def route(self, explicit: bool) -> tuple[Worker | None, CompletionCache | None]:
        """Automatic requests: the small, fast model. Explicit ones: the large one, when configured."""
        if explicit and self.large is not None:
            return self.large
        return self.worker, self.cache

    def set_unavailable(self, reason: str) -> None:
        self.unavailable = reason

    def enabled_for(self, doc: Document) -> str:
        """"" when the document may be completed, else the reason not to."""
        cfg = self.config.completion
        if not cfg.enable:
            return "disabled"
        if cfg.languages and doc.language not in cfg.languages and doc.language_id not in cfg.languages:
            return "language-disabled"
        if any(fnmatch.fnmatch(doc.path, pat) for pat in cfg.exclude):
            return "excluded"
        return ""

    def prepare(self, doc: Document, line: int, character: int, explicit: bool, tree=None) -> tuple[Context, Prompt]:
        cc = self.config.context
        ctx = ctxmod.build_context(
            doc.text, line, character, doc.language, prefix_lines=cc.prefix_lines,
            suffix_lines=cc.suffix_lines, window_step=cc.window_step, explicit=explicit, tree=tree,
        )  # fmt: skip
        snippets: tuple = ()
        if self.retriever is not None and ctx.mode is not Mode.NONE:
            try:
                snippets = self.retriever(doc, ctx)
            except Exception:  # retrieval is an extra: never fail a completion on it
                log.exception("retrieval failed")
        file = self._file_context(doc, ctx) if cc.file_context and ctx.mode is not Mode.NONE else FileContext()
        prompt = build_prompt(
            self.template, ctx, path=doc.path, repo_name=self.repo_name, snippets=snippets, file=file,
            budget=PromptBudget(),
        )  # fmt: skip
        return ctx, prompt

    def _file_context(self, doc: Document, ctx: Context) -> FileContext:
        """The file beyond the window; memoised on the window's text, so typing on a line reuses it."""
        parts_tokens = self.config.context.file_parts_tokens
        key = (doc.uri, ctx.prefix_start_line, ctx.prefix, ctx.suffix, parts_tokens)
        if (found := self._file_memo.get(key)) is not None:
            return found
        row = ctx.prefix_start_line + ctx.prefix.count("\n")
        window = (ctx.prefix_start_line, row + ctx.suffix.count("\n") + 1)
        try:
            found = file_context(
                ctx.language, doc.text, row, window, parts_tokens=parts_tokens,
                count_tokens=estimate_tokens,
            )  # fmt: skip
        except Exception:  # an extra, like retrieval: never fail a completion on it
            log.exception("file context failed")
            found = FileContext()
        self._file_memo[key] = found
        while len(self._file_memo) > 32:
            self._file_memo.pop(next(iter(self._file_memo)))
        return found

    async def complete(self, doc: Document, line: int, character: int, *, explicit: bool = False, tree=None) -> Completion:
        t0 = time.monotonic()
        if reason := self.enabled_for(doc):
            return self._done(Completion("", "none", reason), t0)
        ctx, prompt = self.prepare(doc, line, character, explicit, tree)
        if ctx.mode is Mode.NONE:
            return self._done(Completion("", "none", ctx.reason, mode=ctx.mode.value), t0)
        if (line := self._import_line(doc, ctx, prompt)) is not None:
            completion = Completion(line, "import", "missing import", mode=ctx.mode.value, context_chars=prompt.context_chars)
            return self._done(completion, t0)
        max_lines = self.config.completion.max_lines
        worker, cache = self.route(explicit)
        if cache is not None and (hit := cache.get(prompt.text)) is not None:
            text = postprocess(hit.text, ctx, max_lines=max_lines)
            return self._done(Completion(text, hit.source, mode=ctx.mode.value), t0)
        if worker is None or self.unavailable:
            return self._done(Completion("", "none", self.unavailable or "no model"), t0)
        if worker is not self.worker and self.worker is not None:
            self.worker.cancel_all()  # two models must not share the cores
        joined = await self._join_in_flight(worker, prompt.text, explicit, t0)
        gen = joined or await self._ask_model(ctx, prompt, explicit, t0, worker, cache)
        extra = {"context_chars": prompt.context_chars}
        log.debug("model %s: %r prompt=%d reused=%d %.0f+%.0f ms", gen.stop_reason, gen.text[:40],
                  gen.prompt_tokens, gen.reused_tokens, gen.prompt_ms, gen.generate_ms)  # fmt: skip
        text = postprocess(gen.text, ctx, max_lines=max_lines) if gen.text else ""
        result = Completion(
            text, "joined" if joined else "model", gen.stop_reason, model_ms=gen.prompt_ms + gen.generate_ms,
            prompt_tokens=gen.prompt_tokens, reused_tokens=gen.reused_tokens, mode=ctx.mode.value, **extra,
        )  # fmt: skip
        return self._done(result, t0)

    def _import_line(self, doc: Document, ctx: Context, prompt: Prompt) -> str | None:
        """In the import block: the statement the workspace's import hints make certain (no model)."""
        hints = sorted((s for s in prompt.snippets if s.kind == "import"), key=lambda s: -s.score)
        if not hints:
            return None
        statements = [line for s in hints for line in s.text.split("\n") if line]
        row = ctx.prefix_start_line + ctx.prefix.count("\n")
        try:
            return autoimport.suggest(doc.language, doc.text, row, ctx.line_prefix, ctx.line_suffix, statements)
        except Exception:  # an extra, like retrieval: the model answers instead
            log.exception("autoimport failed")
            return None

    async def _join_in_flight(self, worker: Worker, prompt: str, explicit: bool, t0: float) -> Generation | None:
        """Typed-through for a generation still running: when this prompt is the running
        job's prompt plus characters the model has generated (or is about to), wait for
        that job instead of cancelling it and starting again."""
        job = worker.current()
        if job is None or not job.request.joinable or not prompt.startswith(job.request.prompt):
            return None
        typed = prompt[len(job.request.prompt) :]
        if not _consistent(job.partial, typed):
            return None
        budget = (self.config.completion.explicit_deadline_ms if explicit else self.config.completion.deadline_ms) / 1000
        remaining = t0 + budget - time.monotonic()
        if remaining > 0 and not job.result.done():
            await asyncio.wait([asyncio.wrap_future(job.result)], timeout=remaining)
        final = job.result.result() if job.result.done() and job.result.exception() is None else None
        text = final.text if final is not None else job.partial
        if final is not None and len(text) <= len(typed):
            return None  # it ended before reaching what was typed: ask anew
        if not text.startswith(typed):
            return None if not _consistent(text, typed) else Generation("", "deadline")
        reason = final.stop_reason if final is not None else "deadline"
        return Generation(text[len(typed) :], reason)

    def request_for(self, ctx: Context, prompt: Prompt, explicit: bool, t0: float) -> Request:
        cfg = self.config.completion
        budget = (cfg.explicit_deadline_ms if explicit else cfg.deadline_ms) / 1000
        reply_at = t0 + budget
        stop_at = reply_at + (SPECULATE_S if cfg.speculate and not explicit else 0)
        block = ctx.mode is Mode.BLOCK
        return Request(
            prompt.text,
            max_tokens=cfg.max_tokens if block else min(cfg.max_tokens, 32),
            reply_at=reply_at,
            stop_at=stop_at,
            stop=("\n\n\n",) if block else ("\n",),
            should_stop=should_stop_block(ctx, cfg.max_lines) if block else None,
        )

    async def _ask_model(
        self, ctx: Context, prompt: Prompt, explicit: bool, t0: float, worker: Worker, cache: CompletionCache | None
    ) -> Generation:
        request = self.request_for(ctx, prompt, explicit, t0)
        reply, result, _cancel = worker.submit(request)
        speculate = self.config.completion.speculate and ctx.mode is Mode.LINE and worker is self.worker
        result.add_done_callback(lambda fut: self._store(prompt.text, fut, speculate, cache))
        timeout = max(0.0, request.reply_at + GRACE_S - time.monotonic())
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(reply)), timeout)
        except asyncio.TimeoutError:
            return Generation("", "deadline")

    def _store(self, prompt: str, fut: Future, speculate: bool, cache: CompletionCache | None) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        gen: Generation = fut.result()
        log.debug("final %s: %r prompt=%d reused=%d %.0f+%.0f ms", gen.stop_reason, gen.text[:40],
                  gen.prompt_tokens, gen.reused_tokens, gen.prompt_ms, gen.generate_ms)  # fmt: skip
        if cache is None:
            return
        if gen.stop_reason in ("stop", "length") and gen.text:
            cache.put(prompt, gen.text)
            if speculate and gen.stop_reason == "stop":
                self._speculate_next_line(prompt + gen.text)

    def _speculate_next_line(self, prompt: str) -> None:
        """Generate the line after an answered one, in the background, for the cache:
        when the user accepts and presses Enter, the next suggestion is a typed-through hit."""
        if self.worker is None or self.unavailable:
            return
        request = Request(
            prompt, max_tokens=self.config.completion.max_tokens, stop_at=time.monotonic() + SPECULATE_S,
            heal=False, should_stop=_second_line_started, joinable=False,
        )  # fmt: skip
        _reply, result, _cancel = self.worker.submit(request, preempt=False)
        result.add_done_callback(lambda fut: self._store_next_line(prompt, fut))

    def _store_next_line(self, prompt: str, fut: Future) -> None:
        if self.cache is None or fut.cancelled() or fut.exception() is not None:
            return
        gen: Generation = fut.result()
        text = gen.text
        if gen.stop_reason in ("stop", "length") and text.startswith("\n") and text.strip():
            cut = text.find("\n", 1)
            self.cache.put(prompt, text if cut < 0 else text[:cut])

    def _done(self, completion: Completion, t0: float) -> Completion:
        completion = _with_latency(completion, (time.monotonic() - t0) * 1000)
        self.last = completion
        return completion

    def warmup(self, doc: Document | None = None) -> None:
        """Evaluate a prompt in the background so the first real request is warm."""
        if self.worker is None or self.unavailable:
            return
        if doc is None or self.enabled_for(doc):
            prompt = self.template.fim("", "\n")
        else:
            line = min(doc.text.count("\n"), self.config.context.prefix_lines)
            _, p = self.prepare(doc, line, 0, explicit=True)
            prompt = p.text
        self.worker.submit(Request(prompt, max_tokens=1, joinable=False), preempt=False)

    def close(self, free: bool = True) -> None:
        if self.worker is not None:
            self.worker.close(free=free)
        if self.large is not None:
            self.large[0].close(free=free)
        if self.cache is not None:
            self.cache.close()


def _with_latency(c: Completion, ms: float) -> Completion:
    return replace(c, latency_ms=ms)
