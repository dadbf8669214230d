"""The settings of one fine-tune, with their defaults: the one place both the
command line (command.py) and the training loop (train.py) read them from.

Free of torch, so ``slm-lsp finetune --help`` and its errors work without the
``finetune`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    rank: int = 16  # LoRA rank
    alpha: float = 32.0  # LoRA alpha: the update is scaled by alpha / rank
    learning_rate: float = 2e-4
    steps: int = 0  # optimizer steps; 0: as many as the time limit allows
    minutes: float = 60.0  # time limit for training, a resumed run's time included (loading and validation not)
    accumulate: int = 1  # examples per optimizer step
    checkpoint_every: int = 25  # optimizer steps between checkpoints
    max_tokens: int = 2048  # longer examples lose prompt tokens from the start
    prompt_grad: bool = False  # back-propagate through the prompt too (exact gradient, about 3x slower)
    warmup_steps: int = 10  # linear learning-rate warm-up
    final_lr: float = 0.1  # the learning rate at the end, a fraction of learning_rate (cosine decay; 1: constant)
    # the weight in the loss of the token where a completion stops (newline, end token, way out); 3 halved the
    # function bodies that ran on past their end on anyio (bench/accuracy.md, session 11)
    end_weight: float = 3.0
    seed: int = 0
