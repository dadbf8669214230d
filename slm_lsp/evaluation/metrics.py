"""Scores for one completion against the expected text, and their summaries. Pure.

- exact: equal after stripping trailing whitespace on every line and trailing blank lines
- edit similarity: 1 - Levenshtein(a, b) / max(len(a), len(b)) over the normalised texts
  (character level; 1.0 when both are empty)
- identifier F1: the F1 of the multisets of identifier tokens (1.0 when both have none)
- latency: mean and p95 (nearest rank) in milliseconds
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable, Mapping, Sequence

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_EDIT_CHARS = 4000  # longer texts are cut before the quadratic edit distance


def normalize(text: str) -> str:
    """Trailing whitespace off every line, trailing blank lines off the end."""
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip("\n")


def exact_match(completion: str, expected: str) -> bool:
    return normalize(completion) == normalize(expected)


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), two rows of memory."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def edit_similarity(completion: str, expected: str) -> float:
    a, b = normalize(completion)[:MAX_EDIT_CHARS], normalize(expected)[:MAX_EDIT_CHARS]
    if not a and not b:
        return 1.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def identifiers(text: str) -> Counter[str]:
    return Counter(_IDENTIFIER.findall(text))


def identifier_f1(completion: str, expected: str) -> float:
    got, want = identifiers(completion), identifiers(expected)
    if not got and not want:
        return 1.0
    common = sum((got & want).values())
    if not common:
        return 0.0
    precision, recall = common / sum(got.values()), common / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (q in [0, 100]) by nearest rank: always an observed value; None for no values.

    The project's one percentile: `slm-lsp eval` and every benchmark report p50 and p95 with it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def summarize(records: Sequence[Mapping], flags: Sequence[str], scores: Sequence[str]) -> dict:
    """n, the share of each boolean flag, the mean of each score, latency mean and p95."""
    latencies = [float(r["latency_ms"]) for r in records]
    summary: dict = {"n": len(records)}
    for name in flags:
        summary[name] = round(mean(float(bool(r[name])) for r in records), 4)
    for name in scores:
        summary[name] = round(mean(float(r[name]) for r in records), 4)
    summary["latency_mean_ms"] = round(mean(latencies), 1)
    summary["latency_p95_ms"] = round(percentile(latencies, 95) or 0.0, 1)  # 0.0 with no records, as the mean
    return summary


def paired(records: Sequence[Mapping], baseline: str, mode: str, score: str, key: str = "kind") -> dict:
    """`mode` against `baseline` on the same holes: the mean difference of `score` and its standard error,
    and how many holes got better or worse, per `key` value and "all"."""
    base = {(r["path"], r["line"], r["character"], r[key]): r for r in records if r["mode"] == baseline}
    pairs = [(r[key], float(r[score]) - float(base[k][score]))
             for r in records if r["mode"] == mode and (k := (r["path"], r["line"], r["character"], r[key])) in base]
    out: dict = {}
    for group in sorted({g for g, _ in pairs}) + ["all"]:
        deltas = [d for g, d in pairs if group in (g, "all")]
        spread = math.sqrt(sum((d - mean(deltas)) ** 2 for d in deltas) / (len(deltas) - 1)) if len(deltas) > 1 else 0.0
        out[group] = {
            "n": len(deltas), "delta": round(mean(deltas), 4), "stderr": round(spread / math.sqrt(len(deltas)), 4),
            "better": sum(d > 0 for d in deltas), "worse": sum(d < 0 for d in deltas),
        }  # fmt: skip
    return out


def group_summaries(
    records: Sequence[Mapping], keys: Sequence[str], flags: Sequence[str], scores: Sequence[str]
) -> dict:
    """{first key value: {second key value | "all": summary}} (one level per key, "all" for the whole)."""
    key, rest = keys[0], keys[1:]
    groups: dict[str, list[Mapping]] = {}
    for record in records:
        groups.setdefault(str(record[key]), []).append(record)
    out: dict = {}
    for value, members in groups.items():
        if rest:
            inner = group_summaries(members, rest, flags, scores)
            inner["all"] = summarize(members, flags, scores)
            out[value] = inner
        else:
            out[value] = summarize(members, flags, scores)
    return out
