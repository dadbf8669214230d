"""The completion cache: a pure key function, an in-memory LRU and diskcache.

Keys are sha256 digests of the model identity (model + adapter + template)
and the whole prompt, so no path or code is readable from a key, and a
different model or adapter never sees another's entries. Values are the raw
model output that follows the prompt.

Typed-through reuse: the prompt only grows while the user types (see
prompt.py), so when the prompt minus its last k characters has an entry whose
text starts with those k characters, the rest of that entry is the answer.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

TYPED_THROUGH_CHARS = 48  # how far back a typed-through lookup looks


def cache_key(identity: str, prompt: str) -> str:
    digest = hashlib.sha256()
    digest.update(identity.encode())
    digest.update(b"\0")
    digest.update(prompt.encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()


@dataclass(frozen=True)
class Hit:
    text: str  # the completion for the current prompt
    source: str  # "cache" (exact) or "typed" (typed-through)


def typed_through(prompt: str, cached_prompt_len: int, cached_text: str) -> str | None:
    """The rest of a cached completion when the user typed its head, else None."""
    typed = prompt[cached_prompt_len:]
    if cached_text.startswith(typed) and len(cached_text) > len(typed):
        return cached_text[len(typed) :]
    return None


class CompletionCache:
    """Memory LRU in front of an optional, bounded diskcache."""

    def __init__(self, identity: str, directory: Path | None, size_mb: int = 256, memory_entries: int = 2048):
        self.identity = identity
        self._memory: OrderedDict[str, str] = OrderedDict()
        self._max = memory_entries
        self._lock = threading.Lock()
        self._disk = None
        if directory is not None:
            import diskcache

            directory.mkdir(parents=True, exist_ok=True)
            self._disk = diskcache.Cache(str(directory), size_limit=size_mb << 20, eviction_policy="least-recently-used")

    def get(self, prompt: str) -> Hit | None:
        key = cache_key(self.identity, prompt)
        text = self._memory_get(key)
        if text is None and self._disk is not None:
            text = self._disk_get(key)
            if text is not None:
                self._memory_put(key, text)
        if text:
            return Hit(text, "cache")
        for k in range(1, min(TYPED_THROUGH_CHARS, len(prompt)) + 1):
            earlier = self._memory_get(cache_key(self.identity, prompt[:-k]))
            if earlier is not None and (rest := typed_through(prompt, len(prompt) - k, earlier)):
                return Hit(rest, "typed")
        return None

    def put(self, prompt: str, text: str) -> None:
        if not text:
            return
        key = cache_key(self.identity, prompt)
        self._memory_put(key, text)
        if self._disk is not None:
            try:
                self._disk.set(key, text)
            except Exception:  # a full or broken disk must not break completion
                pass

    def _memory_get(self, key: str) -> str | None:
        with self._lock:
            text = self._memory.get(key)
            if text is not None:
                self._memory.move_to_end(key)
            return text

    def _memory_put(self, key: str, text: str) -> None:
        with self._lock:
            self._memory[key] = text
            self._memory.move_to_end(key)
            while len(self._memory) > self._max:
                self._memory.popitem(last=False)

    def _disk_get(self, key: str) -> str | None:
        try:
            value = self._disk.get(key)
        except Exception:
            return None
        return value if isinstance(value, str) else None

    def clear(self) -> None:
        with self._lock:
            self._memory.clear()
        if self._disk is not None:
            self._disk.clear()

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()
