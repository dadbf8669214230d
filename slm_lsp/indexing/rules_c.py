"""Definitions in C and C++: declarator chains, prototypes, typedefs and macros."""

from __future__ import annotations

from tree_sitter import Node

from .definitions import Handler, Scope, Walk, named
from .nodes import field, text_of

_NAME_TYPES = frozenset({"identifier", "field_identifier", "type_identifier", "destructor_name", "operator_name"})


def declarator_name(node: Node | None) -> tuple[str, str]:
    """(name, qualifying scope) at the end of a declarator chain: `*Shape::area(...)` -> ("area", "Shape")."""
    while node is not None:
        if node.type in _NAME_TYPES:
            return text_of(node), ""
        if node.type == "qualified_identifier":
            name, _ = declarator_name(field(node, "name"))
            return name, text_of(field(node, "scope"))
        node = field(node, "declarator")
    return "", ""


def _declares_function(node: Node | None) -> bool:
    while node is not None:
        if node.type == "function_declarator":
            return True
        node = field(node, "declarator")
    return False


def _function(walk: Walk, node: Node, outer: Node, scope: Scope) -> None:
    name, qualifier = declarator_name(field(node, "declarator"))
    if qualifier:
        scope = Scope(parent=qualifier, in_class=True, top=False)
    kind = "method" if scope.in_class else "function"
    walk.emit(name, kind, node, outer, scope, field(node, "body"))


def _declaration(walk: Walk, node: Node, outer: Node, scope: Scope) -> None:
    """Prototypes (`int sub(int, int);`, methods declared in a class) and `const` globals."""
    declarators = node.children_by_field_name("declarator")
    qualifiers = {text_of(c) for c in node.named_children if c.type == "type_qualifier"}
    for declarator in declarators:
        where = outer if len(declarators) == 1 else declarator
        if _declares_function(declarator):
            name, qualifier = declarator_name(declarator)
            member = Scope(parent=qualifier, in_class=True, top=False) if qualifier else scope
            walk.emit(name, "method" if member.in_class else "function", node, where, member)
        elif scope.top and qualifiers & {"const", "constexpr"}:
            walk.emit(declarator_name(declarator)[0], "constant", node, where, scope)


_RECORD_KINDS = {"struct_specifier": "struct", "union_specifier": "union", "enum_specifier": "enum"}


def _record(kind: str) -> Handler:
    """struct/union/enum/class with a body (not a mere use of the type)."""
    inner = named(kind, container=kind != "enum")

    def handle(walk: Walk, node: Node, outer: Node, scope: Scope) -> None:
        if field(node, "body") is not None and field(node, "name") is not None:
            inner(walk, node, outer, scope)

    return handle


def _typedef(walk: Walk, node: Node, outer: Node, scope: Scope) -> None:
    """`typedef struct {...} Point;` is a struct named Point; other typedefs are types."""
    shape = field(node, "type")
    kind = "type"
    if shape is not None and shape.type in _RECORD_KINDS and field(shape, "body") is not None:
        if field(shape, "name") is None:
            kind = _RECORD_KINDS[shape.type]
        else:
            _record(_RECORD_KINDS[shape.type])(walk, shape, outer, scope)
    for declarator in node.children_by_field_name("declarator"):
        walk.emit(declarator_name(declarator)[0], kind, node, outer, scope)


def _macro(walk: Walk, node: Node, outer: Node, scope: Scope) -> None:
    if node.type == "preproc_function_def":
        walk.emit(text_of(field(node, "name")), "macro", node, outer, scope)
    elif field(node, "value") is not None:  # not an include guard
        walk.emit(text_of(field(node, "name")), "constant", node, outer, scope)


C: dict[str, Handler] = {
    "function_definition": _function,
    "declaration": _declaration,
    "field_declaration": _declaration,
    "struct_specifier": _record("struct"),
    "union_specifier": _record("union"),
    "enum_specifier": _record("enum"),
    "class_specifier": _record("class"),
    "type_definition": _typedef,
    "alias_declaration": named("type"),
    "preproc_def": _macro,
    "preproc_function_def": _macro,
}
