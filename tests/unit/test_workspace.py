"""The live workspace: edits to open documents reach the index once typing pauses (one thread for all)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from slm_lsp.config import IndexConfig
from slm_lsp.engine import Document
from slm_lsp.workspace import Debouncer, Workspace


def wait_for(condition, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_key_runs_once_with_its_last_text_after_the_quiet_time():
    calls: list[tuple[Path, str | None]] = []
    threads: set[threading.Thread] = set()
    done = threading.Event()

    def action(path: Path, text: str | None) -> None:
        calls.append((path, text))
        threads.add(threading.current_thread())
        if len(calls) == 2:
            done.set()

    debouncer = Debouncer(0.5, action)
    for i in range(5):
        debouncer.put("file:///a.py", Path("a.py"), f"a{i}")
        time.sleep(0.02)  # typing faster than the quiet time
    debouncer.put("file:///b.py", Path("b.py"), "b")
    assert calls == []  # nothing while keys keep coming
    assert done.wait(5)
    with debouncer._wake:
        assert not debouncer._pending  # nothing left to run: each key ran once
    assert sorted(calls) == [(Path("a.py"), "a4"), (Path("b.py"), "b")]
    assert len(threads) == 1  # one thread for every key, not a timer per edit
    debouncer.close()


def test_closed_means_nothing_more_runs():
    calls: list[str | None] = []
    debouncer = Debouncer(0.05, lambda path, text: calls.append(text))
    debouncer.put("k", Path("x.py"), "pending")
    debouncer.close()
    debouncer.put("k", Path("x.py"), "after")
    assert debouncer._thread is not None
    debouncer._thread.join(5)
    assert not debouncer._thread.is_alive()  # the thread has ended: nothing can run any more
    assert calls == []


def test_an_edited_buffer_reaches_the_index(tmp_path: Path):
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "geo.py").write_text("def area(w, h):\n    return w * h\n")
    workspace = Workspace(root, IndexConfig(), lambda *args: None, store_dir=tmp_path / "store", quiet_s=0.05)
    workspace.start().join(30)
    assert workspace.ready and workspace.index.definitions_named("perimeter") == []
    text = "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n"
    workspace.touched(Document((root / "pkg" / "geo.py").as_uri(), "pkg/geo.py", text, "python"))
    assert workspace.recent == ["pkg/geo.py"]
    assert wait_for(lambda: workspace.index.definitions_named("perimeter") != [])
    workspace.close()
