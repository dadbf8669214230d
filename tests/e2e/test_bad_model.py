"""A missing or corrupt model: one clear message, and the server keeps answering."""

from __future__ import annotations

import asyncio
import os

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from .conftest import SERVER, inline, open_doc, wait_ready

pytestmark = pytest.mark.asyncio(loop_scope="module")

CORRUPT = "/tmp/slm-lsp-test-corrupt.gguf"
ENV = {**os.environ, "SLM_LSP_MODEL": CORRUPT, "SLM_LSP_DISABLE_CACHE": "1"}
ENV.pop("SLM_LSP_BACKEND", None)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=ENV), scope="module")
async def client(lsp_client: LanguageClient, tmp_path_factory):
    with open(CORRUPT, "wb") as f:
        f.write(b"GGUF\x03\x00\x00\x00" + b"\xff" * 64)  # a header, then garbage
    root = tmp_path_factory.mktemp("ws")
    lsp_client.root = root
    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=client_capabilities("neovim"), root_uri=root.as_uri())
    )
    yield
    await lsp_client.shutdown_session()


async def test_corrupt_model_one_clear_message_and_empty_answers(client: LanguageClient):
    status = await wait_ready(client, timeout=60)
    assert status["state"] == "error"
    assert CORRUPT in status["message"] and "model.path" in status["message"]
    uri = open_doc(client, client.root / "a.py", "def add(a, b):\n    \n", "python")
    for _ in range(3):
        result = await inline(client, uri, 1, 4)
        assert result is not None and not result.items
    errors = [m for m in client.messages if m.type == types.MessageType.Error]
    assert len(errors) == 1, errors  # rate-limited: one message, not one per request
    assert CORRUPT in errors[0].message


async def test_unknown_setting_is_reported_and_ignored(client: LanguageClient):
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"slm": {"completion": {"maxLines": "lots", "nope": 1}}})
    )
    status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="slm.status"))
    assert status["state"] == "error"  # still the model problem, still answering
    settings = await shown(client, "maxLines")
    assert len(settings) == 1 and "nope" in settings[0], settings  # both problems, in one message
    assert len(await shown(client, CORRUPT)) == 1  # the model's problem is not told again


async def shown(client: LanguageClient, words: str, timeout: float = 10.0) -> list[str]:
    """The messages naming ``words``, once at least one has come (bounded poll)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not any(words in m.message for m in client.messages) and loop.time() < end:
        await asyncio.sleep(0.05)
    return [m.message for m in client.messages if words in m.message]
