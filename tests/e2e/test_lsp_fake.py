"""The server over LSP on the fake backend, fast: what otherwise only the real-model tests reach.

Each test starts the real server process (``SLM_LSP_BACKEND=fake``, its XDG
directories in ``tmp_path``) and talks LSP to it with pytest-lsp: incremental
changes with several ranges (astral characters included) become the right text;
reply ranges are in UTF-16; ``slm.toggle``; settings precedence between the
project file and the client; the session's states through ``slm.status``.
The fake answers ``return a + b`` after ``def f(a, b):`` (backend.py).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

from .conftest import barrier, inline, open_doc, server, wait_ready


def change(client: LanguageClient, uri: str, version: int, *edits: tuple[int, int, int, int, str]) -> None:
    """One didChange event holding ``edits`` (start line, start character, end line, end character,
    text; UTF-16 units), each applied to the text the one before it left."""
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(sl, sc), types.Position(el, ec)), text=text
                )
                for sl, sc, el, ec, text in edits
            ],
        )
    )


async def items(client: LanguageClient, uri: str, line: int, character: int, explicit: bool = True) -> list[str]:
    result = await inline(client, uri, line, character, explicit=explicit)
    assert result is not None, "no answer: the document or the position was not found"
    return [item.insert_text for item in result.items]


async def status(client: LanguageClient) -> dict:
    return await barrier(client)


# -- documents: change ranges to edits, replies in UTF-16 ------------------------------
async def test_several_ranges_in_one_change_with_astral_characters_edit_the_right_text(tmp_path: Path):
    async with server(tmp_path) as client:
        assert (await wait_ready(client, timeout=30))["state"] == "ready"
        uri = open_doc(client, client.root / "a.py", 'def f(a, b="😀😀"):\n    \n', "python")
        change(
            client, uri, 2,
            (0, 12, 0, 16, "🎉"),  # the two emoji (four UTF-16 units) become one
            (0, 15, 0, 15, ", c"),  # after `"🎉"`: 12 + 2 + 1 units
            (0, 6, 0, 7, "x"),  # a -> x
        )  # fmt: skip
        assert await items(client, uri, 1, 4) == ["return x + b + c"]  # def f(x, b="🎉", c):
        change(client, uri, 3, (0, 15, 0, 18, ""), (1, 4, 1, 4, "y = 1\n    "))  # drop ", c"; a line above
        assert await items(client, uri, 2, 4) == ["return x + b"]


async def test_reply_ranges_are_utf16_after_an_emoji_on_the_line(tmp_path: Path):
    async with server(tmp_path) as client:
        assert (await wait_ready(client, timeout=30))["state"] == "ready"
        line = '    s = "😀"; ret'  # 16 code points, 17 UTF-16 units
        uri = open_doc(client, client.root / "u.py", "def f(a, b):\n" + line + "\n", "python")
        result = await inline(client, uri, 1, 17)
        assert result is not None and result.items
        assert result.items[0].range == types.Range(types.Position(1, 17), types.Position(1, 17))
        listed = await client.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri), position=types.Position(1, 17),
                context=types.CompletionContext(trigger_kind=types.CompletionTriggerKind.Invoked),
            )
        )  # fmt: skip
        assert listed is not None and listed.items
        edit = listed.items[0].text_edit
        assert edit.range == types.Range(types.Position(1, 14), types.Position(1, 17))  # "ret", in UTF-16
        assert edit.new_text.startswith("ret")


# -- toggle and settings -----------------------------------------------------------------
async def test_toggle_turns_completion_off_and_on_for_the_workspace(tmp_path: Path):
    async with server(tmp_path) as client:
        assert (await wait_ready(client, timeout=30))["state"] == "ready"
        uri = open_doc(client, client.root / "t.py", "def f(a, b):\n    \n", "python")
        assert await items(client, uri, 1, 4) == ["return a + b"]
        toggle = types.ExecuteCommandParams(command="slm.toggle")
        assert await client.workspace_execute_command_async(toggle) == {"enabled": False}
        assert (await status(client))["state"] == "disabled"
        assert await items(client, uri, 1, 4) == []  # nothing while off, even when asked
        assert await client.workspace_execute_command_async(toggle) == {"enabled": True}
        assert (await status(client))["state"] == "ready"
        assert await items(client, uri, 1, 4) == ["return a + b"]


def project_file(tmp_path: Path, settings: dict) -> None:
    (tmp_path / "ws").mkdir(exist_ok=True)
    (tmp_path / "ws" / ".slm-lsp.json").write_text(json.dumps(settings))


async def test_the_client_setting_wins_over_the_project_file(tmp_path: Path):
    project_file(tmp_path, {"completion": {"enable": False}})
    async with server(tmp_path, {"completion": {"enable": True}}) as client:
        assert (await wait_ready(client, timeout=30))["state"] == "ready"
        uri = open_doc(client, client.root / "p.py", "def f(a, b):\n    \n", "python")
        assert await items(client, uri, 1, 4) == ["return a + b"]


async def test_without_a_client_setting_the_project_file_applies(tmp_path: Path):
    project_file(tmp_path, {"completion": {"enable": False}})
    async with server(tmp_path) as client:
        assert (await wait_ready(client, timeout=30))["state"] == "disabled"
        uri = open_doc(client, client.root / "p.py", "def f(a, b):\n    \n", "python")
        assert await items(client, uri, 1, 4) == []


async def test_in_comments_setting_completes_inside_comments_automatically(tmp_path: Path):
    text = "def f(a, b):\n    # add them\n"
    async with server(tmp_path) as client:
        assert (await wait_ready(client, timeout=30))["state"] == "ready"
        uri = open_doc(client, client.root / "c.py", text, "python")
        assert await items(client, uri, 1, 9, explicit=False) == []  # off by default
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"slm": {"completion": {"inComments": True}}})
        )
        assert await items(client, uri, 1, 9, explicit=False) != []


# -- the session's states ----------------------------------------------------------------
async def test_loading_until_initialized_then_ready(tmp_path: Path):
    async with server(tmp_path, initialized=False) as client:
        assert (await status(client))["state"] == "loading"  # the model loads after `initialized`
        uri = open_doc(client, client.root / "l.py", "def f(a, b):\n    \n", "python")
        assert await items(client, uri, 1, 4) == []  # answered, empty, while loading
        client.initialized(types.InitializedParams())
        ready = await wait_ready(client, timeout=30)
        assert ready["state"] == "ready" and ready["model"] == "fake" and ready["message"] == ""
        assert await items(client, uri, 1, 4) == ["return a + b"]


async def test_a_missing_model_file_is_an_error_told_once_and_requests_answered_empty(tmp_path: Path):
    missing = tmp_path / "no-such-model.gguf"
    async with server(tmp_path, {"model": {"path": str(missing)}}, fake=False) as client:
        error = await wait_ready(client, timeout=30)
        assert error["state"] == "error" and str(missing) in error["message"] and "model.path" in error["message"]
        uri = open_doc(client, client.root / "e.py", "def f(a, b):\n    \n", "python")
        for _ in range(3):
            assert await items(client, uri, 1, 4) == []
        await barrier(client)
        shown = [m.message for m in client.messages if m.type == types.MessageType.Error]
        assert len(shown) == 1 and str(missing) in shown[0], shown  # one message, not one per request
        assert (await status(client))["state"] == "error"


async def test_disabled_in_the_client_settings_then_enabled_by_a_change(tmp_path: Path):
    async with server(tmp_path, {"completion": {"enable": False}}) as client:
        assert (await wait_ready(client, timeout=30))["state"] == "disabled"
        uri = open_doc(client, client.root / "d.py", "def f(a, b):\n    \n", "python")
        assert await items(client, uri, 1, 4) == []
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"slm": {"completion": {"enable": True}}})
        )
        assert (await status(client))["state"] == "ready"
        assert await items(client, uri, 1, 4) == ["return a + b"]


async def test_status_notifications_follow_the_state(tmp_path: Path):
    async with server(tmp_path, initialized=False) as client:
        seen: list[str] = []
        ready = asyncio.Event()

        @client.feature("slm/status")
        def on_status(params) -> None:
            state = params["state"] if isinstance(params, dict) else params.state
            seen.append(state)
            if state == "ready":
                ready.set()

        client.initialized(types.InitializedParams())
        await asyncio.wait_for(ready.wait(), 30)
        assert seen[-1] == "ready" and "error" not in seen
