"""Latency benchmark: a person retyping lines of real code, against slm-lsp over LSP.

    python bench/latency.py --repo DIR [--files N] [--lines-per-file K] [--seed S]
        [--json OUT.json] [--plot OUT.png] [--max-seconds T] [--baseline-requests M]

Seeded picks of N source files of DIR and K code lines in each. Per line: the
line's text is deleted (its indentation kept), then typed back one key at a
time at a human pace (bench/common.py: typing_delays). Every keystroke sends an
incremental didChange and an automatic inlineCompletion request, without
waiting for the previous answer; a request still unanswered at the next key is
cancelled with $/cancelRequest, as editors do. The server (a subprocess,
``python -m slm_lsp``, default settings, a fresh temporary cache) reports what
it did per request through slm/completionStats.

Then, in the same process and after the server has exited, the naive baseline:
for M of the same document states, a plain FIM prompt of the same windows,
evaluated from scratch (no KV reuse, no cache, no deadline), greedy to the end
of the line or 24 tokens. Prints JSON (see bench/README.md for every metric)
and optionally writes it with per-request details and a latency CDF picture.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict, deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `slm_lsp` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from bench import common
from bench.common import SourceFile

OPEN_PAUSE_S = 1.0  # the person reads the file a moment before typing
READY_TIMEOUT_S = 300.0  # model load, assembly of the model file included
DRAIN_TIMEOUT_S = 5.0  # how long the last request of a file may take before the file is closed
SHUTDOWN_TIMEOUT_S = 15.0
BASELINE_TOKENS = 24
BASELINE_RESERVE_S = 20.0  # model load for the baseline, plus BASELINE_EACH_S per baseline request
BASELINE_EACH_S = 4.0
KV_SHARE = 0.5  # a model call reusing at least this share of prompt tokens counts as "kv"
SOURCES = ("cache", "typed", "kv", "fresh", "deadline", "none", "cancelled", "error")


@dataclass
class Sample:
    """One keystroke's request and what became of it."""

    index: int
    file: int  # index into the picked files
    uri: str
    line: int
    character: int
    indent: str
    typed: str  # the line's text typed so far (after the indentation)
    remaining: str  # what is still to be typed on the line
    msg_id: str
    sent: float = 0.0
    received: float | None = None
    cancelled_at: float | None = None
    error: str = ""
    text: str | None = None  # the suggestion (None: no answer)
    stats: dict | None = None

    @property
    def client_ms(self) -> float | None:
        return None if self.received is None else (self.received - self.sent) * 1000


def classify(s: Sample) -> str:
    """cache | typed | kv | fresh | deadline | none | cancelled | error (README: per-source)."""
    if s.cancelled_at is not None:
        return "cancelled"
    if s.error or s.received is None:
        return "error"
    stats = s.stats or {}
    source = stats.get("source")
    if source in ("cache", "typed", "none"):
        return source
    if source != "model":
        return "error"
    prompt, reused = stats.get("promptTokens") or 0, stats.get("reusedTokens") or 0
    if prompt == 0:
        return "deadline"  # no reply from the model in time: prompt evaluation still running
    return "kv" if reused >= KV_SHARE * prompt else "fresh"


def shown(s: Sample) -> bool:
    return classify(s) not in ("cancelled", "error") and bool(s.text)


def suggestion_quality(samples: list[Sample]) -> dict[str, Any]:
    """Typed characters, saved characters and predicted prefixes (README: chars_saved_rate)."""
    typed = saved = full = 0
    predicted: list[int] = []
    for s in samples:
        if s.remaining:
            typed += 1
        if not shown(s):
            continue
        assert s.text is not None
        n = common.common_prefix_len(s.text, s.remaining)
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
    for source in SOURCES:
        group = groups.get(source, [])
        client = [s.client_ms for s in group if s.client_ms is not None and source != "cancelled"]
        engine = [s.stats["latencyMs"] for s in group if s.stats and source != "cancelled"]
        model = [s.stats["modelMs"] for s in group if s.stats and s.stats.get("modelMs") and source != "cancelled"]
        row: dict[str, Any] = {"count": len(group)}
        if source == "cancelled":  # how old a request was when the next key cancelled it
            ages = [(s.cancelled_at - s.sent) * 1000 for s in group if s.cancelled_at is not None]
            row.update(common.latency_summary(ages, "age_"))
        else:
            row.update(p50_ms=common._round(common.percentile(client, 50)), p99_ms=common._round(common.percentile(client, 99)))
            row.update(engine_p50_ms=common._round(common.percentile(engine, 50)), model_p50_ms=common._round(common.percentile(model, 50)))
            row["shown_rate"] = common.ratio(sum(shown(s) for s in group), len(group))
        out[source] = row
    return out


def server_summary(samples: list[Sample]) -> dict[str, Any]:
    """The server-phase metrics: client-side latency, sources, overheads, suggestion quality."""
    answered = [s for s in samples if classify(s) not in ("cancelled", "error")]
    client = [s.client_ms for s in answered if s.client_ms is not None]
    counts = Counter(classify(s) for s in samples)
    attempted = len(answered) - counts["none"]
    with_stats = [s for s in answered if s.stats]
    overhead = [s.stats["latencyMs"] - s.stats["modelMs"] for s in with_stats if classify(s) != "deadline"]
    transport = [s.client_ms - s.stats["latencyMs"] for s in with_stats if s.client_ms is not None]
    out: dict[str, Any] = {k: v for k, v in common.latency_summary(client).items() if k != "count"}
    out.update(requests=len(samples), answered=len(answered), cancelled=counts["cancelled"], errors=counts["error"])
    out["cache_hit_rate"] = common.ratio(counts["cache"] + counts["typed"], attempted)
    out.update(suggestion_quality(samples))
    out["server_overhead_p50_ms"] = common._round(common.percentile(overhead, 50))
    out["server_overhead_p95_ms"] = common._round(common.percentile(overhead, 95))
    out["transport_p50_ms"] = common._round(common.percentile(transport, 50))
    out["by_source"] = per_source(samples)
    reasons = Counter(f"{s.stats.get('source')}:{s.stats.get('reason') or '-'}" for s in with_stats)
    out["reasons"] = dict(reasons.most_common())
    return out


# -- the replay ---------------------------------------------------------------
class Typist:
    """One LSP client typing into the server; every key follows the schedule, never an answer."""

    def __init__(self, client: LanguageClient, files: list[SourceFile]) -> None:
        self.client = client
        self.files = files
        self.samples: list[Sample] = []
        self.stats: dict[tuple[str, int, int], deque] = defaultdict(deque)
        self.pending: Sample | None = None
        self.versions: dict[str, int] = {}
        self.messages: list[str] = []

    def on_stats(self, params: Any) -> None:
        data = params if isinstance(params, dict) else dict(getattr(params, "__dict__", {}))
        self.stats[(data.get("uri"), data.get("line"), data.get("character"))].append(data)

    def request(self, file: int, uri: str, line: int, indent: str, typed: str, remaining: str) -> None:
        self.cancel_pending()
        s = Sample(len(self.samples), file, uri, line, len(indent) + len(typed), indent, typed, remaining, f"b{len(self.samples)}")
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri),
            position=types.Position(line, s.character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        )
        self.samples.append(s)
        self.pending = s
        s.sent = time.perf_counter()
        future = self.client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=s.msg_id)
        future.add_done_callback(partial(self._answered, s))

    def _answered(self, s: Sample, future: Future) -> None:
        s.received = time.perf_counter()
        if (exc := future.exception()) is not None:
            s.error = str(exc) or type(exc).__name__
            return
        result = future.result()
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        text = items[0].insert_text if items else ""
        s.text = text if isinstance(text, str) else getattr(text, "value", "")

    def cancel_pending(self) -> None:
        s, self.pending = self.pending, None
        if s is not None and s.received is None:
            s.cancelled_at = time.perf_counter()
            self.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=s.msg_id))

    def change(self, uri: str, line: int, start: int, end: int, text: str) -> None:
        self.versions[uri] += 1
        rng = types.Range(types.Position(line, start), types.Position(line, end))
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri, self.versions[uri]),
                content_changes=[types.TextDocumentContentChangePartial(range=rng, text=text)],
            )
        )

    async def type_file(self, file: int, rows: list[int], seed: str, deadline: float) -> int:
        """Retype the rows of one file; returns how many lines were typed before the deadline."""
        sf = self.files[file]
        uri, lines = sf.path.as_uri(), sf.text.split("\n")
        first_indent, _ = common.split_indent(lines[rows[0]])
        opened = lines[: rows[0]] + [first_indent] + lines[rows[0] + 1 :]
        self.versions[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, sf.language_id, 1, "\n".join(opened)))
        )
        await asyncio.sleep(OPEN_PAUSE_S)
        done = 0
        for n, row in enumerate(rows):
            if time.monotonic() >= deadline:
                break
            await self.type_line(file, uri, row, lines[row], common.typing_delays(common.split_indent(lines[row])[1], f"{seed}:{sf.rel}:{row}"), first=n == 0)
            done += 1
        await self.drain()
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
        return done

    async def type_line(self, file: int, uri: str, row: int, original: str, delays: list[float], first: bool) -> None:
        indent, body = common.split_indent(original)
        if not first:  # the line still holds its text: delete it, as the person would
            await asyncio.sleep(delays[0])
            self.cancel_pending()
            self.change(uri, row, len(indent), len(original), "")
        self.request(file, uri, row, indent, "", body)
        for i, ch in enumerate(body):
            await asyncio.sleep(delays[i + 1])
            self.cancel_pending()
            self.change(uri, row, len(indent) + i, len(indent) + i, ch)
            self.request(file, uri, row, indent, body[: i + 1], body[i + 1 :])

    async def drain(self) -> None:
        s = self.pending
        end = time.monotonic() + DRAIN_TIMEOUT_S
        while s is not None and s.received is None and time.monotonic() < end:
            await asyncio.sleep(0.01)
        if s is not None and s.received is None:
            self.cancel_pending()

    def join_stats(self) -> None:
        for s in self.samples:
            queue = self.stats.get((s.uri, s.line, s.character))
            if queue:
                s.stats = queue.popleft()
