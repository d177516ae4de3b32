#!/usr/bin/env bash
# Local invokes with cargo-lambda (sam local invoke needs Docker, which these machines do not have):
#   scripts/invoke.sh watch                 every function on 127.0.0.1:9000, pointed at the local stack
#   scripts/invoke.sh invoke FN EVENT_FILE  invoke one of them with a file from events/
# The same files work with `sam local invoke -e events/…` on a machine with Docker.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/local.sh tools
export PATH="$PWD/.tools/build-venv/bin:$PATH"
case "${1:-}" in
  watch)
    scripts/local.sh start >/dev/null
    # A `make dev` on the same servers runs the pollers too: they would handle the sample's
    # delivery before `make invoke` does.
    if (exec 3<>/dev/tcp/127.0.0.1/3000) 2>/dev/null; then
      echo "invoke.sh: note: something (make dev?) listens on 127.0.0.1:3000; a paygate dev on these servers also delivers the samples' messages, so stop it (Ctrl-C) for the results the README shows" >&2
    fi
    eval "$(cargo run -q --locked --bin paygate -- env)"
    cargo run -q --locked --bin paygate -- samples seed
    trap 'echo "invoke.sh: DynamoDB Local and the SQS server keep running (make stop stops them)" >&2' EXIT
    cargo lambda watch --invoke-address 127.0.0.1 --invoke-port 9000
    ;;
  invoke)
    fn=${2:?usage: make invoke FN=<function> EVENT=events/<file>.json}
    event=${3:?usage: make invoke FN=<function> EVENT=events/<file>.json}
    [ -f "$event" ] || { echo "invoke.sh: no such file: $event" >&2; exit 1; }
    (exec 3<>/dev/tcp/127.0.0.1/9000) 2>/dev/null ||
      { echo "invoke.sh: nothing listens on 127.0.0.1:9000: run \`make watch\` in another terminal first" >&2; exit 1; }
    exec cargo lambda invoke "$fn" --invoke-address 127.0.0.1 --invoke-port 9000 --data-file "$event"
    ;;
  *) echo "usage: $0 watch | invoke FN EVENT_FILE" >&2; exit 2 ;;
esac
