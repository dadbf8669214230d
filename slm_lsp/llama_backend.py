"""The llama.cpp backend: greedy FIM generation with KV reuse and token healing.

Runs only on the model worker thread (see backend.Worker). Per request:
1. tokenize the prompt; back off the last token when it is a partial word
   (token healing) and remember its text;
2. keep the KV cache for the longest common token prefix with the previous
   prompt and evaluate the rest in batches of ``n_batch``, checking the cancel
   event and the hard deadline between batches;
3. generate greedily, token by token, the first tokens constrained to start
   with the healed text; stop at end-of-text, a stop string, ``should_stop``,
   ``max_tokens``, the hard deadline or a cancel; at the soft deadline hand
   what is there to ``on_reply`` once and go on (speculation).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from slm_lsp.backend import Generation, Request, cut_at_stop
from slm_lsp.templates import FimTemplate


class BackendError(Exception):
    """The model could not be loaded; the message says why and how to fix it."""


def file_identity(path: Path) -> str:
    """A short, path-free identity of a model or adapter file (sha256 prefix), memoised on disk."""
    stat = path.stat()
    from slm_lsp.models import data_dir

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
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(digest)
    return digest


class LlamaBackend:
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
        self.n_batch = n_batch
        self.n_ctx = n_ctx
        self.n_vocab = self.llm.n_vocab()
        adapter = f"+{file_identity(adapter_path)[:16]}" if adapter_path else ""
        self.identity = f"{file_identity(model_path)[:16]}{adapter}/{template.name}"
        self._stop_ids = self._special_ids(template) | {self.llm.token_eos()}
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
            # verbose=False would dup2 stdout to /dev/null while loading: on stdio that
            # swallows LSP messages. Keep the fds alone; the caller captures sys.stderr.
            verbose=True,
        )

    def _special_ids(self, template: FimTemplate) -> set[int]:
        ids = set()
        for tok in template.stop:
            toks = self.llm.tokenize(tok.encode(), add_bos=False, special=True)
            if len(toks) == 1:
                ids.add(toks[0])
        return ids

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8", errors="replace"), add_bos=False, special=True))

    def close(self) -> None:
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
        heal, cut = b"", len(tokens)
        while cut > 1 and len(tokens) - cut < 4 and tokens[cut - 1] not in self._stop_ids:
            piece = pieces[tokens[cut - 1]]
            if not piece or b"\n" in piece:
                break
            heal, cut = piece + heal, cut - 1
            if not _is_word(piece):  # a space, operator or a token starting a word ends the back-off
                break
        return tokens[:cut], heal

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
        if len(tokens) > budget:
            tokens = tokens[-budget:]  # the prompt module keeps prompts far below this
        reused = self._evaluate(tokens, cancel, request.stop_at)
        t1 = time.monotonic()
        stats = dict(prompt_tokens=len(tokens), reused_tokens=reused, prompt_ms=(t1 - t0) * 1000)
        if reused < 0:
            reason = "cancelled" if cancel.is_set() else "deadline"
            return Generation("", reason, **stats)
        return self._generate(request, cancel, on_reply, heal, stats, t1)

    def _evaluate(self, tokens: list[int], cancel: threading.Event, stop_at: float) -> int:
        """Bring the KV cache to ``tokens``; the reused count, or -1 when interrupted."""
        llm = self.llm
        cached = llm.input_ids[: llm.n_tokens]
        n = min(len(cached), len(tokens))
        same = cached[:n] == np.asarray(tokens[:n], dtype=cached.dtype)
        lcp = n if bool(same.all()) else int(np.argmin(same))
        if not self.kv_reuse:
            lcp = 0
        lcp = max(0, min(lcp, len(tokens) - 1))  # the last token is always evaluated: we need its logits
        llm.n_tokens = lcp
        for i in range(lcp, len(tokens), self.n_batch):
            if cancel.is_set() or time.monotonic() >= stop_at:
                return -1
            llm.eval(tokens[i : i + self.n_batch])
        return lcp

    def _logits(self) -> np.ndarray:
        ptr = self.llm._ctx.get_logits_ith(-1)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _generate(self, request, cancel, on_reply, heal: bytes, stats: dict, t1: float) -> Generation:
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
            token = self._pick(pending_heal)
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
            self.llm.eval([token])
            step = time.monotonic() - now
        text, _ = cut_at_stop(_decode(out), request.stop)
        return Generation(text, reason, generated_tokens=count, generate_ms=(time.monotonic() - t1) * 1000, **stats)

    def _pick(self, heal: bytes) -> int:
        logits = self._logits()
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


def _is_word(piece: bytes) -> bool:
    """True for a piece that continues a word (no leading space or punctuation)."""
    return all(c == 95 or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c >= 128 for c in piece)


def _decode(data: bytes) -> str:
    """UTF-8 text of generated bytes; an incomplete trailing character is held back."""
    for cut in range(0, 4):
        try:
            return data[: len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")
