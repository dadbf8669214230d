"""Retrieval: which snippets of the workspace a completion gets, and in which order."""

from __future__ import annotations

from pathlib import Path

import pytest

from slm_lsp.config import IndexConfig
from slm_lsp.indexing.index import WorkspaceIndex
from slm_lsp.prompt import estimate_tokens
from slm_lsp.retrieval import Snippet, cursor_context, retrieve

SHAPES = '''"""Shapes and their measures."""

import math


class Shape:
    """A closed figure."""

    def __init__(self, sides: list[float]) -> None:
        self.sides = sides

    def scaled(self, factor: float) -> "Shape":
        return Shape([s * factor for s in self.sides])


def compute_area(shape: Shape, scale: float = 1.0) -> float:
    """Area of a shape, by Heron's formula for triangles.

    Squares and rectangles are handled too.
    """
    sides = shape.sides
    if len(sides) == 3:
        a, b, c = sides
        s = (a + b + c) / 2
        return math.sqrt(s * (s - a) * (s - b) * (s - c)) * scale
    if len(sides) == 4:
        return sides[0] * sides[1] * scale
    raise ValueError("unsupported shape")
    # (long enough to be shown as an outline)
    # ...
    # ...
    # ...


def perimeter(shape: Shape) -> float:
    """Sum of the sides."""
    return sum(shape.sides)


class Polygon(Shape):
    """A shape with any number of sides."""

    def corners(self) -> int:
        return len(self.sides)

    def longest(self) -> float:
        return max(self.sides)

    def shortest(self) -> float:
        return min(self.sides)

    def regular(self) -> bool:
        return self.longest() == self.shortest()

    def describe(self) -> str:
        return f"{self.corners()} sides"
'''

OTHER = '''def compute_area(width, height):
    return width * height
'''

INVOICE = '''"""Invoices."""


def total_due(invoice, tax_rate, discount):
    subtotal = sum(item.price * item.quantity for item in invoice.line_items)
    taxed = subtotal * (1 + tax_rate)
    return taxed - discount


def overdue_invoices(invoices, today):
    return [invoice for invoice in invoices if invoice.due_date < today]
'''

WEB = """export function compute_area(w: number, h: number): number {
  return w * h;
}
"""

README = "# Project\n\nShapes, invoices and a web front end.\n"


@pytest.fixture
def index(tmp_path: Path) -> WorkspaceIndex:
    root = tmp_path / "ws"
    for rel, text in {
        "geo/shapes.py": SHAPES,
        "lib/other.py": OTHER,
        "billing/invoice.py": INVOICE,
        "web/area.ts": WEB,
        "README.md": README,
        "app/main.py": "",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    workspace = WorkspaceIndex(root, tmp_path / "store", IndexConfig())
    workspace.build()
    return workspace


MAIN_PREFIX = """from geo.shapes import Shape, compute_area


def report(shapes):
    total = 0.0
    for shape in shapes:
"""


def ask(index: WorkspaceIndex, prefix: str, line_prefix: str, suffix: str = "\n", **kwargs) -> tuple[Snippet, ...]:
    options = {"budget_tokens": 1000, "min_score": 0.2, "path": "app/main.py", "language": "python"} | kwargs
    return retrieve(index, prefix=prefix + line_prefix, line_prefix=line_prefix, suffix=suffix, **options)


def test_a_call_brings_the_signature_from_another_file(index: WorkspaceIndex) -> None:
    snippets = ask(index, MAIN_PREFIX, "        total += compute_area(")
    area = [s for s in snippets if s.kind == "definition" and "compute_area" in s.text]
    assert [s.path for s in area] == ["geo/shapes.py"], snippets
    text = area[0].text
    assert text.startswith("def compute_area(shape: Shape, scale: float = 1.0) -> float:")
    assert "Area of a shape, by Heron's formula for triangles." in text
    assert "math.sqrt" not in text  # long: the outline, not the body
    assert area[0].start_line == 15 and 0.0 <= area[0].score <= 1.0


def area_scores(snippets: tuple[Snippet, ...]) -> dict[str, float]:
    return {s.path: s.score for s in snippets if s.kind == "definition" and "compute_area" in s.text}


def test_imports_decide_between_namesakes_and_other_languages_never_count(index: WorkspaceIndex) -> None:
    imported = ask(index, MAIN_PREFIX, "        total += compute_area(", budget_tokens=10_000, min_score=0.0)
    assert list(area_scores(imported)) == ["geo/shapes.py"]
    unimported = MAIN_PREFIX.replace("from geo.shapes import Shape, compute_area", "import os")
    scores = area_scores(ask(index, unimported, "        total += compute_area(", budget_tokens=10_000, min_score=0.0))
    assert set(scores) == {"geo/shapes.py", "lib/other.py"}
    assert scores["geo/shapes.py"] == scores["lib/other.py"] < area_scores(imported)["geo/shapes.py"]


def test_short_definitions_come_whole(index: WorkspaceIndex) -> None:
    prefix = "from geo.shapes import perimeter\n\n\ndef fence(plot):\n"
    snippets = ask(index, prefix, "    return perimeter(")
    whole = 'def perimeter(shape: Shape) -> float:\n    """Sum of the sides."""\n    return sum(shape.sides)'
    assert [(s.path, s.start_line, s.text) for s in snippets] == [("geo/shapes.py", 34, whole)]


def test_long_classes_come_as_outlines_with_their_members(index: WorkspaceIndex) -> None:
    prefix = "from geo.shapes import Polygon\n\n\ndef square(side):\n"
    snippets = ask(index, prefix, "    return Polygon(")
    assert [s.text for s in snippets] == [
        "class Polygon(Shape):\n"
        '    """A shape with any number of sides."""\n'
        "    def corners(self) -> int: ...\n"
        "    def longest(self) -> float: ...\n"
        "    def shortest(self) -> float: ...\n"
        "    def regular(self) -> bool: ...\n"
        "    def describe(self) -> str: ..."
    ]


def test_unrelated_text_brings_nothing(index: WorkspaceIndex) -> None:
    prefix = "import random\n\n\ndef roll_dice(count):\n    faces = [random.randint(1, 6) for _ in range(count)]\n"
    assert ask(index, prefix, "    return ", path="games/dice.py") == ()
    assert ask(index, "", "", path="games/empty.py") == ()


def test_the_own_file_is_never_retrieved(index: WorkspaceIndex) -> None:
    prefix = SHAPES.split("def perimeter")[0]
    snippets = ask(index, prefix, "def perimeter(shape", path="geo/shapes.py", min_score=0.0)
    assert all(s.path != "geo/shapes.py" for s in snippets)


def test_only_complete_calls_on_the_cursor_line_look_up_definitions(index: WorkspaceIndex) -> None:
    prefix = "def report(shapes):\n    total = 0.0\n"
    assert not [s for s in ask(index, prefix, "    total += compute_are") if s.kind == "definition"]
    assert not [s for s in ask(index, prefix, "    total += compute_area") if s.kind == "definition"]
    assert [s for s in ask(index, prefix, "    total += compute_area(") if s.kind == "definition"]


def test_typing_on_the_same_line_keeps_the_selection(index: WorkspaceIndex) -> None:
    line = "        total += compute_area(shape, scale=2.0)"
    results = set()
    for n in range(8, len(line) + 1):
        snippets = ask(index, MAIN_PREFIX, line[:n], "\n    return total\n")
        results.add(tuple((s.path, s.start_line, s.text) for s in snippets))
    assert len(results) == 1 and results.pop()


def test_order_is_by_path_then_line(index: WorkspaceIndex) -> None:
    prefix = MAIN_PREFIX + "        area = compute_area(shape)\n        edge = perimeter(shape)\n"
    snippets = ask(index, prefix, "        due = total_due(", budget_tokens=10_000, min_score=0.0)
    assert len(snippets) >= 3
    assert list(snippets) == sorted(snippets, key=lambda s: (s.path, s.start_line))


def test_the_budget_is_respected(index: WorkspaceIndex) -> None:
    prefix = MAIN_PREFIX + "        area = compute_area(shape)\n        edge = perimeter(shape)\n"

    def cost(snippets: tuple[Snippet, ...]) -> int:
        return sum(estimate_tokens(s.text) + estimate_tokens(s.path) for s in snippets)  # the default estimate

    everything = ask(index, prefix, "        due = total_due(", budget_tokens=100_000, min_score=0.0)
    for budget in (0, 20, 60, 120, 250):
        chosen = ask(index, prefix, "        due = total_due(", budget_tokens=budget, min_score=0.0)
        assert cost(chosen) <= budget
        assert set(chosen) <= set(everything) or all(s.text in {e.text for e in everything} for s in chosen)
    assert ask(index, prefix, "x", budget_tokens=0) == ()


def test_similar_code_elsewhere_is_found(index: WorkspaceIndex) -> None:
    prefix = (
        "def invoice_summary(invoice, tax_rate, discount):\n"
        "    subtotal = sum(item.price * item.quantity for item in invoice.line_items)\n"
        "    taxed = subtotal * (1 + tax_rate)\n"
    )
    snippets = ask(index, prefix, "    return ", path="billing/summary.py")
    assert [(s.path, s.kind) for s in snippets] == [("billing/invoice.py", "similar")]
    assert "def total_due" in snippets[0].text and snippets[0].start_line == 0


def test_recent_files_raise_their_chunks(index: WorkspaceIndex) -> None:
    prefix = "def late(invoices):\n    today = now()\n"
    assert ask(index, prefix, "    return ", path="billing/late.py", min_score=0.3) == ()
    snippets = ask(index, prefix, "    return ", path="billing/late.py", min_score=0.3, recent=["billing/invoice.py"])
    assert [(s.path, s.kind) for s in snippets] == [("billing/invoice.py", "recent")]


def test_a_threshold_above_every_score_returns_nothing(index: WorkspaceIndex) -> None:
    assert ask(index, MAIN_PREFIX, "        total += compute_area(", min_score=1.01) == ()


def test_an_unindexed_file_uses_its_own_imports(index: WorkspaceIndex) -> None:
    snippets = ask(index, MAIN_PREFIX, "        total += compute_area(", path="app/new_module.py", min_score=0.0)
    assert list(area_scores(snippets)) == ["geo/shapes.py"]


def test_cursor_context_leaves_out_the_cursor_line() -> None:
    assert cursor_context("a\nb\nc = fo", "o()\nd\ne\n") == ("a\nb", "d\ne\n")
    lines = "".join(f"line{i}\n" for i in range(40))
    above, below = cursor_context(lines + "cur", "sor\n" + lines)
    assert above.split("\n") == [f"line{i}" for i in range(25, 40)]
    assert below.split("\n") == [f"line{i}" for i in range(5)]


def build(tmp_path: Path, files: dict[str, str]) -> WorkspaceIndex:
    for rel, text in files.items():
        (tmp_path / "ws" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ws" / rel).write_text(text)
    workspace = WorkspaceIndex(tmp_path / "ws", tmp_path / "store", IndexConfig())
    workspace.build()
    return workspace


def test_go_sees_its_package_and_typescript_its_imports(tmp_path: Path) -> None:
    index = build(tmp_path, {
        "geo/point.go": "package geo\n\n// Dist measures.\nfunc Dist(a, b Point) float64 { return 0 }\n",
        "other/point.go": "package other\n\nfunc Dist(a, b int) int { return 0 }\n",
        "web/math.ts": "export function clamp(x: number, lo: number, hi: number): number {\n  return x;\n}\n",
        "web/other.ts": "export function clamp(x: string): string {\n  return x;\n}\n",
        "web/geo/index.ts": "export const ORIGIN = { x: 0, y: 0 };\n",
    })  # fmt: skip
    go = ask(index, "package geo\n\nfunc Far(p Point) bool {\n", "\treturn Dist(", path="geo/far.go", language="go")
    assert [(s.path, s.text.split("\n")[-1]) for s in go] == [("geo/point.go", "func Dist(a, b Point) float64 { return 0 }")]
    ts_prefix = "import { clamp } from './math';\nimport * as geo from './geo';\n\nexport function fit(v: number) {\n"
    ts = ask(index, ts_prefix, "  return clamp(geo.ORIGIN.", path="web/fit.ts", language="typescript")
    assert [s.path for s in ts] == ["web/geo/index.ts", "web/math.ts"]


def test_c_includes_reach_the_header_and_its_source(tmp_path: Path) -> None:
    index = build(tmp_path, {
        "src/geo.h": "#ifndef GEO_H\n#define GEO_H\n/* Area of a w*h box. */\nint box_area(int w, int h);\n#endif\n",
        "src/geo.c": '#include "geo.h"\nint box_area(int w, int h) { return w * h; }\n',
        "lib/misc.c": "int box_area(void) { return 0; }\n",
    })  # fmt: skip
    prefix = '#include "geo.h"\n\nint main(void) {\n'
    snippets = ask(index, prefix, "    return box_area(", path="src/main.c", language="c")
    assert [s.path for s in snippets] == ["src/geo.c", "src/geo.h"]


def test_a_bare_name_never_means_a_method_of_another_file(tmp_path: Path) -> None:
    index = build(tmp_path, {"pkg/store.py": "class Store:\n    def flush_all(self):\n        pass\n"})
    prefix = "def run(store):\n"
    assert not [s for s in ask(index, prefix, "    flush_all(", path="pkg/run.py") if s.kind == "definition"]
    assert [s for s in ask(index, prefix, "    store.flush_all(", path="pkg/run.py") if s.kind == "definition"]


IMPORTERS = {
    "pkg/cache.py": "class SafeFileCache:\n    pass\n\n\ndef is_from_cache(resp):\n    return False\n",
    "pkg/session.py": "import logging\n\nfrom pkg.cache import SafeFileCache, is_from_cache\n\nlog = logging.getLogger()\n",
    "pkg/other.py": "from pkg.cache import SafeFileCache\nimport pkg.cache\n",
}
DOWNLOAD = '''"""Downloads."""

import os

# the import being written goes here

def fetch(url):
    """Maybe the SafeFileCache holds it."""
    cache = SafeFileCache()
    if is_from_cache(url):
        logging.info("cached %s", os.path.basename(url))
    return Download(cache)


class Download:
    pass
'''


def ask_in(index: WorkspaceIndex, document: str, row: int, path: str = "pkg/download.py") -> tuple[Snippet, ...]:
    lines = document.split("\n")
    prefix = "\n".join(lines[:row]) + "\n"
    return retrieve(
        index, path, "python", prefix, "", "\n" + "\n".join(lines[row + 1 :]),
        budget_tokens=1000, min_score=0.2, document=document, row=row,
    )  # fmt: skip


def test_in_the_import_block_other_files_show_how_they_import_the_names_used_below(tmp_path: Path) -> None:
    index = build(tmp_path, IMPORTERS)
    hints = [(s.path, s.text) for s in ask_in(index, DOWNLOAD, 4) if s.kind == "import"]
    # used below, imported nowhere here: SafeFileCache and is_from_cache, logging; not os (imported), not
    # Download (defined here), not `cache` (a local name, and `import pkg.cache` binds `pkg`)
    assert hints == [("pkg/session.py", "from pkg.cache import SafeFileCache, is_from_cache\nimport logging")]


def test_with_the_documents_tree_retrieval_parses_nothing_of_the_buffer(tmp_path: Path, monkeypatch) -> None:
    """The document layer's tree is used for the file's own symbols and its free names."""
    from slm_lsp import autoimport, retrieval
    from slm_lsp.indexing import free_names, header, symbols

    index = build(tmp_path, IMPORTERS)
    root = symbols.parse("python", DOWNLOAD)
    expected = ask_in(index, DOWNLOAD, 4)

    def no_parse(*args, **kwargs):
        raise AssertionError("the buffer was parsed again")

    header.import_spans.cache_clear()  # a cached parse of an earlier test's head would hide one here
    for module, name in ((free_names, "parse"), (retrieval, "extract"), (autoimport, "extract"), (header, "parse")):
        monkeypatch.setattr(module, name, no_parse)
    lines = DOWNLOAD.split("\n")
    found = retrieve(
        index, "pkg/download.py", "python", "\n".join(lines[:4]) + "\n", "", "\n" + "\n".join(lines[5:]),
        budget_tokens=1000, min_score=0.2, document=DOWNLOAD, row=4, root=root,
    )  # fmt: skip
    assert [s for s in found if s.kind == "import"] == [s for s in expected if s.kind == "import"]
    (hint_snippet,) = [s for s in found if s.kind == "import"]
    assert [h.names for h in hint_snippet.imports] == [("SafeFileCache", "is_from_cache"), ()]


def test_no_import_hints_below_the_import_block_or_in_the_own_module(tmp_path: Path) -> None:
    index = build(tmp_path, IMPORTERS)
    assert not [s for s in ask_in(index, DOWNLOAD, 9) if s.kind == "import"]
    own = "\n\n\ndef f():\n    return SafeFileCache()\n"  # pkg/cache.py itself: never `from pkg.cache import ...`
    assert not [s for s in ask_in(index, own, 0, path="pkg/cache.py") if s.kind == "import"]


def test_relative_imports_are_hinted_only_beside_their_importer(tmp_path: Path) -> None:
    index = build(tmp_path, {
        "pkg/base.py": "class Candidate:\n    pass\n",
        "pkg/factory.py": "from .base import Candidate\n",
        "other/user.py": "from .base import Candidate\n",
    })  # fmt: skip
    document = "import os\n\n\ndef make():\n    return Candidate()\n"
    here = [s.text for s in ask_in(index, document, 1, path="pkg/resolver.py") if s.kind == "import"]
    assert here == ["from .base import Candidate"]
    elsewhere = [s.text for s in ask_in(index, document, 1, path="app/main.py") if s.kind == "import"]
    assert elsewhere == []


def test_importers_follow_updates_and_removals(tmp_path: Path) -> None:
    index = build(tmp_path, IMPORTERS)
    assert sorted(p for p, _ in index.importers_of("SafeFileCache")) == ["pkg/other.py", "pkg/session.py"]
    assert [p for p, _ in index.importers_of("pkg")] == ["pkg/other.py"]  # `import pkg.cache` binds `pkg`
    index.update_file("pkg/other.py", "import json\n")
    assert [p for p, _ in index.importers_of("SafeFileCache")] == ["pkg/session.py"]
    assert [p for p, _ in index.importers_of("json")] == ["pkg/other.py"]
    index.remove_file("pkg/session.py")
    assert index.importers_of("SafeFileCache") == [] and index.importers_of("logging") == []
