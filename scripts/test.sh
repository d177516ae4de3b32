#!/usr/bin/env bash
# `make test`: installs what is missing, starts the local servers (unless already running), lints
# the template, runs every test of the workspace, and stops what it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v cargo >/dev/null 2>&1 || { echo "test.sh: error: cargo (Rust) is needed" >&2; exit 1; }

# The tests find the servers where local.sh starts them.
export PAYGATE_DYNAMODB_URL="http://127.0.0.1:${PAYGATE_DYNAMODB_PORT:-8000}"
export PAYGATE_SQS_URL="http://127.0.0.1:${PAYGATE_SQS_PORT:-4566}"

started=$(scripts/local.sh start)
# shellcheck disable=SC2086
trap 'scripts/local.sh stop $started' EXIT

scripts/validate.sh
cargo test --workspace --locked "$@"
