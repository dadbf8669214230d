"""Prompt layout: what the model sees, and that typing only appends to it."""

from __future__ import annotations

from slm_lsp.context import build_context
from slm_lsp.prompt import PromptBudget, build_prompt, split_head, trim_bottom, trim_top
from slm_lsp.retrieval import Snippet
from slm_lsp.templates import DEEPSEEK, QWEN

# from pygls/workspace/text_document.py (real code)
SOURCE = '''class TextDocument:
    def __init__(self, uri, source=None, version=None, language_id=None):
        self.uri = uri
        self.version = version
        self.language_id = language_id
        self._source = source

    @property
    def lines(self):
        return tuple(self.source.splitlines(True))

    def offset_at_server_position(self, server_position):
        row, col = server_position.line, server_position.character
        return col + sum(len(line) for line in self.lines[:row])
'''


def prompt_at(text: str, line: int, col: int, **kw):
    ctx = build_context(text, line, col, "python")
    return build_prompt(QWEN, ctx, path="pygls/workspace/text_document.py", **kw)


def test_fim_layout_has_the_line_prefix_after_the_middle_token():
    lines = SOURCE.splitlines(keepends=True)
    text = "".join(lines[:13]) + "        return col + \n" + "".join(lines[14:])
    p = prompt_at(text, 13, len("        return col + "))
    assert p.text.startswith("<|fim_prefix|>class TextDocument:")
    assert p.text.endswith("<|fim_middle|>" + "".join(lines[8:13]) + "        return col + ")
    between = p.text.split("<|fim_suffix|>")[1].split("<|fim_middle|>")[0]
    assert between.startswith("\n")  # nothing after the cursor on its line


def test_typing_and_enter_only_append_to_the_prompt():
    lines = SOURCE.splitlines(keepends=True)
    base = "".join(lines[:9]) + "\n" + "".join(lines[9:])
    typed = "        return tuple(self.source"
    previous = prompt_at(base, 9, 0).text
    for i in range(1, len(typed) + 1):
        text = "".join(lines[:9]) + typed[:i] + "\n" + "".join(lines[9:])
        current = prompt_at(text, 9, i).text
        assert current.startswith(previous), i
        previous = current
    # Enter: the next line starts; the prompt still only grows
    text = "".join(lines[:9]) + typed + "\n        \n" + "".join(lines[9:])
    after_enter = prompt_at(text, 10, 8).text
    assert after_enter.startswith(previous)


def test_repository_snippets_come_first_in_qwen_repo_format():
    snippet = Snippet("pygls/uris.py", "def to_fs_path(uri):\n    ...", 0.9, 10, "definition")
    p = prompt_at(SOURCE, 3, 8, repo_name="pygls", snippets=(snippet,))
    assert p.text.startswith(
        "<|repo_name|>pygls\n<|file_sep|>pygls/uris.py\ndef to_fs_path(uri):\n    ...\n"
        "<|file_sep|>pygls/workspace/text_document.py\n<|fim_prefix|>"
    )
    assert p.context_chars == p.text.index("<|fim_prefix|>")


def test_no_repo_format_means_no_snippets():
    snippet = Snippet("a.py", "x = 1", 0.9, 0, "similar")
    ctx = build_context(SOURCE, 3, 8, "python")
    p = build_prompt(DEEPSEEK, ctx, snippets=(snippet,))
    assert p.text.startswith("<｜fim▁begin｜>") and "a.py" not in p.text


def test_split_head_anchors_on_multiples_of_the_step():
    prefix = "".join(f"l{i}\n" for i in range(13))
    before, head = split_head(prefix, 0, 8)
    assert before == "".join(f"l{i}\n" for i in range(8))
    assert head == "".join(f"l{i}\n" for i in range(8, 13))
    before, head = split_head(prefix, 3, 8)  # window starts at line 3: cursor line 16
    assert head == "" and before == prefix


def test_trims_keep_whole_lines_within_budget():
    text = "".join(f"line number {i}\n" for i in range(100))
    count = lambda s: len(s)  # noqa: E731
    top = trim_top(text, 60, count)
    assert top.endswith("line number 99\n") and len(top) <= 60 and top.startswith("line")
    bottom = trim_bottom(text, 60, count)
    assert bottom.startswith("line number 0\n") and len(bottom) <= 60


def test_budget_limits_prompt_size():
    big = "".join(f"value_{i} = compute({i})\n" for i in range(400))
    ctx = build_context(big + "x = \n" + big, 400, 4, "python", prefix_lines=400, suffix_lines=400)
    p = build_prompt(QWEN, ctx, budget=PromptBudget(prefix_tokens=100, suffix_tokens=50))
    assert len(p.text) < (100 + 50) * 4 + 400
