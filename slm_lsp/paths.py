"""Where slm-lsp keeps what it stores: per-user directories, readable by the user only.

One place for the XDG base directories (config, cache, data) and for creating
a directory with mode 0700. Everything the server, the indexer, the model
assembler and the evaluator write lives under these (or under a directory the
user configured, which is created the same way).
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_MODE = 0o700


def _base(variable: str, default: tuple[str, ...]) -> Path:
    value = os.environ.get(variable)
    return Path(value) if value else Path.home().joinpath(*default)


def config_home() -> Path:
    """``$XDG_CONFIG_HOME/slm-lsp``: the user config file."""
    return _base("XDG_CONFIG_HOME", (".config",)) / "slm-lsp"


def cache_home() -> Path:
    """``$XDG_CACHE_HOME/slm-lsp``: completions, the workspace index, hashes, toggles."""
    return _base("XDG_CACHE_HOME", (".cache",)) / "slm-lsp"


def data_home() -> Path:
    """``$SLM_LSP_DATA_DIR`` or ``$XDG_DATA_HOME/slm-lsp``: assembled models, adapters."""
    override = os.environ.get("SLM_LSP_DATA_DIR")
    return Path(override) if override else _base("XDG_DATA_HOME", (".local", "share")) / "slm-lsp"


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) readable by the user only; returns it.

    An existing directory we own loses group and other permissions (it never
    gains any: one the user made read-only stays so); raises OSError when it
    cannot be created (the caller decides what that means). Missing parents are
    made 0700 too (``mkdir(parents=True)`` would give them the umask's mode).
    """
    for directory in reversed([p for p in (path, *path.parents) if not p.exists()]):
        directory.mkdir(exist_ok=True, mode=PRIVATE_MODE)
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a directory")
    try:
        stat = path.stat()
        if stat.st_uid == os.getuid() and stat.st_mode & 0o077:
            path.chmod(stat.st_mode & 0o700)
    except OSError:
        pass
    return path
