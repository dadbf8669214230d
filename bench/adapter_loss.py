"""Where a fine-tune's held-out loss fell: the completion's first token, its other tokens, how it ends.

    .venv/bin/python bench/adapter_loss.py --run-dir ~/.local/share/slm-lsp/finetune/<repo>-<hash>

Reads the run's held-out examples (`validation.jsonl`, from files the training
never saw) and its last checkpoint; for the base model and the model with the
LoRA weights, teacher-forced, per group of learned tokens: the mean
cross-entropy and the share of positions where the most likely token is the
right one (what greedy decoding needs). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from slm_lsp import gguf as gguf_meta  # noqa: E402
from slm_lsp import models, templates  # noqa: E402
from slm_lsp.finetune import train  # noqa: E402
from slm_lsp.finetune.dataset import read_examples  # noqa: E402

GROUPS = ("first", "middle", "end", "end-line", "end-block", "way-out", "way-out-first")


def groups(labels: list[int], end_id: int, stop: int = -1) -> dict[str, list[int]]:
    """Positions (into the shifted targets) of the first learned token, the ones between, and the last;
    the last again as `end-line` (a newline: the server completes one line) or `end-block` (the end token).
    A block that flows out of its block (`Example.way_out`, `stop` the index of its way out's first token)
    has no such end: its learned tokens from `stop` on are the `way-out` group, the first of them (where
    the body must stop) again as `way-out-first`."""
    learned = [i - 1 for i, label in enumerate(labels) if label != train.IGNORE]
    if stop >= 0:
        out = [p for p in learned[1:] if p >= stop - 1]
        return {"first": learned[:1], "middle": [p for p in learned[1:] if p < stop - 1], "end": [], "end-line": [],
                "end-block": [], "way-out": out, "way-out-first": out[:1]}  # fmt: skip
    end = learned[-1:]
    block = bool(end) and labels[end[0] + 1] == end_id
    return {"first": learned[:1], "middle": learned[1:-1], "end": end,
            "end-line": [] if block else end, "end-block": end if block else [], "way-out": [], "way-out-first": []}  # fmt: skip


@torch.no_grad()
def measure(model, items: list[train.Encoded], end_id: int) -> dict[str, dict[str, float]]:
    sums = {g: [0.0, 0, 0] for g in GROUPS}  # loss, right, count
    for item in items:
        logits = model(input_ids=torch.tensor([item.ids])).logits[0, :-1].float()
        target = torch.tensor(item.labels[1:])
        losses = torch.nn.functional.cross_entropy(logits, target, ignore_index=train.IGNORE, reduction="none")
        right = logits.argmax(-1) == target
        for name, positions in groups(item.labels, end_id, item.stop).items():
            for p in positions:
                sums[name][0] += float(losses[p])
                sums[name][1] += int(right[p])
                sums[name][2] += 1
    return {g: {"loss": round(s[0] / max(s[2], 1), 4), "top1": round(s[1] / max(s[2], 1), 4), "n": s[2]}
            for g, s in sums.items()}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args()
    model_path = models.resolve("", out=None)
    template = templates.choose(gguf_meta.read_metadata(model_path))
    checkpoint = train.checkpoints(args.run_dir / "checkpoints")[-1]
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    settings = train.Settings(**{k: v for k, v in state["settings"].items() if k in train.Settings.__annotations__})
    base, tokenizer = train.load_base(model_path)
    end_id = tokenizer.convert_tokens_to_ids(template.stop[0])
    items = [train.encode(tokenizer, e, end_id, settings.max_tokens) for e in read_examples(args.run_dir / "validation.jsonl")]
    model = train.add_lora(base, settings)
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(model, state["lora"])
    model.eval()
    with model.disable_adapter():
        before = measure(model, items, end_id)
    after = measure(model, items, end_id)
    print(json.dumps({"checkpoint": checkpoint.name, "examples": len(items), "base": before, "adapter": after}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
