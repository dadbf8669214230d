"""The file's header (its imports) at the start of the prompt once the window has scrolled past them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from slm_lsp.config import Config
from slm_lsp.context import build_context
from slm_lsp.engine import Document, Engine
from slm_lsp.context.file import FileContext, file_context
from slm_lsp.indexing.header import file_header
from slm_lsp.prompt import build_prompt
from slm_lsp.templates import QWEN

# the head of pip/_internal/resolution/resolvelib/resolver.py (real code)
RESOLVER_HEAD = '''from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, cast

from pip._vendor.resolvelib import BaseReporter, ResolutionImpossible, ResolutionTooDeep

from pip._internal.exceptions import ResolutionTooDeepError
from pip._internal.resolution.resolvelib.reporter import (
    PipDebuggingReporter,
    PipReporter,
)

from .base import Candidate, Requirement

if TYPE_CHECKING:
    from pip._vendor.resolvelib.resolvers import Result as RLResult

    Result = RLResult[Requirement, Candidate, str]


logger = logging.getLogger(__name__)


class Resolver(BaseResolver):
    _allowed_strategies = {"eager", "only-if-needed", "to-satisfy-only"}
'''
BODY = "".join(f"    def method_{i}(self) -> int:\n        return {i}\n\n" for i in range(60))
DOCUMENT = RESOLVER_HEAD + BODY


def test_header_is_the_import_statements_one_per_line():
    assert file_header("python", DOCUMENT, 1000) == (
        "from __future__ import annotations\n"
        "import contextlib\n"
        "import logging\n"
        "from typing import TYPE_CHECKING, cast\n"
        "from pip._vendor.resolvelib import BaseReporter, ResolutionImpossible, ResolutionTooDeep\n"
        "from pip._internal.exceptions import ResolutionTooDeepError\n"
        "from pip._internal.resolution.resolvelib.reporter import (PipDebuggingReporter, PipReporter)\n"
        "from .base import Candidate, Requirement\n"
        "from pip._vendor.resolvelib.resolvers import Result as RLResult\n"
    )


def test_only_imports_above_the_window_are_in_the_header():
    assert file_header("python", DOCUMENT, 3) == "from __future__ import annotations\nimport contextlib\n"
    assert file_header("python", DOCUMENT, 0) == ""


def test_other_languages_and_plain_text():
    js = 'import { readFile } from "node:fs";\nimport path from "path";\n\nexport function f() {}\n'
    assert file_header("javascript", js, 10) == 'import { readFile } from "node:fs";\nimport path from "path";\n'
    go = 'package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n\nfunc main() {}\n'
    assert file_header("go", go, 10) == 'package main\nimport (\n\t"fmt"\n\t"os"\n)\n'
    assert file_header("text", "import os\n", 10) == ""
    assert file_header("python", "def f(:\n  import os\n", 10) == ""  # not top level


def test_engine_puts_the_header_first_in_the_prefix_and_typing_only_appends():
    engine = Engine(Config(), QWEN, backend=None, cache=None)
    line = DOCUMENT.count("\n") - 2  # far below the imports: the 48-line window no longer has them
    lines = DOCUMENT.split("\n")
    previous = ""
    for typed in ("", "  ", "  x", "  x = 1"):
        text = "\n".join(lines[:line] + [typed] + lines[line + 1 :])
        doc = Document("file:///r.py", "r.py", text, "python")
        _, prompt = engine.prepare(doc, line, len(typed), explicit=False)
        assert prompt.text.startswith("<|fim_prefix|>from __future__ import annotations\nimport contextlib\n")
        assert "import Result as RLResult\n\n" in prompt.text  # then a gap, then the window
        assert prompt.text.startswith(previous)
        previous = prompt.text
    engine.config = replace(Config(), context=replace(Config().context, file_context=False))
    _, prompt = engine.prepare(doc, line, len(typed), explicit=False)
    assert "import" not in prompt.text


def test_no_header_when_the_window_still_shows_the_imports():
    ctx = build_context(DOCUMENT, 30, 0, "python")
    header = file_header("python", DOCUMENT, ctx.prefix_start_line)
    assert header == ""
    assert build_prompt(QWEN, ctx, file=FileContext(header=header)).text.count("import contextlib") == 1


# pygls-like code (real shapes of code): a long file whose far parts share names with the cursor's code
FAR_ABOVE = '''def offset_at_position(lines, position):
    row, col = position.line, position.character
    return col + sum(len(line) for line in lines[:row])
'''
FILLER = "".join(f"def unrelated_{i}(value):\n    return value * {i}\n\n" for i in range(30))
FILLER_BELOW = "".join(f"def helper_{i}(item):\n    return [item] * {i}\n\n" for i in range(30))
FAR_BELOW = '''def word_at_position(lines, position):
    row, col = position.line, position.character
    line = lines[row]
    return line[:col].split()[-1]
'''


def test_far_parts_like_the_cursor_code_join_the_prompt_in_file_order():
    from slm_lsp.context.file import file_context, segments
    from slm_lsp.prompt import estimate_tokens

    cursor_code = "def position_to_offset(lines, position):\n    row, col = position.line, position.character\n"
    text = "import os\n\n" + FAR_ABOVE + "\n" + FILLER + cursor_code + "    \n\n" + FILLER_BELOW + FAR_BELOW
    lines = text.split("\n")
    row = lines.index("    ")
    window = (row - 10, row + 10)
    fc = file_context("python", text, row, window, parts_tokens=200, count_tokens=estimate_tokens)
    assert fc.header == "import os\n"
    assert fc.above == FAR_ABOVE.rstrip("\n") + "\n\n"
    assert fc.below == "\n" + FAR_BELOW.rstrip("\n") + "\n"
    assert "unrelated" not in fc.above + fc.below and "helper" not in fc.above + fc.below
    assert file_context("python", text, row, window, parts_tokens=0, count_tokens=estimate_tokens).above == ""
    # the query leaves the cursor line out: typing on it keeps the selection (and the KV cache)
    typed = text.replace(cursor_code + "    \n", cursor_code + "    return unrelated_3(x)\n")
    again = file_context("python", typed, row, window, parts_tokens=200, count_tokens=estimate_tokens)
    assert again == fc
    assert [(s.start, s.end) for s in segments(["a", "b", "", "c"] + ["d"] * 13)] == [(0, 1), (3, 14), (15, 16)]


def test_prompt_with_file_parts_keeps_fim_order():
    ctx = build_context(DOCUMENT, DOCUMENT.count("\n") - 2, 0, "python")
    fc = FileContext(header="import os\n", above="def a():\n    pass\n\n", below="\ndef z():\n    pass\n")
    text = build_prompt(QWEN, ctx, file=fc).text
    assert text.startswith("<|fim_prefix|>import os\n\ndef a():\n    pass\n\n")
    assert text.split("<|fim_middle|>")[0].endswith("\ndef z():\n    pass\n")


def test_with_the_documents_tree_the_header_is_read_not_parsed(monkeypatch) -> None:
    from slm_lsp.indexing import header, symbols

    text = "import os\nfrom typing import Any\n\n" + "x = 1\n" * 80 + "def f():\n    return os.sep\n"
    root = symbols.parse("python", text)
    expected = file_context("python", text, 83, (60, 84), parts_tokens=0, count_tokens=len)
    header.import_spans.cache_clear()
    monkeypatch.setattr(header, "parse", lambda *a: pytest.fail("the buffer was parsed again"))
    found = file_context("python", text, 83, (60, 84), parts_tokens=0, count_tokens=len, root=root)
    assert found == expected and found.header == "import os\nfrom typing import Any\n"
