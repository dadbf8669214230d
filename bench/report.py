"""The report of bench/latency.py: where and how it ran, the settings in effect, the picture.

What is measured is in bench/metrics.py; this adds the context a result needs to be
compared with another: the commits of the benchmark, the server and the typed
repository, the machine and its load, the settings of the server (asked of the server's
own slm_lsp, which --server-src may point elsewhere) and of the benchmark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import baseline, common, metrics, plot, typist
from bench.driver import ServerRun
from bench.metrics import Sample


def git_rev(path: Path) -> str | None:
    """The short commit of the repository rooted at path (+dirty), or None when path is no repository root."""
    try:
        top = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=10)
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != path.resolve():
            return None
        rev = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode != 0:
        return None
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine_info(load_at_start: tuple[float, float, float], cfg, server_src: Path | None = None) -> dict[str, Any]:
    cpu = next((l.split(":", 1)[1].strip() for l in _read_lines("/proc/cpuinfo") if l.startswith("model name")), None)
    mem = next((int(l.split()[1]) // 1024 for l in _read_lines("/proc/meminfo") if l.startswith("MemTotal")), None)
    try:
        model = baseline.model_path(cfg)
        model_info = {"file": model.name, "mb": round(model.stat().st_size / 2**20, 1)}
    except Exception as exc:
        model_info = {"error": str(exc)}
    try:
        import llama_cpp

        llama_version = llama_cpp.__version__
    except ImportError:
        llama_version = None
    return {
        "cpu": cpu, "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)), "mem_mb": mem,
        "loadavg_start": [round(x, 2) for x in load_at_start], "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0], "llama_cpp_python": llama_version, "model": model_info,
        "slm_lsp_rev": git_rev(Path(__file__).resolve().parent.parent),
        "server_src": str(server_src.resolve()) if server_src else None,
        "server_rev": git_rev(server_src) if server_src else None,
    }  # fmt: skip


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def effective_config(args):
    """The server's settings for this run: defaults plus --settings (as the server merges them)."""
    from slm_lsp.config import Config, merge

    config, problems = merge(Config(), args.settings)
    if problems:
        raise SystemExit("--settings: " + "; ".join(problems))
    return config


def server_settings(args, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """The settings in effect in the server's own slm_lsp (--server-src may be another version), run where it runs."""
    code = ("import dataclasses, json, sys\nfrom slm_lsp.config import Config, merge\n"
            "config, _ = merge(Config(), json.loads(sys.argv[1]))\nprint(json.dumps(dataclasses.asdict(config)))")  # fmt: skip
    try:
        out = subprocess.run([sys.executable, "-c", code, json.dumps(args.settings)], env=env, cwd=cwd,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        cfg = json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return {"error": str(exc)}
    return {k: cfg.get(k) for k in ("completion", "context", "model")}


def settings(args, server: dict[str, Any]) -> dict[str, Any]:
    return {
        "bench": {k: getattr(args, k) for k in ("scenario", "files", "lines_per_file", "seed", "max_seconds", "baseline_requests", "pause_wait")},
        "typing": {"key_ms": [common.KEY_MIN_S * 1000, common.KEY_MAX_S * 1000], "pause_ms": [common.PAUSE_MIN_S * 1000, common.PAUSE_MAX_S * 1000],
                   "pause_p": common.PAUSE_P, "open_pause_ms": typist.OPEN_PAUSE_S * 1000, "pause_wait_ms": args.pause_wait * 1000},
        "initialization_options": {**args.settings, "stats": True},
        "server": server,
        "cache": "fresh temporary directory (memory + disk)",
        "baseline": baseline.SETTINGS,
    }  # fmt: skip


def warm_summary(run: ServerRun) -> dict[str, Any]:
    """The first file retyped by a restarted server that finds the first run's disk cache."""
    out = metrics.server_summary(run.samples)
    keep = ("p50_ms", "p95_ms", "requests", "answered", "cancelled", "cache_hit_rate", "shown_rate", "chars_saved_rate")
    return {"lines_typed": run.lines_typed, **{k: out[k] for k in keep}, "sources": {k: v["count"] for k, v in out["by_source"].items() if v["count"]}}


def plot_latency(path: Path, name: str, samples: list[Sample], base: list[baseline.BaselineSample], deadline_ms: float | None) -> str:
    answered = [s for s in samples if metrics.answered(s) and s.client_ms is not None]
    series = {
        "slm-lsp, answered requests": [s.client_ms for s in answered],
        "slm-lsp, at pauses": [s.client_ms for s in answered if s.at_pause],
        "naive baseline": [b.ms for b in base],
    }
    title = f"slm-lsp inline completion latency while typing, {name} ({len(samples)} requests, {len(samples) - len(answered)} cancelled)"
    return plot.plot_cdf(path, series, title, deadline_ms)
