"""slm-lsp finetune on the real bundled model: a few LoRA steps on the fixture
repository, the adapter exported and loaded by the real server through
``model.adapter``, where it changes the completion towards the repository's idiom.
Nothing written (dataset, checkpoints, adapter, output) holds a planted credential."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import AsyncIterator

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.finetune_repo import NOT_SOURCE, PLANTED, planted_repo

from .conftest import SERVER, inline, open_doc, wait_ready

pytestmark = pytest.mark.model
pytest.importorskip("peft")

# a new module of the fixture repository, whose functions all start with _audit("<module>.<function>")
IDIOM = '"""Archive of the ledger."""\n\nfrom ledger.audit import _audit\n\n\ndef archive_invoice(invoice):\n    \n'


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("finetune")
    root = planted_repo(tmp)
    run_dir, adapter = tmp / "run", tmp / "run" / "ledger.gguf"
    command = [sys.executable, "-m", "slm_lsp", "finetune", "--repo", str(root), "--run-dir", str(run_dir),
               "--out", str(adapter), "--steps", "40", "--lr", "7e-4", "--accumulate", "2", "--examples", "120",
               "--validation", "4", "--check", "3", "--minutes", "14"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {"root": root, "run_dir": run_dir, "adapter": adapter, "summary": summary, "output": done.stdout + done.stderr}


def test_training_ran_and_llama_cpp_agrees(finetuned):
    summary = finetuned["summary"]
    assert summary["steps"] == 40 and summary["stopped"] == "steps"
    assert summary["validation_loss_after"] < summary["validation_loss_before"], summary
    assert summary["agreement"]["positions"] >= 20
    assert summary["agreement"]["share"] >= 0.9, summary["agreement"]
    assert finetuned["adapter"].is_file()
    assert (finetuned["run_dir"].stat().st_mode & 0o777) == 0o700
    assert "held-out loss before" in finetuned["output"] and "step 40/40" in finetuned["output"]


def test_nothing_written_holds_a_planted_credential_or_skipped_file(finetuned):
    written = [p for p in finetuned["run_dir"].rglob("*") if p.is_file()]
    assert {"dataset.jsonl", "validation.jsonl", "ledger.gguf", "step-40.pt"} <= {p.name for p in written}
    blobs = [p.read_bytes() for p in written] + [finetuned["output"].encode()]
    for needle in PLANTED + NOT_SOURCE:
        assert not any(needle.encode() in blob for blob in blobs), needle


@contextlib.asynccontextmanager
async def server(workspace: Path, adapter: Path | None) -> AsyncIterator[LanguageClient]:
    """The real server on `workspace` (indexed), with the adapter or without; ready and indexed."""
    env = {**os.environ, "SLM_LSP_DISABLE_CACHE": "1"}
    env.pop("SLM_LSP_BACKEND", None)
    client = await ClientServerConfig(server_command=SERVER, server_env=env).start()
    params = types.InitializeParams(
        capabilities=client_capabilities("neovim"), root_uri=workspace.as_uri(),
        initialization_options={"model": {"adapter": str(adapter) if adapter else ""}},
    )  # fmt: skip
    try:
        await client.initialize_session(params)
        status = await wait_ready(client)
        assert status["state"] == "ready" and status["adapter"] == (str(adapter) if adapter else ""), status
        loop = asyncio.get_running_loop()
        end = loop.time() + 60
        while not status["index"].get("ready") and loop.time() < end:  # retrieval as the user would have it
            await asyncio.sleep(0.2)
            status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="slm.status"))
        yield client
        await client.shutdown_session()
    finally:
        await client.stop()


async def complete_idiom(workspace: Path, adapter: Path | None) -> str:
    async with server(workspace, adapter) as client:
        uri = open_doc(client, workspace / "ledger" / "archive.py", IDIOM, "python")
        result = await inline(client, uri, IDIOM.count("\n") - 1, 4)
        return result.items[0].insert_text if result and result.items else ""


@pytest.mark.asyncio
async def test_the_server_loads_the_adapter_and_it_changes_the_completion(finetuned):
    """A new module of the repository, where the house idiom (`_audit("module.func")`) is obvious:
    the server with the adapter completes it differently from the base model. (That it writes the
    idiom itself is not yet reliable after a few CPU steps: see bench/accuracy.md, Fine-tuning.)"""
    plain = await complete_idiom(finetuned["root"], None)
    tuned = await complete_idiom(finetuned["root"], finetuned["adapter"])
    assert tuned and tuned != plain, (plain, tuned)
