from __future__ import annotations

from slm_lsp.cache import CompletionCache, cache_key, typed_through


def test_key_depends_on_model_identity_and_prompt_and_hides_content():
    a = cache_key("model-a", "<|fim_prefix|>secret_code")
    assert a != cache_key("model-b", "<|fim_prefix|>secret_code")
    assert a != cache_key("model-a", "<|fim_prefix|>secret_cod")
    assert "secret" not in a and len(a) == 64


def test_typed_through_pure():
    assert typed_through("abc de", 4, "defg") == "fg"
    assert typed_through("abc dx", 4, "defg") is None
    assert typed_through("abc defg", 4, "defg") is None  # typed all of it: nothing left


def test_memory_lru_is_bounded_and_typed_through_works():
    cache = CompletionCache("m", None, memory_entries=2)
    cache.put("p1", "one")
    cache.put("p2", "two")
    cache.put("p3", "three")
    assert cache.get("p1") is None
    assert cache.get("p3").text == "three"
    hit = cache.get("p3th")
    assert hit.source == "typed" and hit.text == "ree"


def test_disk_cache_survives_a_restart(tmp_path):
    cache = CompletionCache("m", tmp_path / "c")
    cache.put("prompt", "completion")
    cache.close()
    again = CompletionCache("m", tmp_path / "c")
    assert again.get("prompt").text == "completion"
    other_model = CompletionCache("other", tmp_path / "c")
    assert other_model.get("prompt") is None
    # keys on disk are digests: no path or code in them
    keys = list(again._disk.iterkeys())
    assert keys and all(len(k) == 64 and int(k, 16) >= 0 for k in keys)
    again.close()
