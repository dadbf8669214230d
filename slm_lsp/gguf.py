"""A small reader for GGUF file headers: the metadata, without loading the model.

Used to pick the prompt template and by ``slm-lsp doctor``. Large arrays (the
tokenizer's vocabulary) are skipped, except that token strings can be
searched for special tokens. Malformed files raise ``GGUFError``.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

MAGIC = b"GGUF"

# GGUF value types
_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d",
}
_STRING, _ARRAY = 8, 9
_MAX_STRING = 1 << 24


class GGUFError(ValueError):
    """The file is not a readable GGUF model."""


def read_metadata(path: Path, keep_arrays: frozenset[str] = frozenset({"tokenizer.ggml.tokens"})) -> dict[str, Any]:
    """The key/value metadata. Arrays are kept only for the keys in ``keep_arrays``."""
    fix = "Point model.path (or SLM_LSP_MODEL) at a GGUF code model, or leave it empty for the bundled default."
    try:
        with path.open("rb") as f:
            return _read(f, keep_arrays)
    except GGUFError as exc:
        raise GGUFError(f"{path} is not a usable model file: {exc}. {fix}") from exc
    except (OSError, struct.error, UnicodeDecodeError, MemoryError) as exc:
        raise GGUFError(f"{path} is not a readable GGUF file ({exc}); it may be truncated. {fix}") from exc


def _read(f: BinaryIO, keep_arrays: frozenset[str]) -> dict[str, Any]:
    if f.read(4) != MAGIC:
        raise GGUFError("bad magic: not a GGUF file")
    (version,) = struct.unpack("<I", f.read(4))
    if version not in (2, 3):
        raise GGUFError(f"unsupported GGUF version {version}")
    _n_tensors, n_kv = struct.unpack("<QQ", f.read(16))
    if n_kv > 100_000:
        raise GGUFError(f"implausible metadata count {n_kv}")
    meta: dict[str, Any] = {"gguf.version": version}
    for _ in range(n_kv):
        key = _string(f)
        (vtype,) = struct.unpack("<I", f.read(4))
        meta[key] = _value(f, vtype, keep=key in keep_arrays)
    return meta


def _string(f: BinaryIO) -> str:
    (n,) = struct.unpack("<Q", f.read(8))
    if n > _MAX_STRING:
        raise GGUFError(f"implausible string length {n}")
    data = f.read(n)
    if len(data) != n:
        raise GGUFError("truncated file")
    return data.decode("utf-8", errors="replace")


def _value(f: BinaryIO, vtype: int, keep: bool = True) -> Any:
    if vtype in _SCALARS:
        fmt = _SCALARS[vtype]
        data = f.read(struct.calcsize(fmt))
        if len(data) != struct.calcsize(fmt):
            raise GGUFError("truncated file")
        return struct.unpack(fmt, data)[0]
    if vtype == _STRING:
        return _string(f)
    if vtype == _ARRAY:
        (etype,) = struct.unpack("<I", f.read(4))
        (n,) = struct.unpack("<Q", f.read(8))
        if n > 10_000_000:
            raise GGUFError(f"implausible array length {n}")
        if not keep and etype in _SCALARS:
            f.seek(n * struct.calcsize(_SCALARS[etype]), 1)
            return None
        items = [_value(f, etype) for _ in range(n)]
        return items if keep else None
    raise GGUFError(f"unknown metadata type {vtype}")


def describe(meta: dict[str, Any]) -> str:
    """One line for doctor: name, architecture, context length."""
    arch = meta.get("general.architecture", "?")
    name = meta.get("general.name", "?")
    ctx = meta.get(f"{arch}.context_length", "?")
    vocab = meta.get("tokenizer.ggml.tokens")
    n_vocab = len(vocab) if isinstance(vocab, list) else "?"
    return f"{name} ({arch}, context {ctx}, vocabulary {n_vocab})"
