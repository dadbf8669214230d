"""A second, small llama.cpp context on the same weights: where a cold request's
short prompt is answered while the main context keeps the full prompt's KV cache.

A request at a new place in the code needs its whole prompt evaluated (about
85 tokens/s on two cores: several seconds for the full prompt). The scheduler
then answers first from a short prompt, the local window alone, evaluated here,
and goes on evaluating the full prompt in the main context for the following
keystrokes. Both contexts share the model's weights (``llm._model``); this one
only adds a small KV cache (``n_ctx`` tokens, about 12 KB each for the bundled
model) and compute buffers.

Keeps the longest common token prefix with its previous prompt, like the main
context did before cross-location reuse, so typing on the line only appends.
Runs only on the model thread, like the backend that owns it.
"""

from __future__ import annotations

import ctypes
import threading
import time

import numpy as np


class ScratchContext:
    def __init__(self, llm, n_ctx: int, n_batch: int, threads: int) -> None:
        import llama_cpp
        from llama_cpp import _internals

        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = n_batch
        params.n_threads = params.n_threads_batch = threads
        self.ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        self.batch = _internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1, verbose=False)
        adapter = getattr(llm, "_lora_adapter", None)
        if adapter is not None:  # the same fine-tune as the main context
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(llm.lora_scale)
            if llama_cpp.llama_set_adapters_lora(self.ctx.ctx, adapters, 1, scales):
                raise RuntimeError("could not apply the LoRA adapter to the scratch context")
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.n_vocab = llm.n_vocab()
        self.tokens: list[int] = []  # what the KV cache holds, positions 0..len-1

    def evaluate(self, tokens: list[int], cancel: threading.Event, stop_at: float) -> int:
        """Bring the KV cache to ``tokens``; the reused count, or -1 when interrupted."""
        n = 0
        limit = min(len(self.tokens), len(tokens) - 1)  # the last token is always evaluated: its logits
        while n < limit and self.tokens[n] == tokens[n]:
            n += 1
        self.ctx.kv_cache_seq_rm(0, n, -1)
        del self.tokens[n:]
        for i in range(n, len(tokens), self.n_batch):
            if cancel.is_set() or time.monotonic() >= stop_at:
                return -1
            self.eval(tokens[i : i + self.n_batch])
        return n

    def eval(self, tokens: list[int]) -> None:
        """Append ``tokens`` (at most ``n_batch``) to the KV cache."""
        self.batch.set_batch(tokens, n_past=len(self.tokens), logits_all=False)
        self.ctx.decode(self.batch)
        self.tokens.extend(tokens)

    def logits(self) -> np.ndarray:
        return np.ctypeslib.as_array(self.ctx.get_logits_ith(-1), shape=(self.n_vocab,))

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()
