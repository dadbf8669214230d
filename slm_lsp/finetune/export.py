"""A peft LoRA as a llama.cpp adapter GGUF, and the check that llama.cpp agrees.

llama.cpp's layout (``src/llama-adapter.cpp``): metadata ``general.type =
adapter``, ``general.architecture`` equal to the base model's,
``adapter.type = lora`` and ``adapter.lora.alpha``; for each adapted weight
``blk.N.attn_q.weight`` a pair ``blk.N.attn_q.weight.lora_a`` and ``.lora_b``.
peft keeps ``lora_A`` as (rank, in) and ``lora_B`` as (out, rank); GGUF lists
dimensions in reverse, so they are written as they are and llama.cpp sees
A with ne = (in, rank) and B with ne = (rank, out), which is what it checks. It
scales B·A by alpha / rank, as peft does.

``agreement`` compares the next token transformers + peft and llama.cpp + the
adapter pick at every completion position of some examples (teacher-forced).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

# transformers' module path inside a decoder layer -> llama.cpp's tensor name
PROJECTIONS = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_PEFT_NAME = re.compile(
    r"(?:^|\.)layers\.(?P<layer>\d+)\.(?P<module>" + "|".join(re.escape(k) for k in PROJECTIONS) + r")"
    r"\.lora_(?P<which>[AB])(?:\.[A-Za-z_]+)?\.weight$"
)


class ExportError(ValueError):
    """The LoRA weights cannot be written as a llama.cpp adapter."""


def gguf_name(peft_name: str) -> str:
    """``base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`` -> ``blk.3.attn_q.weight.lora_a``."""
    match = _PEFT_NAME.search(peft_name)
    if match is None:
        raise ExportError(f"not a LoRA weight of an attention or MLP projection: {peft_name}")
    return f"blk.{match['layer']}.{PROJECTIONS[match['module']]}.weight.lora_{match['which'].lower()}"


def adapter_tensors(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """llama.cpp's names for a peft LoRA state dict, float32, every A with its B of the same rank."""
    tensors = {gguf_name(name): np.ascontiguousarray(value, dtype=np.float32) for name, value in state.items()}
    for name, a in tensors.items():
        if not name.endswith(".lora_a"):
            continue
        b = tensors.get(name[: -len("a")] + "b")
        if b is None or a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise ExportError(f"{name}: lora_a {a.shape} has no matching lora_b ({None if b is None else b.shape})")
    if len(tensors) % 2 or not tensors:
        raise ExportError("every LoRA weight needs its A and B")
    return dict(sorted(tensors.items(), key=lambda kv: _order(kv[0])))


def _order(name: str) -> tuple:
    parts = name.split(".")
    return (int(parts[1]), parts[2], parts[-1])


def write_adapter(path: Path, state: Mapping[str, np.ndarray], alpha: float, architecture: str) -> Path:
    """Write the adapter GGUF (whole, then renamed); returns its path."""
    import gguf

    tensors = adapter_tensors(state)
    tmp = path.with_name(path.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    for name, value in tensors.items():
        writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(path)
    return path


def read_adapter(path: Path) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    """(metadata, tensors) of an adapter GGUF, tensors in torch's (row-major) shape."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    meta = {}
    for field in reader.fields.values():
        if field.types and field.types[0] == gguf.GGUFValueType.STRING:
            meta[field.name] = bytes(field.parts[field.data[0]]).decode()
        elif field.types and len(field.data) == 1:
            meta[field.name] = field.parts[field.data[0]][0].item()
    tensors = {t.name: np.asarray(t.data).reshape(tuple(int(d) for d in reversed(t.shape))) for t in reader.tensors}
    return meta, tensors


@dataclass(frozen=True)
class Agreement:
    positions: int
    same: int  # positions where both pick the same next token

    @property
    def share(self) -> float:
        return self.same / self.positions if self.positions else 0.0


def llama_argmax(
    model_path: Path, adapter_path: Path | None, sequences: Sequence[Sequence[int]], n_threads: int = 0
) -> list[np.ndarray]:
    """llama.cpp's argmax after every token of each sequence (greedy next token)."""
    import llama_cpp

    n_ctx = max(len(s) for s in sequences) + 8
    kwargs = {"n_threads": n_threads} if n_threads else {}
    llm = llama_cpp.Llama(model_path=str(model_path), lora_path=str(adapter_path) if adapter_path else None,
                          n_ctx=n_ctx, n_batch=512, logits_all=True, verbose=False, **kwargs)  # fmt: skip
    picks = []
    try:
        for seq in sequences:
            llm.reset()
            llm.eval(list(seq))
            picks.append(np.asarray(llm.scores[: len(seq)]).argmax(axis=-1))
    finally:
        llm.close()
    return picks


def torch_argmax(model, sequences: Sequence[Sequence[int]]) -> list[np.ndarray]:
    import torch

    picks = []
    with torch.no_grad():
        for seq in sequences:
            logits = model(input_ids=torch.tensor([list(seq)], device=model.device)).logits[0]
            picks.append(logits.argmax(dim=-1).cpu().numpy())
    return picks


def agreement(torch_picks: Sequence[np.ndarray], llama_picks: Sequence[np.ndarray], starts: Sequence[int]) -> Agreement:
    """Compare the picks from each sequence's first completion position (`start`: prompt length - 1)."""
    positions = same = 0
    for a, b, start in zip(torch_picks, llama_picks, starts):
        a, b = a[start:-1], b[start:-1]  # the last token's pick predicts past the end
        positions += len(a)
        same += int((a == b).sum())
    return Agreement(positions, same)
