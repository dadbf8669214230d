"""Message framing for stdio and TCP: bytes in, JSON-RPC bodies out, never wedged.

``Framer.feed`` is pure: it takes bytes as they arrive and returns the complete
bodies and the framing errors found, in order. The rules:

- A ``Content-Length`` over the limit (``SLM_LSP_MAX_MESSAGE_MB``, default 64) is
  drained in chunks, never allocated, and reported once.
- After a bad header (no length, a length that is not a number, a line of
  garbage) the framer resynchronises on the next ``Content-Length:`` header,
  wherever it starts: a short Content-Length leaves the body's tail glued in
  front of the next header.
- ``Content-Length: N`` followed by CR LF can never occur inside valid JSON (a
  JSON string holds no raw line break), so a body that contains it ran past its
  message: it is cut there and the next message is read from that header. A long
  Content-Length costs no message, and a client that waits for its answer before
  sending more is not left waiting for bytes that will never come.

``serve_stdio`` and ``serve_tcp`` are the read loops: they hand each body to a
callback (``jsonrpc.parse_body`` reads it there) and stop at EOF or when the
protocol says it is done (``exit``). Nothing here imports pygls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import re
import threading
from dataclasses import dataclass
from typing import Awaitable, Callable

from slm_lsp.jsonrpc import HEAD_BYTES, request_id  # the start of skipped data names a request

log = logging.getLogger(__name__)

MAX_MESSAGE_MB = 64  # default limit of one message; env SLM_LSP_MAX_MESSAGE_MB overrides
MAX_HEADER_BYTES = 8192  # this much data without a header terminator is garbage
CHUNK = 65536  # bytes read at a time

_HEADER = re.compile(rb"Content-Length:[ \t]*\d+[ \t]*\r\n")  # never inside valid JSON
_HEADER_START = re.compile(rb"content-length[ \t]*:", re.IGNORECASE)
_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(\d+)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_BAD_LENGTH = re.compile(rb"^content-length[ \t]*:([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
_FIELD = re.compile(rb"[A-Za-z0-9-]+[ \t]*:[^\r\n]*\r\n")  # a header line (Content-Type: ...)
_OVERLAP = 64  # bytes scanned again with the next read: a header split across reads is found


def max_message_bytes() -> int:
    """The message size limit: ``SLM_LSP_MAX_MESSAGE_MB`` when it is a positive number."""
    raw = os.environ.get("SLM_LSP_MAX_MESSAGE_MB", "")
    try:
        mb = float(raw) if raw else MAX_MESSAGE_MB
    except ValueError:
        log.warning("SLM_LSP_MAX_MESSAGE_MB=%r is not a number; using %d", raw, MAX_MESSAGE_MB)
        mb = MAX_MESSAGE_MB
    return int(mb * 1024 * 1024) if mb > 0 else MAX_MESSAGE_MB * 1024 * 1024


@dataclass(frozen=True)
class FramingError:
    """Bytes that were not a message; ``head`` is the start of what was discarded."""

    message: str
    head: bytes = b""


class Framer:
    """Content-Length framing with resynchronisation. Not thread-safe: one reader feeds it."""

    def __init__(self, max_length: int | None = None) -> None:
        self.max_length = max_message_bytes() if max_length is None else max_length
        self._buf = bytearray()
        self._length: int | None = None  # the body being read, from its header
        self._drop = False  # the body is over the limit: drained, not kept
        self._done = 0  # body bytes dropped (drain) or scanned for a glued header (keep)
        self._reported = False  # the over-limit body has been reported
        self._garbage = False  # in a run of garbage already reported

    @property
    def buffered(self) -> int:
        """Bytes held now (an over-limit body is never held whole)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes | FramingError]:
        self._buf += data
        out: list[bytes | FramingError] = []
        while self._body(out) if self._length is not None else self._header(out):
            pass
        return out

    def _header(self, out: list[bytes | FramingError]) -> bool:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if not self._garbage and buf[:1] == b"{" and request_id(bytes(buf[:HEAD_BYTES])) is not None:
                # a request after a bad header: answer it now, not when the next header comes
                out.append(FramingError("a message without a valid header", bytes(buf[:HEAD_BYTES])))
                self._garbage = True
            if len(buf) <= MAX_HEADER_BYTES:
                return False
            start = _HEADER_START.search(buf, 1)
            cut = start.start() if start else len(buf) - _OVERLAP
            self._junk(out, cut, f"{cut} bytes without a message header")
            self._garbage = True
            return True
        starts = [m.start() for m in _HEADER_START.finditer(buf, 0, end)]  # the last is the header's
        if not starts:
            return self._junk(out, end + 4, "a header without Content-Length")
        begin = starts[-1]
        while begin >= 2 and buf[begin - 2 : begin] == b"\r\n":  # header lines before it belong to it
            line = buf.rfind(b"\r\n", 0, begin - 2)
            line = line + 2 if line >= 0 else 0
            if not _FIELD.fullmatch(buf, line, begin):
                break
            begin = line
        if begin > 0:
            return self._junk(out, begin, f"{begin} bytes before a message header")
        block = bytes(buf[:end])
        del buf[: end + 4]
        match = _LENGTH.search(block)
        if match is None:
            bad = _BAD_LENGTH.search(block)
            value = bad.group(1).strip()[:40] if bad else b""
            out.append(FramingError(f"Content-Length {value!r} is not a number; skipped to the next header"))
            return True
        self._length, self._done, self._reported, self._garbage = int(match.group(1)), 0, False, False
        self._drop = self._length > self.max_length
        return True

    def _body(self, out: list[bytes | FramingError]) -> bool:
        buf, length = self._buf, self._length or 0
        remaining = length - self._done if self._drop else length
        scan_from = 0 if self._drop else max(0, self._done - _OVERLAP)
        glued = _HEADER.search(buf, scan_from, min(len(buf), remaining + _OVERLAP))
        if glued is not None and glued.start() < remaining:
            return self._glued(out, glued.start())
        complete = len(buf) >= remaining
        if self._drop:
            self._report_drop(out, complete)
        if complete:
            if not self._drop:
                out.append(bytes(buf[:length]))
            del buf[:remaining]
            self._length = None
            return True
        if not self._drop:
            self._done = len(buf)
        elif self._reported:  # drain, keeping the overlap: a header may start in it
            cut = max(0, len(buf) - _OVERLAP)
            del buf[:cut]
            self._done += cut
        return False

    def _report_drop(self, out: list[bytes | FramingError], final: bool, end: int = HEAD_BYTES) -> None:
        """Report an over-limit message once, as soon as its start shows the request's id
        (a client waiting for that answer must not wait for the whole body)."""
        if self._reported:
            return
        head = bytes(self._buf[: min(end, HEAD_BYTES)])
        if final or len(head) >= HEAD_BYTES or request_id(head) is not None:
            out.append(FramingError(self._too_large(), head))
            self._reported = True

    def _glued(self, out: list[bytes | FramingError], at: int) -> bool:
        """A header inside the body: the Content-Length was too long (or a lie)."""
        if self._drop:
            self._report_drop(out, True, at)
        else:
            ran = (self._length or 0) - at
            out.append(FramingError(f"Content-Length {self._length} ran {ran} bytes into the next message"))
            if self._buf[:at].strip():
                out.append(bytes(self._buf[:at]))
        del self._buf[:at]
        self._length = None
        return True

    def _too_large(self) -> str:
        return f"a message of {self._length} bytes is over the limit of {self.max_length} bytes; skipped"

    def _junk(self, out: list[bytes | FramingError], cut: int, why: str) -> bool:
        """Skip ``cut`` bytes that are no message (blank lines between messages silently)."""
        if self._buf[:cut].strip() and not self._garbage:
            out.append(FramingError(f"{why}; skipped to the next header", bytes(self._buf[: min(cut, HEAD_BYTES)])))
        del self._buf[:cut]
        return True


# -- read loops ---------------------------------------------------------------
Receive = Callable[[bytes], None]
OnError = Callable[[FramingError], None]


async def serve(read: Callable[[], Awaitable[bytes]], receive: Receive, on_error: OnError,
                done: Callable[[], bool], framer: Framer | None = None) -> None:  # fmt: skip
    """Read until EOF or ``done()``; every body goes to ``receive``, every framing error to ``on_error``."""
    framer = framer or Framer()
    while not done():
        data = await read()
        if not data:
            log.info("the client closed the connection")
            return
        for frame in framer.feed(data):
            try:
                if isinstance(frame, FramingError):
                    on_error(frame)
                else:
                    receive(frame)
            except (BrokenPipeError, ConnectionError):
                log.error("the connection to the client is lost")
                return
            except Exception:  # a message never ends the server
                log.exception("handling a message failed")
            if done():
                return


class FdReader:
    """Reads a file descriptor on a daemon thread, one chunk per ``read()``: a read
    blocked on a silent client never holds up the process's exit."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._requests: queue.Queue[tuple[asyncio.AbstractEventLoop, asyncio.Future[bytes]]] = queue.Queue()
        threading.Thread(target=self._run, name="slm-stdin", daemon=True).start()

    async def read(self) -> bytes:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self._requests.put((loop, future))
        return await future

    def _run(self) -> None:
        data = b"x"
        while data:
            loop, future = self._requests.get()
            try:
                data = os.read(self._fd, CHUNK)
            except OSError:
                data = b""
            try:
                loop.call_soon_threadsafe(lambda f=future, d=data: f.done() or f.set_result(d))
            except RuntimeError:  # the loop is closed: the server has ended
                return


async def serve_stdio(receive: Receive, on_error: OnError, done: Callable[[], bool], fd: int = 0) -> None:
    await serve(FdReader(fd).read, receive, on_error, done)


async def serve_tcp(host: str, port: int, connected: Callable[[asyncio.StreamWriter], None],
                    receive: Receive, on_error: OnError, done: Callable[[], bool]) -> None:  # fmt: skip
    """Serve one client on ``host:port``; the server ends when that client's connection does."""
    finished = asyncio.get_running_loop().create_future()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if finished.done():
            writer.close()
            return
        connected(writer)
        try:
            await serve(lambda: reader.read(CHUNK), receive, on_error, done)
        except ConnectionError:
            log.error("the connection to the client is lost")
        finally:
            writer.close()
            if not finished.done():
                finished.set_result(None)

    server = await asyncio.start_server(client, host, port)
    log.info("serving on %s", ", ".join(str(s.getsockname()) for s in server.sockets))
    async with server:
        await finished
