"""The per-token latency cost of a LoRA adapter in llama.cpp, against the same model without it.

    .venv/bin/python bench/adapter_cost.py --adapter ADAPTER.gguf --examples RUN_DIR/validation.jsonl [--n 8]

For each prompt (the fine-tune's held-out examples, prompted as the server
prompts), with and without the adapter, interleaved: the prompt's evaluation
(ms per prompt token) and 32 greedily generated tokens (ms per generated token),
each the median over the prompts. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slm_lsp import models  # noqa: E402
from slm_lsp.finetune.dataset import read_examples  # noqa: E402

GENERATED = 32


def timed(llm, prompt: str) -> tuple[float, float]:
    """(ms per prompt token, ms per generated token) for one prompt, from an empty cache."""
    tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(tokens)
    t1 = time.perf_counter()
    for _ in range(GENERATED):  # the last logits, read as the server's backend reads them
        logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),))
        llm.eval([int(logits.argmax())])
    t2 = time.perf_counter()
    return (t1 - t0) * 1000 / len(tokens), (t2 - t1) * 1000 / GENERATED


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, required=True)
    parser.add_argument("--examples", type=Path, required=True, help="validation.jsonl of a fine-tune run")
    parser.add_argument("--n", type=int, default=8)
    args = parser.parse_args()
    import llama_cpp

    model = models.resolve("", out=None)
    prompts = [e.prompt for e in read_examples(args.examples)][: args.n]
    runs = {}
    for name, lora in (("base", None), ("adapter", str(args.adapter))):
        runs[name] = llama_cpp.Llama(model_path=str(model), lora_path=lora, n_ctx=2048, n_batch=64, logits_all=False,
                                     verbose=False)  # fmt: skip
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for prompt in prompts:
        for name, llm in runs.items():
            found[name].append(timed(llm, prompt))
    report = {name: {"prompt_ms_per_token": round(statistics.median(p for p, _ in rows), 2),
                     "generate_ms_per_token": round(statistics.median(g for _, g in rows), 2)}
              for name, rows in found.items()}  # fmt: skip
    for key in ("prompt_ms_per_token", "generate_ms_per_token"):
        report[f"cost_{key}"] = round(report["adapter"][key] / report["base"][key] - 1, 4)
    report["prompts"] = len(prompts)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
