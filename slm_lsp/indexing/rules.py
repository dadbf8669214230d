"""Which node types define what, language by language (see ``definitions``)."""

from __future__ import annotations

from tree_sitter import Node

from .definitions import Handler, Scope, Walk, is_constant_name, named
from .nodes import field, text_of


def _python_constant(walk: Walk, node: Node, outer: Node, scope: Scope) -> None:
    """`MAX_SIZE = 10` / `MAX_SIZE: int = 10` at module level."""
    if not scope.top or node.named_child_count != 1 or node.named_children[0].type != "assignment":
        return
    left = field(node.named_children[0], "left")
    if left is not None and left.type == "identifier" and is_constant_name(text_of(left)):
        walk.emit(text_of(left), "constant", node, outer, scope)


PYTHON: dict[str, Handler] = {
    "function_definition": named("function", "method"),
    "class_definition": named("class", container=True),
    "expression_statement": _python_constant,
}

_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "function", "generator_function"})


def _js_const(walk: Walk, node: Node, outer: Node, scope: Scope) -> None:
    """Module-level `const`: a function when it holds one, else a constant."""
    if not scope.top or not node.children or node.children[0].type != "const":
        return
    declarators = [c for c in node.named_children if c.type == "variable_declarator"]
    for declarator in declarators:
        name = field(declarator, "name")
        if name is None or name.type != "identifier":
            continue
        value = field(declarator, "value")
        is_function = value is not None and value.type in _FUNCTION_VALUES
        body = field(value, "body") if is_function and value is not None else None
        body = body if body is not None and body.type == "statement_block" else None
        where = outer if len(declarators) == 1 else declarator
        walk.emit(text_of(name), "function" if is_function else "constant", declarator, where, scope, body)


JAVASCRIPT: dict[str, Handler] = {
    "function_declaration": named("function"),
    "generator_function_declaration": named("function"),
    "function_signature": named("function"),
    "class_declaration": named("class", container=True),
    "abstract_class_declaration": named("class", container=True),
    "method_definition": named("method"),
    "method_signature": named("method"),
    "abstract_method_signature": named("method"),
    "interface_declaration": named("interface", container=True),
    "type_alias_declaration": named("type"),
    "enum_declaration": named("enum"),
    "lexical_declaration": _js_const,
}


def _go_method(walk: Walk, node: Node, outer: Node, scope: Scope) -> None:
    receiver = text_of(_first_of_type(field(node, "receiver"), "type_identifier"))
    member = Scope(parent=receiver, in_class=True, top=False)
    walk.emit(text_of(field(node, "name")), "method", node, outer, member, field(node, "body"))


def _first_of_type(node: Node | None, node_type: str) -> Node | None:
    if node is None or node.type == node_type:
        return node
    for child in node.named_children:
        found = _first_of_type(child, node_type)
        if found is not None:
            return found
    return None


_GO_TYPE_KINDS = {"struct_type": "struct", "interface_type": "interface"}


def _go_types(walk: Walk, node: Node, outer: Node, scope: Scope) -> None:
    specs = [c for c in node.named_children if c.type in ("type_spec", "type_alias")]
    for spec in specs:
        name = text_of(field(spec, "name"))
        shape = field(spec, "type")
        kind = _GO_TYPE_KINDS.get(shape.type if shape is not None else "", "type")
        walk.emit(name, kind, spec, outer if len(specs) == 1 else spec, scope)
        if kind == "interface" and shape is not None:
            member = Scope(parent=name, in_class=True, top=False)
            for elem in shape.named_children:
                if elem.type == "method_elem":
                    walk.emit(text_of(field(elem, "name")), "method", elem, elem, member)


def _go_consts(walk: Walk, node: Node, outer: Node, scope: Scope) -> None:
    specs = [c for c in node.named_children if c.type == "const_spec"]
    for spec in specs:
        for name in (n for n in spec.children_by_field_name("name") if n.is_named):
            walk.emit(text_of(name), "constant", spec, outer if len(specs) == 1 else spec, scope)


GO: dict[str, Handler] = {
    "function_declaration": named("function"),
    "method_declaration": _go_method,
    "type_declaration": _go_types,
    "const_declaration": _go_consts,
}


def _rust_impl(walk: Walk, node: Node, outer: Node, scope: Scope) -> None:
    walk.members(field(node, "body"), text_of(_first_of_type(field(node, "type"), "type_identifier")))


def _rust_mod(walk: Walk, node: Node, outer: Node, scope: Scope) -> None:
    body = field(node, "body")
    walk.emit(text_of(field(node, "name")), "module", node, outer, scope, body)
    if body is not None:
        walk.visit(body, scope)


RUST: dict[str, Handler] = {
    "function_item": named("function", "method"),
    "function_signature_item": named("function", "method"),
    "struct_item": named("struct"),
    "enum_item": named("enum"),
    "union_item": named("union"),
    "trait_item": named("trait", container=True),
    "type_item": named("type"),
    "const_item": named("constant"),
    "static_item": named("constant"),
    "macro_definition": named("macro"),
    "impl_item": _rust_impl,
    "mod_item": _rust_mod,
}


def _java_constants(walk: Walk, node: Node, outer: Node, scope: Scope) -> None:
    """`static final` fields, and every field of an interface."""
    modifiers = next((c for c in node.named_children if c.type == "modifiers"), None)
    words = set(text_of(modifiers).split())
    if node.type == "field_declaration" and not {"static", "final"} <= words:
        return
    declarators = node.children_by_field_name("declarator")
    for declarator in declarators:
        where = outer if len(declarators) == 1 else declarator
        walk.emit(text_of(field(declarator, "name")), "constant", node, where, scope)


JAVA: dict[str, Handler] = {
    "class_declaration": named("class", container=True),
    "record_declaration": named("class", container=True),
    "interface_declaration": named("interface", container=True),
    "annotation_type_declaration": named("interface", container=True),
    "enum_declaration": named("enum", container=True),
    "method_declaration": named("function", "method"),
    "constructor_declaration": named("method"),
    "field_declaration": _java_constants,
    "constant_declaration": _java_constants,
}
