#!/usr/bin/env bash
# `make bench`: every row of the performance table against a baseline taken in the same run (see
# bench/src/main.rs). Builds what the table measures first: release binaries for this machine (cold
# starts, memory) and arm64 zips with cargo-lambda (sizes). Starts the local servers and a second
# DynamoDB Local for the large account, and stops what it started. Not part of `make test`.
#
#   scripts/bench.sh                   every group
#   scripts/bench.sh api list          some: api limits delivery latency isolation cold size list
#   (limits also measures the stack `make deploy-local` deployed, when PAYGATE_API_URL names it:
#   `. .tools/deploy-local/env` first)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

groups=("$@")
wants() { [ ${#groups[@]} -eq 0 ] && return 0; local g; for g in "${groups[@]}"; do [ "$g" = "$1" ] && return 0; done; return 1; }

started=$(scripts/local.sh start)
bench_started=$(scripts/local.sh bench-dynamodb)
# shellcheck disable=SC2086
trap 'scripts/local.sh stop $bench_started $started' EXIT

# Each cargo invocation builds one side only: Cargo unifies features across what it builds at once,
# and the benchmark crate turns on the `local` feature that the functions leave out.
functions=()
for f in get-event list-events webhook-endpoints api-keys ingest-event fanout deliver-webhooks sweeper dashboard; do functions+=(--bin "$f"); done
if wants cold; then
  echo "bench.sh: release build for this machine (cold starts, memory)" >&2
  cargo build -q --release --locked --bin get-event --bin deliver-webhooks
  cargo build -q --release --locked --bin hello-lambda
fi
if wants size; then
  echo "bench.sh: arm64 zips with cargo-lambda (sizes)" >&2
  scripts/local.sh tools
  export PATH="$PWD/.tools/build-venv/bin:$PATH"
  cargo lambda build -q --release --arm64 --output-format zip --locked "${functions[@]}"
  cargo lambda build -q --release --arm64 --output-format zip --locked --bin hello-lambda
fi
cargo build -q --release --locked -p paygate-bench --bin paygate-bench
"${CARGO_TARGET_DIR:-target}/release/paygate-bench" "$@"
