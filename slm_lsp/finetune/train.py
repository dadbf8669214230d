"""LoRA training of the completion model on fill-in-the-middle examples.

The base model is read from its GGUF by transformers (dequantized to float32,
bfloat16 on a GPU), peft adds LoRA to every attention and MLP projection, and
a plain loop trains one example per step (gradient accumulation for larger
batches), the loss on the completion tokens only. It runs through
``accelerate``: alone on the CPU or a GPU, or unchanged under ``accelerate
launch`` on several GPUs or nodes (each process takes every n-th example;
the main process writes).

Each step's loss, tokens a second and the time left go to stderr on one line;
the LoRA weights and the optimizer state (never the base model) are saved as a
checkpoint every ``checkpoint_every`` steps and at the end; ``resume`` goes on
from the last checkpoint with the same example order. Training stops cleanly at
``steps``, at the time limit (before a step that would overrun it) or at Ctrl-C.
The learning rate warms up, then decays (cosine) over the steps or the time limit,
whichever ends the run first; a resumed run goes on with the time its checkpoint
had used, so the limit and the decay are the whole run's.
"""

from __future__ import annotations

import math
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence, TextIO

import torch

from slm_lsp import healing
from slm_lsp.evaluation.holes import SINGLE_LINE_KINDS
from slm_lsp.finetune.dataset import Example
from slm_lsp.finetune.settings import Settings
from slm_lsp.paths import private_dir

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
IGNORE = -100  # label of a token that is not learned (the prompt)


@dataclass
class Encoded:
    ids: list[int]
    labels: list[int]
    stop: int = -1  # the index of the learned token where the completion stops (-1: the last learned one)


def encode(tokenizer, example: Example, end_id: int, max_tokens: int) -> Encoded:
    """Prompt tokens (not learned), then the completion's and how it ends (learned).

    The completion ends with what stops the server at that cursor: where it completes
    one line (line mode) the newline after it, where it completes a block (block mode,
    a line after a block opener or an empty line before a dedent) the end token, even
    when the hole is one line. Learned on rich (bench/accuracy.md, Fine-tuning): the end
    token after every single line taught the model to end blocks after their first line
    (function bodies of 4.8 lines completed in 1.35); nothing after a line let it run on
    along the line (`[] = [] = [] ...`); the newline after every single line let a one-line
    hole in block mode run on past its line. A block whose following code dedents ends
    as the base model ends it, flowing on into that code up to where the server stops
    (`dataset.way_out`; bench/accuracy.md, Session 9: the base never puts the end token
    first after a block; Session 10: measured against the end token, within one standard
    error, and bodies run on either way, as training makes the stop itself less likely
    on held-out files). An example without a mode (an older dataset) ends as its kind does.

    The prompt is tokenized on its own, as llama.cpp tokenizes it, and healed as the
    server heals it (`healing.back_off`): a partial word or spaces at its end leave the
    prompt and head the target, tokenized with the completion, so the model learns the
    tokens it generates at that cursor (bench/accuracy.md, Session 8: without it the
    first learned token followed a token the server never shows the model). A long
    prompt is cut from the start."""
    prompt = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
    piece = lambda i: tokenizer.decode([i], clean_up_tokenization_spaces=False).encode()  # noqa: E731
    cut = healing.back_off(prompt, piece, set(tokenizer.added_tokens_decoder))  # the FIM marks among them
    healed = tokenizer.decode(prompt[cut:], clean_up_tokenization_spaces=False) if cut < len(prompt) else ""
    prompt = prompt[:cut]
    stop = None  # where the completion stops, when it is not the last learned token
    if ends_at_newline(example):
        target = tokenizer(healed + example.completion + "\n", add_special_tokens=False)["input_ids"]
    elif example.way_out:
        target = tokenizer(healed + example.completion + example.way_out, add_special_tokens=False)["input_ids"]
        content = tokenizer(healed + example.completion, add_special_tokens=False)["input_ids"]
        stop = next((i for i, (a, b) in enumerate(zip(target, content)) if a != b), len(content))
    else:
        target = tokenizer(healed + example.completion, add_special_tokens=False)["input_ids"] + [end_id]
    prompt = prompt[max(0, len(prompt) + len(target) - max_tokens) :]
    where = -1 if stop is None else len(prompt) + min(stop, len(target) - 1)
    return Encoded(prompt + target, [IGNORE] * len(prompt) + target, where)


def ends_at_newline(example: Example) -> bool:
    """Whether the server stops this completion at its line's end (else at the end token)."""
    if "\n" in example.completion:
        return False
    return example.mode == "line" if example.mode else example.kind in SINGLE_LINE_KINDS


def load_base(model_path: Path, dtype: torch.dtype = torch.float32):
    """(model, tokenizer) from a GGUF file, dequantized by transformers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path.parent, gguf_file=model_path.name)
    model = AutoModelForCausalLM.from_pretrained(model_path.parent, gguf_file=model_path.name, dtype=dtype)
    return model, tokenizer


def add_lora(model, settings: Settings):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=0.0, target_modules=list(TARGETS), bias="none",
        task_type="CAUSAL_LM",
    )  # fmt: skip
    return get_peft_model(model, config)


def lora_state(model) -> dict[str, torch.Tensor]:
    """The LoRA weights only, on the CPU, in float32."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in get_peft_model_state_dict(model).items()}


def example_loss(
    model, item: Encoded, device, prompt_grad: bool = True, end_weight: float = 1.0
) -> tuple[torch.Tensor, int]:
    """Cross-entropy over the learned tokens of one example, and their count: their mean, or
    with `end_weight` the weighted mean where the one at which the completion stops (its
    newline or end token, or the first token of its way out of the block) counts
    `end_weight` times.

    Without `prompt_grad` the prompt runs first without gradients (its keys and values
    kept in the cache) and only the completion is back-propagated: the same loss, a
    truncated gradient (nothing flows through the prompt's keys and values), and on
    long prompts about three times faster."""
    learned = sum(label != IGNORE for label in item.labels)
    split = len(item.ids) - learned - 1  # the last prompt token predicts the first learned one
    if prompt_grad or split < 1:
        logits = model(input_ids=torch.tensor([item.ids], device=device)).logits[0, :-1]
        target = torch.tensor(item.labels[1:], device=device)
        split = 0
    else:
        with torch.no_grad():
            cache = model(input_ids=torch.tensor([item.ids[:split]], device=device), use_cache=True).past_key_values
        rest = torch.tensor([item.ids[split:]], device=device)
        logits = model(input_ids=rest, past_key_values=cache, use_cache=True).logits[0, :-1]
        target = torch.tensor(item.labels[split + 1 :], device=device)
    stop = item.stop - split - 1 if item.stop >= 0 else -1
    return weighted_loss(logits.float(), target, end_weight, stop), learned


def weighted_loss(logits: torch.Tensor, target: torch.Tensor, end_weight: float = 1.0, stop: int = -1) -> torch.Tensor:
    """The mean cross-entropy over the positions whose target is learned, the one at `stop`
    (-1: the last learned one) weighted `end_weight`."""
    losses = torch.nn.functional.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none")
    weights = (target != IGNORE).to(losses.dtype)
    if end_weight != 1.0 and weights.any():
        weights[stop if stop >= 0 else int(weights.nonzero()[-1])] = end_weight
    return (losses * weights).sum() / weights.sum().clamp(min=1.0)


@torch.no_grad()
def mean_loss(model, items: Sequence[Encoded], device) -> float:
    """The token-weighted loss over examples (validation)."""
    model.eval()
    total, count = 0.0, 0
    for item in items:
        loss, n = example_loss(model, item, device)
        total, count = total + float(loss) * n, count + n
    model.train()
    return total / max(count, 1)


def learning_rate(settings: Settings, step: int, elapsed_s: float) -> float:
    """The rate for optimizer step `step` (0-based): a linear warm-up, then a cosine decay to
    `final_lr` over the run, its progress the larger of steps done and time used (a run
    that stops at its time limit ends at the low rate, as one that stops at `steps`)."""
    warm = min(1.0, (step + 1) / max(settings.warmup_steps, 1))
    progress = elapsed_s / (settings.minutes * 60) if settings.minutes > 0 else 0.0
    if settings.steps:
        progress = max(progress, step / settings.steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return settings.learning_rate * warm * (settings.final_lr + (1 - settings.final_lr) * cosine)


def order(n: int, step: int, seed: int) -> int:
    """The example for a global position: a fresh seeded permutation every pass."""
    rounds, index = divmod(step, n)
    permutation = list(range(n))
    random.Random(seed * 1_000_003 + rounds).shuffle(permutation)
    return permutation[index]


def checkpoints(directory: Path) -> list[Path]:
    return sorted(directory.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]))


def save_checkpoint(
    directory: Path, step: int, model, optimizer, settings: Settings, keep: int = 2, elapsed_s: float = 0.0
) -> Path:
    """LoRA weights and optimizer state; written whole, then renamed; the oldest beyond `keep` removed."""
    private_dir(directory)
    path = directory / f"step-{step}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "lora": lora_state(model), "optimizer": optimizer.state_dict(),
                "settings": asdict(settings), "elapsed_s": elapsed_s}, tmp)  # fmt: skip
    os.replace(tmp, path)
    for old in checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, model, optimizer) -> tuple[int, float]:
    """(steps done, training seconds used) of a checkpoint, its weights and optimizer state loaded."""
    from peft import set_peft_model_state_dict

    state = torch.load(path, map_location="cpu", weights_only=True)
    set_peft_model_state_dict(model, state["lora"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"]), float(state.get("elapsed_s", 0.0))


class Progress:
    """One rewritten line on stderr: step, loss, learning rate, tokens a second, elapsed and time left."""

    def __init__(self, total_steps: int, limit_s: float, out: TextIO | None = sys.stderr) -> None:
        self.total, self.limit, self.out = total_steps, limit_s, out
        self.started, self.tokens, self.smoothed = time.monotonic(), 0, math.nan

    def update(self, step: int, done_here: int, loss: float, tokens: int, lr: float = math.nan) -> None:
        self.tokens += tokens
        self.smoothed = loss if math.isnan(self.smoothed) else 0.9 * self.smoothed + 0.1 * loss
        if self.out is None:
            return
        elapsed = time.monotonic() - self.started
        left = self.limit - elapsed
        if self.total:
            left = min(left, elapsed / max(done_here, 1) * (self.total - step))
        of = f"/{self.total}" if self.total else ""
        rate = self.tokens / max(elapsed, 1e-9)
        self.out.write(f"\rstep {step}{of} loss {loss:.3f} (avg {self.smoothed:.3f}) lr {lr:.1e} {rate:.0f} tok/s "
                       f"elapsed {_clock(elapsed)} left {_clock(max(left, 0))}  ")  # fmt: skip
        self.out.flush()

    def finish(self) -> None:
        if self.out is not None:
            self.out.write("\n")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


def train(
    model,
    items: Sequence[Encoded],
    settings: Settings,
    checkpoint_dir: Path,
    *,
    resume: bool = False,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    progress: TextIO | None = sys.stderr,
) -> dict:
    """Train `model` (peft) on `items`; returns what happened (steps, seconds, tokens, stop reason)."""
    from accelerate import Accelerator

    accelerator = Accelerator(gradient_accumulation_steps=settings.accumulate)
    torch.manual_seed(settings.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
    start_step, used_s = 0, 0.0  # used_s: training seconds of the run this one resumes
    found = checkpoints(checkpoint_dir) if resume else []
    if not resume and accelerator.is_main_process:
        for old in checkpoints(checkpoint_dir):  # an earlier run's: kept, they would outrank (and delete) this run's
            old.unlink()
    if found:
        start_step, used_s = load_checkpoint(found[-1], model, optimizer)
        log(f"resuming from step {start_step} ({found[-1].name})")
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    mine = list(items[accelerator.process_index :: accelerator.num_processes]) or list(items)
    limit_s = settings.minutes * 60
    bar = Progress(settings.steps, limit_s - used_s, progress if accelerator.is_main_process else None)
    stop = {"reason": ""}
    previous = signal.signal(signal.SIGINT, lambda *_: stop.update(reason="interrupted"))
    step, started, tokens, step_s = start_step, time.monotonic(), 0, 0.0
    used = lambda: used_s + time.monotonic() - started  # noqa: E731  training seconds of the whole run
    try:
        while not stop["reason"]:
            elapsed = used()
            if settings.steps and step >= settings.steps:
                stop["reason"] = "steps"
            elif elapsed + step_s > limit_s:
                stop["reason"] = "time limit"
            wants_stop, elapsed = _agree(accelerator, bool(stop["reason"]), elapsed)
            if wants_stop:
                stop["reason"] = stop["reason"] or "another process stopped"
                break
            t0 = time.monotonic()
            lr = learning_rate(settings, step, elapsed)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss, step_tokens = _step(accelerator, model, optimizer, mine, step, settings)
            step, tokens = step + 1, tokens + step_tokens
            step_s = time.monotonic() - t0
            bar.update(step, step - start_step, loss, step_tokens, lr)
            if step % settings.checkpoint_every == 0 and accelerator.is_main_process:
                save_checkpoint(checkpoint_dir, step, accelerator.unwrap_model(model), optimizer, settings, elapsed_s=used())
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.finish()
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    if accelerator.is_main_process and step > start_step:
        save_checkpoint(checkpoint_dir, step, unwrapped, optimizer, settings, elapsed_s=used())
    seconds = time.monotonic() - started
    return {"steps": step, "new_steps": step - start_step, "seconds": round(seconds, 1), "tokens": tokens,
            "stopped": stop["reason"], "main": accelerator.is_main_process,
            "device": str(accelerator.device)}  # fmt: skip


def _step(accelerator, model, optimizer, mine: Sequence[Encoded], step: int, settings: Settings) -> tuple[float, int]:
    """One optimizer step over `accumulate` examples: (their mean loss, their tokens)."""
    losses, tokens = [], 0
    for micro in range(settings.accumulate):
        item = mine[order(len(mine), step * settings.accumulate + micro, settings.seed)]
        with accelerator.accumulate(model):
            loss, _ = example_loss(model, item, accelerator.device, settings.prompt_grad, settings.end_weight)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
        losses.append(loss.detach().item())
        tokens += len(item.ids)
    return sum(losses) / len(losses), tokens


def _agree(accelerator, stop: bool, elapsed_s: float) -> tuple[bool, float]:
    """(whether any process wants to stop, the longest time used): all processes leave the
    loop together and step with the same learning rate (their clocks differ)."""
    if accelerator.num_processes == 1:
        return stop, elapsed_s
    value = torch.tensor([1.0 if stop else 0.0, elapsed_s], dtype=torch.float64, device=accelerator.device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value[0] > 0), float(value[1])
