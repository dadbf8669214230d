"""Secret files and credentials: the patterns, masking, and where the engine, the prompt,
the index and the cache apply them."""

from __future__ import annotations

import asyncio
import gzip
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slm_lsp import secrets
from slm_lsp.backend import Generation
from slm_lsp.fake_backend import FakeBackend
from slm_lsp.cache import CompletionCache
from slm_lsp.config import CompletionConfig, Config, IndexConfig
from slm_lsp.context import build_context
from slm_lsp.engine import Document, Engine
from slm_lsp.indexing.index import WorkspaceIndex
from slm_lsp.indexing import files
from slm_lsp.prompt import build_prompt
from slm_lsp.retrieval import Snippet
from slm_lsp.scheduler import Scheduler
from slm_lsp.secrets import PLACEHOLDER, document_reason, mask_credentials
from slm_lsp.templates import QWEN

GH_TOKEN = "ghp_PLANTEDabcdefghijklmnopqrstuvwxyz0123"


# -- secret files ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [".env", "deploy/.env.production", ".envrc", "certs/server.pem", "tls.key", "id_rsa", "home/id_ed25519.pub",
     "aws_credentials.json", ".netrc", ".npmrc", ".pypirc", ".git-credentials", "secrets.yaml", ".ssh/config",
     "x/.aws/config", ".gnupg/pubring.kbx", "store.p12"],
)  # fmt: skip
def test_secret_paths(path: str):
    assert secrets.is_secret_path(path)
    assert document_reason(path) == secrets.SECRET_FILE


@pytest.mark.parametrize("path", ["env.py", "src/keys.py", "tokenizer.py", "settings.py", "id_utils.py", "docs/secret_santa.md"])
def test_ordinary_paths(path: str):
    assert not secrets.is_secret_path(path)
    assert document_reason(path) == ""


def test_a_file_outside_the_workspace_is_judged_by_its_uri():
    # outside the workspace, the document's path is its name alone
    assert document_reason("config", "file:///home/u/.ssh/config") == secrets.SECRET_FILE
    assert document_reason("x", "file:///srv/app/%2Eenv") == secrets.SECRET_FILE  # percent-encoded
    assert document_reason(".env.prod", "file:///srv/app/.env.prod") == secrets.SECRET_FILE
    assert document_reason("main.py", "file:///home/u/work/main.py") == ""


def test_the_users_exclude_globs():
    assert document_reason("vendor/lib/x.py", exclude=("vendor/**",)) == secrets.EXCLUDED
    assert document_reason("src/x.py", exclude=("vendor/**",)) == ""


def test_the_indexer_uses_the_same_list():
    assert files.is_secret_name is secrets.is_secret_name
    assert secrets.SECRET_DIRS <= files.SKIPPED_DIRS


# -- masking ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("API_KEY=sk-test-PLANTED1234567890abcdef", "API_KEY=<secret>"),
        ('password = "PLANTED-PW-1"', 'password = "<secret>"'),
        ('db_password: str = "hunter2"', 'db_password: str = "<secret>"'),
        ('conn = {"password": "s3cret", "user": "bob"}', 'conn = {"password": "<secret>", "user": "bob"}'),
        ('login(user, password="pw")', 'login(user, password="<secret>")'),
        ('password = "PLANT', 'password = "<secret>'),  # the cursor line, typed so far
        ("secret=abc12345", "secret=<secret>"),
        ("token: abc1234def", "token: <secret>"),
        ("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "AWS_ACCESS_KEY_ID=<secret>"),
        (f"gh = '{GH_TOKEN}'", "gh = '<secret>'"),
        ("Authorization: Bearer abcdef123456789", "Authorization: Bearer <secret>"),
        ('headers = {"Authorization": "Bearer abcdef123456789"}', 'headers = {"Authorization": "<secret>"}'),
        ('url = "postgres://bob:pw12345@db.example.com/x"', 'url = "postgres://bob:<secret>@db.example.com/x"'),
        ("slack = xoxb-1234567890-abcdefghij", "slack = <secret>"),
    ],
)
def test_credentials_are_masked(line: str, masked: str):
    assert mask_credentials(line) == masked
    assert secrets.has_credential(line)


@pytest.mark.parametrize(
    "line",
    ["token: str", "max_tokens: int = 48", "token = get_token_v2()", 'if password == "x":', "for token in tokens:",
     'password = os.environ["DB_PASSWORD"]', 'SECRET_KEY = config("SECRET_KEY")', "self.api_key = api_key",
     "the token is passed to basic auth here", 'tokenizer = Tokenizer("gpt2")', "pwd = os.getcwd()"],
)  # fmt: skip
def test_code_about_credentials_is_left_alone(line: str):
    assert mask_credentials(line) is line
    assert not secrets.has_credential(line)


def test_a_private_key_block_is_masked_line_for_line():
    body = "MIIEowIBAAKCAQEA1234567890abcdefghijABCDEFGHIJ\nQWERTYUIOPasdfghjkl0987654321zxcvbnmZXCVBNM\n"
    text = f"x = 1\n-----BEGIN RSA PRIVATE KEY-----\n{body}-----END RSA PRIVATE KEY-----\ny = 2\n"
    masked = mask_credentials(text)
    assert masked == f"x = 1\n-----BEGIN RSA PRIVATE KEY-----\n{PLACEHOLDER}\n{PLACEHOLDER}\n-----END RSA PRIVATE KEY-----\ny = 2\n"
    cut = mask_credentials(body)  # a window that starts inside the block
    assert cut == f"{PLACEHOLDER}\n{PLACEHOLDER}\n"


PIECES = [*"aZ09_=:\"' \n-.k/+@", "password", "token", "sk-", "Bearer ", "-----BEGIN PRIVATE KEY-----", "://"]


@given(st.lists(st.sampled_from(PIECES)).map("".join))
def test_masking_keeps_every_line_and_is_idempotent(text: str):
    masked = mask_credentials(text)
    assert masked.count("\n") == text.count("\n")
    assert mask_credentials(masked) == masked


def test_cacheable_only_without_credentials():
    assert secrets.cacheable("def f():\n    ", "return 1")
    assert not secrets.cacheable(f'password = "{PLACEHOLDER}"\n', "x")  # the prompt was masked
    assert not secrets.cacheable("key = ", f'"{GH_TOKEN}"')  # the model wrote one


# -- where it applies ------------------------------------------------------------------


def test_the_prompt_masks_the_document_and_the_snippets():
    text = 'DB_PASSWORD = "PLANTED-PW-1"\n\n\ndef connect(host):\n    token = "' + GH_TOKEN[:12]
    ctx = build_context(text, 4, len(text.rsplit("\n", 1)[1]), "python", explicit=True)
    snippet = Snippet("settings.py", "AWS_KEY = 'AKIAPLANTED000000001'\n", 1.0, 0, "definition")
    prompt = build_prompt(QWEN, ctx, path="app.py", repo_name="r", snippets=[snippet])
    assert "PLANTED" not in prompt.text and "ghp_" not in prompt.text
    assert prompt.text.count(PLACEHOLDER) == 3
    assert prompt.text.endswith('token = "' + PLACEHOLDER)


def make_engine(backend: FakeBackend, **completion) -> Engine:
    config = Config(completion=CompletionConfig(**completion))
    return Engine(config, QWEN, backend=backend, cache=CompletionCache(backend.identity, None))


ENV = "API_KEY=sk-test-PLANTED1234567890abcdef\nDEBUG=1\n"


async def test_a_secret_file_is_never_completed_prefilled_or_warmed_up():
    backend = FakeBackend()
    engine = make_engine(backend)
    env = Document("file:///w/.env", ".env", ENV, "text")
    result = await engine.complete(env, 1, 7, explicit=True)
    assert (result.text, result.reason) == ("", secrets.SECRET_FILE)
    assert engine._prefill_request(env, 1, 7) is None
    ordinary = Document("file:///w/app.py", "app.py", "def add(a, b):\n    \n", "python")
    assert engine._prefill_request(ordinary, 1, 4) is not None  # the same planner plans for others
    engine.warmup(env)  # warms the model on an empty prompt, never on the file
    await _until(lambda: len(backend.calls) == 1)
    assert backend.calls and all("PLANTED" not in r.prompt and "DEBUG" not in r.prompt for r in backend.calls)
    engine.close()


async def _until(condition, timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        await asyncio.sleep(0.01)


async def test_a_completion_with_a_credential_is_never_cached():
    backend = FakeBackend(responses={"def login": f'token = "{GH_TOKEN}"', "def add": "return a + b"})
    engine = make_engine(backend, speculate=False)
    worker = engine.scheduler.models.worker
    login = Document("file:///w/a.py", "a.py", "def login(user):\n    \n", "python")
    result = await engine.complete(login, 1, 4, explicit=True)
    assert result.source == "model" and GH_TOKEN in result.text  # shown to the user, who has the file
    await _until(worker.idle)
    assert worker.idle() and not engine.cache._memory
    masked = Document("file:///w/b.py", "b.py", 'PASSWORD = "PLANTED-PW-1"\ndef add(a, b):\n    \n', "python")
    await engine.complete(masked, 2, 4, explicit=True)
    await _until(worker.idle)
    assert not engine.cache._memory
    plain = Document("file:///w/c.py", "c.py", "def add(a, b):\n    \n", "python")
    await engine.complete(plain, 1, 4, explicit=True)
    await _until(lambda: bool(engine.cache._memory))
    assert len(engine.cache._memory) == 1  # an ordinary completion is cached
    engine.close()


async def test_a_completion_copying_the_mask_is_not_shown():
    backend = FakeBackend(responses={"COPY = ": f'"{PLACEHOLDER}"'})
    engine = make_engine(backend, speculate=False)
    text = 'PASSWORD = "PLANTED-PW-1"\nCOPY = \n'
    result = await engine.complete(Document("file:///w/a.py", "a.py", text, "python"), 1, 7, explicit=True)
    assert len(backend.calls) == 1 and result.text == ""
    engine.close()


def test_the_scheduler_never_stores_a_credential():
    cache = CompletionCache("m", None)
    scheduler = Scheduler(None, cache)
    for prompt, text in [(f'pw = "{PLACEHOLDER}"\nx = ', "1"), ("key = ", f'"{GH_TOKEN}"'), ("x = ", "1")]:
        fut: Future = Future()
        fut.set_result(Generation(text, "stop"))
        scheduler._store(prompt, fut, False, cache)
    assert list(cache._memory.values()) == ["1"] and cache.get("x = ") is not None


def test_the_index_holds_masked_text_only(tmp_path: Path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "config.py").write_text('import os\n\nDB_PASSWORD = "PLANTED-PW-1"\nAPI = "sk-test-PLANTED1234567890"\n')
    (root / ".env").write_text(ENV)
    index = WorkspaceIndex(root, tmp_path / "store", IndexConfig())
    index.build()
    assert index.files() == ["config.py"]
    assert index.text("config.py", 0, 3) == f'import os\n\nDB_PASSWORD = "{PLACEHOLDER}"\nAPI = "{PLACEHOLDER}"'
    index.update_file(root / "config.py", 'TOKEN = "PLANTED-buffer-12345"\n')
    index.save(force=True)
    stored = gzip.decompress(index.store_path.read_bytes())
    assert b"config.py" in stored and b"PLANTED" not in stored
