"""The session's threads and settings: a loaded model is swapped in on the event loop's
thread, whole, closing what it replaces; ``logLevel`` sets the server's log level."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time

import pytest

from slm_lsp import logs, templates
from slm_lsp.fake_backend import FakeBackend
from slm_lsp.config import Config, IndexConfig, ModelConfig
from slm_lsp.engine import Document
from slm_lsp.session import Session

DOC = Document("file:///w/a.py", "a.py", "def add(a, b):\n    \n", "python")


@pytest.fixture(autouse=True)
def private_homes(tmp_path, monkeypatch):
    for name in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))


async def until(condition, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "the condition never held"
        await asyncio.sleep(0.01)


def on_loop_runtime(loop: asyncio.AbstractEventLoop, config: Config) -> tuple[Session, list[tuple[str, str]]]:
    """A session on the fake backend whose loads reach ``loop`` like the server's; records
    which thread swapped the model in and warmed it up."""
    session = Session(
        lambda cfg: (FakeBackend(), templates.QWEN, "fake"), notify=lambda status: None, show=lambda m: None,
        on_loop=loop.call_soon_threadsafe,
    )  # fmt: skip
    seen: list[tuple[str, str]] = []
    engine = session.engine
    set_model, warmup = engine.set_model, engine.warmup
    engine.set_model = lambda *a: (seen.append(("set_model", threading.current_thread().name)), set_model(*a))[1]
    engine.warmup = lambda *a: (seen.append(("warmup", threading.current_thread().name)), warmup(*a))[1]
    session.configure(config, None, [])
    return session, seen


async def test_a_loaded_model_is_swapped_in_and_warmed_up_on_the_event_loop_thread():
    config = Config(model=ModelConfig(warmup=True), index=IndexConfig(enable=False))
    session, seen = on_loop_runtime(asyncio.get_running_loop(), config)
    session.opened(DOC)
    session.start()
    await until(lambda: session.state == "ready")
    here = threading.current_thread().name
    assert seen == [("set_model", here), ("warmup", here)]  # never the loader thread
    assert (await session.engine.complete(DOC, 1, 4, explicit=True)).text == "return a + b"
    session.close()


async def test_a_reload_swaps_the_model_whole_and_closes_the_one_it_replaces():
    config = Config(model=ModelConfig(warmup=False), index=IndexConfig(enable=False))
    session, _seen = on_loop_runtime(asyncio.get_running_loop(), config)
    session.start()
    await until(lambda: session.state == "ready")
    first = session.engine.scheduler.models
    bigger = dataclasses.replace(config.model, n_ctx=config.model.n_ctx + 256)
    session.reconfigure(dataclasses.replace(config, model=bigger), [])
    await until(lambda: session.state == "ready")
    second = session.engine.scheduler.models
    assert second is not first and second.worker is not first.worker
    assert not first.worker._thread.is_alive()  # the replaced model's thread is closed
    assert (await session.engine.complete(DOC, 1, 4, explicit=True)).text == "return a + b"
    session.close()


@pytest.fixture
def root_level():
    root, pygls = logging.getLogger(), logging.getLogger("pygls")
    before = (root.level, pygls.level)
    logs.set_level("")
    yield
    root.setLevel(before[0])
    pygls.setLevel(before[1])


def test_log_level_setting_sets_the_servers_level_and_empty_restores_the_command_lines(root_level):
    session = Session(lambda cfg: (FakeBackend(), templates.QWEN, "fake"), notify=lambda s: None, show=lambda m: None)
    command_line = logging.getLogger().level
    session.configure(Config(log_level="debug"), None, [])
    assert logging.getLogger().level == logging.DEBUG and logging.getLogger("pygls").level == logging.DEBUG
    session.configure(Config(log_level="error"), None, [])
    assert logging.getLogger().level == logging.ERROR and logging.getLogger("pygls").level == logging.WARNING
    session.configure(Config(), None, [])
    assert logging.getLogger().level == command_line
