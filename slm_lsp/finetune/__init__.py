"""Fine-tuning the completion model on one repository: ``slm-lsp finetune``.

dataset.py  fill-in-the-middle examples built exactly as the server prompts
            (the eval's held-out files never among them)
train.py    LoRA training with peft on the base model read from its GGUF
export.py   the LoRA weights as a llama.cpp adapter GGUF, and the agreement check
command.py  the command line

torch, transformers, peft, gguf and accelerate come from the ``finetune`` extra
and are imported only by train.py, export.py and the command.
"""
