"""Typed configuration: every key, its default, its range and what it does, in one place.

Layers, later wins: (1) the defaults below; (2) the user file
``$XDG_CONFIG_HOME/slm-lsp/config.json``; (3) the project file ``.slm-lsp.json``
at the workspace root; (4) the client's ``initializationOptions`` and
``workspace/didChangeConfiguration`` (section ``slm``, camelCase keys); (5) the
environment (``ENVIRONMENT``). Above them, ``slm.toggle`` turns
``completion.enable`` off or on for one workspace (a file at ``toggle_path``)
until the client's own ``completion.enable`` changes.

These defaults and ranges are the only copy: editor plugins send only what the
user set. Unknown keys, wrong types and values out of range are reported and
that key keeps its previous value; the rest of the layer applies. A change
builds a new ``Config``. ``load_sources`` also says which layer set each value.

Over 300 lines on purpose: the point of this module is that every key, default and
range is in one file (editors, ``slm-lsp config`` and the docs read them from here).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from slm_lsp import paths


def bounded(default: int | float, lo: int | float, hi: int | float | None = None) -> Any:
    """A number setting that must lie in [lo, hi] (no upper bound when hi is None)."""
    return field(default=default, metadata={"range": (lo, hi)})


@dataclass(frozen=True)
class CompletionConfig:
    enable: bool = True  # master switch for this workspace
    # An automatic request is answered as soon as its suggestion is complete (or
    # empty as soon as a newer request or an edit supersedes it); this bounds the wait.
    deadline_ms: int = bounded(10000, 20, 10000)  # longest an automatic request waits for the model
    explicit_deadline_ms: int = bounded(10000, 20, 60000)  # the same for an explicitly invoked request
    cold_start_tokens: int = bounded(96, 0, 32768)  # a prompt needing more tokens evaluated than this is first answered from the local window alone (0: off)
    max_tokens: int = bounded(48, 1, 1024)  # generation cap for one suggestion
    max_lines: int = bounded(8, 1, 100)  # a block suggestion is cut to this many lines
    in_comments: bool = False  # also complete automatically inside comments and strings (an explicit request always does)
    speculate: bool = True  # after a line answer, generate the next line for the cache
    languages: tuple[str, ...] = ()  # empty: all; else only these (canonical names, "text" included)
    exclude: tuple[str, ...] = ()  # glob patterns of paths (relative to the workspace) never completed


@dataclass(frozen=True)
class ModelConfig:
    path: str = ""  # GGUF file; empty: the bundled default (Qwen2.5-Coder-0.5B Q4_K_M)
    adapter: str = ""  # LoRA adapter in GGUF form, applied on top of the model
    large_path: str = ""  # model for explicit requests ("large" for the bundled 1.5B)
    n_ctx: int = bounded(2048, 256, 32768)  # context window used by the server
    n_threads: int = bounded(0, 0, 256)  # 0: all physical cores
    n_batch: int = bounded(64, 1, 4096)  # prompt tokens evaluated between two cancellation checks
    warmup: bool = True  # evaluate the prompt of an opened file before the first request


@dataclass(frozen=True)
class ContextConfig:
    prefix_lines: int = bounded(48, 0, 2000)  # lines before the cursor in the prompt (window moves in steps)
    suffix_lines: int = bounded(16, 0, 2000)  # lines after the cursor in the prompt
    window_step: int = bounded(16, 1, 1000)  # the prefix window moves this many lines at a time (KV reuse)
    file_context: bool = True  # the file beyond the window: its imports, its parts most like the cursor's code
    file_parts_tokens: int = bounded(0, 0, 8192)  # budget for those parts; 0: off (measured: exact match unchanged, prompts longer)


@dataclass(frozen=True)
class CacheConfig:
    enable: bool = True  # memory + disk cache of completions
    dir: str = ""  # empty: $XDG_CACHE_HOME/slm-lsp
    size_mb: int = bounded(256, 1)  # disk cache bound
    memory_entries: int = bounded(2048, 0)  # in-memory LRU bound


@dataclass(frozen=True)
class IndexConfig:
    enable: bool = True  # index the workspace and retrieve snippets into the prompt
    exclude: tuple[str, ...] = ()  # extra glob patterns (on top of .gitignore) never indexed
    max_file_kb: int = bounded(512, 1)  # files larger than this are not indexed
    max_files: int = bounded(20000, 1)  # stop indexing after this many files
    retrieval_tokens: int = bounded(256, 0, 8192)  # prompt budget for retrieved snippets
    min_score: float = bounded(0.2, 0.0, 1.0)  # retrieval threshold: nothing scoring lower enters the prompt


@dataclass(frozen=True)
class Config:
    completion: CompletionConfig = field(default_factory=CompletionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    # the server's log level; empty: the command line's (--log-level, SLM_LSP_LOG_LEVEL; info)
    log_level: str = field(default="", metadata={"choices": ("", "debug", "info", "warning", "error")})
    stats: bool = False  # send an slm/completionStats notification per request (benchmarks)


@dataclass(frozen=True)
class Source:
    """Where a setting's value came from."""

    layer: str  # "default", "user", "project", "client", "environment" or "toggle"
    origin: str = ""  # the file or the environment variable, where there is one

    def __str__(self) -> str:
        label = {"user": "user config", "client": "client settings", "toggle": "slm.toggle"}.get(self.layer, self.layer)
        return f"{label} {self.origin}" if self.origin else label


DEFAULT = Source("default")


@dataclass(frozen=True)
class Layer:
    source: Source
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Loaded:
    """A config, the layer of each of its settings (dotted camelCase keys) and the problems found."""

    config: Config
    sources: dict[str, Source]
    problems: list[str]


def snake_case(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def settings(obj: Any = None, where: str = "") -> list[tuple[str, dataclasses.Field]]:
    """Every leaf setting as (dotted camelCase key, its field), in declaration order."""
    obj = Config() if obj is None else obj
    found: list[tuple[str, dataclasses.Field]] = []
    for f in dataclasses.fields(obj):
        key = where + camel_case(f.name)
        value = getattr(obj, f.name)
        found += settings(value, key + ".") if dataclasses.is_dataclass(value) else [(key, f)]
    return found


def value_at(config: Config, key: str) -> Any:
    """The value of a dotted camelCase key, e.g. ``completion.maxLines``."""
    obj: Any = config
    for part in key.split("."):
        obj = getattr(obj, snake_case(part))
    return obj


def merge(config: Config, layer: Mapping[str, Any]) -> tuple[Config, list[str]]:
    """Apply one layer; return the new config and one problem string per bad key."""
    problems: list[str] = []
    return _merge_dataclass(config, layer, "", "", problems, []), problems


def _merge_dataclass(obj: Any, layer: Any, where: str, key_prefix: str, problems: list[str], applied: list[str]) -> Any:
    if not isinstance(layer, Mapping):
        problems.append(f"{where.rstrip('.') or 'configuration'}: expected an object")
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
        canonical = key_prefix + camel_case(key)
        if dataclasses.is_dataclass(current):
            changes[key] = _merge_dataclass(current, value, path + ".", canonical + ".", problems, applied)
            continue
        converted, problem = _convert(current, value, fields[key].metadata)
        if problem:
            problems.append(f"{path}: {problem}")
            continue
        changes[key] = converted
        applied.append(canonical)
    return dataclasses.replace(obj, **changes)


def _convert(current: Any, value: Any, meta: Mapping[str, Any]) -> tuple[Any, str]:
    """The value in the setting's type, or a problem (wrong type, out of range, not a choice)."""
    wrong = f"expected {type(current).__name__}, got {value!r}"
    if isinstance(current, bool):
        return (value, "") if isinstance(value, bool) else (None, wrong)
    if isinstance(current, (int, float)):
        kinds = (int, float) if isinstance(current, float) else (int,)
        if isinstance(value, bool) or not isinstance(value, kinds):
            return None, wrong
        lo, hi = meta.get("range", (0, None))
        if value < lo or (hi is not None and value > hi):
            return None, f"{value!r} is out of range ({lo} to {hi})" if hi is not None else f"{value!r} is below {lo}"
        return type(current)(value), ""
    if isinstance(current, str):
        choices = meta.get("choices")
        if not isinstance(value, str):
            return None, wrong
        return (value, "") if not choices or value in choices else (None, f"{value!r} is not one of {', '.join(choices)}")
    if isinstance(current, tuple) and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value), ""
    return None, wrong


def _cache_off(text: str) -> bool | None:
    return False if text.lower() in {"1", "true", "yes"} else None


# Variable -> (setting, its text as the value; None: the variable says nothing).
ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    "SLM_LSP_MODEL": ("model.path", str),
    "SLM_LSP_CACHE_DIR": ("cache.dir", str),
    "SLM_LSP_DISABLE_CACHE": ("cache.enable", _cache_off),
}


def env_layers(environ: Mapping[str, str]) -> list[Layer]:
    """One layer per environment variable that is set (and says something)."""
    layers = []
    for variable, (key, parse) in ENVIRONMENT.items():
        value = parse(environ[variable]) if environ.get(variable) else None
        if value is not None:
            section, name = key.split(".")
            layers.append(Layer(Source("environment", variable), {section: {name: value}}))
    return layers


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
    return paths.config_home() / "config.json"


PROJECT_FILE = ".slm-lsp.json"


def layers(
    workspace: Path | None, client: Mapping[str, Any] | None, environ: Mapping[str, str]
) -> tuple[list[Layer], list[str]]:
    """The layers above the defaults, in order, and the problems reading their files."""
    files = [("user", user_config_path())] + ([("project", workspace / PROJECT_FILE)] if workspace is not None else [])
    found, problems = [], []
    for layer, path in files:
        values, errs = read_file_layer(path)
        problems += errs
        found.append(Layer(Source(layer, str(path)), values))
    found.append(Layer(Source("client"), client or {}))
    return found + env_layers(environ), problems


def load_sources(
    workspace: Path | None = None,
    client: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Loaded:
    """All layers in order: the config, the layer that set each setting, every problem found."""
    stack, problems = layers(workspace, client, os.environ if environ is None else environ)
    config, sources = Config(), {key: DEFAULT for key, _ in settings()}
    for layer in stack:
        errs: list[str] = []
        applied: list[str] = []
        config = _merge_dataclass(config, layer.values, "", "", errs, applied)
        problems += [f"{layer.source}: {e}" for e in errs]
        sources.update(dict.fromkeys(applied, layer.source))
    return Loaded(config, sources, problems)


def load(
    workspace: Path | None = None,
    client: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Config, list[str]]:
    """All layers in order; returns the config and every problem found."""
    loaded = load_sources(workspace, client, environ)
    return loaded.config, loaded.problems


def client_enable(settings: Any) -> bool | None:
    """The client's own ``completion.enable``, when it sent one."""
    completion = settings.get("completion") if isinstance(settings, Mapping) else None
    value = completion.get("enable") if isinstance(completion, Mapping) else None
    return value if isinstance(value, bool) else None


def toggle_path(root: Path | None) -> Path:
    """Where ``slm.toggle`` remembers on or off for the workspace at ``root`` (a digest of its path)."""
    key = hashlib.sha256(str(root or "").encode()).hexdigest()[:16]
    return paths.data_home() / "workspaces" / f"{key}.json"


def read_toggle(path: Path) -> bool | None:
    """The toggle stored at ``path``; None when there is none (or it is unreadable)."""
    try:
        return bool(json.loads(path.read_text())["enabled"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
