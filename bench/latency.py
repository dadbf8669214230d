"""Latency benchmark: a person retyping lines of real code, against slm-lsp over LSP.

    python bench/latency.py --repo DIR [--files N] [--lines-per-file K] [--seed S]
        [--json OUT.json] [--plot OUT.png] [--max-seconds T] [--baseline-requests M]
        [--settings JSON] [--warm-restart] [--fake-model]

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
BASELINE_EACH_S = 8.0  # a from-scratch prompt takes 2-8 s on 2 busy cores
WARM_RESERVE_S, WARM_EACH_S = 15.0, 8.0  # time kept for --warm-restart: start-up, then per line
KV_SHARE = 0.5  # a model call reusing at least this share of prompt tokens counts as "kv"
# an editor that shows ghost text and syncs incrementally (no work-done progress: nothing to answer)
CAPABILITIES = types.ClientCapabilities(
    text_document=types.TextDocumentClientCapabilities(
        synchronization=types.TextDocumentSyncClientCapabilities(did_save=True),
        inline_completion=types.InlineCompletionClientCapabilities(),
    )
)
SOURCES = ("cache", "typed", "import", "joined", "kv", "fresh", "deadline", "none", "cancelled", "error")


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
    gap_s: float = float("inf")  # time until the next keystroke on this line (inf after its last one)
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
            row.update(p50_ms=common.round_ms(common.percentile(client, 50)), p99_ms=common.round_ms(common.percentile(client, 99)))
            row.update(engine_p50_ms=common.round_ms(common.percentile(engine, 50)), model_p50_ms=common.round_ms(common.percentile(model, 50)))
            row["shown_rate"] = common.ratio(sum(shown(s) for s in group), len(group))
        out[source] = row
    return out


def pause_summary(samples: list[Sample]) -> dict[str, Any]:
    """Requests after which the person paused (>= 300 ms or the end of the line): what they saw then."""
    paused = [s for s in samples if s.gap_s >= common.PAUSE_MIN_S]
    answered = [s.client_ms for s in paused if classify(s) not in ("cancelled", "error") and s.client_ms is not None]
    out: dict[str, Any] = {"requests": len(paused), "answered_rate": common.ratio(len(answered), len(paused))}
    out.update({k: v for k, v in common.latency_summary(answered).items() if k in ("p50_ms", "p95_ms")})
    out["shown_rate"] = common.ratio(sum(shown(s) for s in paused), len(paused))
    return out


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
        "first_shown_p50_ms": common.round_ms(common.percentile(waits, 50)),
        "first_shown_p90_ms": common.round_ms(common.percentile(waits, 90)),
        "first_shown_after_chars_p50": common.percentile(chars, 50),
    }


def server_summary(samples: list[Sample]) -> dict[str, Any]:
    """The server-phase metrics: client-side latency, sources, overheads, suggestion quality."""
    answered = [s for s in samples if classify(s) not in ("cancelled", "error")]
    client = [s.client_ms for s in answered if s.client_ms is not None]
    counts = Counter(classify(s) for s in samples)
    attempted = len(answered) - counts["none"]
    with_stats = [s for s in answered if s.stats]
    known = ("cache", "typed", "import", "none", "kv", "fresh")  # sources whose model time is known (or zero)
    overhead = [s.stats["latencyMs"] - s.stats["modelMs"] for s in with_stats if classify(s) in known]
    transport = [s.client_ms - s.stats["latencyMs"] for s in with_stats if s.client_ms is not None]
    out: dict[str, Any] = {k: v for k, v in common.latency_summary(client).items() if k != "count"}
    out.update(requests=len(samples), answered=len(answered), cancelled=counts["cancelled"], errors=counts["error"])
    out["cache_hit_rate"] = common.ratio(counts["cache"] + counts["typed"], attempted)
    out.update(suggestion_quality(samples))
    out["server_overhead_p50_ms"] = common.round_ms(common.percentile(overhead, 50))
    out["server_overhead_p95_ms"] = common.round_ms(common.percentile(overhead, 95))
    out["transport_p50_ms"] = common.round_ms(common.percentile(transport, 50))
    out["at_pause"] = pause_summary(samples)
    out["per_line"] = line_summary(samples)
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
        data = params if isinstance(params, dict) else params._asdict()  # pygls gives a namedtuple
        self.stats[(data.get("uri"), data.get("line"), data.get("character"))].append(data)

    def request(self, file: int, uri: str, line: int, indent: str, typed: str, remaining: str, gap_s: float) -> None:
        self.cancel_pending()
        n = len(self.samples)
        s = Sample(n, file, uri, line, len(indent) + len(typed), indent, typed, remaining, f"b{n}", gap_s)
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
                text_document=types.VersionedTextDocumentIdentifier(version=self.versions[uri], uri=uri),
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
            await self.type_line(file, uri, row, lines[row], f"{seed}:{sf.rel}:{row}", first=n == 0)
            done += 1
        await self.drain()
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
        return done

    async def type_line(self, file: int, uri: str, row: int, original: str, seed: str, first: bool) -> None:
        indent, body = common.split_indent(original)
        delays = common.typing_delays(body, seed)
        if not first:  # the line still holds its text: delete it, as the person would
            await asyncio.sleep(delays[0])
            self.cancel_pending()
            self.change(uri, row, len(indent), len(original), "")
        gaps = delays[1:] + [float("inf")]
        self.request(file, uri, row, indent, "", body, gaps[0])
        for i, ch in enumerate(body):
            await asyncio.sleep(delays[i + 1])
            self.cancel_pending()
            self.change(uri, row, len(indent) + i, len(indent) + i, ch)
            self.request(file, uri, row, indent, body[: i + 1], body[i + 1 :], gaps[i + 1])

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


# -- the server phase -----------------------------------------------------------
@dataclass
class ServerRun:
    samples: list[Sample]
    lines_typed: int
    peak_rss_mb: float | None
    messages: list[str]
    stderr_tail: list[str] = field(default_factory=list)
    stopped_early: bool = False


def server_env(cache_dir: Path, config_home: Path, fake: bool = False) -> dict[str, str]:
    """The real model, a fresh cache, no user config file: a run measures the defaults."""
    env = {**os.environ, "SLM_LSP_CACHE_DIR": str(cache_dir), "XDG_CONFIG_HOME": str(config_home)}
    env.pop("SLM_LSP_BACKEND", None)
    env.pop("SLM_LSP_DISABLE_CACHE", None)
    if fake:
        env["SLM_LSP_BACKEND"] = "fake"
    return env


async def run_server(args, root: Path, picks: list[tuple[SourceFile, list[int]]], env: dict, deadline: float) -> ServerRun:
    logging.getLogger("pygls").setLevel(logging.ERROR)
    client = LanguageClient("slm-lsp-bench", "1")
    typist = Typist(client, [sf for sf, _ in picks])

    @client.feature("slm/completionStats")
    def completion_stats(params: Any) -> None:
        typist.on_stats(params)

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def show_message(params: types.ShowMessageParams) -> None:
        typist.messages.append(params.message)

    for method in ("slm/status", types.WINDOW_LOG_MESSAGE):
        client.feature(method)(_ignore)
    await client.start_io(sys.executable, "-m", "slm_lsp", env=env, cwd=str(root))
    stderr_tail: deque[str] = deque(maxlen=40)
    drain = asyncio.create_task(_read_stderr(client, stderr_tail))
    run = ServerRun(typist.samples, 0, None, typist.messages)
    try:
        await client.initialize_async(types.InitializeParams(
            capabilities=CAPABILITIES, root_uri=root.as_uri(),
            initialization_options={**args.settings, "stats": True},
        ))  # fmt: skip
        client.initialized(types.InitializedParams())
        status = await _wait_ready(client)
        if status.get("state") != "ready":
            raise SystemExit(f"the server is not ready: {status}; stderr:\n" + "\n".join(stderr_tail))
        for n, (sf, rows) in enumerate(picks):
            if time.monotonic() >= deadline:
                run.stopped_early = True
                break
            done = await typist.type_file(n, rows, str(args.seed), deadline)
            run.lines_typed += done
            run.stopped_early |= done < len(rows)
            _progress(typist.samples, n + 1, len(picks), sf, done)
        run.peak_rss_mb = peak_rss_mb(client._server.pid if client._server else None)
        await asyncio.wait_for(client.shutdown_async(None), SHUTDOWN_TIMEOUT_S)
        client.exit(None)
        await asyncio.wait_for(client.stop(), SHUTDOWN_TIMEOUT_S)
    finally:
        if client._server is not None and client._server.returncode is None:
            client._server.kill()  # only the server process this run started
        drain.cancel()
    typist.join_stats()
    run.stderr_tail = list(stderr_tail)
    return run


def _ignore(params: Any) -> None:
    pass


async def _read_stderr(client: LanguageClient, tail: deque) -> None:
    stream = client._server.stderr if client._server else None
    while stream is not None and (line := await stream.readline()):
        tail.append(line.decode("utf-8", "replace").rstrip())


async def _wait_ready(client: LanguageClient) -> dict:
    end = time.monotonic() + READY_TIMEOUT_S
    while True:
        status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="slm.status"))
        if status.get("state") in ("ready", "error", "disabled") or time.monotonic() > end:
            return status
        await asyncio.sleep(0.2)


def _progress(samples: list[Sample], n: int, total: int, sf: SourceFile, lines: int) -> None:
    client = [s.client_ms for s in samples if s.client_ms is not None and s.cancelled_at is None]
    cancelled = sum(s.cancelled_at is not None for s in samples)
    p50 = common.percentile(client, 50)
    print(f"[{n}/{total}] {sf.rel}: {lines} lines; {len(samples)} requests so far, {cancelled} cancelled, "
          f"p50 {p50 or 0:.0f} ms", file=sys.stderr, flush=True)  # fmt: skip


def peak_rss_mb(pid: int | None) -> float | None:
    """VmHWM (peak resident set) of a live process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, TypeError):
        pass
    return None


# -- the naive baseline -----------------------------------------------------------
@dataclass
class BaselineSample:
    index: int  # the server sample with the same document state
    ms: float
    prompt_tokens: int
    text: str
    predicted: int


def document_state(sf: SourceFile, s: Sample) -> str:
    """The document as it was when the sample's request went out (only its line differs)."""
    lines = sf.text.split("\n")
    lines[s.line] = s.indent + s.typed
    return "\n".join(lines)


def baseline_states(samples: list[Sample], m: int) -> list[Sample]:
    """m states spread over the replay among answered requests the server tried to complete."""
    eligible = [s for s in samples if s.stats and s.stats.get("mode") in ("line", "block") and s.cancelled_at is None]
    return [eligible[i] for i in common.spread(len(eligible), m)]


def run_baseline(files: list[SourceFile], states: list[Sample], cfg, deadline: float) -> list[BaselineSample]:
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
            sf = files[s.file]
            t0 = time.perf_counter()
            cc = cfg.context
            ctx = context.build_context(
                document_state(sf, s), s.line, s.character, context_language(sf),
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


def context_language(sf: SourceFile) -> str:
    from slm_lsp import languages

    return languages.detect_language(sf.rel, sf.language_id)


# -- report ------------------------------------------------------------------------
def git_rev(path: Path) -> str | None:
    """The short commit of the repository rooted at path (+dirty), or None when path is no repository root."""
    try:
        top = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=10)
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != path.resolve():
            return None
        rev = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode != 0:
        return None
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine_info(load_at_start: tuple[float, float, float], cfg) -> dict[str, Any]:
    cpu = next((l.split(":", 1)[1].strip() for l in _read_lines("/proc/cpuinfo") if l.startswith("model name")), None)
    mem = next((int(l.split()[1]) // 1024 for l in _read_lines("/proc/meminfo") if l.startswith("MemTotal")), None)
    try:
        model = model_path(cfg)
        model_info = {"file": model.name, "mb": round(model.stat().st_size / 2**20, 1)}
    except Exception as exc:
        model_info = {"error": str(exc)}
    try:
        import llama_cpp

        llama_version = llama_cpp.__version__
    except ImportError:
        llama_version = None
    return {
        "cpu": cpu, "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)), "mem_mb": mem,
        "loadavg_start": [round(x, 2) for x in load_at_start], "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0], "llama_cpp_python": llama_version, "model": model_info,
        "slm_lsp_rev": git_rev(Path(__file__).resolve().parent.parent),
    }  # fmt: skip


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def effective_config(args):
    """The server's settings for this run: defaults plus --settings (as the server merges them)."""
    from slm_lsp.config import Config, merge

    config, problems = merge(Config(), args.settings)
    if problems:
        raise SystemExit("--settings: " + "; ".join(problems))
    return config


def settings(args) -> dict[str, Any]:
    cfg = dataclasses.asdict(effective_config(args))
    return {
        "bench": {k: getattr(args, k) for k in ("files", "lines_per_file", "seed", "max_seconds", "baseline_requests")},
        "typing": {"key_ms": [common.KEY_MIN_S * 1000, common.KEY_MAX_S * 1000], "pause_ms": [common.PAUSE_MIN_S * 1000, common.PAUSE_MAX_S * 1000], "pause_p": common.PAUSE_P},
        "initialization_options": {**args.settings, "stats": True},
        "server": {k: cfg[k] for k in ("completion", "context", "model")},
        "cache": "fresh temporary directory (memory + disk)",
        "baseline": {"max_tokens": BASELINE_TOKENS, "stop": "\\n", "kv_reuse": False, "heal": False, "cache": False},
    }  # fmt: skip


def baseline_summary(base: list[BaselineSample], samples: list[Sample], ours: dict[str, Any]) -> dict[str, Any]:
    ms = [b.ms for b in base]
    paired = [samples[b.index].client_ms for b in base if samples[b.index].client_ms is not None]
    p50, ours_p50, pause_p50 = common.percentile(ms, 50), ours["p50_ms"], ours["at_pause"]["p50_ms"]
    paired_p50 = common.percentile(paired, 50)
    return {
        "baseline_requests": len(base),
        "baseline_p50_ms": common.round_ms(p50), "baseline_p95_ms": common.round_ms(common.percentile(ms, 95)),
        "baseline_prompt_tokens_p50": common.percentile([b.prompt_tokens for b in base], 50),
        "baseline_mean_predicted_chars": round(sum(b.predicted for b in base) / len(base), 2) if base else None,
        "speedup_p50": common.ratio(p50, ours_p50) if p50 is not None and ours_p50 else None,
        "speedup_p50_at_pause": common.ratio(p50, pause_p50) if p50 is not None and pause_p50 else None,
        "ours_on_baseline_states_p50_ms": common.round_ms(paired_p50),
        "ours_on_baseline_states_mean_predicted_chars": _mean_predicted([samples[b.index] for b in base]),
        "speedup_p50_same_states": common.ratio(p50, paired_p50) if p50 is not None and paired_p50 else None,
    }  # fmt: skip


def _mean_predicted(samples: list[Sample]) -> float | None:
    """Mean correct prefix over the given requests (0 for those that showed nothing)."""
    if not samples:
        return None
    return round(sum(common.common_prefix_len(s.text or "", s.remaining) if shown(s) else 0 for s in samples) / len(samples), 2)


def sample_record(s: Sample) -> dict[str, Any]:
    return {
        "file": s.file, "line": s.line, "character": s.character, "source": classify(s),
        "client_ms": common.round_ms(s.client_ms), "text": s.text, "remaining": s.remaining,
        "predicted": common.common_prefix_len(s.text or "", s.remaining) if shown(s) else 0,
        "stats": {k: v for k, v in (s.stats or {}).items() if k not in ("uri", "line", "character", "text")},
    }  # fmt: skip


# -- main ----------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path, required=True, help="repository whose code is retyped")
    p.add_argument("--files", type=int, default=5, help="source files to pick (default 5)")
    p.add_argument("--lines-per-file", type=int, default=8, help="lines to retype in each file (default 8)")
    p.add_argument("--seed", type=int, default=1, help="picks files, lines and keystroke timing (default 1)")
    p.add_argument("--json", type=Path, help="write the summary and every request here")
    p.add_argument("--plot", type=Path, help="write a latency CDF (PNG), ours vs baseline, here")
    p.add_argument("--max-seconds", type=float, default=540, help="whole run bound; typing stops early to fit (default 540)")
    p.add_argument("--baseline-requests", type=int, default=20, help="document states replayed by the naive baseline (default 20)")
    p.add_argument("--settings", type=json.loads, default={}, help='extra initializationOptions as JSON, e.g. \'{"model": {"nThreads": 1}}\' (default: none, the defaults)')
    p.add_argument("--warm-restart", action="store_true", help="then retype the first file on a restarted server that finds the disk cache")
    p.add_argument("--fake-model", action="store_true", help="plumbing check only: the server's fake backend, no baseline")
    args = p.parse_args(argv)
    if args.fake_model:
        args.baseline_requests = 0
    if args.files < 1 or args.lines_per_file < 1 or args.baseline_requests < 0 or args.max_seconds <= 0:
        p.error("--files and --lines-per-file must be >= 1, --baseline-requests >= 0, --max-seconds > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = effective_config(args)  # fails early on bad --settings
    start, load = time.monotonic(), os.getloadavg()
    end = start + args.max_seconds
    reserve = BASELINE_RESERVE_S + BASELINE_EACH_S * args.baseline_requests if args.baseline_requests else 0.0
    warm_budget = WARM_RESERVE_S + WARM_EACH_S * args.lines_per_file if args.warm_restart else 0.0
    root = args.repo.resolve()
    picks = [(sf, common.pick_lines(sf, args.lines_per_file, args.seed)) for sf in common.pick_files(root, args.files, args.seed)]
    picks = [(sf, rows) for sf, rows in picks if rows]
    if not picks:
        print(f"no suitable source files under {root}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="slm-bench-") as tmp:
        env = server_env(Path(tmp) / "cache", Path(tmp) / "config", args.fake_model)
        run = asyncio.run(run_server(args, root, picks, env, end - reserve - warm_budget))
        warm = asyncio.run(run_server(args, root, picks[:1], env, end - reserve)) if args.warm_restart else None
    files = [sf for sf, _ in picks]
    ours = server_summary(run.samples)
    base = run_baseline(files, baseline_states(run.samples, args.baseline_requests), cfg, end) if args.baseline_requests else []
    summary = {"repo": root.name, "repo_rev": git_rev(root), **ours, **baseline_summary(base, run.samples, ours)}
    if warm is not None:
        summary["warm_restart"] = warm_summary(warm)
    summary.update(peak_rss_mb=run.peak_rss_mb, files=[sf.rel for sf in files], lines_typed=run.lines_typed,
                   stopped_early=run.stopped_early, wall_s=round(time.monotonic() - start, 1),
                   server_messages=run.messages, machine=machine_info(load, cfg), settings=settings(args))  # fmt: skip
    if args.plot:
        summary["plot_renderer"] = plot(args.plot, root.name, run.samples, base, cfg.completion.deadline_ms)
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        details = {"requests_detail": [sample_record(s) for s in run.samples],
                   "baseline_detail": [dataclasses.asdict(b) for b in base], "server_stderr_tail": run.stderr_tail}  # fmt: skip
        args.json.write_text(json.dumps({**summary, **details}, indent=1))
    return 0


def warm_summary(run: ServerRun) -> dict[str, Any]:
    """The first file retyped by a restarted server that finds the first run's disk cache."""
    out = server_summary(run.samples)
    keep = ("p50_ms", "p95_ms", "requests", "answered", "cancelled", "cache_hit_rate", "shown_rate", "chars_saved_rate")
    return {"lines_typed": run.lines_typed, **{k: out[k] for k in keep}, "sources": {k: v["count"] for k, v in out["by_source"].items() if v["count"]}}


def plot(path: Path, name: str, samples: list[Sample], base: list[BaselineSample], deadline_ms: float) -> str:
    answered = [s for s in samples if classify(s) not in ("cancelled", "error") and s.client_ms is not None]
    series = {
        "slm-lsp, answered requests": [s.client_ms for s in answered],
        "slm-lsp, at pauses": [s.client_ms for s in answered if s.gap_s >= common.PAUSE_MIN_S],
        "naive baseline": [b.ms for b in base],
    }
    title = f"slm-lsp inline completion latency while typing, {name} ({len(samples)} requests, {len(samples) - len(answered)} cancelled)"
    return common.plot_cdf(path, series, title, deadline_ms)


if __name__ == "__main__":
    sys.exit(main())
