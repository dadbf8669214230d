"""End-to-end fixtures: the real server in a subprocess, driven by pytest-lsp."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

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
