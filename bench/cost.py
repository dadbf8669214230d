"""What one completion costs through the real server: cold (first request in a newly
opened file, no warm-up, nothing cached), then per keystroke while retyping one line
(typed-through / joined / KV reuse) and the same request again (exact cache hit).

    .venv/bin/python bench/cost.py [FILE]

Prints medians in ms. FILE defaults to pygls's text_document.py (a real source file).
"""
import asyncio, sys, os, time, tempfile
from pathlib import Path
from lsprotocol import types
from pytest_lsp import client_capabilities
from pytest_lsp.client import make_test_lsp_client
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.conftest import wait_ready, open_doc, inline
from slm_lsp.evaluation.metrics import percentile  # the project's one percentile (nearest rank)
import pygls.workspace.text_document as _td
SRC = Path(sys.argv[1] if len(sys.argv) > 1 else _td.__file__).read_text()
async def main():
    c = make_test_lsp_client()
    env = dict(os.environ, SLM_LSP_CACHE_DIR=tempfile.mkdtemp())
    await c.start_io(sys.executable, "-m", "slm_lsp", env=env)
    await c.initialize_session(types.InitializeParams(capabilities=client_capabilities("neovim"), root_uri=None,
        initialization_options={"model": {"warmup": False}, "completion": {"explicitDeadlineMs": 20000}}))
    await wait_ready(c)
    lines = SRC.splitlines(keepends=True)
    marked = [i for i, l in enumerate(lines) if "self.filename: Optional" in l]
    n = marked[0] if marked else next(i for i in range(len(lines) // 2, len(lines)) if len(lines[i].strip()) > 30)
    target = lines[n]
    indent = target[: len(target) - len(target.lstrip())]
    text = "".join(lines[:n]) + indent + "\n" + "".join(lines[n + 1:])
    uri = open_doc(c, Path("/tmp/td.py"), text, "python")
    rows = {"cold": [], "warm": [], "cache": []}
    t = time.monotonic(); r = await inline(c, uri, n, len(indent)); rows["cold"].append((time.monotonic() - t) * 1000)
    body = target.strip()
    version = 2
    for i in range(1, min(len(body), 20) + 1):
        new = "".join(lines[:n]) + indent + body[:i] + "\n" + "".join(lines[n + 1:])
        c.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=new)])); version += 1
        t = time.monotonic(); r = await inline(c, uri, n, len(indent) + i); rows["warm"].append((time.monotonic() - t) * 1000)
        t = time.monotonic(); await inline(c, uri, n, len(indent) + i); rows["cache"].append((time.monotonic() - t) * 1000)
    print({k: round(percentile(v, 50), 1) for k, v in rows.items()}, "line:", repr(body), "last:", r.items[0].insert_text if r.items else None)
    await c.shutdown_session()
asyncio.run(main())
