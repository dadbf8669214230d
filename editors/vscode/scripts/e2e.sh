#!/usr/bin/env bash
# End-to-end test in a real VS Code: code-server (from the npm registry) served on
# 127.0.0.1, driven in headless Debian Chromium by playwright-core (e2e/run.mjs).
#
#   bash scripts/e2e.sh                          # real model
#   SLM_LSP_BACKEND=fake bash scripts/e2e.sh     # the server's deterministic fake backend
#
# Env: SLM_E2E_HOME (where code-server is installed, default ~/.cache/slm-lsp-e2e),
#      SLM_LSP_BIN (directory with slm-lsp, default <repo>/.venv/bin),
#      CODE_SERVER_VERSION (default below: the newest that runs on Node 20).
#
# code-server is installed by hand instead of `npm install -g code-server`:
# its postinstall runs `npm install` in lib/vscode, whose @vscode/ripgrep
# downloads a binary from GitHub and whose kerberos wants libkrb5 headers; with
# --ignore-scripts plus an explicit rebuild of the native modules it needs, the
# install uses only the npm registry (and Debian's ripgrep for search).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$here/../.." && pwd)"
version="${CODE_SERVER_VERSION:-4.100.3}"
home="${SLM_E2E_HOME:-$HOME/.cache/slm-lsp-e2e}"
cs="$home/code-server-$version"
# code-server writes a default config.yaml under $XDG_CONFIG_HOME on first run; keep it out of ~/.config.
export XDG_CONFIG_HOME="$home/xdg-config"
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

log() { echo "e2e: $*"; }

need_node20() {
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" != "20" ]; then
    log "code-server $version needs Node 20 (this is Node $major); set CODE_SERVER_VERSION to one whose engines.node matches"
    exit 2
  fi
}

install_chromium() {
  [ -x /usr/bin/chromium ] && return
  log "installing Debian chromium"
  if [ "$(id -u)" != 0 ]; then
    log "/usr/bin/chromium is missing; run: sudo apt-get install -y chromium"
    exit 2
  fi
  apt-get update -qq && apt-get install -y -qq chromium ripgrep >/dev/null
}

install_code_server() {
  [ -f "$cs/.slm-e2e-installed" ] && return
  need_node20
  log "installing code-server $version into $cs"
  rm -rf "$cs" && mkdir -p "$home"
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && nice npm pack --silent "code-server@$version" >/dev/null && tar xzf code-server-*.tgz)
  mv "$tmp/package" "$cs" && rm -rf "$tmp"
  (cd "$cs" && nice npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
  # argon2 (password hashing; loaded at start even with --auth none): build from source.
  (cd "$cs" && nice npm rebuild argon2 --loglevel=error)
  cd "$cs/lib/vscode"
  nice npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
  # Native modules VS Code's server loads. kerberos (proxy auth only) is left out.
  nice npm rebuild @vscode/spdlog native-watchdog @vscode/deviceid --loglevel=error
  # node-pty (terminals): its post-install step after the build calls `npx node-gyp`, which may fail offline.
  nice npm rebuild node-pty --loglevel=error >/dev/null 2>&1 || test -f node_modules/node-pty/build/Release/pty.node
  # ripgrep: use Debian's binary instead of @vscode/ripgrep's GitHub download.
  mkdir -p node_modules/@vscode/ripgrep/bin
  if command -v rg >/dev/null; then ln -sf "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg; fi
  # What code-server's postinstall.sh does besides `npm install`.
  ln -sfn node_modules node_modules.asar
  (cd bin/remote-cli && ln -sf code-linux.sh code-server)
  (cd bin/helpers && ln -sf browser-linux.sh browser.sh)
  (cd extensions && nice npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
  cd "$here"
  node "$cs/out/node/entry.js" --version >/dev/null
  touch "$cs/.slm-e2e-installed"
}

install_chromium
install_code_server
log "$(node "$cs/out/node/entry.js" --version | head -1)"

if [ ! -d "$here/node_modules" ]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi
(cd "$here" && rm -f ./*.vsix && npm run -s package >/dev/null)
vsix=$(ls "$here"/slm-lsp-*.vsix)

server_bin="${SLM_LSP_BIN:-$repo/.venv/bin}"
if ! "$server_bin/slm-lsp" --version >/dev/null; then
  log "no working slm-lsp in $server_bin (set SLM_LSP_BIN)"
  exit 2
fi

export CODE_SERVER_ENTRY="$cs/out/node/entry.js" SLM_E2E_VSIX="$vsix" SLM_LSP_BIN="$server_bin"
exec node "$here/e2e/run.mjs"
