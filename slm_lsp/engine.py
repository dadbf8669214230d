"""The completion engine: context → prompt → cache → model → post-processing.

No LSP here: the server converts positions and calls ``Engine.complete``.
The engine plans: whether to complete, the context and prompt, cache and
typed-through hits (answered at once), autoimport lines, the model request,
and the post-processing of its answer. Running the model (newest request wins,
answered when ready, joins, speculation, prefill) is the scheduler's
(scheduler.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable

from slm_lsp import autoimport, secrets
from slm_lsp import context as ctxmod
from slm_lsp.backend import Backend, Request
from slm_lsp.cache import CompletionCache
from slm_lsp.config import Config
from slm_lsp.context import Context, Mode
from slm_lsp.context.file import FileContext, file_context
from slm_lsp.postprocess import postprocess
from slm_lsp.prompt import Prompt, PromptBudget, build_prompt, estimate_tokens
from slm_lsp.scheduler import Scheduler
from slm_lsp.templates import FimTemplate

if TYPE_CHECKING:
    import tree_sitter

log = logging.getLogger(__name__)

SHORT_BUDGET = PromptBudget(prefix_tokens=96, suffix_tokens=32, header_tokens=0)  # the cold-start prompt

@dataclass(frozen=True)
class Document:
    uri: str
    path: str  # workspace-relative posix path (never absolute in prompts or caches)
    text: str
    language: str  # canonical name (languages.py)
    version: int = 0
    language_id: str = ""  # the client's languageId, also accepted in completion.languages
    tree: tree_sitter.Tree | None = field(default=None, compare=False, repr=False)  # of `text`; None: parsed on use

    @property
    def root(self) -> tree_sitter.Node | None:
        return self.tree.root_node if self.tree is not None else None


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
    fallback: bool = False  # a cold request answered from the local window alone


def should_stop_block(ctx: Context, max_lines: int) -> Callable[[str], bool]:
    """A cheap early stop for blocks: enough lines, or a line dedented out of the block (as
    soon as its first character shows: its indentation is known, and the line is cut)."""
    base = len(ctx.indent)

    def stop(text: str) -> bool:
        lines = text.split("\n")
        if len(lines) > max_lines + 1:
            return True
        for line in lines[1:]:  # the lines after the first, the one being written included
            if line.strip() and len(line) - len(line.lstrip()) < base:
                return True
        return False

    return stop


class Engine:
    """Plans requests; ``scheduler`` runs them. Runs on the event loop's thread."""

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
        self.retriever = retriever
        self._file_memo: dict[tuple, FileContext] = {}
        self.repo_name = repo_name
        self.scheduler = Scheduler(backend, cache)
        self.unavailable = "" if backend is not None else "loading the model"  # why there is no model
        self.last: Completion | None = None

    @property
    def cache(self) -> CompletionCache | None:
        return self.scheduler.models.cache

    def set_model(self, backend: Backend, template: FimTemplate, cache: CompletionCache | None) -> None:
        """A loaded model with its template and cache, swapped in together."""
        self.template = template
        self.scheduler.set_models(backend, cache)
        self.unavailable = ""

    def set_large(self, backend: Backend, cache: CompletionCache | None) -> None:
        """The router's second model: explicitly invoked requests go to it."""
        self.scheduler.set_large(backend, cache)

    def set_unavailable(self, reason: str) -> None:
        self.unavailable = reason

    def enabled_for(self, doc: Document) -> str:
        """"" when the document may be completed, else the reason not to. The one gate
        of completion, prefill and warm-up: a secret file never reaches the model."""
        cfg = self.config.completion
        if not cfg.enable:
            return "disabled"
        if reason := secrets.document_reason(doc.path, doc.uri, cfg.exclude):
            return reason
        if cfg.languages and doc.language not in cfg.languages and doc.language_id not in cfg.languages:
            return "language-disabled"
        return ""

    def prepare(self, doc: Document, line: int, character: int, explicit: bool) -> tuple[Context, Prompt]:
        cc = self.config.context
        ctx = ctxmod.build_context(
            doc.text, line, character, doc.language, prefix_lines=cc.prefix_lines,
            suffix_lines=cc.suffix_lines, window_step=cc.window_step, explicit=explicit, tree=doc.tree,
        )  # fmt: skip
        if ctx.mode is Mode.NONE and ctx.reason in ("in-comment", "in-string") and self.config.completion.in_comments:
            ctx = replace(ctx, mode=Mode.LINE)  # completion.inComments: one line, as an explicit request gets
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
        window = (ctx.prefix_start_line, ctx.row + ctx.suffix.count("\n") + 1)
        try:
            found = file_context(
                ctx.language, doc.text, ctx.row, window, parts_tokens=parts_tokens,
                count_tokens=estimate_tokens, root=doc.root,
            )  # fmt: skip
        except Exception:  # an extra, like retrieval: never fail a completion on it
            log.exception("file context failed")
            found = FileContext()
        self._file_memo[key] = found
        while len(self._file_memo) > 32:
            self._file_memo.pop(next(iter(self._file_memo)))
        return found

    async def complete(self, doc: Document, line: int, character: int, *, explicit: bool = False) -> Completion:
        ticket = self.scheduler.begin(doc.uri)  # the previous request for this document is answered empty
        try:
            return await self._complete(doc, line, character, explicit, ticket)
        finally:
            self.scheduler.end(doc.uri, ticket)

    async def _complete(self, doc: Document, line: int, character: int, explicit: bool, ticket) -> Completion:
        t0 = time.monotonic()
        if reason := self.enabled_for(doc):
            return self._done(Completion("", "none", reason), t0)
        ctx, prompt = self.prepare(doc, line, character, explicit)
        if ctx.mode is Mode.NONE:
            return self._done(Completion("", "none", ctx.reason, mode=ctx.mode.value), t0)
        if (line := self._import_line(doc, ctx, prompt)) is not None:
            completion = Completion(line, "import", "missing import", mode=ctx.mode.value, context_chars=prompt.context_chars)
            return self._done(completion, t0)
        max_lines = self.config.completion.max_lines
        worker, cache = self.scheduler.route(explicit)
        if cache is not None and (hit := cache.get(prompt.text)) is not None:
            text = secrets.unmasked(postprocess(hit.text, ctx, max_lines=max_lines))
            return self._done(Completion(text, hit.source, mode=ctx.mode.value), t0)
        if worker is None or self.unavailable:
            return self._done(Completion("", "none", self.unavailable or "no model"), t0)
        request = self.request_for(ctx, prompt, explicit, t0, fallback="" if explicit else self.short_prompt(doc, ctx))
        speculate = self.config.completion.speculate and ctx.mode is Mode.LINE
        gen, joined = await self.scheduler.answer(request, ticket, explicit, speculate)
        if gen is None:
            return self._done(Completion("", "none", "superseded", mode=ctx.mode.value), t0)
        log.debug("model %s: %r prompt=%d reused=%d %.0f+%.0f ms", gen.stop_reason, gen.text[:40],
                  gen.prompt_tokens, gen.reused_tokens, gen.prompt_ms, gen.generate_ms)  # fmt: skip
        useful = gen.text and gen.stop_reason != "cancelled"  # preempted: a stub of a line is not shown
        text = secrets.unmasked(postprocess(gen.text, ctx, max_lines=max_lines)) if useful else ""
        result = Completion(
            text, "joined" if joined else "model", gen.stop_reason, model_ms=gen.prompt_ms + gen.generate_ms,
            prompt_tokens=gen.prompt_tokens, reused_tokens=gen.reused_tokens, mode=ctx.mode.value,
            context_chars=prompt.context_chars, fallback=gen.fallback,
        )  # fmt: skip
        return self._done(result, t0)

    def _import_line(self, doc: Document, ctx: Context, prompt: Prompt) -> str | None:
        """In the import block: the statement the workspace's import hints make certain (no model)."""
        shown = sorted((s for s in prompt.snippets if s.imports), key=lambda s: -s.score)
        if not shown:
            return None
        hints = [hint for s in shown for hint in s.imports]
        try:
            return autoimport.complete_line(doc.language, doc.text, ctx.row, ctx.line_prefix, ctx.line_suffix, hints)
        except Exception:  # an extra, like retrieval: the model answers instead
            log.exception("autoimport failed")
            return None

    def short_prompt(self, doc: Document, ctx: Context) -> str:
        """The cold-start prompt: the local window alone (no repository, no file parts)."""
        if not self.config.completion.cold_start_tokens:
            return ""
        return build_prompt(self.template, ctx, path=doc.path, budget=SHORT_BUDGET).text

    def request_for(self, ctx: Context, prompt: Prompt, explicit: bool, t0: float, fallback: str = "") -> Request:
        """The model request: answered when complete, at the latest at the deadline; a
        cold one answers first from ``fallback``."""
        cfg = self.config.completion
        stop_at = t0 + (cfg.explicit_deadline_ms if explicit else cfg.deadline_ms) / 1000
        block = ctx.mode is Mode.BLOCK
        return Request(
            prompt.text,
            max_tokens=cfg.max_tokens if block else min(cfg.max_tokens, 32),
            stop_at=stop_at,
            stop=("\n\n\n",) if block else ("\n",),
            should_stop=should_stop_block(ctx, cfg.max_lines) if block else None,
            fallback=fallback,
            cold_tokens=cfg.cold_start_tokens,
        )

    # -- prefill -------------------------------------------------------------
    def edited(self, doc: Document, line: int, character: int) -> None:
        """An edit ending at (line, character): the next request there is run ahead when the model is idle."""
        self.scheduler.edited(doc.uri, line, character, lambda ln, ch: self._prefill_request(doc, ln, ch))

    def _prefill_request(self, doc: Document, line: int, character: int) -> Request | None:
        if self.unavailable or self.enabled_for(doc):
            return None
        ctx, prompt = self.prepare(doc, line, character, explicit=False)
        cache = self.cache
        if ctx.mode is Mode.NONE or (cache is not None and cache.get(prompt.text) is not None):
            return None
        return self.request_for(ctx, prompt, explicit=False, t0=time.monotonic())

    def _done(self, completion: Completion, t0: float) -> Completion:
        completion = _with_latency(completion, (time.monotonic() - t0) * 1000)
        self.last = completion
        return completion

    def warmup(self, doc: Document | None = None) -> None:
        """After didOpen: evaluate the prompt at the file's last edit (else near its top)
        in the background, so the first request there is warm."""
        if self.unavailable or self.scheduler.models.worker is None:
            return
        if doc is None or self.enabled_for(doc):
            prompt = self.template.fim("", "\n")
        else:
            default = (min(doc.text.count("\n"), self.config.context.prefix_lines), 0)
            line, character = self.scheduler.last_edit.get(doc.uri, default)
            _, p = self.prepare(doc, line, character, explicit=True)
            prompt = p.text
        self.scheduler.prefill_now(Request(prompt, max_tokens=0, joinable=False))

    def close(self, free: bool = True) -> None:
        self.scheduler.close(free=free)


def _with_latency(c: Completion, ms: float) -> Completion:
    return replace(c, latency_ms=ms)
