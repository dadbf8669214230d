"""The statistics of bench/latency.py: what each request became, and what the person saw. Pure.

Every metric is defined in bench/README.md (Metrics). Percentiles are the
project's one definition, nearest rank (``slm_lsp.evaluation.metrics.percentile``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

from bench import common
from slm_lsp.evaluation.metrics import percentile
from bench.typist import Key

KV_SHARE = 0.5  # a model call reusing at least this share of prompt tokens counts as "kv"
SOURCES = ("cache", "typed", "import", "joined", "kv", "fresh", "deadline", "none", "cancelled", "error")


@dataclass
class Sample:
    """One keystroke's request and what became of it (times: time.perf_counter())."""

    index: int
    file: int  # index into the plans
    uri: str
    key: Key
    msg_id: str
    sent: float = 0.0
    received: float | None = None
    cancelled_at: float | None = None  # unanswered at the next key, which cancelled it
    error: str = ""
    text: str | None = None  # the suggestion (None: no answer)
    stats: dict | None = None

    line = property(lambda self: self.key.line)
    character = property(lambda self: self.key.character)
    typed = property(lambda self: self.key.typed)
    remaining = property(lambda self: self.key.remaining)
    ahead = property(lambda self: self.key.ahead)
    gap_s = property(lambda self: self.key.gap_s)

    @property
    def client_ms(self) -> float | None:
        return None if self.received is None else (self.received - self.sent) * 1000

    @property
    def at_pause(self) -> bool:
        """The person paused after this request (scheduled gap >= 300 ms)."""
        return self.key.gap_s >= common.PAUSE_MIN_S


class EvalCall(NamedTuple):
    """One llama.cpp decode call in the server (bench/server_probe.py): time.monotonic() bounds."""

    start: float
    end: float
    tokens: int
    kind: str  # "p": prompt evaluation, "g": a generated token


def classify(s: Sample) -> str:
    """One of SOURCES (README: per-source); a source the server adds later passes through as is."""
    if s.cancelled_at is not None:
        return "cancelled"
    if s.error or s.received is None or not s.stats:
        return "error"
    stats = s.stats
    source = str(stats.get("source"))
    if source != "model":
        return source  # cache, typed, joined, none
    prompt, reused = stats.get("promptTokens") or 0, stats.get("reusedTokens") or 0
    if prompt == 0 and stats.get("reason") == "deadline":
        return "deadline"  # no reply from the model in time: prompt evaluation still running
    return "kv" if prompt and reused >= KV_SHARE * prompt else "fresh"


def answered(s: Sample) -> bool:
    return classify(s) not in ("cancelled", "error")


def shown(s: Sample) -> bool:
    """A non-empty answer arrived before the next key: the person saw it."""
    return answered(s) and bool(s.text)


def suggestion_quality(samples: list[Sample]) -> dict[str, Any]:
    """Typed characters, saved characters and predicted prefixes (README: chars_saved_rate)."""
    typed = saved = full = 0
    predicted: list[int] = []
    for s in samples:
        if s.ahead:
            typed += 1
        if not shown(s):
            continue
        assert s.text is not None
        n = common.common_prefix_len(s.text, s.ahead)
        predicted.append(n)
        saved += n > 0
        full += bool(s.remaining) and s.text.split("\n", 1)[0] == s.remaining
    return {
        "typed_chars": typed,
        "chars_saved": saved,
        "chars_saved_rate": common.ratio(saved, typed),
        "shown": len(predicted),
        "shown_rate": common.ratio(len(predicted), len(samples)),
        "full_line_rate": common.ratio(full, len(predicted)),
        "mean_predicted_chars": round(sum(predicted) / len(predicted), 2) if predicted else None,
    }


def per_source(samples: list[Sample]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[classify(s)].append(s)
    out = {}
    for source in [*SOURCES, *sorted(set(groups) - set(SOURCES))]:
        group = groups.get(source, [])
        client = [s.client_ms for s in group if s.client_ms is not None and source != "cancelled"]
        engine = [s.stats["latencyMs"] for s in group if s.stats and source != "cancelled"]
        model = [s.stats["modelMs"] for s in group if s.stats and s.stats.get("modelMs") and source != "cancelled"]
        row: dict[str, Any] = {"count": len(group)}
        if not group:
            pass
        elif source == "cancelled":  # how old a request was when the next key cancelled it
            ages = [(s.cancelled_at - s.sent) * 1000 for s in group if s.cancelled_at is not None]
            row.update(common.latency_summary(ages, "age_"))
        else:
            row.update(p50_ms=_p(client, 50), p99_ms=_p(client, 99), engine_p50_ms=_p(engine, 50), model_p50_ms=_p(model, 50))
            row["shown_rate"] = common.ratio(sum(shown(s) for s in group), len(group))
        out[source] = row
    return out


def _p(values: Sequence[float], q: float) -> float | None:
    return common.round_ms(percentile(values, q))


def pause_summary(samples: list[Sample]) -> dict[str, Any]:
    """The requests after which the person paused: what they saw, and how soon after their last key."""
    paused = [s for s in samples if s.at_pause]
    answers = [s.client_ms for s in paused if answered(s) and s.client_ms is not None]
    seen = [s.client_ms for s in paused if shown(s) and s.client_ms is not None]
    within = [s for s in paused if shown(s) and s.client_ms is not None and s.client_ms <= s.gap_s * 1000]
    return {
        "requests": len(paused),
        "answered_rate": common.ratio(len(answers), len(paused)),
        "p50_ms": _p(answers, 50),
        "p95_ms": _p(answers, 95),
        "shown_rate": common.ratio(len(seen), len(paused)),
        "shown_within_pause_rate": common.ratio(len(within), len(paused)),
        "time_to_shown_p50_ms": _p(seen, 50),
        "time_to_shown_p90_ms": _p(seen, 90),
    }


def line_summary(samples: list[Sample]) -> dict[str, Any]:
    """Per retyped line: how long (and how many characters) until the first suggestion was shown."""
    lines: dict[tuple[int, int], list[Sample]] = defaultdict(list)
    for s in samples:
        lines[(s.file, s.line)].append(s)
    waits, chars = [], []
    for group in lines.values():
        first = next((s for s in group if shown(s)), None)
        if first is not None and first.received is not None:
            waits.append((first.received - group[0].sent) * 1000)
            chars.append(len(first.typed))
    return {
        "lines": len(lines),
        "with_suggestion_rate": common.ratio(len(waits), len(lines)),
        "first_shown_p50_ms": _p(waits, 50),
        "first_shown_p90_ms": _p(waits, 90),
        "first_shown_after_chars_p50": percentile(chars, 50),
    }


def model_work(calls: Sequence[EvalCall] | None, start: float, end: float, typed_chars: int) -> dict[str, Any]:
    """The model's work while the person typed (decode calls starting in [start, end]); a note without any."""
    if not calls:
        return {"probe": "no llama.cpp decode calls seen (fake model?)"}
    during = [c for c in calls if start <= c.start <= end]
    prompt = [c for c in during if c.kind == "p"]
    tokens, prompt_s = sum(c.tokens for c in prompt), sum(c.end - c.start for c in prompt)
    busy_s = sum(c.end - c.start for c in during)
    return {
        "prompt_tokens": tokens,
        "prompt_tokens_per_typed_char": common.ratio(tokens, typed_chars),
        "prompt_eval_s": round(prompt_s, 2),
        "prompt_eval_tokens_per_s": round(tokens / prompt_s, 1) if prompt_s else None,
        "generated_tokens": sum(c.tokens for c in during if c.kind == "g"),
        "busy_rate": common.ratio(busy_s, end - start),
    }


def server_summary(samples: list[Sample]) -> dict[str, Any]:
    """The server-phase metrics: client-side latency, sources, overheads, suggestion quality."""
    done = [s for s in samples if answered(s)]
    client = [s.client_ms for s in done if s.client_ms is not None]
    counts = Counter(classify(s) for s in samples)
    attempted = len(done) - counts["none"]
    with_stats = [s for s in done if s.stats]
    known = ("cache", "typed", "import", "none", "kv", "fresh")  # sources whose model time is known (or zero)
    overhead = [s.stats["latencyMs"] - s.stats["modelMs"] for s in with_stats if classify(s) in known]
    transport = [s.client_ms - s.stats["latencyMs"] for s in with_stats if s.client_ms is not None]
    out: dict[str, Any] = {k: v for k, v in common.latency_summary(client).items() if k != "count"}
    out.update(requests=len(samples), answered=len(done), cancelled=counts["cancelled"], errors=counts["error"])
    out["cache_hit_rate"] = common.ratio(counts["cache"] + counts["typed"], attempted)
    out.update(suggestion_quality(samples))
    out["server_overhead_p50_ms"] = _p(overhead, 50)
    out["server_overhead_p95_ms"] = _p(overhead, 95)
    out["transport_p50_ms"] = _p(transport, 50)
    out["at_pause"] = pause_summary(samples)
    out["per_line"] = line_summary(samples)
    out["by_source"] = per_source(samples)
    reasons = Counter(f"{s.stats.get('source')}:{s.stats.get('reason') or '-'}" for s in with_stats)
    out["reasons"] = dict(reasons.most_common())
    return out


def mean_predicted(samples: list[Sample]) -> float | None:
    """Mean correct prefix on the line (as the one-line baseline) over the given requests (0: nothing shown)."""
    if not samples:
        return None
    return round(sum(common.common_prefix_len(s.text or "", s.remaining) if shown(s) else 0 for s in samples) / len(samples), 2)


def sample_record(s: Sample) -> dict[str, Any]:
    return {
        "file": s.file, "line": s.line, "character": s.character, "source": classify(s),
        "client_ms": common.round_ms(s.client_ms), "gap_ms": common.round_ms(s.gap_s * 1000),
        "text": s.text, "remaining": s.remaining,
        "predicted": common.common_prefix_len(s.text or "", s.ahead) if shown(s) else 0,
        "stats": {k: v for k, v in (s.stats or {}).items() if k not in ("uri", "line", "character", "text")},
    }  # fmt: skip
