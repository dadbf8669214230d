"""Faults recover and are told once: a model that raises, a failing disk cache, a reload
whose model file is gone. The session and the worker with the fake backend; no server."""

from __future__ import annotations

import dataclasses
import errno
import threading

import pytest

from slm_lsp import cache as cache_module
from slm_lsp import models, templates
from slm_lsp.backend import MODEL_ERROR, Request, Worker
from slm_lsp.fake_backend import FakeBackend
from slm_lsp.config import Config, IndexConfig, ModelConfig
from slm_lsp.engine import Document
from slm_lsp.session import MODEL_FAILURES, Session

GOOD = Document("file:///w/a.py", "a.py", "def add(a, b):\n    \n", "python")
BAD = Document("file:///w/b.py", "b.py", "# boom\ndef mul(x, y):\n    \n", "python")


@pytest.fixture(autouse=True)
def private_homes(tmp_path, monkeypatch):
    for name in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    monkeypatch.delenv("SLM_LSP_DATA_DIR", raising=False)


class Harness:
    """A session on the fake backend, with what it showed and notified."""

    def __init__(self, factory) -> None:
        self.shown: list[str] = []
        self.session = Session(factory, notify=lambda status: None, show=self.shown.append)
        config = Config(model=ModelConfig(warmup=False), index=IndexConfig(enable=False))
        self.session.configure(config, None, [])
        self.session.start()
        self.settle()

    def settle(self) -> None:
        assert self.session._loader is not None
        self.session._loader.join(10)

    def told(self, words: str) -> list[str]:
        return [m for m in self.shown if words in m]

    def reload(self) -> None:
        """A settings change that reloads the model (another context size)."""
        config = self.session.config
        bigger = dataclasses.replace(config.model, n_ctx=config.model.n_ctx + 256)
        self.session.reconfigure(dataclasses.replace(config, model=bigger), [])
        self.settle()

    async def complete(self, doc: Document):
        return await self.session.engine.complete(doc, doc.text.count("\n") - 1, 4, explicit=True)


def failing_fake(config: Config):
    return FakeBackend(fail_on="boom"), templates.QWEN, "fake"


# -- the model thread raising ---------------------------------------------------------
def test_worker_answers_a_raising_backend_and_counts_failures_in_a_row():
    seen: list[tuple[str, int]] = []
    worker = Worker(FakeBackend(fail_on="boom"), on_error=lambda exc, n: seen.append((type(exc).__name__, n)))
    for _ in range(2):
        reply, result, _ = worker.submit(Request("boom"))
        assert reply.result(timeout=2).stop_reason == MODEL_ERROR
        with pytest.raises(RuntimeError):
            result.result(timeout=2)
    reply, _result, _ = worker.submit(Request("def f(a):\n    "))
    assert reply.result(timeout=2).text == "return a"  # the thread survived
    worker.submit(Request("boom"))[0].result(timeout=2)
    assert seen == [("RuntimeError", 1), ("RuntimeError", 2), ("RuntimeError", 1)]  # a success resets
    worker.close()


def test_worker_survives_an_error_while_reporting_an_error():
    def broken_report(exc: Exception, n: int) -> None:
        raise ValueError("the reporter is broken too")

    worker = Worker(FakeBackend(fail_on="boom"), on_error=broken_report)
    assert worker.submit(Request("boom"))[0].result(timeout=2).stop_reason == MODEL_ERROR
    assert worker.submit(Request("def f(a):\n    "))[0].result(timeout=2).text == "return a"
    worker.close()


async def test_model_error_is_answered_empty_told_once_and_the_next_request_served():
    h = Harness(failing_fake)
    for _ in range(MODEL_FAILURES - 1):
        bad = await h.complete(BAD)
        assert bad.text == "" and bad.reason == "model error"
    assert len(h.told("the model failed on a request")) == 1 and len(h.shown) == 1
    assert "RuntimeError" in h.shown[0]
    good = await h.complete(GOOD)
    assert good.text == "return a + b"
    status = h.session.status()
    assert status["state"] == "ready" and "failed on a request" in status["message"]
    h.session.close()


async def test_model_failing_in_a_row_turns_completion_off_until_a_reload():
    h = Harness(failing_fake)
    for _ in range(MODEL_FAILURES):
        assert (await h.complete(BAD)).reason == "model error"
    status = h.session.status()
    assert status["state"] == "error" and f"{MODEL_FAILURES} times in a row" in status["message"]
    assert len(h.told("times in a row")) == 1
    off = await h.complete(GOOD)
    assert off.text == "" and "times in a row" in off.reason  # no model call while broken
    h.reload()
    assert h.session.status()["state"] == "ready"
    assert (await h.complete(GOOD)).text == "return a + b"
    h.session.close()


# -- the disk cache --------------------------------------------------------------------
async def test_corrupt_cache_at_start_is_told_once_in_a_message_and_the_status(tmp_path):
    directory = tmp_path / "xdg_cache_home" / "slm-lsp" / "completions"
    directory.mkdir(parents=True)
    (directory / "cache.db").write_bytes(b"\x00garbage\xff" * 1000)
    h = Harness(lambda config: (FakeBackend(), templates.QWEN, "fake"))
    assert len(h.shown) == 1 and "cache.db.corrupt-" in h.shown[0]
    assert h.session.status()["message"] == h.shown[0]
    assert h.session.engine.cache.on_disk
    assert (await h.complete(GOOD)).text == "return a + b"
    h.session.close()


async def test_disk_full_mid_session_still_answers_and_falls_back_to_memory(monkeypatch):
    disks = []

    class FullDisk:
        def __init__(self) -> None:
            self.sets = 0

        def get(self, key):
            return None

        def set(self, key, value):
            self.sets += 1
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            pass

    monkeypatch.setattr(cache_module, "_open", lambda directory, size_mb: disks.append(FullDisk()) or disks[-1])
    h = Harness(lambda config: (FakeBackend(), templates.QWEN, "fake"))
    cache = h.session.engine.cache
    stored = threading.Event()
    put = cache.put
    monkeypatch.setattr(cache, "put", lambda prompt, text: (put(prompt, text), stored.set()))
    first = await h.complete(GOOD)
    assert first.text == "return a + b" and first.source == "model"
    assert stored.wait(5)
    again = await h.complete(GOOD)
    assert again.text == "return a + b" and again.source == "cache"  # from memory
    assert not cache.on_disk and disks[0].sets == 1
    assert len(h.told("is full")) == 1 and len(h.shown) == 1
    h.session.close()


# -- the model file vanishing -------------------------------------------------------------
async def test_reload_with_the_model_file_gone_keeps_the_loaded_model_serving(tmp_path):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")

    def factory(config: Config):
        if not model.is_file():
            raise models.ModelError(f"Model file {model} does not exist. Fix model.path in your settings.")
        return FakeBackend(), templates.QWEN, "model.gguf"

    h = Harness(factory)
    model.unlink()  # deleted after load: the loaded weights go on serving
    assert (await h.complete(GOOD)).text == "return a + b"
    h.reload()
    status = h.session.status()
    assert status["state"] == "ready" and status["model"] == "model.gguf"
    assert len(h.shown) == 1 and str(model) in h.shown[0] and "Still serving" in h.shown[0]
    assert "Still serving" in status["message"]
    assert (await h.complete(GOOD)).text == "return a + b"
    h.session.close()


async def test_reload_with_the_model_file_gone_after_the_model_broke_is_an_error(tmp_path):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")

    def factory(config: Config):
        if not model.is_file():
            raise models.ModelError(f"Model file {model} does not exist.")
        return FakeBackend(fail_on="boom"), templates.QWEN, "model.gguf"

    h = Harness(factory)
    for _ in range(MODEL_FAILURES):
        await h.complete(BAD)
    model.unlink()
    h.reload()
    status = h.session.status()
    assert status["state"] == "error" and str(model) in status["message"]
    assert (await h.complete(GOOD)).text == ""
    h.session.close()
