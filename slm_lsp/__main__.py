import sys

from slm_lsp.cli import main

sys.exit(main())
