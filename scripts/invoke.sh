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
    eval "$(cargo run -q --locked --bin paygate -- env)"
    cargo run -q --locked --bin paygate -- samples seed
    exec cargo lambda watch
    ;;
  invoke)
    fn=${2:?usage: make invoke FN=<function> EVENT=events/<file>.json}
    event=${3:?usage: make invoke FN=<function> EVENT=events/<file>.json}
    [ -f "$event" ] || { echo "invoke.sh: no such file: $event" >&2; exit 1; }
    exec cargo lambda invoke "$fn" --data-file "$event"
    ;;
  *) echo "usage: $0 watch | invoke FN EVENT_FILE" >&2; exit 2 ;;
esac
