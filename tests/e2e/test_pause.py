"""Answer when ready, over LSP: the real server on the fake backend, slowed to a model's pace.

An automatic request stays open until the suggestion is complete; a request that a
newer one or an edit of its document supersedes is answered empty at once, so an
answer never lands at an old position.
"""

from __future__ import annotations

import asyncio
import os

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from .conftest import SERVER, barrier, inline, open_doc, send_inline, wait_ready

pytestmark = pytest.mark.asyncio(loop_scope="module")

# 60 ms per 4 characters: "return a + b" takes ~180 ms, far past the old 200 ms
# deadline once the request is queued behind another
ENV = {**os.environ, "SLM_LSP_BACKEND": "fake", "SLM_LSP_FAKE_MS_PER_TOKEN": "60", "SLM_LSP_DISABLE_CACHE": "1"}


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=ENV), scope="module")
async def client(lsp_client: LanguageClient, tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    params = types.InitializeParams(capabilities=client_capabilities("neovim"), root_uri=root.as_uri())
    await lsp_client.initialize_session(params)
    lsp_client.root = root
    assert (await wait_ready(lsp_client))["state"] == "ready"
    yield
    await lsp_client.shutdown_session()


def change(client: LanguageClient, uri: str, version: int, line: int, start: int, end: int, text: str) -> None:
    rng = types.Range(types.Position(line, start), types.Position(line, end))
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=rng, text=text)],
        )
    )


async def test_automatic_request_waits_for_the_whole_suggestion(client: LanguageClient):
    uri = open_doc(client, client.root / "a.py", "def add(a, b):\n    \n", "python")
    result = await inline(client, uri, 1, 4, explicit=False)
    assert [i.insert_text for i in result.items] == ["return a + b"]


async def test_an_edit_answers_the_pending_request_empty_at_once(client: LanguageClient):
    uri = open_doc(client, client.root / "b.py", "def mul(x, y):\n    \n", "python")
    pending = send_inline(client, uri, 1, 4)
    await barrier(client)  # the request is with the model now
    change(client, uri, 2, 1, 4, 4, "r")
    stale = await asyncio.wait_for(pending, 1.0)
    assert list(stale.items) == []  # never the answer for the old position
    fresh = await inline(client, uri, 1, 5, explicit=False)
    assert fresh.items and "x + y" in fresh.items[0].insert_text  # the new position is answered


async def test_a_newer_request_answers_the_older_one_empty(client: LanguageClient):
    uri = open_doc(client, client.root / "c.py", "def sub(p, q):\n    \n", "python")
    older = send_inline(client, uri, 1, 4)
    await barrier(client)  # the older request is with the model
    newer = send_inline(client, uri, 1, 4)
    assert list((await asyncio.wait_for(older, 1.0)).items) == []
    assert [i.insert_text for i in (await newer).items] == ["return p + q"]
