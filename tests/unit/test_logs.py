"""The log never stalls the server: a writer that blocks makes records drop, not the caller wait."""

from __future__ import annotations

import logging
import threading
import time

from slm_lsp.logs import QueueWriter


class BlockedTarget:
    """A stderr nobody reads: every write blocks until unblocked."""

    def __init__(self) -> None:
        self.unblock = threading.Event()
        self.written: list[str] = []

    def write(self, text: str) -> None:
        self.unblock.wait()
        self.written.append(text.rstrip("\n"))

    def flush(self) -> None:
        pass


def test_a_blocked_writer_drops_records_instead_of_blocking_the_caller() -> None:
    target = BlockedTarget()
    handler = QueueWriter(target, size=10)
    log = logging.getLogger("test-logs-blocked")
    log.propagate = False
    log.addHandler(handler)
    started = time.monotonic()
    for i in range(500):
        log.warning("record %d", i)
    assert time.monotonic() - started < 5  # 500 records against a blocked stderr returned at once
    assert handler.dropped > 400
    target.unblock.set()  # the pipe is read again
    handler.flush(timeout=5)
    log.warning("after")
    handler.flush(timeout=5)
    assert any("log records dropped" in m for m in target.written)
    assert target.written[-1] == "after"


def test_records_are_formatted_when_logged() -> None:
    target = BlockedTarget()
    target.unblock.set()
    handler = QueueWriter(target)
    log = logging.getLogger("test-logs-format")
    log.propagate = False
    log.addHandler(handler)
    items = [1]
    log.warning("items %s", items)
    items.append(2)  # changed after logging: the record keeps what was logged
    handler.flush(timeout=5)
    assert target.written == ["items [1]"]
