"""The open documents: the client's text and its syntax tree, kept in step by its change events.

``Documents.change`` applies LSP content changes in order: each ranged change
(UTF-16 columns) is spliced into our text and becomes a tree-sitter edit of the
document's tree; after the last one the tree is re-parsed once, reusing the
edited tree (incremental). A whole-text change starts the tree afresh. Lone
surrogates are cleaned (``positions.clean_text``), one code point for one, so
every position the client sends still points where it should.

Ranges outside the document are clamped as pygls clamps them: a line past the
last one is the end of the text, a column past a line's end is that end (before
its ``\\r\\n``); an end before the start is the start. Lines end at ``\\n``, as
everywhere else in slm-lsp. Nothing here knows about LSP types: the server turns
its events into ``Change``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from slm_lsp.engine import Document
from slm_lsp.languages import detect_language
from slm_lsp.positions import clean_text, line_bounds, utf16_to_codepoints
from slm_lsp.syntax import Edit, reparse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """One content change: ``text`` replaces the range from ``start`` to ``end``, or the whole text."""

    text: str
    start: tuple[int, int] | None = None  # (line, UTF-16 character); None: the whole document
    end: tuple[int, int] | None = None


@dataclass(frozen=True)
class _Splice:
    text: str  # the text after the change
    edit: Edit | None  # the change in tree-sitter terms (None when no tree needs it)
    end: tuple[int, int]  # where the inserted text ends: (line, character in code points)


class Documents:
    """The server's open documents by URI, each a ``Document`` with its current tree.

    Only the event loop's thread may call these methods. A ``Document`` handed out
    never changes (a change builds a new one; its tree is edited on a copy), so a
    reader on another thread may keep the one it has.
    """

    def __init__(self, path_of: Callable[[str], str] = lambda uri: uri.rsplit("/", 1)[-1]) -> None:
        self._path_of = path_of  # a URI's workspace-relative path
        self._open: dict[str, Document] = {}

    def open(self, uri: str, text: str, language_id: str | None, version: int) -> Document:
        text = clean_text(text)
        language = detect_language(uri, language_id)
        doc = with_tree(Document(uri, self._path_of(uri), text, language, version, language_id or ""))
        self._open[uri] = doc
        return doc

    def change(self, uri: str, version: int, changes: Sequence[Change]) -> tuple[int, int] | None:
        """Apply ``changes`` in order; where the last one ended (line, character in code
        points), None after a whole-text change or when ``uri`` is not open."""
        doc = self._open.get(uri)
        if doc is None:
            log.warning("a change of %s, which is not open: ignored", uri)
            return None
        text, tree, edits, end = doc.text, doc.tree, [], None
        for change in changes:
            new = clean_text(change.text)
            if change.start is None or change.end is None:
                text, tree, edits, end = new, None, [], None
                continue
            splice = _splice(text, change.start, change.end, new, with_edit=tree is not None)
            text, end = splice.text, splice.end
            if splice.edit is not None:
                edits.append(splice.edit)
        doc = replace(doc, text=text, version=version, tree=None)
        self._open[uri] = replace(doc, tree=_parsed(doc, tree, edits))
        return end

    def close(self, uri: str) -> None:
        self._open.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        """The open document with its current tree (None without a grammar or when too large)."""
        return self._open.get(uri)

    def __contains__(self, uri: str) -> bool:
        return uri in self._open


def with_tree(doc: Document) -> Document:
    """``doc`` with its syntax tree, as an opened document has it (the evaluation and the
    fine-tune's dataset build theirs here, so they take the server's path)."""
    return replace(doc, tree=_parsed(doc, None, ()))


def _parsed(doc: Document, previous, edits: Sequence[Edit]):
    try:
        return reparse(doc.language, doc.text, previous, edits)
    except Exception:
        log.exception("parsing %s failed; plain-text completion", doc.uri)
        return None


def _splice(text: str, start: tuple[int, int], end: tuple[int, int], new: str, with_edit: bool) -> _Splice:
    """``text`` with the range from ``start`` to ``end`` (UTF-16, clamped) replaced by ``new``."""
    s_row, s_line, s = _offset(text, *start)
    e_row, e_line, e = _offset(text, *end)
    if e < s:
        e_row, e_line, e = s_row, s_line, s
    rows = new.count("\n")
    tail = len(new) - new.rfind("\n") - 1
    where = (s_row + rows, tail if rows else s - s_line + len(new))
    edit = None
    if with_edit:
        start_byte = len(text[:s].encode())
        start_column = len(text[s_line:s].encode())
        new_tail = len(new[len(new) - tail :].encode())
        edit = Edit(
            start_byte=start_byte,
            old_end_byte=start_byte + len(text[s:e].encode()),
            new_end_byte=start_byte + len(new.encode()),
            start_point=(s_row, start_column),
            old_end_point=(e_row, len(text[e_line:e].encode())),
            new_end_point=(s_row + rows, new_tail if rows else start_column + new_tail),
        )
    return _Splice(text[:s] + new + text[e:], edit, where)


def _offset(text: str, line: int, character: int) -> tuple[int, int, int]:
    """(row, offset of the row's start, offset) of an LSP position, clamped to the text."""
    bounds = line_bounds(text, max(line, 0))
    if bounds is None:  # past the last line: the end of the text
        return text.count("\n"), text.rfind("\n") + 1, len(text)
    first, stop = bounds
    return max(line, 0), first, first + utf16_to_codepoints(text[first:stop], max(character, 0))
