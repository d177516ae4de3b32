#!/usr/bin/env bash
# The dashboard's browser tests (dashboard/web/test: playwright-core driving Debian's Chromium, which
# this script installs if missing) against a `paygate dev` of this checkout on a free port, with the
# local servers up (as `make test` has them). Screenshots: target/dashboard/screenshots/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
say() { echo "dashboard-tests.sh: $*" >&2; }

command -v node >/dev/null 2>&1 || { say "error: node (18 or newer) is needed"; exit 1; }
scripts/local.sh chromium
# Always current: the binary embeds the dashboard this checkout builds (its build.rs bundles it).
[ -n "${PAYGATE_BIN:-}" ] || cargo build -q --locked -p paygate-cli --bin paygate
BIN=${PAYGATE_BIN:-$ROOT/target/debug/paygate}

# shellcheck source=scripts/dev-server.sh
. scripts/dev-server.sh
start_dev_server PAYGATE_RETRY_SCHEDULE=1,1 || exit 1
export PAYGATE_API_BASE=$base PAYGATE_BIN=$BIN PAYGATE_SCREENSHOTS=$ROOT/target/dashboard/screenshots
say "paygate dev on $base; the dashboard at $base/dashboard"

cd dashboard/web
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --loglevel=error
node --test --test-concurrency=1 test/
say "screenshots in $PAYGATE_SCREENSHOTS"
