"""The fine-tuning fixture repository, copied with planted fake credentials.

``tests/fixtures/finetune_repo`` is a tiny ledger whose every function starts
with the house idiom ``_audit("<module>.<function>")``; it also holds a vendored
and a generated file. ``planted_repo`` copies it and plants fake credentials
(in a ``.env`` and inside ordinary source files, both trained-on and held-out
ones); ``PLANTED`` lists the strings that must appear in nothing written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "finetune_repo"
PLANTED = (
    "sk-PLANTEDenvSECRETkey0123456789abcdef",
    "PlantedEnvPassw0rd77",
    "ghp_PLANTEDfakeTOKEN0123456789abcdefXYZ",
    "PlantedPassw0rd42",
    "glpat-PLANTEDgitlabTOKEN0123456789",
)
NOT_SOURCE = ("VENDORED_MARKER_ZQ81", "GENERATED_MARKER_ZQ82")  # vendored and generated files: never used


def planted_repo(dest: Path) -> Path:
    root = dest / "finetune_repo"
    shutil.copytree(FIXTURE, root)
    (root / ".env").write_text(f"OPENAI_API_KEY={PLANTED[0]}\nLEDGER_ADMIN_PASSWORD={PLANTED[1]}\n")
    with (root / "ledger" / "settings.py").open("a") as f:  # a held-out file (seed 0, fraction 0.2)
        f.write(f'\nGITHUB_TOKEN = "{PLANTED[2]}"\nDATABASE_URL = "postgres://ledger:{PLANTED[3]}@localhost/ledger"\n')
    with (root / "ledger" / "accounts.py").open("a") as f:  # a trained-on file
        f.write(f'\n\ndef deploy_token():\n    _audit("accounts.deploy_token")\n    return "{PLANTED[4]}"\n')
    return root
