"""JSON-RPC checks on one message body, before pygls sees it: what is owed an error reply.

``parse_body`` turns a body into JSON-RPC messages (dicts) and the error replies
owed for it: -32700 for a body that is not JSON (with the request's id when its
start shows one), -32600 for JSON that is no JSON-RPC message (batches included:
LSP has none; an id that is neither an integer nor a string). ``request_id``
finds the id of a broken request; ``invalid_params`` says in one line what is
wrong with params that did not structure. Pure functions; no pygls.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import cattrs

log = logging.getLogger(__name__)

PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS = -32700, -32600, -32602
HEAD_BYTES = 512  # how much of a broken body is searched for its id
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]]|-?\d+|[^"{}\[\]\s,:]+|[,:]|\s+')


@dataclass(frozen=True)
class ErrorReply:
    """A JSON-RPC error response owed for a body: ``id`` None is JSON's null."""

    id: int | str | None
    code: int
    message: str


def parse_body(body: bytes) -> tuple[list[dict[str, Any]], list[ErrorReply]]:
    """The JSON-RPC messages in a body, and the error replies owed for what is not one."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        log.warning("a message body is not valid UTF-8; invalid bytes replaced with U+FFFD")
        text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except Exception as exc:  # ValueError, RecursionError on deep nesting
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        return [], [ErrorReply(request_id(body[:HEAD_BYTES]), PARSE_ERROR, f"Parse error: {reason}")]
    if isinstance(data, list):
        ids = [m["id"] for m in data if isinstance(m, dict) and "method" in m and _valid_id(m.get("id"))]
        why = "Invalid request: batches are not part of LSP; send one message at a time"
        return [], [ErrorReply(i, INVALID_REQUEST, why) for i in ids] or [ErrorReply(None, INVALID_REQUEST, why)]
    if not isinstance(data, dict):
        return [], [ErrorReply(None, INVALID_REQUEST, f"Invalid request: a JSON {type(data).__name__}, not an object")]
    problem = _problem(data)
    if problem is not None:
        ident = data.get("id") if "method" in data and _valid_id(data.get("id")) else None
        return [], [ErrorReply(ident, INVALID_REQUEST, f"Invalid request: {problem}")]
    return [data], []


def _problem(data: dict[str, Any]) -> str | None:
    if data.get("jsonrpc") != "2.0":
        return 'jsonrpc must be "2.0"'
    if "method" in data:
        if not isinstance(data["method"], str):
            return "method must be a string"
        if "id" in data and not _valid_id(data["id"]):
            return "id must be an integer or a string"
        return None
    if "id" not in data or not ("result" in data or "error" in data):
        return "neither a request, a notification nor a response"
    return None


def _valid_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)


def request_id(head: bytes) -> int | str | None:
    """The id of a broken request from the start of its body (top level only), else None.

    Only an object with a top-level ``method`` counts: an ``id`` inside params
    (``$/cancelRequest``) or in a response must never be answered.
    """
    if not head.lstrip().startswith(b"{"):
        return None
    depth, key, found, method = 0, None, None, False
    tokens = [t for t in _TOKEN.findall(head) if not t.isspace()]
    for i, token in enumerate(tokens):
        if token in (b"{", b"["):
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1
        elif depth == 1 and i + 1 < len(tokens) and tokens[i + 1] == b":" and token.startswith(b'"'):
            key = token
        elif depth == 1 and tokens[i - 1] == b":" and key is not None:
            if key == b'"method"':
                method = True
            elif key == b'"id"' and found is None:
                found = _id_value(token)
            key = None
    return found if method else None


def _id_value(token: bytes) -> int | str | None:
    try:
        value = json.loads(token)
    except ValueError:
        return None
    return value if _valid_id(value) else None




def invalid_params(exc: BaseException) -> str:
    """What is wrong with a message's params, in one short line (cattrs' paths)."""

    def describe(error: BaseException, kind: Any) -> str:
        if isinstance(error, ValueError) and str(error):
            return str(error).splitlines()[0]
        return cattrs.v.format_exception(error, kind)

    try:
        found = cattrs.transform_error(exc, "$", describe)
    except Exception:
        found = [str(exc) or type(exc).__name__]
    return "; ".join(found[:3])[:300]
