"""Config layers, GGUF metadata, template choice, model assembly, positions."""

from __future__ import annotations

import hashlib
import struct
import sys
import types as pytypes

import pytest

from slm_lsp import config, gguf, models, positions, templates


# -- config ------------------------------------------------------------------
def test_config_layers_camel_case_and_bad_values(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / ".slm-lsp.json").write_text('{"completion": {"maxLines": 3, "deadlineMs": 150}}')
    cfg, problems = config.load(
        tmp_path,
        {"completion": {"deadlineMs": 120, "bogus": 1, "maxTokens": "many"}, "cache": {"enable": False}},
        environ={"SLM_LSP_MODEL": "/models/x.gguf"},
    )
    assert cfg.completion.max_lines == 3  # project file
    assert cfg.completion.deadline_ms == 120  # client wins over project
    assert cfg.completion.max_tokens == config.CompletionConfig().max_tokens  # bad value ignored
    assert cfg.cache.enable is False
    assert cfg.model.path == "/models/x.gguf"  # environment last
    assert any("bogus" in p for p in problems) and any("maxTokens" in p for p in problems)


def test_config_broken_project_file_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / ".slm-lsp.json").write_text("{not json")
    cfg, problems = config.load(tmp_path, {}, environ={})
    assert cfg == config.Config() and problems and "not valid JSON" in problems[0]


# -- gguf --------------------------------------------------------------------
def _gguf_bytes(meta: dict) -> bytes:
    def s(x: str) -> bytes:
        b = x.encode()
        return struct.pack("<Q", len(b)) + b

    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(meta))
    for key, value in meta.items():
        out += s(key)
        if isinstance(value, str):
            out += struct.pack("<I", 8) + s(value)
        elif isinstance(value, int):
            out += struct.pack("<I", 4) + struct.pack("<I", value)
        elif isinstance(value, list):
            out += struct.pack("<I", 9) + struct.pack("<IQ", 8, len(value)) + b"".join(s(v) for v in value)
    return out


def test_gguf_metadata_and_template_choice(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(_gguf_bytes({
        "general.architecture": "starcoder2", "general.name": "StarCoder2 3B",
        "starcoder2.context_length": 16384,
        "tokenizer.ggml.tokens": ["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "a"],
    }))  # fmt: skip
    meta = gguf.read_metadata(path)
    assert meta["starcoder2.context_length"] == 16384
    assert templates.choose(meta) is templates.STARCODER2
    assert "StarCoder2 3B" in gguf.describe(meta)


@pytest.mark.parametrize(
    "tokens,name,expected",
    [
        (["<|fim_prefix|>", "<|repo_name|>"], "Qwen2.5 Coder", templates.QWEN),
        (["<|fim_prefix|>", "<|file_separator|>"], "codegemma", templates.CODEGEMMA),
        (["<｜fim▁begin｜>"], "deepseek coder", templates.DEEPSEEK),
        (["<PRE>", "<SUF>"], "CodeLlama 7B", templates.CODELLAMA),
    ],
)
def test_template_from_vocabulary(tokens, name, expected):
    assert templates.choose({"general.name": name, "tokenizer.ggml.tokens": tokens}) is expected


def test_chat_model_without_fim_is_a_clear_error():
    with pytest.raises(templates.TemplateError, match="fill-in-the-middle"):
        templates.choose({"general.name": "Llama 3 Instruct", "general.architecture": "llama", "tokenizer.ggml.tokens": ["a"]})


@pytest.mark.parametrize("data", [b"", b"GGUF", b"NOPE" + b"\0" * 40, b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + b"\xff" * 8])
def test_corrupt_gguf_raises_gguf_error(tmp_path, data):
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    with pytest.raises(gguf.GGUFError):
        gguf.read_metadata(path)


# -- model assembly ---------------------------------------------------------
def _fake_parts(tmp_path, monkeypatch, chunks: list[bytes]) -> models.BundledModel:
    names = []
    for i, chunk in enumerate(chunks):
        part = tmp_path / f"part{i}.bin"
        part.write_bytes(chunk)
        name = f"fake_model_part{i}"
        module = pytypes.ModuleType(name)
        module.get_part_path = lambda part=part: str(part)
        monkeypatch.setitem(sys.modules, name, module)
        names.append(name)
    data = b"".join(chunks)
    return models.BundledModel("fake", "fake.gguf", tuple(names), hashlib.sha256(data).hexdigest(), len(data))


def test_assemble_concatenates_in_order_and_verifies(tmp_path, monkeypatch):
    model = _fake_parts(tmp_path, monkeypatch, [b"GGUF", b"-two-", b"three"])
    path = models.assemble(model, tmp_path / "out", out=None)
    assert path.read_bytes() == b"GGUF-two-three"
    assert models.is_verified(path, model)
    assert models.assemble(model, tmp_path / "out", out=None) == path  # reused


def test_assemble_rejects_wrong_hash_and_leaves_nothing(tmp_path, monkeypatch):
    model = _fake_parts(tmp_path, monkeypatch, [b"GGUF", b"data"])
    bad = models.BundledModel(model.name, model.filename, model.modules, "0" * 64, model.size)
    with pytest.raises(models.ModelError, match="sha256"):
        models.assemble(bad, tmp_path / "out", out=None)
    assert not list((tmp_path / "out").iterdir())


def test_missing_part_package_names_it():
    model = models.BundledModel("x", "x.gguf", ("no_such_part_pkg_1",), "0" * 64, 1)
    with pytest.raises(models.ModelError, match="no-such-part-pkg-1"):
        models.part_paths(model)


def test_resolve_missing_user_path_is_clear(tmp_path):
    with pytest.raises(models.ModelError, match="does not exist"):
        models.resolve(str(tmp_path / "missing.gguf"))


# -- positions ---------------------------------------------------------------
def test_utf16_columns_and_clamping():
    text = "a😀b\nsecond\r\nthird"
    cur = positions.cursor_at(text, 0, 3)  # after the emoji (2 UTF-16 units)
    assert cur.character == 2 and cur.line_text == "a😀b"
    assert positions.cursor_at(text, 1, 6).line_text == "second"
    assert not positions.cursor_at(text, 9, 0).in_range
    assert not positions.cursor_at(text, 0, 50).in_range
    assert positions.codepoints_to_utf16("a😀b", 3) == 4

