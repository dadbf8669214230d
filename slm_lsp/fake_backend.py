"""A deterministic stand-in for the model, for fast tests and plumbing checks
(``SLM_LSP_BACKEND=fake``): no weights, predictable text, optional slowness and failures."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from typing import Callable

from slm_lsp.backend import Generation, Request, cut_at_stop
from slm_lsp.positions import common_prefix_len

_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+\w+\s*\(([^()]*)\)[^:]*:\s*$", re.M)


KEEP_CALLS = 50  # the fake backend's request log, for tests: the newest this many (a soak stays flat)


class FakeBackend:
    """A deterministic stand-in for fast tests: no model, predictable text.

    ``responses`` maps a substring of the prompt to the completion to give;
    otherwise, after a Python ``def f(a, b):`` it returns ``return a + b``, and
    anything else gets ``pass``. ``ms_per_token`` simulates a slow model
    (one "token" = 4 characters) so deadlines and cancellation can be tested.
    ``fail_on``: a prompt containing it makes ``complete`` raise, as a broken
    model would (a RuntimeError from llama.cpp).
    """

    identity = "fake-model"

    def __init__(
        self,
        responses: dict[str, str] | None = None,
        ms_per_token: float = 0.0,
        ms_per_prompt_token: float = 0.0,
        fail_on: str = "",
    ) -> None:
        self.responses = dict(responses or {})
        self.fail_on = fail_on
        self.ms_per_token = ms_per_token
        self.ms_per_prompt_token = ms_per_prompt_token  # > 0: prompt evaluation costs time, reused prefixes not
        self.calls: list[Request] = []
        self.evaluated = ""  # the prompt "in the KV cache" (its longest common prefix is reused)

    def answer(self, prompt: str) -> str:
        for needle, text in self.responses.items():
            if needle in prompt:
                return text
        # the code before the cursor: the FIM prefix plus what follows the middle token
        head = prompt.split("<|fim_suffix|>")[0] + "\n" + prompt.split("<|fim_middle|>")[-1]
        defs = list(_DEF.finditer(head))
        if defs:
            params = [p.split(":")[0].split("=")[0].strip() for p in defs[-1].group(2).split(",")]
            params = [p for p in params if p and p not in ("self", "cls")]
            return "return " + " + ".join(params) if params else "pass"
        return "pass"

    def complete(
        self, request: Request, cancel: threading.Event, on_reply: Callable[[Generation], None] | None = None
    ) -> Generation:
        self.calls.append(request)
        if len(self.calls) > KEEP_CALLS:  # a long-running server on the fake backend stays flat
            del self.calls[: len(self.calls) - KEEP_CALLS]
        if self.fail_on and self.fail_on in request.prompt:
            raise RuntimeError(f"fake model failure (the prompt contains {self.fail_on!r})")
        reused = common_prefix_len(self.evaluated, request.prompt)
        cold = (len(request.prompt) - reused) // 4 > request.cold_tokens
        if request.fallback and request.cold_tokens and cold and on_reply is not None:
            gen = dataclasses.replace(self._generate(request, request.fallback, cancel, None), fallback=True)
            on_reply(gen)
            self._evaluate(request.prompt, reused, cancel, request.stop_at)
            return gen
        if not self._evaluate(request.prompt, reused, cancel, request.stop_at):
            return Generation("", "cancelled" if cancel.is_set() else "deadline")
        return self._generate(request, request.prompt, cancel, on_reply)

    def _evaluate(self, prompt: str, reused: int, cancel: threading.Event, stop_at: float) -> bool:
        self.evaluated = prompt[:reused]
        for i in range(reused, len(prompt), 4):
            if cancel.is_set() or time.monotonic() >= stop_at:
                return False
            if self.ms_per_prompt_token:
                time.sleep(self.ms_per_prompt_token / 1000)
            self.evaluated = prompt[: i + 4]
        self.evaluated = prompt
        return True

    def _generate(
        self, request: Request, prompt: str, cancel: threading.Event, on_reply: Callable[[Generation], None] | None
    ) -> Generation:
        text, _ = cut_at_stop(self.answer(prompt), request.stop)
        out, replied = "", False
        for i in range(0, len(text), 4):
            if cancel.is_set():
                return Generation(out, "cancelled", generated_tokens=i // 4)
            now = time.monotonic()
            if now >= request.stop_at or i // 4 >= request.max_tokens:
                return Generation(out, "deadline" if now >= request.stop_at else "length", generated_tokens=i // 4)
            if not replied and on_reply and now >= request.reply_at:
                on_reply(Generation(out, "deadline", generated_tokens=i // 4))
                replied = True
            if self.ms_per_token:
                time.sleep(self.ms_per_token / 1000)
            out += text[i : i + 4]
            if request.on_token:
                request.on_token(out)
        return Generation(out, "stop", generated_tokens=(len(text) + 3) // 4)

    def close(self) -> None:
        pass
