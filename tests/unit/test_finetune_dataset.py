"""Fine-tuning examples: the evaluation's held-out files never trained on, the
index's file filters, deduplication, prompts as the server sends them, no credentials."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from slm_lsp.config import Config
from slm_lsp.engine import Engine
from slm_lsp.evaluation import holes as holemod
from slm_lsp.evaluation import repo
from slm_lsp.evaluation.runner import eval_config
from slm_lsp.finetune import dataset
from slm_lsp.templates import QWEN
from tests.finetune_repo import NOT_SOURCE, PLANTED, planted_repo


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return planted_repo(tmp_path_factory.mktemp("repo"))


@pytest.fixture(scope="module")
def built(root):
    return dataset.build(root, QWEN, limit=400, fraction=0.2, seed=0, validation=12)


@pytest.mark.parametrize("fraction,seed", [(0.2, 0), (0.3, 1), (0.5, 7)])
def test_held_out_files_are_the_evaluations(root, fraction, seed):
    split = dataset.split_files(dataset.read_sources(root), fraction, seed)
    evaluated = repo.split_holdout(repo.source_files(root.resolve()), fraction, seed)
    assert split.held_out == evaluated.held_out and split.held_out
    assert not set(split.train) & set(split.held_out)
    assert set(split.train) | set(split.duplicates) | set(split.copies) == set(evaluated.indexed)


def test_no_example_comes_from_a_held_out_file(root, built):
    split, train, valid = built
    assert train and valid
    assert {e.path for e in train} <= set(split.train)
    assert {e.path for e in valid} <= set(split.held_out)
    held_lines = set()  # every distinctive line of the held-out files: none may reach a training example
    for path in split.held_out:
        held_lines |= {line.strip() for line in (root / path).read_text().splitlines() if "_audit(" in line}
    assert held_lines
    for example in train:
        for line in held_lines:
            assert line not in example.prompt and line not in example.completion, (example.path, line)


def test_duplicates_of_held_out_files_are_not_trained_on(root):
    texts = dataset.read_sources(root)
    held = repo.split_holdout(sorted(texts), 0.2, 0).held_out[0]
    texts["zz_copy.py"] = texts[held].replace("\n", "  \r\n")  # same code, other line endings and trailing spaces
    split = dataset.split_files(texts, 0.2, 0)
    assert "zz_copy.py" in split.copies and "zz_copy.py" not in split.train + split.duplicates
    assert set(split.held_out) == set(repo.split_holdout(sorted(texts), 0.2, 0).held_out)


def test_only_what_the_index_would_read(built):
    split, train, valid = built
    every = split.train + split.held_out + split.duplicates + split.copies
    assert not any(p.startswith("vendor/") or p.endswith("_pb2.py") or ".env" in p for p in every)
    assert "ledger/copy/taxes_copy.py" in split.train and "ledger/taxes.py" in split.duplicates  # same content
    for example in train + valid:
        for marker in NOT_SOURCE:
            assert marker not in example.prompt + example.completion


def test_no_planted_credential_in_examples_or_files(root, built, tmp_path):
    split, train, valid = built
    out = tmp_path / "dataset.jsonl"
    dataset.write_examples(out, train + valid)
    written = out.read_text()
    for secret in PLANTED:
        assert secret not in written
    assert "<secret>" in written  # the trained-on file's token was there, masked
    assert list(dataset.read_examples(out)) == train + valid


def test_prompts_are_what_the_evaluation_sends(root, built):
    """A held-out hole prompted for training equals the prompt of `slm-lsp eval --repo` in its repo mode."""
    split, _, valid = built
    texts = dataset.read_sources(root)
    holes = dataset.sample_holes(texts, split.held_out, 12, 1)
    config = eval_config(Config())
    holdout = repo.split_holdout(repo.source_files(root.resolve()), 0.2, 0)
    index = repo.build_index(root.resolve(), holdout, root.parent / "eval-store", config.index)
    engine = Engine(replace(config, context=replace(config.context, file_context=True)), QWEN, repo_name=root.name)
    engine.retriever = repo.make_retriever(index, config.index)
    expected = {}
    for hole in holes:
        _, prompt = engine.prepare(repo.hole_document(hole), hole.line, hole.character, explicit=True)
        expected[(hole.path, hole.expected)] = prompt.text
    assert {(e.path, e.completion): e.prompt for e in valid}.items() <= expected.items()
    assert any("<|file_sep|>" in e.prompt for e in valid)  # retrieval took part


def test_holes_of_every_kind_the_evaluation_punches(built):
    _, train, _ = built
    kinds = {e.kind for e in train}
    assert {"line", "rest-of-line", "function-body"} <= kinds <= set(holemod.KINDS)
    assert all(e.completion.strip() and "<|fim_middle|>" in e.prompt for e in train)
    assert any("_audit(" in e.completion for e in train)


def test_outputs_stay_out_of_the_repository(root, tmp_path, monkeypatch, capsys):
    from slm_lsp.finetune import command

    monkeypatch.setenv("SLM_LSP_DATA_DIR", str(tmp_path / "data"))
    run_dir = command.run_dir_for(root)
    assert run_dir.parent == tmp_path / "data" / "finetune" and str(root.parent) not in run_dir.name
    before = sorted(p for p in root.rglob("*"))
    assert command.main(["--repo", str(root), "--out", str(root / "adapter.gguf")]) == 2
    assert command.main(["--repo", str(root), "--run-dir", str(root / "ledger" / "run")]) == 2
    assert "inside the repository" in capsys.readouterr().err
    assert sorted(p for p in root.rglob("*")) == before
    assert command.main(["--repo", str(tmp_path / "missing")]) == 2


def test_a_block_flows_out_to_where_the_server_stops_it():
    assert dataset.way_out("\n\n    def next(self):\n        pass\n", "        ") == "\n\n    def"
    assert dataset.way_out("\n    @classmethod\n", "        ") == "\n    @"
    assert dataset.way_out("\n\nclass B:\n", "    ") == "\n\nclass"
    assert dataset.way_out("\n        y = 2\n    def f():\n", "        ") == ""  # the block goes on: the end token
    assert dataset.way_out(" + 1\n    def f():\n", "        ") == ""  # the cursor line goes on
    assert dataset.way_out("\n\n", "        ") == "" and dataset.way_out("", "    ") == ""  # the file ends


def test_block_examples_carry_their_way_out(built):
    _, train, _ = built
    blocks = [e for e in train if e.mode == "block"]
    assert any(e.way_out for e in blocks) and any(not e.way_out for e in blocks)
    assert not any(e.way_out for e in train if e.mode == "line")
    for e in blocks:
        if e.way_out:
            last = e.way_out.rsplit("\n", 1)[1]
            assert e.way_out.startswith("\n") and last.strip() and not e.way_out.endswith((" ", "\n"))


def test_the_command_line_defaults_are_the_settings_defaults():
    from slm_lsp.finetune import command
    from slm_lsp.finetune.settings import Settings

    parse = command.build_parser().parse_args
    assert command.settings_from(parse(["--repo", "r"])) == Settings()
    asked = command.settings_from(parse(["--repo", "r", "--rank", "8", "--end-weight", "1", "--lr", "1e-3"]))
    assert (asked.rank, asked.alpha, asked.end_weight, asked.learning_rate) == (8, 16.0, 1.0, 1e-3)
