"""Prompt evaluation speed by tensor type, batch size and thread count.

    flock /tmp/slm-model.lock .venv/bin/python bench/quant.py --types Q8_0,Q5_0,Q4_0,IQ4_NL \\
        --json bench/results/quant.json

The bundled default model (Qwen2.5-Coder-0.5B-Instruct "Q4_K_M": its 896-wide
matrices are Q5_0, since k-quants need rows of 256; ffn_down is Q4_K/Q6_K,
output Q8_0) is requantized by llama.cpp's own quantizer into ``--out-dir``,
once: the files are kept, so ``SLM_LSP_MODEL=<file> slm-lsp eval ...`` can
measure their accuracy afterwards. Then, for every thread count, batch size
and type (the original first), in rounds that interleave the types so a
drifting machine load hits them all alike: load the model as the server does
(``n_batch`` = ``n_ubatch``), evaluate real fill-in-the-middle prompts (a
window of a real file around a middle line, cut to the server's prompt budget:
about 470 tokens) from an empty KV cache, and generate greedily after each.
Prints JSON: per type its file size, per configuration the median prompt
tokens/s and generation ms/token (over prompts and rounds), and every sample.
The run stops starting new measurements after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from slm_lsp import models, prompt, templates  # noqa: E402
from slm_lsp.evaluation.metrics import percentile  # noqa: E402  (the project's one percentile)

SITE = Path(np.__file__).resolve().parents[1]  # the venv's site-packages: real, pinned code
SOURCES = ("pygls/server.py", "pip/_internal/req/req_install.py", "pip/_internal/index/package_finder.py")
ORIGINAL = "original"
BUDGET = prompt.PromptBudget()  # the server's prompt budget (prefix 384, suffix 96 tokens)


def requantize(src: Path, dest: Path, spec: str, threads: int = 0) -> float:
    """Write `src` requantized at `dest`; seconds taken.

    `spec` is a llama.cpp file type (LLAMA_FTYPE_MOSTLY_*, e.g. "Q8_0"), then optionally
    "+regex=TYPE" overrides for the tensors whose names match (GGML_TYPE_*, e.g.
    "Q4_0+token_embd=Q5_0"); a tensor whose type does not change is copied as it is.
    """
    import llama_cpp

    ftype, *overrides = spec.split("+")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype}")
    params.allow_requantize = True
    params.nthread = threads
    rules = [(pattern.encode(), getattr(llama_cpp, f"GGML_TYPE_{t}")) for pattern, t in (o.split("=") for o in overrides)]
    if rules:
        table = (llama_cpp.llama_model_tensor_override * (len(rules) + 1))(*rules, (None, 0))  # NULL-terminated
        params.tt_overrides = ctypes.cast(table, ctypes.POINTER(llama_cpp.llama_model_tensor_override))
    tmp = dest.with_name(dest.name + f".part-{os.getpid()}")
    started = time.monotonic()
    try:
        if llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params)) != 0:
            raise RuntimeError(f"llama_model_quantize to {spec} failed")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return time.monotonic() - started


def real_prompts(tokenize, template: templates.FimTemplate = templates.QWEN) -> list[list[int]]:
    """One FIM prompt per source file: the cursor at the start of its middle line's text."""
    def count(text: str) -> int:
        return len(tokenize(text))

    out = []
    for rel in SOURCES:
        lines = (SITE / rel).read_text().splitlines(keepends=True)
        row = len(lines) // 2
        while not lines[row].strip():
            row += 1
        indent = lines[row][: len(lines[row]) - len(lines[row].lstrip())]
        before = prompt.trim_top("".join(lines[:row]), BUDGET.prefix_tokens, count)
        after = prompt.trim_bottom(lines[row][len(indent):] + "".join(lines[row + 1 :]), BUDGET.suffix_tokens, count)
        out.append(tokenize(template.fim(before, after) + indent))
    return out


def measure(path: Path, prompts: list[list[int]], n_batch: int, n_threads: int, gen_tokens: int) -> dict:
    """Load `path` as the server does; prompt tokens/s and generation ms/token for each prompt."""
    import llama_cpp

    t0 = time.monotonic()
    llm = llama_cpp.Llama(
        model_path=str(path), n_ctx=1024, n_batch=n_batch, n_ubatch=n_batch, n_threads=n_threads,
        n_threads_batch=n_threads, logits_all=False, verbose=False,
    )  # fmt: skip
    load_s = time.monotonic() - t0
    try:
        llm.eval(prompts[0][:n_batch])  # warm-up: page in the weights
        tps, gen_ms = [], []
        for tokens in prompts:
            llm.reset()  # the next eval drops the KV cache from position 0
            t0 = time.perf_counter()
            for i in range(0, len(tokens), n_batch):  # batch by batch, as the backend does
                llm.eval(tokens[i : i + n_batch])
            tps.append(len(tokens) / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for _ in range(gen_tokens):
                logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),))
                llm.eval([int(np.argmax(logits))])
            gen_ms.append((time.perf_counter() - t0) * 1000 / gen_tokens)
    finally:
        llm.close()
    return {"load_s": round(load_s, 2), "prompt_tps": [round(x, 1) for x in tps], "gen_ms": [round(x, 1) for x in gen_ms]}


def prepare(types: list[str], out_dir: Path, threads: int) -> dict[str, dict]:
    """The original and each requantized file (made once): {type: {path, mb, quantize_s}}."""
    original = models.assemble(models.DEFAULT_MODEL)
    files = {ORIGINAL: {"path": original, "quantize_s": 0.0}}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in types:
        dest = out_dir / original.name.replace("q4_k_m", re.sub(r"[^a-z0-9_.]+", "-", name.lower()))
        seconds = None if dest.is_file() else round(requantize(original, dest, name, threads), 1)
        files[name] = {"path": dest, "quantize_s": seconds}  # None: made by an earlier run
    for info in files.values():
        info["mb"] = round(info["path"].stat().st_size / 1e6, 1)
    return files


def run(files: dict[str, dict], prompts, args) -> tuple[list[dict], bool]:
    """Every (round, threads, batch, type) sample until the time bound; (samples, stopped early)."""
    stop_at = time.monotonic() + args.max_seconds
    samples = []
    for rnd in range(args.rounds):
        for threads in args.threads:
            for batch in args.batches:
                for name, info in files.items():
                    if time.monotonic() >= stop_at:
                        return samples, True
                    result = measure(info["path"], prompts, batch, threads, args.gen_tokens)
                    samples.append({"type": name, "round": rnd, "n_threads": threads, "n_batch": batch, **result})
                    print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
    return samples, False


def summarize(files: dict[str, dict], samples: list[dict]) -> dict:
    """Per type and configuration: median prompt tokens/s, generation ms/token, and the ratio to the original."""
    def cell(name: str, threads: int, batch: int) -> dict:
        rows = [s for s in samples if (s["type"], s["n_threads"], s["n_batch"]) == (name, threads, batch)]
        tps = [x for s in rows for x in s["prompt_tps"]]
        gen = [x for s in rows for x in s["gen_ms"]]
        return {"n": len(tps), "prompt_tps": percentile(tps, 50), "gen_ms_per_token": percentile(gen, 50)}

    configs = sorted({(s["n_threads"], s["n_batch"]) for s in samples})
    out = {}
    for name, info in files.items():
        per = {f"t{t}_b{b}": cell(name, t, b) for t, b in configs}
        for (t, b), key in zip(configs, per):
            base = cell(ORIGINAL, t, b)["prompt_tps"]
            per[key]["vs_original"] = round(per[key]["prompt_tps"] / base, 2) if base else None
        out[name] = {"file": info["path"].name, "mb": info["mb"], "quantize_s": info["quantize_s"], "configs": per}
    return out


def machine() -> dict:
    import llama_cpp

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())  # fmt: skip
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "llama_cpp_python": llama_cpp.__version__,
            "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip()}  # fmt: skip


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--types", default="Q8_0,Q5_0,Q4_0,IQ4_NL", help="llama.cpp file types (LLAMA_FTYPE_MOSTLY_*), each with optional +regex=GGML_TYPE overrides")
    p.add_argument("--out-dir", type=Path, default=models.data_dir() / "bench-quant", help="requantized files (kept)")
    p.add_argument("--batches", type=ints, default=[32, 64, 128], help="n_batch (= n_ubatch) values")
    p.add_argument("--threads", type=ints, default=[1, 2], help="n_threads values")
    p.add_argument("--rounds", type=int, default=1, help="passes over every configuration and type")
    p.add_argument("--gen-tokens", type=int, default=16, help="greedy tokens generated after each prompt")
    p.add_argument("--max-seconds", type=float, default=1800, help="no new measurement starts after this")
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import llama_cpp
    from llama_cpp import _logger

    args = parse(argv)
    started, load_start = time.monotonic(), os.getloadavg()
    _logger.set_verbose(False)  # llama.cpp's own log: errors only
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    files = prepare(types, args.out_dir, max(args.threads))
    vocab = llama_cpp.Llama(str(files[ORIGINAL]["path"]), vocab_only=True, verbose=False)
    prompts = real_prompts(lambda text: vocab.tokenize(text.encode(), add_bos=False, special=True))
    samples, stopped = run(files, prompts, args)
    report = {
        "summary": summarize(files, samples), "prompt_tokens": [len(p) for p in prompts],
        "sources": list(SOURCES), "stopped_early": stopped, "wall_s": round(time.monotonic() - started, 1),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine() | {"loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "samples": samples,
    }  # fmt: skip
    text = json.dumps(report, indent=1)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
