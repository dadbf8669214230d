"""Fill-in-the-middle templates, one per model family, chosen from GGUF metadata.

Each template names its special tokens; the prompt module lays them out.
Formats follow each model's documentation:
  Qwen2.5-Coder  <|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>, repo-level
                 <|repo_name|>name\n<|file_sep|>path\ncode ...
  StarCoder2     <fim_prefix>P<fim_suffix>S<fim_middle>, <repo_name>, <file_sep>
  DeepSeek-Coder <｜fim▁begin｜>P<｜fim▁hole｜>S<｜fim▁end｜>
  CodeLlama      <PRE> P <SUF>S <MID>
  CodeGemma      <|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>, <|file_separator|>
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FimTemplate:
    name: str
    prefix: str
    suffix: str
    middle: str
    stop: tuple[str, ...]  # generation ends at any of these (special tokens)
    repo_name: str = ""  # repository header token; "" when the family has none
    file_sep: str = ""  # token before each file's path in repository context

    def fim(self, prefix: str, suffix: str) -> str:
        """The classic prefix-suffix-middle (PSM) prompt."""
        return f"{self.prefix}{prefix}{self.suffix}{suffix}{self.middle}"

    @property
    def specials(self) -> tuple[str, ...]:
        tokens = (self.prefix, self.suffix, self.middle, self.repo_name, self.file_sep, *self.stop)
        return tuple(t.strip() for t in tokens if t.strip())


QWEN = FimTemplate(
    "qwen2.5-coder", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
    stop=("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>", "<|fim_prefix|>", "<|im_end|>"),
    repo_name="<|repo_name|>", file_sep="<|file_sep|>",
)  # fmt: skip
STARCODER2 = FimTemplate(
    "starcoder2", "<fim_prefix>", "<fim_suffix>", "<fim_middle>",
    stop=("<|endoftext|>", "<file_sep>", "<fim_prefix>", "<fim_pad>"),
    repo_name="<repo_name>", file_sep="<file_sep>",
)  # fmt: skip
DEEPSEEK = FimTemplate(
    "deepseek-coder", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>",
    stop=("<｜end▁of▁sentence｜>", "<|EOT|>", "<｜fim▁begin｜>"),
)  # fmt: skip
CODELLAMA = FimTemplate("codellama", "<PRE> ", " <SUF>", " <MID>", stop=("<EOT>", "</s>"))
CODEGEMMA = FimTemplate(
    "codegemma", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
    stop=("<|file_separator|>", "<eos>", "<|fim_prefix|>", "<end_of_turn>"),
    file_sep="<|file_separator|>",
)  # fmt: skip

TEMPLATES = {t.name: t for t in (QWEN, STARCODER2, DEEPSEEK, CODELLAMA, CODEGEMMA)}


class TemplateError(ValueError):
    """The model has no fill-in-the-middle format slm-lsp knows."""


def choose(meta: dict[str, Any]) -> FimTemplate:
    """The template for a model, from its architecture, name and vocabulary."""
    arch = str(meta.get("general.architecture", "")).lower()
    name = " ".join(str(meta.get(k, "")) for k in ("general.name", "general.basename")).lower()
    tokens = meta.get("tokenizer.ggml.tokens")
    vocab = set(tokens) if isinstance(tokens, list) else set()
    if "<|fim_prefix|>" in vocab and "<|repo_name|>" in vocab:
        return QWEN
    if "<|fim_prefix|>" in vocab and "<|file_separator|>" in vocab:
        return CODEGEMMA
    if "<fim_prefix>" in vocab:
        return STARCODER2
    if "<｜fim▁begin｜>" in vocab:
        return DEEPSEEK
    if "<PRE>" in vocab or "codellama" in name or "code llama" in name:
        return CODELLAMA
    for key, template in (("qwen", QWEN), ("codegemma", CODEGEMMA), ("starcoder", STARCODER2), ("deepseek", DEEPSEEK)):
        if key in name or (key == "qwen" and arch.startswith("qwen") and "coder" in name):
            return template
    raise TemplateError(
        f"model {meta.get('general.name', '?')} ({arch or 'unknown architecture'}) has no known "
        "fill-in-the-middle tokens; use a code model such as Qwen2.5-Coder, StarCoder2, "
        "DeepSeek-Coder, CodeLlama or CodeGemma"
    )
