"""JSON-RPC checks on one body (slm_lsp.jsonrpc): what pygls gets, and the error replies owed."""

from __future__ import annotations

import pytest
from cattrs.errors import ClassValidationError
from lsprotocol import types
from lsprotocol.converters import get_converter

from slm_lsp.jsonrpc import ErrorReply, invalid_params, parse_body, request_id

BATCH = "Invalid request: batches are not part of LSP; send one message at a time"
BODIES = {
    "request": (b'{"jsonrpc": "2.0", "id": 1, "method": "m"}', 1, []),
    "notification": (b'{"jsonrpc": "2.0", "method": "m"}', 1, []),
    "response": (b'{"jsonrpc": "2.0", "id": 1, "result": null}', 1, []),
    "huge id": (b'{"jsonrpc": "2.0", "id": 123456789012345678901234567890, "method": "m"}', 1, []),
    "invalid UTF-8 in a string is replaced": (b'{"jsonrpc": "2.0", "method": "m", "params": "\xff\xfe"}', 1, []),
    "not JSON": (b"{this is not json", 0, [(None, -32700)]),
    "binary": (b"\xff\xfe\x00garbage", 0, [(None, -32700)]),
    "a broken request keeps its id": (b'{"jsonrpc": "2.0", "id": 7, "method": "m", "params": {"a": ', 0, [(7, -32700)]),
    "an id inside params is not the message's": (
        b'{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 5', 0, [(None, -32700)]),
    "a broken response is not answered by id": (b'{"jsonrpc": "2.0", "id": 5, "result": {', 0, [(None, -32700)]),
    "deep nesting": (b"[" * 100_000, 0, [(None, -32700)]),
    "empty": (b"", 0, [(None, -32700)]),
    "empty batch": (b"[]", 0, [(None, -32600)]),
    "batch of requests": (b'[{"jsonrpc": "2.0", "id": 1, "method": "m"}, {"jsonrpc": "2.0", "id": "b", "method": "m"}]',
                          0, [(1, -32600), ("b", -32600)]),  # fmt: skip
    "number": (b"42", 0, [(None, -32600)]),
    "string": (b'"hello"', 0, [(None, -32600)]),
    "null": (b"null", 0, [(None, -32600)]),
    "wrong jsonrpc version": (b'{"jsonrpc": "1.0", "id": 3, "method": "m"}', 0, [(3, -32600)]),
    "no jsonrpc": (b'{"id": 3, "method": "m"}', 0, [(3, -32600)]),
    "only jsonrpc": (b'{"jsonrpc": "2.0"}', 0, [(None, -32600)]),
    "null id": (b'{"jsonrpc": "2.0", "id": null, "method": "m"}', 0, [(None, -32600)]),
    "float id": (b'{"jsonrpc": "2.0", "id": 1.5, "method": "m"}', 0, [(None, -32600)]),
    "boolean id": (b'{"jsonrpc": "2.0", "id": true, "method": "m"}', 0, [(None, -32600)]),
    "method not a string": (b'{"jsonrpc": "2.0", "id": 4, "method": 12}', 0, [(4, -32600)]),
}


@pytest.mark.parametrize("data, messages, errors", list(BODIES.values()), ids=list(BODIES))
def test_parse_body(data: bytes, messages: int, errors: list[tuple]) -> None:
    found, replies = parse_body(data)
    assert len(found) == messages
    assert [(r.id, r.code) for r in replies] == errors
    assert all(isinstance(r, ErrorReply) and len(r.message) < 200 for r in replies)


def test_a_batch_says_why():
    assert parse_body(b"[]")[1][0].message == BATCH


@pytest.mark.parametrize(
    "head, expected",
    [
        (b'{"jsonrpc":"2.0","id":12,"method":"x","params":{"te', 12),
        (b'{"method":"x","params":{"id":3},"id":"abc"', "abc"),
        (b'  {"id": 9, "method": "x"', 9),
        (b'{"id": 9, "result": 1', None),  # a response
        (b'tail"}}', None),  # the end of another message
        (b'{"method":"x","id":null', None),
        (b"", None),
    ],
)
def test_request_id(head: bytes, expected) -> None:
    assert request_id(head) == expected


@pytest.mark.parametrize(
    "position, expected",
    [
        ("1:2", "invalid value for type, expected int @ $.position.line"),
        ({"line": -1, "character": 0}, "Position.line should be in range [0:2147483647], but was -1. @ $.position"),
        ({"line": 0}, "required field missing @ $.position.character"),
    ],
)
def test_invalid_params_says_what_and_where(position, expected) -> None:
    raw = {"textDocument": {"uri": "file:///a.py"}, "position": position}
    with pytest.raises(ClassValidationError) as caught:
        get_converter().structure(raw, types.TextDocumentPositionParams)
    message = invalid_params(caught.value)
    assert message.startswith(expected) and len(message) <= 300 and "Traceback" not in message
