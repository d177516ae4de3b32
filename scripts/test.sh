#!/usr/bin/env bash
# `make test`: installs what is missing, starts the local servers (unless already running), lints
# the template and the code (rustfmt, clippy), runs every test of the workspace, of the client libraries and of the dashboard (in
# Debian's Chromium), deploys the template on the AWS emulator and runs the acceptance tests against
# it, runs the README's walkthroughs as written, and stops what it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v cargo >/dev/null 2>&1 || { echo "test.sh: error: cargo (Rust) is needed" >&2; exit 1; }

started=$(scripts/local.sh start)
# shellcheck disable=SC2086
trap 'scripts/local.sh stop $started' EXIT

scripts/validate.sh
# The code's own lint: formatted as rustfmt.toml says, and clippy-clean (a warning fails the run).
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -q -- -D warnings

# Every test of the workspace; the totals of all test binaries close the output.
log=$(mktemp)
trap 'scripts/local.sh stop $started; rm -f "$log"' EXIT
set +e
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The client libraries (sdks/node, sdks/python) against a paygate dev of this checkout.
scripts/sdk-tests.sh 2>&1 | tee -a "$log"
sdk_status=${PIPESTATUS[0]}
# The dashboard in Debian's Chromium against a paygate dev of this checkout.
scripts/dashboard-tests.sh 2>&1 | tee -a "$log"
dashboard_status=${PIPESTATUS[0]}
# The deployed template on the AWS emulator (make deploy-local), and its acceptance tests.
scripts/deployed-tests.sh 2>&1 | tee -a "$log"
deployed_status=${PIPESTATUS[0]}
# The README's walkthroughs, run as written.
scripts/readme-tests.sh 2>&1 | tee -a "$log"
readme_status=${PIPESTATUS[0]}
set -e
# shellcheck disable=SC2086
scripts/local.sh stop $started
trap 'rm -f "$log"' EXIT
# One closing line over every runner: cargo's "test result:" lines, node's "# pass/# fail/# skipped"
# and pytest's "N passed, M failed".
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     /^# pass [0-9]+$/ { p += $3 } /^# fail [0-9]+$/ { f += $3 } /^# skipped [0-9]+$/ { s += $3 }
     /^[0-9]+ (passed|failed|skipped)/ && / in [0-9.]+s/ { for (i = 1; i < NF; i++) { w = $(i+1); gsub(/,/, "", w); if (w == "passed") p += $i; if (w == "failed" || w == "errors" || w == "error") f += $i; if (w == "skipped") s += $i } }
     END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
[ "$status" -eq 0 ] || exit "$status"
[ "$sdk_status" -eq 0 ] || exit "$sdk_status"
[ "$dashboard_status" -eq 0 ] || exit "$dashboard_status"
[ "$deployed_status" -eq 0 ] || exit "$deployed_status"
exit "$readme_status"
