"""Malformed LSP traffic over raw stdio: the server logs it and keeps serving."""

from __future__ import annotations

import json
import os
import subprocess

from .conftest import SERVER


def _frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _read(stream) -> dict:
    header = b""
    while not header.endswith(b"\r\n\r\n"):
        chunk = stream.read(1)
        assert chunk, "server closed its output"
        header += chunk
    length = int(header.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    return json.loads(stream.read(length))


def test_malformed_messages_then_a_real_session():
    env = {**os.environ, "SLM_LSP_BACKEND": "fake", "SLM_LSP_DISABLE_CACHE": "1"}
    proc = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        junk = [b"{this is not json", b"\xff\xfe\x00garbage", b"[]", json.dumps({"jsonrpc": "2.0"}).encode()]
        for body in junk:
            proc.stdin.write(_frame(body))
        init = {"capabilities": {}, "processId": None, "rootUri": None}
        proc.stdin.write(_frame(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}).encode()))
        proc.stdin.flush()
        messages = [_read(proc.stdout) for _ in range(2)]
        while not any(m.get("id") == 1 for m in messages):
            messages.append(_read(proc.stdout))
        result = next(m for m in messages if m.get("id") == 1)["result"]
        assert "inlineCompletionProvider" in result["capabilities"]
        shown = [m for m in messages if m.get("method") == "window/showMessage"]
        assert len(shown) <= 1  # one message for all the junk, not one each
    finally:
        proc.kill()
        proc.wait()
