"""The workspace index end to end: progress, status, and retrieved snippets in the prompt."""

from __future__ import annotations

import asyncio
import os

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from .conftest import SERVER, inline, open_doc, wait_ready

pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="module")]

ENV = {**os.environ, "SLM_LSP_DISABLE_CACHE": "1"}
ENV.pop("SLM_LSP_BACKEND", None)

CHECKSUM = '''"""Checksums for the wire protocol."""


def fletcher16_checksum(payload: bytes, modulus: int = 255) -> int:
    """Fletcher-16 checksum of a packet payload."""
    low = high = 0
    for byte in payload:
        low = (low + byte) % modulus
        high = (high + low) % modulus
    return (high << 8) | low
'''

PACKET = '''"""Packets on the wire."""

from proto import checksum


def is_valid(payload: bytes, expected: int) -> bool:
    return checksum.
'''


FRAME = '''"""Frames: a payload and its checksum."""

from proto.checksum import fletcher16_checksum


def seal(payload: bytes) -> bytes:
    return bytes([fletcher16_checksum(payload) & 0xFF]) + payload
'''

STREAM = '''"""Streams of packets."""

import struct
from proto.


def frame(payload: bytes) -> bytes:
    return struct.pack(">H", fletcher16_checksum(payload)) + payload
'''


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=ENV), scope="module")
async def client(lsp_client: LanguageClient, tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    (root / "proto").mkdir()
    (root / "proto" / "__init__.py").write_text("")
    (root / "proto" / "checksum.py").write_text(CHECKSUM)
    (root / "proto" / "packet.py").write_text(PACKET)
    (root / "proto" / "frame.py").write_text(FRAME)
    (root / ".env").write_text("API_TOKEN=do-not-read\n")
    lsp_client.root = root
    lsp_client.stats = []
    lsp_client.progress_values = []

    @lsp_client.feature("slm/completionStats")
    def on_stats(params):
        lsp_client.stats.append(params)

    params = types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        root_uri=root.as_uri(),
        initialization_options={"stats": True},
    )
    await lsp_client.initialize_session(params)
    status = await wait_ready(lsp_client)
    assert status["state"] == "ready", status
    yield
    await lsp_client.shutdown_session()


async def _index_ready(client: LanguageClient, timeout: float = 60) -> dict:
    end = asyncio.get_running_loop().time() + timeout
    while True:
        status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="slm.status"))
        if status["index"].get("ready") or asyncio.get_running_loop().time() > end:
            return status
        await asyncio.sleep(0.2)


async def test_index_reports_progress_and_status(client: LanguageClient):
    status = await _index_ready(client)
    assert status["index"]["ready"] and status["index"]["total"] == 4, status  # .env never counted
    assert client.progress_reports, "no $/progress notifications"
    kinds = [getattr(v, "kind", None) or v.get("kind") for values in client.progress_reports.values() for v in values]
    assert kinds[0] == "begin" and kinds[-1] == "end"


async def test_definition_from_another_file_enters_the_prompt(client: LanguageClient):
    await _index_ready(client)
    uri = open_doc(client, client.root / "proto" / "packet.py", PACKET, "python")
    result = await inline(client, uri, 6, len("    return checksum."))
    assert client.stats, "no slm/completionStats"
    assert client.stats[-1].contextChars > 0, client.stats[-1]
    assert result is not None and result.items
    assert result.items[0].insert_text.startswith("fletcher16_checksum("), result.items[0].insert_text


async def test_in_the_import_block_the_repository_shows_how_to_import_what_the_file_uses(client: LanguageClient):
    """proto/frame.py imports fletcher16_checksum; a new file uses it and is writing its imports:
    the index answers (autoimport), with the hint in the prompt too."""
    await _index_ready(client)
    uri = open_doc(client, client.root / "proto" / "stream.py", STREAM, "python")
    result = await inline(client, uri, 3, len("from proto."))
    assert client.stats[-1].contextChars > 0, client.stats[-1]
    assert result is not None and result.items
    assert result.items[0].insert_text == "checksum import fletcher16_checksum", result.items[0].insert_text
    assert client.stats[-1].source == "import", client.stats[-1]
