"""The LSP server: thin handlers over the engine. The only module importing pygls.

Over 300 lines because every LSP method the server answers is here, each a few
lines, with the protocol's own rules (one answer per request, errors in one line);
what they call lives in session, documents and engine.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from functools import partial
from pathlib import Path
from typing import Any, Callable

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.uris import to_fs_path

from slm_lsp import __version__, jsonrpc, positions, transport
from slm_lsp.config import client_enable, load
from slm_lsp.documents import Change, Documents
from slm_lsp.engine import Completion
from slm_lsp.session import BackendFactory, Session, default_backend_factory

log = logging.getLogger(__name__)

MAX_DOCUMENT_CHARS = 20_000_000  # beyond this a document is not completed at all


class SlmProtocol(LanguageServerProtocol):
    """pygls' protocol behind our transport: every request gets exactly one answer.

    Bodies come from ``transport`` (not pygls' reader) through ``jsonrpc``'s checks; a
    request whose params do not structure is answered -32602, one before ``initialize``
    -32002, one after ``shutdown`` -32600; a handler's exception -32603 in one line.
    ``exit`` sets the exit code and the read loop stops. Runs on the event loop's thread.
    """

    exit_code: int | None = None  # set by exit: 0 after shutdown, else 1

    def receive(self, body: bytes) -> None:
        messages, errors = jsonrpc.parse_body(body)
        for error in errors:
            self._send_response(error.id, error=types.ResponseError(error.code, error.message))
        if errors:  # logged there, and the user hears once
            self._server._report_server_error(ValueError(errors[0].message), "message")  # type: ignore[arg-type]
        for data in messages:
            self._dispatch(data)

    def framing_error(self, error: transport.FramingError) -> None:
        """Bytes that were no message: a request among them (its id found) is answered -32700."""
        if (msg_id := jsonrpc.request_id(error.head)) is not None:
            self._send_response(msg_id, error=types.ResponseError(jsonrpc.PARSE_ERROR, f"Parse error: {error.message}"))
        self._server._report_server_error(ValueError(error.message), "framing")  # type: ignore[arg-type]

    def _dispatch(self, data: dict[str, Any]) -> None:
        request = "id" in data and "method" in data
        try:
            message = self.structure_message(data)
        except JsonRpcException as exc:  # pygls logged the traceback
            if request:
                reason = f"Invalid params for {data['method']}: {jsonrpc.invalid_params(exc.__cause__ or exc)}"
                self._send_response(data["id"], error=types.ResponseError(jsonrpc.INVALID_PARAMS, reason))
            return
        if request and not hasattr(message, "id"):
            reason = f"Invalid request: {data['method']} is a notification; it takes no id"
            self._send_response(data["id"], error=types.ResponseError(jsonrpc.INVALID_REQUEST, reason))
            return
        self.handle_message(message)

    def handle_message(self, message: Any) -> None:
        method = getattr(message, "method", None)
        if self._workspace is None and method not in (None, types.INITIALIZE, types.EXIT):
            log.warning("%s before initialize: %s", method, "answered -32002" if hasattr(message, "id") else "dropped")
            if hasattr(message, "id"):
                error = types.ResponseError(-32002, f"Server not initialized: {method} before initialize")
                self._send_response(message.id, error=error)
            return
        if self._shutdown and method is not None and method != types.EXIT and hasattr(message, "id"):
            reason = f"Invalid request: {method} after shutdown; only exit is accepted"
            self._send_response(message.id, error=types.ResponseError(jsonrpc.INVALID_REQUEST, reason))
            return
        super().handle_message(message)

    def _send_response(self, msg_id: Any, result: Any = None, error: types.ResponseError | None = None) -> None:
        if error is not None and error.data is not None:  # a handler's traceback: in the log, not the reply
            error = types.ResponseError(error.code, (error.message or "Internal error").splitlines()[0][:200])
        if msg_id is None and error is not None:  # lsprotocol would drop the id; JSON-RPC wants null
            self._send_data({"jsonrpc": "2.0", "id": None, "error": {"code": error.code, "message": error.message}})
            return
        super()._send_response(msg_id, result, error)

    def _execute_handler(self, msg_id: Any, handler: Any, callback: Any, args: Any = None, kwargs: Any = None) -> None:
        """pygls files the future of a notification's handler (and of each step of its
        built-in didOpen/didChange/didClose) under a fresh id in ``_request_futures`` and
        never takes it out: one future per keystroke, kept for good (the soak's memory
        grew 40 % in 10,000 requests). Only a request's entry is removed by pygls."""
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        answers_a_request = isinstance(callback, partial) and callback.func == self._send_handler_result
        if not answers_a_request and (future := self._request_futures.get(msg_id)) is not None:
            future.add_done_callback(lambda _done: self._request_futures.pop(msg_id, None))

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> None:
        self.exit_code = 0 if self._shutdown else 1

    def stopped(self) -> bool:
        return self.exit_code is not None


class SlmServer(LanguageServer):
    """Owns the session (config, model, cache, index) and the open documents. Its handlers
    run on the event loop's thread; ``show_error``, ``notify_status`` and ``progress`` may
    be called from any thread (they hand their message to the loop)."""

    def __init__(self, backend_factory: BackendFactory) -> None:
        sync_kind = types.TextDocumentSyncKind.Incremental
        super().__init__("slm-lsp", __version__, text_document_sync_kind=sync_kind, protocol_cls=SlmProtocol)
        self.session = Session(
            backend_factory, notify=self.notify_status, show=self.show_error, progress=self.progress,
            on_loop=self._call_soon,
        )  # fmt: skip
        self.documents = Documents(self.relative)  # what our code reads; pygls keeps its own copy for itself
        self.root: Path | None = None
        self.client_settings: dict[str, Any] = {}  # the client's layer as last sent (initialize, didChangeConfiguration)
        self._shown: set[str] = set()
        self._lock = threading.Lock()

    # -- out-of-band messages (called from any thread) ------------------
    def show_error(self, message: str) -> None:
        """One window/showMessage per distinct problem (rate-limited by identity)."""
        with self._lock:
            if message in self._shown:
                return
            self._shown.add(message)
        self._call_soon(lambda: self.window_show_message(types.ShowMessageParams(types.MessageType.Error, message)))

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Malformed messages and handler errors: logged; the user hears once, not per message."""
        log.error("server error (%s): %s", getattr(source, "__name__", source), error)
        self.show_error("slm-lsp received a message it could not handle (see its log); it keeps serving.")

    def notify_status(self, status: dict[str, Any]) -> None:
        self._call_soon(lambda: self.protocol.notify("slm/status", status))

    def progress(self, kind: str, done: int, total: int, path: str) -> None:
        """Indexing progress as LSP work-done progress (when the client supports it)."""
        token = "slm-lsp/index"

        def send() -> None:
            caps = self.client_capabilities.window
            if not (caps and caps.work_done_progress):
                return
            progress = self.work_done_progress
            if kind == "begin":
                progress.create(token)
                progress.begin(token, types.WorkDoneProgressBegin(title="slm-lsp: indexing", percentage=0))
            elif kind == "report" and token in progress.tokens:
                pct = int(100 * done / total) if total else 0
                progress.report(token, types.WorkDoneProgressReport(message=f"{done}/{total} {path}", percentage=pct))
            elif kind == "end" and token in progress.tokens:
                progress.end(token, types.WorkDoneProgressEnd(message=f"{done} files"))
                progress.tokens.pop(token, None)

        self._call_soon(send)

    def _call_soon(self, fn: Callable[[], None]) -> None:
        loop = getattr(self.protocol, "_loop", None) or getattr(self, "loop", None)
        try:
            if loop is not None and loop.is_running():
                loop.call_soon_threadsafe(fn)
            else:
                fn()
        except Exception:  # the transport may be gone during shutdown
            log.debug("could not send a message to the client", exc_info=True)

    # -- documents -------------------------------------------------------
    def relative(self, uri: str) -> str:
        try:
            path = Path(to_fs_path(uri) or uri)
        except Exception:
            return uri.rsplit("/", 1)[-1]
        if self.root is not None:
            try:
                return path.resolve().relative_to(self.root).as_posix()
            except ValueError:
                pass
        return path.name


def _change(event: types.TextDocumentContentChangeEvent) -> Change:
    """A content change in plain terms (the range stays in UTF-16 units)."""
    if isinstance(event, types.TextDocumentContentChangePartial):
        start, end = event.range.start, event.range.end
        return Change(event.text, (start.line, start.character), (end.line, end.character))
    return Change(event.text)


def create_server(backend_factory: BackendFactory = default_backend_factory) -> SlmServer:
    server = SlmServer(backend_factory)

    @server.feature(types.INITIALIZE)
    def initialize(ls: SlmServer, params: types.InitializeParams) -> None:
        root = params.root_uri or (params.workspace_folders[0].uri if params.workspace_folders else None)
        ls.root = Path(to_fs_path(root)).resolve() if root and to_fs_path(root) else None
        options = params.initialization_options if isinstance(params.initialization_options, dict) else {}
        ls.client_settings = options
        config, problems = load(ls.root, options)
        ls.session.configure(config, ls.root, problems)

    @server.feature(types.INITIALIZED)
    def initialized(ls: SlmServer, params: types.InitializedParams) -> None:
        ls.session.start()

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: SlmServer, *args) -> None:
        ls.session.close()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SlmServer, params: types.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        ls.session.opened(ls.documents.open(item.uri, item.text, item.language_id, item.version))

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SlmServer, params: types.DidChangeTextDocumentParams) -> None:
        uri, version = params.text_document.uri, params.text_document.version
        cursor = ls.documents.change(uri, version, [_change(event) for event in params.content_changes])
        ls.session.edited(ls.documents.get(uri), cursor)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: SlmServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.session.saved(ls.documents.get(params.text_document.uri))

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SlmServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.documents.close(params.text_document.uri)
        ls.session.closed(params.text_document.uri)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls: SlmServer, params: types.DidChangeWatchedFilesParams) -> None:
        ls.session.files_changed([(to_fs_path(c.uri), c.type == types.FileChangeType.Deleted) for c in params.changes])

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: SlmServer, params: types.DidChangeConfigurationParams) -> None:
        settings = params.settings.get("slm", params.settings) if isinstance(params.settings, dict) else {}
        settings = settings if isinstance(settings, dict) else {}
        if client_enable(settings) not in (None, client_enable(ls.client_settings)):
            ls.session.clear_toggle()  # the user changed the setting itself: the newest word on enabling
        ls.client_settings = settings
        config, problems = load(ls.root, settings)
        ls.session.reconfigure(config, problems)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: SlmServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        explicit = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        found = await _complete(ls, params.text_document.uri, params.position, explicit)
        if found is None:
            return None
        completion, pos = found
        if not completion.text:
            return types.InlineCompletionList(items=[])
        item = types.InlineCompletionItem(insert_text=completion.text, range=types.Range(pos, pos))
        return types.InlineCompletionList(items=[item])

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "("]))
    async def completion(ls: SlmServer, params: types.CompletionParams) -> types.CompletionList | None:
        explicit = params.context is not None and params.context.trigger_kind == types.CompletionTriggerKind.Invoked
        if not explicit and _has_inline_completion(ls):
            return types.CompletionList(is_incomplete=True, items=[])  # ghost text already shows it
        found = await _complete(ls, params.text_document.uri, params.position, explicit)
        if found is None or not found[0].text:
            return types.CompletionList(is_incomplete=True, items=[])
        return types.CompletionList(is_incomplete=True, items=[_completion_item(ls, params, found[0].text)])

    @server.command("slm.toggle")
    def toggle(ls: SlmServer, *args) -> dict[str, bool]:
        return {"enabled": ls.session.toggle()}

    @server.command("slm.status")
    def status(ls: SlmServer, *args) -> dict[str, Any]:
        return ls.session.status()

    return server


async def _complete(
    ls: SlmServer, uri: str, position: types.Position, explicit: bool
) -> tuple[Completion, types.Position] | None:
    """Shared path of both completion requests: find the document, convert once, ask the engine."""
    doc = ls.documents.get(uri)
    if doc is None or len(doc.text) > MAX_DOCUMENT_CHARS:
        return None
    cursor = positions.cursor_at(doc.text, position.line, position.character)
    if not cursor.in_range:
        return None
    engine = ls.session.engine
    completion = await engine.complete(doc, cursor.line, cursor.character, explicit=explicit)
    ls.session.record(completion)
    if ls.session.config.stats:
        ls.protocol.notify("slm/completionStats", _stats(uri, position, completion))
    return completion, types.Position(position.line, cursor.utf16_character)  # snapped out of a surrogate pair


def _stats(uri: str, position: types.Position, c: Completion) -> dict[str, Any]:
    return {
        "uri": uri, "line": position.line, "character": position.character, "text": c.text,
        "source": c.source, "reason": c.reason, "mode": c.mode, "latencyMs": c.latency_ms,
        "modelMs": c.model_ms, "promptTokens": c.prompt_tokens, "reusedTokens": c.reused_tokens,
        "contextChars": c.context_chars, "fallback": c.fallback,
    }  # fmt: skip


def _has_inline_completion(ls: SlmServer) -> bool:
    text_document = ls.client_capabilities.text_document
    return bool(text_document and text_document.inline_completion is not None)


def _completion_item(ls: SlmServer, params: types.CompletionParams, text: str) -> types.CompletionItem:
    """One item that also carries the word before the cursor, so clients' filtering keeps it."""
    doc = ls.documents.get(params.text_document.uri)
    cursor = positions.cursor_at(doc.text if doc else "", params.position.line, params.position.character)
    head = cursor.line_text[: cursor.character]
    word = head[len(head.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")) :]
    end = types.Position(params.position.line, cursor.utf16_character)  # snapped out of a surrogate pair
    start = types.Position(end.line, end.character - positions.codepoints_to_utf16(word, len(word)))
    new_text = word + text
    label = new_text.split("\n", 1)[0].strip() or new_text.strip()
    return types.CompletionItem(
        label=label[:80],
        kind=types.CompletionItemKind.Snippet,
        detail="slm-lsp",
        filter_text=new_text,
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(types.Range(start, end), new_text),
        sort_text="0",
    )


def run(tcp_port: int | None = None, backend_factory: BackendFactory = default_backend_factory) -> int:
    """Serve on stdio (or TCP on loopback only: code never leaves the machine); the exit code."""
    server = create_server(backend_factory)
    protocol: SlmProtocol = server.protocol  # type: ignore[assignment]
    receive, on_error, done = protocol.receive, protocol.framing_error, protocol.stopped

    async def serve() -> None:
        server.loop = asyncio.get_running_loop()  # out-of-band messages are sent from this loop
        if tcp_port is None:
            protocol.set_writer(StdoutWriter(sys.stdout.buffer))
            await transport.serve_stdio(receive, on_error, done)
        else:
            await transport.serve_tcp("127.0.0.1", tcp_port, protocol.set_writer, receive, on_error, done)

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    if protocol.exit_code is not None:
        return protocol.exit_code
    return 0 if protocol._shutdown else 1  # the client went away: clean only after shutdown
