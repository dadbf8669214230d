"""Drive the server's own ``Engine`` over a list of cursor positions.

The engine is built as the server builds it (template and backend from the
backend factory), with the completion cache off and an explicit request's
deadline raised: the evaluation measures accuracy, and records the latency.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from dataclasses import dataclass
from typing import Callable, Sequence, TextIO

from slm_lsp.config import Config
from slm_lsp.engine import Completion, Document, Engine

DEADLINE_MS = 20_000
Retriever = Callable[[Document, object], tuple]


@dataclass(frozen=True)
class Position:
    document: Document
    line: int
    character: int


def eval_config(config: Config | None = None, deadline_ms: int = DEADLINE_MS, **completion) -> Config:
    """The configuration for an evaluation: no cache, a generous explicit deadline, no warm-up."""
    config = config or Config()
    return dataclasses.replace(
        config,
        completion=dataclasses.replace(config.completion, explicit_deadline_ms=deadline_ms, **completion),
        cache=dataclasses.replace(config.cache, enable=False),
        model=dataclasses.replace(config.model, warmup=False),
    )


def build_engine(config: Config, factory: Callable | None = None) -> tuple[Engine, str]:
    """An engine with the real backend (or `factory`'s) and no cache; (engine, model name)."""
    if factory is None:
        from slm_lsp.session import default_backend_factory as factory
    backend, template, name = factory(config)
    return Engine(config, template, backend=backend, cache=None), name


def complete_all(
    engine: Engine,
    positions: Sequence[Position],
    *,
    progress: TextIO | None = sys.stderr,
    label: str = "",
) -> list[Completion]:
    """Complete each position in turn (explicit requests), one event loop for all."""

    async def run() -> list[Completion]:
        results: list[Completion] = []
        started = time.monotonic()
        for i, pos in enumerate(positions, 1):
            results.append(await engine.complete(pos.document, pos.line, pos.character, explicit=True))
            if progress is not None and (i % 10 == 0 or i == len(positions)):
                rate = (time.monotonic() - started) / i
                print(f"\r{label} {i}/{len(positions)} ({rate:.1f} s each)", end="", file=progress, flush=True)
        if progress is not None and positions:
            print(file=progress)
        return results

    return asyncio.run(run())
