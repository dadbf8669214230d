"""slm_lsp/bm25.py: the one lexical score, behind retrieval (the index's chunks) and context.file (the file's parts)."""

from __future__ import annotations

import math

import pytest

from slm_lsp import bm25, retrieval
from slm_lsp.context import file as filecontext
from slm_lsp.indexing.tables import LexicalView


def test_idf_is_positive_and_falls_as_a_token_gets_common() -> None:
    weights = [bm25.idf(100, df) for df in (0, 1, 10, 50, 100)]
    assert all(w > 0 for w in weights)
    assert weights == sorted(weights, reverse=True) and len(set(weights)) == len(weights)
    assert bm25.idf(100, 1) == pytest.approx(math.log(1 + 99.5 / 1.5))  # the Lucene form, never negative


def test_a_document_with_every_query_token_at_average_length_scores_one() -> None:
    scorer = bm25.Scorer({"parse", "config"}, 10, {"parse": 2, "config": 5}, average_tokens=4)
    assert scorer.score(frozenset({"parse", "config", "x", "y"})) == pytest.approx(1.0)
    assert scorer.score(frozenset({"x", "y"})) == 0.0


def test_the_score_is_the_share_of_the_query_weight_found() -> None:
    df = {"rare": 1, "common": 8}
    scorer = bm25.Scorer(df, 10, df, average_tokens=2)
    rare, common = bm25.idf(10, 1), bm25.idf(10, 8)
    assert scorer.score(frozenset({"rare", "z"})) == pytest.approx(rare / (rare + common))
    assert scorer.score(frozenset({"common", "z"})) == pytest.approx(common / (rare + common))


def test_longer_documents_score_less_and_shorter_ones_are_capped_at_one() -> None:
    scorer = bm25.Scorer({"a", "b"}, 10, {"a": 1, "b": 1}, average_tokens=10)
    matched = frozenset({"a"})
    short, average, long = (scorer.score(matched, size) for size in (2, 10, 40))
    assert short == average == pytest.approx(0.5)  # normalisation capped at 1: short is not better
    assert long < average
    assert long == pytest.approx(0.5 * (bm25.K1 + 1) / (1 + bm25.K1 * (1 - bm25.B + bm25.B * 4)))


def test_tokens_too_common_leave_the_query_and_unknown_ones_weigh_most() -> None:
    scorer = bm25.Scorer({"self", "frobnicate", "unseen"}, 100, {"self": 90, "frobnicate": 3}, 5, cap=50)
    assert set(scorer.weights) == {"frobnicate", "unseen"}
    assert scorer.weights["unseen"] > scorer.weights["frobnicate"]
    assert scorer.score(frozenset({"self"})) == 0.0


def test_retrieval_scores_chunks_with_it() -> None:
    view = LexicalView(10, 4.0, {"parse": 2, "config": 5}, cap=8, matches=())
    query = frozenset({"parse", "config"})
    ours = retrieval.Scorer(view, query)
    plain = bm25.Scorer(query, 10, {"parse": 2, "config": 5}, 4.0)
    for tokens in ({"parse"}, {"config", "q"}, {"parse", "config", "q", "r", "s", "t"}):
        assert ours.score(frozenset(tokens), len(tokens)) == pytest.approx(plain.score(frozenset(tokens)))


def test_filecontext_picks_the_part_sharing_the_rare_tokens() -> None:
    parts = [
        filecontext.Segment(0, 1, "a", frozenset({"load", "settings", "path", "value"})),
        filecontext.Segment(3, 4, "b", frozenset({"load", "value", "other", "thing"})),
        filecontext.Segment(6, 7, "c", frozenset({"value", "thing", "more", "stuff"})),
    ]
    query = frozenset({"load", "settings", "path", "value"})
    chosen = filecontext.select(parts, query, budget=1, count_tokens=len)
    assert [s.start for s in chosen] == [0]
