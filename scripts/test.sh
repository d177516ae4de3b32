#!/usr/bin/env bash
# `make test`: installs what is missing, starts the local servers (unless already running), lints
# the template, runs every test of the workspace, and stops what it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v cargo >/dev/null 2>&1 || { echo "test.sh: error: cargo (Rust) is needed" >&2; exit 1; }

started=$(scripts/local.sh start)
# shellcheck disable=SC2086
trap 'scripts/local.sh stop $started' EXIT

scripts/validate.sh

# Every test of the workspace; the totals of all test binaries close the output.
log=$(mktemp)
trap 'scripts/local.sh stop $started; rm -f "$log"' EXIT
set +e
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# shellcheck disable=SC2086
scripts/local.sh stop $started
trap 'rm -f "$log"' EXIT
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "cargo: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
