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

work=$(mktemp -d)
dev_pid=""
cleanup() {
  [ -n "$dev_pid" ] && kill -TERM "$dev_pid" 2>/dev/null && wait "$dev_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# paygate dev on a free port; the banner names it.
PAYGATE_RETRY_SCHEDULE=1,1 "$BIN" dev --no-servers --addr 127.0.0.1:0 >"$work/dev.out" 2>"$work/dev.err" &
dev_pid=$!
for _ in $(seq 1 600); do
  grep -q "HTTP API" "$work/dev.out" 2>/dev/null && break
  kill -0 "$dev_pid" 2>/dev/null || { cat "$work/dev.err" >&2; say "error: paygate dev exited"; exit 1; }
  sleep 0.1
done
base=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/dev.out" | head -1)
[ -n "$base" ] || { say "error: paygate dev did not say where it listens"; exit 1; }
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
