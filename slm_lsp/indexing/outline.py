"""A definition as a prompt shows it: whole when short, else doc, signature and members."""

from __future__ import annotations

from typing import Protocol, Sequence

from ..languages import comment_prefix, detect_language
from .model import Definition, FileSymbols

FULL_DEFINITION_LINES = 15  # longer definitions are shown as an outline
OUTLINE_MEMBERS = 10


class Source(Protocol):
    def symbols(self, path: str) -> FileSymbols | None: ...
    def text(self, path: str, start_line: int, end_line: int) -> str | None: ...


def definition_text(index: Source, definition: Definition) -> str:
    if definition.end_line - definition.start_line < FULL_DEFINITION_LINES:
        full = index.text(definition.path, definition.start_line, definition.end_line)
        if full:
            return full
    symbols = index.symbols(definition.path)
    members = [
        d.signature.split("\n")[0]
        for d in (symbols.definitions if symbols else ())
        if d.parent == definition.name and definition.start_line < d.start_line <= definition.end_line
    ][:OUTLINE_MEMBERS]
    return outline(definition, detect_language(definition.path), members)


def outline(definition: Definition, language: str, members: Sequence[str]) -> str:
    if language == "python":
        lines = [definition.signature]
        if definition.doc:
            doc = definition.doc.replace("\n", "\n    ")
            lines.append(f'    """{doc}"""')
        lines += [f"    {m} ..." for m in members] or ["    ..."]
        return "\n".join(lines)
    mark = comment_prefix(language)
    lines = [f"{mark} {line}".rstrip() for line in definition.doc.split("\n")] if definition.doc else []
    if members:
        return "\n".join(lines + [definition.signature + " {"] + [f"    {m}" for m in members] + ["    ...", "}"])
    closed = definition.signature.endswith((";", "}"))
    return "\n".join(lines + [definition.signature + ("" if closed else " { ... }")])
