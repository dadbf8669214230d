"""Context extraction: windows, modes, indentation, literals, parse errors.

The snippets are copied from real projects: packaging (`_elffile.py`),
git's contrib/persistent-https (`socket.go`), rustc's error-index generator
(`main.rs`), agent-base (`index.ts`), urllib3's emscripten fetch worker (JS)
and markupsafe (`_speedups.c`).
"""

from __future__ import annotations

import time

import pytest

from slm_lsp.context import (
    LINE_CAP,
    Context,
    Mode,
    build_context,
    mask_literals,
    parse_errors,
)
from slm_lsp.languages import parser

CURSOR = "\u2588"  # the cursor in the snippets below

ELFFILE_PY = '''\
from __future__ import annotations

import enum
import os
import struct
from typing import IO


class ELFInvalid(ValueError):
    pass


class EIClass(enum.IntEnum):
    C32 = 1
    C64 = 2


class ELFFile:
    """
    Representation of an ELF executable.
    """

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f

        try:
            ident = self._read("16B")
        except struct.error as e:
            raise ELFInvalid("unable to parse identification") from e
        magic = bytes(ident[:4])
        if magic != b"\\x7fELF":
            raise ELFInvalid(f"invalid magic: {magic!r}")

        self.capacity = ident[4]  # Format for program header (bitness).
        self.encoding = ident[5]  # Data structure encoding (endianness).

    def _read(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self._f.read(struct.calcsize(fmt)))
'''

SOCKET_GO = """\
package main

import (
\t"log"
\t"os"
\t"path/filepath"
)

// A Socket is a wrapper around a Unix socket that verifies directory
// permissions.
type Socket struct {
\tDir string
}

func defaultDir() string {
\tsockPath := ".git-credential-cache"
\tif home := os.Getenv("HOME"); home != "" {
\t\treturn filepath.Join(home, sockPath)
\t}
\tlog.Printf("socket: cannot find HOME path. using relative directory %q for socket", sockPath)
\treturn sockPath
}

// Path returns the fully specified file name of the unix socket.
func (s Socket) Path() string {
\treturn filepath.Join(s.Dir, "persistent-https-proxy-socket")
}
"""

MAIN_RS = """\
use std::error::Error;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

enum OutputFormat {
    HTML,
    Markdown,
    Unknown(String),
}

impl OutputFormat {
    fn from(format: &str) -> OutputFormat {
        match &*format.to_lowercase() {
            "html" => OutputFormat::HTML,
            "markdown" => OutputFormat::Markdown,
            s => OutputFormat::Unknown(s.to_owned()),
        }
    }
}

/// Output an HTML page for the errors in `err_map` to `output_path`.
fn render_markdown<'a>(output_path: &'a Path) -> Result<(), Box<dyn Error>> {
    let mut output_file = File::create(output_path)?;
    Ok(())
}
"""

AGENT_TS = """\
import net from 'net';
import createDebug from 'debug';

const debug = createDebug('agent-base');

function isAgent(v: any): v is createAgent.AgentLike {
\treturn Boolean(v) && typeof v.addRequest === 'function';
}

function isSecureEndpoint(): boolean {
\tconst { stack } = new Error();
\tif (typeof stack !== 'string') return false;
\treturn stack.split('\\n').some(l => l.indexOf('(https.js:') !== -1  || l.indexOf('node:https:') !== -1);
}
"""

WORKER_JS = """\
let Status = {
  SUCCESS_HEADER: -1,
  SUCCESS_EOF: -2,
};

let connections = new Map();
const encoder = new TextEncoder();

self.addEventListener("message", async function (event) {
  if (event.data.close) {
    let connectionID = event.data.close;
    connections.delete(connectionID);
    return;
  }
  console.log(`fetch ${event.data.url} done`);
});
"""

SPEEDUPS_C = """\
#include <Python.h>

static PyObject*
escape_unicode_kind1(PyUnicodeObject *in)
{
\tPy_UCS1 *inp = PyUnicode_1BYTE_DATA(in);
\tPy_ssize_t delta = 0;

\t/* count the characters that need escaping */
\tGET_DELTA(inp, inp_end, delta);
\tif (!delta) {
\t\tPy_INCREF(in);
\t\treturn (PyObject*)in;
\t}
\treturn out;
}
"""


def at(snippet: str, language: str, **options) -> Context:
    """build_context at the CURSOR mark in `snippet`."""
    offset = snippet.index(CURSOR)
    text = snippet.replace(CURSOR, "", 1)
    line = text.count("\n", 0, offset)
    character = offset - (text.rfind("\n", 0, offset) + 1)
    return build_context(text, line, character, language, **options)


def insert(text: str, marker_line: str, extra: str = "") -> str:
    """`text` with CURSOR placed at the end of the first line equal to `marker_line`."""
    lines = text.split("\n")
    index = lines.index(marker_line)
    lines[index] = marker_line + extra + CURSOR
    return "\n".join(lines)


def summary(ctx: Context) -> tuple[str, str, str]:
    return ctx.mode.value, ctx.reason, ctx.indent


# --- modes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "language", "expected"),
    [
        ("def add(a, b):" + CURSOR + "\n", "python", ("block", "after-block-opener", "    ")),
        (insert(ELFFILE_PY, "class EIClass(enum.IntEnum):"), "python", ("block", "after-block-opener", "    ")),
        (insert(ELFFILE_PY, "        try:"), "python", ("block", "after-block-opener", "            ")),
        ("x = foo(" + CURSOR + "\n", "python", ("line", "mid-expression", "")),
        ('x = "hel' + CURSOR + 'lo"\n', "python", ("none", "in-string", "")),
        ("x = 1  # comm" + CURSOR + "ent\n", "python", ("none", "in-comment", "")),
        ("x = 1  # comment" + CURSOR + "\n", "python", ("none", "in-comment", "")),
        (insert(ELFFILE_PY, "        magic = bytes(ident[:4])"), "python", ("line", "end-of-line", "        ")),
        (ELFFILE_PY.replace("bytes(ident[:4])", "bytes(" + CURSOR), "python", ("line", "mid-expression", "        ")),
        (insert(ELFFILE_PY, "        self._f = f", "\n"), "python", ("line", "between-statements", "        ")),
        ("class ELFInvalid(ValueError):\n" + CURSOR + "\n", "python", ("block", "after-block-opener", "    ")),
        ("x = {'a':" + CURSOR + "\n", "python", ("line", "mid-expression", "")),
        ("f = lambda x:" + CURSOR + "\n", "python", ("line", "mid-expression", "")),
        (insert(SOCKET_GO, "func (s Socket) Path() string {"), "go", ("block", "after-block-opener", "\t")),
        (insert(SOCKET_GO, "\tif home := os.Getenv(\"HOME\"); home != \"\" {"), "go", ("block", "after-block-opener", "\t\t")),
        (SOCKET_GO.replace('"persistent-https', '"persistent-' + CURSOR + "https"), "go", ("none", "in-string", "\t")),
        (SOCKET_GO.replace("// A Socket", "// A Soc" + CURSOR + "ket"), "go", ("none", "in-comment", "")),
        (insert(MAIN_RS, "impl OutputFormat {"), "rust", ("block", "after-block-opener", "    ")),
        (insert(MAIN_RS, "    let mut output_file = File::create(output_path)?;"), "rust", ("line", "end-of-line", "    ")),
        (MAIN_RS.replace('"html" => ', '"html" => ' + CURSOR), "rust", ("line", "text-after-cursor", "            ")),
        (MAIN_RS.replace("Result<(), Box<dyn Error>> {", "Result<(), Box<dyn Error>> {" + CURSOR), "rust",
         ("block", "after-block-opener", "    ")),
        (insert(AGENT_TS, "function isSecureEndpoint(): boolean {"), "typescript", ("block", "after-block-opener", "\t")),
        (AGENT_TS.replace("'agent-base'", "'agent-" + CURSOR + "base'"), "typescript", ("none", "in-string", "")),
        (AGENT_TS.replace("Boolean(v)", "Boolean(" + CURSOR + "v)"), "typescript", ("line", "text-after-cursor", "\t")),
        (insert(WORKER_JS, "  if (event.data.close) {"), "javascript", ("block", "after-block-opener", "    ")),
        (WORKER_JS.replace("${event.data.url}", "${event." + CURSOR + "data.url}"), "javascript",
         ("line", "text-after-cursor", "  ")),
        (WORKER_JS.replace("`fetch ", "`fe" + CURSOR + "tch "), "javascript", ("none", "in-string", "  ")),
        (insert(SPEEDUPS_C, "\tif (!delta) {"), "c", ("block", "after-block-opener", "\t\t")),
        (SPEEDUPS_C.replace("count the", "count " + CURSOR + "the"), "c", ("none", "in-comment", "\t")),
        (insert(SPEEDUPS_C, "\t/* count the characters that need escaping */"), "c", ("line", "end-of-line", "\t")),
        (insert(SPEEDUPS_C, "\tPy_ssize_t delta = 0;", "\n"), "c", ("line", "between-statements", "\t")),
    ],
)
def test_mode_decisions(snippet: str, language: str, expected: tuple[str, str, str]) -> None:
    assert summary(at(snippet, language)) == expected


def test_text_after_cursor_other_than_closers_means_one_line() -> None:
    assert summary(at("print(" + CURSOR + ")\n", "python")) == ("line", "mid-expression", "")
    assert summary(at("print(" + CURSOR + ", end='')\n", "python")) == ("line", "text-after-cursor", "")
    assert summary(at("if x:" + CURSOR + "  # why\n", "python")) == ("line", "text-after-cursor", "")


def test_explicit_invocation_completes_inside_strings_and_comments() -> None:
    assert summary(at('x = "hel' + CURSOR + 'lo"\n', "python", explicit=True)) == ("line", "explicit", "")
    assert summary(at("x = 1  # comm" + CURSOR + "ent\n", "python", explicit=True)) == ("line", "explicit", "")


def test_unterminated_string_is_a_string() -> None:
    assert summary(at('raise ELFInvalid("unable to par' + CURSOR + "\n", "python")) == ("none", "in-string", "")
    assert summary(at("const debug = createDebug('agent-" + CURSOR + "\n", "javascript")) == ("none", "in-string", "")


def test_long_lines_are_capped_but_the_tree_sees_the_true_column() -> None:
    line = "x = foo(" + "a, " * 2000 + '"hel' + CURSOR + 'lo")'
    ctx = at(line + "\n", "python")
    assert (ctx.mode, ctx.reason) == (Mode.NONE, "in-string")
    assert len(ctx.line_prefix) == LINE_CAP and ctx.line_prefix.endswith('a, "hel')


def test_python_opener_is_found_when_the_tree_is_broken() -> None:
    ctx = at("x = compute(\n\nasync def fetch(url):" + CURSOR + "\n", "python")
    assert summary(ctx) == ("block", "after-block-opener", "    ")
    ctx = at("x = compute(\n\ny = {'a':" + CURSOR + "\n", "python")
    assert summary(ctx) == ("line", "mid-expression", "")


def test_rust_lifetimes_are_not_strings() -> None:
    ctx = at("fn f<'a>(x: &'a str) -> &'a str {" + CURSOR + "\n", "rust")
    assert summary(ctx) == ("block", "after-block-opener", "    ")


def test_blank_line_at_column_zero_takes_the_indentation_of_the_code_around() -> None:
    """Between two statements of a block: one line (the code goes on below); at the block's end: a block."""
    snippet = "def f(x):\n    y = x + 1\n" + CURSOR + "\n    return y\n"
    assert summary(at(snippet, "python")) == ("line", "between-statements", "    ")
    go = "func f() {\n\tx := 1\n" + CURSOR + "\n}\n"
    assert summary(at(go, "go")) == ("block", "empty-line", "\t")
    last = "def f(x):\n    y = x + 1\n    " + CURSOR + "\n\nz = 2\n"
    assert summary(at(last, "python")) == ("block", "empty-line", "    ")


def test_blank_line_after_an_opener_is_the_block_body() -> None:
    ctx = at("    def _read(self, fmt: str) -> tuple[int, ...]:\n" + CURSOR + "\n\nx = 1\n", "python")
    assert summary(ctx) == ("block", "after-block-opener", "        ")
    ctx = at("int main(void) {\n  " + CURSOR + "\n}\n", "c")
    assert summary(ctx) == ("block", "after-block-opener", "    ")


def test_empty_document() -> None:
    assert summary(build_context("", 0, 0, "python")) == ("none", "empty-document", "")
    assert summary(build_context("\n\n", 1, 0, "go", explicit=True)) == ("block", "empty-document", "")


def test_indent_unit_is_inferred_from_the_file() -> None:
    assert at(insert(WORKER_JS, "  if (event.data.close) {"), "javascript").indent_unit == "  "
    assert at(insert(SOCKET_GO, "func defaultDir() string {"), "go").indent_unit == "\t"
    assert at(insert(ELFFILE_PY, "class ELFFile:"), "python").indent_unit == "    "
    assert at("package main\n\nfunc main() {" + CURSOR + "\n", "go").indent == "\t"


# --- positions and text shapes ------------------------------------------------


def test_position_past_the_end_is_clamped() -> None:
    text = "import os\nx = os.sep\n"
    ctx = build_context(text, 1, 99, "python")
    assert (ctx.line_prefix, ctx.line_suffix, ctx.suffix) == ("x = os.sep", "", "")
    ctx = build_context(text, 99, 3, "python")
    assert (ctx.prefix, ctx.line_prefix, ctx.line_suffix) == ("import os\nx = os.sep\n", "", "")
    ctx = build_context("import os", 7, 0, "python")
    assert (ctx.prefix, ctx.line_prefix, ctx.mode) == ("", "import os", Mode.LINE)
    ctx = build_context(text, -3, -1, "python")
    assert (ctx.prefix, ctx.line_prefix, ctx.line_suffix) == ("", "", "import os")


def test_crlf_line_endings() -> None:
    text = "def add(a, b):\r\n    return a + b\r\n\r\nprint(add(1, 2))\r\n"
    ctx = build_context(text, 1, 10, "python")
    assert ctx.prefix == "def add(a, b):\n"
    assert (ctx.line_prefix, ctx.line_suffix) == ("    return", " a + b")
    assert ctx.suffix == "\nprint(add(1, 2))\n"
    ctx = build_context(text, 0, 50, "python")
    assert (ctx.line_prefix, ctx.line_suffix, ctx.mode) == ("def add(a, b):", "", Mode.BLOCK)


def test_no_trailing_newline() -> None:
    text = "let x = 1;\nlet y = x"
    ctx = build_context(text, 0, 10, "javascript")
    assert (ctx.line_prefix, ctx.suffix) == ("let x = 1;", "let y = x")
    ctx = build_context(text, 1, 9, "javascript")
    assert (ctx.prefix, ctx.line_prefix, ctx.suffix) == ("let x = 1;\n", "let y = x", "")


def test_character_counts_code_points() -> None:
    text = 's = "\u00e9t\u00e9 \U0001f600"; t = 1\n'
    ctx = build_context(text, 0, 12, "python")
    assert (ctx.line_prefix, ctx.line_suffix) == ('s = "\u00e9t\u00e9 \U0001f600";', " t = 1")
    assert ctx.mode is Mode.LINE


def test_plain_text_uses_line_windows() -> None:
    text = "".join(f"line {i}\n" for i in range(100))
    ctx = build_context(text, 70, 4, "text")
    assert (ctx.language, ctx.prefix_start_line, ctx.line_prefix, ctx.line_suffix) == ("text", 16, "line", " 70")
    assert ctx.prefix.startswith("line 16\n") and ctx.prefix.endswith("line 69\n")
    assert ctx.suffix == "".join(f"line {i}\n" for i in range(71, 87))
    assert build_context(text, 70, 4, "markdown").language == "text"


# --- windows ------------------------------------------------------------------


def _module(functions: int) -> str:
    """A Python module of 5-line functions (0-based line 5*k holds `def f_k`)."""
    return "".join(
        f"def f_{k}(a, b):\n    total = a + b\n    if total > {k}:\n        return total\n    return -total\n"
        for k in range(functions)
    )


def test_window_start_snaps_back_to_a_top_level_definition() -> None:
    text = _module(40)
    ctx = build_context(text, 100, 4, "python")
    # base = (100 - 48) // 16 * 16 = 48, inside f_9 (lines 45-49); f_9 starts at 45
    assert ctx.prefix_start_line == 45
    assert ctx.prefix.startswith("def f_9(a, b):\n")
    assert ctx.prefix.count("\n") == 100 - 45


def test_window_start_moves_only_in_steps() -> None:
    text = _module(40)
    starts = {build_context(text, line, 0, "python").prefix_start_line for line in range(96, 112)}
    assert starts == {45}
    assert build_context(text, 112, 0, "python").prefix_start_line == 60


def test_window_start_is_stable_while_typing_on_one_line() -> None:
    lines = _module(40).split("\n")
    typed = "    result = compute(a, b) + 1"
    contexts = []
    for n in range(len(typed) + 1):
        lines[101] = typed[:n]
        contexts.append(build_context("\n".join(lines), 101, n, "python"))
    assert {(c.prefix_start_line, c.prefix) for c in contexts} == {(45, contexts[0].prefix)}
    assert contexts[-1].line_prefix == typed


def test_window_start_is_stable_while_adding_lines() -> None:
    lines = _module(40).split("\n")
    starts = []
    for extra in range(8):
        new = lines[:101] + ["    x = 1"] * extra + lines[101:]
        ctx = build_context("\n".join(new), 101 + extra, 0, "python")
        starts.append((ctx.prefix_start_line, ctx.prefix.split("\n", 1)[0]))
    assert starts == [(45, "def f_9(a, b):")] * 8


def test_window_start_falls_back_to_a_statement_inside_a_long_body() -> None:
    text = _long_body(60)
    ctx = build_context(text, 100, 0, "python")
    # base 48 is a continuation line; the statement it belongs to starts at 47
    assert ctx.prefix_start_line == 47
    assert ctx.prefix.startswith("    x_23 = compute(23,\n")


def test_go_window_is_stable_while_typing_a_call() -> None:
    funcs = "".join(f"func f{k}(a int) int {{\n\tb := a + {k}\n\treturn b\n}}\n\n" for k in range(30))
    lines = (f"package main\n\n{funcs}").split("\n")
    typed = '\tfmt.Println(f1(2), "x")'
    seen = set()
    for n in range(len(typed) + 1):
        lines[99] = typed[:n]  # was `\treturn b` in f19
        ctx = build_context("\n".join(lines), 99, n, "go")
        seen.add((ctx.prefix_start_line, ctx.prefix, ctx.suffix))
    assert len(seen) == 1
    (start, prefix, _), = seen
    assert (start, prefix.split("\n", 1)[0]) == (47, "func f9(a int) int {")


def test_window_start_is_stable_while_an_unclosed_bracket_breaks_the_tree() -> None:
    lines = _long_body(60).split("\n")
    for typed in ("    y = compute(", "    y = compute(x_1, [", "    y = compute(x_1, [2])"):
        lines[100] = typed
        ctx = build_context("\n".join(lines), 100, len(typed), "python")
        assert (ctx.prefix_start_line, ctx.line_prefix) == (47, typed)


def _long_body(statements: int) -> str:
    """One function of two-line statements (line 2k+1 starts statement k)."""
    return "def long():\n" + "".join(f"    x_{i} = compute({i},\n        {i} + 1)\n" for i in range(statements))


def test_suffix_ends_where_a_statement_ends() -> None:
    text = _long_body(30)
    lines = text.split("\n")
    ctx = build_context(text, 10, 0, "python", suffix_lines=6)
    # lines 11..16; 15-16 is a whole statement
    assert ctx.suffix == "".join(lines[i] + "\n" for i in range(11, 17))
    ctx = build_context(text, 10, 0, "python", suffix_lines=5)
    # line 15 starts a statement that ends on 16: the suffix stops after 14
    assert ctx.suffix == "".join(lines[i] + "\n" for i in range(11, 15))
    ctx = build_context(_module(10), 10, 0, "python", suffix_lines=7)
    # line 17 (`if total > 3:`) ends nothing; line 16 ends an assignment
    assert ctx.suffix.endswith("def f_3(a, b):\n    total = a + b\n") and ctx.suffix.count("\n") == 6


def test_snippet_windows_in_brace_languages() -> None:
    ctx = at(insert(SOCKET_GO, "func (s Socket) Path() string {"), "go", prefix_lines=4, window_step=4)
    # cursor on line 24: base (24 - 4) // 4 * 4 = 20, inside defaultDir (14-21); `func defaultDir` is
    # more than a step back, so the statement on line 20 is used
    assert (ctx.prefix_start_line, ctx.prefix.split("\n")[0]) == (20, "\treturn sockPath")
    ctx = at(insert(SOCKET_GO, "func (s Socket) Path() string {"), "go", prefix_lines=6, window_step=4)
    # base 16; `func defaultDir` on line 14 is within a step
    assert (ctx.prefix_start_line, ctx.prefix.split("\n")[0]) == (14, "func defaultDir() string {")
    ctx = at(insert(SPEEDUPS_C, "\tif (!delta) {"), "c", suffix_lines=3)
    assert ctx.suffix == "\t\tPy_INCREF(in);\n\t\treturn (PyObject*)in;\n\t}\n"


def test_large_file_is_not_parsed_and_is_fast() -> None:
    text = _module(105_000)  # about 10 MB, 525 000 lines
    assert len(text) > 10_000_000
    started = time.perf_counter()
    ctx = build_context(text, 500_004, 4, "python")
    elapsed = time.perf_counter() - started
    assert (ctx.mode, ctx.reason, ctx.prefix_start_line) == (Mode.LINE, "too-large", 499_952)
    assert (ctx.line_prefix, ctx.line_suffix) == ("    ", "return -total")
    assert ctx.prefix.startswith("    if total > 99990:\n") and ctx.prefix.count("\n") == 52
    assert elapsed < 0.5


def test_minified_single_line_is_fast_and_capped() -> None:
    text = "var a=" + "[1,2,3]," * 1_300_000 + "0;"
    started = time.perf_counter()
    ctx = build_context(text, 0, 5_000_000, "javascript")
    elapsed = time.perf_counter() - started
    assert len(ctx.line_prefix) == LINE_CAP and len(ctx.line_suffix) == LINE_CAP
    assert (ctx.prefix, ctx.suffix, ctx.reason) == ("", "", "too-large")
    assert elapsed < 0.5


# --- lexing -------------------------------------------------------------------


def test_mask_literals() -> None:
    assert mask_literals('x = f("a(", b)  # c)', "python") == ('x = f(    , b)      ', None)
    assert mask_literals("let s = 'it\\'s", "javascript") == ("let s =       ", "'")
    assert mask_literals("fn f<'a>(c: char) { g('(') }", "rust") == ("fn f<'a>(c: char) { g(   ) }", None)
    assert mask_literals('more")', "go", '"') == ("     )", None)
    assert mask_literals("it's (fine)", "text") == ("it's (fine)", None)


# --- syntax trees -------------------------------------------------------------


def test_parse_errors() -> None:
    assert parse_errors("python", ELFFILE_PY) == 0
    assert parse_errors("python", "def f(:\n    return\n") > 0
    assert parse_errors("go", SOCKET_GO) == 0
    assert parse_errors("go", SOCKET_GO.replace("}\n\n// Path", "\n\n// Path")) > 0
    assert parse_errors("text", "def f(:") == 0


def test_build_context_uses_a_given_tree() -> None:
    tree = parser("python").parse(ELFFILE_PY.encode())
    line = ELFFILE_PY.split("\n").index("    def _read(self, fmt: str) -> tuple[int, ...]:")
    ctx = build_context(ELFFILE_PY, line, 50, "python", tree=tree)
    assert summary(ctx) == ("block", "after-block-opener", "        ")


@pytest.mark.parametrize("line", [0, 3, 40, 10_000])
def test_the_cursor_row_is_a_field(line: int) -> None:
    text = "\n".join(f"x{i} = {i}\r" if i % 2 else f"y{i} = {i}" for i in range(120))
    ctx = build_context(text, line, 2, "python", window_step=8)
    assert ctx.row == min(line, 119) == ctx.prefix_start_line + ctx.prefix.count("\n")
