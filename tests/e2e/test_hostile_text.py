"""Text a client should never send, over raw stdio to the real server (fake backend):
lone surrogates in a document, positions in the middle of a surrogate pair.

The server cleans its own copy of the text (U+FFFD for a lone surrogate, same
length, so positions stay right) and snaps a position inside a pair to the pair's
start, in the reply range too. Each case ends with the server answering a normal
request.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.rawclient import RawClient

DEF = "def add(a, b):\n"


@pytest.fixture
def session(tmp_path: Path):
    env = {
        **os.environ, "SLM_LSP_BACKEND": "fake", "SLM_LSP_DISABLE_CACHE": "1",
        "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }  # fmt: skip
    server = RawClient(env=env, cwd=tmp_path, stderr=tmp_path / "stderr.log")
    server.initialize()
    server.wait_ready(timeout=60)
    yield server
    assert server.status()["state"] == "ready"  # still serving normally
    assert not [n for n in server.notifications if n.get("method") == "window/showMessage"]
    assert server.close() == 0


def _item(reply: dict) -> dict:
    assert "error" not in reply, reply["error"]
    items = reply["result"]["items"]
    assert len(items) == 1, reply
    return items[0]


def test_lone_surrogates_in_an_opened_document(session: RawClient, tmp_path: Path):
    uri = (tmp_path / "lone.py").as_uri()
    session.open(uri, DEF + "    s = '\udc80\ud800'\n    \udc80x = 1\n    \n")
    at_end = _item(session.inline(uri, 3, 4))
    assert at_end["insertText"] == "return a + b"
    assert at_end["range"]["start"] == {"line": 3, "character": 4}
    after_lone = _item(session.inline(uri, 2, 5))  # just after the lone surrogate: one UTF-16 unit each
    assert after_lone["range"] == {"start": {"line": 2, "character": 5}, "end": {"line": 2, "character": 5}}
    reply = session.completion(uri, 3, 4)
    assert "error" not in reply and reply["result"]["items"][0]["textEdit"]["newText"] == "return a + b"


def test_lone_surrogates_typed_into_a_document(session: RawClient, tmp_path: Path):
    uri = (tmp_path / "typed.py").as_uri()
    session.open(uri, DEF + "    \n")
    edit = {"range": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 4}}, "text": "x = '\udfff'\n    "}
    session.change(uri, 2, [edit])
    item = _item(session.inline(uri, 2, 4))
    assert item["insertText"] == "return a + b"
    assert item["range"]["start"] == {"line": 2, "character": 4}


@pytest.mark.parametrize(("character", "expected"), [(4, 4), (5, 4), (6, 6)])
def test_a_position_inside_a_surrogate_pair_answers_at_its_start(
    session: RawClient, tmp_path: Path, character: int, expected: int
):
    uri = (tmp_path / "pair.py").as_uri()
    session.open(uri, DEF + "    \U0001f600\n")  # the emoji is UTF-16 units 4 and 5 of line 1
    item = _item(session.inline(uri, 1, character))
    assert item["range"] == {"start": {"line": 1, "character": expected}, "end": {"line": 1, "character": expected}}
    edit = session.completion(uri, 1, character)["result"]["items"][0]["textEdit"]
    assert edit["range"]["end"] == {"line": 1, "character": expected}
