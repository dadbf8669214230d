"""BM25 over token sets, normalised to [0, 1]: the one lexical score of slm-lsp.

Documents and queries are sets of identifier tokens (``indexing.chunks.identifier_tokens``);
a token counts once per document, so the term-frequency part of BM25 is the length
normalisation alone. A document's score is the IDF weight of the query tokens it holds,
times that normalisation (capped at 1), over the query's whole weight: 1.0 means it holds
every query token and is no longer than average. Used for the workspace's chunks
(``retrieval``, statistics from the index) and for the parts of the current file
(``context.file``, statistics over the file's own segments). Pure.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

K1, B = 1.2, 0.75


def idf(n_documents: int, document_frequency: int) -> float:
    """The weight of a token found in `document_frequency` of `n_documents` documents (always > 0)."""
    n = max(n_documents, 1)
    return math.log(1 + (n - document_frequency + 0.5) / (document_frequency + 0.5))


class Scorer:
    """Scores documents against one query, given the collection's statistics.

    ``document_frequency`` maps the query's tokens to how many documents hold them (a token
    missing from it: none, the rarest, so the heaviest). Tokens in more than ``cap``
    documents are too common to tell anything and are left out of the query."""

    def __init__(
        self,
        query: Iterable[str],
        n_documents: int,
        document_frequency: Mapping[str, int],
        average_tokens: float,
        *,
        cap: int | None = None,
    ) -> None:
        self.weights: dict[str, float] = {}
        for token in query:
            df = document_frequency.get(token, 0)
            if cap is None or df <= cap:
                self.weights[token] = idf(n_documents, df)
        self.total = sum(self.weights.values()) or 1.0
        self.average_tokens = average_tokens or 1.0

    def score(self, tokens: frozenset[str] | set[str], size: int | None = None) -> float:
        """The share of the query's weight in `tokens`, scaled by BM25's length normalisation.

        `size` is the document's length in tokens (default: ``len(tokens)``)."""
        weight = sum(w for t, w in self.weights.items() if t in tokens)
        if not weight:
            return 0.0
        length = len(tokens) if size is None else size
        norm = min(1.0, (K1 + 1) / (1 + K1 * (1 - B + B * length / self.average_tokens)))
        return min(1.0, weight * norm / self.total)
