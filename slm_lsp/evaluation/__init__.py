"""Accuracy evaluation: held-out holes in a repository, and HumanEval infilling.

``holes`` punches holes at syntax boundaries, ``metrics`` scores completions,
``runner`` drives the server's own ``Engine``, ``repo`` and ``humaneval`` are the
two benchmarks; ``command`` is the command line (``slm-lsp eval``).
"""
