"""The server keeps nothing per message: a long session's bookkeeping stays empty.

In-process (no subprocess), so the protocol's own tables can be read: pygls filed the
future of every notification handler under a fresh id and never removed it, one per
keystroke (the soak's memory grew 40 % in 10,000 requests)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from slm_lsp import templates
from slm_lsp.fake_backend import FakeBackend
from slm_lsp.server import SlmProtocol, create_server


class Collect:
    """A writer that keeps what the server sends."""

    def __init__(self) -> None:
        self.messages: list[dict] = []

    def write(self, data: bytes) -> None:
        self.messages.append(json.loads(data.split(b"\r\n\r\n", 1)[1]))

    def close(self) -> None:
        pass


def body(method: str, params: dict, msg_id: int | None = None) -> bytes:
    message = {"jsonrpc": "2.0", "method": method, "params": params}
    if msg_id is not None:
        message["id"] = msg_id
    return json.dumps(message).encode()


def test_notifications_and_requests_leave_no_future_behind(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SLM_LSP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    (tmp_path / "ws").mkdir()
    server = create_server(lambda config: (FakeBackend(), templates.QWEN, "fake"))
    protocol: SlmProtocol = server.protocol  # type: ignore[assignment]
    writer = Collect()
    uri = (tmp_path / "ws" / "a.py").as_uri()

    async def session() -> None:
        server.loop = asyncio.get_running_loop()
        protocol.set_writer(writer)
        protocol.receive(body("initialize", {"capabilities": {}, "rootUri": (tmp_path / "ws").as_uri()}, 1))
        protocol.receive(body("initialized", {}))
        protocol.receive(body("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "x = 1\n"}}))
        for n in range(200):
            change = {"range": {"start": {"line": 1, "character": n}, "end": {"line": 1, "character": n}}, "text": "a"}
            protocol.receive(body("textDocument/didChange", {"textDocument": {"uri": uri, "version": n + 2}, "contentChanges": [change]}))
            if n % 20 == 0:
                position = {"line": 1, "character": n + 1}
                protocol.receive(body("textDocument/inlineCompletion", {"textDocument": {"uri": uri}, "position": position, "context": {"triggerKind": 2}}, 100 + n))
                protocol.receive(body("$/cancelRequest", {"id": 100 + n}))
        protocol.receive(body("textDocument/didClose", {"textDocument": {"uri": uri}}))
        for _ in range(500):  # every request answered
            if sum("id" in m and m.get("id", 0) >= 100 for m in writer.messages) == 10:
                break
            await asyncio.sleep(0.01)
        protocol.receive(body("shutdown", None, 2))
        await asyncio.sleep(0.05)

    asyncio.run(session())
    answered = [m for m in writer.messages if isinstance(m.get("id"), int) and m["id"] >= 100]
    assert len(answered) == 10, writer.messages[-3:]
    assert protocol._request_futures == {}
    server.session.close()
