"""The open documents: LSP changes applied to the text and, incrementally, to its syntax tree.

Texts are checked against pygls' own document (the reference the server used to read)
and against plain offset splicing; trees against a fresh parse of the same text.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pygls.workspace import TextDocument

from slm_lsp.documents import Change, Documents, _splice
from slm_lsp.languages import parser
from slm_lsp.positions import REPLACEMENT
from slm_lsp.syntax import MAX_PARSE_BYTES, Edit

EMOJI = "\U0001f600"  # two UTF-16 units, four UTF-8 bytes
URI = "file:///w/pkg/mod.py"


def at(line: int, character: int, text: str, end: tuple[int, int] | None = None) -> Change:
    return Change(text, (line, character), end or (line, character))


def shape(tree) -> list[tuple]:
    """Every node with its type and where it lies: equal shapes, equal trees."""
    out, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        out.append((node.type, node.start_byte, node.end_byte, tuple(node.start_point), tuple(node.end_point)))
        stack.extend(reversed(node.children))
    return out


def fresh(text: str) -> list[tuple]:
    return shape(parser("python").parse(text.encode()))


def pygls_text(text: str, events: list[list[Change]]) -> str:
    doc = TextDocument(URI, text, sync_kind=types.TextDocumentSyncKind.Incremental)
    for event in events:
        for c in event:
            if c.start is None:
                doc.apply_change(types.TextDocumentContentChangeWholeDocument(text=c.text))
            else:
                rng = types.Range(types.Position(*c.start), types.Position(*c.end))
                doc.apply_change(types.TextDocumentContentChangePartial(range=rng, text=c.text))
    return doc.source


CASES = {  # name: (opened text, events, text after, where the last edit ended)
    "insert": ("def f(a):\n    return a\n", [[at(1, 12, " + 1")]], "def f(a):\n    return a + 1\n", (1, 16)),
    "replace a span": (
        "def sub(a, b):\n    pass\n", [[at(0, 4, "add", (0, 7))]], "def add(a, b):\n    pass\n", (0, 7)
    ),
    "several changes in one event": (
        "x = 1\ny = 2\n",
        [[at(1, 4, "20", (1, 5)), at(0, 0, "import os\n"), at(3, 0, "z = 3\n")]],
        "import os\nx = 1\ny = 20\nz = 3\n",
        (4, 0),
    ),
    "several events": ("a = 1\n", [[at(1, 0, "b = 2\n")], [at(0, 4, "10", (0, 5))]], "a = 10\nb = 2\n", (0, 6)),
    "CRLF: a line break deleted": ("a = 1\r\nb = 2\r\n", [[at(0, 5, "", (1, 0))]], "a = 1b = 2\r\n", (0, 5)),
    "CRLF: a line inserted": ("a = 1\r\nb = 2\r\n", [[at(1, 0, "c = 3\r\n")]], "a = 1\r\nc = 3\r\nb = 2\r\n", (2, 0)),
    "astral characters count two units": (
        f's = "{EMOJI}é{EMOJI}"\n', [[at(0, 8, "x")], [at(0, 11, "!")]], f's = "{EMOJI}éx{EMOJI}!"\n', (0, 10)
    ),
    "an astral character typed": (f'"{EMOJI}"\n', [[at(0, 3, EMOJI)], [at(0, 5, "y")]], f'"{EMOJI}{EMOJI}y"\n', (0, 4)),
    "whole text replaced": ("x = 1\n", [[Change("y = 2\nz = 3\n")]], "y = 2\nz = 3\n", None),
    "whole text, then a range": ("x = 1\n", [[Change("y = 2\n"), at(0, 5, "0")]], "y = 20\n", (0, 6)),
    "a line past the end appends": ("a = 1\nb = 2", [[at(9, 3, "\nc = 3")]], "a = 1\nb = 2\nc = 3", (2, 5)),
    "a column past the line's end is its end": ("ab\r\ncd\n", [[at(0, 40, "X", (0, 99))]], "abX\r\ncd\n", (0, 3)),
}


@pytest.mark.parametrize("name", CASES)
def test_changes_apply_to_text_and_tree(name: str) -> None:
    opened, events, expected, end = CASES[name]
    docs = Documents()
    docs.open(URI, opened, "python", 1)
    for version, event in enumerate(events, start=2):
        last = docs.change(URI, version, event)
    doc = docs.get(URI)
    assert doc.text == expected == pygls_text(opened, events)
    assert last == end and doc.version == len(events) + 1
    assert shape(doc.tree) == fresh(expected)


def test_the_tree_sitter_edit_counts_bytes_and_byte_columns() -> None:
    """Points are not checked by the tree comparison (tree-sitter re-derives them): checked here."""
    splice = _splice("def add(a, b):\n    return a + b\n", (1, 11), (1, 16), "sum((a, b))", with_edit=True)
    assert splice.text == "def add(a, b):\n    return sum((a, b))\n" and splice.end == (1, 22)
    assert splice.edit == Edit(26, 31, 37, (1, 11), (1, 16), (1, 22))
    old = f'name = "\u00e9t\u00e9"\n{EMOJI} = 1\n'
    splice = _splice(old, (0, 11), (1, 2), f"\u00e9{EMOJI}\nprint(x)\nz", with_edit=True)
    assert splice.text == f'name = "\u00e9t\u00e9\u00e9{EMOJI}\nprint(x)\nz = 1\n' and splice.end == (2, 1)
    assert splice.edit == Edit(13, 19, 13 + 17, (0, 13), (1, 4), (2, 1))
    assert _splice("ab", (0, 1), (0, 1), "x", with_edit=False).edit is None


def test_an_end_before_the_start_inserts_at_the_start() -> None:
    docs = Documents()
    docs.open(URI, "abc\ndef\n", "python", 1)
    assert docs.change(URI, 2, [at(1, 2, "X", (0, 1))]) == (1, 3)
    assert docs.get(URI).text == "abc\ndeXf\n"


def test_lone_surrogates_are_cleaned_one_for_one() -> None:
    docs = Documents()
    docs.open(URI, "a\udc80b\n", "python", 1)
    docs.change(URI, 2, [at(0, 2, "\ud800x")])  # after the (cleaned) surrogate: positions unchanged
    doc = docs.get(URI)
    assert doc.text == f"a{REPLACEMENT}{REPLACEMENT}xb\n"
    assert shape(doc.tree) == fresh(doc.text)


def test_the_document_knows_its_path_language_and_version() -> None:
    docs = Documents(path_of=lambda uri: "pkg/" + uri.rsplit("/", 1)[-1])
    doc = docs.open(URI, "x = 1\n", "python", 7)
    assert (doc.uri, doc.path, doc.language, doc.language_id, doc.version) == (URI, "pkg/mod.py", "python", "python", 7)
    assert docs.get(URI) is doc and URI in docs
    docs.close(URI)
    assert docs.get(URI) is None and URI not in docs
    assert docs.change(URI, 8, [at(0, 0, "y")]) is None  # not open: ignored
    assert docs.get(URI) is None


def test_a_handed_out_document_never_changes() -> None:
    docs = Documents()
    before = docs.open(URI, "def f():\n    pass\n", "python", 1)
    old_shape = shape(before.tree)
    docs.change(URI, 2, [at(0, 4, "g", (0, 5))])
    assert before.text == "def f():\n    pass\n" and shape(before.tree) == old_shape
    assert docs.get(URI).text == "def g():\n    pass\n"


def test_no_tree_without_a_grammar_or_when_too_large() -> None:
    docs = Documents()
    assert docs.open("file:///w/notes.txt", "hello\n", "plaintext", 1).tree is None
    big = "x = 1\n" * (MAX_PARSE_BYTES // 6 + 1)
    assert docs.open(URI, big, "python", 1).tree is None
    docs.change(URI, 2, [at(0, 0, "", (1000, 0))])  # small enough again: parsed afresh
    doc = docs.get(URI)
    assert doc.tree is not None and shape(doc.tree) == fresh(doc.text)


# -- property: any changes keep text and tree as a fresh start would have them ----------
PIECES = st.sampled_from(list("ab_ (){}:=\n\t'\"#") + ["é", EMOJI, "\r\n", "    ", "def ", "if x:\n", "\udc80"])


def snippets(max_size: int) -> st.SearchStrategy[str]:
    return st.lists(PIECES, max_size=max_size).map("".join)


def utf16_position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return line, sum(2 if ord(c) > 0xFFFF else 1 for c in text[start:offset])


def boundary(text: str, offset: int) -> int:
    """An offset that does not split a CRLF (clients never do)."""
    return offset - 1 if 0 < offset < len(text) and text[offset - 1 : offset + 1] == "\r\n" else offset


changes = st.one_of(st.tuples(st.floats(0, 1), st.floats(0, 1), snippets(8)), st.tuples(snippets(30)))


@settings(max_examples=150, deadline=None)
@given(start=snippets(40), events=st.lists(st.lists(changes, min_size=1, max_size=3), max_size=6))
def test_incremental_text_and_tree_equal_a_fresh_start(start: str, events: list[list[tuple]]) -> None:
    clean = lambda s: s.replace("\udc80", REPLACEMENT)  # noqa: E731
    docs = Documents()
    docs.open(URI, start, "python", 1)
    text = clean(start)
    for version, event in enumerate(events, start=2):
        sent = []
        for change in event:
            if len(change) == 1:
                sent.append(Change(change[0]))
                text = clean(change[0])
                continue
            a, b = sorted(boundary(text, round(f * len(text))) for f in change[:2])
            sent.append(Change(change[2], utf16_position(text, a), utf16_position(text, b)))
            text = text[:a] + clean(change[2]) + text[b:]
        docs.change(URI, version, sent)
        doc = docs.get(URI)
        assert doc.text == text
        assert shape(doc.tree) == fresh(text)
