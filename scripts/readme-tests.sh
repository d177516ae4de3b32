#!/usr/bin/env bash
# The README's walkthroughs, run as written (tests/readme, pytest): Try it, Webhooks locally,
# Recovering final failures, Local invokes and Deploy locally, each on fresh tables and queues, with
# the local servers already up (make test starts them). Starts and stops the emulator if needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/local.sh tools
[ -x .tools/build-venv/bin/pytest ] || .tools/build-venv/bin/pip install -q pytest >&2
# What the walkthroughs run with `cargo run`, built now so that no line waits on the compiler:
# the CLI and its example receiver, and each function as `cargo lambda watch` builds it (alone).
cargo build -q --locked -p paygate-cli --bin paygate --example receiver
for f in get-event list-events deliver-webhooks; do cargo build -q --locked --bin "$f"; done
for port in 3000 4242 4243 4999 9000; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "readme-tests.sh: error: something listens on 127.0.0.1:$port, which the README's walkthroughs use" >&2
    exit 1
  fi
done
.tools/build-venv/bin/pytest -q -p no:cacheprovider tests/readme
