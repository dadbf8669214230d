"""Malformed LSP traffic over raw stdio: the server logs it and keeps serving."""

from __future__ import annotations

import json
import os
import subprocess

from .conftest import SERVER


def _frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _messages(out: bytes) -> list[dict]:
    """The messages in a stream of frames."""
    found = []
    while out:
        header, _, out = out.partition(b"\r\n\r\n")
        length = int(header.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        found.append(json.loads(out[:length]))
        out = out[length:]
    return found


def _send(proc, message: dict) -> None:
    proc.stdin.write(_frame(json.dumps({"jsonrpc": "2.0", **message}).encode()))
    proc.stdin.flush()


def test_malformed_messages_then_a_real_session():
    env = {**os.environ, "SLM_LSP_BACKEND": "fake", "SLM_LSP_DISABLE_CACHE": "1"}
    proc = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        junk = [b"{this is not json", b"\xff\xfe\x00garbage", b"[]", json.dumps({"jsonrpc": "2.0"}).encode()]
        for body in junk:
            proc.stdin.write(_frame(body))
        _send(proc, {"id": 1, "method": "initialize", "params": {"capabilities": {}, "processId": None, "rootUri": None}})
        _send(proc, {"method": "initialized", "params": {}})
        _send(proc, {"id": 2, "method": "shutdown"})
        _send(proc, {"method": "exit"})
        out, _ = proc.communicate(timeout=30)  # everything the server sent, up to its exit
        assert proc.returncode == 0
        messages = _messages(out)
        errors = [(m["id"], m["error"]["code"]) for m in messages if "error" in m]
        assert errors == [(None, -32700), (None, -32700), (None, -32600), (None, -32600)]  # one answer per junk message
        result = next(m for m in messages if m.get("id") == 1)["result"]
        assert "inlineCompletionProvider" in result["capabilities"]
        assert any(m.get("id") == 2 for m in messages)
        shown = [m for m in messages if m.get("method") == "window/showMessage"]
        assert len(shown) == 1, shown  # one message for all the junk, not one each, and not none
        assert "keeps serving" in shown[0]["params"]["message"]
    finally:
        proc.kill()
        proc.wait()
