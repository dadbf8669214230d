"""Faults recover and are told once, over LSP: the real server process on the fake backend.

Each test starts its own server with its XDG directories in ``tmp_path``, breaks one
thing (a corrupt cache database, an unusable cache directory, a model that raises),
checks that exactly one ``window/showMessage`` names the problem, and ends with a
normal completion answered with text.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from slm_lsp import models

from .conftest import inline, open_doc, server, wait_ready

NORMAL = "def add(a, b):\n    \n"


def errors(client: LanguageClient, words: str) -> list[str]:
    return [m.message for m in client.messages if m.type == types.MessageType.Error and words in m.message]


async def told_once(client: LanguageClient, words: str, timeout: float = 10.0) -> str:
    """Wait (bounded poll) for the showMessage naming the problem; exactly one must come."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not errors(client, words) and loop.time() < end:
        await asyncio.sleep(0.05)
    found = errors(client, words)
    assert len(found) == 1, [m.message for m in client.messages]
    return found[0]


async def status(client: LanguageClient) -> dict:
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(command="slm.status"))


async def normal_completion(client: LanguageClient, name: str = "normal.py") -> None:
    uri = open_doc(client, client.root / name, NORMAL, "python")
    result = await inline(client, uri, 1, 4)
    assert [i.insert_text for i in result.items] == ["return a + b"]


async def test_corrupt_cache_database_at_start_is_moved_aside_and_told_once(tmp_path):
    completions = tmp_path / "xdg_cache_home" / "slm-lsp" / "completions"
    completions.mkdir(parents=True)
    (completions / "cache.db").write_bytes(b"SQLite format 3\x00" + b"\xee" * 8000)  # a header, then garbage
    async with server(tmp_path) as client:
        assert (await wait_ready(client, timeout=30))["state"] == "ready"
        message = await told_once(client, "completion cache database")
        aside = [p for p in completions.iterdir() if p.name.startswith("cache.db.corrupt-")]
        assert len(aside) == 1 and str(aside[0]) in message
        assert (completions / "cache.db").is_file()  # a new, empty database
        assert message in (await status(client))["message"]
        await normal_completion(client)
        await normal_completion(client, "again.py")  # a cache hit now: still no second message
        await told_once(client, "completion cache database", timeout=0)


async def test_cache_directory_blocked_by_a_file_falls_back_to_memory_and_told_once(tmp_path):
    blocked = tmp_path / "xdg_cache_home" / "slm-lsp" / "completions"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the cache directory should be")
    async with server(tmp_path) as client:
        assert (await wait_ready(client, timeout=30))["state"] == "ready"
        message = await told_once(client, "cannot be used")
        assert f"Remove the file {blocked}" in message and "memory" in message
        assert message in (await status(client))["message"]
        await normal_completion(client)
        await told_once(client, "cannot be used", timeout=0)


async def test_cache_directory_under_proc_falls_back_to_memory_and_told_once(tmp_path):
    directory = "/proc/slm-lsp-test/completions"
    async with server(tmp_path, {"cache": {"dir": directory}}) as client:
        assert (await wait_ready(client, timeout=30))["state"] == "ready"
        message = await told_once(client, "cannot be used")
        assert directory in message and "set cache.dir" in message
        await normal_completion(client)


async def test_model_raising_answers_empty_tells_once_and_serves_the_next_request(tmp_path):
    async with server(tmp_path, {"model": {"warmup": False}}, SLM_LSP_FAKE_FAIL="boom") as client:
        assert (await wait_ready(client, timeout=30))["state"] == "ready"
        uri = open_doc(client, client.root / "bad.py", "# boom\ndef mul(x, y):\n    \n", "python")
        for _ in range(2):
            result = await inline(client, uri, 2, 4)
            assert result is not None and not result.items
            assert (await status(client))["lastReason"] == "model error"
        message = await told_once(client, "the model failed on a request")
        assert "RuntimeError" in message
        await normal_completion(client)
        assert (await status(client))["state"] == "ready"
        await told_once(client, "the model failed", timeout=0)


async def test_model_failing_in_a_row_goes_to_error_until_a_reload(tmp_path):
    async with server(tmp_path, {"model": {"warmup": False}}, SLM_LSP_FAKE_FAIL="boom") as client:
        assert (await wait_ready(client, timeout=30))["state"] == "ready"
        uri = open_doc(client, client.root / "bad.py", "# boom\ndef mul(x, y):\n    \n", "python")
        for _ in range(3):  # session.MODEL_FAILURES
            await inline(client, uri, 2, 4)
        state = await status(client)
        assert state["state"] == "error" and "3 times in a row" in state["message"]
        await told_once(client, "3 times in a row")
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"slm": {"model": {"warmup": False, "nCtx": 1024}}})
        )
        assert (await wait_ready(client, timeout=30))["state"] == "ready"
        await normal_completion(client)


@pytest.mark.model
async def test_model_file_truncated_then_deleted_keeps_serving_and_a_reload_tells_once(tmp_path):
    """The weights are read into memory (no mmap): truncating the file in place (cp over
    it) cannot SIGBUS the server; a reload with the file gone keeps the loaded model."""
    copy = tmp_path / "model.gguf"
    shutil.copyfile(models.resolve("", out=None), copy)
    options = {"model": {"warmup": False}, "completion": {"speculate": False}}
    async with server(tmp_path, options, fake=False, SLM_LSP_MODEL=str(copy), SLM_LSP_DISABLE_CACHE="1") as client:
        assert (await wait_ready(client, timeout=120))["state"] == "ready"
        uri = open_doc(client, client.root / "a.py", "def add(a, b):\n    return \n", "python")
        assert (await inline(client, uri, 1, 11)).items
        with copy.open("r+b") as f:  # overwritten in place: truncated, as cp over it does first
            f.truncate(copy.stat().st_size // 2)
        uri = open_doc(client, client.root / "b.py", "def mul(x, y):\n    return \n", "python")
        assert (await inline(client, uri, 1, 11)).items  # from the loaded weights
        copy.unlink()
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"slm": {**options, "model": {"warmup": False, "nCtx": 1024}}})
        )
        state = await wait_ready(client, timeout=120)
        assert state["state"] == "ready" and str(copy) in state["message"]
        message = await told_once(client, "Still serving")
        assert str(copy) in message and "does not exist" in message
        uri = open_doc(client, client.root / "c.py", "def sub(p, q):\n    return \n", "python")
        assert (await inline(client, uri, 1, 11)).items


async def test_missing_model_file_one_clear_message_and_the_server_answers(tmp_path):
    missing = tmp_path / "no-such-model.gguf"
    async with server(tmp_path, fake=False, SLM_LSP_MODEL=str(missing)) as client:
        state = await wait_ready(client, timeout=60)
        assert state["state"] == "error" and str(missing) in state["message"]
        uri = open_doc(client, client.root / "a.py", NORMAL, "python")
        for _ in range(2):
            assert not (await inline(client, uri, 1, 4)).items  # answered, empty
        await told_once(client, str(missing))


async def test_truncated_model_file_at_start_one_clear_message_and_the_server_answers(tmp_path):
    cut = tmp_path / "cut.gguf"
    with models.resolve("", out=None).open("rb") as f:  # the bundled model's first MiB: a GGUF cut short
        cut.write_bytes(f.read(1 << 20))
    async with server(tmp_path, fake=False, SLM_LSP_MODEL=str(cut)) as client:
        state = await wait_ready(client, timeout=60)
        assert state["state"] == "error" and str(cut) in state["message"]
        uri = open_doc(client, client.root / "a.py", NORMAL, "python")
        assert not (await inline(client, uri, 1, 4)).items
        await told_once(client, str(cut))


async def test_five_thousand_file_workspace_with_symlink_loops_is_indexed_and_serves(tmp_path):
    root = tmp_path / "ws"
    for d in range(50):
        package = root / f"pkg{d}"
        package.mkdir(parents=True)
        (package / "loop").symlink_to(root)  # a loop back to the root
        (package / "self").symlink_to(package)
        for i in range(100):
            (package / f"m{i}.py").write_text(f"def f{d}_{i}(x):\n    return x + {i}\n")
    (root / "dangling").symlink_to(root / "nowhere")
    async with server(tmp_path, {"index": {"enable": True}}) as client:
        assert (await wait_ready(client, timeout=30))["state"] == "ready"
        await normal_completion(client)
        loop = asyncio.get_running_loop()
        end = loop.time() + 120
        while not ((await status(client)).get("index") or {}).get("ready") and loop.time() < end:
            await asyncio.sleep(0.2)
        index = (await status(client))["index"]
        assert index.get("ready") and index["total"] == 5000, index  # every file once, no loop followed
        await normal_completion(client, "after.py")
