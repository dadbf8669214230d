"""Prompt layout: repository snippets, then a fill-in-the-middle prompt that
only grows at its end while the user types.

    [<|repo_name|>name  <|file_sep|>path  snippet ...  <|file_sep|>this/file.py]
    <|fim_prefix|> [the file's imports] [parts of the file above the window] lines before the anchor
    <|fim_suffix|> rest of the cursor line, lines after it [parts of the file below the window]
    <|fim_middle|> lines from the anchor to the cursor, the cursor line's prefix

The anchor is the cursor line rounded down to a multiple of ``head_step``, so
typing, and pressing Enter, only append to the prompt: the model's KV cache
keeps everything before, and the cache key of the previous keystroke is a
prefix of this one (typed-through reuse). Credentials in the document and in
snippets are masked (``secrets.mask_credentials``, line for line) before they
enter the prompt. Everything here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from slm_lsp.context import Context
from slm_lsp.secrets import mask_credentials
from slm_lsp.context.file import FileContext
from slm_lsp.templates import FimTemplate

if TYPE_CHECKING:
    from slm_lsp.retrieval import Snippet


def estimate_tokens(text: str) -> int:
    """A fast, model-free token estimate (code averages ~3.2 characters a token): the one estimate.

    Every budget (prompt parts, file parts, snippets) is counted with it: budgets are soft, and
    it costs no model call on the request's path. Where the count must be exact, the context
    window, the backend counts real tokens (``kvreuse.fit``)."""
    return (len(text) * 10) // 32 + 1


@dataclass(frozen=True)
class PromptBudget:
    prefix_tokens: int = 384  # lines before the anchor, cut at the top
    suffix_tokens: int = 96  # text after the cursor, cut at the bottom
    head_step: int = 8  # anchor granularity in lines
    header_tokens: int = 320  # the file's imports above the window, cut at the top


@dataclass(frozen=True)
class Prompt:
    text: str  # the whole prompt
    head: str  # what follows the middle token: lines since the anchor + the line prefix
    context_chars: int  # characters of repository context at the start
    snippets: tuple[Snippet, ...] = ()  # the repository snippets shown (import hints among them)


def build_prompt(
    template: FimTemplate,
    ctx: Context,
    *,
    path: str = "",
    repo_name: str = "",
    snippets: Sequence[Snippet] = (),
    file: FileContext = FileContext(),
    budget: PromptBudget = PromptBudget(),
    count_tokens: Callable[[str], int] = estimate_tokens,
) -> Prompt:
    before, head_lines = split_head(ctx.prefix, ctx.prefix_start_line, budget.head_step)
    before = trim_top(before, budget.prefix_tokens, count_tokens)
    after = trim_bottom(ctx.line_suffix + "\n" + ctx.suffix, budget.suffix_tokens, count_tokens)
    head = head_lines + ctx.line_prefix
    repo = render_repo_context(template, repo_name, path, snippets)
    before = file.above + before  # parts of the file above the window (file order), then the window
    if header := trim_top(file.header, budget.header_tokens, count_tokens):
        before = header + "\n" + before  # the file's imports first
    after += file.below
    before, after, head = mask_credentials(before), mask_credentials(after), mask_credentials(head)
    fim = f"{template.prefix}{before}{template.suffix}{after}{template.middle}{head}"
    return Prompt(text=repo + fim, head=head, context_chars=len(repo), snippets=tuple(snippets))


def split_head(prefix: str, prefix_start_line: int, step: int) -> tuple[str, str]:
    """Split the prefix at the anchor line: (lines before it, lines from it)."""
    lines = prefix.splitlines(keepends=True)
    cursor_line = prefix_start_line + len(lines)
    anchor = cursor_line - cursor_line % max(step, 1)
    n_head = min(cursor_line - anchor, len(lines))
    cut = len(lines) - n_head
    return "".join(lines[:cut]), "".join(lines[cut:])


def trim_top(text: str, budget: int, count: Callable[[str], int]) -> str:
    """Drop whole lines from the top until the text fits the budget."""
    if count(text) <= budget:
        return text
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        used += count(line)
        if used > budget:
            break
        kept.append(line)
    return "".join(reversed(kept))


def trim_bottom(text: str, budget: int, count: Callable[[str], int]) -> str:
    """Keep whole lines from the top while they fit the budget (the first line always)."""
    if count(text) <= budget:
        return text
    lines = text.splitlines(keepends=True)
    kept, used = [lines[0]], count(lines[0])
    for line in lines[1:]:
        used += count(line)
        if used > budget:
            break
        kept.append(line)
    return "".join(kept)


def render_repo_context(template: FimTemplate, repo_name: str, path: str, snippets: Sequence[Snippet]) -> str:
    """Repository-level context in the model's format; "" without snippets or format."""
    if not snippets or not template.file_sep:
        return ""
    parts = [f"{template.repo_name}{repo_name}\n"] if template.repo_name else []
    for snippet in snippets:
        text = mask_credentials(snippet.text if snippet.text.endswith("\n") else snippet.text + "\n")
        parts.append(f"{template.file_sep}{snippet.path}\n{text}")
    parts.append(f"{template.file_sep}{path}\n")
    return "".join(parts)
