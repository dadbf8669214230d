"""The hostile-input battery: bytes and messages no client library would send, over raw stdio.

Each case sends its input to the real server (``python -m slm_lsp``, fake backend),
checks the answer the protocol owes (JSON-RPC error codes, exactly one response
per request), then checks the server still completes a normal request. Cases that
leave the server serving share one process; a case that ends it starts its own.
Every wait is bounded and on an event (a response, the process's exit).
"""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.e2e.rawclient import RawClient, frame

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, CANCELLED = -32700, -32600, -32601, -32602, -32800
MAX_MB = 16  # the server's message limit in this battery (SLM_LSP_MAX_MESSAGE_MB)
WAIT = 20.0

_ids = itertools.count(1_000_000)  # clear of RawClient's own ids


# -- the harness ------------------------------------------------------------------
class Hostile:
    """One server process and what the battery needs around it."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.client = RawClient(home, env={"SLM_LSP_MAX_MESSAGE_MB": str(MAX_MB)})
        self.client.initialize(home)
        assert self.client.wait_ready()["state"] == "ready"
        self.ok = self.uri("ok.py")
        self.client.open(self.ok, "def add(a, b):\n    \n")

    def uri(self, name: str) -> str:
        return (self.home / name).as_uri()

    def send(self, message: Any) -> None:
        self.client.send(message)

    def raw(self, data: bytes) -> None:
        self.client.send_bytes(data)

    def answer(self, msg_id: Any) -> dict[str, Any]:
        return self.client.response(msg_id, WAIT)

    def error(self, msg_id: Any) -> int:
        """The error code the request got (it must be an error)."""
        reply = self.answer(msg_id)
        assert "error" in reply, reply
        assert "traceback" not in json.dumps(reply) and len(reply["error"]["message"]) < 400
        return reply["error"]["code"]

    def nulls(self) -> int:
        """Error replies with id null so far (to a body whose request could not be named)."""
        with self.client._cond:
            return len(self.client.responses.get(None, []))

    def count(self, msg_id: Any) -> int:
        with self.client._cond:
            return len(self.client.responses.get(msg_id, []))

    def healthy(self) -> None:
        """The server completes a normal request on an open document."""
        reply = self.client.inline(self.ok, 1, 4, timeout=WAIT)
        assert [i["insertText"] for i in reply["result"]["items"]] == ["return a + b"], reply


def request(method: str, params: Any = None, msg_id: Any = None, **extra: Any) -> dict[str, Any]:
    message = {"jsonrpc": "2.0", "id": next(_ids) if msg_id is None else msg_id, "method": method, **extra}
    if params is not None:
        message["params"] = params
    return message


def status(msg_id: Any = None) -> dict[str, Any]:
    return request("workspace/executeCommand", {"command": "slm.status", "arguments": []}, msg_id)


def inline(uri: str, position: Any, msg_id: Any = None) -> dict[str, Any]:
    params = {"textDocument": {"uri": uri}, "position": position, "context": {"triggerKind": 1}}
    return request("textDocument/inlineCompletion", params, msg_id)


def notification(method: str, params: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def raw_frame(body: bytes, length: int | str | None = None) -> bytes:
    return b"Content-Length: %s\r\n\r\n" % str(len(body) if length is None else length).encode() + body


def body(message: Any) -> bytes:
    return json.dumps(message).encode()


def change(uri: str, version: int, line: int, character: int, text: str) -> dict[str, Any]:
    at = {"line": line, "character": character}
    edit = {"range": {"start": at, "end": at}, "text": text}
    document = {"uri": uri, "version": version}
    return notification("textDocument/didChange", {"textDocument": document, "contentChanges": [edit]})


def open_doc(uri: str, text: str, version: int = 1, language: str = "python") -> dict[str, Any]:
    document = {"uri": uri, "languageId": language, "version": version, "text": text}
    return notification("textDocument/didOpen", {"textDocument": document})


# -- framing ----------------------------------------------------------------------
def huge_content_length(s: Hostile) -> None:
    msg = status()
    s.raw(raw_frame(body(msg), 99999999999))
    assert s.error(msg["id"]) == PARSE_ERROR  # skipped unread, answered by its id


def content_length_short_by_10(s: Hostile) -> None:
    msg = status()
    s.raw(raw_frame(body(msg), len(body(msg)) - 10))
    assert s.error(msg["id"]) == PARSE_ERROR


def content_length_long_by_40(s: Hostile) -> None:
    msg, after = status(), status()
    s.raw(raw_frame(body(msg), len(body(msg)) + 40) + frame(after))
    assert s.answer(after["id"])["result"]["state"] == "ready"  # the next message is not lost
    assert s.answer(msg["id"])["result"]["state"] == "ready"  # the next header marks where this one ended


def content_length_long_then_wait(s: Hostile) -> None:
    msg = status()
    s.raw(raw_frame(body(msg), len(body(msg)) + 5000))  # the client now waits for the answer
    s.healthy()  # the next request's header ends the long message at once
    assert "result" in s.answer(msg["id"])


def content_length_abc(s: Hostile) -> None:
    msg = status()
    s.raw(raw_frame(body(msg), "abc"))
    assert s.error(msg["id"]) == PARSE_ERROR


def content_length_missing(s: Hostile) -> None:
    msg = status()
    s.raw(b"Content-Type: application/vscode-jsonrpc\r\n\r\n" + body(msg))
    assert s.error(msg["id"]) == PARSE_ERROR


def garbage_line_before_a_header(s: Hostile) -> None:
    msg = status()
    s.raw(b"GET / HTTP/1.1\r\n" + frame(msg))
    assert s.answer(msg["id"])["result"]["state"] == "ready"


def extra_headers(s: Hostile) -> None:
    msg = body(status(msg_id="with-headers"))
    headers = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: %d\r\nX-Extra: 1\r\n"
    s.raw(headers % len(msg) + b"\r\n" + msg)
    assert "result" in s.answer("with-headers")


def message_over_the_limit(s: Hostile) -> None:
    msg = request("workspace/executeCommand", {"command": "slm.status", "arguments": ["x" * ((MAX_MB + 1) << 20)]})
    s.raw(frame(msg))
    assert s.error(msg["id"]) == PARSE_ERROR  # drained, not parsed; answered by its id


def headers_and_bodies_in_pieces(s: Hostile) -> None:
    data = frame(status(msg_id="pieces-1")) + frame(status(msg_id="pieces-2"))
    for i in range(0, len(data), 7):
        s.raw(data[i : i + 7])
    assert "result" in s.answer("pieces-1") and "result" in s.answer("pieces-2")


# -- bodies -------------------------------------------------------------------------
def malformed_json(s: Hostile) -> None:
    before = s.nulls()
    s.raw(raw_frame(b"{this is not json"))
    s.healthy()
    assert s.nulls() == before + 1  # -32700 with id null


def malformed_json_with_an_id(s: Hostile) -> None:
    s.raw(raw_frame(b'{"jsonrpc": "2.0", "id": "broken", "method": "shutdown", "params": {'))
    assert s.error("broken") == PARSE_ERROR


def json_array_empty(s: Hostile) -> None:
    before = s.nulls()
    s.raw(raw_frame(b"[]"))
    s.healthy()
    assert s.nulls() == before + 1


def json_number(s: Hostile) -> None:
    before = s.nulls()
    s.raw(raw_frame(b"42"))
    s.healthy()
    assert s.nulls() == before + 1


def batch_of_requests(s: Hostile) -> None:
    batch = [status(), status()]
    s.send(batch)
    assert [s.error(m["id"]) for m in batch] == [INVALID_REQUEST, INVALID_REQUEST]  # LSP has no batches


def binary_body(s: Hostile) -> None:
    before = s.nulls()
    s.raw(raw_frame(b"\xff\xfe\x00garbage\x80\x81"))
    s.healthy()
    assert s.nulls() == before + 1


def invalid_utf8_in_a_document(s: Hostile) -> None:
    uri = s.uri("latin1.py")
    s.raw(raw_frame(body(open_doc(uri, "def add(a, b):\n    \n# cafX")).replace(b"cafX", b"caf\xe9")))  # Latin-1
    reply = s.answer(s.client.inline_async(uri, 1, 4))
    assert [i["insertText"] for i in reply["result"]["items"]] == ["return a + b"]


def deeply_nested_json(s: Hostile) -> None:
    before = s.nulls()
    s.raw(raw_frame(b"[" * 100_000))
    s.healthy()
    assert s.nulls() == before + 1


def wrong_jsonrpc_version(s: Hostile) -> None:
    msg = status()
    msg["jsonrpc"] = "1.0"
    s.send(msg)
    assert s.error(msg["id"]) == INVALID_REQUEST


# -- requests -----------------------------------------------------------------------
def unknown_method_request(s: Hostile) -> None:
    msg = request("slm/noSuchMethod", {})
    s.send(msg)
    assert s.error(msg["id"]) == METHOD_NOT_FOUND


def unknown_notification(s: Hostile) -> None:
    before = s.nulls()
    s.send(notification("slm/noSuchNotification", {"x": 1}))
    s.healthy()
    assert s.nulls() == before  # ignored, not answered


def unknown_command(s: Hostile) -> None:
    msg = request("workspace/executeCommand", {"command": "slm.noSuchCommand", "arguments": []})
    s.send(msg)
    assert s.error(msg["id"]) == INVALID_PARAMS


def inline_without_params(s: Hostile) -> None:
    msg = request("textDocument/inlineCompletion")
    s.send(msg)
    assert s.error(msg["id"]) == INVALID_PARAMS


def position_as_a_string(s: Hostile) -> None:
    msg = inline(s.ok, "1:4")
    s.send(msg)
    assert s.error(msg["id"]) == INVALID_PARAMS


def line_minus_one(s: Hostile) -> None:
    msg = inline(s.ok, {"line": -1, "character": 0})
    s.send(msg)
    assert s.error(msg["id"]) == INVALID_PARAMS
    assert "line" in s.answer(msg["id"])["error"]["message"]  # says what is wrong


def character_minus_one(s: Hostile) -> None:
    msg = inline(s.ok, {"line": 0, "character": -1})
    s.send(msg)
    assert s.error(msg["id"]) == INVALID_PARAMS


def line_beyond_uinteger(s: Hostile) -> None:
    msg = inline(s.ok, {"line": 2**31, "character": 0})
    s.send(msg)
    assert s.error(msg["id"]) == INVALID_PARAMS


def position_far_out_of_range(s: Hostile) -> None:
    msg = inline(s.ok, {"line": 1_000_000, "character": 2_000_000})
    s.send(msg)
    assert s.answer(msg["id"])["result"] in (None, {"items": []})


def character_past_the_line_end(s: Hostile) -> None:
    msg = inline(s.ok, {"line": 0, "character": 10_000})
    s.send(msg)
    assert "result" in s.answer(msg["id"])


def inline_on_an_unopened_uri(s: Hostile) -> None:
    msg = inline(s.uri("never-opened.py"), {"line": 0, "character": 0})
    s.send(msg)
    assert s.answer(msg["id"])["result"] is None


def untitled_uri(s: Hostile) -> None:
    s.send(open_doc("untitled:Untitled-1", "def add(a, b):\n    \n"))
    msg = inline("untitled:Untitled-1", {"line": 1, "character": 4})
    s.send(msg)
    assert [i["insertText"] for i in s.answer(msg["id"])["result"]["items"]] == ["return a + b"]


def huge_id(s: Hostile) -> None:
    msg = status(msg_id=10**30)
    s.send(msg)
    assert s.answer(10**30)["result"]["state"] == "ready"


def string_id(s: Hostile) -> None:
    s.send(status(msg_id="a string id ✓"))
    assert s.answer("a string id ✓")["result"]["state"] == "ready"


def null_id(s: Hostile) -> None:
    before = s.nulls()
    s.send(status(msg_id=None) | {"id": None})
    s.healthy()
    assert s.nulls() == before + 1
    with s.client._cond:
        assert s.client.responses[None][-1]["error"]["code"] == INVALID_REQUEST


def notification_with_an_id_missing_params(s: Hostile) -> None:
    msg = request("textDocument/didOpen")
    s.send(msg)
    assert s.error(msg["id"]) == INVALID_PARAMS


def notification_sent_as_a_request(s: Hostile) -> None:
    msg = request("textDocument/didSave", {"textDocument": {"uri": s.ok}})
    s.send(msg)
    assert s.error(msg["id"]) == INVALID_REQUEST


def notification_missing_params(s: Hostile) -> None:
    s.send(notification("textDocument/didChange"))
    s.send(notification("textDocument/didOpen", {"textDocument": "nope"}))


def response_to_nothing(s: Hostile) -> None:
    s.send({"jsonrpc": "2.0", "id": "never-asked", "result": {"x": 1}})
    s.send({"jsonrpc": "2.0", "id": 424242, "error": {"code": 1, "message": "no"}})


def cancel_unknown_request(s: Hostile) -> None:
    s.send(notification("$/cancelRequest", {"id": 987654321}))
    s.send(notification("$/cancelRequest", {}))


def five_hundred_cancelled_requests(s: Hostile) -> None:
    messages = [inline(s.ok, {"line": 1, "character": 4}) for _ in range(500)]
    data = b"".join(frame(m) + frame(notification("$/cancelRequest", {"id": m["id"]})) for m in messages)
    s.raw(data)
    for m in messages:
        reply = s.answer(m["id"])
        assert "result" in reply or reply["error"]["code"] == CANCELLED, reply
    assert all(s.count(m["id"]) == 1 for m in messages)  # exactly one answer each


# -- documents ------------------------------------------------------------------------
def ten_mb_document(s: Hostile) -> None:
    uri = s.uri("big.py")
    filler = "x = 1\n" * (10_000_000 // 6)
    s.send(open_doc(uri, filler + "def add(a, b):\n    \n"))
    lines = filler.count("\n")
    assert "result" in s.answer(s.client.inline_async(uri, lines + 1, 4))
    s.send(notification("textDocument/didClose", {"textDocument": {"uri": uri}}))


def long_line(s: Hostile) -> None:
    uri = s.uri("long_line.py")
    s.send(open_doc(uri, "x = '" + "a" * 100_000 + "'\n"))
    assert "result" in s.answer(s.client.inline_async(uri, 0, 50_000))
    assert "result" in s.answer(s.client.inline_async(uri, 1, 0))


def nested_parentheses(s: Hostile) -> None:
    uri = s.uri("parens.py")
    s.send(open_doc(uri, "x = " + "(" * 10_000 + "1" + ")" * 10_000 + "\n"))
    assert "result" in s.answer(s.client.inline_async(uri, 0, 5_000))
    assert "result" in s.answer(s.client.inline_async(uri, 1, 0))


def thousand_quick_edits(s: Hostile) -> None:
    uri = s.uri("typed.py")
    target = "def mul(x, y):\n    "
    typed = "#" * (1000 - len(target) - 1) + "\n" + target  # 1,000 one-character edits
    messages, line, character = [open_doc(uri, "")], 0, 0
    for version, ch in enumerate(typed, start=2):
        messages.append(change(uri, version, line, character, ch))
        line, character = (line + 1, 0) if ch == "\n" else (line, character + 1)
    s.raw(b"".join(frame(m) for m in messages))
    reply = s.answer(s.client.inline_async(uri, line, character))
    assert [i["insertText"] for i in reply["result"]["items"]] == ["return x + y"]  # every edit applied


def change_unopened_document(s: Hostile) -> None:
    s.send(change(s.uri("ghost.py"), 2, 0, 0, "x"))
    s.send(notification("textDocument/didSave", {"textDocument": {"uri": s.uri("ghost.py")}}))


def close_twice(s: Hostile) -> None:
    uri = s.uri("closed.py")
    s.send(open_doc(uri, "x = 1\n"))
    for _ in range(2):
        s.send(notification("textDocument/didClose", {"textDocument": {"uri": uri}}))
    msg = inline(uri, {"line": 0, "character": 0})
    s.send(msg)
    assert s.answer(msg["id"])["result"] is None  # closed is closed


def open_twice(s: Hostile) -> None:
    uri = s.uri("twice.py")
    s.send(open_doc(uri, "def add(a, b):\n    \n"))
    s.send(open_doc(uri, "def sub(p, q):\n    \n", version=2))
    reply = s.answer(s.client.inline_async(uri, 1, 4))
    assert [i["insertText"] for i in reply["result"]["items"]] == ["return p + q"]  # the second text wins


def version_going_backwards(s: Hostile) -> None:
    uri = s.uri("versions.py")
    s.send(open_doc(uri, "def add(a, b):\n", version=10))
    s.send(change(uri, 3, 1, 0, "    "))
    assert "result" in s.answer(s.client.inline_async(uri, 1, 4))


def edit_out_of_range(s: Hostile) -> None:
    uri = s.uri("range.py")
    s.send(open_doc(uri, "x = 1\n"))
    s.send(change(uri, 2, 500, 500, "y"))
    s.send(change(uri, 3, -1, 0, "z"))
    assert "result" in s.answer(s.client.inline_async(uri, 0, 0))


SHARED: dict[str, Callable[[Hostile], None]] = {
    f.__name__: f
    for f in [
        huge_content_length, content_length_short_by_10, content_length_long_by_40, content_length_long_then_wait,
        content_length_abc, content_length_missing, garbage_line_before_a_header, extra_headers,
        message_over_the_limit, headers_and_bodies_in_pieces,
        malformed_json, malformed_json_with_an_id, json_array_empty, json_number, batch_of_requests, binary_body,
        invalid_utf8_in_a_document, deeply_nested_json, wrong_jsonrpc_version,
        unknown_method_request, unknown_notification, unknown_command, inline_without_params, position_as_a_string,
        line_minus_one, character_minus_one, line_beyond_uinteger, position_far_out_of_range,
        character_past_the_line_end, inline_on_an_unopened_uri, untitled_uri, huge_id, string_id, null_id,
        notification_with_an_id_missing_params, notification_sent_as_a_request, notification_missing_params,
        response_to_nothing, cancel_unknown_request, five_hundred_cancelled_requests,
        ten_mb_document, long_line, nested_parentheses, thousand_quick_edits, change_unopened_document,
        close_twice, open_twice, version_going_backwards, edit_out_of_range,
    ]
}  # fmt: skip


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory):
    holder: dict[str, Hostile] = {}

    def get() -> Hostile:  # a case that killed the server fails alone; the next gets a new one
        if "s" not in holder or holder["s"].client.proc.poll() is not None:
            holder["s"] = Hostile(tmp_path_factory.mktemp("hostile"))
        return holder["s"]

    yield get
    if "s" in holder:
        assert holder["s"].client.close() == 0


@pytest.mark.parametrize("case", list(SHARED.values()), ids=list(SHARED))
def test_battery(shared: Callable[[], Hostile], case: Callable[[Hostile], None]) -> None:
    s = shared()
    case(s)
    s.healthy()


# -- cases that end the process ------------------------------------------------------------
def test_request_after_shutdown_is_invalid_then_exit_is_0(tmp_path: Path):
    s = Hostile(tmp_path)
    assert s.client.request("shutdown", timeout=WAIT)["result"] is None
    msg = status()
    s.send(msg)
    assert s.error(msg["id"]) == INVALID_REQUEST
    s.send(notification("textDocument/didOpen", {"textDocument": {"uri": s.ok}}))  # ignored
    s.client.notify("exit")
    assert s.client.proc.wait(WAIT) == 0


def test_exit_without_shutdown_is_1(tmp_path: Path):
    s = Hostile(tmp_path)
    s.client.notify("exit")
    assert s.client.proc.wait(WAIT) == 1


def test_stdin_closed_mid_request_then_a_fresh_server_works(tmp_path: Path):
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    s = Hostile(tmp_path / "first")
    data = frame(status())
    s.raw(data[: len(data) // 2])
    s.client.proc.stdin.close()
    assert s.client.proc.wait(WAIT) in (0, 1)
    fresh = Hostile(tmp_path / "second")
    fresh.healthy()
    assert fresh.client.close() == 0


def test_stdin_closed_after_shutdown_is_0(tmp_path: Path):
    s = Hostile(tmp_path)
    assert s.client.request("shutdown", timeout=WAIT)["result"] is None
    s.client.proc.stdin.close()
    assert s.client.proc.wait(WAIT) == 0


def test_a_handler_exception_is_a_short_internal_error(tmp_path: Path):
    s = Hostile(tmp_path)
    msg = request("initialize", {"processId": None, "rootUri": "file:///tmp/a%00b", "capabilities": {}})
    s.send(msg)  # the handler raises (a NUL byte in the root path)
    assert s.error(msg["id"]) == -32603  # one line, no traceback (checked in error())
    s.healthy()
    assert s.client.close() == 0


def test_requests_before_initialize_are_not_initialized(tmp_path: Path):
    client = RawClient(tmp_path)
    try:
        client.send(open_doc((tmp_path / "early.py").as_uri(), "x = 1\n"))  # dropped
        early = status()
        client.send(early)
        reply = client.response(early["id"], WAIT)
        assert reply["error"]["code"] == -32002
        client.initialize(tmp_path)
        assert client.wait_ready()["state"] == "ready"
        assert client.inline((tmp_path / "early.py").as_uri(), 0, 0)["result"] is None  # never opened
    finally:
        assert client.close() == 0


def test_stderr_nobody_reads_never_stalls_the_server(tmp_path: Path):
    """A client that never reads the server's stderr: the pipe fills (64 KiB), the log drops
    records, and requests are still answered."""
    client = RawClient(tmp_path, stderr=subprocess.PIPE)
    try:
        client.initialize(tmp_path)
        assert client.wait_ready()["state"] == "ready"
        for _ in range(3000):  # each is logged as an error: about 300 KiB of log
            client.send_bytes(b"Content-Length: 9\r\n\r\n{not json")
        uri = (tmp_path / "ok.py").as_uri()
        client.open(uri, "def add(a, b):\n    \n")
        assert client.inline(uri, 1, 4, timeout=WAIT)["result"]["items"][0]["insertText"] == "return a + b"
    finally:
        assert client.close() == 0
