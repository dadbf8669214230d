"""slm-lsp finetune: a LoRA adapter for one repository, for the server's ``model.adapter``.

    slm-lsp finetune --repo DIR [--out ADAPTER.gguf] [--minutes 60] [--steps N] [--rank R] [--resume]
    accelerate launch -m slm_lsp.finetune.command --repo DIR ...   (several GPUs or nodes)

Builds the examples (dataset.py), trains (train.py), writes the adapter
(export.py) and checks that llama.cpp with it picks the tokens transformers
picks. The dataset, checkpoints and adapter live in a private per-user
directory (``data_home()/finetune/<repo>-<hash>``, mode 0700), never in the
repository; nothing is uploaded. Prints the loss on held-out examples before
and after, and a JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path

from slm_lsp import gguf as gguf_meta
from slm_lsp import models, paths, templates
from slm_lsp.finetune import dataset
from slm_lsp.finetune.settings import Settings

DEFAULT_EXAMPLES = 2000
DEFAULTS = Settings()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slm-lsp finetune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, required=True, help="the repository to learn from")
    parser.add_argument("--out", type=Path, default=None, help="the adapter GGUF (default: in the run directory)")
    parser.add_argument("--minutes", type=float, default=DEFAULTS.minutes,
                        help="time limit for training (with --resume: of the whole run)")
    parser.add_argument("--steps", type=int, default=DEFAULTS.steps, help="optimizer steps (default: until the time limit)")
    parser.add_argument("--rank", type=int, default=DEFAULTS.rank, help="LoRA rank")
    parser.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default: twice the rank)")
    parser.add_argument("--lr", type=float, default=DEFAULTS.learning_rate, help="learning rate")
    parser.add_argument("--end-weight", type=float, default=DEFAULTS.end_weight,
                        help="loss weight of the token where a completion stops (its newline, its end token, "
                             "or the first token of its way out of the block)")
    parser.add_argument("--accumulate", type=int, default=DEFAULTS.accumulate, help="examples per optimizer step")
    parser.add_argument("--resume", action="store_true", help="go on from the last checkpoint and the same examples")
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, help="training holes to sample")
    parser.add_argument("--validation", type=int, default=16, help="held-out examples whose loss is printed")
    parser.add_argument("--holdout-fraction", type=float, default=0.2, help="as `slm-lsp eval --repo` (not trained on)")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, help="as `slm-lsp eval --repo`")
    parser.add_argument("--check", type=int, default=8, help="examples for the llama.cpp agreement check (0: off)")
    parser.add_argument("--model", default="", help="base model GGUF (default: the bundled model)")
    parser.add_argument("--run-dir", type=Path, default=None, help="where the dataset and checkpoints go")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """The training settings the command line asks for; what it leaves out stays at `Settings`' defaults."""
    return Settings(
        rank=args.rank, alpha=args.alpha if args.alpha is not None else 2.0 * args.rank, learning_rate=args.lr,
        steps=args.steps, minutes=args.minutes, accumulate=args.accumulate, seed=args.seed,
        end_weight=args.end_weight,
    )  # fmt: skip


def run_dir_for(root: Path) -> Path:
    """The private directory of one repository's fine-tune (the path hashed, never stored)."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    return paths.data_home() / "finetune" / f"{root.resolve().name}-{digest}"


def inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = args.repo
    if not root.is_dir():
        return _fail(f"not a directory: {root}", 2)
    run_dir = args.run_dir or run_dir_for(root)
    out = args.out or run_dir / "adapter.gguf"
    for where, what in ((run_dir, "--run-dir"), (out, "--out")):
        if inside(where, root):
            return _fail(f"{what} {where} is inside the repository; adapters and datasets stay out of it", 2)
    try:
        model_path = models.resolve(args.model, out=None)
        template = templates.choose(gguf_meta.read_metadata(model_path))
    except (models.ModelError, gguf_meta.GGUFError, templates.TemplateError) as exc:
        return _fail(f"could not use the model: {exc}", 1)
    try:
        from accelerate import PartialState

        from slm_lsp.finetune import export, train
    except ImportError as exc:
        return _fail(f"{exc.name} is missing: install the extra with pip install -e '.[finetune]'", 1)
    state = PartialState()
    paths.private_dir(run_dir)
    with state.main_process_first():
        train_set, valid_set = _examples(args, root, template, run_dir, state.is_main_process)
    if not train_set:
        return _fail(f"no training examples in {root} (no source files with a grammar outside the held-out ones)", 1)
    _note(f"{len(train_set)} training examples, {len(valid_set)} held-out for the loss; run directory {run_dir}")
    try:
        return _train_and_export(args, model_path, template, run_dir, out, train_set, valid_set, state, train, export)
    finally:
        state.destroy_process_group()  # under `accelerate launch`: gloo's threads left running abort the exit


def _examples(args, root: Path, template, run_dir: Path, main: bool) -> tuple[list, list]:
    train_file, valid_file = run_dir / "dataset.jsonl", run_dir / "validation.jsonl"
    if (args.resume or not main) and train_file.is_file() and valid_file.is_file():
        return list(dataset.read_examples(train_file)), list(dataset.read_examples(valid_file))
    started = time.monotonic()
    split, train_set, valid_set = dataset.build(
        root, template, limit=args.examples, fraction=args.holdout_fraction, seed=args.seed, validation=args.validation,
    )  # fmt: skip
    dataset.write_examples(train_file, train_set)
    dataset.write_examples(valid_file, valid_set)
    (run_dir / "split.json").write_text(json.dumps(asdict(split), indent=1))
    dropped = len(split.duplicates) + len(split.copies)
    _note(f"dataset: {len(split.train)} files trained on, {len(split.held_out)} held out, "
          f"{dropped} duplicates dropped ({time.monotonic() - started:.0f} s)")  # fmt: skip
    return train_set, valid_set


def _train_and_export(args, model_path, template, run_dir, out, train_set, valid_set, state, train, export) -> int:
    import torch

    settings = settings_from(args)
    started = time.monotonic()
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    base, tokenizer = train.load_base(model_path, dtype)
    _note(f"base model read from {model_path.name} in {time.monotonic() - started:.0f} s")
    end_id = tokenizer.convert_tokens_to_ids(template.stop[0])
    encode = lambda e: train.encode(tokenizer, e, end_id, settings.max_tokens)  # noqa: E731
    items, held = [encode(e) for e in train_set], [encode(e) for e in valid_set]
    model = train.add_lora(base, settings).to(state.device)
    summary: dict = {"examples": len(items), "validation_examples": len(held), "settings": asdict(settings)}
    if state.is_main_process and held:
        summary["validation_loss_before"] = round(train.mean_loss(model, held, state.device), 4)
        _note(f"held-out loss before: {summary['validation_loss_before']}")
    summary |= train.train(model, items, settings, run_dir / "checkpoints", resume=args.resume)
    if not state.is_main_process:
        return 0
    if held:
        summary["validation_loss_after"] = round(train.mean_loss(model, held, state.device), 4)
        _note(f"held-out loss after: {summary['validation_loss_after']}")
    arch = str(gguf_meta.read_metadata(model_path, frozenset()).get("general.architecture", ""))
    paths.private_dir(out.parent)
    export.write_adapter(out, {k: v.numpy() for k, v in train.lora_state(model).items()}, settings.alpha, arch)
    summary["adapter"] = str(out)
    if args.check and valid_set:
        summary["agreement"] = _check(model, model_path, out, held[: args.check], export)
    summary["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(summary))
    return 0


def _check(model, model_path: Path, adapter: Path, held, export) -> dict:
    """transformers + peft against llama.cpp + the adapter: the share of equal next-token picks."""
    from slm_lsp.finetune.train import IGNORE

    sequences = [item.ids for item in held]
    starts = [next(i for i, label in enumerate(item.labels) if label != IGNORE) - 1 for item in held]
    model.eval()
    torch_picks, llama_picks = export.torch_argmax(model, sequences), export.llama_argmax(model_path, adapter, sequences)
    found = export.agreement(torch_picks, llama_picks, starts)
    _note(f"llama.cpp + adapter picks the same next token as transformers + peft at {found.same}/{found.positions} "
          f"positions ({100 * found.share:.1f} %)")  # fmt: skip
    return {"positions": found.positions, "same": found.same, "share": round(found.share, 4)}


def _note(message: str) -> None:
    print(f"slm-lsp finetune: {message}", file=sys.stderr, flush=True)


def _fail(message: str, code: int) -> int:
    print(f"slm-lsp finetune: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
