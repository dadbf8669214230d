"""Missing imports: free names by syntax, hints from the index, and the statement on the cursor's line."""

from __future__ import annotations

import asyncio
from pathlib import Path

from slm_lsp.autoimport import Hint, missing_imports, render, single_name_style, suggest
from slm_lsp.indexing.free_names import free_names
from slm_lsp.config import Config
from slm_lsp.engine import Document, Engine
from slm_lsp.indexing.model import FileSymbols
from slm_lsp.indexing.symbols import extract
from slm_lsp.retrieval import retrieve
from slm_lsp.templates import QWEN

from .test_retrieval import build

CODE = '''"""Module docstring: Mentions Things and calls(nothing)."""

import os


@final
class Reader(Base):
    def read(self, path, *, mode="r", **options):
        buffer = io.StringIO()
        for line, number in zip(path, count()):
            total: int = helper(line, key=number)
        with open(path) as handle:
            handle.read(mode, options)
        return Path(path).stat(), os.sep, buffer, total
'''


def test_free_names_come_from_the_syntax_tree_not_from_strings_or_bindings() -> None:
    names = free_names(CODE, 4, "python")
    assert set(names) == {"final", "Base", "io", "count", "helper", "Path"}
    # not: Things/calls (docstring), os (imported), Reader/read (defined), path/mode/options (parameters),
    # buffer/line/number/total/handle (bound), key (keyword argument), StringIO/stat/sep (attributes),
    # zip/open (builtins), self
    assert free_names(CODE, 13, "python") == ["Path"]  # only the code from that row on


def test_other_languages_fall_back_to_a_lexer() -> None:
    js = 'import x from "x";\n\nexport function f() {\n  return readFile("a") + path.join(Widget);\n}\n'
    assert set(free_names(js, 1, "javascript")) == {"readFile", "path", "Widget"}


FILES = {
    "pkg/cache.py": "class SafeFileCache:\n    pass\n\n\ndef is_from_cache(resp):\n    return False\n",
    "pkg/pathlib.py": "def rm_rf(p):\n    pass\n\n\ndef cleanup_dead_symlinks(p):\n    pass\n",
    "pkg/session.py": "from pkg.cache import SafeFileCache\n",
}


def own(path: str, document: str) -> FileSymbols:
    return extract(path, "python", document)


def test_a_name_nobody_imports_joins_the_module_its_file_is_imported_as(tmp_path: Path) -> None:
    index = build(tmp_path, FILES)
    document = "import os\n\n\ndef get():\n    if is_from_cache(1):\n        return SafeFileCache()\n"
    hints = missing_imports(index, own("pkg/download.py", document), document, 1)
    # is_from_cache: imported nowhere, defined in pkg/cache.py, which session.py imports as pkg.cache
    assert hints == [Hint("pkg.cache", "", ("SafeFileCache", "is_from_cache"), "pkg/session.py")]


def test_the_files_own_imports_and_the_standard_library_name_modules_too(tmp_path: Path) -> None:
    index = build(tmp_path, FILES)
    document = "from .pathlib import rm_rf\n\n\ndef clean(p):\n    cleanup_dead_symlinks(p)\n    rm_rf(p)\n    return locale.getlocale()\n"
    hints = missing_imports(index, own("pkg/tmpdir.py", document), document, 1)
    assert Hint(".pathlib", "", ("cleanup_dead_symlinks",), "pkg/pathlib.py") in hints
    assert Hint("locale", "", (), "pkg/tmpdir.py") in hints  # a stdlib module used as `locale.`
    assert missing_imports(index, own("pkg/tmpdir.py", document), document, 4) == []  # below the block


def test_rendering_follows_the_files_style() -> None:
    hint = Hint("typing", "", ("cast", "Any", "TYPE_CHECKING"), "a.py")
    assert render("python", [hint]) == ["from typing import TYPE_CHECKING, Any, cast"]  # isort's order
    assert render("python", [hint], single=True) == [
        "from typing import TYPE_CHECKING", "from typing import Any", "from typing import cast",
    ]  # fmt: skip
    assert render("python", [Hint("np", "", (), "a.py"), Hint("numpy", "np", (), "a.py")]) == ["import np", "import numpy as np"]
    assert render("typescript", [Hint("./util", "", ("a",), "a.ts")]) == ['import { a } from "./util";']
    pytest_style = "from typing import Any\nfrom typing import Literal\nimport os\n"
    assert single_name_style("python", pytest_style)
    assert not single_name_style("python", "from typing import Any, Literal\nfrom os import path\n")


ISORT = """from __future__ import annotations

import contextlib
import os
{line}
import traceback
from collections.abc import Iterable

from pkg.cache import SafeFileCache
"""


def ask(template: str, line: str, statements: list[str]) -> str | None:
    document = template.format(line=line)
    row = template.split("\n").index("{line}")
    return suggest("python", document, row, line, "", statements)


def test_the_typed_part_and_the_blocks_order_choose_the_statement() -> None:
    statements = ["import sys", "from pkg.cache import is_from_cache", "import abc"]
    assert ask(ISORT, "import ", statements) == "sys"  # abc would sort before contextlib
    assert ask(ISORT, "", statements) == "import sys"
    assert ask(ISORT, "from ", statements) is None  # `from` statements come after the `import` ones here
    assert ask(ISORT, "import s", ["import sys"]) == "ys"
    assert ask(ISORT, "x = ", statements) is None  # not an import
    assert ask(ISORT, "import ", ["import abc"]) is None  # nothing fits between os and traceback


def test_force_sort_within_sections_order_is_recognised() -> None:
    pytest_style = "from __future__ import annotations\n\nfrom io import StringIO\n{line}\nfrom typing import IO\nimport warnings\n"
    assert ask(pytest_style, "", ["import urllib", "import tempfile"]) == "import tempfile"
    assert ask(pytest_style, "from typing import ", ["from typing import Any"]) == "Any"  # Any < IO
    assert ask(pytest_style, "from typing import ", ["from typing import TextIO"]) is None  # IO < TextIO: below


def test_an_empty_line_must_be_inside_the_import_block() -> None:
    after_block = "import os\nimport sys\n{line}\n\ndef f():\n    pass\n"
    assert ask(after_block, "", ["import time"]) is None  # code usually starts here
    section_start = "import os\nimport sys\n\n{line}\nfrom pkg.b import b\n"
    assert ask(section_start, "", ["from pkg.a import a"]) == "from pkg.a import a"
    document = ISORT.format(line="")
    row = ISORT.split("\n").index("{line}")
    assert suggest("python", document, row, "", "x", ["import sys"]) is None  # text after the cursor
    assert suggest("python", document, row, "", "", []) is None


def test_the_engine_answers_an_import_line_from_the_index_without_the_model(tmp_path: Path, monkeypatch) -> None:
    index = build(tmp_path, FILES)
    document = "import os\n\nimport sys\n\n\ndef get():\n    return SafeFileCache(os.sep, sys.path)\n"
    lines = document.split("\n")
    engine = Engine(Config(), QWEN, backend=None, cache=None)  # no model at all

    def retriever(doc: Document, ctx) -> tuple:
        prefix = "\n".join(lines[:2]) + "\n"
        return retrieve(index, doc.path, "python", prefix, ctx.line_prefix, "\n" + "\n".join(lines[3:]),
                        budget_tokens=256, min_score=0.2, document=doc.text, row=2)  # fmt: skip

    engine.retriever = retriever
    typed = "from pkg."
    text = "\n".join(lines[:2] + [typed] + lines[3:])
    doc = Document("file:///w/pkg/download.py", "pkg/download.py", text, "python")
    completion = asyncio.run(engine.complete(doc, 2, len(typed)))
    assert (completion.text, completion.source) == ("cache import SafeFileCache", "import")
    elsewhere = asyncio.run(engine.complete(doc, 6, 4))  # in the code: the model's job, and there is none
    assert elsewhere.source == "none"

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr("slm_lsp.autoimport.complete_line", broken)  # a bug in an extra never fails the request
    assert asyncio.run(engine.complete(doc, 2, len(typed))).source == "none"



def test_the_engine_reads_the_hints_not_the_snippet_text() -> None:
    """Retrieval hands structured hints; what the prompt shows of them is never parsed back."""
    from slm_lsp.retrieval import Snippet

    hint = Hint("pkg.cache", "", ("SafeFileCache",), "pkg/other.py")
    engine = Engine(Config(), QWEN, backend=None, cache=None)
    engine.retriever = lambda doc, ctx: (Snippet("pkg/other.py", "# shown to the model", 0.9, 0, "import", (hint,)),)
    text = "import os\n\nfrom pkg.\n\n\ndef get():\n    return SafeFileCache(os.sep)\n"
    doc = Document("file:///w/pkg/download.py", "pkg/download.py", text, "python")
    completion = asyncio.run(engine.complete(doc, 2, len("from pkg.")))
    assert (completion.text, completion.source) == ("cache import SafeFileCache", "import")


def test_a_file_that_imports_its_neighbours_relatively_gets_relative_hints_for_them(tmp_path: Path) -> None:
    index = build(tmp_path, {**FILES, "pkg/sub/deep.py": "class Deep:\n    pass\n", "pkg/user.py": "from pkg.sub.deep import Deep\n"})
    document = "from .pathlib import rm_rf\n\n\ndef f():\n    return SafeFileCache(), Deep(), rm_rf\n"
    modules = {h.module for h in missing_imports(index, own("pkg/tmpdir.py", document), document, 1)}
    assert modules == {".cache", "pkg.sub.deep"}  # pkg/cache.py is beside it; pkg/sub/deep.py is not
    absolute = document.replace("from .pathlib", "from pkg.pathlib")
    assert {h.module for h in missing_imports(index, own("pkg/tmpdir.py", absolute), absolute, 1)} == {"pkg.cache", "pkg.sub.deep"}


def test_a_renamed_import_keeps_its_as(tmp_path: Path) -> None:
    index = build(tmp_path, {**FILES, "pkg/user.py": "from pkg.cache import is_from_cache as cached\n"})
    document = "import os\n\n\ndef f(r):\n    return cached(r)\n"
    hints = missing_imports(index, own("pkg/other.py", document), document, 1)
    assert render("python", hints) == ["from pkg.cache import is_from_cache as cached"]


def test_a_module_nobody_imports_from_yet_is_named_like_the_ones_that_are(tmp_path: Path) -> None:
    index = build(tmp_path, {**FILES, "pkg/fresh.py": "def brand_new():\n    pass\n", "pkg/user.py": "from pkg.pathlib import rm_rf\n"})
    document = "from pkg.cache import SafeFileCache\n\n\ndef f():\n    return SafeFileCache(), brand_new(), rm_rf()\n"
    hints = missing_imports(index, own("app.py", document), document, 1)
    # pkg.cache -> pkg/cache.py and pkg.pathlib -> pkg/pathlib.py agree: a module is its path, dotted
    assert Hint("pkg.fresh", "", ("brand_new",), "pkg/fresh.py") in hints
