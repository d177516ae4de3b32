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
cargo test --workspace --locked "$@"
