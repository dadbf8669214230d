"""``slm-lsp config [FILE]``: the settings in effect for a workspace, and the layer each came from.

The workspace is found as the editors find it: the nearest directory, from FILE
upwards, holding ``.slm-lsp.json`` or ``.git``; else FILE's directory (the
current directory without FILE). The layers are ``config.load_sources``'s, less
the client's (that is what the editor sends), plus ``slm.toggle`` when it is set
for this workspace. One line per setting (dotted camelCase key, value as JSON,
layer), then one line per problem; exit status 1 when there is a problem.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping, TextIO

from slm_lsp.config import PROJECT_FILE, Loaded, Source, load_sources, read_toggle, settings, toggle_path, value_at

ROOT_MARKERS = (PROJECT_FILE, ".git")


def workspace_root(target: Path | None) -> Path:
    """The nearest directory at or above ``target`` with a root marker, else its own directory."""
    start = Path.cwd() if target is None else target.expanduser().resolve()
    if not start.is_dir():
        start = start.parent
    for directory in (start, *start.parents):
        if any((directory / marker).exists() for marker in ROOT_MARKERS):
            return directory
    return start


def effective(root: Path, environ: Mapping[str, str] | None = None) -> Loaded:
    """The settings the server would use at ``root`` with no client settings, the toggle included."""
    loaded = load_sources(root, {}, environ)
    path = toggle_path(root)
    enabled = read_toggle(path)
    if enabled is None:
        return loaded
    config = loaded.config
    config = dataclasses.replace(config, completion=dataclasses.replace(config.completion, enable=enabled))
    return Loaded(config, {**loaded.sources, "completion.enable": Source("toggle", str(path))}, loaded.problems)


def _value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def as_text(root: Path, loaded: Loaded) -> str:
    rows = [(key, json.dumps(_value(value_at(loaded.config, key))), str(loaded.sources[key])) for key, _ in settings()]
    key_width = max(len(key) for key, _, _ in rows)
    value_width = min(24, max(len(value) for _, value, _ in rows))
    lines = [f"workspace {root}"]
    lines += [f"{key:<{key_width}}  {value:<{value_width}}  {source}" for key, value, source in rows]
    lines += [f"problem: {problem}" for problem in loaded.problems]
    return "\n".join(lines)


def as_json(root: Path, loaded: Loaded) -> str:
    found = {}
    for key, _ in settings():
        source = loaded.sources[key]
        found[key] = {"value": _value(value_at(loaded.config, key)), "layer": source.layer, "origin": source.origin}
    return json.dumps({"workspace": str(root), "settings": found, "problems": loaded.problems}, indent=1)


def config_command(target: Path | None, machine: bool = False, out: TextIO | None = None) -> int:
    """Print the effective settings for the workspace around ``target``; 1 when there are problems."""
    root = workspace_root(target)
    loaded = effective(root)
    print(as_json(root, loaded) if machine else as_text(root, loaded), file=out)
    return 1 if loaded.problems else 0
