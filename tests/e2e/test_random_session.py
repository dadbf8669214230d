"""Property: any sequence of edits, positions and cancellations leaves the server answering, in sync.

Hypothesis drives one real server process (the fake backend) with random
incremental edits (UTF-16 ranges over text with accents, astral characters and
newlines), full replacements, requests at any position (out of range and
negative included), cancellations, saves and reopenings. Properties:

- every request gets exactly one response, and none is an internal error;
- a position the spec forbids (negative) is answered -32602, any other with a result;
- afterwards the server's copy of the document agrees with the client's: a
  function header appended at the end is completed as the fake model completes
  it, at the position the client computes.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.e2e.rawclient import RawClient

PIECES = st.sampled_from(list("ab_ (){}:=\n\t") + ["é", "😀", "\r\n", "    ", "def ", "x"])


def snippets(max_size: int) -> st.SearchStrategy[str]:
    return st.lists(PIECES, max_size=max_size).map("".join)

INVALID_PARAMS = -32602
REQUEST_CANCELLED = -32800
_uris = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("random-session")
    client = RawClient(home)
    client.initialize(home)
    assert client.wait_ready()["state"] == "ready"
    yield client, home
    assert client.close() == 0


def utf16_position(text: str, offset: int) -> dict[str, int]:
    """The LSP position (UTF-16 code units) of a code-point offset."""
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    units = sum(2 if ord(c) > 0xFFFF else 1 for c in text[start:offset])
    return {"line": line, "character": units}


edits = st.tuples(st.just("edit"), st.floats(0, 1), st.floats(0, 1), snippets(6))
fulls = st.tuples(st.just("full"), snippets(40))
requests = st.tuples(
    st.just("request"), st.integers(-2, 12), st.integers(-2, 40), st.booleans(), st.booleans()
)
others = st.tuples(st.sampled_from(["save", "reopen"]))
operations = st.lists(st.one_of(edits, edits, fulls, requests, requests, others), max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=snippets(30), ops=operations)
@example(start="def a(", ops=[])  # found in CI: an unclosed signature above the probe
def test_random_edits_positions_and_cancellations(server, start: str, ops: list[tuple]) -> None:
    client, home = server
    uri = (home / f"doc{next(_uris)}.py").as_uri()
    text, version = start, 1
    client.open(uri, text)
    sent: list[tuple[object, bool]] = []  # request id, whether its position is negative
    for op in ops:
        if op[0] == "edit":
            a, b = sorted((round(op[1] * len(text)), round(op[2] * len(text))))
            a, b = _boundary(text, a), _boundary(text, b)
            rng = {"start": utf16_position(text, a), "end": utf16_position(text, b)}
            version += 1
            client.notify("textDocument/didChange", {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": rng, "text": op[3]}],
            })  # fmt: skip
            text = text[:a] + op[3] + text[b:]
        elif op[0] == "full":
            version += 1
            client.notify("textDocument/didChange", {
                "textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": op[1]}],
            })  # fmt: skip
            text = op[1]
        elif op[0] == "request":
            _, line, character, explicit, cancel = op
            msg_id = client.inline_async(uri, line, character, explicit)
            if cancel:
                client.notify("$/cancelRequest", {"id": msg_id})
            sent.append((msg_id, line < 0 or character < 0))
        elif op[0] == "save":
            client.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
        else:
            client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
            version = 1
            client.open(uri, text)
    for msg_id, negative in sent:
        reply = client.response(msg_id, timeout=5)
        assert len(client.responses[msg_id]) == 1, f"request {msg_id} answered twice"
        if "error" in reply:
            allowed = (INVALID_PARAMS, REQUEST_CANCELLED) if negative else (REQUEST_CANCELLED,)
            assert reply["error"]["code"] in allowed, reply
        else:
            assert not negative, f"a negative position was answered {reply}"
    # the server's copy agrees with ours: complete a header appended at the end
    probe = "\ndef probe(x, y):\n    "
    end = len(text)
    version += 1
    client.notify("textDocument/didChange", {
        "textDocument": {"uri": uri, "version": version},
        "contentChanges": [{"range": {"start": utf16_position(text, end), "end": utf16_position(text, end)}, "text": probe}],
    })  # fmt: skip
    text += probe
    where = utf16_position(text, len(text))
    reply = client.inline(uri, where["line"], where["character"])
    items = reply["result"]["items"]
    assert items and items[0]["insertText"].strip().startswith("return x + y"), (text, reply)
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


def _boundary(text: str, offset: int) -> int:
    """An offset that does not split a CRLF (the client's own edits never do)."""
    if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n":
        return offset - 1
    return offset


def test_the_final_check_fails_when_the_copies_disagree(server) -> None:
    """The sync check can fail: when the client's text has an edit the server never got, the
    header appended at the end is not where the client thinks, and nothing is completed there."""
    client, home = server
    uri = (home / f"doc{next(_uris)}.py").as_uri()
    client.open(uri, "x = 1\n")
    text = "x = 1\ny = 2\n"  # an edit the server never heard of
    client.notify("textDocument/didChange", {
        "textDocument": {"uri": uri, "version": 2},
        "contentChanges": [{"range": {"start": utf16_position(text, 12), "end": utf16_position(text, 12)},
                            "text": "def probe(x, y):\n    "}],
    })  # fmt: skip
    reply = client.inline(uri, 3, 4)
    assert not (reply.get("result") or {}).get("items"), reply
