"""Held-out holes in a real repository, completed with and without retrieval.

A seeded hash of each source file's path holds a fraction of the files out;
the workspace index is built over the rest (in a temporary store), and holes
are punched in the held-out files only, so retrieval can never find the answer
verbatim in the file itself.

A mode without the adapter is deterministic (greedy, no cache), so an adapter's
evaluation may take that mode's records from an earlier report (``baseline``):
the holes must be the same, and the first ``recheck`` of them are completed again
and must give the same completions, or the evaluation stops (``BaselineMismatch``).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from slm_lsp.config import Config, IndexConfig
from slm_lsp.context import Context, parse_errors
from slm_lsp.documents import with_tree
from slm_lsp.engine import Completion, Document, Engine
from slm_lsp.evaluation import holes as holemod
from slm_lsp.evaluation import metrics
from slm_lsp.evaluation.holes import Hole
from slm_lsp.evaluation.runner import Position, complete_all
from slm_lsp.indexing.index import WorkspaceIndex
from slm_lsp.indexing.files import candidates, read_source
from slm_lsp.languages import detect_language, has_grammar
from slm_lsp.prompt import estimate_tokens
from slm_lsp.retrieval import retrieve

MODES = ("none", "file", "repo")  # the window only; + the rest of the file (context/file.py); + retrieval
FLAGS = ("exact", "parses", "empty", "overlong")
SCORES = ("edit_similarity", "identifier_f1")
_GLOB_SPECIAL = "\\*?[!#"
HOLE_FIELDS = ("path", "kind", "line", "character", "expected")  # what makes two records the same hole
RECHECK = 16  # holes of a reused mode completed again, in order from the first


class BaselineMismatch(ValueError):
    """An earlier report whose records are not this evaluation's: other holes, or other completions."""


@dataclass(frozen=True)
class Holdout:
    held_out: tuple[str, ...]  # relative posix paths, sorted
    indexed: tuple[str, ...]


def source_files(root: Path, config: IndexConfig = IndexConfig()) -> list[str]:
    """The files the index would consider that have a grammar, sorted."""
    found = [c.rel for c in candidates(root, config) if has_grammar(detect_language(c.rel))]
    return sorted(found)


def path_fraction(path: str, seed: int) -> float:
    """A stable number in [0, 1) for a path and seed."""
    digest = hashlib.sha256(f"{seed}:{path}".encode()).hexdigest()
    return int(digest[:13], 16) / 16**13


def split_holdout(paths: Sequence[str], fraction: float, seed: int) -> Holdout:
    """Hold out the paths whose hash falls under `fraction` (at least one when there are two or more)."""
    ordered = sorted(paths, key=lambda p: (path_fraction(p, seed), p))
    held = {p for p in paths if path_fraction(p, seed) < fraction}
    if not held and len(ordered) > 1 and fraction > 0:
        held = {ordered[0]}
    return Holdout(tuple(sorted(held)), tuple(sorted(p for p in paths if p not in held)))


def exclude_patterns(paths: Sequence[str]) -> tuple[str, ...]:
    """Gitignore patterns matching exactly these root-relative paths."""
    return tuple("/" + "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in p) for p in paths)


def build_index(root: Path, holdout: Holdout, store_dir: Path, config: IndexConfig = IndexConfig()) -> WorkspaceIndex:
    exclude = tuple(config.exclude) + exclude_patterns(holdout.held_out)
    index = WorkspaceIndex(root, store_dir, replace(config, exclude=exclude))
    index.build()
    return index


def make_retriever(index: WorkspaceIndex, config: IndexConfig) -> Callable[[Document, Context], tuple]:
    """What the server's workspace does for a completion, without its memo and recent files."""

    def retriever(doc: Document, ctx: Context) -> tuple:
        return retrieve(
            index, doc.path, doc.language, ctx.prefix, ctx.line_prefix, ctx.line_suffix + "\n" + ctx.suffix,
            budget_tokens=config.retrieval_tokens, min_score=config.min_score, document=doc.text,
            row=ctx.prefix_start_line + ctx.prefix.count("\n"), count_tokens=estimate_tokens,
        )  # fmt: skip

    return retriever


def punch(root: Path, held_out: Sequence[str], limit: int, seed: int, max_kb: int = 512) -> list[Hole]:
    files = []
    for rel in held_out:
        text = read_source(root / rel, max_kb * 1024)
        if text is not None:
            files.append((rel, detect_language(rel), text))
    return holemod.sample_holes(holemod.collect(files, seed), limit, seed)


def hole_document(hole: Hole) -> Document:
    return with_tree(Document(f"file:///eval/{hole.path}", hole.path, hole.document, hole.language))


def score(hole: Hole, completion: Completion, mode: str, original_errors: int) -> dict:
    """One record: the hole, the completion and its scores (single-line kinds score the first line)."""
    text = completion.text
    scored = text.split("\n", 1)[0] if hole.kind in holemod.SINGLE_LINE_KINDS else text
    return {
        "path": hole.path,
        "kind": hole.kind,
        "mode": mode,
        "line": hole.line,
        "character": hole.character,
        "expected": hole.expected,
        "completion": text,
        "exact": metrics.exact_match(scored, hole.expected),
        "edit_similarity": round(metrics.edit_similarity(scored, hole.expected), 4),
        "identifier_f1": round(metrics.identifier_f1(scored, hole.expected), 4),
        "parses": parse_errors(hole.language, holemod.fill(hole, text)) <= original_errors,
        "empty": not text.strip(),
        "overlong": text.count("\n") > hole.expected.count("\n"),
        "latency_ms": round(completion.latency_ms, 1),
        "reason": completion.reason,
        "prompt_tokens": completion.prompt_tokens,
        "context_chars": getattr(completion, "context_chars", 0),
    }


def run_repo(
    engine: Engine,
    root: Path,
    *,
    fraction: float,
    limit: int,
    seed: int,
    modes: Sequence[str],
    config: Config,
    adapter_engine: Engine | None = None,
    baseline: Mapping[str, Sequence[dict]] | None = None,
    recheck: int = RECHECK,
) -> dict:
    """Hold out, index, punch, complete in each mode; the report (summary and records).

    With `adapter_engine` (the model with a LoRA adapter) the last mode runs again
    with it, on the same holes and retrieval, as mode "<last>+adapter". `baseline`
    maps a mode to an earlier report's records for it, reused after a recheck."""
    root = root.resolve()
    holdout = split_holdout(source_files(root, config.index), fraction, seed)
    chosen = punch(root, holdout.held_out, limit, seed, config.index.max_file_kb)
    errors = {h.path: parse_errors(h.language, holemod.fill(h, h.expected)) for h in chosen}  # the original files
    positions = [Position(hole_document(h), h.line, h.character) for h in chosen]
    records: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="slm-eval-index-") as store:
        index = build_index(root, holdout, Path(store), config.index) if "repo" in modes else None
        indexed_files = len(index.files()) if index is not None else 0
        runs = [(engine, mode, mode) for mode in modes]
        if adapter_engine is not None:
            runs.append((adapter_engine, modes[-1], f"{modes[-1]}+adapter"))
        reused: dict[str, int] = {}
        for runner, mode, label in runs:
            earlier = (baseline or {}).get(label) if runner is engine else None
            if earlier is not None:
                same_holes(earlier, chosen, label)
            runner.repo_name = root.name
            runner.config = replace(config, context=replace(config.context, file_context=mode != "none"))
            runner.retriever = make_retriever(index, config.index) if mode == "repo" and index is not None else None
            todo = positions if earlier is None else positions[: max(recheck, 0)]
            done = complete_all(runner, todo, label=f"{root.name} {label}" + (" (recheck)" if earlier else ""))
            fresh = [score(h, c, label, errors[h.path]) for h, c in zip(chosen, done)]
            if earlier is not None:
                same_completions(earlier, fresh, label)
                reused[label] = len(chosen) - len(fresh)
                fresh += [dict(r) for r in earlier[len(fresh) :]]
            records += fresh
            runner.retriever, runner.config = None, config
    paired = {f"{mode}-vs-{modes[0]}": metrics.paired(records, modes[0], mode, "edit_similarity") for mode in modes[1:]}
    if adapter_engine is not None:
        tuned = f"{modes[-1]}+adapter"
        for name in ("edit_similarity", "exact"):
            paired[f"{tuned}-vs-{modes[-1]} {name}"] = metrics.paired(records, modes[-1], tuned, name)
    return {
        "benchmark": "repo",
        "repo": root.name,
        "source_files": len(holdout.held_out) + len(holdout.indexed),
        "held_out_files": len(holdout.held_out),
        "indexed_files": indexed_files,
        "holes": len(chosen),
        "holes_by_kind": {k: sum(h.kind == k for h in chosen) for k in holemod.KINDS},
        "summary": metrics.group_summaries(records, ("mode", "kind"), FLAGS, SCORES),
        "paired": paired,
        **({"reused": reused} if reused else {}),
        "records": records,
    }


def same_holes(earlier: Sequence[dict], chosen: Sequence[Hole], label: str) -> None:
    """Raise BaselineMismatch unless `earlier` are records of exactly these holes, in order."""
    if len(earlier) != len(chosen):
        raise BaselineMismatch(f"the earlier {label!r} records are {len(earlier)} holes, this evaluation has {len(chosen)}")
    for i, (record, hole) in enumerate(zip(earlier, chosen)):
        if any(record.get(f) != getattr(hole, f) for f in HOLE_FIELDS):
            raise BaselineMismatch(f"hole {i} of mode {label!r} is not the earlier report's ({hole.path}:{hole.line + 1})")


def same_completions(earlier: Sequence[dict], fresh: Sequence[dict], label: str) -> None:
    """Raise BaselineMismatch unless the holes completed again got the earlier completions."""
    differ = [i for i, (old, new) in enumerate(zip(earlier, fresh)) if old.get("completion") != new["completion"]]
    if differ:
        raise BaselineMismatch(
            f"{len(differ)} of the {len(fresh)} {label!r} holes completed again differ from the earlier report "
            f"(first: hole {differ[0]}): the code, model or settings changed; run without --baseline"
        )  # fmt: skip
