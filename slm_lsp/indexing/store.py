"""The index on disk: one gzip'd JSON file per workspace, versioned, written atomically.

The store lives in ``store_dir / <sha256 of the resolved root>[:16]``; it holds
relative paths only. Anything unreadable (corrupt, truncated, another version)
is deleted and reported as an empty store, never raised.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from ..paths import private_dir
from .model import Chunk, Definition, FileEntry, FileSymbols, Import

FORMAT = "slm-lsp-index"
VERSION = 1  # bump when the file layout or what extraction produces changes
FILE_NAME = "index.json.gz"

log = logging.getLogger(__name__)

Skipped = dict[str, tuple[int, int]]  # files read and rejected (binary...): path -> (mtime_ns, size)


def store_path(root: Path, store_dir: Path) -> Path:
    key = hashlib.sha256(str(root.resolve()).encode("utf-8")).hexdigest()[:16]
    return store_dir / key / FILE_NAME


def _encode_entry(entry: FileEntry) -> list[Any]:
    symbols = entry.symbols
    return [
        entry.path,
        entry.language,
        entry.mtime_ns,
        entry.size,
        [[d.name, d.kind, d.start_line, d.end_line, d.signature, d.doc, d.parent] for d in symbols.definitions],
        [[i.module, list(i.names), i.alias] for i in symbols.imports],
        [[c.start_line, c.end_line, c.text, " ".join(c.tokens)] for c in entry.chunks],
    ]


def _decode_entry(raw: list[Any]) -> FileEntry:
    path, language, mtime_ns, size, definitions, imports, chunks = raw
    path, language = str(path), str(language)
    symbols = FileSymbols(
        path,
        language,
        tuple(
            Definition(str(n), str(k), path, int(s), int(e), str(sig), str(doc), str(parent))
            for n, k, s, e, sig, doc, parent in definitions
        ),
        tuple(Import(str(m), tuple(str(n) for n in names), str(a)) for m, names, a in imports),
    )
    return FileEntry(
        path,
        language,
        int(mtime_ns),
        int(size),
        symbols,
        tuple(Chunk(path, int(s), int(e), str(t), frozenset(str(tok).split())) for s, e, t, tok in chunks),
    )


def save(path: Path, entries: list[FileEntry], skipped: Skipped) -> None:
    """Write atomically (a temporary file renamed over the old one), readable by the user only."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "files": [_encode_entry(e) for e in entries],
        "skipped": [[p, m, s] for p, (m, s) in sorted(skipped.items())],
    }
    data = gzip.compress(json.dumps(payload, separators=(",", ":")).encode("utf-8"), compresslevel=3)
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".index-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> tuple[list[FileEntry], Skipped]:
    """The stored entries, or nothing (and the bad file removed) when it cannot be used."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], {}
    except OSError as exc:
        log.warning("index store unreadable, rebuilding: %s", exc)
        return [], {}
    try:
        payload = json.loads(gzip.decompress(data))
        if payload.get("format") != FORMAT or payload.get("version") != VERSION:
            raise ValueError(f"format {payload.get('format')!r} version {payload.get('version')!r}")
        entries = [_decode_entry(raw) for raw in payload["files"]]
        skipped = {str(p): (int(m), int(s)) for p, m, s in payload["skipped"]}
    except Exception as exc:  # noqa: BLE001 - any damage means: start again
        log.warning("index store discarded, rebuilding: %s", exc)
        path.unlink(missing_ok=True)
        return [], {}
    return entries, skipped
