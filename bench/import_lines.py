"""How often autoimport answers the eval's single-line holes, and how often it is right (no model).

    .venv/bin/python bench/import_lines.py [--limit 80] [--seed 0] [-v] REPO [REPO ...]

The same holdout, holes and retrieval as `slm-lsp eval --repo DIR --limit N --seed S`; for each
line and rest-of-line hole the engine's `_import_line` runs on the hole's document (the model is
never loaded). Prints, per repository, the holes it answered, right (exact) and wrong; with -v
every hole where import hints were in the prompt.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from slm_lsp.config import Config
from slm_lsp.engine import Engine
from slm_lsp.evaluation import holes, metrics, repo
from slm_lsp.evaluation.runner import eval_config
from slm_lsp.templates import QWEN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("repos", nargs="+")
    parser.add_argument("--limit", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    config = eval_config(Config())
    for root in (Path(r).resolve() for r in args.repos):
        holdout = repo.split_holdout(repo.source_files(root, config.index), 0.2, args.seed)
        chosen = [h for h in repo.punch(root, holdout.held_out, args.limit, args.seed) if h.kind in holes.SINGLE_LINE_KINDS]
        with tempfile.TemporaryDirectory() as store:
            index = repo.build_index(root, holdout, Path(store), config.index)
            engine = Engine(config, QWEN, backend=None, cache=None)
            engine.retriever = repo.make_retriever(index, config.index)
            right = wrong = 0
            for hole in chosen:
                doc = repo.hole_document(hole)
                ctx, prompt = engine.prepare(doc, hole.line, hole.character, True)
                answer = engine._import_line(doc, ctx, prompt)
                ok = answer is not None and metrics.exact_match(answer, hole.expected)
                right += ok
                wrong += answer is not None and not ok
                hinted = any(s.kind == "import" for s in prompt.snippets)
                if args.verbose and (hinted or answer is not None):
                    mark = "right" if ok else "WRONG" if answer is not None else "model"
                    print(f"  {mark:5} {hole.path}:{hole.line} typed={ctx.line_prefix!r} expected={hole.expected!r} answer={answer!r}")
        print(f"{root.name} seed {args.seed}: {len(chosen)} single-line holes, autoimport answered "
              f"{right + wrong}: {right} right, {wrong} wrong", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
