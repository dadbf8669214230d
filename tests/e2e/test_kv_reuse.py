"""KV cache reuse against the real default model: moved runs, gaps, cuts at the context limit."""

from __future__ import annotations

import threading

import pytest

from slm_lsp import kvreuse
from slm_lsp.backend import Request
from slm_lsp.templates import QWEN

pytestmark = pytest.mark.model

# a real file's worth of distinct lines (from pip/_internal/utils/misc.py, shortened)
LINES = [
    "import errno\n",
    "import getpass\n",
    "import hashlib\n",
    "import logging\n",
    "import os\n",
    "import posixpath\n",
    "import shutil\n",
    "import stat\n",
    "import sys\n",
    "\n",
    "logger = logging.getLogger(__name__)\n",
    "\n",
    "def ensure_dir(path: str) -> None:\n",
    '    """os.path.makedirs without EEXIST."""\n',
    "    try:\n",
    "        os.makedirs(path)\n",
    "    except OSError as e:\n",
    "        if e.errno != errno.EEXIST and e.errno != errno.ENOTEMPTY:\n",
    "            raise\n",
    "\n",
    "def get_prog() -> str:\n",
    "    try:\n",
    "        prog = os.path.basename(sys.argv[0])\n",
    "        if prog in ('__main__.py', '-c'):\n",
    '            return f"{sys.executable} -m pip"\n',
    "        return prog\n",
    "    except (AttributeError, TypeError, IndexError):\n",
    "        pass\n",
    '    return "pip"\n',
    "\n",
    "def display_path(path: str) -> str:\n",
    '    """Gives the display value for a given path, making it relative to cwd if possible."""\n',
    "    path = os.path.normcase(os.path.abspath(path))\n",
    "    if path.startswith(os.getcwd() + os.path.sep):\n",
    '        path = "." + path[len(os.getcwd()) :]\n',
    "    return path\n",
    "\n",
]
SUFFIX = "\n\ndef backup_dir(dir: str, ext: str = \".bak\") -> str:\n    n = 1\n"
HEAD = "def is_local(path: str) -> bool:\n    return path.startswith("


def fim(lines: list[str], repo: str = "") -> str:
    return repo + QWEN.fim("".join(lines), SUFFIX) + HEAD


@pytest.fixture(scope="module")
def backend():
    from slm_lsp import models
    from slm_lsp.llama_backend import LlamaBackend

    b = LlamaBackend(models.resolve("", out=None), QWEN, n_ctx=1024)
    assert (b.kv_reuse_chunk, b.kv_reuse_parts) == (16, "whole")
    yield b
    b.close()


def run(backend, prompt: str, *, scratch: bool = False, max_tokens: int = 8):
    if scratch:
        backend.llm.n_tokens = 0
    return backend.complete(Request(prompt, max_tokens=max_tokens, stop=("\n",), heal=False), threading.Event())


def tokens(backend, text: str) -> list[int]:
    return backend.llm.tokenize(text.encode(), add_bos=False, special=True)


def assert_cache_holds(backend, prompt_tokens: list[int]) -> None:
    """llama-cpp-python's bookkeeping and llama.cpp's memory both describe the new prompt (+ what was generated)."""
    import llama_cpp

    llm = backend.llm
    assert llm.input_ids[: len(prompt_tokens)].tolist() == prompt_tokens
    mem = llama_cpp.llama_get_memory(llm.ctx)
    assert llama_cpp.llama_memory_seq_pos_min(mem, 0) == 0
    assert llama_cpp.llama_memory_seq_pos_max(mem, 0) == llm.n_tokens - 1
    assert llama_cpp.llama_memory_seq_pos_max(mem, kvreuse.PARKING) == -1


def moved(backend, a: str, b: str, **settings):
    """Prompt a from scratch, then b reusing a's cache (with these backend settings); b's generation
    and the common prefix length."""
    run(backend, a, scratch=True)
    lcp = kvreuse.common_prefix(backend.llm.input_ids[: backend.llm.n_tokens].tolist(), tokens(backend, b))
    defaults = {key: getattr(backend, key) for key in settings}
    try:
        for key, value in settings.items():
            setattr(backend, key, value)
        g = run(backend, b)
    finally:
        for key, value in defaults.items():
            setattr(backend, key, value)
    assert g.stop_reason in ("stop", "length")
    assert_cache_holds(backend, tokens(backend, b))
    return g, lcp


def test_an_exact_prefix_is_reused_and_generates_what_a_fresh_cache_does(backend):
    a = fim(LINES[:30])
    b = a + "os.path"  # typing on: b extends a
    fresh = run(backend, b, scratch=True)
    run(backend, a, scratch=True)
    g = run(backend, b)
    lcp = kvreuse.common_prefix(tokens(backend, a), tokens(backend, b))
    assert g.reused_tokens == lcp > len(tokens(backend, a)) - 3  # "(" + "os" may be one token
    assert g.text == fresh.text and g.text
    assert_cache_holds(backend, tokens(backend, b))


def test_a_piece_cut_out_of_the_middle_moves_the_rest(backend):
    a, b = fim(LINES), fim(LINES[:12] + LINES[20:])
    g, lcp = moved(backend, a, b, kv_reuse_parts="any", kv_reuse_down=True)
    assert g.reused_tokens > lcp + 100  # the rest of the file moved down
    assert g.prompt_tokens - g.reused_tokens < 16  # only the tail is evaluated
    g, lcp = moved(backend, a, b)  # by default nothing moves down: its state would still hold the cut text
    assert g.reused_tokens == lcp


def test_a_piece_inserted_is_evaluated_in_the_gap(backend):
    a, b = fim(LINES[:12] + LINES[20:]), fim(LINES)
    g, lcp = moved(backend, a, b, kv_reuse_parts="any")
    inserted = len(tokens(backend, "".join(LINES[12:20])))
    assert g.reused_tokens > lcp + 100
    assert g.prompt_tokens - g.reused_tokens <= inserted + 16
    g, lcp = moved(backend, a, b)  # by default only whole parts move: the FIM suffix
    assert lcp + 16 < g.reused_tokens < lcp + 60


def test_reordered_snippets_keep_what_follows_them(backend):
    snippets = {
        "pip/_internal/locations.py": "def get_src_prefix() -> str:\n    return os.path.join(sys.prefix, 'src')\n",
        "pip/_internal/exceptions.py": "class PipError(Exception):\n    \"\"\"The base pip error.\"\"\"\n",
    }

    def repo(order: list[str]) -> str:
        body = "".join(f"<|file_sep|>{p}\n{snippets[p]}" for p in order)
        return f"<|repo_name|>pip\n{body}<|file_sep|>pip/_internal/utils/misc.py\n"

    order = list(snippets)
    g, lcp = moved(backend, fim(LINES, repo(order)), fim(LINES, repo(order[::-1])))
    assert g.reused_tokens > lcp + 200  # the whole file after the snippets
    g, lcp = moved(backend, fim(LINES, repo(order[:1])), fim(LINES, repo(order)))  # a snippet more
    assert g.reused_tokens > lcp + 200


def test_a_prompt_longer_than_the_context_is_cut_after_its_head_and_the_cut_moves(backend_small):
    long_prompt = fim(LINES * 3)
    g = run(backend_small, long_prompt, scratch=True, max_tokens=4)
    budget = backend_small.n_ctx - 4 - 1
    assert len(tokens(backend_small, long_prompt)) > budget
    assert g.prompt_tokens == budget
    assert backend_small.llm.input_ids[0] == tokens(backend_small, QWEN.prefix)[0]  # the head is kept
    # typing on at the end: the cut moves by what was typed, the rest is moved, not evaluated again
    typed = long_prompt + "os.getcwd"
    g2 = run(backend_small, typed, max_tokens=4)
    assert g2.prompt_tokens == budget
    assert g2.prompt_tokens - g2.reused_tokens < 40  # what was typed and the FIM middle (the head line)
    assert_cache_holds(backend_small, kvreuse.fit(tokens(backend_small, typed), budget, 1))


@pytest.fixture(scope="module")
def backend_small():
    from slm_lsp import models
    from slm_lsp.llama_backend import LlamaBackend

    b = LlamaBackend(models.resolve("", out=None), QWEN, n_ctx=256)
    yield b
    b.close()
