"""Does a reused, moved KV cache complete like a fresh one, and how much faster is it?

    flock /tmp/slm-model.lock .venv/bin/python bench/kv_reuse.py --limit 200 --max-seconds 4200 \\
        --seed 2 --json bench/results/kv_reuse.json --plot bench/results/kv_reuse.png

A user moves around real files (``--roots``: by default pip's and pytest's
installed sources): from one location to a nearby one (within ``NEAR`` lines,
most moves) or anywhere in the file, and starts typing a line there (the line
cut after a few of its characters). Each location's prompt is the engine's
own (``Engine.prepare``, default config). For every move A -> B:

- **fresh**: B evaluated from an empty cache, then the greedy completion to
  the end of the line (at most 24 tokens): the reference;
- **each variant**: the cache as A left it (A's prompt and its completion),
  B evaluated reusing it as the variant says, the same completion.

Per variant it prints the share of completions equal to fresh, the median
prompt time (tokenize, plan, move, evaluate) and evaluated tokens, next to
fresh's. ``prefix`` keeps the common prefix only (what the backend did
before): the same tokens evaluated in other batches, so its share is the noise
floor of the comparison; ``whole16up`` is LlamaBackend's defaults; ``any16``
moves any run, as llama-server's ``--cache-reuse`` does (plus gaps). Bounded
by ``--limit`` moves and ``--max-seconds``; with ``--rows`` and ``--resume``
an interrupted run goes on where it stopped (by whole files).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import candidate_lines, is_real_source, plot_cdf, split_indent, walk_sources  # noqa: E402

SITE = Path(__file__).resolve().parents[1] / ".venv/lib/python3.11/site-packages"
ROOTS = (SITE / "pip/_internal", SITE / "_pytest")
NEAR = 40  # a nearby move lands within this many lines
P_NEAR = 0.7  # share of moves that are nearby
MAX_TOKENS = 24
VARIANTS = {  # name -> LlamaBackend settings for the reused evaluation
    "prefix": {"kv_reuse_chunk": 0},  # the common prefix only (before kvreuse): the noise floor
    "whole16up": {"kv_reuse_chunk": 16, "kv_reuse_parts": "whole", "kv_reuse_down": False},  # the default
    "whole16": {"kv_reuse_chunk": 16, "kv_reuse_parts": "whole", "kv_reuse_down": True},
    "same16": {"kv_reuse_chunk": 16, "kv_reuse_parts": "same", "kv_reuse_down": True},
    "any16": {"kv_reuse_chunk": 16, "kv_reuse_parts": "any", "kv_reuse_down": True},  # llama-server-like, with gaps
    "any16up": {"kv_reuse_chunk": 16, "kv_reuse_parts": "any", "kv_reuse_down": False},
    "any64": {"kv_reuse_chunk": 64, "kv_reuse_parts": "any", "kv_reuse_down": True},
}


@dataclass(frozen=True)
class Location:
    rel: str  # file path relative to its root
    text: str  # the document: the file with the cursor line cut after a few characters
    line: int
    character: int


def locate(rel: str, text: str, row: int, rng: random.Random) -> Location:
    """The file as it is when the user starts typing line ``row``: its first characters typed."""
    lines = text.split("\n")
    indent, body = split_indent(lines[row])
    typed = rng.randint(0, len(body) // 2)
    lines[row] = indent + body[:typed]
    return Location(rel, "\n".join(lines), row, len(indent) + typed)


def walk(rel: str, text: str, moves: int, seed: str) -> list[Location]:
    """moves + 1 locations in one file, each a nearby or a far move from the last."""
    rows = candidate_lines(text, "python")
    rng = random.Random(f"{seed}:{rel}")
    if len(rows) < 2:
        return []
    row = rng.choice(rows)
    out = [locate(rel, text, row, rng)]
    for _ in range(moves):
        near = [r for r in rows if r != row and abs(r - row) <= NEAR]
        row = rng.choice(near if near and rng.random() < P_NEAR else [r for r in rows if r != row])
        out.append(locate(rel, text, row, rng))
    return out


def files(roots: list[Path], seed: str) -> list[tuple[Path, str, str]]:
    """(root, path relative to it, text) of the real Python sources under the roots, shuffled."""
    found = []
    for root in roots:
        for path in walk_sources(root):
            if path.suffix != ".py":
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            if is_real_source(text):
                found.append((root, path.relative_to(root).as_posix(), text))
    random.Random(seed).shuffle(found)
    return found


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


class Runner:
    """The engine's prompts (with a workspace index per root for snippets) and the backend."""

    def __init__(self, retrieval: bool) -> None:
        from slm_lsp import models
        from slm_lsp.config import Config
        from slm_lsp.engine import Engine
        from slm_lsp.llama_backend import LlamaBackend
        from slm_lsp.templates import QWEN

        config = Config()
        self.config, self.retrieval, self.workspaces = config, retrieval, {}
        self.engine = Engine(config, QWEN)
        self.backend = LlamaBackend(
            models.resolve(config.model.path, out=None), QWEN, n_ctx=config.model.n_ctx,
            n_threads=config.model.n_threads, n_batch=config.model.n_batch,
        )  # fmt: skip
        self.never = threading.Event()

    def use_root(self, root: Path) -> None:
        if not self.retrieval:
            return
        if root not in self.workspaces:
            from slm_lsp.workspace import Workspace

            ws = Workspace(root, self.config.index, lambda *a: None, store_dir=Path(tempfile.mkdtemp()))
            ws.start().join()
            self.workspaces[root] = ws
        self.engine.retriever = self.workspaces[root].snippets

    def prompt(self, loc: Location):
        from slm_lsp.documents import with_tree
        from slm_lsp.engine import Document

        doc = with_tree(Document(uri=f"file:///{loc.rel}", path=loc.rel, text=loc.text, language="python"))
        ctx, p = self.engine.prepare(doc, loc.line, loc.character, explicit=False)
        return None if ctx.mode.value == "none" else p

    def complete(self, text: str, reuse: bool, settings: dict) -> dict:
        from slm_lsp.backend import Request

        self.backend.kv_reuse = reuse
        for key, value in settings.items():
            setattr(self.backend, key, value)
        g = self.backend.complete(Request(text, max_tokens=MAX_TOKENS, stop=("\n",)), self.never)
        evaluated = g.prompt_tokens - g.reused_tokens
        return {"text": g.text, "ms": round(g.prompt_ms, 1), "evaluated": evaluated, "tokens": g.prompt_tokens}


def run(args, variants: dict[str, dict]) -> tuple[list[dict], str, float]:
    rows, finished = resumed(args.rows) if args.resume else ([], set())
    log = args.rows.open("a" if args.resume else "w") if args.rows else None
    runner = Runner(not args.no_retrieval)
    defaults = {key: getattr(runner.backend, key) for v in variants.values() for key in v}
    t_start = time.monotonic()

    def over() -> bool:
        return len(rows) >= args.limit or time.monotonic() - t_start > args.max_seconds

    def record(line: dict) -> None:
        print(json.dumps(line), file=log or sys.stderr, flush=True)

    for root, rel, text in files(args.roots, args.seed):
        if over():
            break
        name = f"{root.name}/{rel}"
        if name in finished:
            continue
        runner.use_root(root)
        state = None  # the cache as the previous location in this file left it
        for loc in walk(rel, text, args.moves_per_file, args.seed):
            if over():
                break
            if (p := runner.prompt(loc)) is None:
                continue
            row: dict = {"file": name, "line": loc.line, "character": loc.character, "snippets": len(p.snippets)}
            for variant, settings in variants.items() if state is not None else ():
                runner.backend.llm.load_state(state)
                row[variant] = runner.complete(p.text, True, {**defaults, **settings})
            row["fresh"] = runner.complete(p.text, False, defaults)
            if state is not None:
                rows.append(row)
                record(row)
            state = runner.backend.llm.save_state()
        else:
            record({"finished": name})
    elapsed = time.monotonic() - t_start
    stopped = "limit" if len(rows) >= args.limit else "max-seconds" if elapsed > args.max_seconds else "files"
    runner.backend.close()
    return rows, stopped, elapsed


def resumed(path: Path | None) -> tuple[list[dict], set[str]]:
    """The moves of the files an interrupted run (``--rows``) finished, and those files."""
    text = path.read_text() if path and path.exists() else ""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    finished = {line["finished"] for line in lines if "finished" in line}
    return [line for line in lines if line.get("file") in finished], finished


def summarise(rows: list[dict], variants: dict[str, dict], stopped: str, elapsed: float) -> dict:
    summary: dict = {
        "moves": len(rows),
        "stopped_by": stopped,
        "seconds": round(elapsed),
        "max_tokens": MAX_TOKENS,
        "with_snippets": sum(r["snippets"] > 0 for r in rows),
        "fresh": {
            "median_prompt_ms": median([r["fresh"]["ms"] for r in rows]),
            "median_evaluated": median([r["fresh"]["evaluated"] for r in rows]),
            "evaluated": sum(r["fresh"]["evaluated"] for r in rows),
        },
    }
    for name in variants:
        same = [r[name]["text"] == r["fresh"]["text"] for r in rows]
        summary[name] = {
            "settings": variants[name],
            "equal_to_fresh": round(sum(same) / len(same), 4) if same else None,
            "equal": sum(same),
            "median_prompt_ms": median([r[name]["ms"] for r in rows]),
            "median_evaluated": median([r[name]["evaluated"] for r in rows]),
            "evaluated": sum(r[name]["evaluated"] for r in rows),
        }
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--roots", nargs="*", type=Path, default=list(ROOTS))
    ap.add_argument("--limit", type=int, default=200, help="moves measured at most")
    ap.add_argument("--moves-per-file", type=int, default=4)
    ap.add_argument("--variants", default="prefix,whole16up,whole16,any16", help=f"of: {' '.join(VARIANTS)}")
    ap.add_argument("--no-retrieval", action="store_true", help="no repository snippets in the prompts")
    ap.add_argument("--max-seconds", type=float, default=3600)
    ap.add_argument("--seed", default="1")
    ap.add_argument("--json", type=Path, help="also write the summary and every move here")
    ap.add_argument("--plot", type=Path, help="a PNG of the prompt time distributions (CDF)")
    ap.add_argument("--rows", type=Path, help="every move as a JSON line, written as it is measured")
    ap.add_argument("--resume", action="store_true", help="keep the files --rows has finished, measure the rest")
    args = ap.parse_args()
    variants = {name: VARIANTS[name] for name in args.variants.split(",")}
    rows, stopped, elapsed = run(args, variants)
    summary = summarise(rows, variants, stopped, elapsed)
    if args.plot and rows:
        series = {name: [r[name]["ms"] for r in rows] for name in ["fresh", *variants]}
        title = f"prompt evaluation after a move, {len(rows)} moves (fresh: empty cache)"
        summary["plot_renderer"] = plot_cdf(args.plot, series, title)
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"summary": summary, "moves": rows}, indent=1))


if __name__ == "__main__":
    main()
