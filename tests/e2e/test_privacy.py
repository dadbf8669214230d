"""Privacy, proved: no network, no secret on disk, nothing readable by other users.

A whole session runs under an audit hook (``sys.addaudithook``, installed by a
``sitecustomize`` on ``PYTHONPATH``) in every Python process slm-lsp starts: the
server over stdio with a workspace (index, completions, secret files opened and
completed around, the toggle), then ``slm-lsp index`` and ``slm-lsp eval`` on
the same repository. Then:

- **sockets**: none but the AF_UNIX pair asyncio makes for its own loop; with
  ``--tcp``, one AF_INET listener bound to 127.0.0.1 and the connection it accepts;
- **secrets**: no planted secret in any file under the XDG directories (the
  completion cache's sqlite, the gzip JSON index, decompressed) or in the log;
- **modes**: every directory slm-lsp created there is 0700.

Once with the fake backend, once with the real model (``-m model``).
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.rawclient import SERVER, RawClient

PLANTED = b"PLANTED"  # in every planted secret, nowhere else
AUDITED = (
    "socket.__new__", "socket.bind", "socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo", "subprocess.Popen", "os.system",
    "os.exec", "os.posix_spawn", "os.fork",
)  # fmt: skip
SHIM = f'''"""Installed by test_privacy: records every network (and process) call of this process."""
import json, os, sys

_LOG, _EVENTS = os.environ["SLM_AUDIT_LOG"], frozenset({AUDITED!r})


def _write(event, args):
    with open(_LOG, "a") as handle:
        handle.write(json.dumps([os.getpid(), event, args], default=repr) + "\\n")


def _hook(event, args):
    if event in _EVENTS:
        _write(event, list(args[1:]) if event.startswith("socket.") and event != "socket.getaddrinfo" else list(args))


_write("audit.start", [])
sys.addaudithook(_hook)
'''

WORKSPACE = {
    "pkg/__init__.py": "",
    "pkg/geometry.py": (
        "import math\n\n\ndef area(width, height):\n    return width * height\n\n\n"
        "def perimeter(width, height):\n    return 2 * (width + height)\n\n\n"
        "def diagonal(width, height):\n    return math.sqrt(width * width + height * height)\n"
    ),
    "pkg/shapes.py": (
        "from pkg.geometry import area, perimeter\n\n\nclass Rect:\n    def __init__(self, width, height):\n"
        "        self.width = width\n        self.height = height\n\n    def area(self):\n"
        "        return area(self.width, self.height)\n\n    def perimeter(self):\n"
        "        return perimeter(self.width, self.height)\n"
    ),
    "pkg/util.py": "def double(x):\n    \n",
    "app.py": (
        "from config import DB_HOST, DB_PASSWORD\n\n\ndef connect(user):\n    return {\"host\": DB_HOST, "
        "\"user\": user, \"password\": DB_PASSWORD}\n\n\ndef add(a, b):\n    \n"
    ),
    "config.py": (
        'DB_HOST = "localhost"\nDB_PASSWORD = "PLANTED-PW-7f3a9c21"\nAPI_TOKEN = "sk-test-PLANTED0123456789abcdef"\n'
        'AWS_ACCESS_KEY_ID = "AKIAPLANTED000000001"\n'
    ),
    ".env": "API_KEY=sk-test-PLANTED123456789abcdef\nSESSION_SECRET=PLANTED-env-5e1b\n",
    "server.pem": (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCPLANTEDkey0123\n"
        "PLANTEDPEMbodyline2abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH\n-----END PRIVATE KEY-----\n"
    ),
}


@dataclass(frozen=True)
class Run:
    """What one audited session left behind."""

    home: Path  # the XDG directories are home/cache, home/config, home/data
    log: Path
    events: list[tuple[int, str, list[Any]]]
    stats: list[dict[str, Any]]  # slm/completionStats notifications
    replies: list[dict[str, Any]]  # every completion reply

    @property
    def xdg(self) -> list[Path]:
        return [self.home / name for name in ("cache", "config", "data")]


def audited_env(tmp: Path, backend: str) -> dict[str, str]:
    shim = tmp / "shim"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(SHIM)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLM_LSP_")}
    env |= {
        "PYTHONPATH": str(shim), "SLM_AUDIT_LOG": str(tmp / "audit.jsonl"), "HOME": str(tmp / "user"),
        "XDG_CACHE_HOME": str(tmp / "xdg" / "cache"), "XDG_CONFIG_HOME": str(tmp / "xdg" / "config"),
        "XDG_DATA_HOME": str(tmp / "xdg" / "data"), "TMPDIR": str(tmp / "tmp"),
    }  # fmt: skip
    (tmp / "tmp").mkdir(exist_ok=True)
    if backend == "fake":
        env["SLM_LSP_BACKEND"] = "fake"
    else:
        from slm_lsp import models

        env["SLM_LSP_MODEL"] = str(models.resolve("", out=None))  # assembled once, outside the XDG dirs here
    return env


def read_events(path: Path) -> list[tuple[int, str, list[Any]]]:
    return [tuple(json.loads(line)) for line in path.read_text().splitlines()] if path.exists() else []


def session_run(tmp: Path, backend: str) -> Run:
    ws = tmp / "ws"
    for rel, text in WORKSPACE.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(text)
    env = audited_env(tmp, backend)
    log = tmp / "slm.log"
    server = RawClient(args=("--log-file", str(log)), env=env, cwd=ws, stderr=tmp / "stderr.log")
    replies = []
    try:
        server.initialize(ws, {"stats": True})
        server.wait_ready(index=True, timeout=300)
        for rel, line, character in [("pkg/util.py", 1, 4), ("app.py", 8, 4), ("config.py", 4, 0), (".env", 2, 0), ("server.pem", 4, 0)]:
            uri = (ws / rel).as_uri()
            server.open(uri, (ws / rel).read_text(), "python" if rel.endswith(".py") else "plaintext")
            replies.append(server.inline(uri, line, character, timeout=120))
        app = (ws / "app.py").as_uri()  # typing a credential, then completing below it
        typed = 'GITHUB = "ghp_PLANTEDabcdefghijklmnopqrstuvwxyz0123"\nBACKUP_PASSWORD = '
        server.change(app, 2, [{"range": {"start": {"line": 9, "character": 0}, "end": {"line": 9, "character": 0}}, "text": typed}])
        replies.append(server.inline(app, 10, len("BACKUP_PASSWORD = "), timeout=120))
        config = (ws / "config.py").as_uri()
        server.change(config, 2, [{"range": {"start": {"line": 4, "character": 0}, "end": {"line": 4, "character": 0}}, "text": "DB_PASSWORD_COPY = "}])
        replies.append(server.inline(config, 4, len("DB_PASSWORD_COPY = "), timeout=120))
        for _ in range(2):  # remembered on disk per workspace
            server.request("workspace/executeCommand", {"command": "slm.toggle", "arguments": []})
        stats = [n["params"] for n in server.notifications if n.get("method") == "slm/completionStats"]
    finally:
        code = server.close()
    assert code == 0
    for command in (["index", str(ws)], ["eval", "--repo", str(ws), "--limit", "2", "--holdout-fraction", "0.5", "--modes", "repo"]):
        done = subprocess.run(SERVER + command, env=env, cwd=ws, capture_output=True, timeout=600)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    return Run(tmp / "xdg", log, read_events(tmp / "audit.jsonl"), stats, replies)


@pytest.fixture(scope="module", params=["fake", pytest.param("model", marks=pytest.mark.model)])
def run(request, tmp_path_factory) -> Run:
    return session_run(tmp_path_factory.mktemp(f"privacy-{request.param}"), request.param)


def forbidden(events: list[tuple[int, str, list[Any]]], tcp_port: int | None = None) -> list[Any]:
    """Every audited call but asyncio's AF_UNIX socketpair (and, for TCP, the loopback listener)."""
    bad = []
    for pid, event, args in events:
        if event == "audit.start" or (event == "socket.__new__" and args[0] == socket.AF_UNIX):
            continue
        if tcp_port is not None and (
            (event == "socket.__new__" and args[0] == socket.AF_INET)
            or (event == "socket.getaddrinfo" and args[0] == "127.0.0.1")
            or (event == "socket.bind" and list(args[0]) == ["127.0.0.1", tcp_port])
        ):
            continue
        bad.append((pid, event, args))
    return bad


def test_a_whole_session_uses_no_network(run: Run):
    processes = {pid for pid, event, _ in run.events if event == "audit.start"}
    assert len(processes) >= 3, "the audit hook was not installed in the server, index and eval"
    assert any(e == "socket.__new__" for _, e, _ in run.events), "not even asyncio's socketpair was seen"
    assert forbidden(run.events) == []
    assert all("error" not in reply for reply in run.replies)


def test_secret_files_are_not_completed(run: Run):
    reasons = {Path(s["uri"]).name: s["reason"] for s in run.stats}
    assert reasons[".env"] == reasons["server.pem"] == "secret file"
    assert reasons["app.py"] != "secret file"


def written_files(run: Run) -> list[Path]:
    found = [p for base in run.xdg if base.exists() for p in base.rglob("*") if p.is_file()]
    return found + [run.log]


def test_no_planted_secret_is_written(run: Run):
    files = written_files(run)
    names = {p.name for p in files}
    assert "index.json.gz" in names or any(n.endswith(".gz") for n in names), names  # the index was saved
    databases = [p for p in files if p.name == "cache.db"]
    assert databases and sum(_rows(db) for db in databases) > 0, "the disk cache holds no completion"
    assert run.log.exists()
    for path in files:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        assert PLANTED not in data, f"a planted secret in {path}"


def _rows(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT count(*) FROM Cache").fetchone()[0]


def test_every_directory_created_is_private(run: Run):
    created = [d for base in run.xdg if base.exists() for d in (base, *base.rglob("*")) if d.is_dir()]
    assert any(d.name == "index" for d in created) and any(d.name == "workspaces" for d in created)
    modes = {str(d.relative_to(run.home)): oct(d.stat().st_mode & 0o777) for d in created}
    assert modes and set(modes.values()) == {"0o700"}, modes


def test_the_tcp_listener_is_on_loopback_only(tmp_path: Path):
    env = audited_env(tmp_path, "fake")
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn: list[socket.socket] = []

    def connect():
        end = time.monotonic() + 60
        while True:  # until the server listens
            try:
                conn.append(socket.create_connection(("127.0.0.1", port), timeout=60))
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        return conn[0].makefile("wb"), conn[0].makefile("rb")

    server = RawClient(args=("--tcp", "--port", str(port)), env=env, cwd=tmp_path, stderr=tmp_path / "stderr.log", connect=connect)
    try:
        server.initialize()
        assert server.wait_ready(timeout=60)["state"] == "ready"
        assert server.status()["state"] == "ready"
        server.request("shutdown")
        server.notify("exit")
    finally:
        conn[0].close()
        try:
            server.proc.wait(15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
    events = read_events(tmp_path / "audit.jsonl")
    binds = [args for _, event, args in events if event == "socket.bind"]
    assert binds and all(list(args[0]) == ["127.0.0.1", port] for args in binds)
    assert forbidden(events, tcp_port=port) == []
