"""Turn raw model output into the ghost text shown at the cursor.

A pipeline of small pure steps, each testable alone: strip special tokens,
cut to the completion mode, fix indentation, drop what the text after the
cursor already says, balance brackets, keep the longest version that parses
no worse than the document without it, trim.
"""

from __future__ import annotations

import re

from slm_lsp.context import Context, Mode, mask_literals, parse_errors

_SPECIAL = re.compile(r"<\|[A-Za-z0-9_.-]+\|>|<(?:fim|file)_[A-Za-z_]*>|</s>|<EOT>|<\|[A-Za-z0-9_]*$")
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_TRAILING_CLOSERS = frozenset(")]};, \t")
_TERMINATORS = (";", ")", "]", "}")


def postprocess(raw: str, ctx: Context, *, max_lines: int = 8, check_syntax: bool = True) -> str:
    """The text to insert at the cursor for the model output `raw` ("" for no suggestion)."""
    if ctx.mode is Mode.NONE:
        return ""
    text = strip_special_tokens(raw)
    text = cut_to_mode(text, ctx, max_lines)
    text = fix_indentation(text, ctx)
    text = dedupe_suffix(text, ctx)
    text = balance_brackets(text, ctx)
    if check_syntax:
        text = keep_parsable(text, ctx)
    return finish(text, ctx.line_suffix)


def strip_special_tokens(raw: str) -> str:
    """Cut at the first special token (or a truncated one at the end); normalise line endings."""
    match = _SPECIAL.search(raw)
    text = raw[: match.start()] if match else raw
    return text.replace("\r\n", "\n").replace("\r", "\n")


def cut_to_mode(text: str, ctx: Context, max_lines: int = 8) -> str:
    """LINE: the first line only. BLOCK: the lines that stay inside the block."""
    if ctx.mode is Mode.NONE:
        return ""
    if ctx.mode is Mode.LINE:
        first = text.split("\n", 1)[0]
        return first if first.strip() else ""
    lines = text.split("\n")
    if ctx.language in ("python", "text"):
        lines = _cut_at_dedent(lines, ctx)
    else:
        lines = _cut_at_close(lines, ctx)
    lines = [line.rstrip() for line in lines[: max(1, max_lines)]]
    while len(lines) > 1 and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _cut_at_dedent(lines: list[str], ctx: Context) -> list[str]:
    """Keep lines until one (non-blank) dedents below the block's indentation."""
    if lines[0].strip() and not ctx.line_prefix.strip():
        base = _width(ctx.line_prefix + _leading(lines[0]))
    else:
        base = next((_width(_leading(line)) for line in lines[1:] if line.strip()), 0)
    threshold = min(base, _width(ctx.indent))
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() and _width(_leading(line)) < threshold:
            return lines[:i]
    return lines


def _cut_at_close(lines: list[str], ctx: Context) -> list[str]:
    """Keep lines until the brackets close below the depth where the completion started."""
    quote = mask_literals(ctx.line_prefix, ctx.language)[1]
    depth = 0
    for i, line in enumerate(lines):
        masked, quote = mask_literals(line, ctx.language, quote if i == 0 else None)
        for j, ch in enumerate(masked):
            depth += (ch in _OPENERS) - (ch in _CLOSERS)
            if depth < 0:
                rest = line[j + 1 :]
                end = len(line) if all(c in _TRAILING_CLOSERS for c in rest) else j + 1
                return lines[:i] + [line[:end]]
    return lines


def fix_indentation(text: str, ctx: Context) -> str:
    """BLOCK, or a LINE on a blank line: re-indent the model's lines onto ctx.indent, keeping their nesting."""
    blank_line = not ctx.line_prefix.strip() and not ctx.line_suffix.strip()
    if not text.strip() or not (ctx.mode is Mode.BLOCK or (ctx.mode is Mode.LINE and blank_line)):
        return text
    if not ctx.line_prefix and _plausible_indent(_leading(text), ctx):
        return text  # at column 0 the model's own indentation says which block the line is in
    lines = text.split("\n")
    blank_cursor_line = not ctx.line_prefix.strip()
    rows = [i for i, line in enumerate(lines) if line.strip() and (i > 0 or blank_cursor_line)]
    if not rows:
        return text
    unit = ctx.indent_unit or "    "
    tab = 4 if unit == "\t" else len(unit)

    def own(i: int) -> str:  # a line's indentation as the model wrote it
        return ctx.line_prefix + _leading(lines[0]) if i == 0 else _leading(lines[i])

    widths = {i: len(own(i).expandtabs(tab)) for i in rows}
    base = widths[rows[0]]
    steps = [abs(w - base) for w in widths.values() if abs(w - base) >= 2]
    step = min(steps) if steps else tab
    consistent = own(rows[0]) == ctx.indent and all(("\t" in own(i)) == (unit == "\t") for i in rows if own(i))
    for i in rows:
        level, rest = divmod(widths[i] - base, step)
        indent = own(i) if consistent else _shift(ctx.indent, unit, level) + " " * rest
        if i == 0:
            indent = indent[len(ctx.line_prefix) :] if indent.startswith(ctx.line_prefix) else _leading(lines[0])
        lines[i] = indent + lines[i].lstrip()
    return "\n".join(lines)


def dedupe_suffix(text: str, ctx: Context) -> str:
    """Drop what the text after the cursor already says."""
    if not text:
        return text
    line_suffix = ctx.line_suffix
    for k in range(min(len(line_suffix), len(text)), 0, -1):
        tail = line_suffix[:k]
        if tail.strip() and text.endswith(tail) and _imbalance(ctx, text[:-k]) <= _imbalance(ctx, text):
            text = text[:-k]
            break
    return _drop_repeated_lines(text, ctx)


def _drop_repeated_lines(text: str, ctx: Context) -> str:
    """Drop the completion's last lines when they are the suffix's first lines."""
    blank_cursor_line = not ctx.line_prefix.strip()
    if blank_cursor_line and text.strip() and ctx.suffix.lstrip().startswith(text.strip()):
        return ""
    lines = text.split("\n")
    ahead = [line.strip() for line in ctx.suffix.lstrip("\n \t").split("\n")]
    for n in range(len(lines) if blank_cursor_line else len(lines) - 1, 0, -1):
        tail = [line.strip() for line in lines[-n:]]
        if tail != ahead[:n] or not any(tail):
            continue
        if all(set(line) <= _TRAILING_CLOSERS for line in tail) and _net_depth(text, ctx) >= 0:
            continue  # these closers close brackets the completion opened itself
        return "\n".join(lines[:-n])
    return text


def balance_brackets(text: str, ctx: Context) -> str:
    """Drop closers the code does not need; cut at a closer that matches nothing."""
    masked_before, quote = mask_literals(ctx.prefix + ctx.line_prefix, ctx.language)
    opened = _open_brackets(masked_before)
    for _ in range(len(text) + 1):
        text, extra = _scan_brackets(text, ctx, opened, quote)
        if extra is None:
            return text
        text = text[:extra] + text[extra + 1 :]
    return text


def _scan_brackets(text: str, ctx: Context, opened: list[str], quote: str | None) -> tuple[str, int | None]:
    """(text cut at a mismatched closer, index of a closer the line suffix supplies too, or None)."""
    masked, after = mask_literals(text, ctx.language, quote)
    suffix = mask_literals(ctx.line_suffix, ctx.language, after)[0]
    stack = list(opened)
    for i, ch in enumerate(masked):
        if ch in _OPENERS:
            stack.append(ch)
        elif ch in _CLOSERS:
            if not stack and ch in suffix:
                return text, i
            if not stack or stack[-1] != _CLOSERS[ch]:
                return text[:i], None
            stack.pop()
    for ch in suffix:
        if ch in _OPENERS:
            stack.append(ch)
        elif ch in _CLOSERS and stack and stack[-1] == _CLOSERS[ch]:
            stack.pop()
        elif ch in _CLOSERS:  # the completion already closed what this closes
            extra = [i for i, c in enumerate(masked) if c == ch and _closes_outside(masked, i)]
            return text, (extra[-1] if extra else None)
    return text, None


def _closes_outside(masked: str, index: int) -> bool:
    """Does the closer at `index` close a bracket opened before the completion?"""
    depth = 0
    for ch in reversed(masked[:index]):
        depth += (ch in _CLOSERS) - (ch in _OPENERS)
        if depth < 0:
            return False
    return True


def _open_brackets(masked: str) -> list[str]:
    """The brackets still open at the end of `masked` (stray closers ignored)."""
    stack: list[str] = []
    for ch in masked:
        if ch in _OPENERS:
            stack.append(ch)
        elif ch in _CLOSERS and _CLOSERS[ch] in stack:
            while stack.pop() != _CLOSERS[ch]:
                pass
    return stack


def keep_parsable(text: str, ctx: Context) -> str:
    """The longest head (whole lines) of the completion that adds no syntax errors."""
    ends_statement = (text + ctx.line_suffix).rstrip().endswith(_TERMINATORS)
    if not text.strip() or ctx.mode is Mode.NONE or not ("\n" in text or ends_statement):
        return text
    baseline = parse_errors(ctx.language, _document(ctx, ""))
    lines = text.split("\n")
    heads = [text] + ["\n".join(lines[:n]).rstrip() for n in range(len(lines) - 1, 0, -1)]
    return next((head for head in heads if parse_errors(ctx.language, _document(ctx, head)) <= baseline), "")


def finish(text: str, line_suffix: str = "") -> str:
    """Trailing whitespace off (kept before text that follows on the line); blank means nothing."""
    if not text.strip():
        return ""
    return text if line_suffix[:1].strip() else text.rstrip()


def _document(ctx: Context, completion: str) -> str:
    return ctx.prefix + ctx.line_prefix + completion + ctx.line_suffix + "\n" + ctx.suffix


def _imbalance(ctx: Context, completion: str) -> int:
    """Unmatched closers plus unclosed openers on the cursor line with `completion` inserted."""
    masked = mask_literals(ctx.line_prefix + completion + ctx.line_suffix, ctx.language)[0]
    depth = stray = 0
    for ch in masked:
        if ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS:
            depth, stray = (depth - 1, stray) if depth else (0, stray + 1)
    return depth + stray


def _net_depth(text: str, ctx: Context) -> int:
    quote = mask_literals(ctx.line_prefix, ctx.language)[1]
    masked = mask_literals(text, ctx.language, quote)[0]
    return sum((ch in _OPENERS) - (ch in _CLOSERS) for ch in masked)


def _plausible_indent(lead: str, ctx: Context) -> bool:
    """Non-empty, the file's kind of indentation, whole units, at most one level deeper than ctx.indent."""
    unit = ctx.indent_unit or "    "
    step = 4 if unit == "\t" else len(unit)
    width = _width(lead)
    return bool(lead) and ("\t" in lead) == (unit == "\t") and width % step == 0 and width <= _width(ctx.indent) + step


def _leading(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _width(indent: str) -> int:
    return len(indent.expandtabs(4))


def _shift(indent: str, unit: str, level: int) -> str:
    """`indent` moved `level` units deeper (or shallower when negative)."""
    if level >= 0:
        return indent + unit * level
    for _ in range(-level):
        indent = indent.removesuffix(unit) if indent.endswith(unit) else indent[: -len(unit) or None]
    return indent
