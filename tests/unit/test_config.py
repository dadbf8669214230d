"""Config layers with provenance, ranges, the editors' copies of the defaults, and `slm-lsp config`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from slm_lsp import cli, config
from slm_lsp.config import Config, Source, load, load_sources
from slm_lsp.settings_report import effective, workspace_root

REPO = Path(__file__).resolve().parents[2]
ENV_VARS = ("SLM_LSP_MODEL", "SLM_LSP_CACHE_DIR", "SLM_LSP_DISABLE_CACHE")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user config dir and a data dir (toggles) of our own; no environment layer."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("SLM_LSP_DATA_DIR", str(tmp_path / "data"))
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


# -- provenance ------------------------------------------------------------
def test_every_setting_names_the_layer_it_came_from(tmp_path: Path) -> None:
    user = write(config.user_config_path(), {"completion": {"maxLines": 5, "maxTokens": 30}, "index": {"enable": False}})
    project = write(tmp_path / "ws" / ".slm-lsp.json", {"completion": {"maxLines": 3, "exclude": ["secrets/**"]}})
    loaded = load_sources(
        tmp_path / "ws",
        {"completion": {"deadlineMs": 120, "maxTokens": 48}},  # 48 is the default: still the client's
        environ={"SLM_LSP_MODEL": "/m.gguf", "SLM_LSP_DISABLE_CACHE": "1"},
    )
    assert loaded.problems == []
    c, s = loaded.config, loaded.sources
    assert (c.completion.max_lines, s["completion.maxLines"]) == (3, Source("project", str(project)))
    assert (c.completion.exclude, s["completion.exclude"]) == (("secrets/**",), Source("project", str(project)))
    assert (c.index.enable, s["index.enable"]) == (False, Source("user", str(user)))
    assert (c.completion.deadline_ms, s["completion.deadlineMs"]) == (120, Source("client"))
    assert (c.completion.max_tokens, s["completion.maxTokens"]) == (48, Source("client"))
    assert (c.model.path, s["model.path"]) == ("/m.gguf", Source("environment", "SLM_LSP_MODEL"))
    assert (c.cache.enable, s["cache.enable"]) == (False, Source("environment", "SLM_LSP_DISABLE_CACHE"))
    assert s["completion.enable"] == config.DEFAULT and s["logLevel"] == config.DEFAULT
    assert set(s) == {key for key, _ in config.settings()}
    assert str(s["completion.maxLines"]) == f"project {project}"


def test_client_wins_over_project_and_environment_over_client(tmp_path: Path) -> None:
    write(tmp_path / ".slm-lsp.json", {"completion": {"enable": False}, "model": {"path": "/p.gguf"}})
    cfg, problems = load(tmp_path, {"completion": {"enable": True}, "model": {"path": "/c.gguf"}}, {"SLM_LSP_MODEL": "/e.gguf"})
    assert problems == [] and cfg.completion.enable is True and cfg.model.path == "/e.gguf"
    untouched, _ = load(tmp_path, {}, {})
    assert untouched.completion.enable is False  # nothing from the client: the project file holds


def test_load_keeps_its_signature_and_agrees_with_load_sources(tmp_path: Path) -> None:
    write(tmp_path / ".slm-lsp.json", {"context": {"prefixLines": 10}, "bogus": 1})
    cfg, problems = load(tmp_path)
    loaded = load_sources(tmp_path)
    assert (cfg, problems) == (loaded.config, loaded.problems)
    assert cfg.context.prefix_lines == 10 and problems == [f"project {tmp_path / '.slm-lsp.json'}: bogus: unknown setting"]
    assert load()[0] == Config()


# -- problems: bad JSON, unknown keys, wrong types, ranges ------------------
def test_bad_values_are_reported_and_keep_the_layer_below(tmp_path: Path) -> None:
    write(tmp_path / ".slm-lsp.json", {"completion": {"maxLines": 3, "deadlineMs": 500}})
    loaded = load_sources(
        tmp_path,
        {"completion": {"maxLines": 0, "deadlineMs": 10001, "nope": 1, "enable": "yes"}, "index": {"minScore": 1.5}},
        environ={},
    )
    assert loaded.config.completion.max_lines == 3 and loaded.sources["completion.maxLines"].layer == "project"
    assert loaded.config.completion.deadline_ms == 500
    assert loaded.config.index.min_score == 0.2 and loaded.sources["index.minScore"] == config.DEFAULT
    assert loaded.problems == [
        "client settings: completion.maxLines: 0 is out of range (1 to 100)",
        "client settings: completion.deadlineMs: 10001 is out of range (20 to 10000)",
        "client settings: completion.nope: unknown setting",
        "client settings: completion.enable: expected bool, got 'yes'",
        "client settings: index.minScore: 1.5 is out of range (0.0 to 1.0)",
    ]


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("completion.maxLines", 1, True),
        ("completion.maxLines", 100, True),
        ("completion.maxLines", 101, False),
        ("completion.maxLines", 2.0, False),  # an int setting takes whole numbers only
        ("completion.maxLines", True, False),
        ("index.minScore", 0, True),  # a float setting takes an int
        ("cache.sizeMb", 10**6, True),  # no upper bound
        ("cache.sizeMb", 0, False),
        ("logLevel", "debug", True),
        ("logLevel", "loud", False),
        ("completion.exclude", ["a", 1], False),
    ],
)
def test_ranges_types_and_choices(key: str, value: object, ok: bool) -> None:
    *sections, name = key.split(".")
    layer: dict = {name: value}
    for section in reversed(sections):
        layer = {section: layer}
    cfg, problems = config.merge(Config(), layer)
    assert (problems == []) is ok, problems
    assert config.value_at(cfg, key) == (value if ok else config.value_at(Config(), key))


def test_a_section_that_is_not_an_object_is_a_problem() -> None:
    assert config.merge(Config(), {"completion": "off"}) == (Config(), ["completion: expected an object"])


def test_every_number_declares_its_range() -> None:
    for key, f in config.settings():
        if isinstance(f.default, (int, float)) and not isinstance(f.default, bool):
            lo, hi = f.metadata["range"]
            assert lo <= f.default and (hi is None or f.default <= hi), key


def test_broken_user_file_is_a_problem_and_the_rest_applies(tmp_path: Path) -> None:
    write(config.user_config_path(), "{not json")
    write(tmp_path / ".slm-lsp.json", "[1, 2]")
    loaded = load_sources(tmp_path, {"completion": {"maxLines": 4}}, environ={})
    assert loaded.config.completion.max_lines == 4
    assert "not valid JSON" in loaded.problems[0] and "expected a JSON object" in loaded.problems[1]


def test_client_enable_is_read_only_where_the_client_sent_it() -> None:
    assert config.client_enable({"completion": {"enable": False}}) is False
    assert config.client_enable({"completion": {"maxLines": 3}}) is None
    assert config.client_enable({"completion": {"enable": "no"}}) is None
    assert config.client_enable(None) is None


# -- the editors' copies of the defaults -----------------------------------
VSCODE = {  # package.json setting -> the server setting it sets (editors/vscode/src/settings.ts)
    "slm.enable": "completion.enable",
    "slm.model": "model.path",
    "slm.adapter": "model.adapter",
    "slm.latencyBudgetMs": "completion.deadlineMs",
    "slm.maxLines": "completion.maxLines",
    "slm.languages": "completion.languages",
    "slm.exclude": "completion.exclude",
    "slm.cache.enable": "cache.enable",
    "slm.index.enable": "index.enable",
}
VSCODE_CLIENT_ONLY = {"slm.serverPath", "slm.trace.server"}


def test_vscode_package_json_shows_the_servers_defaults_and_ranges() -> None:
    manifest = json.loads((REPO / "editors" / "vscode" / "package.json").read_text())
    properties = manifest["contributes"]["configuration"]["properties"]
    assert set(properties) == set(VSCODE) | VSCODE_CLIENT_ONLY, "a new setting: map it here and in settings.ts"
    fields = dict(config.settings())
    for name, key in VSCODE.items():
        spec, f = properties[name], fields[key]
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        assert spec["default"] == default, name
        lo, hi = f.metadata.get("range", (None, None))
        assert (spec.get("minimum"), spec.get("maximum")) == (lo, hi), name


def test_neovim_plugin_holds_no_server_defaults() -> None:
    lua = (REPO / "editors" / "nvim" / "lua" / "slm_lsp" / "config.lua").read_text()
    assert "settings = {}," in lua  # nothing sent unless the user sets it
    for key, f in config.settings():
        name = key.rsplit(".", 1)[-1]
        if isinstance(f.default, (int, float)) and not isinstance(f.default, bool):
            assert f"{name} = {f.default}" not in lua, f"{key}'s default is repeated in config.lua"


# -- slm-lsp config ----------------------------------------------------------
def test_workspace_root_is_the_nearest_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    write(repo / "pkg" / ".slm-lsp.json", {})
    write(repo / "pkg" / "src" / "a.py", "")
    write(repo / "other" / "b.py", "")
    assert workspace_root(repo / "pkg" / "src" / "a.py") == repo / "pkg"
    assert workspace_root(repo / "pkg" / "src") == repo / "pkg"
    assert workspace_root(repo / "other" / "b.py") == repo
    loose = write(tmp_path / "loose" / "c.py", "")
    assert workspace_root(loose) == loose.parent
    monkeypatch.chdir(repo / "other")
    assert workspace_root(None) == repo


def test_config_command_prints_each_setting_and_its_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = write(tmp_path / "ws" / ".slm-lsp.json", {"completion": {"exclude": ["gen/**"], "maxLines": 3}})
    write(tmp_path / "ws" / "src" / "a.py", "")
    assert cli.main(["config", str(tmp_path / "ws" / "src" / "a.py")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"workspace {tmp_path / 'ws'}"
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in lines[1:]}
    assert set(rows) == {key for key, _ in config.settings()}
    assert rows["completion.exclude"] == ['["gen/**"]', f"project {project}"]
    assert rows["completion.maxLines"] == ["3", f"project {project}"]
    assert rows["completion.enable"] == ["true", "default"]
    assert rows["model.path"] == ['""', "default"]


def test_config_command_json_reports_problems_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / ".slm-lsp.json", {"completion": {"maxLines": 1000, "typo": True}})
    assert cli.main(["config", "--json", str(tmp_path)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["workspace"] == str(tmp_path)
    assert out["settings"]["completion.maxLines"] == {"value": 8, "layer": "default", "origin": ""}
    assert out["settings"]["completion.languages"] == {"value": [], "layer": "default", "origin": ""}
    assert len(out["problems"]) == 2 and "typo: unknown setting" in out["problems"][1]
    assert cli.main(["config", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("problem: project ")


def test_config_command_shows_the_toggle_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / ".slm-lsp.json", {"completion": {"enable": True}})
    toggle = write(config.toggle_path(tmp_path), {"enabled": False})
    monkeypatch.setenv("SLM_LSP_CACHE_DIR", str(tmp_path / "cache"))
    loaded = effective(tmp_path)
    assert loaded.config.completion.enable is False
    assert loaded.sources["completion.enable"] == Source("toggle", str(toggle))
    assert cli.main(["config", "--json", str(tmp_path)]) == 0
    settings = json.loads(capsys.readouterr().out)["settings"]
    assert settings["completion.enable"] == {"value": False, "layer": "toggle", "origin": str(toggle)}
    assert settings["cache.dir"] == {"value": str(tmp_path / "cache"), "layer": "environment", "origin": "SLM_LSP_CACHE_DIR"}
    assert dataclasses.replace(loaded.config.completion, enable=True) == config.CompletionConfig()
