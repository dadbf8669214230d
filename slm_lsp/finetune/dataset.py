"""Training examples from one repository, prompted exactly as the server prompts.

Files: the index's own selection (ignore rules, secret-looking names never
opened, vendored, generated and minified files left out; ``repo.source_files``
and ``read_source``), deduplicated by content. The files ``slm-lsp eval --repo``
holds out (``repo.split_holdout``, same fraction and seed) are never trained
on, nor is a file with the same content as one of them (nor is it indexed);
they give the validation examples, whose loss is only measured.

Examples: holes at tree-sitter boundaries (``evaluation.holes``, the same kinds
and sampling as the evaluation), each prompted by the server's ``Engine.prepare``
with the retrieval the evaluation uses (an index without the held-out files;
retrieval never returns the file being completed). The target is the hole's
text, then what stops the server there: the newline where it completes one line,
the end-of-text token where it completes a block, unless the code after the hole
leaves the block: then the way out (``way_out``: the blank lines and the start of
the first line that dedents, where the server stops), as the base model ends a
block (``train.encode``). Prompts hold masked credentials (``prompt.build_prompt``);
an example whose target holds one is dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from slm_lsp.config import Config, IndexConfig
from slm_lsp.context import Mode
from slm_lsp.engine import Engine
from slm_lsp.evaluation import holes as holemod
from slm_lsp.evaluation import repo
from slm_lsp.evaluation.runner import eval_config
from slm_lsp.indexing.files import read_source
from slm_lsp.languages import detect_language
from slm_lsp.secrets import has_credential
from slm_lsp.templates import FimTemplate

VALIDATION_EXAMPLES = 32  # held-out examples whose loss is printed at the start and the end


@dataclass(frozen=True)
class Example:
    path: str  # workspace-relative posix path of the holed file
    kind: str  # one of holes.KINDS
    prompt: str  # the prompt the server sends for this cursor
    completion: str  # what the model should write there
    mode: str = ""  # the server's mode at the cursor (context.Mode value): how the completion must end
    way_out: str = ""  # block mode: the text after the hole up to where the server stops it ("": the end token)


@dataclass(frozen=True)
class Split:
    train: tuple[str, ...]  # relative paths trained on, sorted
    held_out: tuple[str, ...]  # the evaluation's held-out files, never trained on
    duplicates: tuple[str, ...]  # same content as a file trained on: not trained on, indexed
    copies: tuple[str, ...] = ()  # same content as a held-out file: neither trained on nor indexed


def content_key(text: str) -> str:
    """Files with the same code up to line endings and trailing spaces share a key."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").strip().split("\n")]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def split_files(texts: dict[str, str], fraction: float, seed: int) -> Split:
    """The evaluation's hold-out over ``texts`` (path -> content), then deduplication: a file
    with the content of a held-out file, or of a kept file earlier in path order, is not trained on."""
    holdout = repo.split_holdout(sorted(texts), fraction, seed)
    held = {content_key(texts[p]) for p in holdout.held_out}
    seen: set[str] = set()
    train, duplicates, copies = [], [], []
    for path in holdout.indexed:
        key = content_key(texts[path])
        (copies if key in held else duplicates if key in seen else train).append(path)
        seen.add(key)
    return Split(tuple(train), holdout.held_out, tuple(duplicates), tuple(copies))


def read_sources(root: Path, config: IndexConfig = IndexConfig()) -> dict[str, str]:
    """Every source file the index would read and that has a grammar: path -> text."""
    texts = {}
    for rel in repo.source_files(root, config):
        text = read_source(root / rel, config.max_file_kb * 1024)
        if text is not None:
            texts[rel] = text
    return texts


def sample_holes(texts: dict[str, str], paths: Sequence[str], limit: int, seed: int) -> list[holemod.Hole]:
    """Up to `limit` holes in these files, spread over the kinds as the evaluation spreads them."""
    files = [(p, detect_language(p), texts[p]) for p in paths]
    return holemod.sample_holes(holemod.collect(files, seed), limit, seed)


class Prompter:
    """Prompts holes as the server would, with the evaluation's ``repo`` mode retrieval."""

    def __init__(self, root: Path, split: Split, template: FimTemplate, store_dir: Path, config: Config | None = None):
        config = eval_config(config or Config())
        self.config = replace(config, context=replace(config.context, file_context=True))
        hidden = repo.Holdout(split.held_out + split.copies, split.train + split.duplicates)
        self.index = repo.build_index(root, hidden, store_dir, self.config.index) if self.config.index.enable else None
        self.engine = Engine(self.config, template, repo_name=root.name)
        if self.index is not None:
            self.engine.retriever = repo.make_retriever(self.index, self.config.index)

    def example(self, hole: holemod.Hole) -> Example | None:
        """The hole as a training example; None when the server would not complete there
        or the expected text holds a credential."""
        if has_credential(hole.expected) or not hole.expected.strip():
            return None
        ctx, prompt = self.engine.prepare(repo.hole_document(hole), hole.line, hole.character, explicit=True)
        if ctx.mode is Mode.NONE:
            return None
        out = way_out(hole.document[hole.offset :], ctx.indent) if ctx.mode is Mode.BLOCK else ""
        return Example(hole.path, hole.kind, prompt.text, hole.expected, ctx.mode.value, out)

    def close(self) -> None:
        self.engine.close()


_FIRST_WORD = re.compile(r"[ \t]*(\w+|\S)")


def way_out(after: str, indent: str) -> str:
    """How a block completion flows out of its block: the text after the cursor up to the first
    word of the first non-blank line indented less than `indent` (where ``engine.should_stop_block``
    stops generation and ``postprocess`` cuts); "" when the cursor line goes on after the cursor,
    the next code stays in the block, or the file ends (the block ends with the end token)."""
    head, newline, rest = after.partition("\n")
    if head.strip() or not newline:
        return ""
    taken = head + newline
    for line in rest.split("\n"):
        if not line.strip():
            taken += line + "\n"
            continue
        if len(line) - len(line.lstrip()) >= len(indent):
            return ""
        return taken + _FIRST_WORD.match(line).group(0)
    return ""


def build(
    root: Path,
    template: FimTemplate,
    *,
    limit: int,
    fraction: float = 0.2,
    seed: int = 0,
    validation: int = VALIDATION_EXAMPLES,
    config: Config | None = None,
) -> tuple[Split, list[Example], list[Example]]:
    """(split, training examples, validation examples from the held-out files)."""
    root = root.resolve()
    texts = read_sources(root, (config or Config()).index)
    split = split_files(texts, fraction, seed)
    with tempfile.TemporaryDirectory(prefix="slm-finetune-index-") as store:
        prompter = Prompter(root, split, template, Path(store), config)
        try:
            train = _examples(prompter, sample_holes(texts, split.train, limit, seed))
            valid = _examples(prompter, sample_holes(texts, split.held_out, validation, seed + 1))
        finally:
            prompter.close()
    return split, train, valid


def _examples(prompter: Prompter, holes: Iterable[holemod.Hole]) -> list[Example]:
    return [e for h in holes if (e := prompter.example(h)) is not None]


def write_examples(path: Path, examples: Iterable[Example]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for example in examples:
            f.write(json.dumps(asdict(example), ensure_ascii=False) + "\n")


def read_examples(path: Path) -> Iterator[Example]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield Example(**json.loads(line))
