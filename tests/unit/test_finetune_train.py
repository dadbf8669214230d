"""LoRA training and export on a tiny random Qwen2 (no model file): the loss falls,
checkpoints resume to the same weights, the time limit stops cleanly, and the
adapter GGUF has llama.cpp's names, shapes and metadata."""

from __future__ import annotations

import io
import signal
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from slm_lsp.finetune import export, train  # noqa: E402

ITEMS = [
    train.Encoded([1, 2, 3, 4, 5, 6, 7], [-100, -100, -100, -100, 5, 6, 7]),
    train.Encoded([9, 8, 7, 6, 5], [-100, -100, -100, 6, 5]),
]


def tiny_model(settings: train.Settings):
    config = transformers.Qwen2Config(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, tie_word_embeddings=True, initializer_range=0.3,  # room for confident logits
    )  # fmt: skip
    torch.manual_seed(0)
    return train.add_lora(transformers.Qwen2ForCausalLM(config), settings)


def run(model, settings, directory: Path, resume: bool = False, lines: list | None = None) -> dict:
    log = (lines if lines is not None else []).append
    return train.train(model, ITEMS, settings, directory, resume=resume, log=log, progress=io.StringIO())


def test_the_loss_falls_on_the_completion_tokens(tmp_path):
    settings = train.Settings(rank=4, alpha=8, steps=40, learning_rate=5e-2, warmup_steps=1, checkpoint_every=100)
    model = tiny_model(settings)
    before = train.mean_loss(model, ITEMS, "cpu")
    result = run(model, settings, tmp_path)
    assert result["stopped"] == "steps" and result["steps"] == 40
    assert train.mean_loss(model, ITEMS, "cpu") < before / 2
    assert [p.name for p in train.checkpoints(tmp_path)] == ["step-40.pt"]


class InterruptAt(io.StringIO):
    """A progress stream that presses Ctrl-C when the bar shows step `step`."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def write(self, text: str) -> int:
        if text.startswith(f"\rstep {self.step}/"):
            signal.raise_signal(signal.SIGINT)
        return super().write(text)


def test_an_interrupted_run_resumed_reaches_the_weights_of_an_uninterrupted_one(tmp_path):
    settings = train.Settings(rank=4, alpha=8, steps=6, learning_rate=1e-2, warmup_steps=3, checkpoint_every=5)
    whole = tiny_model(settings)
    run(whole, settings, tmp_path / "whole")
    first = tiny_model(settings)
    stopped = train.train(first, ITEMS, settings, tmp_path / "parts", log=[].append, progress=InterruptAt(4))
    assert stopped["stopped"] == "interrupted" and stopped["steps"] == 4
    second, lines = tiny_model(settings), []
    result = run(second, settings, tmp_path / "parts", resume=True, lines=lines)
    assert lines == ["resuming from step 4 (step-4.pt)"] and result["new_steps"] == 2
    a, b = train.lora_state(whole), train.lora_state(second)
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # the decay went on where it stopped
    assert not all(torch.allclose(a[k], train.lora_state(first)[k]) for k in a)  # the last two steps did something


def test_the_learning_rate_warms_up_then_decays_over_steps_or_time():
    s = train.Settings(learning_rate=1.0, steps=100, minutes=10, warmup_steps=10, final_lr=0.1)
    assert train.learning_rate(s, 0, 0.0) == pytest.approx(0.1)  # warm-up: 1/10
    assert train.learning_rate(s, 9, 0.0) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 0.09)))
    assert train.learning_rate(s, 50, 0.0) == pytest.approx(0.55)  # half the steps: half-way down
    assert train.learning_rate(s, 10, 300.0) == pytest.approx(0.55)  # half the time, fewer steps: the time counts
    assert train.learning_rate(s, 100, 0.0) == pytest.approx(0.1) == train.learning_rate(s, 5_000, 9e9)
    timed = train.Settings(learning_rate=2.0, steps=0, minutes=10, warmup_steps=1, final_lr=1.0)
    assert train.learning_rate(timed, 500, 599.0) == 2.0  # final_lr 1: constant


def test_the_prompt_without_gradients_gives_the_same_loss():
    model = tiny_model(train.Settings(rank=4, alpha=8))
    for item in ITEMS:
        full, n = train.example_loss(model, item, "cpu", prompt_grad=True)
        split, m = train.example_loss(model, item, "cpu", prompt_grad=False)
        assert n == m and torch.allclose(full, split, atol=1e-5), (full, split)
        split.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
        model.zero_grad()


def test_the_end_weight_counts_the_last_learned_token_that_many_times():
    torch.manual_seed(1)
    logits, target = torch.randn(5, 11), torch.tensor([-100, -100, 3, 7, 2])
    each = torch.nn.functional.cross_entropy(logits, target, ignore_index=-100, reduction="none")[2:]
    assert torch.allclose(train.weighted_loss(logits, target), each.mean())
    assert torch.allclose(train.weighted_loss(logits, target, 4.0), (each[0] + each[1] + 4 * each[2]) / 6)
    assert torch.allclose(train.weighted_loss(logits, target, 4.0, stop=3), (each[0] + 4 * each[1] + each[2]) / 6)
    model = tiny_model(train.Settings(rank=4, alpha=8))
    flowing_out = train.Encoded([1, 2, 3, 4, 5, 6, 7], [-100, -100, -100, -100, 5, 6, 7], stop=5)
    for item in [*ITEMS, flowing_out]:  # both ways of running the prompt weigh the same token
        full, _ = train.example_loss(model, item, "cpu", prompt_grad=True, end_weight=3.0)
        split, _ = train.example_loss(model, item, "cpu", prompt_grad=False, end_weight=3.0)
        assert torch.allclose(full, split, atol=1e-5)
        assert not torch.allclose(full, train.example_loss(model, item, "cpu")[0])


def test_a_fresh_run_clears_an_earlier_runs_checkpoints(tmp_path):
    settings = train.Settings(rank=4, alpha=8, steps=3, warmup_steps=1, checkpoint_every=2)
    run(tiny_model(settings), train.Settings(rank=4, alpha=8, steps=9, checkpoint_every=3), tmp_path)
    assert [p.name for p in train.checkpoints(tmp_path)] == ["step-6.pt", "step-9.pt"]
    run(tiny_model(settings), settings, tmp_path)  # without --resume: a new run in the same directory
    assert [p.name for p in train.checkpoints(tmp_path)] == ["step-2.pt", "step-3.pt"]
    lines = []
    run(tiny_model(settings), settings, tmp_path, resume=True, lines=lines)
    assert lines == ["resuming from step 3 (step-3.pt)"]


def test_the_time_limit_stops_before_a_step(tmp_path):
    settings = train.Settings(rank=4, alpha=8, minutes=0.0)
    result = run(tiny_model(settings), settings, tmp_path)
    assert result["stopped"] == "time limit" and result["steps"] == 0
    assert not train.checkpoints(tmp_path)  # nothing trained, nothing saved


class CharTokenizer:
    """One token a character (its code point); chr(1) is a FIM mark, an added token."""

    added_tokens_decoder = {1: "<mark>"}

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids, clean_up_tokenization_spaces=False):
        return "".join(chr(i) for i in ids)


def test_encode_learns_the_completion_and_how_the_server_stops_it_only():
    from slm_lsp.finetune.dataset import Example

    def labels(kind, completion, mode):
        item = train.encode(CharTokenizer(), Example("a.py", kind, "abcde\n", completion, mode), 0, 6)
        return item.ids, item.labels

    ids, learned = labels("block", "xy", "block")
    assert ids == [ord(c) for c in "de\n"] + [ord("x"), ord("y"), 0]  # the prompt cut from the start
    assert learned == [-100] * 3 + [ord("x"), ord("y"), 0]  # a block ends with the end token
    assert labels("rest-of-line", "xy", "line")[1][-3:] == [ord("x"), ord("y"), ord("\n")]  # line mode: the newline
    assert labels("line", "xy", "block")[1][-3:] == [ord("x"), ord("y"), 0]  # one line in block mode: the end
    assert labels("block", "x\ny", "line")[1][-1] == 0  # several lines end with the end token
    assert labels("line", "xy", "")[1][-1] == ord("\n") and labels("block", "xy", "")[1][-1] == 0  # no mode: the kind


def test_encode_heals_the_prompts_end_as_the_server_does():
    from slm_lsp.finetune.dataset import Example

    def split(prompt, completion):
        item = train.encode(CharTokenizer(), Example("a.py", "line", prompt, completion, "line"), 0, 100)
        text = "".join(chr(i) for i in item.ids)
        at = next(i for i, label in enumerate(item.labels) if label != -100)
        return text[:at], text[at:]

    assert split("x = fo", "o(1)") == ("x =", " foo(1)\n")  # the partial word and the space before it
    assert split("\x01    ", "row") == ("\x01   ", " row\n")  # one piece of spaces
    assert split("\x01abc", "d") == ("\x01", "abcd\n")  # never the FIM mark
    assert split("a\nbcdefg", "h") == ("a\nbc", "defgh\n")  # four pieces at most
    assert split("x = f(\n", "1)") == ("x = f(\n", "1)\n")  # nothing after a newline


def test_adapter_names_shapes_and_metadata(tmp_path):
    settings = train.Settings(rank=4, alpha=8)
    state = {k: v.numpy() for k, v in train.lora_state(tiny_model(settings)).items()}
    path = export.write_adapter(tmp_path / "a.gguf", state, 8.0, "qwen2")
    meta, tensors = export.read_adapter(path)
    assert meta["general.type"] == "adapter" and meta["adapter.type"] == "lora"
    assert meta["general.architecture"] == "qwen2" and meta["adapter.lora.alpha"] == 8.0
    assert len(tensors) == 2 * 2 * 7  # two layers, seven projections, A and B
    a, b = tensors["blk.1.attn_k.weight.lora_a"], tensors["blk.1.attn_k.weight.lora_b"]
    assert a.shape == (4, 32) and b.shape == (16, 4)  # (rank, in) and (out, rank): llama.cpp's ne (in, rank), (rank, out)
    assert tensors["blk.0.ffn_down.weight.lora_a"].shape == (4, 48)
    peft_b = state["base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight"]
    assert np.array_equal(b, peft_b)


def test_names_and_mismatches():
    assert export.gguf_name("base_model.model.model.layers.12.mlp.up_proj.lora_A.weight") == "blk.12.ffn_up.weight.lora_a"
    assert export.gguf_name("model.layers.0.self_attn.o_proj.lora_B.default.weight") == "blk.0.attn_output.weight.lora_b"
    with pytest.raises(export.ExportError):
        export.gguf_name("base_model.model.lm_head.lora_A.weight")
    a = np.zeros((4, 8), np.float32)
    with pytest.raises(export.ExportError):
        export.adapter_tensors({"model.layers.0.self_attn.q_proj.lora_A.weight": a})
    with pytest.raises(export.ExportError):
        export.adapter_tensors({"model.layers.0.self_attn.q_proj.lora_A.weight": a,
                                "model.layers.0.self_attn.q_proj.lora_B.weight": np.zeros((8, 3), np.float32)})  # fmt: skip


def test_agreement_counts_completion_positions_only():
    torch_picks = [np.array([5, 5, 1, 2, 3, 9])]
    llama_picks = [np.array([0, 0, 1, 2, 4, 0])]
    found = export.agreement(torch_picks, llama_picks, [2])  # the prompt is 3 tokens; the last pick is past the end
    assert (found.positions, found.same) == (3, 2)


DDP_SCRIPT = """
import io, json, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.unit.test_finetune_train import ITEMS, tiny_model
from slm_lsp.finetune import train
settings = train.Settings(rank=4, alpha=8, steps=5, learning_rate=1e-2, warmup_steps=1, checkpoint_every=100)
model = tiny_model(settings)
result = train.train(model, ITEMS, settings, Path({out!r}), log=lambda line: None, progress=io.StringIO())
result["weights"] = sum(float(v.double().sum()) for v in train.lora_state(model).values())
print(json.dumps(result))
from accelerate import PartialState
PartialState().destroy_process_group()  # as the command does at its end
"""


def test_the_same_loop_runs_distributed_on_two_processes(tmp_path):
    """Two processes as `accelerate launch --multi_gpu` starts them (torch.distributed.run; here on
    the CPU, gloo): each trains on its share, they stop together with the same weights, the main
    process writes."""
    import json
    import os
    import socket
    import subprocess
    import sys

    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(repo=str(Path(__file__).parents[2]), out=str(tmp_path / "ck")))
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
              "--master_port", str(port), str(script)]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "true"}  # what `accelerate launch --cpu` sets
    done = subprocess.run(launch, capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert sorted(r["main"] for r in results) == [False, True]
    assert all(r["steps"] == 5 and r["stopped"] == "steps" for r in results)
    assert results[0]["weights"] == results[1]["weights"]  # the same gradients and the same learning rate
    assert [p.name for p in train.checkpoints(tmp_path / "ck")] == ["step-5.pt"]  # written once, by the main process


def test_a_block_that_flows_out_learns_its_way_out_not_the_end_token():
    from slm_lsp.finetune.dataset import Example

    item = train.encode(CharTokenizer(), Example("a.py", "function-body", "ab\n", "xy", "block", "\n\n  d"), 0, 100)
    assert item.labels == [-100] * 3 + [ord(c) for c in "xy\n\n  d"]  # no end token after it
    assert item.stop == 5 and chr(item.labels[item.stop]) == "\n"  # where the body stops: the way out's first token
    item = train.encode(CharTokenizer(), Example("a.py", "line", "ab\n", "xy", "line", "\n  d"), 0, 100)
    assert item.labels[-1] == ord("\n")  # line mode ends at its newline, whatever follows
