"""End-to-end fixtures: the real server in a subprocess, driven by pytest-lsp."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import AsyncIterator

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

SERVER = [sys.executable, "-m", "slm_lsp"]


async def wait_ready(client: LanguageClient, timeout: float = 180.0) -> dict:
    """Poll slm.status until the model has loaded (or failed)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        status = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="slm.status", arguments=[])
        )
        if status["state"] in ("ready", "error", "disabled") or loop.time() > end:
            return status
        await asyncio.sleep(0.2)


def open_doc(client: LanguageClient, path: Path, text: str, language_id: str, version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, language_id, version, text))
    )
    return uri


async def inline(client: LanguageClient, uri: str, line: int, character: int, explicit: bool = True):
    kind = types.InlineCompletionTriggerKind.Invoked if explicit else types.InlineCompletionTriggerKind.Automatic
    return await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri),
            position=types.Position(line, character),
            context=types.InlineCompletionContext(trigger_kind=kind),
        )
    )


def send_inline(client: LanguageClient, uri: str, line: int, character: int, explicit: bool = False) -> asyncio.Future:
    """An inline completion request sent now (``inline`` sends when first awaited); its answer's future."""
    kind = types.InlineCompletionTriggerKind.Invoked if explicit else types.InlineCompletionTriggerKind.Automatic
    params = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri),
        position=types.Position(line, character),
        context=types.InlineCompletionContext(trigger_kind=kind),
    )
    return asyncio.wrap_future(client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, params))


async def barrier(client: LanguageClient) -> dict:
    """A status round trip: the server has handled every message sent before it (it
    reads in order, and a request's handler has started before the next is read)."""
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(command="slm.status"))


@contextlib.asynccontextmanager
async def server(
    tmp_path: Path, options: dict | None = None, fake: bool = True, initialized: bool = True, **env: str
) -> AsyncIterator[LanguageClient]:
    """A server (on the fake backend unless ``fake`` is False) whose per-user directories live in
    ``tmp_path``, its workspace ``tmp_path / "ws"``. Without ``initialized`` the client has sent
    ``initialize`` only (the model is not loading yet)."""
    homes = {name: str(tmp_path / name.lower()) for name in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME")}
    full_env = {**os.environ, "HOME": str(tmp_path), **homes, **env}
    for name in ("SLM_LSP_DISABLE_CACHE", "SLM_LSP_CACHE_DIR", "SLM_LSP_DATA_DIR", "SLM_LSP_FAKE_MS_PER_TOKEN",
                 "SLM_LSP_BACKEND", "SLM_LSP_MODEL"):  # fmt: skip
        if name not in env:
            full_env.pop(name, None)
    if fake:
        full_env["SLM_LSP_BACKEND"] = "fake"
    client = await ClientServerConfig(server_command=SERVER, server_env=full_env).start()
    root = tmp_path / "ws"
    root.mkdir(exist_ok=True)  # a test may have filled it first
    client.root = root
    params = types.InitializeParams(
        capabilities=client_capabilities("neovim"), root_uri=root.as_uri(),
        initialization_options={"index": {"enable": False}, **(options or {})},
    )  # fmt: skip
    try:
        if initialized:
            await client.initialize_session(params)
        else:
            client.capabilities = params.capabilities  # what initialize_session records, without `initialized`
            await client.initialize_async(params)
        yield client
        await client.shutdown_session()
    except BaseException:
        if client._server is not None and client._server.returncode is None:
            client._server.kill()  # a failed test: stop() would wait for an exit that never comes
        raise
    finally:
        await client.stop()
