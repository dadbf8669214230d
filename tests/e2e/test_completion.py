"""The real server with the real default model, driven over stdio by a real LSP client."""

from __future__ import annotations

import os
import re

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from .conftest import SERVER, inline, open_doc, wait_ready

pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="module")]

ENV = {**os.environ, "SLM_LSP_DISABLE_CACHE": "1"}
ENV.pop("SLM_LSP_BACKEND", None)


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER, server_env=ENV),
    params=["neovim", "visual-studio-code"],
    scope="module",
)
async def client(request, lsp_client: LanguageClient, tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    params = types.InitializeParams(
        capabilities=client_capabilities(request.param),
        root_uri=root.as_uri(),  # default settings: requests are answered when the suggestion is ready
    )
    result = await lsp_client.initialize_session(params)
    lsp_client.root = root
    lsp_client.init_result = result
    status = await wait_ready(lsp_client)
    assert status["state"] == "ready", status
    yield
    await lsp_client.shutdown_session()


async def test_capabilities(client: LanguageClient):
    caps = client.init_result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental


async def status(client: LanguageClient) -> dict:
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(command="slm.status"))


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


async def test_python_add_returns_sum(client: LanguageClient):
    uri = open_doc(client, client.root / "calc.py", "def add(a, b):\n    \n", "python")
    result = await inline(client, uri, 1, 4)
    assert result is not None and result.items, str(await status(client))
    text = result.items[0].insert_text
    assert _normalise(text).startswith("return a + b"), text
    rng = result.items[0].range
    assert (rng.start.line, rng.start.character) == (1, 4)


async def test_javascript_add_returns_sum(client: LanguageClient):
    uri = open_doc(client, client.root / "calc.js", "function add(a, b) {\n  \n}\n", "javascript")
    result = await inline(client, uri, 1, 2)
    assert result is not None and result.items, result
    assert _normalise(result.items[0].insert_text).startswith("return a + b"), result.items[0].insert_text


async def test_token_healing_mid_word(client: LanguageClient):
    """The cursor inside `ret`: the suggestion continues the word, not a new one."""
    uri = open_doc(client, client.root / "heal.py", "def add(a, b):\n    ret\n", "python")
    result = await inline(client, uri, 1, 7)
    assert result is not None and result.items, result
    assert _normalise("ret" + result.items[0].insert_text).startswith("return a + b"), result.items[0].insert_text


async def test_completion_fallback_item(client: LanguageClient):
    uri = open_doc(client, client.root / "fallback.py", "def mul(x, y):\n    return x\n", "python")
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri),
            position=types.Position(1, 12),
            context=types.CompletionContext(trigger_kind=types.CompletionTriggerKind.Invoked),
        )
    )
    assert result is not None and result.items, result
    item = result.items[0]
    assert "y" in item.text_edit.new_text
    assert item.text_edit.range.end == types.Position(1, 12)


async def test_no_suggestion_inside_comment_when_automatic(client: LanguageClient):
    uri = open_doc(client, client.root / "comment.py", "# compute the tot\nx = 1\n", "python")
    result = await inline(client, uri, 0, 10, explicit=False)
    assert result is not None and not result.items


async def test_bad_input_keeps_serving(client: LanguageClient):
    # an unknown document, a position out of range, binary junk, an unknown language, an empty file
    assert await inline(client, (client.root / "nope.py").as_uri(), 0, 0) is None
    uri = open_doc(client, client.root / "short.py", "x = 1\n", "python")
    assert await inline(client, uri, 99, 0) is None
    assert await inline(client, uri, 0, 999) is None
    junk = open_doc(client, client.root / "blob.bin", "\x00\x01\ufffd\ufffd" * 1000, "plaintext")
    assert await inline(client, junk, 0, 5) is not None  # an answer (items or none), not an error
    unknown = open_doc(client, client.root / "notes.zz", "alpha beta gamma\n", "zzlang")
    assert await inline(client, unknown, 0, 5) is not None
    empty = open_doc(client, client.root / "empty.py", "", "python")
    assert await inline(client, empty, 0, 0) is not None
    # still serving real completions afterwards
    uri = open_doc(client, client.root / "after.py", "def add(a, b):\n    \n", "python")
    result = await inline(client, uri, 1, 4)
    assert result is not None and result.items and "return" in result.items[0].insert_text


async def test_huge_file_answers(client: LanguageClient):
    text = "".join(f"value_{i} = {i}\n" for i in range(700_000))  # ~10 MB
    assert len(text) > 10_000_000
    uri = open_doc(client, client.root / "huge.py", text, "python")
    result = await inline(client, uri, 700_000, 0, explicit=False)  # the empty line at the end
    assert result is not None and result.items, str(await status(client))
    assert result.items[0].insert_text.startswith("value_"), result.items[0].insert_text  # the file's pattern, from its end
    assert (await status(client))["state"] == "ready"


async def test_incremental_edit_then_complete(client: LanguageClient):
    uri = open_doc(client, client.root / "edit.py", "def sub(a, b):\n    \n", "python")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(0, 4), types.Position(0, 7)), text="add"
                )
            ],
        )
    )
    result = await inline(client, uri, 1, 4)
    assert result is not None and result.items
    assert _normalise(result.items[0].insert_text).startswith("return a + b"), result.items[0].insert_text


async def test_an_automatic_request_is_answered_when_the_suggestion_is_ready(client: LanguageClient):
    """Default settings, a cold location: the automatic request is not answered empty at a
    short deadline while the prompt is evaluated; it waits for the model's suggestion."""
    uri = open_doc(client, client.root / "auto.py", "def total(xs):\n    \n", "python")
    result = await inline(client, uri, 1, 4, explicit=False)
    assert result is not None and result.items, str(await status(client))
    assert "return" in result.items[0].insert_text or "sum" in result.items[0].insert_text, result.items[0].insert_text
