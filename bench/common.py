"""Pure parts of the benchmarks: picking real code, typing schedules, summary statistics.

Everything here is deterministic for a given seed and free of LSP and models,
so it is unit-tested (tests/unit/test_bench_latency.py). Seeds are strings
(``random.Random("7:pkg/mod.py")``): Python hashes those with sha512, so a
seed gives the same files, lines and keystrokes on every machine and run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from slm_lsp import languages
from slm_lsp.config import IndexConfig
from slm_lsp.evaluation.metrics import percentile
from slm_lsp.indexing import files

MIN_FILE_BYTES = 1_500  # smaller files have too little context to be interesting
MAX_FILE_BYTES = 120_000  # larger ones are mostly data tables or generated
MIN_FILE_LINES = 40
MAX_LINE_CHARS = 300  # a longer line marks a minified or data file
MAX_WALK = 50_000  # files looked at in a repository at most
MIN_TYPED_CHARS = 12  # a picked line has at least this much text after its indentation
MAX_TYPED_CHARS = 100
TRIVIAL = frozenset("pass return break continue else: try: finally: } }; ); }); ] ), default:".split())
# per language: openers of multi-line strings/comments, and the line comment
BLOCKS = {"python": (('"""', "'''"), "#"), "c": (("/*",), "//")}
COMMENT_STARTS = ("#", "//", "/*", "*", '"""', "'''", '"', "'", "`", "--")

KEY_MIN_S, KEY_MAX_S = 0.080, 0.150  # pause between two keys
PAUSE_P = 0.06  # chance that a key is preceded by a longer pause instead
PAUSE_MIN_S, PAUSE_MAX_S = 0.300, 0.800  # moving to a line, thinking


@dataclass(frozen=True)
class SourceFile:
    path: Path
    rel: str  # posix path relative to the repository
    language_id: str
    text: str


def language_id(path: str) -> str | None:
    """The LSP languageId an editor sends for a file slm-lsp has a grammar for, else None."""
    spec = languages.LANGUAGES.get(languages.detect_language(path))
    return spec.language_ids[0] if spec else None


def walk_sources(root: Path, limit: int = MAX_WALK) -> list[Path]:
    """The files slm-lsp would index under root (``indexing.files``: no vendored, ignored, secret or
    generated names) that have a grammar, sorted; at most ``limit``."""
    found: list[Path] = []
    for candidate in files.candidates(root, IndexConfig(max_file_kb=MAX_FILE_BYTES // 1024 + 1)):
        if language_id(candidate.rel) is not None:
            found.append(root / candidate.rel)
            if len(found) >= limit:
                break
    return sorted(found)


def is_real_source(text: str) -> bool:
    """Hand-written code of a useful size: not tiny, huge, minified or generated (``indexing.files``)."""
    if not MIN_FILE_BYTES <= len(text.encode("utf-8", "replace")) <= MAX_FILE_BYTES or "\r" in text:
        return False
    lines = text.split("\n")
    if len(lines) < MIN_FILE_LINES or max(len(line) for line in lines) > MAX_LINE_CHARS:
        return False
    return not files.is_generated_text(text)


def pick_files(root: Path, n: int, seed: str | int) -> list[SourceFile]:
    """n real source files under root, chosen by seed (fewer when the repository has fewer)."""
    root = root.resolve()
    paths = walk_sources(root)
    random.Random(f"{seed}:files").shuffle(paths)
    picked: list[SourceFile] = []
    for path in paths:
        if len(picked) >= n:
            break
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        rel = path.relative_to(root).as_posix()
        lang = language_id(rel)
        if lang is not None and is_real_source(text) and candidate_lines(text, lang):
            picked.append(SourceFile(path, rel, lang, text))
    return picked


def candidate_lines(text: str, language_id: str = "python") -> list[int]:
    """0-based numbers of lines worth retyping: code, not comments or docstrings, ASCII, 12-100 chars."""
    out: list[int] = []
    blocks = BLOCKS.get(language_id, BLOCKS["c"])
    in_block = ""  # the closing delimiter of the multi-line string or comment we are in
    for row, line in enumerate(text.split("\n")):
        body = split_indent(line)[1]
        was_inside = bool(in_block)
        in_block = block_state(line, in_block, *blocks)
        if was_inside or in_block or row == 0:
            continue
        if not (MIN_TYPED_CHARS <= len(body) <= MAX_TYPED_CHARS) or not body.isascii() or "\t" in body:
            continue
        if line != line.rstrip():  # trailing blanks: the retyped line would differ
            continue
        if body.startswith(COMMENT_STARTS) or body in TRIVIAL or sum(c.isalnum() for c in body) < 6:
            continue
        out.append(row)
    return out


def block_state(line: str, inside: str, openers: tuple[str, ...], comment: str) -> str:
    """Track triple-quoted strings or /* */ comments across lines (a cheap scan, no parser)."""
    i = 0
    while i < len(line):
        if inside:
            j = line.find(inside, i)
            if j < 0:
                return inside
            i, inside = j + len(inside), ""
            continue
        starts = [(j, d) for d in openers if (j := line.find(d, i)) >= 0 and comment not in line[i:j]]
        if not starts:
            return ""
        j, d = min(starts)
        i, inside = j + len(d), "*/" if d == "/*" else d
    return inside


def pick_lines(sf: SourceFile, k: int, seed: str | int) -> list[int]:
    """k candidate lines of a file chosen by seed, in file order (the order they are retyped)."""
    lines = candidate_lines(sf.text, sf.language_id)
    rng = random.Random(f"{seed}:{sf.rel}:lines")
    return sorted(rng.sample(lines, min(k, len(lines))))


def split_indent(line: str) -> tuple[str, str]:
    body = line.lstrip(" \t")
    return line[: len(line) - len(body)], body


def typing_delays(text: str, seed: str | int) -> list[float]:
    """Seconds before each keystroke of retyping a line: len(text) + 1 delays.

    delays[0] comes before deleting the line (moving there) and delays[1]
    before its first character (thinking): both 300-800 ms pauses. Each later
    key follows 80-150 ms after the previous one, or with chance PAUSE_P a
    300-800 ms pause.
    """
    rng = random.Random(f"{seed}:keys")
    delays = []
    for i in range(len(text) + 1):
        if i < 2 or rng.random() < PAUSE_P:
            delays.append(rng.uniform(PAUSE_MIN_S, PAUSE_MAX_S))
        else:
            delays.append(rng.uniform(KEY_MIN_S, KEY_MAX_S))
    return delays


def common_prefix_len(a: str, b: str) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def latency_summary(values: Sequence[float], prefix: str = "") -> dict[str, float | int | None]:
    """count, p50/p90/p95/p99, mean and max, rounded to 0.1 ms."""
    out: dict[str, float | int | None] = {f"{prefix}count": len(values)}
    for q in (50, 90, 95, 99):
        out[f"{prefix}p{q}_ms"] = round_ms(percentile(values, q))
    out[f"{prefix}mean_ms"] = round_ms(sum(values) / len(values)) if values else None
    out[f"{prefix}max_ms"] = round_ms(max(values)) if values else None
    return out


def ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def round_ms(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def spread(n: int, m: int) -> list[int]:
    """m indices spread evenly over range(n), first and last included (all of them when n <= m)."""
    if m <= 0 or n <= 0:
        return []
    if n <= m:
        return list(range(n))
    if m == 1:
        return [0]
    return sorted({round(i * (n - 1) / (m - 1)) for i in range(m)})
