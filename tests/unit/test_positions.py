"""Positions: cleaning invalid text without moving anything, UTF-16 columns and surrogate pairs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from slm_lsp import positions
from slm_lsp.positions import REPLACEMENT, clean_text, codepoints_to_utf16, cursor_at, utf16_to_codepoints

EMOJI = "\U0001f600"  # two UTF-16 units


def test_clean_text_replaces_lone_surrogates_one_for_one():
    text = "a\udc80b\ud800\n\udfffc"
    cleaned = clean_text(text)
    assert cleaned == f"a{REPLACEMENT}b{REPLACEMENT}\n{REPLACEMENT}c"
    cleaned.encode("utf-8")  # what tree-sitter, the tokenizer and the cache do


def test_clean_text_keeps_valid_text_as_it_is():
    text = f"def f():\n    return '{EMOJI} \u00e9'\n"
    assert clean_text(text) is text


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", errors="surrogatepass")) // 2


@given(st.text(alphabet=st.one_of(st.sampled_from("\ud800\udbff\udc00\udfff\n"), st.characters())))
def test_clean_text_moves_no_position(text: str):
    cleaned = clean_text(text)
    cleaned.encode("utf-8")
    assert len(cleaned) == len(text)
    assert [utf16_units(line) for line in cleaned.split("\n")] == [utf16_units(line) for line in text.split("\n")]


def test_a_utf16_column_inside_a_surrogate_pair_snaps_to_its_start():
    line = f"ab{EMOJI}c"
    assert [utf16_to_codepoints(line, u) for u in range(7)] == [0, 1, 2, 2, 3, 4, 4]


def test_utf16_columns_round_trip_at_boundaries():
    line = f"x{EMOJI}{EMOJI}y\u00e9"
    for column in range(len(line) + 1):
        assert utf16_to_codepoints(line, codepoints_to_utf16(line, column)) == column


def test_the_cursor_reports_where_it_snapped():
    text = f"def f():\n    {EMOJI}\n"
    inside = cursor_at(text, 1, 5)
    assert (inside.character, inside.utf16_character, inside.in_range) == (4, 4, True)
    after = cursor_at(text, 1, 6)
    assert (after.character, after.utf16_character) == (5, 6)
    assert not cursor_at(text, 1, 7).in_range


def test_line_start_counts_lines_across_chunks():
    text = "".join(f"{'x' * (i % 50)}\r\n" if i % 3 else f"{'y' * (i % 7)}\n" for i in range(5000))
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    for line in (0, 1, 2, 350, 351, 4999, 5000):
        assert positions.line_start(text, line) == starts[line]
    assert positions.line_start(text, 5001) is None
    assert positions.line_bounds(text, 1) == (1, 2)  # "x" before its "\r\n"
    assert positions.line_bounds(text, 5000) == (len(text), len(text))
    assert positions.line_start("", 0) == 0 and positions.line_start("", 1) is None
