"""Token healing's back-off: which of a prompt's last tokens generation must redo.

A prompt that ends inside a word or in spaces ends with a token the model would
seldom have put there (a lone ``"    "`` before ``"row"``, where text is tokenized
``"   "``, ``" row"``). The llama.cpp backend takes those tokens off and makes
generation reproduce their text first; the fine-tune does the same to its examples
(the prompt without them, their text at the head of the target), so that it learns
what the server asks of the model.
"""

from __future__ import annotations

from typing import Callable, Collection, Sequence

MOST = 4  # tokens backed off at most


def back_off(tokens: Sequence[int], piece: Callable[[int], bytes], stops: Collection[int], most: int = MOST) -> int:
    """How many of `tokens` to keep: the partial word at the end goes (at most `most` tokens),
    up to and including a piece that does not continue a word (a space, an operator, a
    token that starts a word); never a special token (`stops`) or a piece with a newline."""
    cut = len(tokens)
    while cut > 1 and len(tokens) - cut < most and tokens[cut - 1] not in stops:
        text = piece(tokens[cut - 1])
        if not text or b"\n" in text:
            break
        cut -= 1
        if not is_word(text):
            break
    return cut


def is_word(piece: bytes) -> bool:
    """True for a piece that continues a word (no leading space or punctuation)."""
    return all(c == 95 or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c >= 128 for c in piece)
