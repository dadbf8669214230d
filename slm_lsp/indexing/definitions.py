"""Definitions in a syntax tree, for every language of ``slm_lsp.languages``.

One generic walk over the top of the tree: wrappers (decorators, `export`,
`template`, `#ifdef`) are looked through, namespaces and modules are entered,
class-like bodies are entered with their name as the members' parent, and
function bodies are never entered (local definitions are no use elsewhere).
Each node type with a meaning has a handler in ``definition_rules``.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import Callable

from tree_sitter import Node

from .model import Definition
from .nodes import COMMENT_TYPES, field, last_line, leading_comment, python_docstring, signature, text_of

# Looked through: the definition inside takes the wrapper's range and comment.
WRAPPERS = frozenset(
    {"decorated_definition", "export_statement", "template_declaration", "ambient_declaration"}
)
# Entered with the same parent: their members are definitions of the file.
PASSTHROUGH = frozenset(
    {
        "namespace_definition", "linkage_specification",
        "preproc_ifdef", "preproc_if", "preproc_else", "preproc_elif", "preproc_elifdef",
        "internal_module", "module", "enum_body_declarations",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Scope:
    parent: str = ""  # the enclosing class-like name
    in_class: bool = False  # members of a class body are methods, not functions
    top: bool = True  # module level: where constants count


@dataclass
class Walk:
    """The state of one extraction: the file and what was found so far."""

    path: str
    language: str
    rules: dict[str, Handler]
    found: list[Definition] = dc_field(default_factory=list)

    def visit(self, node: Node, scope: Scope) -> None:
        for child in node.named_children:
            self.visit_one(child, child, scope)

    def visit_one(self, node: Node, outer: Node, scope: Scope) -> None:
        if node.type in WRAPPERS:
            for child in node.named_children:
                if child.type not in COMMENT_TYPES and child.type != "decorator":
                    self.visit_one(child, outer, scope)
        elif node.type in PASSTHROUGH:
            body = field(node, "body")
            if node.type in ("namespace_definition", "linkage_specification", "internal_module", "module"):
                if body is not None:
                    self.visit(body, scope)
            else:
                self.visit(node, scope)
        elif node.type in self.rules:
            self.rules[node.type](self, node, outer, scope)

    def emit(self, name: str, kind: str, node: Node, outer: Node, scope: Scope, body: Node | None = None) -> None:
        if not name:
            return
        sig_node = node if outer.type == "decorated_definition" else outer
        if self.language == "python" and node.type in ("function_definition", "class_definition"):
            doc = python_docstring(node) or leading_comment(outer)
        else:
            doc = leading_comment(outer)
        self.found.append(
            Definition(
                name=name,
                kind=kind,
                path=self.path,
                start_line=outer.start_point[0],
                end_line=last_line(outer),
                signature=signature(sig_node, body),
                doc=doc,
                parent=scope.parent,
            )
        )

    def members(self, body: Node | None, name: str) -> None:
        if body is not None:
            self.visit(body, Scope(parent=name, in_class=True, top=False))


Handler = Callable[[Walk, Node, Node, Scope], None]


def named(kind: str, member_kind: str = "", container: bool = False) -> Handler:
    """A handler for a node with a `name` field (and maybe a `body`)."""

    def handle(walk: Walk, node: Node, outer: Node, scope: Scope) -> None:
        name = text_of(field(node, "name"))
        body = field(node, "body")
        walk.emit(name, member_kind if scope.in_class and member_kind else kind, node, outer, scope, body)
        if container:
            walk.members(body, name)

    return handle


def is_constant_name(name: str) -> bool:
    return bool(name) and name.upper() == name and any(c.isalpha() for c in name)


def extract_definitions(root: Node, path: str, language: str, rules: dict[str, Handler]) -> tuple[Definition, ...]:
    walk = Walk(path, language, rules)
    walk.visit(root, Scope())
    return tuple(walk.found)
