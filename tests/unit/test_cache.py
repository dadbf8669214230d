from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from slm_lsp import cache as cache_module
from slm_lsp.cache import CompletionCache, cache_key, classify, move_aside, typed_through

REPO = Path(__file__).resolve().parents[2]


def test_key_depends_on_model_identity_and_prompt_and_hides_content():
    a = cache_key("model-a", "<|fim_prefix|>secret_code")
    assert a != cache_key("model-b", "<|fim_prefix|>secret_code")
    assert a != cache_key("model-a", "<|fim_prefix|>secret_cod")
    assert "secret" not in a and len(a) == 64


def test_typed_through_pure():
    assert typed_through("abc de", 4, "defg") == "fg"
    assert typed_through("abc dx", 4, "defg") is None
    assert typed_through("abc defg", 4, "defg") is None  # typed all of it: nothing left


def test_memory_lru_is_bounded_and_typed_through_works():
    cache = CompletionCache("m", None, memory_entries=2)
    cache.put("p1", "one")
    cache.put("p2", "two")
    cache.put("p3", "three")
    assert cache.get("p1") is None
    assert cache.get("p3").text == "three"
    hit = cache.get("p3th")
    assert hit.source == "typed" and hit.text == "ree"


def test_disk_cache_survives_a_restart(tmp_path):
    cache = CompletionCache("m", tmp_path / "c")
    cache.put("prompt", "completion")
    cache.close()
    again = CompletionCache("m", tmp_path / "c")
    assert again.get("prompt").text == "completion"
    other_model = CompletionCache("other", tmp_path / "c")
    assert other_model.get("prompt") is None
    # keys on disk are digests: no path or code in them
    keys = list(again._disk.iterkeys())
    assert keys and all(len(k) == 64 and int(k, 16) >= 0 for k in keys)
    again.close()


# -- disk faults: the cache keeps working from memory, the user hears once ---------------
def filled(directory: Path, n: int = 300) -> None:
    """A real, checkpointed database with ``n`` entries."""
    cache = CompletionCache("m", directory)
    for i in range(n):
        cache.put(f"p{i}", "x" * 100)
    cache.close()


def reopen_and_check(directory: Path) -> None:
    """The rebuilt cache works on disk: an entry survives a restart."""
    cache = CompletionCache("m", directory)
    cache.put("after", "rebuilt")
    cache.close()
    again = CompletionCache("m", directory, on_problem=pytest.fail)
    assert again.on_disk and again.get("after").text == "rebuilt"
    again.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "directory"])
def test_corrupt_database_at_start_is_moved_aside_and_rebuilt(tmp_path, damage):
    directory = tmp_path / "c"
    filled(directory)
    db = directory / "cache.db"
    if damage == "garbage":
        db.write_bytes(b"\x8f not sqlite " * 500)
    elif damage == "truncated":
        os.truncate(db, db.stat().st_size // 2)
    else:
        db.unlink()
        (db / "sub").mkdir(parents=True)
    messages: list[str] = []
    cache = CompletionCache("m", directory, on_problem=messages.append)
    assert cache.on_disk and cache.get("p1") is None  # empty, on disk
    aside = [p for p in directory.iterdir() if p.name.startswith("cache.db.corrupt-")]
    assert len(aside) == 1 and len(messages) == 1
    assert str(aside[0]) in messages[0] and "new, empty cache" in messages[0]
    cache.close()
    reopen_and_check(directory)


def test_only_the_newest_corrupt_copy_is_kept(tmp_path):
    directory = tmp_path / "c"
    directory.mkdir()
    (directory / "cache.db").write_bytes(b"junk" * 100)
    assert move_aside(directory, "1").name == "cache.db.corrupt-1"
    (directory / "cache.db").write_bytes(b"junk" * 100)
    move_aside(directory, "2")
    assert sorted(p.name for p in directory.iterdir()) == ["cache.db.corrupt-2"]


@pytest.mark.parametrize("where", ["file in the way", "under /proc"])
def test_unusable_directory_falls_back_to_memory_with_one_message(tmp_path, where):
    if where == "file in the way":
        directory = tmp_path / "c"
        directory.write_text("not a directory")
        directory.chmod(0o644)
        fix = f"Remove the file {directory}"
    else:
        directory = Path("/proc/slm-lsp-test/completions")
        fix = "set cache.dir"
    messages: list[str] = []
    cache = CompletionCache("m", directory, on_problem=messages.append)
    assert not cache.on_disk and len(messages) == 1
    assert str(directory) in messages[0] and fix in messages[0] and "memory" in messages[0]
    if where == "file in the way":  # left as it was
        assert directory.read_text() == "not a directory" and directory.stat().st_mode & 0o777 == 0o644
    cache.put("p", "text")
    assert cache.get("p").text == "text"  # memory still serves


READ_ONLY_PROBE = """
import sys
from pathlib import Path
from slm_lsp.cache import CompletionCache
messages = []
cache = CompletionCache("m", Path(sys.argv[1]), on_problem=messages.append)
cache.put("p", "text")
print(cache.on_disk, cache.get("p").text, len(messages), messages[0])
"""


def unprivileged_python() -> tuple[str, int | None]:
    """This interpreter and no user switch; as root: a system python run as nobody
    (the venv's may live under /root, which nobody cannot enter)."""
    if os.geteuid() != 0:
        return sys.executable, None
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate, 65534
    pytest.skip("running as root with no system python to run as an unprivileged user")


def test_read_only_directory_0500_falls_back_to_memory_with_one_message():
    """Run as an unprivileged user (root writes anywhere): a 0500 directory is left 0500."""
    base = Path(tempfile.mkdtemp(prefix="slm-ro-"))
    try:
        base.chmod(0o755)
        directory = base / "c"
        directory.mkdir(mode=0o500)
        directory.chmod(0o500)
        python, user = unprivileged_python()
        if user is not None:
            os.chown(directory, user, user)
        import diskcache

        search = os.pathsep.join([str(REPO), str(Path(diskcache.__file__).parents[1])])
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": search, "HOME": str(base)}
        done = subprocess.run(
            [python, "-c", READ_ONLY_PROBE, str(directory)], capture_output=True, text=True,
            env=env, cwd=base, user=user, group=user, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        on_disk, text, count, message = done.stdout.strip().split(" ", 3)
        assert (on_disk, text, count) == ("False", "text", "1")
        assert str(directory) in message and "chmod u+rwx" in message
        assert directory.stat().st_mode & 0o777 == 0o500
    finally:
        shutil.rmtree(base)


class FlakyDisk:
    """A real diskcache whose get/set raise ``error`` once it is set (a failing disk)."""

    def __init__(self, real):
        self.real, self.error, self.calls = real, None, 0

    def get(self, key):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.real.get(key)

    def set(self, key, value):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.real.set(key, value)

    def close(self):
        self.real.close()


@pytest.fixture
def flaky(monkeypatch):
    disks: list[FlakyDisk] = []
    real_open = cache_module._open

    def flaky_open(directory, size_mb):
        disks.append(FlakyDisk(real_open(directory, size_mb)))
        return disks[-1]

    monkeypatch.setattr(cache_module, "_open", flaky_open)
    return disks


def test_disk_full_mid_session_falls_back_to_memory_and_tells_once(tmp_path, flaky):
    messages: list[str] = []
    cache = CompletionCache("m", tmp_path / "c", on_problem=messages.append)
    cache.put("before", "on disk")
    flaky[0].error = OSError(errno.ENOSPC, "No space left on device")
    cache.put("p", "text")  # never raises
    cache.put("q", "more")
    assert cache.get("p").text == "text" and cache.get("q").text == "more"
    assert not cache.on_disk and flaky[0].calls == 2  # after the failure the disk is left alone
    assert len(messages) == 1 and "is full" in messages[0] and "Free some space" in messages[0]


def test_sqlite_disk_full_is_a_full_disk(tmp_path, flaky):
    messages: list[str] = []
    cache = CompletionCache("m", tmp_path / "c", on_problem=messages.append)
    flaky[0].error = sqlite3.OperationalError("database or disk is full")
    cache.put("p", "text")
    assert len(messages) == 1 and "is full" in messages[0]


def test_busy_database_is_a_miss_not_a_failure(tmp_path, flaky):
    import diskcache

    messages: list[str] = []
    cache = CompletionCache("m", tmp_path / "c", on_problem=messages.append)
    cache.put("p", "text")
    flaky[0].error = diskcache.Timeout()
    assert cache.get("other") is None
    flaky[0].error = None
    assert cache.on_disk and not messages


def test_database_corrupted_mid_session_moves_it_aside_and_memory_goes_on(tmp_path):
    directory = tmp_path / "c"
    filled(directory, 2000)
    messages: list[str] = []
    cache = CompletionCache("m", directory, on_problem=messages.append)
    assert cache.get("p5").text == "x" * 100  # read from disk
    cache.put("fresh", "in memory")
    size = (directory / "cache.db").stat().st_size
    with open(directory / "cache.db", "r+b") as f:  # another process scribbles over it
        f.seek(4096)
        f.write(b"\xa5" * (size - 4096))
    assert cache.get("p7") is None  # never raises
    assert cache.get("p8") is None
    cache.put("later", "still works")
    assert cache.get("fresh").text == "in memory" and cache.get("later").text == "still works"
    assert not cache.on_disk and len(messages) == 1 and "corrupt" in messages[0]
    assert not (directory / "cache.db").exists()  # moved aside: the next start makes a new one
    reopen_and_check(directory)


def test_classify():
    assert classify(OSError(errno.ENOSPC, "full")) == "full"
    assert classify(OSError(errno.EACCES, "denied")) == "broken"
    assert classify(sqlite3.DatabaseError("database disk image is malformed")) == "corrupt"
    assert classify(sqlite3.DatabaseError("file is not a database")) == "corrupt"
    assert classify(sqlite3.OperationalError("database is locked")) == "busy"
    assert classify(sqlite3.OperationalError("disk I/O error")) == "broken"
