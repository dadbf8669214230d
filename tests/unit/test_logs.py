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
    target.unblock.set()  # the pipe is read again
    handler.flush(timeout=5)
    log.warning("after")
    handler.flush(timeout=5)
    assert target.written[-1] == "after"
    # the writer thread may take a record (and the count so far, as a note) before it blocks, so the drops are
    # counted from the notes it wrote, not from the handler's counter alone
    notes = [int(m.split()[0]) for m in target.written if m.endswith("log records dropped: the log could not be written")]
    kept = [m for m in target.written if m.startswith("record ")]
    assert notes and sum(notes) + handler.dropped == 500 - len(kept)
    assert len(kept) <= 12  # the queue's 10 and the one or two the blocked thread holds; the rest dropped


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
