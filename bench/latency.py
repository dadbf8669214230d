"""Latency benchmark: a person typing real code, against slm-lsp over LSP.

    python bench/latency.py --repo DIR [--scenario line|block] [--files N] [--lines-per-file K]
        [--seed S] [--json OUT.json] [--plot OUT.png] [--max-seconds T] [--baseline-requests M]
        [--pause-wait S] [--server-src DIR] [--settings JSON] [--warm-restart] [--fake-model]

Seeded picks of N source files of DIR; per file, K code lines retyped one by
one (``line``) or one function body of at most K lines typed top to bottom as
new code (``block``); bench/typist.py makes the keystroke plans, at a human
pace. Every keystroke sends an incremental didChange and an automatic
inlineCompletion request, without waiting for the previous answer; a request
still unanswered at the next key is cancelled with $/cancelRequest, as editors
do. When the person pauses (300-800 ms) and no answer has come by the end of
the pause, they keep waiting for it, up to --pause-wait seconds after their
last key. The server (a subprocess, ``python -m slm_lsp`` through
bench/server_probe.py, which times llama.cpp's decode calls; default settings, a
fresh temporary cache) reports what it did per request through
slm/completionStats.

Then, in the same process and after the server has exited, the naive baseline
(bench/baseline.py) on M of the same document states. Prints JSON (see
bench/README.md for every metric, bench/metrics.py computes them) and
optionally writes it with per-request details and a latency CDF picture.

The parts: bench/typist.py (the keystroke plans), bench/driver.py (playing them
into the server), bench/session.py (the server process), bench/metrics.py,
bench/baseline.py, bench/report.py (machine, settings, picture); this file holds
the command line and the time budget.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `slm_lsp` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import baseline, metrics, report, session, typist
from bench.driver import run_server

PAUSE_WAIT_S = 5.0  # default --pause-wait
BASELINE_RESERVE_S = 20.0  # model load for the baseline, plus BASELINE_EACH_S per baseline request
BASELINE_EACH_S = 8.0  # a from-scratch prompt takes 2-8 s on 2 busy cores
WARM_RESERVE_S, WARM_EACH_S = 15.0, 8.0  # time kept for --warm-restart: start-up, then per line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path, required=True, help="repository whose code is typed")
    p.add_argument("--scenario", choices=typist.SCENARIOS, default="line", help="line: retype K lines per file; block: type one function body of <= K lines per file (default line)")
    p.add_argument("--files", type=int, default=5, help="source files to pick (default 5)")
    p.add_argument("--lines-per-file", type=int, default=8, help="lines to type in each file (default 8)")
    p.add_argument("--seed", type=int, default=1, help="picks files, lines and keystroke timing (default 1)")
    p.add_argument("--json", type=Path, help="write the summary and every request here")
    p.add_argument("--plot", type=Path, help="write a latency CDF (PNG), ours vs baseline, here")
    p.add_argument("--max-seconds", type=float, default=540, help="whole run bound; typing stops early to fit (default 540)")
    p.add_argument("--baseline-requests", type=int, default=20, help="document states replayed by the naive baseline (default 20)")
    p.add_argument("--pause-wait", type=float, default=PAUSE_WAIT_S, help=f"after a pause, wait for a pending answer until this long after the key (default {PAUSE_WAIT_S:g}; 0: never)")
    p.add_argument("--server-src", type=Path, help="run the server from this slm-lsp source tree (first on its PYTHONPATH); the benchmark is this one")
    p.add_argument("--settings", type=json.loads, default={}, help='extra initializationOptions as JSON, e.g. \'{"model": {"nThreads": 1}}\' (default: none, the defaults)')
    p.add_argument("--warm-restart", action="store_true", help="then retype the first file on a restarted server that finds the disk cache")
    p.add_argument("--fake-model", action="store_true", help="plumbing check only: the server's fake backend, no baseline")
    args = p.parse_args(argv)
    if args.fake_model:
        args.baseline_requests = 0
    if args.files < 1 or args.lines_per_file < 1 or args.baseline_requests < 0 or args.max_seconds <= 0 or args.pause_wait < 0:
        p.error("--files and --lines-per-file must be >= 1, --baseline-requests and --pause-wait >= 0, --max-seconds > 0")
    if args.server_src is not None and not (args.server_src / "slm_lsp" / "__init__.py").is_file():
        p.error(f"--server-src {args.server_src}: no slm_lsp package there")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = report.effective_config(args)  # fails early on bad --settings
    start, load = time.monotonic(), os.getloadavg()
    end = start + args.max_seconds
    reserve = BASELINE_RESERVE_S + BASELINE_EACH_S * args.baseline_requests if args.baseline_requests else 0.0
    warm_budget = WARM_RESERVE_S + WARM_EACH_S * args.lines_per_file if args.warm_restart else 0.0
    root = args.repo.resolve()
    plans = typist.plan_files(root, args.scenario, args.files, args.lines_per_file, args.seed)
    if not plans:
        print(f"no suitable source files under {root} for scenario {args.scenario}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="slm-bench-") as tmp:
        env = session.server_env(Path(tmp) / "cache", Path(tmp) / "config", args.fake_model, args.server_src, Path(tmp) / "probe.txt")
        server = report.server_settings(args, env, root)
        run = asyncio.run(run_server(args, root, plans, env, end - reserve - warm_budget))
        warm = None
        if args.warm_restart:
            env["SLM_BENCH_PROBE"] = str(Path(tmp) / "probe-warm.txt")
            warm = asyncio.run(run_server(args, root, plans[:1], env, end - reserve))
    ours = metrics.server_summary(run.samples)
    ours["model_work"] = metrics.model_work(run.eval_calls, *(run.typing_s or (0.0, 0.0)), ours["typed_chars"])
    base = baseline.run_baseline(plans, baseline.baseline_states(run.samples, args.baseline_requests), cfg, end) if args.baseline_requests else []
    summary = {"repo": root.name, "repo_rev": report.git_rev(root), "scenario": args.scenario, **ours,
               **baseline.baseline_summary(base, run.samples, ours)}  # fmt: skip
    if warm is not None:
        summary["warm_restart"] = report.warm_summary(warm)
    summary.update(peak_rss_mb=run.peak_rss_mb, files=[p.sf.rel for p in plans], lines_typed=run.lines_typed,
                   stopped_early=run.stopped_early, pause_waited_s=run.waited_s, wall_s=round(time.monotonic() - start, 1),
                   server_messages=run.messages, server_package=run.server_package,
                   machine=report.machine_info(load, cfg, args.server_src), settings=report.settings(args, server))  # fmt: skip
    if args.plot:
        deadline_ms = (server.get("completion") or {}).get("deadline_ms")
        summary["plot_renderer"] = report.plot_latency(args.plot, root.name, run.samples, base, deadline_ms)
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        details = {"requests_detail": [metrics.sample_record(s) for s in run.samples],
                   "baseline_detail": [dataclasses.asdict(b) for b in base], "server_stderr_tail": run.stderr_tail}  # fmt: skip
        args.json.write_text(json.dumps({**summary, **details}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
