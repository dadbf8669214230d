"""What the model sees: the window around the cursor (``window``: its lines, ``lines``; where
statements start and end, ``boundaries``) and the rest of the file (``file``).

The window's names are re-exported here: ``from slm_lsp.context import Context, build_context``.
"""

from slm_lsp.context.lines import LINE_CAP, WINDOW_CAP
from slm_lsp.context.window import Context, Mode, build_context
from slm_lsp.syntax import MAX_PARSE_BYTES, mask_literals, parse_errors

__all__ = ["Context", "Mode", "build_context", "LINE_CAP", "WINDOW_CAP", "mask_literals", "parse_errors", "MAX_PARSE_BYTES"]
