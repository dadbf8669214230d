"""Where the server's log goes: stderr or a file, never the network, and never in the way.

Records are handed to a writer thread through a bounded queue: a client that
does not read the server's stderr (the pipe fills) makes the log drop records,
never stalls the event loop or the model thread. Dropped records are counted
and said once the writer can write again.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from typing import TextIO

QUEUE_RECORDS = 2000  # records waiting for the writer before new ones are dropped
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class QueueWriter(logging.Handler):
    """Puts records on a bounded queue; a daemon thread formats them and writes them to ``stream``.

    The stream is written by that thread alone and under no lock logging knows of, so
    neither a log call nor logging's shutdown at exit waits for a stream that blocks.
    """

    def __init__(self, stream: TextIO, size: int = QUEUE_RECORDS) -> None:
        super().__init__()
        self.stream = stream
        self.dropped = 0
        self._queue: queue.Queue[logging.LogRecord] = queue.Queue(maxsize=size)
        self._thread = threading.Thread(target=self._write, name="slm-log", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg, record.args = record.getMessage(), None  # format now: arguments may change later
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def _write(self) -> None:
        while True:
            record = self._queue.get()
            if self.dropped:
                with self.lock:  # emit counts under this lock (logging.Handler.handle)
                    dropped, self.dropped = self.dropped, 0
                note = logging.LogRecord("slm_lsp.logs", logging.WARNING, __file__, 0,
                                         "%d log records dropped: the log could not be written", (dropped,), None)  # fmt: skip
                self._put(note)
            self._put(record)
            self._queue.task_done()

    def _put(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed stderr or file: the record is lost, not the server
            pass

    def flush(self, timeout: float = 1.0) -> None:
        """Wait (bounded) until what is queued has been written."""
        end = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < end:
            time.sleep(0.01)


class _ExpectedCancel(logging.Filter):
    """A $/cancelRequest for a request already answered is normal, not a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Cancel notification for unknown message id" not in str(record.msg)


def setup(log_file: str, level: str) -> QueueWriter:
    """Logs go to stderr (stdout carries LSP) or a file, through a ``QueueWriter``."""
    stream = open(log_file, "a", encoding="utf-8") if log_file else sys.stderr  # noqa: SIM115 (open for the process)
    handler = QueueWriter(stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.getLogger().addHandler(handler)
    global _command_line_level
    _command_line_level = level
    set_level("")
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_ExpectedCancel())
    return handler


_command_line_level = "info"  # the level ``setup`` was given (--log-level, SLM_LSP_LOG_LEVEL)


def set_level(level: str) -> None:
    """The log's level: "debug", "info", "warning" or "error"; "" : the command line's."""
    root = logging.getLogger()
    root.setLevel(getattr(logging, (level or _command_line_level).upper(), logging.INFO))
    logging.getLogger("pygls").setLevel(logging.WARNING if root.level > logging.DEBUG else logging.DEBUG)
