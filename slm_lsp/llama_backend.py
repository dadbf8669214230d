"""The llama.cpp backend: greedy FIM generation with KV reuse and token healing.

Runs only on the model worker thread (see backend.Worker). Per request:
1. tokenize the prompt; back off the last token when it is a partial word
   (token healing) and remember its text;
2. cut a prompt too long for the context after its head (``kvreuse.fit``);
   keep the KV cache for the longest common token prefix with the previous
   prompt and the runs of it that moved (``kvreuse``), and evaluate the rest
   in batches of ``n_batch``, checking the cancel event and the hard deadline
   between batches;
3. generate greedily, token by token, the first tokens constrained to start
   with the healed text; stop at end-of-text, a stop string, ``should_stop``,
   ``max_tokens``, the hard deadline or a cancel; at the soft deadline hand
   what is there to ``on_reply`` once and go on (speculation).

Over 300 lines because token healing, KV reuse and the cold path all work on the
same llama.cpp state and token lists; the pure parts live in kvreuse.py and the
second context in llama_scratch.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from slm_lsp import healing, kvreuse
from slm_lsp.backend import Generation, Request, cut_at_stop
from slm_lsp.llama_scratch import ScratchContext
from slm_lsp.templates import FimTemplate

SCRATCH_CTX = 512  # tokens of the scratch context that answers cold requests' short prompts


class BackendError(Exception):
    """The model could not be loaded; the message says why and how to fix it."""


def file_identity(path: Path) -> str:
    """A short, path-free identity of a model or adapter file (sha256 prefix), memoised on disk."""
    stat = path.stat()
    from slm_lsp.models import data_dir
    from slm_lsp.paths import private_dir

    memo = data_dir() / "hashes" / hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    try:
        return memo.read_text().strip()
    except OSError:
        pass
    marker = path.with_name(path.name + ".sha256")
    digest = marker.read_text().strip() if marker.is_file() else None
    if not digest:
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        digest = h.hexdigest()
    private_dir(memo.parent)
    memo.write_text(digest)
    return digest


class LlamaBackend:
    """One llama.cpp model and context. Only the model thread (``backend.Worker``) calls
    ``complete``; ``close`` runs once that thread has stopped."""

    def __init__(
        self,
        model_path: Path,
        template: FimTemplate,
        *,
        adapter_path: Path | None = None,
        n_ctx: int = 2048,
        n_threads: int = 0,
        n_batch: int = 64,
        kv_reuse: bool = True,
        kv_reuse_chunk: int = 16,  # fewest cached tokens in a row worth moving (kvreuse.plan's min_chunk)
        kv_reuse_parts: str = "whole",  # which runs move: "whole" parts (a snippet...), the "same" part, "any"
        kv_reuse_down: bool = False,  # runs may move to earlier positions too (bench/kv_reuse.py: less exact)
    ) -> None:
        try:
            import llama_cpp
        except ImportError as exc:  # pragma: no cover - install problem
            raise BackendError(f"llama-cpp-python is not installed ({exc}); reinstall slm-lsp.") from exc
        threads = n_threads or max(1, (os.cpu_count() or 2))
        chatter = io.StringIO()  # llama.cpp's load messages: kept for errors, not printed
        try:
            with contextlib.redirect_stderr(chatter):
                self.llm = self._load(llama_cpp, model_path, adapter_path, n_ctx, n_batch, threads)
        except (ValueError, RuntimeError, OSError) as exc:
            detail = chatter.getvalue().strip().splitlines()[-3:]
            raise BackendError(
                f"llama.cpp could not load {model_path.name}: {exc}. The file may be corrupt. {' '.join(detail)}"
            ) from exc
        _quiet_llama_logs()
        self.llm.verbose = False
        self.template = template
        self.kv_reuse = kv_reuse  # False: every prompt from scratch (the benchmarks' naive baseline)
        self._memory = llama_cpp.llama_get_memory(self.llm.ctx)
        can_shift = self._memory is not None and llama_cpp.llama_memory_can_shift(self._memory)
        self.kv_reuse_chunk = kv_reuse_chunk if can_shift else 0  # 0: the common prefix only
        self.kv_reuse_parts, self.kv_reuse_down = kv_reuse_parts, kv_reuse_down
        self.n_batch = n_batch
        self._threads = threads
        self._scratch: ScratchContext | None = None  # made by the first cold request
        self.n_ctx = n_ctx
        self.n_vocab = self.llm.n_vocab()
        adapter = f"+{file_identity(adapter_path)[:16]}" if adapter_path else ""
        self.identity = f"{file_identity(model_path)[:16]}{adapter}/{template.name}"
        self._stop_ids = self._special_ids(template) | {self.llm.token_eos()}
        self._marks = self._special_ids(template, template.specials)  # what opens a part of a prompt
        self._prefix_id = next(iter(self._special_ids(template, (template.prefix,))), None)
        self._pieces: list[bytes] | None = None
        self._by_first_byte: dict[int, list[int]] | None = None
        self._allowed_memo: dict[bytes, np.ndarray] = {}

    @staticmethod
    def _load(llama_cpp, model_path: Path, adapter_path: Path | None, n_ctx: int, n_batch: int, threads: int):
        return llama_cpp.Llama(
            model_path=str(model_path),
            lora_path=str(adapter_path) if adapter_path else None,
            n_ctx=n_ctx,
            n_batch=n_batch,
            n_ubatch=n_batch,
            n_threads=threads,
            n_threads_batch=threads,
            logits_all=False,
            # weights read into memory, not mmapped: a model file truncated or overwritten in place
            # (cp over it) would SIGBUS the server. 0.5B Q4_K_M: RSS 566 MB (anonymous, not shared
            # between servers) instead of 592 MB (485 MB of it the file's pages); load 0.6 s, not 0.3 s
            use_mmap=False,
            # verbose=False would dup2 stdout to /dev/null while loading: on stdio that
            # swallows LSP messages. Keep the fds alone; the caller captures sys.stderr.
            verbose=True,
        )

    def _special_ids(self, template: FimTemplate, tokens: tuple[str, ...] = ()) -> frozenset[int]:
        ids = set()
        for tok in tokens or template.stop:
            toks = self.llm.tokenize(tok.encode(), add_bos=False, special=True)
            if len(toks) == 1:
                ids.add(toks[0])
        return frozenset(ids)

    def close(self) -> None:
        if self._scratch is not None:  # before the model it shares
            self._scratch.close()
        self.llm.close()

    # -- token healing -------------------------------------------------
    def pieces(self) -> list[bytes]:
        if self._pieces is None:
            self._pieces = [self.llm.detokenize([i], special=False) for i in range(self.n_vocab)]
        return self._pieces

    def _heal(self, tokens: list[int]) -> tuple[list[int], bytes]:
        """Back off the partial word at the end of the prompt (at most 4 tokens).

        Returns the shortened tokens and the removed text, which generation
        must reproduce first; a prompt ending mid-word otherwise continues
        with nonsense.
        """
        pieces = self.pieces()
        cut = healing.back_off(tokens, pieces.__getitem__, self._stop_ids)
        return tokens[:cut], b"".join(pieces[t] for t in tokens[cut:])

    def _allowed(self, heal: bytes) -> np.ndarray:
        """Token ids consistent with the healed text (it starts them, or they start it)."""
        if heal not in self._allowed_memo:
            if self._by_first_byte is None:
                buckets: dict[int, list[int]] = {}
                for i, p in enumerate(self.pieces()):
                    if p:
                        buckets.setdefault(p[0], []).append(i)
                self._by_first_byte = buckets
            pieces = self.pieces()
            ids = [i for i in self._by_first_byte.get(heal[0], []) if pieces[i].startswith(heal) or heal.startswith(pieces[i])]
            if len(self._allowed_memo) > 512:
                self._allowed_memo.clear()
            self._allowed_memo[heal] = np.array(ids, dtype=np.int64)
        return self._allowed_memo[heal]

    # -- the request ---------------------------------------------------
    def complete(
        self, request: Request, cancel: threading.Event, on_reply: Callable[[Generation], None] | None = None
    ) -> Generation:
        t0 = time.monotonic()
        tokens = self.llm.tokenize(request.prompt.encode("utf-8", errors="replace"), add_bos=False, special=True)
        heal = b""
        if request.heal:
            tokens, heal = self._heal(tokens)
        budget = self.n_ctx - request.max_tokens - 1
        keep = tokens.index(self._prefix_id) + 1 if self._prefix_id in tokens else 1  # a cut keeps the head
        cut, tokens = len(tokens) > budget, kvreuse.fit(tokens, budget, keep)  # prompts are far shorter, mostly
        if on_reply is not None and self._cold(request, tokens, cut):
            return self._answer_cold(request, tokens, cut, cancel, on_reply, t0)
        reused = self._evaluate(tokens, cancel, request.stop_at, cut)
        t1 = time.monotonic()
        stats = dict(prompt_tokens=len(tokens), reused_tokens=reused, prompt_ms=(t1 - t0) * 1000)
        if reused < 0:
            reason = "cancelled" if cancel.is_set() else "deadline"
            return Generation("", reason, **stats)
        return self._generate(request, cancel, on_reply, heal, stats, t1)

    def _evaluate(self, tokens: list[int], cancel: threading.Event, stop_at: float, cut: bool = False) -> int:
        """Bring the KV cache to ``tokens``; the reused count, or -1 when interrupted. A prompt cut at
        the context limit moves down within its parts (llama.cpp's context shift)."""
        llm = self.llm
        plan = self._plan(tokens, cut)
        if plan.chunks:
            kvreuse.park(self._memory, plan)
        llm.n_tokens = plan.prefix
        try:
            for chunk in plan.chunks:
                if not self._eval(tokens, chunk.dst, cancel, stop_at):
                    return -1
                kvreuse.unpark(self._memory, chunk)
                llm.input_ids[chunk.dst : chunk.end] = tokens[chunk.dst : chunk.end]
                llm.n_tokens = chunk.end
            if not self._eval(tokens, len(tokens), cancel, stop_at):
                return -1
        finally:
            if plan.chunks:
                kvreuse.drop_parked(self._memory)  # after an interruption the cache holds tokens[:n_tokens]
        return plan.reused

    def _plan(self, tokens: list[int], cut: bool) -> kvreuse.Plan:
        llm = self.llm
        cached = llm.input_ids[: llm.n_tokens].tolist() if self.kv_reuse else []
        parts = "same" if cut and self.kv_reuse_parts == "whole" else self.kv_reuse_parts
        return kvreuse.plan(
            cached, tokens, self.kv_reuse_chunk, marks=self._marks, parts=parts, down=cut or self.kv_reuse_down
        )

    def _eval(self, tokens: list[int], end: int, cancel: threading.Event, stop_at: float) -> bool:
        """Evaluate tokens[n_tokens:end] in batches; False when cancelled or past the deadline."""
        for i in range(self.llm.n_tokens, end, self.n_batch):
            if cancel.is_set() or time.monotonic() >= stop_at:
                return False
            self.llm.eval(tokens[i : min(i + self.n_batch, end)])
        return True

    def _logits(self) -> np.ndarray:
        ptr = self.llm._ctx.get_logits_ith(-1)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    # -- a cold request: answered from its short prompt in the scratch context -------
    def _cold(self, request: Request, tokens: list[int], cut: bool) -> bool:
        """More than ``cold_tokens`` to evaluate, and the short prompt is much cheaper."""
        if not (request.fallback and request.cold_tokens and self.kv_reuse):
            return False
        todo = self._plan(tokens, cut).evaluated
        if todo <= request.cold_tokens:
            return False
        short = self._tokenize(request.fallback)
        done = self._scratch.tokens if self._scratch is not None else []
        return 2 * (len(short) - kvreuse.common_prefix(done, short)) < todo

    def _answer_cold(self, request, tokens: list[int], cut: bool, cancel, on_reply, t0: float) -> Generation:
        """Answer from the fallback (reply), then evaluate the full prompt for the next keystrokes."""
        if self._scratch is None:
            with contextlib.redirect_stderr(io.StringIO()):
                self._scratch = ScratchContext(self.llm, SCRATCH_CTX, self.n_batch, self._threads)
        short, heal = self._heal(self._tokenize(request.fallback)) if request.heal else (self._tokenize(request.fallback), b"")
        short = kvreuse.fit(short, SCRATCH_CTX - request.max_tokens - 1)
        reused = self._scratch.evaluate(short, cancel, request.stop_at)
        t1 = time.monotonic()
        stats = dict(prompt_tokens=len(short), reused_tokens=max(reused, 0), prompt_ms=(t1 - t0) * 1000)
        if reused < 0:
            return Generation("", "cancelled" if cancel.is_set() else "deadline", **stats)
        gen = self._generate(request, cancel, None, heal, stats, t1, self._scratch)
        gen = dataclasses.replace(gen, fallback=True)
        on_reply(gen)
        self._evaluate(tokens, cancel, request.stop_at, cut)  # behind the answer; a new request preempts it
        return gen

    def _tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8", errors="replace"), add_bos=False, special=True)

    def _generate(self, request, cancel, on_reply, heal: bytes, stats: dict, t1: float, seq=None) -> Generation:
        """Greedy generation after the prompt, in the main context or ``seq`` (the scratch)."""
        eval_one = seq.eval if seq is not None else self.llm.eval
        logits = seq.logits if seq is not None else self._logits
        out, replied, count, reason = b"", False, 0, "length"
        pending_heal = heal
        step = 0.0  # how long the last token took: reply early rather than one token late
        while count < request.max_tokens:
            if cancel.is_set():
                reason = "cancelled"
                break
            now = time.monotonic()
            if now >= request.stop_at:
                reason = "deadline"
                break
            if not replied and on_reply is not None and now + step >= request.reply_at:
                text = _decode(out)
                on_reply(Generation(text, "deadline", generated_tokens=count, **stats))
                replied = True
            token = self._pick(pending_heal, logits())
            if token in self._stop_ids:
                reason = "stop"
                break
            piece = self.pieces()[token]
            if pending_heal:
                consumed = min(len(pending_heal), len(piece))
                pending_heal = pending_heal[consumed:]
                piece = piece[consumed:]
            out += piece
            count += 1
            text, stopped = cut_at_stop(_decode(out), request.stop)
            if request.on_token:
                request.on_token(text)
            if stopped or (request.should_stop and request.should_stop(text)):
                out, reason = text.encode(), "stop"
                break
            eval_one([token])
            step = time.monotonic() - now
        text, _ = cut_at_stop(_decode(out), request.stop)
        return Generation(text, reason, generated_tokens=count, generate_ms=(time.monotonic() - t1) * 1000, **stats)

    def _pick(self, heal: bytes, logits: np.ndarray) -> int:
        if not heal:
            return int(np.argmax(logits))
        allowed = self._allowed(heal)
        if allowed.size == 0:
            return int(np.argmax(logits))
        return int(allowed[np.argmax(logits[allowed])])


def _quiet_llama_logs() -> None:
    """llama.cpp's own log: errors only, to stderr (never stdout, which carries LSP)."""
    try:
        from llama_cpp import _logger

        _logger.set_verbose(False)
    except (ImportError, AttributeError):
        pass


def _decode(data: bytes) -> str:
    """UTF-8 text of generated bytes; an incomplete trailing character is held back."""
    for cut in range(0, 4):
        try:
            return data[: len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")
