"""A bare LSP client over a server process's stdio (or a TCP socket), for tests that send
what no client library would, or need the bytes on the wire and the process's
environment under their control.

Messages are read on a thread; waits are on a condition with bounded timeouts
(never a fixed sleep). Requests the server sends (work-done progress, ...) are
answered with a null result so the server never waits on us. Every response is
kept, so a test can tell a request answered twice from one answered once.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable

SERVER = [sys.executable, "-m", "slm_lsp"]


def frame(message: dict[str, Any] | list[Any]) -> bytes:
    body = json.dumps(message).encode("utf-8")  # ensure_ascii: a lone surrogate goes out as "\udc80"
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def fake_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment with the fake backend and every per-user directory under ``home``."""
    return {
        **os.environ,
        "SLM_LSP_BACKEND": "fake",
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        **extra,
    }


class RawClient:
    """One server process, spoken to over its stdio or what ``connect`` gives.

    ``home``: run the fake backend with the per-user directories under it (``env`` adds to
    that); without it ``env`` is the whole environment. ``stderr``: a file, or
    ``subprocess.PIPE`` for a pipe nobody reads. ``connect``: the (writer, reader)
    to speak over instead of stdio, made once the process runs.
    """

    def __init__(
        self, home: Path | None = None, env: dict[str, str] | None = None, cwd: Path | None = None,
        args: tuple[str, ...] = (), stderr: Path | int | None = None,
        connect: Callable[[], tuple[BinaryIO, BinaryIO]] | None = None,
    ) -> None:  # fmt: skip
        if home is not None:
            env = fake_env(home, **(env or {}))
        err = open(stderr, "wb") if isinstance(stderr, Path) else subprocess.DEVNULL if stderr is None else stderr
        self.proc = subprocess.Popen(
            SERVER + list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env,
            cwd=str(cwd or home) if (cwd or home) else None,
        )  # fmt: skip
        if isinstance(stderr, Path):
            err.close()
        self.writer, self.reader = connect() if connect is not None else (self.proc.stdin, self.proc.stdout)
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self.responses: dict[Any, list[dict[str, Any]]] = {}  # id -> every response with that id
        self.notifications: list[dict[str, Any]] = []
        self.closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # -- sending ------------------------------------------------------------
    def send_bytes(self, data: bytes) -> None:
        with self._write_lock:
            self.writer.write(data)
            self.writer.flush()

    def send(self, message: dict[str, Any] | list[Any]) -> None:
        self.send_bytes(frame(message))

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, **({"params": params} if params is not None else {})})

    def request_async(self, method: str, params: Any = None, msg_id: Any = None) -> Any:
        """Send a request; returns its id (wait for the answer with ``response``)."""
        msg_id = next(self._ids) if msg_id is None else msg_id
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, **({"params": params} if params is not None else {})})
        return msg_id

    def request(self, method: str, params: Any = None, timeout: float = 30.0) -> dict[str, Any]:
        """The whole response message (``result`` or ``error``)."""
        return self.response(self.request_async(method, params), timeout)

    def response(self, msg_id: Any, timeout: float = 30.0) -> dict[str, Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: msg_id in self.responses or self.closed, timeout):
                raise TimeoutError(f"no response to request {msg_id!r} within {timeout} s")
            if msg_id not in self.responses:
                raise ConnectionError(f"the server closed the connection before answering {msg_id!r}")
            return self.responses[msg_id][0]

    # -- a session ------------------------------------------------------------
    def initialize(self, root: Path | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
        capabilities = {"textDocument": {"inlineCompletion": {}, "synchronization": {"didSave": True}}}
        params: dict[str, Any] = {"processId": None, "rootUri": root.as_uri() if root else None, "capabilities": capabilities}
        if options is not None:
            params["initializationOptions"] = options
        reply = self.request("initialize", params, timeout=60)
        self.notify("initialized", {})
        return reply

    def status(self) -> dict[str, Any]:
        return self.request("workspace/executeCommand", {"command": "slm.status", "arguments": []})["result"]

    def wait_ready(self, index: bool = False, timeout: float = 180.0) -> dict[str, Any]:
        """The status once the model has loaded (or failed); with ``index``, once the index is ready too."""
        end = time.monotonic() + timeout
        while True:
            status = self.status()
            done = status["state"] in ("error", "disabled") or (
                status["state"] == "ready" and (not index or bool((status.get("index") or {}).get("ready")))
            )
            if done or time.monotonic() > end:
                return status
            with self._cond:
                self._cond.wait(0.1)

    def wait_notification(self, accept: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
        """The first notification (already received or to come) that ``accept`` takes."""
        with self._cond:
            found: list[dict[str, Any]] = []

            def seen() -> bool:
                found[:] = [n for n in self.notifications if accept(n)][:1]
                return bool(found) or self.closed

            if not self._cond.wait_for(seen, timeout) or not found:
                raise TimeoutError("the awaited notification did not come")
            return found[0]

    def open(self, uri: str, text: str, language_id: str = "python", version: int = 1) -> None:
        item = {"uri": uri, "languageId": language_id, "version": version, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": item})

    def change(self, uri: str, version: int, changes: list[dict[str, Any]]) -> None:
        self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": changes})

    def inline_async(self, uri: str, line: Any, character: Any, explicit: bool = True) -> Any:
        params = {
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": character},
            "context": {"triggerKind": 1 if explicit else 2},
        }
        return self.request_async("textDocument/inlineCompletion", params)

    def inline(self, uri: str, line: Any, character: Any, explicit: bool = True, timeout: float = 30.0) -> dict[str, Any]:
        return self.response(self.inline_async(uri, line, character, explicit), timeout)

    def completion(self, uri: str, line: int, character: int, timeout: float = 30.0) -> dict[str, Any]:
        params = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}, "context": {"triggerKind": 1}}
        return self.request("textDocument/completion", params, timeout)

    def close(self, timeout: float = 30.0) -> int:
        """shutdown, exit, and the process's exit code (killed when it does not exit)."""
        try:
            if self.proc.poll() is None and not self.closed:
                self.request("shutdown", timeout=timeout)
                self.notify("exit")
        except (TimeoutError, ConnectionError, OSError):
            pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    # -- reading --------------------------------------------------------------
    def _read(self) -> None:
        try:
            while (message := _read_message(self.reader)) is not None:
                if "id" in message and "method" in message:  # a request from the server
                    self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
                    continue
                with self._cond:
                    if "id" in message:
                        self.responses.setdefault(message["id"], []).append(message)
                    else:
                        self.notifications.append(message)
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()


def _read_message(stream: BinaryIO) -> dict[str, Any] | None:
    length = None
    while True:
        line = stream.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("ascii", "replace").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None:
        raise ValueError("a message without Content-Length")
    body = stream.read(length)
    return json.loads(body) if len(body) == length else None
