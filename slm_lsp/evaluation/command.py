"""slm-lsp eval: the accuracy of the server's completions.

    slm-lsp eval --repo DIR [--holdout-fraction F] [--limit N] [--seed S] [--modes none,repo] [--json OUT]
                 [--adapter ADAPTER.gguf]  (the last mode again with the LoRA adapter, paired)
                 [--baseline REPORT.json]  (the modes without the adapter from an earlier report, rechecked)
    slm-lsp eval --humaneval single-line|multi-line|random-span [--data-dir PATH] [--limit N] [--json OUT]

Both go through the server's ``Engine`` and model (explicit requests, no cache,
a 20 s deadline); see ``slm_lsp.evaluation`` for how holes are made and scored.
Prints a table; ``--json`` writes the summary and every record.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

from slm_lsp.config import Config
from slm_lsp.evaluation import humaneval, repo
from slm_lsp.evaluation.runner import DEADLINE_MS, build_engine, eval_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slm-lsp eval", description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--repo", type=Path, help="a repository: hold out files, punch holes, complete them")
    what.add_argument("--humaneval", choices=sorted(humaneval.BENCHMARKS), help="HumanEval infilling benchmark")
    parser.add_argument("--holdout-fraction", type=float, default=0.2, help="share of source files held out (repo)")
    parser.add_argument("--limit", type=int, default=None, help="holes / problems (repo default: 100; humaneval: all)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the holdout and every sample")
    parser.add_argument("--modes", default="none,repo", help="comma-separated: none (the window only), file (+ the file's imports), repo (+ retrieval)")
    parser.add_argument(
        "--data-dir", type=Path, default=None,
        help=f"HumanEval data folder or file (default ${humaneval.ENV_DIR}, else ../shared/data/humaneval-infilling)",
    )
    parser.add_argument("--deadline-ms", type=int, default=DEADLINE_MS, help="explicit-request deadline")
    parser.add_argument("--max-tokens", type=int, default=None, help="override completion.max_tokens")
    parser.add_argument("--max-lines", type=int, default=None, help="override completion.max_lines")
    parser.add_argument("--adapter", type=Path, default=None, help="repo: the last mode again with this LoRA adapter")
    parser.add_argument(
        "--baseline", type=Path, default=None,
        help="repo: take the modes without the adapter from this earlier --json report (same settings); "
        f"its first {repo.RECHECK} holes are completed again and must agree",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument("--summary-only", action="store_true", help="leave the per-hole records out of --json")
    return parser


def main(argv: list[str] | None = None, factory: Callable | None = None, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv[1:] if argv[:1] == ["--"] else argv)
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    if args.repo is not None and (not modes or set(modes) - set(repo.MODES)):
        print(f"slm-lsp eval: --modes takes {', '.join(repo.MODES)}", file=sys.stderr)
        return 2
    if args.repo is not None and not args.repo.is_dir():
        print(f"slm-lsp eval: not a directory: {args.repo}", file=sys.stderr)
        return 2
    overrides = {k: v for k, v in (("max_tokens", args.max_tokens), ("max_lines", args.max_lines)) if v is not None}
    config = eval_config(Config(), args.deadline_ms, **overrides)
    if args.adapter is not None and (args.repo is None or not args.adapter.is_file()):
        print("slm-lsp eval: --adapter takes an adapter GGUF file, with --repo", file=sys.stderr)
        return 2
    tuned = dataclasses.replace(config, model=dataclasses.replace(config.model, adapter=str(args.adapter or "")))
    try:
        baseline_model, baseline = _baseline(args, config, modes)
    except ValueError as exc:
        print(f"slm-lsp eval: --baseline {args.baseline}: {exc}", file=sys.stderr)
        return 2
    try:
        engine, model = build_engine(config, factory)
        adapter_engine = build_engine(tuned, factory)[0] if args.adapter is not None else None
    except Exception as exc:  # a missing or broken model: say so, no stack trace
        print(f"slm-lsp eval: could not load the model: {exc}", file=sys.stderr)
        return 1
    started = time.monotonic()
    try:
        if args.baseline is not None and baseline_model != model:
            raise repo.BaselineMismatch(f"is for model {baseline_model!r}, not {model!r}")
        report = _run(args, engine, config, modes, adapter_engine, baseline)
    except FileNotFoundError as exc:
        print(f"slm-lsp eval: {exc}", file=sys.stderr)
        return 2
    except repo.BaselineMismatch as exc:
        print(f"slm-lsp eval: --baseline {args.baseline}: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.close()
        if adapter_engine is not None:
            adapter_engine.close()
    report = {"model": model, "command": _command(argv), "settings": _settings(args, config, modes),
              "seconds": round(time.monotonic() - started, 1), **report}  # fmt: skip
    if "reused" in report:
        report["reused"] = {"report": str(args.baseline), "rechecked": min(repo.RECHECK, report["holes"]),
                            "holes": report["reused"]}  # fmt: skip
    print(render(report), file=out)
    if args.json is not None:
        if args.summary_only:
            report = {k: v for k, v in report.items() if k != "records"}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


def _run(
    args: argparse.Namespace, engine, config: Config, modes: tuple[str, ...], adapter_engine=None, baseline=None
) -> dict:
    if args.repo is not None:
        limit = 100 if args.limit is None else args.limit
        return repo.run_repo(
            engine, args.repo, fraction=args.holdout_fraction, limit=limit, seed=args.seed, modes=modes,
            config=config, adapter_engine=adapter_engine, baseline=baseline, recheck=repo.RECHECK,
        )  # fmt: skip
    data_dir = args.data_dir or humaneval.default_data_dir()
    return humaneval.run_humaneval(engine, args.humaneval, data_dir, limit=args.limit, seed=args.seed)


def _settings(args: argparse.Namespace, config: Config, modes: tuple[str, ...]) -> dict:
    c = config.completion
    settings = {"limit": args.limit, "seed": args.seed, "deadline_ms": c.explicit_deadline_ms,
                "max_tokens": c.max_tokens, "max_lines": c.max_lines}  # fmt: skip
    if args.repo is not None:
        settings |= {"adapter": args.adapter.name if args.adapter else ""}
        settings |= {"holdout_fraction": args.holdout_fraction, "modes": list(modes),
                     "retrieval_tokens": config.index.retrieval_tokens, "min_score": config.index.min_score,
                     "file_parts_tokens": config.context.file_parts_tokens}  # fmt: skip
    return settings


def _baseline(args: argparse.Namespace, config: Config, modes: tuple[str, ...]) -> tuple[str, dict[str, list[dict]]]:
    """The earlier report's model and records by mode, if it was run on this repository with these settings.

    Raises ValueError for a report that cannot be reused (unreadable, no records, other settings)."""
    if args.baseline is None:
        return "", {}
    if args.repo is None or args.adapter is None:
        raise ValueError("takes --repo and --adapter (it saves the modes without the adapter)")
    try:
        earlier = json.loads(args.baseline.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"not a readable report ({exc})") from None
    if not isinstance(earlier, dict) or not isinstance(earlier.get("records"), list):
        raise ValueError("has no per-hole records (written with --summary-only?)")
    if earlier.get("repo") != args.repo.resolve().name:
        raise ValueError(f"is for repository {earlier.get('repo')!r}")
    wanted = {k: v for k, v in _settings(args, config, modes).items() if k != "adapter"}
    theirs = earlier.get("settings", {})
    differ = [f"{k} {theirs.get(k)!r} (now {v!r})" for k, v in wanted.items() if theirs.get(k) != v]
    if differ:
        raise ValueError("was run with other settings: " + ", ".join(differ))
    by_mode = {mode: [r for r in earlier["records"] if r.get("mode") == mode] for mode in modes}
    return str(earlier.get("model", "")), {mode: records for mode, records in by_mode.items() if records}


def _command(argv: list[str]) -> str:
    return "slm-lsp eval " + " ".join(a for a in argv if a != "--")


COLUMNS = (
    ("n", "n", "{:d}"), ("exact", "exact", "{:.3f}"), ("edit_similarity", "edit_sim", "{:.3f}"),
    ("identifier_f1", "ident_f1", "{:.3f}"), ("passed", "pass@1", "{:.3f}"), ("parses", "parses", "{:.3f}"),
    ("empty", "empty", "{:.3f}"), ("overlong", "overlong", "{:.3f}"),
    ("latency_mean_ms", "lat_mean", "{:.0f}"), ("latency_p95_ms", "lat_p95", "{:.0f}"),
)  # fmt: skip


def render(report: dict) -> str:
    """A plain-text table of the summary (one row per mode and kind, or one row)."""
    summary = report["summary"]
    rows = [((report["benchmark"],), summary)] if "n" in summary else [
        ((mode, kind), row) for mode, kinds in summary.items() for kind, row in sorted(kinds.items(), key=_kind_order)
    ]  # fmt: skip
    columns = [c for c in COLUMNS if any(c[0] in row for _, row in rows)]
    width = max(len(" ".join(label)) for label, _ in rows)
    lines = [f"{'':<{width}}  " + " ".join(f"{title:>9}" for _, title, _ in columns)]
    for label, row in rows:
        cells = " ".join(f"{fmt.format(row[key]):>9}" for key, _, fmt in columns)
        lines.append(f"{' '.join(label):<{width}}  {cells}")
    for name, groups in report.get("paired", {}).items():
        if "+adapter" in name and "all" in groups:  # the adapter's paired difference, all holes
            d = groups["all"]
            lines.append(f"{name}: {d['delta']:+.4f} ± {d['stderr']:.4f} "
                         f"(n={d['n']}, better {d['better']}, worse {d['worse']})")
    head = f"{report['benchmark']} {report.get('repo', report.get('data', ''))} model={report.get('model', '')}"
    return head + f" ({report.get('seconds', 0)} s)\n" + "\n".join(lines)


def _kind_order(item: tuple[str, dict]) -> int:
    order = ("line", "rest-of-line", "block", "function-body", "all")
    return order.index(item[0]) if item[0] in order else len(order)


if __name__ == "__main__":
    sys.exit(main())
