"""KV cache reuse: the pure planner, and applying a plan to a simulated llama.cpp memory."""

from __future__ import annotations

import random
import sys
import types

import pytest

from slm_lsp import kvreuse
from slm_lsp.kvreuse import Chunk, Plan, fit, plan


def seq(start: int, n: int) -> list[int]:
    """n distinct tokens: runs of them occur once, as in real code."""
    return list(range(start, start + n))


def rebuilt(cached: list[int], new: list[int], p: Plan) -> list[int | None]:
    """The new prompt as the plan assembles it: kept tokens from the cache, None where evaluated."""
    out: list[int | None] = list(cached[: p.prefix])
    pos = p.prefix
    for c in p.chunks:
        out += [None] * (c.dst - pos) + cached[c.src : c.src + c.size]
        pos = c.end
    return out + [None] * (len(new) - pos)


def part(tokens: list[int], at: int, marks: frozenset[int]) -> int | None:
    return next((t for t in reversed(tokens[:at]) if t in marks), None)


def check(cached: list[int], new: list[int], p: Plan, marks: frozenset[int] = frozenset(), whole: bool = False) -> None:
    """Every kept token is the new prompt's token at its position; runs are ordered, disjoint, each
    moves within one part of the prompt (or is one that starts at its mark)."""
    got = rebuilt(cached, new, p)
    assert len(got) == len(new)
    assert all(g is None or g == t for g, t in zip(got, new))
    assert got[-1] is None  # the last token is always evaluated
    assert p.evaluated == got.count(None)
    src_end, dst_end = p.prefix, p.prefix
    for c in p.chunks:
        assert c.src >= src_end and c.dst >= dst_end
        src_end, dst_end = c.src + c.size, c.end
        assert part(cached, c.src, marks) == part(new, c.dst, marks) or new[c.dst] in marks
        if whole:
            assert new[c.dst] in marks


def test_prefix_only_when_the_prompt_grows_at_its_end():
    a = seq(0, 100)
    p = plan(a, a + seq(1000, 5))
    assert p == Plan(100, (), 105)
    assert (p.reused, p.evaluated) == (100, 5)


def test_the_same_prompt_again_evaluates_its_last_token():
    a = seq(0, 50)
    p = plan(a, a)
    assert (p.prefix, p.chunks, p.evaluated) == (49, (), 1)


def test_a_piece_cut_out_of_the_middle_moves_the_rest_down():
    a = seq(0, 200)
    b = a[:50] + a[80:]
    p = plan(a, b, 16)
    assert p.prefix == 50
    assert p.chunks == (Chunk(src=80, dst=50, size=119),)  # up to the last token, evaluated
    assert p.evaluated == 1
    check(a, b, p)


def test_a_piece_inserted_is_evaluated_and_the_rest_moves_up():
    a = seq(0, 200)
    b = a[:50] + seq(1000, 30) + a[50:]
    p = plan(a, b, 16)
    assert p.prefix == 50
    assert p.chunks == (Chunk(src=50, dst=80, size=149),)
    assert p.evaluated == 31
    check(a, b, p)


def test_without_gaps_an_insertion_ends_reuse_like_llama_server():
    a = seq(0, 200)
    b = a[:50] + seq(1000, 30) + a[50:]
    assert plan(a, b, 16, gaps=False) == Plan(50, (), 230)
    cut = a[:50] + a[80:]
    assert plan(a, cut, 16, gaps=False).chunks == (Chunk(80, 50, 119),)


def test_several_chunks_reordered_snippets_and_a_sliding_window():
    s1, s2, s3, window = seq(100, 40), seq(200, 40), seq(300, 40), seq(400, 120)
    head = seq(0, 5)
    a = head + s1 + s2 + s3 + window
    b = head + s2 + s1 + s3 + window[30:] + seq(900, 20)  # snippets swapped, the window slid down
    p = plan(a, b, 16)
    check(a, b, p)
    assert p.prefix == 5
    # s2 moves up front; the cache is walked forward only, so s1 (now behind) is evaluated again;
    # s3 stays in place and the rest of the window moves down
    assert p.chunks == (Chunk(45, 5, 40), Chunk(85, 85, 40), Chunk(155, 125, 90))
    assert p.evaluated == 40 + 20


def test_short_runs_are_ignored():
    a = seq(0, 100)
    b = a[:10] + seq(1000, 20) + a[40:50] + seq(2000, 20) + a[60:72] + seq(3000, 5)
    p = plan(a, b, 16)
    assert p.chunks == ()
    assert p.prefix == 10
    assert plan(a, b, 8).chunks == (Chunk(40, 30, 10), Chunk(60, 60, 12))


def test_nothing_in_common():
    p = plan(seq(0, 100), seq(500, 80), 16)
    assert p == Plan(0, (), 80)
    assert plan([], seq(0, 10)) == Plan(0, (), 10)
    assert plan(seq(0, 10), []) == Plan(0, (), 0)


def test_a_shorter_prompt_keeps_what_it_shares():
    a = seq(0, 300)
    b = a[:20] + a[100:160]
    p = plan(a, b, 16)
    assert p.prefix == 20
    assert p.chunks == (Chunk(100, 20, 59),)
    check(a, b, p)


def test_min_chunk_zero_keeps_the_prefix_only():
    a = seq(0, 200)
    assert plan(a, a[:50] + a[80:], 0) == Plan(50, (), 170)


def test_repeated_runs_take_the_longest_match():
    line = seq(100, 20)  # the same line twice in the cache; the second is followed by what b has
    a = seq(0, 10) + line + seq(500, 30) + line + seq(600, 40)
    b = seq(0, 10) + seq(700, 5) + line + seq(600, 40)
    p = plan(a, b, 16)
    assert p.chunks == (Chunk(src=60, dst=15, size=59),)  # not the first copy, at 10
    check(a, b, p)


def test_marks_keep_runs_within_the_same_part_of_the_prompt():
    fim_prefix, fim_suffix, fim_middle = 900, 901, 902
    marks = frozenset({fim_prefix, fim_suffix, fim_middle})
    above, below = seq(100, 40), seq(200, 40)
    a = [fim_prefix] + above + [fim_suffix] + below + [fim_middle, 7]
    # the cursor moved down: the old suffix's lines are now above it, in the FIM prefix
    b = [fim_prefix] + above[20:] + below + [fim_suffix] + seq(300, 30) + [fim_middle, 8]
    anywhere, in_parts = plan(a, b, 16), plan(a, b, 16, marks=marks, parts="same")
    check(a, b, anywhere)
    check(a, b, in_parts, marks)
    assert anywhere.chunks == (Chunk(21, 1, 20), Chunk(42, 21, 40))
    assert in_parts.chunks == (Chunk(21, 1, 20),)  # below was computed as the suffix: evaluated again


def test_whole_parts_move_snippets_and_the_file_but_no_piece_of_a_part():
    file_sep, fim_prefix, fim_suffix, fim_middle = 900, 901, 902, 903
    marks = frozenset({file_sep, fim_prefix, fim_suffix, fim_middle})
    s1, s2, s3 = [file_sep] + seq(100, 30), [file_sep] + seq(200, 30), [file_sep] + seq(300, 30)
    file = [file_sep, 7, fim_prefix] + seq(400, 60)
    a = [1] + s1 + s2 + file + [fim_suffix] + seq(500, 30) + [fim_middle, 8]
    b = [1] + s2 + s3 + file[:30] + file[40:] + [fim_suffix] + seq(500, 30) + [fim_middle, 9]
    p = plan(a, b, 16, marks=marks, parts="whole")
    check(a, b, p, marks, True)
    # s2 moves up (the prefix gives up its opening mark for it); s3 is new; the file stays until its
    # window changed; the rest of the window does not start a part: evaluated; the suffix is a whole part
    assert p.prefix == 1
    assert p.chunks == (Chunk(32, 1, 31), Chunk(63, 63, 30), Chunk(126, 116, 31))
    assert p.evaluated == 31 + 23 + 2
    # in the same part, any run moves: the rest of the window and the suffix (not the lone middle mark)
    assert plan(a, b, 16, marks=marks, parts="same").chunks[-1] == Chunk(103, 93, 23 + 31)


def test_without_down_runs_move_only_where_text_was_inserted_before_them():
    a = seq(0, 200)
    cut, inserted = a[:50] + a[80:], a[:50] + seq(1000, 30) + a[50:]
    assert plan(a, cut, 16, down=False) == Plan(50, (), 170)
    assert plan(a, inserted, 16, down=False) == plan(a, inserted, 16)
    swapped = a[:50] + a[100:150] + seq(1000, 60) + a[50:100] + a[150:]  # one run down, one up
    assert [c.dst - c.src for c in plan(a, swapped, 16).chunks] == [-50, 60]
    # without down, the first run is evaluated, and the cache is still there for the second (up) and the rest
    assert [c.dst - c.src for c in plan(a, swapped, 16, down=False).chunks] == [110, 60]


def test_random_edits_always_give_a_valid_plan():
    rng = random.Random(3)
    for _ in range(300):
        a = [rng.randrange(40) for _ in range(rng.randrange(0, 120))]
        b = list(a)
        for _ in range(rng.randrange(4)):
            at = rng.randrange(len(b) + 1)
            if rng.random() < 0.5:
                b[at : at + rng.randrange(1, 20)] = []
            else:
                b[at:at] = [rng.randrange(40) for _ in range(rng.randrange(1, 20))]
        for gaps in (True, False):
            marks, whole = frozenset(rng.sample(range(40), 2)), rng.random() < 0.5
            down = rng.random() < 0.5
            parts = "whole" if whole else "same"
            p = plan(a, b, rng.choice([2, 4, 16]), gaps=gaps, marks=marks, parts=parts, down=down)
            if b:
                check(a, b, p, marks, whole)
                assert down or all(c.dst >= c.src for c in p.chunks)
            assert p.total == len(b)


def test_fit_keeps_the_head_and_the_tail():
    tokens = seq(0, 100)
    assert fit(tokens, 200) == tokens
    assert fit(tokens, 10, keep=2) == [0, 1] + seq(92, 8)
    assert fit(tokens, 10, keep=0) == seq(90, 10)
    assert fit(tokens, 10, keep=50) == seq(0, 5) + seq(95, 5)  # the head takes half at most
    # typing at the end of a too-long prompt: the next cut is the same head and a shifted tail
    before, after = fit(tokens, 40, keep=1), fit(tokens + [500, 501], 40, keep=1)
    p = plan(before, after, 16)
    assert p.prefix == 1 and p.chunks == (Chunk(src=3, dst=1, size=37),)
    check(before, after, p)


# -- applying plans: a simulated llama.cpp memory ------------------------------
class FakeMemory:
    """Cells with a position, a token and a set of sequences, with llama.cpp's range semantics."""

    def __init__(self, tokens: list[int]) -> None:
        self.cells = [[pos, {0}, tok] for pos, tok in enumerate(tokens)]

    def _in(self, cell, seq_id: int, p0: int, p1: int) -> bool:
        p1 = p1 if p1 >= 0 else 1 << 30
        return (seq_id < 0 or seq_id in cell[1]) and max(p0, 0) <= cell[0] < p1

    def seq_rm(self, mem, seq_id: int, p0: int, p1: int) -> bool:
        for cell in self.cells:
            if self._in(cell, seq_id, p0, p1):
                cell[1].discard(seq_id)
        self.cells = [c for c in self.cells if c[1]]
        return True

    def seq_cp(self, mem, src: int, dst: int, p0: int, p1: int) -> None:
        for cell in self.cells:
            if self._in(cell, src, p0, p1):
                cell[1].add(dst)

    def seq_add(self, mem, seq_id: int, p0: int, p1: int, delta: int) -> None:
        for cell in self.cells:
            if self._in(cell, seq_id, p0, p1):
                cell[0] += delta

    def evaluate(self, tokens: list[int], start: int) -> None:
        """A decode: sequence 0 must end just before ``start`` (llama.cpp checks this)."""
        in_seq = [c[0] for c in self.cells if 0 in c[1]]
        assert max(in_seq, default=-1) == start - 1
        self.cells += [[start + k, {0}, t] for k, t in enumerate(tokens)]

    def sequence(self, seq_id: int) -> list[tuple[int, int]]:
        return sorted((c[0], c[2]) for c in self.cells if seq_id in c[1])


@pytest.fixture
def memory(monkeypatch):
    def install(tokens):
        fake = FakeMemory(tokens)
        module = types.SimpleNamespace(
            llama_memory_seq_rm=fake.seq_rm, llama_memory_seq_cp=fake.seq_cp, llama_memory_seq_add=fake.seq_add
        )
        monkeypatch.setitem(sys.modules, "llama_cpp", module)
        return fake

    return install


def apply(fake: FakeMemory, p: Plan, new: list[int]) -> None:
    """What LlamaBackend._evaluate does, on the fake."""
    kvreuse.park(None, p)
    pos = p.prefix
    for c in p.chunks:
        fake.evaluate(new[pos : c.dst], pos)
        kvreuse.unpark(None, c)
        pos = c.end
    fake.evaluate(new[pos:], pos)


@pytest.mark.parametrize("seed", range(60))
def test_applied_plans_leave_exactly_the_new_prompt_in_sequence_0(memory, seed):
    rng = random.Random(seed)
    a = seq(0, rng.randrange(20, 150))
    pieces = [a[i : i + 10] for i in range(0, len(a), 10)]
    rng.shuffle(pieces)  # runs moving up and down, past one another
    b = a[:5] + sum(pieces[: rng.randrange(1, len(pieces) + 1)], []) + seq(1000, rng.randrange(1, 5))
    fake = memory(a)
    p = plan(a, b, 4)
    check(a, b, p)
    apply(fake, p, b)
    assert fake.sequence(0) == list(enumerate(b))
    assert fake.sequence(kvreuse.PARKING) == []


def test_moves_past_one_another_do_not_collide(memory):
    a = seq(0, 60)
    # the first run moves up onto the second's old place, which moves up too; then one moves down
    b = a[:2] + seq(900, 30) + a[10:20] + a[25:35] + a[50:58] + [999]
    fake = memory(a)
    p = plan(a, b, 4)
    assert [(c.src, c.dst) for c in p.chunks] == [(10, 32), (25, 42), (50, 52)]
    apply(fake, p, b)
    assert fake.sequence(0) == list(enumerate(b))


def test_drop_parked_empties_the_parking_sequence(memory):
    a = seq(0, 80)
    b = a[:10] + seq(500, 20) + a[10:]
    fake = memory(a)
    p = plan(a, b, 16)
    kvreuse.park(None, p)
    assert fake.sequence(kvreuse.PARKING)
    kvreuse.drop_parked(None)
    assert fake.sequence(kvreuse.PARKING) == [] and fake.sequence(0) == list(enumerate(a[:10]))
