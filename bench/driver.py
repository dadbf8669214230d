"""The server phase of bench/latency.py: one LSP client plays the keystroke plans into slm-lsp.

``Typist`` is the person at the keyboard: keys follow the plan (bench/typist.py), never an
answer, except that after a pause the person waits for a pending answer (up to
--pause-wait after their key). Every key sends an incremental didChange and an automatic
inlineCompletion request; a request still unanswered at the next key is cancelled with
$/cancelRequest, as editors do. ``run_server`` starts the server (bench/session.py,
through bench/server_probe.py, which times llama.cpp's decode calls), plays every file
and collects what the server reported per request (slm/completionStats).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import defaultdict, deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from bench import common, session, typist
from bench.metrics import EvalCall, Sample
from bench.typist import Edit, FilePlan, Key
from slm_lsp.evaluation.metrics import percentile

DRAIN_TIMEOUT_S = 5.0  # how long the last request of a file may take before the file is closed
POLL_S = 0.005  # how often a waiting person looks at the screen
PROBE = Path(__file__).resolve().parent / "server_probe.py"
# an editor that shows ghost text and syncs incrementally (no work-done progress: nothing to answer)
CAPABILITIES = types.ClientCapabilities(
    text_document=types.TextDocumentClientCapabilities(
        synchronization=types.TextDocumentSyncClientCapabilities(did_save=True),
        inline_completion=types.InlineCompletionClientCapabilities(),
    )
)


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
    """Type the plans into a fresh server until the deadline; the server exits before this returns."""
    logging.getLogger("pygls").setLevel(logging.ERROR)
    client = LanguageClient("slm-lsp-bench", "1")
    person = Typist(client, plans, args.pause_wait)
    client.feature("slm/completionStats")(lambda params: person.on_stats(params))  # pygls takes no bound methods
    client.feature(types.WINDOW_SHOW_MESSAGE)(lambda params: person.messages.append(params.message))
    for method in ("slm/status", types.WINDOW_LOG_MESSAGE):
        client.feature(method)(lambda params: None)
    server = await session.start(client, [sys.executable, str(PROBE)], env, root)
    run = ServerRun(person.samples, 0, None, person.messages)
    clean = False
    try:
        await session.initialize(server, types.InitializeParams(
            capabilities=CAPABILITIES, root_uri=root.as_uri(),
            initialization_options={**args.settings, "stats": True},
        ))  # fmt: skip
        for n, plan in enumerate(plans):
            if time.monotonic() >= deadline:
                run.stopped_early = True
                break
            done = await person.type_file(n, plan, deadline)
            run.lines_typed += done
            run.stopped_early |= done < len(plan.rows)
            _progress(person.samples, n + 1, len(plans), plan.sf, done)
        run.peak_rss_mb = session.status_mb(server.pid, "VmHWM")
        clean = True
    finally:
        await session.close(server, clean)
    person.join_stats()
    run.stderr_tail = list(server.stderr_tail)
    run.waited_s = round(person.waited_s, 1)
    if person.started is not None and person.finished is not None:
        run.typing_s = (person.started, person.finished)
    if "SLM_BENCH_PROBE" in env:
        run.eval_calls, run.server_package = read_probe(Path(env["SLM_BENCH_PROBE"]))
    return run


def _progress(samples: list[Sample], n: int, total: int, sf: common.SourceFile, lines: int) -> None:
    client = [s.client_ms for s in samples if s.client_ms is not None and s.cancelled_at is None]
    cancelled = sum(s.cancelled_at is not None for s in samples)
    p50 = percentile(client, 50)
    print(f"[{n}/{total}] {sf.rel}: {lines} lines; {len(samples)} requests so far, {cancelled} cancelled, "
          f"p50 {p50 or 0:.0f} ms", file=sys.stderr, flush=True)  # fmt: skip
