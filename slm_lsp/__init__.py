"""slm-lsp: private code completion from a small local model, served over LSP."""

__version__ = "0.1.0"
