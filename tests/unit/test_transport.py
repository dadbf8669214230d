"""The framer and the read loop of slm_lsp.transport, without a server."""

from __future__ import annotations

import json
import time

import pytest

from slm_lsp import transport
from slm_lsp.jsonrpc import request_id
from slm_lsp.transport import Framer, FramingError


def body(msg_id: int, size: int = 0) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "m", "params": {"x": "a" * size}}).encode()


A, B = body(1), body(2)


def frame(data: bytes, length: int | str | None = None, extra: bytes = b"") -> bytes:
    return b"Content-Length: %s\r\n" % str(len(data) if length is None else length).encode() + extra + b"\r\n" + data


def run(chunks: list[bytes], max_length: int = 1 << 20) -> list[bytes | str]:
    """Feed the chunks; bodies as bytes, errors as "error"."""
    framer = Framer(max_length)
    out: list[bytes | str] = []
    for chunk in chunks:
        out += ["error" if isinstance(f, FramingError) else f for f in framer.feed(chunk)]
    return out


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


CASES = {
    "one message": ([frame(A)], [A]),
    "two messages in one read": ([frame(A) + frame(B)], [A, B]),
    "header split across reads": ([b"Content-Len", b"gth: %d\r" % len(A), b"\n\r", b"\n" + A[:5], A[5:]], [A]),
    "body split byte by byte": (bytewise(frame(A) + frame(B)), [A, B]),
    "Content-Type after the length": ([frame(A, extra=b"Content-Type: application/vscode-jsonrpc\r\n")], [A]),
    "Content-Type before the length": ([b"Content-Type: x\r\n" + frame(A) + frame(B)], [A, B]),
    "lower-case header name": ([frame(A).replace(b"Content-Length", b"content-length")], [A]),
    "blank lines between messages": ([frame(A) + b"\r\n\r\n" + frame(B)], [A, B]),
    "zero length": ([frame(b"") + frame(A)], [b"", A]),
    "short by 10: the tail is skipped, the next message read": (
        [frame(A, len(A) - 10) + frame(B)], [A[:-10], "error", B]),
    "long by 40: the next header inside the body is found": ([frame(A, len(A) + 40) + frame(B)], ["error", A, B]),
    "long by 1000: no waiting for bytes that never come": ([frame(A, len(A) + 1000) + frame(B)], ["error", A, B]),
    "long by 40, byte by byte": (bytewise(frame(A, len(A) + 40) + frame(B)), ["error", A, B]),
    "huge length: skipped up to the next header": ([frame(A, 99999999999) + frame(B)], ["error", B]),
    "abc": ([frame(A, "abc") + frame(B)], ["error", "error", B]),
    "negative length": ([frame(A, "-5") + frame(B)], ["error", "error", B]),
    "missing Content-Length": ([b"Content-Type: x\r\n\r\n" + A + frame(B)], ["error", "error", B]),
    "a garbage line before the header": ([b"hello world\r\n" + frame(A)], ["error", A]),
    "header text inside junk, then the real header": ([b'{"t": "Content-Length: 5"}' + frame(A)], ["error", A]),
    "8 KB without a header terminator": ([b"x" * 9000, frame(A)], ["error", A]),
}


@pytest.mark.parametrize("chunks, expected", list(CASES.values()), ids=list(CASES))
def test_framer(chunks: list[bytes], expected: list[bytes | str]) -> None:
    assert run(chunks) == expected


def test_over_the_limit_is_drained_without_being_held():
    framer = Framer(max_length=1000)
    big = body(7, size=200_000)
    data = frame(big) + frame(B)
    out, held = [], 0
    for i in range(0, len(data), 4096):
        out += framer.feed(data[i : i + 4096])
        held = max(held, framer.buffered)
    assert held <= 4096 + 64
    assert [f if isinstance(f, bytes) else "error" for f in out] == ["error", B]
    error = out[0]
    assert "200" in error.message and "over the limit of 1000 bytes" in error.message
    assert request_id(error.head) == 7  # the skipped request can be answered


def test_a_header_split_across_reads_ends_a_drain():
    framer = Framer(max_length=100)
    out = framer.feed(b"Content-Length: 1000000000\r\n\r\n" + b"x" * 300 + b"Content-Le")
    out += framer.feed(b"ngth: 5\r\n\r\nhello")
    assert [f if isinstance(f, bytes) else "error" for f in out] == ["error", b"hello"]


def test_a_10_mb_body_in_64_kb_reads():
    big = body(3, size=10_000_000)
    data = frame(big) + frame(A)
    framer = Framer(64 << 20)
    started = time.perf_counter()
    out = []
    for i in range(0, len(data), 65536):
        out += framer.feed(data[i : i + 65536])
    assert out == [big, A]
    assert time.perf_counter() - started < 5.0  # each read is scanned once, not the whole body again


def test_a_huge_request_is_reported_before_its_body_is_drained():
    """The client waits for an answer to the request it just sent: it gets one at once."""
    out = Framer().feed(frame(A, 99999999999))
    assert len(out) == 1 and request_id(out[0].head) == 1


def test_a_request_after_a_bad_header_is_reported_at_once():
    out = Framer().feed(frame(A, "abc"))
    messages = [f.message.split(";")[0] for f in out]
    assert messages == ["Content-Length b'abc' is not a number", "a message without a valid header"]
    assert request_id(out[1].head) == 1
    later = Framer()
    later.feed(frame(A, "abc"))
    assert later.feed(frame(B)) == [B]  # the skipped body is not reported twice


def test_the_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SLM_LSP_MAX_MESSAGE_MB", "2")
    assert transport.max_message_bytes() == 2 * 1024 * 1024
    monkeypatch.setenv("SLM_LSP_MAX_MESSAGE_MB", "lots")
    assert transport.max_message_bytes() == transport.MAX_MESSAGE_MB * 1024 * 1024
    monkeypatch.delenv("SLM_LSP_MAX_MESSAGE_MB")
    assert Framer().max_length == transport.MAX_MESSAGE_MB * 1024 * 1024


# -- the read loop --------------------------------------------------------------
async def test_serve_hands_bodies_on_and_survives_a_failing_handler():
    chunks = [frame(A) + frame(b"boom"), frame(A, "abc") + frame(B), b""]
    received, errors = [], []

    async def read() -> bytes:
        return chunks.pop(0)

    def receive(data: bytes) -> None:
        if data == b"boom":
            raise RuntimeError("a handler bug")
        received.append(data)

    await transport.serve(read, receive, errors.append, lambda: False)
    assert received == [A, B] and len(errors) == 2 and not chunks  # read to EOF


async def test_serve_stops_when_done():
    chunks = [frame(A) + frame(B), frame(A)]
    received: list[bytes] = []

    async def read() -> bytes:
        return chunks.pop(0)

    await transport.serve(read, received.append, lambda e: None, lambda: len(received) == 1)
    assert received == [A] and len(chunks) == 1  # nothing read or handled after exit
