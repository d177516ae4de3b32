#!/usr/bin/env bash
# The client libraries' tests (sdks/node with Node's test runner, sdks/python with pytest) against a
# `paygate dev` of this checkout on a free port, with the local servers up (as `make test` has them).
# Also packs both packages as they would be published (npm pack, python -m build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
say() { echo "sdk-tests.sh: $*" >&2; }

BIN=${PAYGATE_BIN:-$ROOT/target/debug/paygate}
[ -x "$BIN" ] || cargo build -q --locked -p paygate-cli --bin paygate
command -v node >/dev/null 2>&1 || { say "error: node (18 or newer) is needed"; exit 1; }

# shellcheck source=scripts/dev-server.sh
. scripts/dev-server.sh
start_dev_server PAYGATE_RETRY_SCHEDULE=1,1 || exit 1
export PAYGATE_API_BASE=$base PAYGATE_BIN=$BIN
say "paygate dev on $base"

status=0
# Node: the package's own tests, then the tarball npm would publish.
# (set -e does not apply inside a command followed by ||: every step is chained with &&.)
(
  cd sdks/node &&
    npm ci --no-audit --no-fund --silent &&
    node --test test/ &&
    npm pack --silent --pack-destination "$work" >/dev/null
) || status=1

# Python: a venv with pytest and build; the package installed as a user would, then built.
VENV=$ROOT/.tools/sdk-venv
if [ ! -x "$VENV/bin/pytest" ] || [ ! -x "$VENV/bin/pyproject-build" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >&2
  "$VENV/bin/pip" install -q pytest build >&2
fi
"$VENV/bin/pip" install -q --force-reinstall --no-deps ./sdks/python >&2 &&
  "$VENV/bin/pytest" -q -p no:cacheprovider sdks/python/tests &&
  "$VENV/bin/python" -m build -q --outdir "$work/dist" sdks/python >&2 || status=1
[ "$status" -eq 0 ] && say "packed: $(cd "$work" && ls ./*.tgz dist/* | tr '\n' ' ')"
exit $status
