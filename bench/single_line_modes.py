"""none vs repo on the single-line holes of `slm-lsp eval --repo` (seed 0, --limit 80), with any model file.

    flock /tmp/slm-model.lock .venv/bin/python bench/single_line_modes.py MODEL.gguf REPO [REPO ...]

The same holdout, holes and engine as `slm-lsp eval --repo DIR --limit 80 --seed 0 --modes none,repo`,
but only the line and rest-of-line holes (the ones that can be exact at the server's caps), so a
larger model fits in minutes. Prints exact match, edit similarity and the median latency per mode.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
from pathlib import Path

from slm_lsp.config import Config
from slm_lsp.evaluation import holes, metrics, repo
from slm_lsp.evaluation.runner import Position, build_engine, complete_all, eval_config


def main(model: str, roots: list[str], limit: int = 80, seed: int = 0) -> None:
    base = Config()
    config = eval_config(dataclasses.replace(base, model=dataclasses.replace(base.model, path=model)))
    engine, name = build_engine(config)
    for root in (Path(r).resolve() for r in roots):
        holdout = repo.split_holdout(repo.source_files(root, config.index), 0.2, seed)
        chosen = [h for h in repo.punch(root, holdout.held_out, limit, seed) if h.kind in holes.SINGLE_LINE_KINDS]
        positions = [Position(repo.hole_document(h), h.line, h.character) for h in chosen]
        with tempfile.TemporaryDirectory() as store:
            index = repo.build_index(root, holdout, Path(store), config.index)
            engine.repo_name = root.name
            for mode in ("none", "repo"):
                context = dataclasses.replace(config.context, file_context=mode != "none")
                engine.config = dataclasses.replace(config, context=context)
                engine.retriever = repo.make_retriever(index, config.index) if mode == "repo" else None
                done = complete_all(engine, positions, label=f"{root.name} {mode}")
                records = [repo.score(h, c, mode, 0) for h, c in zip(chosen, done)]
                exact = statistics.mean(r["exact"] for r in records)
                similarity = statistics.mean(r["edit_similarity"] for r in records)
                latency = metrics.percentile([r["latency_ms"] for r in records], 50)  # the project's one percentile
                print(f"{name} {root.name} {mode}: n={len(records)} exact {exact:.3f} "
                      f"edit_sim {similarity:.3f} latency p50 {latency:.0f} ms", flush=True)  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
