"""Latency benchmark: a person typing real code, against slm-lsp over LSP.

    python bench/latency.py --repo DIR [--scenario line|block] [--files N] [--lines-per-file K]
        [--seed S] [--json OUT.json] [--plot OUT.png] [--max-seconds T] [--baseline-requests M]
        [--pause-wait S] [--server-src DIR] [--settings JSON] [--warm-restart] [--fake-model]

Seeded picks of N source files of DIR; per file, K code lines retyped one by
one (``line``) or one function body of at most K lines typed top to bottom as
new code (``block``); bench/typist.py makes the keystroke plans, at a human
pace. Every keystroke sends an incremental didChange and an automatic
inlineCompletion request, without waiting for the previous answer; a request
still unanswered at the next key is cancelled with $/cancelRequest, as editors
do. When the person pauses (300-800 ms) and no answer has come by the end of
the pause, they keep waiting for it, up to --pause-wait seconds after their
last key. The server (a subprocess, ``python -m slm_lsp`` through
bench/server_probe.py, which times llama.cpp's decode calls; default settings, a
fresh temporary cache) reports what it did per request through
slm/completionStats.

Then, in the same process and after the server has exited, the naive baseline
(bench/baseline.py) on M of the same document states. Prints JSON (see
bench/README.md for every metric, bench/metrics.py computes them) and
optionally writes it with per-request details and a latency CDF picture.
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
import time
from collections import defaultdict, deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `slm_lsp` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from bench import baseline, common, metrics, typist
from bench.metrics import EvalCall, Sample
from bench.typist import Edit, FilePlan, Key

READY_TIMEOUT_S = 300.0  # model load, assembly of the model file included
DRAIN_TIMEOUT_S = 5.0  # how long the last request of a file may take before the file is closed
SHUTDOWN_TIMEOUT_S = 15.0
POLL_S = 0.005  # how often a waiting person looks at the screen
PAUSE_WAIT_S = 5.0  # default --pause-wait
BASELINE_RESERVE_S = 20.0  # model load for the baseline, plus BASELINE_EACH_S per baseline request
BASELINE_EACH_S = 8.0  # a from-scratch prompt takes 2-8 s on 2 busy cores
WARM_RESERVE_S, WARM_EACH_S = 15.0, 8.0  # time kept for --warm-restart: start-up, then per line
PROBE = Path(__file__).resolve().parent / "server_probe.py"
# an editor that shows ghost text and syncs incrementally (no work-done progress: nothing to answer)
CAPABILITIES = types.ClientCapabilities(
    text_document=types.TextDocumentClientCapabilities(
        synchronization=types.TextDocumentSyncClientCapabilities(did_save=True),
        inline_completion=types.InlineCompletionClientCapabilities(),
    )
)


# -- the replay ---------------------------------------------------------------
class Typist:
    """One LSP client playing keystroke plans into the server; keys follow the plan, never an answer,
    except that after a pause the person waits for a pending answer (up to pause_wait_s after their key)."""

    def __init__(self, client: LanguageClient, plans: list[FilePlan], pause_wait_s: float) -> None:
        self.client = client
        self.plans = plans
        self.pause_wait_s = pause_wait_s
        self.samples: list[Sample] = []
        self.stats: dict[tuple[str, int, int], deque] = defaultdict(deque)
        self.pending: Sample | None = None
        self.versions: dict[str, int] = {}
        self.messages: list[str] = []
        self.waited_s = 0.0  # time added to scheduled pauses by waiting for an answer
        self.started: float | None = None  # time.monotonic() at the first didOpen, and after the last file
        self.finished: float | None = None

    def on_stats(self, params: Any) -> None:
        data = params if isinstance(params, dict) else params._asdict()  # pygls gives a namedtuple
        self.stats[(data.get("uri"), data.get("line"), data.get("character"))].append(data)

    def request(self, file: int, uri: str, key: Key) -> None:
        self.cancel_pending()
        n = len(self.samples)
        s = Sample(n, file, uri, key, f"b{n}")
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri),
            position=types.Position(key.line, key.character),
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

    def change(self, uri: str, edit: Edit) -> None:
        self.versions[uri] += 1
        rng = types.Range(types.Position(edit.line, edit.start), types.Position(edit.line, edit.end))
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(version=self.versions[uri], uri=uri),
                content_changes=[types.TextDocumentContentChangePartial(range=rng, text=edit.text)],
            )
        )

    async def wait_for_key(self, delay_s: float) -> None:
        """The scheduled delay; after a pause, also the pending answer, until pause_wait_s after its request."""
        await asyncio.sleep(delay_s)
        s = self.pending
        if s is None or not s.at_pause or s.received is not None:
            return
        t0 = time.perf_counter()
        while s.received is None and time.perf_counter() < s.sent + self.pause_wait_s:
            await asyncio.sleep(POLL_S)
        self.waited_s += time.perf_counter() - t0

    async def type_file(self, file: int, plan: FilePlan, deadline: float) -> int:
        """Play one file's plan; returns how many lines were typed before the deadline."""
        uri = plan.sf.path.as_uri()
        self.versions[uri] = 1
        self.started = self.started or time.monotonic()
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, plan.sf.language_id, 1, plan.opened))
        )
        await asyncio.sleep(typist.OPEN_PAUSE_S)
        done = 0
        for key in plan.keys:
            if key.starts_line and time.monotonic() >= deadline:
                break
            await self.wait_for_key(key.delay_s)
            self.cancel_pending()
            if key.edit is not None:
                self.change(uri, key.edit)
            self.request(file, uri, key)
            done += key.starts_line
        await self.drain()
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
        self.finished = time.monotonic()
        return done

    async def drain(self) -> None:
        s = self.pending
        end = time.monotonic() + max(DRAIN_TIMEOUT_S, self.pause_wait_s)
        while s is not None and s.received is None and time.monotonic() < end:
            await asyncio.sleep(POLL_S)
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
    typing_s: tuple[float, float] | None = None  # time.monotonic() at the first didOpen and after the last file
    waited_s: float = 0.0
    eval_calls: list[EvalCall] = field(default_factory=list)
    server_package: str | None = None  # where the server's slm_lsp was imported from


def server_env(cache_dir: Path, config_home: Path, fake: bool = False, server_src: Path | None = None,
               probe: Path | None = None) -> dict[str, str]:  # fmt: skip
    """The real model, a fresh cache, no user config file: a run measures the defaults.

    server_src: a source tree whose slm_lsp the server runs (first on PYTHONPATH).
    probe: where bench/server_probe.py writes the model's decode calls."""
    env = {**os.environ, "SLM_LSP_CACHE_DIR": str(cache_dir), "XDG_CONFIG_HOME": str(config_home)}
    env.pop("SLM_LSP_BACKEND", None)
    env.pop("SLM_LSP_DISABLE_CACHE", None)
    env.pop("SLM_BENCH_PROBE", None)
    if fake:
        env["SLM_LSP_BACKEND"] = "fake"
    if server_src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(server_src.resolve()), *filter(None, [env.get("PYTHONPATH")])])
    if probe is not None:
        env["SLM_BENCH_PROBE"] = str(probe)
    return env


def read_probe(path: Path) -> tuple[list[EvalCall], str | None]:
    """The decode calls bench/server_probe.py wrote, and the slm_lsp package the server ran."""
    calls, package = [], None
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return [], None
    for line in lines:
        if line.startswith("# slm_lsp "):
            package = line[len("# slm_lsp ") :]
            continue
        parts = line.split()
        if len(parts) == 4:  # a line cut by a kill is left out
            calls.append(EvalCall(float(parts[0]), float(parts[1]), int(parts[2]), parts[3]))
    return calls, package


async def run_server(args, root: Path, plans: list[FilePlan], env: dict, deadline: float) -> ServerRun:
    logging.getLogger("pygls").setLevel(logging.ERROR)
    client = LanguageClient("slm-lsp-bench", "1")
    person = Typist(client, plans, args.pause_wait)

    @client.feature("slm/completionStats")
    def completion_stats(params: Any) -> None:
        person.on_stats(params)

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def show_message(params: types.ShowMessageParams) -> None:
        person.messages.append(params.message)

    for method in ("slm/status", types.WINDOW_LOG_MESSAGE):
        client.feature(method)(_ignore)
    await client.start_io(sys.executable, str(PROBE), env=env, cwd=str(root))
    stderr_tail: deque[str] = deque(maxlen=40)
    drain = asyncio.create_task(_read_stderr(client, stderr_tail))
    run = ServerRun(person.samples, 0, None, person.messages)
    try:
        await client.initialize_async(types.InitializeParams(
            capabilities=CAPABILITIES, root_uri=root.as_uri(),
            initialization_options={**args.settings, "stats": True},
        ))  # fmt: skip
        client.initialized(types.InitializedParams())
        status = await _wait_ready(client)
        if status.get("state") != "ready":
            raise SystemExit(f"the server is not ready: {status}; stderr:\n" + "\n".join(stderr_tail))
        for n, plan in enumerate(plans):
            if time.monotonic() >= deadline:
                run.stopped_early = True
                break
            done = await person.type_file(n, plan, deadline)
            run.lines_typed += done
            run.stopped_early |= done < len(plan.rows)
            _progress(person.samples, n + 1, len(plans), plan.sf, done)
        run.peak_rss_mb = peak_rss_mb(client._server.pid if client._server else None)
        await asyncio.wait_for(client.shutdown_async(None), SHUTDOWN_TIMEOUT_S)
        client.exit(None)
        await asyncio.wait_for(client.stop(), SHUTDOWN_TIMEOUT_S)
    finally:
        if client._server is not None and client._server.returncode is None:
            client._server.kill()  # only the server process this run started
        drain.cancel()
    person.join_stats()
    run.stderr_tail = list(stderr_tail)
    run.waited_s = round(person.waited_s, 1)
    if person.started is not None and person.finished is not None:
        run.typing_s = (person.started, person.finished)
    if "SLM_BENCH_PROBE" in env:
        run.eval_calls, run.server_package = read_probe(Path(env["SLM_BENCH_PROBE"]))
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


def _progress(samples: list[Sample], n: int, total: int, sf: common.SourceFile, lines: int) -> None:
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


def machine_info(load_at_start: tuple[float, float, float], cfg, server_src: Path | None = None) -> dict[str, Any]:
    cpu = next((l.split(":", 1)[1].strip() for l in _read_lines("/proc/cpuinfo") if l.startswith("model name")), None)
    mem = next((int(l.split()[1]) // 1024 for l in _read_lines("/proc/meminfo") if l.startswith("MemTotal")), None)
    try:
        model = baseline.model_path(cfg)
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
        "server_src": str(server_src.resolve()) if server_src else None,
        "server_rev": git_rev(server_src) if server_src else None,
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


def server_settings(args, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """The settings in effect in the server's own slm_lsp (--server-src may be another version), run where it runs."""
    code = ("import dataclasses, json, sys\nfrom slm_lsp.config import Config, merge\n"
            "config, _ = merge(Config(), json.loads(sys.argv[1]))\nprint(json.dumps(dataclasses.asdict(config)))")  # fmt: skip
    try:
        out = subprocess.run([sys.executable, "-c", code, json.dumps(args.settings)], env=env, cwd=cwd,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        cfg = json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return {"error": str(exc)}
    return {k: cfg.get(k) for k in ("completion", "context", "model")}


def settings(args, server: dict[str, Any]) -> dict[str, Any]:
    return {
        "bench": {k: getattr(args, k) for k in ("scenario", "files", "lines_per_file", "seed", "max_seconds", "baseline_requests", "pause_wait")},
        "typing": {"key_ms": [common.KEY_MIN_S * 1000, common.KEY_MAX_S * 1000], "pause_ms": [common.PAUSE_MIN_S * 1000, common.PAUSE_MAX_S * 1000],
                   "pause_p": common.PAUSE_P, "open_pause_ms": typist.OPEN_PAUSE_S * 1000, "pause_wait_ms": args.pause_wait * 1000},
        "initialization_options": {**args.settings, "stats": True},
        "server": server,
        "cache": "fresh temporary directory (memory + disk)",
        "baseline": baseline.SETTINGS,
    }  # fmt: skip


# -- main ----------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path, required=True, help="repository whose code is typed")
    p.add_argument("--scenario", choices=typist.SCENARIOS, default="line", help="line: retype K lines per file; block: type one function body of <= K lines per file (default line)")
    p.add_argument("--files", type=int, default=5, help="source files to pick (default 5)")
    p.add_argument("--lines-per-file", type=int, default=8, help="lines to type in each file (default 8)")
    p.add_argument("--seed", type=int, default=1, help="picks files, lines and keystroke timing (default 1)")
    p.add_argument("--json", type=Path, help="write the summary and every request here")
    p.add_argument("--plot", type=Path, help="write a latency CDF (PNG), ours vs baseline, here")
    p.add_argument("--max-seconds", type=float, default=540, help="whole run bound; typing stops early to fit (default 540)")
    p.add_argument("--baseline-requests", type=int, default=20, help="document states replayed by the naive baseline (default 20)")
    p.add_argument("--pause-wait", type=float, default=PAUSE_WAIT_S, help=f"after a pause, wait for a pending answer until this long after the key (default {PAUSE_WAIT_S:g}; 0: never)")
    p.add_argument("--server-src", type=Path, help="run the server from this slm-lsp source tree (first on its PYTHONPATH); the benchmark is this one")
    p.add_argument("--settings", type=json.loads, default={}, help='extra initializationOptions as JSON, e.g. \'{"model": {"nThreads": 1}}\' (default: none, the defaults)')
    p.add_argument("--warm-restart", action="store_true", help="then retype the first file on a restarted server that finds the disk cache")
    p.add_argument("--fake-model", action="store_true", help="plumbing check only: the server's fake backend, no baseline")
    args = p.parse_args(argv)
    if args.fake_model:
        args.baseline_requests = 0
    if args.files < 1 or args.lines_per_file < 1 or args.baseline_requests < 0 or args.max_seconds <= 0 or args.pause_wait < 0:
        p.error("--files and --lines-per-file must be >= 1, --baseline-requests and --pause-wait >= 0, --max-seconds > 0")
    if args.server_src is not None and not (args.server_src / "slm_lsp" / "__init__.py").is_file():
        p.error(f"--server-src {args.server_src}: no slm_lsp package there")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = effective_config(args)  # fails early on bad --settings
    start, load = time.monotonic(), os.getloadavg()
    end = start + args.max_seconds
    reserve = BASELINE_RESERVE_S + BASELINE_EACH_S * args.baseline_requests if args.baseline_requests else 0.0
    warm_budget = WARM_RESERVE_S + WARM_EACH_S * args.lines_per_file if args.warm_restart else 0.0
    root = args.repo.resolve()
    plans = typist.plan_files(root, args.scenario, args.files, args.lines_per_file, args.seed)
    if not plans:
        print(f"no suitable source files under {root} for scenario {args.scenario}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="slm-bench-") as tmp:
        env = server_env(Path(tmp) / "cache", Path(tmp) / "config", args.fake_model, args.server_src, Path(tmp) / "probe.txt")
        server = server_settings(args, env, root)
        run = asyncio.run(run_server(args, root, plans, env, end - reserve - warm_budget))
        warm = None
        if args.warm_restart:
            env["SLM_BENCH_PROBE"] = str(Path(tmp) / "probe-warm.txt")
            warm = asyncio.run(run_server(args, root, plans[:1], env, end - reserve))
    ours = metrics.server_summary(run.samples)
    ours["model_work"] = metrics.model_work(run.eval_calls, *(run.typing_s or (0.0, 0.0)), ours["typed_chars"])
    base = baseline.run_baseline(plans, baseline.baseline_states(run.samples, args.baseline_requests), cfg, end) if args.baseline_requests else []
    summary = {"repo": root.name, "repo_rev": git_rev(root), "scenario": args.scenario, **ours,
               **baseline.baseline_summary(base, run.samples, ours)}  # fmt: skip
    if warm is not None:
        summary["warm_restart"] = warm_summary(warm)
    summary.update(peak_rss_mb=run.peak_rss_mb, files=[p.sf.rel for p in plans], lines_typed=run.lines_typed,
                   stopped_early=run.stopped_early, pause_waited_s=run.waited_s, wall_s=round(time.monotonic() - start, 1),
                   server_messages=run.messages, server_package=run.server_package,
                   machine=machine_info(load, cfg, args.server_src), settings=settings(args, server))  # fmt: skip
    if args.plot:
        deadline_ms = (server.get("completion") or {}).get("deadline_ms")
        summary["plot_renderer"] = plot(args.plot, root.name, run.samples, base, deadline_ms)
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        details = {"requests_detail": [metrics.sample_record(s) for s in run.samples],
                   "baseline_detail": [dataclasses.asdict(b) for b in base], "server_stderr_tail": run.stderr_tail}  # fmt: skip
        args.json.write_text(json.dumps({**summary, **details}, indent=1))
    return 0


def warm_summary(run: ServerRun) -> dict[str, Any]:
    """The first file retyped by a restarted server that finds the first run's disk cache."""
    out = metrics.server_summary(run.samples)
    keep = ("p50_ms", "p95_ms", "requests", "answered", "cancelled", "cache_hit_rate", "shown_rate", "chars_saved_rate")
    return {"lines_typed": run.lines_typed, **{k: out[k] for k in keep}, "sources": {k: v["count"] for k, v in out["by_source"].items() if v["count"]}}


def plot(path: Path, name: str, samples: list[Sample], base: list[baseline.BaselineSample], deadline_ms: float | None) -> str:
    answered = [s for s in samples if metrics.answered(s) and s.client_ms is not None]
    series = {
        "slm-lsp, answered requests": [s.client_ms for s in answered],
        "slm-lsp, at pauses": [s.client_ms for s in answered if s.at_pause],
        "naive baseline": [b.ms for b in base],
    }
    title = f"slm-lsp inline completion latency while typing, {name} ({len(samples)} requests, {len(samples) - len(answered)} cancelled)"
    return common.plot_cdf(path, series, title, deadline_ms)


if __name__ == "__main__":
    sys.exit(main())
