"""The workspace index: ``index`` (the ``WorkspaceIndex`` and ``slm-lsp index``) and its parts."""
