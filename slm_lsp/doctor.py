"""``slm-lsp doctor``: what the server would find, and a clear sentence for each problem."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TextIO

from slm_lsp import __version__, gguf, languages, models, paths, templates
from slm_lsp.config import load
from slm_lsp.session import cache_dir


def doctor(workspace: Path | None = None, out: TextIO = sys.stdout, load_model: bool = True) -> int:
    """Print checks; 0 when everything needed for completion works."""
    problems: list[str] = []

    def ok(label: str, detail: str) -> None:
        out.write(f"  ok    {label}: {detail}\n")

    def bad(label: str, detail: str) -> None:
        out.write(f"  FAIL  {label}: {detail}\n")
        problems.append(detail)

    out.write(f"slm-lsp {__version__} (Python {sys.version.split()[0]})\n")
    config, config_problems = load(workspace, {})
    for p in config_problems:
        bad("config", p)
    path = _check_model(config.model.path or os.environ.get("SLM_LSP_MODEL", ""), ok, bad)
    if path is not None and load_model:
        _check_llama(path, config.model.adapter, ok, bad)
    grammars = [name for name in languages.LANGUAGES if languages.has_grammar(name)]
    missing = [name for name in languages.LANGUAGES if name not in grammars]
    (bad if missing else ok)("grammars", ", ".join(grammars) + (f"; missing: {', '.join(missing)}" if missing else ""))
    cdir = cache_dir(config)
    if config.cache.enable:
        try:
            paths.private_dir(cdir)
            ok("cache", f"{cdir} (limit {config.cache.size_mb} MB)")
        except OSError as exc:
            bad("cache", f"cannot create {cdir}: {exc}")
    else:
        ok("cache", "disabled")
    out.write("all good\n" if not problems else f"{len(problems)} problem(s): {problems[0]}\n")
    return 0 if not problems else 1


def _check_model(setting: str, ok, bad) -> Path | None:
    try:
        t0 = time.monotonic()
        path = models.resolve(setting, out=sys.stderr)
        meta = gguf.read_metadata(path)
        template = templates.choose(meta)
    except (models.ModelError, gguf.GGUFError, templates.TemplateError) as exc:
        bad("model", str(exc))
        return None
    bundled = next((m for m in models.BUNDLED.values() if m.filename == path.name), None)
    verified = ""
    if bundled is not None:
        if models.sha256_file(path) != bundled.sha256:  # the full check, not just the marker
            path.with_name(path.name + ".sha256").unlink(missing_ok=True)
            bad("model", f"{path} is corrupt (sha256 mismatch); run `slm-lsp model` to assemble it again")
            return None
        verified = " sha256 verified"
    ok("model", f"{path} ({path.stat().st_size:,} bytes,{verified or ' user-supplied'}) in {time.monotonic() - t0:.1f}s")
    ok("model info", gguf.describe(meta))
    ok("template", f"{template.name}: {template.prefix} {template.suffix} {template.middle}")
    return path


def _check_llama(path: Path, adapter: str, ok, bad) -> None:
    try:
        import llama_cpp

        from slm_lsp.llama_backend import BackendError, LlamaBackend
    except ImportError as exc:
        bad("llama.cpp", f"llama-cpp-python is not importable ({exc}); reinstall slm-lsp")
        return
    info = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    ok("llama.cpp", f"llama-cpp-python {llama_cpp.__version__}; {info[:160]}")
    try:
        t0 = time.monotonic()
        adapter_path = Path(adapter).expanduser() if adapter else None
        template = templates.choose(gguf.read_metadata(path))
        backend = LlamaBackend(path, template, adapter_path=adapter_path, n_ctx=512)
        backend.close()
        ok("model load", f"loaded in {time.monotonic() - t0:.1f}s" + (f" with adapter {adapter}" if adapter else ""))
    except BackendError as exc:
        bad("model load", str(exc))
