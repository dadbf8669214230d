"""What the person types: the two scenarios as keystroke plans. Pure and seeded.

A plan is the document as opened plus one ``Key`` per keystroke: how long the
person waits before it, the edit it makes, and the position and texts of the
automatic completion request that follows it. ``bench/latency.py`` plays a
plan against the server; the statistics read the texts back.

- ``line`` (default): K code lines of the file, in file order. The first one's
  text is missing when the file opens (its indentation kept); each later one is
  first deleted, then typed back.
- ``block``: one function body of 3 to K lines, missing when the file opens
  (the first line's indentation kept), typed top to bottom as new code: each
  line's characters, then Enter (which inserts the newline and the next line's
  indentation, as an editor's auto-indent would), and so on.

Timing (``common.typing_delays``, seeded per line as ``{seed}:{file}:{row}``):
keys 80-150 ms apart, with chance 0.06 a 300-800 ms pause instead; the key
that starts a line (deleting it, or Enter) and the line's first character
always come after such a pause. The file's first key comes right after the
1 s the person looks at the newly opened file (``OPEN_PAUSE_S``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from bench import common
from bench.common import SourceFile

OPEN_PAUSE_S = 1.0  # the person reads the file a moment before typing
END_PAUSE_S = common.PAUSE_MAX_S  # the scheduled pause after a file's last key, before it is closed
SCENARIOS = ("line", "block")
MIN_BLOCK_LINES = 3
BLOCK_LOOKUP = 4  # block: files picked per wanted file (not every file has a body that fits)
DEF_STARTS = ("def ", "async def ")  # Python function headers
NOT_FUNCTIONS = ("if", "for", "while", "switch", "else", "do", "try", "catch", "return", "}")  # C-like `... {` lines


@dataclass(frozen=True)
class Edit:
    """Replace characters start..end of one line with text (text may hold a newline)."""

    line: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Key:
    """One keystroke: wait delay_s, make the edit (None: none), then ask for a completion at the cursor."""

    delay_s: float
    edit: Edit | None
    line: int  # the cursor's row after the edit (also its row in the original file)
    indent: str
    typed: str  # the line's text typed so far, after the indentation
    remaining: str  # the rest of the line, still to be typed
    ahead: str  # everything still to be typed from the cursor: remaining, then "\n" + later block lines
    gap_s: float  # the scheduled wait before the next key (END_PAUSE_S after the file's last one)
    starts_line: bool  # the first key of a line: the replay may stop before it (time bound)
    rest_from: int  # the original rows from here on follow the cursor's line in the document

    @property
    def character(self) -> int:
        return len(self.indent) + len(self.typed)


@dataclass(frozen=True)
class FilePlan:
    sf: SourceFile
    rows: tuple[int, ...]  # the original rows retyped, in order
    opened: str  # the document as opened
    keys: tuple[Key, ...]


def plan_lines(sf: SourceFile, rows: list[int], seed: str | int) -> FilePlan:
    """Scenario ``line``: retype each row (deleted first, except the first, missing at open)."""
    lines = sf.text.split("\n")
    first_indent, _ = common.split_indent(lines[rows[0]])
    opened = lines[: rows[0]] + [first_indent] + lines[rows[0] + 1 :]
    keys: list[Key] = []
    for n, row in enumerate(rows):
        indent, body = common.split_indent(lines[row])
        delays = common.typing_delays(body, f"{seed}:{sf.rel}:{row}")
        start = 0.0 if n == 0 else delays[0]
        delete = None if n == 0 else Edit(row, len(indent), len(lines[row]), "")
        keys += _line_keys(row, indent, body, "", delays, start, delete, row + 1)
    return FilePlan(sf, tuple(rows), "\n".join(opened), _with_gaps(keys))


def plan_block(sf: SourceFile, rows: list[int], seed: str | int) -> FilePlan:
    """Scenario ``block``: the consecutive rows are missing at open and typed top to bottom."""
    lines = sf.text.split("\n")
    first, last = rows[0], rows[-1]
    assert rows == list(range(first, last + 1)), "a block is consecutive rows"
    opened = lines[:first] + [common.split_indent(lines[first])[0]] + lines[last + 1 :]
    keys: list[Key] = []
    for row in rows:
        indent, body = common.split_indent(lines[row])
        delays = common.typing_delays(body, f"{seed}:{sf.rel}:{row}")
        after = "".join("\n" + lines[r] for r in range(row + 1, last + 1))
        if row == first:
            keys += _line_keys(row, indent, body, after, delays, 0.0, None, last + 1)
        else:  # Enter at the end of the line above: the newline and this line's indentation
            enter = Edit(row - 1, len(lines[row - 1]), len(lines[row - 1]), "\n" + indent)
            keys += _line_keys(row, indent, body, after, delays, delays[0], enter, last + 1)
    return FilePlan(sf, tuple(rows), "\n".join(opened), _with_gaps(keys))


def _line_keys(row: int, indent: str, body: str, after: str, delays: list[float], start: float,
               edit: Edit | None, rest_from: int) -> list[Key]:  # fmt: skip
    """The key that starts the line (edit, or none), then one key per character of body."""
    keys = [Key(start, edit, row, indent, "", body, body + after, 0.0, True, rest_from)]
    for i, ch in enumerate(body):
        typed = body[: i + 1]
        insert = Edit(row, len(indent) + i, len(indent) + i, ch)
        keys.append(Key(delays[i + 1], insert, row, indent, typed, body[i + 1 :], body[i + 1 :] + after, 0.0, False, rest_from))
    return keys


def _with_gaps(keys: list[Key]) -> tuple[Key, ...]:
    """Each key's gap_s is the next key's delay (END_PAUSE_S for the last)."""
    gaps = [k.delay_s for k in keys[1:]] + [END_PAUSE_S]
    return tuple(Key(**{**k.__dict__, "gap_s": g}) for k, g in zip(keys, gaps))


def document_at(plan: FilePlan, key: Key) -> str:
    """The document as it is when key's request goes out."""
    lines = plan.sf.text.split("\n")
    return "\n".join(lines[: key.line] + [key.indent + key.typed] + lines[key.rest_from :])


# -- picking a function body ----------------------------------------------------
def candidate_blocks(text: str, language_id: str, max_lines: int) -> list[list[int]]:
    """Function bodies worth retyping as new code: MIN_BLOCK_LINES to max_lines rows of code.

    A body is the rows after a function header (Python: a one-line ``def ...:``;
    C-like: a line ending in ``{`` with a ``(``, not a control statement) that
    are more indented than the header, its trailing blank rows left out. Every
    row is ASCII, tab-free, without trailing blanks, at most MAX_TYPED_CHARS
    after its indentation, not a comment and not in a multi-line string or
    comment (docstrings included): code, on which the server completes.
    """
    lines = text.split("\n")
    blocks = common.BLOCKS.get(language_id, common.BLOCKS["c"])
    inside, state = [], ""
    for line in lines:  # rows in, opening or closing a multi-line string or comment
        was = state
        state = common.block_state(line, state, *blocks)
        inside.append(bool(was or state))
    out = []
    for head, line in enumerate(lines):
        if not _is_header(line, language_id) or inside[head]:
            continue
        rows = _body_rows(lines, head)
        if MIN_BLOCK_LINES <= len(rows) <= max_lines and all(_typable(lines[r]) and not inside[r] for r in rows):
            out.append(rows)
    return out


def _is_header(line: str, language_id: str) -> bool:
    body = line.strip()
    if language_id == "python":
        return body.startswith(DEF_STARTS) and body.endswith(":")
    return body.endswith("{") and "(" in body and not body.startswith(NOT_FUNCTIONS) and "=" not in body


def _body_rows(lines: list[str], head: int) -> list[int]:
    """The rows after head more indented than it (blank rows inside kept, trailing ones not)."""
    depth = len(common.split_indent(lines[head])[0])
    rows: list[int] = []
    for r in range(head + 1, len(lines)):
        if lines[r].strip() and len(common.split_indent(lines[r])[0]) <= depth:
            break
        rows.append(r)
    while rows and not lines[rows[-1]].strip():
        rows.pop()
    while rows and not lines[rows[0]].strip():
        rows.pop(0)
    return rows


def _typable(line: str) -> bool:
    if line == "":
        return True
    body = common.split_indent(line)[1]
    return (bool(body) and line == line.rstrip() and line.isascii() and "\t" not in line
            and len(body) <= common.MAX_TYPED_CHARS and not body.startswith(common.COMMENT_STARTS))  # fmt: skip


def pick_block(sf: SourceFile, max_lines: int, seed: str | int) -> list[int]:
    """One candidate body of the file chosen by seed ([] when it has none)."""
    blocks = candidate_blocks(sf.text, sf.language_id, max_lines)
    return random.Random(f"{seed}:{sf.rel}:block").choice(blocks) if blocks else []


def plan_files(root: Path, scenario: str, n_files: int, lines_per_file: int, seed: str | int) -> list[FilePlan]:
    """The plans of the picked files (common.pick_files): line, K picked rows each; block, one body
    of at most K rows each, from the first n_files picked files that have one (at most BLOCK_LOOKUP x n_files looked at)."""
    if scenario == "line":
        files = common.pick_files(root, n_files, seed)
        return [plan_lines(sf, rows, seed) for sf in files if (rows := common.pick_lines(sf, lines_per_file, seed))]
    plans = []
    for sf in common.pick_files(root, BLOCK_LOOKUP * n_files, seed):
        if len(plans) < n_files and (rows := pick_block(sf, lines_per_file, seed)):
            plans.append(plan_block(sf, rows, seed))
    return plans
