"""The naive baseline of bench/latency.py: the same document states, a plain FIM prompt from scratch.

For M document states spread over the replay (answered requests the server
tried to complete), in the benchmark's own process after the server exited:
``slm_lsp.context.build_context`` with the same windows, ``template.fim`` of
prefix and suffix, evaluated by ``LlamaBackend(kv_reuse=False)`` with the same
model and threads, greedy to the end of the line or BASELINE_TOKENS tokens: no
cache, no deadline, no token healing, no repository context. Its time runs
from building the context to the last token (no LSP transport).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import common, metrics
from bench.metrics import Sample
from bench.typist import FilePlan, document_at
from slm_lsp.evaluation.metrics import percentile

BASELINE_TOKENS = 24
SETTINGS = {"max_tokens": BASELINE_TOKENS, "stop": "\\n", "kv_reuse": False, "heal": False, "cache": False}


@dataclass
class BaselineSample:
    index: int  # the server sample with the same document state
    ms: float
    prompt_tokens: int
    text: str
    predicted: int


def baseline_states(samples: list[Sample], m: int) -> list[Sample]:
    """m states spread over the replay among answered requests the server tried to complete."""
    eligible = [s for s in samples if s.stats and s.stats.get("mode") in ("line", "block") and s.cancelled_at is None]
    return [eligible[i] for i in common.spread(len(eligible), m)]


def run_baseline(plans: list[FilePlan], states: list[Sample], cfg, deadline: float) -> list[BaselineSample]:
    """Each state from scratch: plain FIM prompt, no KV reuse, no cache, no deadline, greedy."""
    from slm_lsp import context, gguf, templates
    from slm_lsp.backend import Request
    from slm_lsp.llama_backend import LlamaBackend

    path = model_path(cfg)
    template = templates.choose(gguf.read_metadata(path))
    backend = LlamaBackend(path, template, n_ctx=cfg.model.n_ctx, n_threads=cfg.model.n_threads,
                           n_batch=cfg.model.n_batch, kv_reuse=False)  # fmt: skip
    out: list[BaselineSample] = []
    try:
        backend.complete(Request(template.fim("x = ", "\n"), max_tokens=2, heal=False), threading.Event())  # warm-up
        for s in states:
            if time.monotonic() >= deadline:
                break
            plan = plans[s.file]
            t0 = time.perf_counter()
            cc = cfg.context
            ctx = context.build_context(
                document_at(plan, s.key), s.line, s.character, context_language(plan.sf),
                prefix_lines=cc.prefix_lines, suffix_lines=cc.suffix_lines, window_step=cc.window_step,
            )  # fmt: skip
            prompt = template.fim(ctx.prefix + ctx.line_prefix, ctx.line_suffix + "\n" + ctx.suffix)
            request = Request(prompt, max_tokens=BASELINE_TOKENS, stop=("\n",), heal=False, stop_at=deadline)
            gen = backend.complete(request, threading.Event())
            ms = (time.perf_counter() - t0) * 1000
            if gen.stop_reason == "deadline":  # cut by the run's time bound: no measurement
                break
            out.append(BaselineSample(s.index, ms, gen.prompt_tokens, gen.text, common.common_prefix_len(gen.text, s.remaining)))
    finally:
        backend.close()
    return out


def model_path(cfg) -> Path:
    """The model file the server loads (the environment wins over settings, as in slm_lsp.config)."""
    from slm_lsp import models

    return models.resolve(os.environ.get("SLM_LSP_MODEL") or cfg.model.path, out=None)


def context_language(sf: common.SourceFile) -> str:
    from slm_lsp import languages

    return languages.detect_language(sf.rel, sf.language_id)


def baseline_summary(base: list[BaselineSample], samples: list[Sample], ours: dict[str, Any]) -> dict[str, Any]:
    ms = [b.ms for b in base]
    paired = [samples[b.index].client_ms for b in base if samples[b.index].client_ms is not None]
    p50, ours_p50, pause_p50 = percentile(ms, 50), ours["p50_ms"], ours["at_pause"]["p50_ms"]
    paired_p50 = percentile(paired, 50)
    return {
        "baseline_requests": len(base),
        "baseline_p50_ms": common.round_ms(p50), "baseline_p95_ms": common.round_ms(percentile(ms, 95)),
        "baseline_prompt_tokens_p50": percentile([b.prompt_tokens for b in base], 50),
        "baseline_mean_predicted_chars": round(sum(b.predicted for b in base) / len(base), 2) if base else None,
        "speedup_p50": common.ratio(p50, ours_p50) if p50 is not None and ours_p50 else None,
        "speedup_p50_at_pause": common.ratio(p50, pause_p50) if p50 is not None and pause_p50 else None,
        "ours_on_baseline_states_p50_ms": common.round_ms(paired_p50),
        "ours_on_baseline_states_mean_predicted_chars": metrics.mean_predicted([samples[b.index] for b in base]),
        "speedup_p50_same_states": common.ratio(p50, paired_p50) if p50 is not None and paired_p50 else None,
    }  # fmt: skip
