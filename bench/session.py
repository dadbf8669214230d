"""The server under test: an slm-lsp subprocess with an LSP client on its pipes.

Used by bench/latency.py (through bench/driver.py) and bench/soak.py. The benchmark
starts the process itself (``asyncio.create_subprocess_exec``) and connects a pygls
``LanguageClient`` to its stdin and stdout with pygls' public pieces
(``protocol.set_writer``, ``pygls.io_.run_async``): ``LanguageClient.start_io`` keeps
the process in a private attribute, and the benchmarks need it, for its pid (memory),
its stderr (read all along, as an editor does, so the server never blocks on a full
pipe; the last lines go into reports) and a kill when a run goes wrong. A request is
raced against the process's exit, so a server that dies fails the run at once with
its last words instead of hanging it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, TypeVar

from lsprotocol import types
from pygls.io_ import run_async
from pygls.lsp.client import LanguageClient

READY_TIMEOUT_S = 300.0  # model load, assembly of the model file included
SHUTDOWN_TIMEOUT_S = 15.0
STDERR_LINES = 40  # the last lines of the server's stderr kept for the report
T = TypeVar("T")


def server_env(cache_dir: Path, config_home: Path, fake: bool = False, server_src: Path | None = None,
               probe: Path | None = None) -> dict[str, str]:  # fmt: skip
    """The real model, a fresh cache, no user config file: a run measures the defaults.

    fake: the server's fake backend (plumbing checks). server_src: a source tree whose
    slm_lsp the server runs (first on PYTHONPATH). probe: where bench/server_probe.py
    writes the model's decode calls."""
    env = {**os.environ, "SLM_LSP_CACHE_DIR": str(cache_dir), "XDG_CONFIG_HOME": str(config_home)}
    for name in ("SLM_LSP_BACKEND", "SLM_LSP_DISABLE_CACHE", "SLM_BENCH_PROBE"):
        env.pop(name, None)
    if fake:
        env["SLM_LSP_BACKEND"] = "fake"
    if server_src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(server_src.resolve()), *filter(None, [env.get("PYTHONPATH")])])
    if probe is not None:
        env["SLM_BENCH_PROBE"] = str(probe)
    return env


def status_mb(pid: int | None, key: str) -> float | None:
    """A memory line of a live process's /proc status in MiB: VmRSS (now) or VmHWM (peak)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, TypeError):
        pass
    return None


@dataclass
class Session:
    client: LanguageClient
    process: asyncio.subprocess.Process
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_LINES))
    stop: threading.Event = field(default_factory=threading.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def call(self, request: Awaitable[T], timeout: float | None = None) -> T:
        """The answer to a request; SystemExit (with the server's last stderr lines) if the server exits first."""
        answer = asyncio.ensure_future(request)
        exited = asyncio.ensure_future(self.process.wait())
        done, _ = await asyncio.wait({answer, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        exited.cancel()
        if answer in done:
            return answer.result()
        answer.cancel()
        why = f"exited with code {self.process.returncode}" if exited in done else f"no answer in {timeout} s"
        raise SystemExit(f"the server {why}; its stderr ends:\n" + "\n".join(self.stderr_tail))


async def start(client: LanguageClient, argv: list[str], env: dict[str, str], cwd: Path) -> Session:
    """Start the server (argv) and connect the client to its stdio."""
    PIPE = asyncio.subprocess.PIPE
    process = await asyncio.create_subprocess_exec(*argv, stdin=PIPE, stdout=PIPE, stderr=PIPE, env=env, cwd=str(cwd))
    assert process.stdin is not None and process.stdout is not None
    session = Session(client, process)
    client.protocol.set_writer(process.stdin)
    session.tasks += [
        asyncio.create_task(run_async(stop_event=session.stop, reader=process.stdout, protocol=client.protocol)),
        asyncio.create_task(_read_stderr(process, session.stderr_tail)),
    ]
    return session


async def _read_stderr(process: asyncio.subprocess.Process, tail: deque[str]) -> None:
    while process.stderr is not None and (line := await process.stderr.readline()):
        tail.append(line.decode("utf-8", "replace").rstrip())


async def initialize(session: Session, params: types.InitializeParams) -> dict[str, Any]:
    """initialize and initialized, then wait until ``slm.status`` says ready; returns that status."""
    await session.call(session.client.initialize_async(params), READY_TIMEOUT_S)
    session.client.initialized(types.InitializedParams())
    end = time.monotonic() + READY_TIMEOUT_S
    while True:
        command = types.ExecuteCommandParams(command="slm.status")
        status = await session.call(session.client.workspace_execute_command_async(command), READY_TIMEOUT_S)
        if status.get("state") == "ready":
            return status
        if status.get("state") in ("error", "disabled") or time.monotonic() > end:
            raise SystemExit(f"the server is not ready: {status}; stderr:\n" + "\n".join(session.stderr_tail))
        await asyncio.sleep(0.2)


async def close(session: Session, clean: bool = True) -> None:
    """shutdown and exit (when clean), then wait for the process; kill it if it lingers or the run failed."""
    try:
        if clean and session.process.returncode is None:
            await session.call(session.client.shutdown_async(None), SHUTDOWN_TIMEOUT_S)
            session.client.exit(None)
            await asyncio.wait_for(session.process.wait(), SHUTDOWN_TIMEOUT_S)
    finally:
        if session.process.returncode is None:
            session.process.kill()  # only the server process this session started
            await session.process.wait()
        session.stop.set()
        await asyncio.wait(session.tasks, timeout=SHUTDOWN_TIMEOUT_S)
        for task in session.tasks:
            task.cancel()
