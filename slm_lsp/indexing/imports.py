"""Imports as each grammar makes easy: Python, JS/TS, Go, Rust, Java, C/C++ `#include "..."`."""

from __future__ import annotations

from typing import Callable, Iterator

from tree_sitter import Node

from .model import Import
from .nodes import descend, field, text_of

_PY_BLOCKS = frozenset(
    {"if_statement", "try_statement", "block", "else_clause", "elif_clause", "except_clause", "finally_clause"}
)
_C_BLOCKS = frozenset(
    {"preproc_ifdef", "preproc_if", "preproc_else", "preproc_elif", "preproc_elifdef", "linkage_specification"}
)


def _python(root: Node) -> Iterator[Import]:
    for node in descend(root, _PY_BLOCKS):
        if node.type == "import_statement":
            for name in node.children_by_field_name("name"):
                if name.type == "aliased_import":
                    yield Import(text_of(field(name, "name")), (), text_of(field(name, "alias")))
                else:
                    yield Import(text_of(name))
        elif node.type == "import_from_statement":
            yield from _python_from(node)


def _python_from(node: Node) -> Iterator[Import]:
    module = text_of(field(node, "module_name"))
    names = node.children_by_field_name("name")
    plain = [text_of(n) for n in names if n.type != "aliased_import"]
    if any(c.type == "wildcard_import" for c in node.named_children):
        plain.append("*")
    if plain:
        yield Import(module, tuple(plain))
    for name in names:
        if name.type == "aliased_import":
            yield Import(module, (text_of(field(name, "name")),), text_of(field(name, "alias")))


def _string_content(node: Node | None) -> str:
    return text_of(node).strip("'\"`")


def _javascript(root: Node) -> Iterator[Import]:
    for node in root.named_children:
        if node.type == "export_statement" and field(node, "source") is not None:
            yield Import(_string_content(field(node, "source")))
        if node.type != "import_statement":
            continue
        module = _string_content(field(node, "source"))
        clause = next((c for c in node.named_children if c.type == "import_clause"), None)
        if clause is None:
            yield Import(module)
            continue
        yield from _javascript_clause(module, clause)


def _javascript_clause(module: str, clause: Node) -> Iterator[Import]:
    plain: list[str] = []
    for part in clause.named_children:
        if part.type == "identifier":  # default import
            plain.append(text_of(part))
        elif part.type == "namespace_import":
            yield Import(module, (), text_of(part.named_children[0]) if part.named_children else "")
        elif part.type == "named_imports":
            for spec in part.named_children:
                if spec.type != "import_specifier":
                    continue
                alias = field(spec, "alias")
                if alias is not None:
                    yield Import(module, (text_of(field(spec, "name")),), text_of(alias))
                else:
                    plain.append(text_of(field(spec, "name")))
    if plain:
        yield Import(module, tuple(plain))


def _go(root: Node) -> Iterator[Import]:
    for node in root.named_children:
        if node.type != "import_declaration":
            continue
        for spec in descend(node, frozenset({"import_spec_list"})):
            if spec.type == "import_spec":
                yield Import(_string_content(field(spec, "path")), (), text_of(field(spec, "name")))


def _rust(root: Node) -> Iterator[Import]:
    for node in descend(root, frozenset({"declaration_list", "mod_item"})):
        if node.type == "use_declaration":
            yield from _rust_tree(field(node, "argument"), "")


def _join(prefix: str, path: str) -> str:
    return f"{prefix}::{path}" if prefix and path else prefix or path


def _rust_tree(node: Node | None, prefix: str) -> Iterator[Import]:
    if node is None:
        return
    if node.type == "scoped_identifier":
        yield Import(_join(prefix, text_of(field(node, "path"))), (text_of(field(node, "name")),))
    elif node.type in ("identifier", "self", "crate", "super"):
        yield Import(prefix, (text_of(node),)) if prefix else Import(text_of(node))
    elif node.type == "use_as_clause":
        inner = list(_rust_tree(field(node, "path"), prefix))
        if inner:
            yield Import(inner[0].module, inner[0].names, text_of(field(node, "alias")))
    elif node.type == "use_wildcard":
        path = node.named_children[0] if node.named_children else None
        yield Import(_join(prefix, text_of(path)), ("*",))
    elif node.type in ("scoped_use_list", "use_list"):
        base = _join(prefix, text_of(field(node, "path")))
        items = field(node, "list") if node.type == "scoped_use_list" else node
        plain = [text_of(c) for c in items.named_children if c.type in ("identifier", "self")] if items else []
        if plain:
            yield Import(base, tuple(plain))
        for child in items.named_children if items else ():
            if child.type not in ("identifier", "self"):
                yield from _rust_tree(child, base)


def _java(root: Node) -> Iterator[Import]:
    for node in root.named_children:
        if node.type != "import_declaration":
            continue
        path = next((c for c in node.named_children if c.type in ("scoped_identifier", "identifier")), None)
        dotted = text_of(path)
        if any(c.type == "asterisk" for c in node.named_children):
            yield Import(dotted, ("*",))
        elif "." in dotted:
            module, _, name = dotted.rpartition(".")
            yield Import(module, (name,))
        elif dotted:
            yield Import(dotted)


def _c(root: Node) -> Iterator[Import]:
    blocks = _C_BLOCKS | {"namespace_definition", "declaration_list"}
    for node in descend(root, blocks):
        if node.type == "preproc_include":
            path = field(node, "path")
            if path is not None and path.type == "string_literal":
                yield Import(_string_content(path))


IMPORTERS: dict[str, Callable[[Node], Iterator[Import]]] = {
    "python": _python,
    "javascript": _javascript,
    "typescript": _javascript,
    "tsx": _javascript,
    "go": _go,
    "rust": _rust,
    "java": _java,
    "c": _c,
    "cpp": _c,
}


def extract_imports(root: Node, language: str) -> tuple[Import, ...]:
    importer = IMPORTERS.get(language)
    return tuple(importer(root)) if importer else ()
