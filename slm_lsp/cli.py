"""The ``slm-lsp`` command: the server (default) and its helper commands."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
from pathlib import Path

from slm_lsp import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slm-lsp", description="Local code completion language server.")
    parser.add_argument("--version", action="version", version=f"slm-lsp {__version__}")
    parser.add_argument("--tcp", action="store_true", help="serve on TCP (127.0.0.1 only) instead of stdio")
    parser.add_argument("--port", type=int, default=2087, help="TCP port (with --tcp)")
    parser.add_argument("--log-file", default=os.environ.get("SLM_LSP_LOG_FILE", ""), help="write logs here")
    parser.add_argument("--log-level", default=os.environ.get("SLM_LSP_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command")
    doc = sub.add_parser("doctor", help="check the model, grammars and cache; non-zero exit on problems")
    doc.add_argument("--workspace", type=Path, default=None)
    doc.add_argument("--no-load", action="store_true", help="do not load the model into llama.cpp")
    model = sub.add_parser("model", help="assemble and verify the bundled model files")
    model.add_argument("name", nargs="?", default="default", help="default or large")
    index = sub.add_parser("index", help="index a repository (what retrieval uses)")
    index.add_argument("root", type=Path)
    index.add_argument("--store", type=Path, default=None)
    cfg = sub.add_parser("config", help="the settings in effect for a workspace and the layer each came from")
    cfg.add_argument("file", nargs="?", type=Path, default=None, help="a file or directory in the workspace (default: .)")
    cfg.add_argument("--json", action="store_true", help="print JSON for machines")
    ev = sub.add_parser("eval", help="accuracy evaluation (held-out holes or HumanEval infilling)")
    ev.add_argument("args", nargs=argparse.REMAINDER)
    ft = sub.add_parser("finetune", help="train a LoRA adapter on a repository (needs the finetune extra)")
    ft.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["eval"]:  # its own parser: `slm-lsp eval --repo DIR ...` (a leading `--` is fine too)
        from slm_lsp.evaluation.command import main as eval_main

        rest = argv[1:]
        return eval_main(rest[1:] if rest[:1] == ["--"] else rest)
    if argv[:1] == ["finetune"]:  # its own parser, like eval
        from slm_lsp.finetune.command import main as finetune_main

        rest = argv[1:]
        return finetune_main(rest[1:] if rest[:1] == ["--"] else rest)
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_file, args.log_level)
    if args.command == "doctor":
        from slm_lsp.doctor import doctor

        return doctor(args.workspace, load_model=not args.no_load)
    if args.command == "model":
        return _model(args.name)
    if args.command == "index":
        from slm_lsp.indexing.index import index_command

        return index_command(args.root, args.store)
    if args.command == "config":
        from slm_lsp.settings_report import config_command

        return config_command(args.file, machine=args.json)
    if args.command == "eval":
        from slm_lsp.evaluation.command import main as eval_main

        return eval_main(args.args)
    from slm_lsp.server import run

    return run(args.port if args.tcp else None)


def _model(name: str) -> int:
    from slm_lsp import models

    try:
        key = models.ALIASES.get(name, name)
        if key not in models.BUNDLED:
            print(f"unknown model {name!r}; choose one of: {', '.join(models.ALIASES)}", file=sys.stderr)
            return 2
        path = models.assemble(models.BUNDLED[key])
    except models.ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _setup_logging(log_file: str, level: str) -> None:
    from slm_lsp import logs

    atexit.register(logs.setup(log_file, level).flush)  # what is queued is written before the process ends


if __name__ == "__main__":
    sys.exit(main())
