"""The parts of the workspace index; ``slm_lsp.index`` is the public face."""
