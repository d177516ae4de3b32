#!/usr/bin/env bash
# `make capacity`: the units each operation costs each DynamoDB table, index and partition key
# (DynamoDB Local's ConsumedCapacity), the ceilings they and template.yaml imply against the goals,
# and the goal traffic replayed on them (bench/src/capacity). Writes target/capacity/ and the
# README's capacity table. A few minutes; not part of `make test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(scripts/local.sh start)
bench_started=$(scripts/local.sh bench-dynamodb)
# shellcheck disable=SC2086
trap 'scripts/local.sh stop $bench_started $started' EXIT
# A debug build: this measures units, not speed.
cargo build -q --locked -p paygate-bench --bin paygate-bench
"${CARGO_TARGET_DIR:-target}/debug/paygate-bench" capacity
