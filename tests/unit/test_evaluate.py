"""The accuracy evaluation without a model: holes, metrics, holdout, HumanEval harness, the command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from slm_lsp.evaluation import command as evaluate
from slm_lsp.fake_backend import FakeBackend
from slm_lsp.config import IndexConfig
from slm_lsp.engine import Completion
from slm_lsp.evaluation import holes, humaneval, metrics, repo
from slm_lsp.evaluation.runner import eval_config
from slm_lsp.templates import QWEN

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MINI = FIXTURES / "humaneval_mini.jsonl"

PYTHON = '''import os


def load(path):
    """Read a file."""
    with open(path) as f:
        data = f.read()
    return data.strip()


def count(items, wanted):
    total = 0
    for item in items:
        if item == wanted:
            total += 1
            print("found", item)
    return total


class Store:
    limit = 10

    def __init__(self, root):
        self.root = root
        self.items = []

    def add(self, item):
        if len(self.items) >= self.limit:
            raise ValueError("full")
        self.items.append(os.path.join(self.root, item))
'''

JAVASCRIPT = """function area(w, h) {
  const a = w * h;
  return a;
}

for (const x of [1, 2, 3]) {
  console.log(x);
  console.log(x * 2);
}
"""


def fake_factory(config):
    return FakeBackend(), QWEN, "fake"


# --- holes ---------------------------------------------------------------------


def test_every_kind_is_found_and_filling_the_expected_text_restores_the_file():
    found = holes.find_holes("pkg/store.py", "python", PYTHON)
    assert all(found[kind] for kind in holes.KINDS)
    for kind, candidates in found.items():
        for hole in candidates:
            assert hole.kind == kind
            restored = holes.fill(hole, hole.expected)
            assert [ln.rstrip() for ln in restored.split("\n")] == [ln.rstrip() for ln in PYTHON.split("\n")]
            line = hole.document.split("\n")[hole.line]
            assert hole.document[hole.offset - hole.character : hole.offset] == line[: hole.character]


def test_kinds_match_their_definitions():
    found = holes.find_holes("pkg/store.py", "python", PYTHON)
    lines = {h.expected for h in found["line"]}
    assert {"total = 0", "return total", "limit = 10", "self.root = root"} <= lines
    assert all("\n" not in h.expected for h in found["line"] + found["rest-of-line"])
    rest = found["rest-of-line"]
    assert rest and all(h.character > 0 for h in rest)
    assert all(not h.document.split("\n")[h.line][: h.character].isspace() for h in rest)
    blocks = {h.expected for h in found["block"]}
    assert 'total += 1\n            print("found", item)' in blocks
    bodies = {h.expected for h in found["function-body"]}
    assert "with open(path) as f:\n        data = f.read()\n    return data.strip()" in bodies  # docstring kept
    assert all(2 <= h.expected.count("\n") + 1 <= 10 for h in found["function-body"])
    assert all(2 <= h.expected.count("\n") + 1 <= 8 for h in found["block"])
    assert not any(h.expected.startswith('"""') for h in found["function-body"])


def test_brace_languages_get_bodies_without_their_braces():
    found = holes.find_holes("src/area.js", "javascript", JAVASCRIPT)
    assert [h.expected for h in found["function-body"]] == ["const a = w * h;\n  return a;"]
    assert [h.expected for h in found["block"]] == ["console.log(x);\n  console.log(x * 2);"]
    assert "return a;" in {h.expected for h in found["line"]}


def test_hole_punching_is_deterministic_and_seeded():
    first = holes.find_holes("a.py", "python", PYTHON, seed=3)
    again = holes.find_holes("a.py", "python", PYTHON, seed=3)
    assert first == again
    starts = {tuple(h.character for h in holes.find_holes("a.py", "python", PYTHON, s)["rest-of-line"]) for s in range(6)}
    assert len(starts) > 1  # the seed moves rest-of-line starts


def test_sampling_is_balanced_deterministic_and_fills_the_limit():
    pools = holes.collect([("a.py", "python", PYTHON), ("b.js", "javascript", JAVASCRIPT)], seed=0)
    picked = holes.sample_holes(pools, 8, seed=1)
    assert picked == holes.sample_holes(pools, 8, seed=1)
    counts = {k: sum(h.kind == k for h in picked) for k in holes.KINDS}
    assert counts == {"line": 2, "rest-of-line": 2, "block": 2, "function-body": 2}
    assert picked == sorted(picked, key=lambda h: (h.path, h.line, h.character, h.kind))
    assert len(pools["block"]) == 3 and min(len(v) for v in pools.values()) == 3
    more = holes.sample_holes(pools, 20, seed=1)  # few blocks: the other kinds take the rest
    assert len(more) == 20 and sum(h.kind == "block" for h in more) == 3
    assert len(holes.sample_holes(pools, 1000, seed=1)) == sum(len(v) for v in pools.values())
    assert holes.sample_holes(pools, 0, seed=1) == []


def test_a_file_without_a_grammar_has_no_holes():
    assert all(not v for v in holes.find_holes("notes.txt", "text", "hello\nworld\n").values())


# --- metrics -------------------------------------------------------------------


def test_exact_match_ignores_trailing_whitespace_only():
    assert metrics.exact_match("x = 1  \ny = 2\n\n", "x = 1\ny = 2")
    assert not metrics.exact_match(" x = 1", "x = 1")
    assert not metrics.exact_match("x = 1\ny", "x = 1")


def test_edit_similarity_and_levenshtein():
    assert metrics.levenshtein("kitten", "sitting") == 3
    assert metrics.levenshtein("", "abc") == 3
    assert metrics.edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert metrics.edit_similarity("", "") == 1.0
    assert metrics.edit_similarity("", "abc") == 0.0
    assert metrics.edit_similarity("abc  ", "abc") == 1.0


def test_identifier_f1():
    assert metrics.identifier_f1("foo(bar, baz)", "foo(bar, baz)") == 1.0
    assert metrics.identifier_f1("foo(bar)", "foo(bar, baz)") == pytest.approx(2 * 1.0 * (2 / 3) / (1 + 2 / 3))
    assert metrics.identifier_f1("", "x") == 0.0
    assert metrics.identifier_f1("1 + 2", "3") == 1.0  # no identifiers on either side
    assert metrics.identifier_f1("x x", "x") == pytest.approx(2 / 3)  # multisets


def test_percentile_and_summaries():
    assert metrics.percentile([], 95) is None
    assert metrics.percentile(list(range(1, 101)), 95) == 95
    assert metrics.percentile([5.0], 95) == 5.0
    records = [
        {"mode": "none", "kind": "line", "exact": True, "empty": False, "edit_similarity": 1.0, "latency_ms": 10},
        {"mode": "none", "kind": "block", "exact": False, "empty": True, "edit_similarity": 0.0, "latency_ms": 30},
        {"mode": "repo", "kind": "line", "exact": True, "empty": False, "edit_similarity": 0.5, "latency_ms": 20},
    ]
    grouped = metrics.group_summaries(records, ("mode", "kind"), ("exact", "empty"), ("edit_similarity",))
    assert grouped["none"]["all"] == {
        "n": 2, "exact": 0.5, "empty": 0.5, "edit_similarity": 0.5, "latency_mean_ms": 20.0, "latency_p95_ms": 30.0
    }  # fmt: skip
    assert grouped["none"]["line"]["n"] == 1 and grouped["repo"]["line"]["edit_similarity"] == 0.5


def test_paired_differences_against_the_baseline_mode():
    def rec(mode, line, kind, sim):
        return {"mode": mode, "path": "a.py", "line": line, "character": 0, "kind": kind, "edit_similarity": sim}

    records = [rec("none", 1, "line", 0.5), rec("none", 2, "block", 0.5), rec("none", 3, "block", 0.2)]
    records += [rec("repo", 1, "line", 1.0), rec("repo", 2, "block", 0.25), rec("repo", 3, "block", 0.2)]
    result = metrics.paired(records, "none", "repo", "edit_similarity")
    assert result["line"] == {"n": 1, "delta": 0.5, "stderr": 0.0, "better": 1, "worse": 0}
    assert result["block"]["delta"] == -0.125 and result["block"]["worse"] == 1
    assert result["all"]["n"] == 3 and result["all"]["delta"] == pytest.approx(0.0833, abs=1e-4)
    assert result["all"]["stderr"] == pytest.approx(0.2205, abs=1e-3)


def test_scores_of_a_hole_use_the_first_line_for_single_line_kinds():
    hole = holes.find_holes("a.py", "python", PYTHON)["line"][0]
    completion = Completion(hole.expected + "\nextra = 1", "model", "stop", latency_ms=12.0)
    record = repo.score(hole, completion, "none", original_errors=0)
    assert record["exact"] and record["overlong"] and record["parses"]
    broken = repo.score(hole, Completion("def (", "model", "stop"), "none", original_errors=0)
    assert not broken["exact"] and not broken["parses"] and not broken["empty"]


# --- holdout and index ---------------------------------------------------------


def make_repo(root: Path, n: int = 10) -> None:
    for i in range(n):
        path = root / "pkg" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(PYTHON.replace("Store", f"Store{i}"))
    (root / "README.md").write_text("# not source\n")
    (root / "pkg" / "we[ird]*.py").write_text("x = 1\n")


def test_holdout_is_deterministic_by_path_hash(tmp_path):
    make_repo(tmp_path)
    paths = repo.source_files(tmp_path)
    assert "README.md" not in paths and len(paths) == 11
    first = repo.split_holdout(paths, 0.3, seed=7)
    assert first == repo.split_holdout(list(reversed(paths)), 0.3, seed=7)
    assert set(first.held_out) | set(first.indexed) == set(paths) and not set(first.held_out) & set(first.indexed)
    assert all(repo.path_fraction(p, 7) < 0.3 for p in first.held_out)
    assert repo.split_holdout(paths, 0.0, seed=7).held_out == ()
    assert len(repo.split_holdout(paths, 1e-9, seed=7).held_out) == 1  # at least one when asked for any
    assert {repo.split_holdout(paths, 0.3, seed=s).held_out for s in range(5)} != {first.held_out}


def test_the_index_leaves_out_exactly_the_held_out_files(tmp_path):
    make_repo(tmp_path / "repo")
    root = tmp_path / "repo"
    paths = repo.source_files(root)
    held = ("pkg/mod1.py", "pkg/we[ird]*.py")
    holdout = repo.Holdout(held, tuple(p for p in paths if p not in held))
    index = repo.build_index(root, holdout, tmp_path / "store", IndexConfig())
    assert set(holdout.indexed) <= set(index.files())  # and README.md: the index reads text files too
    assert not set(holdout.held_out) & set(index.files())


# --- HumanEval -----------------------------------------------------------------


def test_load_sample_and_position():
    problems = humaneval.load(MINI)
    assert [p.entry_point for p in problems] == ["add", "count_up"]
    assert humaneval.sample(problems, None, 0) == problems
    assert humaneval.sample(problems, 1, 0) == humaneval.sample(problems, 1, 0)
    second = problems[1]
    assert second.whole_lines
    pos = humaneval.position(second)
    lines = pos.document.text.split("\n")
    assert (pos.line, pos.character) == (2, 0) and lines[2] == "" and lines[3] == second.suffix.split("\n")[0]


def test_data_files_are_found_by_name_or_given_directly(tmp_path, monkeypatch):
    shutil.copy(MINI, tmp_path / "HumanEval-SingleLineInfilling.jsonl")
    assert humaneval.data_file(tmp_path, "single-line").name == "HumanEval-SingleLineInfilling.jsonl"
    assert humaneval.data_file(MINI, "multi-line") == MINI
    with pytest.raises(FileNotFoundError):
        humaneval.data_file(tmp_path, "random-span")
    monkeypatch.setenv(humaneval.ENV_DIR, str(tmp_path))
    assert humaneval.default_data_dir() == tmp_path


def test_execution_passes_fails_and_times_out():
    add, count_up = humaneval.load(MINI)
    assert humaneval.execute(humaneval.program(add, add.middle.rstrip("\n"))).passed
    assert humaneval.execute(humaneval.program(count_up, "    for i in range(n + 1):")).status == "passed"
    wrong = humaneval.execute(humaneval.program(add, "    return a - b"))
    assert wrong.status == "failed" and "AssertionError" in wrong.detail
    assert humaneval.execute(humaneval.program(add, "    return a +")).status == "failed"
    slow = humaneval.execute(humaneval.program(add, "    while True: pass"), timeout_s=1.0)
    assert slow == humaneval.Outcome(False, "timeout")


ENV_KEYS = ("PATH", "HOME", "TMPDIR", "LANG", "PYTHONDONTWRITEBYTECODE", "LC_CTYPE")


def test_candidates_run_isolated():
    probe = "import os\nassert os.getcwd() == os.environ['TMPDIR']\nassert set(os.environ) <= set(%r)\n" % (ENV_KEYS,)
    if humaneval.network_isolation():  # a new network namespace: loopback only (nothing is contacted)
        probe += "devices = open('/proc/net/dev').read().split('\\n')[2:]\n"
        probe += "assert [d.split(':')[0].strip() for d in devices if d.strip()] == ['lo'], devices\n"
    assert humaneval.execute(probe, timeout_s=5).status == "passed"


# --- the command ---------------------------------------------------------------


def test_repo_command_with_the_fake_backend(tmp_path, capsys):
    make_repo(tmp_path / "repo")
    out = tmp_path / "report.json"
    argv = ["--repo", str(tmp_path / "repo"), "--limit", "8", "--holdout-fraction", "0.3", "--seed", "1"]
    argv += ["--json", str(out)]
    assert evaluate.main(argv, factory=fake_factory) == 0
    report = json.loads(out.read_text())
    assert report["holes"] == 8 and report["model"] == "fake"
    assert set(report["summary"]) == {"none", "repo"}
    assert report["summary"]["none"]["all"]["n"] == 8
    assert report["indexed_files"] == report["source_files"] - report["held_out_files"] + 1  # + README.md
    assert {r["mode"] for r in report["records"]} == {"none", "repo"}
    assert report["paired"]["repo-vs-none"]["all"]["n"] == 8
    assert any(r["context_chars"] for r in report["records"] if r["mode"] == "repo")
    assert "none all" in capsys.readouterr().out
    again = tmp_path / "again.json"
    assert evaluate.main(argv[:-2] + ["--json", str(again)], factory=fake_factory) == 0
    strip = lambda rs: [{k: v for k, v in r.items() if k != "latency_ms"} for r in rs]  # noqa: E731
    assert strip(json.loads(again.read_text())["records"]) == strip(report["records"])


def test_adapter_mode_runs_the_last_mode_again_paired(tmp_path, capsys):
    """--adapter: the same holes and retrieval with the adapter's model; its paired difference is reported."""
    make_repo(tmp_path / "repo")
    adapter = tmp_path / "a.gguf"
    adapter.write_bytes(b"GGUF")
    loaded = []

    def factory(config):  # the "adapter" model answers nothing: every exact match is lost
        loaded.append(config.model.adapter)
        return (FakeBackend({"<|fim_middle|>": ""}) if config.model.adapter else FakeBackend()), QWEN, "fake"

    out = tmp_path / "report.json"
    argv = ["--repo", str(tmp_path / "repo"), "--limit", "8", "--adapter", str(adapter), "--json", str(out)]
    assert evaluate.main(argv, factory=factory) == 0
    assert loaded == ["", str(adapter)]
    report = json.loads(out.read_text())
    assert set(report["summary"]) == {"none", "repo", "repo+adapter"}
    base = [r for r in report["records"] if r["mode"] == "repo"]
    tuned = [r for r in report["records"] if r["mode"] == "repo+adapter"]
    assert [(r["path"], r["line"], r["character"]) for r in base] == [(r["path"], r["line"], r["character"]) for r in tuned]
    assert [r["context_chars"] for r in base] == [r["context_chars"] for r in tuned]  # the same retrieval
    exact = report["paired"]["repo+adapter-vs-repo exact"]["all"]
    assert exact["n"] == 8 and exact["delta"] == -sum(r["exact"] for r in base) / 8 and exact["better"] == 0
    assert "repo+adapter-vs-repo edit_similarity" in report["paired"]
    assert "repo+adapter-vs-repo exact:" in capsys.readouterr().out
    assert evaluate.main(argv[:-4], factory=factory) == 0  # no adapter: no third mode
    assert evaluate.main(["--repo", str(tmp_path / "repo"), "--adapter", str(tmp_path / "none.gguf")], factory=factory) == 2


def test_baseline_reuses_the_modes_without_the_adapter_after_a_recheck(tmp_path, capsys, monkeypatch):
    """--baseline: the earlier report's records for the base modes, its first holes completed again."""
    make_repo(tmp_path / "repo")
    adapter = tmp_path / "a.gguf"
    adapter.write_bytes(b"GGUF")
    backends = []

    def factory(config, base=None):
        backend = FakeBackend({"<|fim_middle|>": ""}) if config.model.adapter else (base or FakeBackend())
        backends.append(backend)
        return backend, QWEN, "fake"

    first, second = tmp_path / "first.json", tmp_path / "second.json"
    argv = ["--repo", str(tmp_path / "repo"), "--limit", "12", "--adapter", str(adapter)]
    assert evaluate.main(argv + ["--json", str(first)], factory=factory) == 0
    monkeypatch.setattr(repo, "RECHECK", 3)
    backends.clear()
    assert evaluate.main(argv + ["--baseline", str(first), "--json", str(second)], factory=factory) == 0
    earlier, report = json.loads(first.read_text()), json.loads(second.read_text())
    assert len(backends[0].calls) == 2 * 3  # modes none and repo: three holes each, the rest reused
    assert len(backends[1].calls) == 12  # the adapter's mode always runs
    assert report["reused"] == {"report": str(first), "rechecked": 3, "holes": {"none": 9, "repo": 9}}
    strip = lambda rs: [{k: v for k, v in r.items() if k != "latency_ms"} for r in rs]  # noqa: E731
    assert strip(report["records"]) == strip(earlier["records"])
    assert report["summary"]["repo"]["all"]["exact"] == earlier["summary"]["repo"]["all"]["exact"]
    assert report["paired"]["repo+adapter-vs-repo exact"] == earlier["paired"]["repo+adapter-vs-repo exact"]

    # a model that now answers otherwise: the recheck finds it and nothing is reused
    capsys.readouterr()
    changed = lambda config: factory(config, FakeBackend({"": "x = 0"}))  # noqa: E731
    assert evaluate.main(argv + ["--baseline", str(first)], factory=changed) == 2
    assert "differ from the earlier report" in capsys.readouterr().err
    renamed = lambda config: (factory(config)[0], QWEN, "other")  # noqa: E731
    assert evaluate.main(argv + ["--baseline", str(first)], factory=renamed) == 2
    assert "is for model 'fake', not 'other'" in capsys.readouterr().err
    # other settings, another repository, no records, no adapter: refused before any model loads
    backends.clear()
    for bad in (["--max-lines", "3"], ["--seed", "2"], ["--modes", "repo"]):
        assert evaluate.main(argv + bad + ["--baseline", str(first)], factory=factory) == 2
        assert "other settings" in capsys.readouterr().err
    summary_only = tmp_path / "summary.json"
    summary_only.write_text(json.dumps({k: v for k, v in earlier.items() if k != "records"}))
    assert evaluate.main(argv + ["--baseline", str(summary_only)], factory=factory) == 2
    assert "no per-hole records" in capsys.readouterr().err
    assert evaluate.main(argv[:-2] + ["--baseline", str(first)], factory=factory) == 2
    assert "takes --repo and --adapter" in capsys.readouterr().err
    assert backends == []


def test_a_baseline_of_other_holes_is_refused(tmp_path):
    make_repo(tmp_path / "repo")
    chosen = repo.punch(tmp_path / "repo", repo.source_files(tmp_path / "repo"), 4, 0)
    records = [{f: getattr(h, f) for f in repo.HOLE_FIELDS} for h in chosen]
    repo.same_holes(records, chosen, "repo")
    with pytest.raises(repo.BaselineMismatch, match="3 holes"):
        repo.same_holes(records[:3], chosen, "repo")
    moved = [dict(records[0], line=records[0]["line"] + 1)] + records[1:]
    with pytest.raises(repo.BaselineMismatch, match="hole 0"):
        repo.same_holes(moved, chosen, "repo")


def test_humaneval_command_with_the_fake_backend(tmp_path, capsys):
    out = tmp_path / "he.json"
    argv = ["--", "--humaneval", "single-line", "--data-dir", str(MINI), "--json", str(out), "--summary-only"]
    assert evaluate.main(argv, factory=fake_factory) == 0
    report = json.loads(out.read_text())
    assert "records" not in report
    assert report["summary"]["n"] == 2
    assert report["summary"]["passed"] == 0.5  # "return a + b" passes; "return n" breaks count_up
    assert "pass@1" in capsys.readouterr().out


def test_bad_arguments_are_reported(tmp_path, capsys):
    assert evaluate.main(["--repo", str(tmp_path / "missing")], factory=fake_factory) == 2
    assert evaluate.main(["--repo", str(tmp_path), "--modes", "none,web"], factory=fake_factory) == 2
    assert evaluate.main(["--humaneval", "single-line", "--data-dir", str(tmp_path)], factory=fake_factory) == 2
    with pytest.raises(SystemExit):
        evaluate.main([], factory=fake_factory)


def test_eval_config_turns_the_cache_off_and_raises_the_deadline():
    config = eval_config(deadline_ms=12345, max_tokens=64)
    assert not config.cache.enable and config.completion.explicit_deadline_ms == 12345
    assert config.completion.max_tokens == 64 and not config.model.warmup


def test_the_evaluation_completes_documents_with_their_tree_as_the_server_does() -> None:
    """The server's documents carry the document layer's tree (retrieval and the file
    context read it); the evaluation's must take the same path."""
    hole = holes.Hole("a.py", "python", "line", 1, 4, 14, "def f(x):\n    \n", "return x")
    doc = repo.hole_document(hole)
    assert doc.tree is not None and doc.tree.root_node.type == "module"
    problem = humaneval.Problem("HumanEval/0", "def f(x):\n    ", "\n", "return x", "", "f")
    assert humaneval.position(problem).document.tree is not None
