#!/usr/bin/env bash
# CI for the VS Code extension: npm ci, lint, typecheck, unit tests, .vsix.
# Prints the node:test summary and a closing "vscode: N passed, N failed" line;
# exits non-zero when any step fails. Needs Node >= 20.19 and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."

step() {
  local name=$1
  shift
  local start=$SECONDS
  echo "::: $name: $*"
  if ! "$@"; then
    echo "::: $name FAILED after $((SECONDS - start))s"
    return 1
  fi
  echo "::: $name ok ($((SECONDS - start))s)"
}

export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

step install npm ci --no-audit --no-fund
step lint npm run -s lint
step typecheck npm run -s typecheck
step build npm run -s build

# Unit tests: spec output for people, TAP to a file for the closing count.
tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
test_status=0
step unit-tests node scripts/build.mjs --tests
step unit-tests node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" out-test/test/ || test_status=$?

step package npm run -s package

passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -1)
echo "vscode: ${passed:-0} passed, ${failed:-0} failed"
if [ "$test_status" -ne 0 ] || [ "${passed:-0}" -eq 0 ]; then
  exit 1
fi
