"""The engine with the deterministic fake backend: cache, typed-through, deadline, cancellation."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from slm_lsp.backend import Generation, Request, Worker
from slm_lsp.fake_backend import FakeBackend
from slm_lsp.cache import CompletionCache
from slm_lsp.config import CompletionConfig, Config
from slm_lsp.engine import Document, Engine
from slm_lsp.templates import QWEN

SOURCE = "import math\n\n\ndef add(a, b):\n    \n"


def make_engine(backend: FakeBackend, **completion) -> Engine:
    config = Config(completion=CompletionConfig(**completion))
    return Engine(config, QWEN, backend=backend, cache=CompletionCache(backend.identity, None))


def doc(text: str = SOURCE, path: str = "pkg/calc.py") -> Document:
    return Document("file:///w/" + path, path, text, "python")


async def until(condition, timeout: float = 3.0) -> None:
    """A bounded poll on ``condition``; fails the test when it never holds."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "the condition never held"
        await asyncio.sleep(0.005)


async def wait_for_cache(engine: Engine) -> None:
    await until(lambda: engine.cache._memory)


async def test_model_answer_then_exact_cache_hit():
    backend = FakeBackend()
    engine = make_engine(backend)
    first = await engine.complete(doc(), 4, 4, explicit=True)
    assert first.source == "model" and first.text == "return a + b"
    await wait_for_cache(engine)
    second = await engine.complete(doc(), 4, 4, explicit=True)
    assert second.source == "cache" and second.text == "return a + b"
    assert len(backend.calls) == 1
    engine.close()


async def test_typed_through_serves_the_rest_without_the_model():
    backend = FakeBackend()
    engine = make_engine(backend)
    await engine.complete(doc(), 4, 4, explicit=True)
    await wait_for_cache(engine)
    typed = SOURCE.replace("    \n", "    ret\n")
    result = await engine.complete(doc(typed), 4, 7)
    assert result.source == "typed" and result.text == "urn a + b"
    assert len(backend.calls) == 1
    engine.close()


async def test_typed_through_diverging_text_asks_the_model():
    backend = FakeBackend()
    engine = make_engine(backend, speculate=False)
    await engine.complete(doc(), 4, 4, explicit=True)
    await wait_for_cache(engine)
    typed = SOURCE.replace("    \n", "    x\n")
    await engine.complete(doc(typed), 4, 5, explicit=True)
    assert len(backend.calls) == 2
    engine.close()


async def test_an_automatic_request_is_answered_when_the_suggestion_is_ready():
    # 40 ms per 4 characters: "return a + b" takes ~120 ms; no short deadline cuts it
    backend = FakeBackend(ms_per_token=40)
    engine = make_engine(backend)
    result = await engine.complete(doc(), 4, 4)
    assert (result.source, result.reason, result.text) == ("model", "stop", "return a + b")
    await wait_for_cache(engine)
    again = await engine.complete(doc(), 4, 4)
    assert again.source == "cache" and again.text == "return a + b"
    engine.close()


async def test_the_deadline_bounds_the_wait_with_what_is_ready():
    # 7 tokens of 40 ms; the deadline at 130 ms leaves about three
    backend = FakeBackend(responses={"def add": "return a + b + a + b + a + b"}, ms_per_token=40)
    engine = make_engine(backend, deadline_ms=130, speculate=False)
    result = await engine.complete(doc(), 4, 4)
    assert result.source == "model" and result.reason == "deadline"
    assert result.text and "return a + b + a + b + a + b".startswith(result.text)  # what was ready, not nothing
    assert len(result.text) < len("return a + b + a + b + a + b")
    engine.close()


async def test_a_newer_request_for_the_document_answers_the_older_one_empty_at_once():
    backend = FakeBackend(responses={"def add": "return a + b + a + b + a + b"}, ms_per_token=30)
    engine = make_engine(backend, speculate=False)
    first = asyncio.create_task(engine.complete(doc(), 4, 4))
    await until(lambda: backend.calls)
    other = SOURCE.replace("def add", "def add2")
    second = asyncio.create_task(engine.complete(doc(other), 4, 4))
    earlier = await asyncio.wait_for(first, 0.5)  # long before the model could have finished
    assert (earlier.text, earlier.reason) == ("", "superseded")
    later = await second
    assert later.reason == "stop" and later.text.startswith("return a + b")
    engine.close()


async def test_an_edit_answers_the_pending_request_empty_then_prefills_its_location():
    backend = FakeBackend(ms_per_token=30)
    engine = make_engine(backend, speculate=False)
    pending = asyncio.create_task(engine.complete(doc(), 4, 4))
    await until(lambda: backend.calls)
    edited = "import math\n\n\ndef mul(x, y):\n    \n"
    engine.edited(doc(edited), 4, 4)
    assert (await asyncio.wait_for(pending, 0.5)).reason == "superseded"
    end = time.monotonic() + 3  # the prefill: the request at the edit, run ahead
    while time.monotonic() < end and not any("def mul" in r.prompt for r in backend.calls):
        await asyncio.sleep(0.01)
    assert any("def mul" in r.prompt for r in backend.calls)
    result = await engine.complete(doc(edited), 4, 4)
    assert result.source in ("cache", "joined") and result.text == "return x + y"
    assert sum("def mul" in r.prompt for r in backend.calls) == 1  # not evaluated twice
    engine.close()


async def test_a_request_right_after_an_edit_cancels_its_prefill():
    backend = FakeBackend(ms_per_token=5)
    engine = make_engine(backend, speculate=False)
    engine.edited(doc(), 4, 4)
    assert doc().uri in engine.scheduler._prefill  # waiting for a quiet moment
    result = await engine.complete(doc(), 4, 4)
    assert doc().uri not in engine.scheduler._prefill  # the request cancelled it
    assert result.source == "model" and result.text == "return a + b"
    assert len(backend.calls) == 1
    engine.close()


async def test_new_request_cancels_the_one_in_flight():
    backend = FakeBackend(responses={"def add": "return a + b + a + b + a + b"}, ms_per_token=30)
    engine = make_engine(backend, speculate=False)
    first = asyncio.create_task(engine.complete(doc(), 4, 4, explicit=True))
    await until(lambda: backend.calls)  # the first request is with the model
    other = SOURCE.replace("def add", "def add2")
    second = await engine.complete(doc(other, path="pkg/other.py"), 4, 4, explicit=True)
    earlier = await first
    assert earlier.text == "" and earlier.reason == "cancelled"  # another document: preempted
    assert second.reason == "stop" and second.text.startswith("return a + b")
    engine.close()


async def test_disabled_excluded_and_language_filters():
    backend = FakeBackend()
    engine = make_engine(backend, enable=False)
    assert (await engine.complete(doc(), 4, 4)).reason == "disabled"
    engine = make_engine(backend, exclude=("pkg/*",))
    assert (await engine.complete(doc(), 4, 4)).reason == "excluded"
    engine = make_engine(backend, languages=("go",))
    assert (await engine.complete(doc(), 4, 4)).reason == "language-disabled"
    assert backend.calls == []


async def test_inside_comment_no_request_unless_explicit():
    backend = FakeBackend(responses={"# total": " of all"})
    engine = make_engine(backend)
    text = "# total\nx = 1\n"
    auto = await engine.complete(Document("u", "a.py", text, "python"), 0, 7)
    assert auto.source == "none" and auto.reason == "in-comment"
    assert backend.calls == []
    explicit = await engine.complete(Document("u", "a.py", text, "python"), 0, 7, explicit=True)
    assert explicit.source == "model"


async def test_in_comments_completes_automatically_inside_comments_and_strings():
    backend = FakeBackend(responses={"# total": " of all", 'x = "to': 'tal"'})
    engine = make_engine(backend, in_comments=True)
    comment = await engine.complete(Document("u", "a.py", "# total\nx = 1\n", "python"), 0, 7)
    assert (comment.source, comment.text, comment.mode) == ("model", " of all", "line")
    string = await engine.complete(Document("v", "b.py", 'x = "to\n', "python"), 0, 7)
    assert string.source == "model" and string.mode == "line"
    engine.close()


async def test_no_model_answers_nothing_with_a_reason():
    engine = Engine(Config(), QWEN)
    engine.set_unavailable("model file missing")
    result = await engine.complete(doc(), 4, 4, explicit=True)
    assert result.text == "" and result.reason == "model file missing"


def test_worker_survives_a_crashing_backend():
    class Boom(FakeBackend):
        def complete(self, request, cancel, on_reply=None):
            if "boom" in request.prompt:
                raise RuntimeError("boom")
            return super().complete(request, cancel, on_reply)

    worker = Worker(Boom())
    reply, result, _ = worker.submit(Request("boom"))
    assert reply.result(timeout=2).stop_reason == "model error"
    with pytest.raises(RuntimeError):
        result.result(timeout=2)
    reply, result, _ = worker.submit(Request("def f(a):\n    "))
    assert result.result(timeout=2).text == "return a"
    worker.close()


def test_fake_backend_checks_cancel_between_tokens():
    backend = FakeBackend(responses={"x": "a" * 400}, ms_per_token=5)
    cancel = threading.Event()
    threading.Timer(0.03, cancel.set).start()
    gen = backend.complete(Request("x", max_tokens=1000), cancel)
    assert gen.stop_reason == "cancelled" and 0 < len(gen.text) < 400
    assert isinstance(gen, Generation)


async def test_next_line_is_speculated_after_a_line_answer():
    """After a line completion, the line after it is generated in the background:
    accepting and pressing Enter is then a typed-through hit, no model call."""
    backend = FakeBackend(responses={"result = w * h\n    return result": "\n    print(result)\n", "result = w * h\n    ret": "urn result"})
    engine = make_engine(backend)
    typed = "def area(w, h):\n    result = w * h\n    ret\n"
    first = await engine.complete(Document("u", "a.py", typed, "python"), 2, 7, explicit=True)
    assert first.text == "urn result"
    worker = engine.scheduler.models.worker
    await until(lambda: len(backend.calls) >= 2 and worker.idle())
    assert len(backend.calls) == 2  # the speculative next line, and nothing after it
    accepted = "def area(w, h):\n    result = w * h\n    return result\n    \n"
    nxt = await engine.complete(Document("u", "a.py", accepted, "python"), 3, 4)
    assert nxt.source == "typed" and nxt.text == "print(result)"
    assert len(backend.calls) == 2
    engine.close()


async def test_router_sends_explicit_requests_to_the_large_model():
    small = FakeBackend(responses={"def add": "return a + b"})
    large = FakeBackend(responses={"def add": "return sum((a, b))"})
    engine = make_engine(small)
    engine.set_large(large, CompletionCache("large", None))
    auto = await engine.complete(doc(), 4, 4)
    explicit = await engine.complete(doc(), 4, 4, explicit=True)
    assert auto.text == "return a + b" and explicit.text == "return sum((a, b))"
    assert len(large.calls) == 1
    engine.close()


async def test_a_new_large_model_closes_the_large_worker_and_cache_it_replaces():
    engine = make_engine(FakeBackend())
    closed: list[str] = []

    class Cache(CompletionCache):
        def close(self) -> None:
            closed.append(self.identity)

    engine.set_large(FakeBackend(responses={"def add": "first"}), Cache("large-1", None))
    first = engine.scheduler.models.large
    engine.set_large(FakeBackend(responses={"def add": "second"}), Cache("large-2", None))
    assert closed == ["large-1"] and not first._thread.is_alive()
    assert (await engine.complete(doc(), 4, 4, explicit=True)).text == "second"
    engine.close()
    assert closed == ["large-1", "large-2"]


async def test_typing_what_the_model_is_generating_joins_it_instead_of_restarting():
    backend = FakeBackend(responses={"def add": "return a + b + a + b + a + b"}, ms_per_token=30)
    engine = make_engine(backend, speculate=False)
    first = asyncio.create_task(engine.complete(doc(), 4, 4))
    await until(lambda: backend.calls)
    worker = engine.scheduler.models.worker
    await until(lambda: (job := worker.current()) is not None and len(job.partial) >= 4)  # a token generated
    typed = SOURCE.replace("    \n", "    re\n")
    second = await engine.complete(doc(typed), 4, 6)
    assert (await first).reason == "superseded"
    assert second.source == "joined" and second.text == "turn a + b + a + b + a + b"
    assert len(backend.calls) == 1  # no restart
    diverged = SOURCE.replace("    \n", "    x = \n")
    await engine.complete(doc(diverged), 4, 8)
    assert len(backend.calls) == 2  # typed something else: a new request
    engine.close()


async def test_a_warm_up_in_flight_is_not_joined():
    """The warm-up's prompt is often a prefix of the first request's: it must not answer it."""
    backend = FakeBackend(ms_per_token=20)
    engine = make_engine(backend, speculate=False)
    opened = SOURCE.replace("    \n", "")
    engine.warmup(doc(opened))
    result = await engine.complete(doc(), 4, 4, explicit=True)
    assert result.source == "model" and result.text == "return a + b"
    engine.close()


async def test_a_cold_request_answers_from_the_local_window_then_warms_the_full_prompt():
    backend = FakeBackend(ms_per_prompt_token=5)
    engine = make_engine(backend, speculate=False)
    text = "".join(f"value_{i} = {i}\n" for i in range(60)) + "\n\ndef add(a, b):\n    \n"
    row = text.count("\n") - 1
    first = await engine.complete(doc(text), row, 4)
    call = backend.calls[0]
    assert first.fallback and first.text == "return a + b"
    assert call.fallback and len(call.fallback) < len(call.prompt) and "value_0 =" not in call.fallback
    assert backend.evaluated != call.prompt  # answered before the full prompt was evaluated
    end = time.monotonic() + 5
    while time.monotonic() < end and backend.evaluated != call.prompt:
        await asyncio.sleep(0.01)
    assert backend.evaluated == call.prompt  # ... which goes on behind the answer
    typed = text[: text.rindex("    \n")] + "    x\n"
    warm = await engine.complete(doc(typed), row, 5)
    assert warm.source == "model" and not warm.fallback  # the next keystroke finds it warm
    engine.close()


async def test_an_explicit_request_never_answers_from_the_short_prompt():
    backend = FakeBackend(ms_per_prompt_token=1)
    engine = make_engine(backend, speculate=False)
    text = "".join(f"value_{i} = {i}\n" for i in range(60)) + "\n\ndef add(a, b):\n    \n"
    result = await engine.complete(doc(text), text.count("\n") - 1, 4, explicit=True)
    assert not result.fallback and backend.calls[0].fallback == ""
    engine.close()


def test_a_block_stops_as_soon_as_a_line_shows_it_has_left_the_block():
    from slm_lsp.context import Mode
    from slm_lsp.engine import should_stop_block

    ctx = make_engine(FakeBackend()).prepare(doc(), 4, 4, explicit=True)[0]
    assert ctx.mode is Mode.BLOCK and ctx.indent == "    "
    stop = should_stop_block(ctx, max_lines=8)
    assert not stop("return a + b\n    ")  # a new line, its indentation not yet known
    assert not stop("x = a\n    return x")  # still in the block
    assert stop("return a + b\n\ndef")  # the first word of a dedented line: out of the block
    assert stop("\n".join(["x = 1"] * 10))  # too many lines
