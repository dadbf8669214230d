"""Typed configuration: every key, its default and what it does, in one place.

Layers, later wins:
  1. the defaults below
  2. the user file   ``$XDG_CONFIG_HOME/slm-lsp/config.json``
  3. the project file ``.slm-lsp.json`` at the workspace root
  4. the client: ``initializationOptions`` and ``workspace/didChangeConfiguration``
     (section ``slm``), camelCase keys
  5. the environment: ``SLM_LSP_MODEL``, ``SLM_LSP_CACHE_DIR``, ``SLM_LSP_DISABLE_CACHE``

A layer is a nested mapping with the same shape as ``Config``. Unknown keys and
wrong types are reported (one message) and that key keeps its previous value;
the rest of the layer still applies. A change builds a new ``Config``; nothing
mutates one in place.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class CompletionConfig:
    enable: bool = True  # master switch for this workspace
    # An automatic request is answered as soon as its suggestion is complete (or
    # empty as soon as a newer request or an edit supersedes it); this bounds the wait.
    deadline_ms: int = 10000  # longest an automatic request waits for the model
    explicit_deadline_ms: int = 10000  # the same for an explicitly invoked request
    cold_start_tokens: int = 96  # a prompt needing more tokens evaluated than this is first answered from the local window alone (0: off)
    max_tokens: int = 48  # generation cap for one suggestion
    max_lines: int = 8  # a block suggestion is cut to this many lines
    in_comments: bool = False  # also complete inside comments and strings automatically
    speculate: bool = True  # after a line answer, generate the next line for the cache
    languages: tuple[str, ...] = ()  # empty: all; else only these (canonical names, "text" included)
    exclude: tuple[str, ...] = ()  # glob patterns of paths (relative to the workspace) never completed


@dataclass(frozen=True)
class ModelConfig:
    path: str = ""  # GGUF file; empty: the bundled default (Qwen2.5-Coder-0.5B Q4_K_M)
    adapter: str = ""  # LoRA adapter in GGUF form, applied on top of the model
    large_path: str = ""  # model for explicit requests ("large" for the bundled 1.5B)
    n_ctx: int = 2048  # context window used by the server
    n_threads: int = 0  # 0: all physical cores
    n_batch: int = 64  # prompt tokens evaluated between two cancellation checks
    warmup: bool = True  # evaluate the prompt of an opened file before the first request


@dataclass(frozen=True)
class ContextConfig:
    prefix_lines: int = 48  # lines before the cursor in the prompt (window moves in steps)
    suffix_lines: int = 16  # lines after the cursor in the prompt
    window_step: int = 16  # the prefix window moves this many lines at a time (KV reuse)
    file_context: bool = True  # the file beyond the window: its imports, its parts most like the cursor's code
    file_parts_tokens: int = 0  # budget for those parts; 0: off (measured: exact match unchanged, prompts longer)


@dataclass(frozen=True)
class CacheConfig:
    enable: bool = True  # memory + disk cache of completions
    dir: str = ""  # empty: $XDG_CACHE_HOME/slm-lsp
    size_mb: int = 256  # disk cache bound
    memory_entries: int = 2048  # in-memory LRU bound


@dataclass(frozen=True)
class IndexConfig:
    enable: bool = True  # index the workspace and retrieve snippets into the prompt
    exclude: tuple[str, ...] = ()  # extra glob patterns (on top of .gitignore) never indexed
    max_file_kb: int = 512  # files larger than this are not indexed
    max_files: int = 20000  # stop indexing after this many files
    retrieval_tokens: int = 256  # prompt budget for retrieved snippets
    min_score: float = 0.2  # retrieval threshold: nothing scoring lower enters the prompt


@dataclass(frozen=True)
class Config:
    completion: CompletionConfig = field(default_factory=CompletionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    log_level: str = "info"  # debug, info, warning, error
    stats: bool = False  # send an slm/completionStats notification per request (benchmarks)


class ConfigError(ValueError):
    """A configuration layer had keys or values that were ignored."""


def snake_case(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def merge(config: Config, layer: Mapping[str, Any]) -> tuple[Config, list[str]]:
    """Apply one layer; return the new config and one problem string per bad key."""
    problems: list[str] = []
    return _merge_dataclass(config, layer, "", problems), problems


def _merge_dataclass(obj: Any, layer: Mapping[str, Any], where: str, problems: list[str]) -> Any:
    if not isinstance(layer, Mapping):
        problems.append(f"{where or 'configuration'}: expected an object")
        return obj
    fields = {f.name: f for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    for raw_key, value in layer.items():
        key = snake_case(str(raw_key))
        path = f"{where}{raw_key}"
        if key not in fields:
            problems.append(f"{path}: unknown setting")
            continue
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            changes[key] = _merge_dataclass(current, value, path + ".", problems)
            continue
        converted = _convert(current, value)
        if converted is None:
            problems.append(f"{path}: expected {type(current).__name__}, got {value!r}")
            continue
        changes[key] = converted
    return dataclasses.replace(obj, **changes)


def _convert(current: Any, value: Any) -> Any:
    if isinstance(current, bool):
        return value if isinstance(value, bool) else None
    if isinstance(current, int):
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
    if isinstance(current, float):
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if isinstance(current, str):
        return value if isinstance(value, str) else None
    if isinstance(current, tuple):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        return None
    return None


def env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    if environ.get("SLM_LSP_MODEL"):
        layer["model"] = {"path": environ["SLM_LSP_MODEL"]}
    cache: dict[str, Any] = {}
    if environ.get("SLM_LSP_CACHE_DIR"):
        cache["dir"] = environ["SLM_LSP_CACHE_DIR"]
    if environ.get("SLM_LSP_DISABLE_CACHE", "").lower() in {"1", "true", "yes"}:
        cache["enable"] = False
    if cache:
        layer["cache"] = cache
    return layer


def read_file_layer(path: Path) -> tuple[dict[str, Any], list[str]]:
    """A JSON config file as a layer; a missing file is an empty layer."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, ValueError) as exc:
        return {}, [f"{path}: not valid JSON ({exc})"]
    if not isinstance(data, dict):
        return {}, [f"{path}: expected a JSON object"]
    return data, []


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / "slm-lsp" / "config.json"


PROJECT_FILE = ".slm-lsp.json"


def load(
    workspace: Path | None = None,
    client: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Config, list[str]]:
    """All layers in order; returns the config and every problem found."""
    config, problems = Config(), []
    layers: list[tuple[str, Mapping[str, Any]]] = []
    user, errs = read_file_layer(user_config_path())
    problems += errs
    layers.append(("user config", user))
    if workspace is not None:
        project, errs = read_file_layer(workspace / PROJECT_FILE)
        problems += errs
        layers.append((PROJECT_FILE, project))
    layers.append(("client settings", client or {}))
    layers.append(("environment", env_layer(os.environ if environ is None else environ)))
    for name, layer in layers:
        config, errs = merge(config, layer)
        problems += [f"{name}: {e}" for e in errs]
    return config, problems
