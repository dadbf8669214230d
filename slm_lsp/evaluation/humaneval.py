"""HumanEval infilling (Bavarian et al. 2022): exact match and pass@1 through the engine.

Data: ``HumanEval-{SingleLine,MultiLine}Infilling.jsonl(.gz)`` and
``HumanEval-RandomSpanInfillingLight.jsonl(.gz)``, each line a problem with
``prompt`` (the code before the hole), ``suffix``, ``canonical_solution`` (the
hole), ``test`` and ``entry_point``. Found in ``--data-dir``, else
``$SLM_LSP_HUMANEVAL_DIR``, else ``../shared/data/humaneval-infilling`` beside
the repository; ``--data-dir`` may also name one such file.

Whole-line holes (the prompt and the solution end with a newline) are posed as
an editor would see them: an empty line between prompt and suffix, the cursor
at its column 0. Other holes: the document is prompt + suffix, the cursor
between them.

Candidates run as ``python -I`` in a fresh temporary directory with a minimal
environment, a time limit, a memory limit and, where ``unshare -n`` works, no
network at all (a new, empty network namespace).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Sequence

from slm_lsp.documents import with_tree
from slm_lsp.engine import Completion, Document, Engine
from slm_lsp.evaluation import metrics
from slm_lsp.evaluation.runner import Position, complete_all

BENCHMARKS = {
    "single-line": "HumanEval-SingleLineInfilling",
    "multi-line": "HumanEval-MultiLineInfilling",
    "random-span": "HumanEval-RandomSpanInfillingLight",
}
ENV_DIR = "SLM_LSP_HUMANEVAL_DIR"
TIMEOUT_S = 10.0
MEMORY_BYTES = 2 << 30
FLAGS = ("exact", "passed", "empty")
SCORES = ("edit_similarity",)
# Runs the candidate file under an address-space limit, as __main__.
_LAUNCHER = (
    "import resource, runpy, sys; "
    "resource.setrlimit(resource.RLIMIT_AS, ({m}, {m})); "
    "runpy.run_path(sys.argv[1], run_name='__main__')"
)


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    suffix: str
    middle: str  # the canonical solution
    test: str
    entry_point: str

    @property
    def whole_lines(self) -> bool:
        return (not self.prompt or self.prompt.endswith("\n")) and self.middle.endswith("\n")


@dataclass(frozen=True)
class Outcome:
    passed: bool
    status: str  # "passed" | "failed" | "timeout"
    detail: str = ""  # the tail of stderr


def default_data_dir() -> Path:
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "humaneval-infilling"


def data_file(data_dir: Path, benchmark: str) -> Path:
    """The benchmark's file in `data_dir` (or `data_dir` itself when it is a file)."""
    if data_dir.is_file():
        return data_dir
    stem = BENCHMARKS[benchmark]
    for name in (stem + ".jsonl.gz", stem + ".jsonl"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(f"no {stem}.jsonl(.gz) in {data_dir} (set --data-dir or ${ENV_DIR})")


def load(path: Path) -> list[Problem]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [
        Problem(r["task_id"], r["prompt"], r["suffix"], r["canonical_solution"], r["test"], r["entry_point"])
        for r in rows
    ]


def sample(problems: Sequence[Problem], limit: int | None, seed: int) -> list[Problem]:
    """All problems, or a seeded sample of `limit` of them kept in file order."""
    if limit is None or limit >= len(problems):
        return list(problems)
    picked = set(random.Random(seed).sample(range(len(problems)), max(0, limit)))
    return [p for i, p in enumerate(problems) if i in picked]


def position(problem: Problem) -> Position:
    """The document and cursor an editor would show for this hole."""
    text = problem.prompt + ("\n" if problem.whole_lines else "") + problem.suffix
    line = problem.prompt.count("\n")
    character = len(problem.prompt) - (problem.prompt.rfind("\n") + 1)
    path = problem.task_id.replace("/", "_") + ".py"
    return Position(with_tree(Document(f"file:///humaneval/{path}", path, text, "python")), line, character)


def program(problem: Problem, completion: str) -> str:
    """The prompt, the completion, the suffix, the tests and the call of the check."""
    middle = completion + ("\n" if problem.whole_lines else "")
    return f"{problem.prompt}{middle}{problem.suffix}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"


@cache
def network_isolation() -> list[str]:
    """``["unshare", "-n"]`` where it works here, else [] (the run then only has a minimal environment)."""
    tool = shutil.which("unshare")
    if tool is None:
        return []
    try:
        ok = subprocess.run([tool, "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return [tool, "-n"] if ok else []


def execute(source: str, timeout_s: float = TIMEOUT_S) -> Outcome:
    """Run a candidate program in isolation; passed when it exits 0 within the time limit."""
    with tempfile.TemporaryDirectory(prefix="slm-humaneval-") as tmp:
        script = Path(tmp) / "candidate.py"
        script.write_text(source, encoding="utf-8")
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        launcher = _LAUNCHER.format(m=MEMORY_BYTES)
        argv = network_isolation() + [sys.executable, "-I", "-c", launcher, str(script)]
        proc = subprocess.Popen(
            argv, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        try:
            _, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return Outcome(False, "timeout")
        detail = err.decode("utf-8", errors="replace")[-300:]
        return Outcome(proc.returncode == 0, "passed" if proc.returncode == 0 else "failed", detail)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except OSError:
        proc.kill()
    proc.communicate()


def score(problem: Problem, completion: Completion, timeout_s: float = TIMEOUT_S) -> dict:
    text = completion.text
    outcome = execute(program(problem, text), timeout_s)
    return {
        "task_id": problem.task_id,
        "expected": problem.middle,
        "completion": text,
        "exact": metrics.exact_match(text, problem.middle),
        "edit_similarity": round(metrics.edit_similarity(text, problem.middle), 4),
        "passed": outcome.passed,
        "status": outcome.status,
        "empty": not text.strip(),
        "latency_ms": round(completion.latency_ms, 1),
        "reason": completion.reason,
        "error": "" if outcome.passed else outcome.detail.strip().rsplit("\n", 1)[-1],
    }


def run_humaneval(engine: Engine, benchmark: str, data_dir: Path, *, limit: int | None, seed: int) -> dict:
    path = data_file(data_dir, benchmark)
    problems = load(path)
    chosen = sample(problems, limit, seed)
    engine.retriever = None
    done = complete_all(engine, [position(p) for p in chosen], label=f"humaneval {benchmark}")
    records = [score(p, c) for p, c in zip(chosen, done)]
    return {
        "benchmark": f"humaneval-{benchmark}",
        "data": path.name,
        "problems": len(problems),
        "sampled": len(chosen),
        "network_isolation": " ".join(network_isolation()) or "none (unshare -n unavailable): minimal env only",
        "summary": metrics.summarize(records, FLAGS, SCORES),
        "records": records,
    }
