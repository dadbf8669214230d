"""``python -m slm_lsp``, with every llama.cpp decode call timed: bench/latency.py starts the server so.

    SLM_BENCH_PROBE=OUT.txt python bench/server_probe.py [slm-lsp arguments]

Wraps ``llama_cpp._internals.LlamaContext.decode`` before the server starts:
every batch of tokens any llama.cpp context evaluates goes through it
(``Llama.eval`` and slm-lsp's own contexts alike). Appends one line per call to
OUT: ``start end tokens kind`` (``time.monotonic()`` seconds, the same clock as
the benchmark's). kind is ``g``, a generated token, when the first caller
outside llama_cpp that is not itself named ``eval`` or ``decode`` has
"generat" in its name (``LlamaBackend._generate``), else ``p``, prompt
evaluation. The first line is ``# slm_lsp <path of the slm_lsp package in
use>``. Runs the server unchanged otherwise; without SLM_BENCH_PROBE, or with
the fake backend, nothing is wrapped. Imports nothing from ``bench``, so it
runs against any slm-lsp source tree on PYTHONPATH (``--server-src``).
"""

from __future__ import annotations

import os
import runpy
import sys
import time
from pathlib import Path


def install(out_path: str, context_class: type) -> None:
    """Time context_class.decode(batch) (batch.n_tokens() tokens) into out_path."""
    out = open(out_path, "a", buffering=1)  # one line per call: nothing is lost if the server is killed
    original = context_class.decode

    def timed_decode(self, batch):  # type: ignore[no-untyped-def]
        kind = _kind(sys._getframe(1))
        t0 = time.monotonic()
        try:
            return original(self, batch)
        finally:
            out.write(f"{t0:.6f} {time.monotonic():.6f} {batch.n_tokens()} {kind}\n")

    context_class.decode = timed_decode


def _kind(frame) -> str:  # type: ignore[no-untyped-def]
    """g when the first caller outside llama_cpp, not an eval/decode wrapper, is generating."""
    while frame is not None and (frame.f_code.co_name in ("eval", "decode") or f"{os.sep}llama_cpp{os.sep}" in frame.f_code.co_filename):
        frame = frame.f_back
    return "g" if frame is not None and "generat" in frame.f_code.co_name else "p"


def main() -> None:
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != here]  # bench/ must not shadow anything
    out = os.environ.get("SLM_BENCH_PROBE")
    if out:
        import slm_lsp

        Path(out).write_text(f"# slm_lsp {Path(slm_lsp.__file__).resolve().parent}\n")
        if os.environ.get("SLM_LSP_BACKEND") != "fake":
            from llama_cpp import _internals

            install(out, _internals.LlamaContext)
    sys.argv = ["slm_lsp", *sys.argv[1:]]
    runpy.run_module("slm_lsp", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
