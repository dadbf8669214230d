"""What never reaches the model, the index or a cache: secret files and credentials.

Two kinds of protection, both pure functions:

- **Secret files**, by path alone: `.env*`, keys and certificates, credentials
  and token files (``SECRET_PATTERNS``), anything under ``.ssh``/``.gnupg``/
  ``.aws``, plus the user's ``completion.exclude`` globs. The indexer never
  opens them; the engine never completes in them, nor prefills or warms up on
  them (``document_reason``).
- **Credentials inside ordinary files**: API tokens (``sk-...``, ``ghp_...``,
  ``AKIA...``, ...), ``password = "..."``-style assignments, ``Authorization:
  Bearer ...``, passwords in URLs and private key blocks. ``mask_credentials``
  replaces each value with ``PLACEHOLDER``, line for line (the line count never
  changes). Prompts and the index hold masked text; a completion whose prompt or
  text held a credential is never cached (``cacheable``).
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import PurePosixPath
from typing import Sequence
from urllib.parse import unquote, urlsplit

PLACEHOLDER = "<secret>"

SECRET_PATTERNS = (
    ".env", ".env.*", ".envrc", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk", "id_rsa*",
    "id_dsa*", "id_ecdsa*", "id_ed25519*", "*credentials*", "*.secret*", ".netrc", ".npmrc", ".pypirc",
    ".pgpass", "secrets.*", ".htpasswd", ".git-credentials", "*.kdbx",
)  # fmt: skip
SECRET_DIRS = frozenset({".ssh", ".gnupg", ".aws"})  # everything below these is secret
_SECRET = re.compile("|".join(fnmatch.translate(p) for p in SECRET_PATTERNS), re.IGNORECASE)
_KEY_FILE = re.compile(r"id_[a-z0-9]+(\.pub)?", re.IGNORECASE)  # id_xyz private keys: no extension

SECRET_FILE = "secret file"  # the engine's reason for not completing
EXCLUDED = "excluded"


def is_secret_name(name: str) -> bool:
    """Looks like a credential or key by its name alone: such files are never opened."""
    return bool(_SECRET.match(name) or _KEY_FILE.fullmatch(name)) or name in SECRET_DIRS


def is_secret_path(rel: str) -> bool:
    """A relative path whose file or any directory on the way is secret by name."""
    return any(is_secret_name(part) for part in PurePosixPath(rel).parts)


def _uri_path(uri: str) -> PurePosixPath:
    try:
        return PurePosixPath(unquote(urlsplit(uri).path))
    except ValueError:
        return PurePosixPath(uri)


def document_reason(rel: str, uri: str = "", exclude: Sequence[str] = ()) -> str:
    """Why a document is never completed: ``SECRET_FILE``, ``EXCLUDED`` (the user's
    globs, on the workspace-relative path), or "" when it may be.

    ``rel`` is checked whole; of ``uri`` (a file outside the workspace has only its
    name in ``rel``) the file name and the secret directories above it."""
    if is_secret_path(rel):
        return SECRET_FILE
    if uri:
        path = _uri_path(uri)
        if is_secret_name(path.name) or any(part in SECRET_DIRS for part in path.parts):
            return SECRET_FILE
    if any(fnmatch.fnmatch(rel, pattern) for pattern in exclude):
        return EXCLUDED
    return ""


# -- credentials in text ------------------------------------------------------

_TOKEN = re.compile(
    r"""(?=[srpgAxne])\b(?:                           # a first-letter guard: fast on ordinary text
      sk-(?:[a-z]+-)?[A-Za-z0-9_\-]{16,}              # OpenAI, Anthropic style keys
    | [rsp]k_(?:live|test)_[A-Za-z0-9]{16,}            # Stripe
    | gh[pousr]_[A-Za-z0-9]{20,} | github_pat_[A-Za-z0-9_]{20,}
    | glpat-[A-Za-z0-9_\-]{20,}                        # GitLab
    | (?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|AIPA)[0-9A-Z]{16}\b  # AWS access key ids
    | xox[abposr]-[A-Za-z0-9-]{10,}                     # Slack
    | AIza[0-9A-Za-z_\-]{35}                            # Google API keys
    | npm_[A-Za-z0-9]{36}\b | pypi-[A-Za-z0-9_\-]{40,}
    | eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}  # JSON web tokens
    )""",
    re.VERBOSE,
)
_KEY_WORDS = (  # password, passwd, passphrase, pwd, private_key, secret, token, api_key, access_key, ...
    r"(?=[pPsStTaAcC])(?i:p(?:ass(?:word|wd|phrase)|wd|rivate[_\-]?key)|secret|token"
    r"|a(?:pi[_\-]?key|ccess[_\-]?key|uth(?:[_\-]?key|orization))|client[_\-]?secret|credentials?)"
)  # written as a trie behind a first-letter guard: several times faster than a plain alternation
# key [: type] = or : value; the value quoted (possibly unclosed: the cursor line) or bare with a digit
_ASSIGNMENT = re.compile(
    r"""(?P<lead>(?<![\w.\-])["']?[A-Za-z0-9_.\-]*?(?:""" + _KEY_WORDS + r""")["']?"""
    r"""(?:\s*:\s*[A-Za-z_][\w\[\], .|]*?)?\s*(?<![=!<>])(?:=|:)(?!=)\s*)"""
    r"""(?:(?P<q>["'`])(?P<quoted>[^"'`\n]+)|(?P<bare>(?=[^\s"'`#;,(){}\[\]<>]*\d)[^\s"'`#;,(){}\[\]<>]{6,}+)(?!\())""",
    re.IGNORECASE,
)
_KEY_WORD = re.compile(_KEY_WORDS)
_BEARER = re.compile(r"(?P<lead>(?=[bBtT])\b(?:bearer|basic|token)\s+)(?P<bare>(?=[\w.~+/\-]*\d)[\w.~+/\-]{8,}=*)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<lead>\b[a-z][a-z0-9+.\-]*://[^/\s:@]+:)(?P<bare>[^@\s/]+)(?=@)", re.IGNORECASE)
_PRIVATE_KEY = re.compile(
    r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----)(.*?)(-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\Z)", re.DOTALL
)
_KEY_BODY_LINE = re.compile(r"^(?=[^\n]*\d)(?=[^\n]*[A-Za-z])[ \t]*[A-Za-z0-9+/]{40,}={0,2}[ \t]*$", re.MULTILINE)
_QUICK = re.compile(  # anything any rule could match; most text has none (one fast pass)
    r"sk-|[rsp]k_|gh[pousr]_|github_pat|glpat|AKIA|ASIA|AGPA|AIDA|AROA|ANPA|AIPA|xox|AIza|npm_|pypi-|eyJ|bearer|basic"
    r"|://|PRIVATE KEY|[A-Za-z0-9+/]{40}|" + _KEY_WORDS,
    re.IGNORECASE,
)


def _keep_lead(match: re.Match[str]) -> str:
    if match.group("bare") is not None:
        return match.group("lead") + PLACEHOLDER
    return match.group("lead") + match.group("q") + PLACEHOLDER


def mask_credentials(text: str) -> str:
    """``text`` with every credential-looking value replaced by ``PLACEHOLDER``.

    Line for line: no line is added or removed. Idempotent. Returns ``text``
    itself when there is nothing to mask."""
    if not _QUICK.search(text):
        return text
    masked = _PRIVATE_KEY.sub(lambda m: m.group(1) + re.sub(r"[^\n]+", PLACEHOLDER, m.group(2)) + m.group(3), text)
    masked = _KEY_BODY_LINE.sub(PLACEHOLDER, masked)
    masked = _TOKEN.sub(PLACEHOLDER, masked)
    masked = _URL_PASSWORD.sub(_keep_lead, masked) if "://" in masked else masked
    masked = _mask_assignments(_BEARER.sub(_keep_lead, masked))
    return text if masked == text else masked


def _mask_assignments(text: str) -> str:
    """``_ASSIGNMENT`` on the lines holding a key word only (the rest cannot match: fast)."""
    parts, done = [], 0
    for word in _KEY_WORD.finditer(text):
        if word.start() < done:
            continue
        start = text.rfind("\n", 0, word.start()) + 1
        end = text.find("\n", word.end())
        end = len(text) if end < 0 else end
        parts += [text[done:start], _ASSIGNMENT.sub(_keep_lead, text[start:end])]
        done = end
    parts.append(text[done:])
    return "".join(parts)


def unmasked(completion: str) -> str:
    """A completion as shown: nothing when it repeats the mask (the model copied a
    masked value; ``PLACEHOLDER`` is not the user's code)."""
    return "" if PLACEHOLDER in completion else completion


def has_credential(text: str) -> bool:
    """Some part of ``text`` looks like a credential (masking would change it)."""
    return mask_credentials(text) != text


def cacheable(prompt: str, text: str) -> bool:
    """A completion may be cached (memory or disk) only when neither its prompt (masked
    or not) nor its text held a credential."""
    return PLACEHOLDER not in prompt and not has_credential(prompt + text)
