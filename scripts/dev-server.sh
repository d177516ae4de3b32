# Sourced by the scripts that test against a `paygate dev` of this checkout (sdk-tests.sh,
# dashboard-tests.sh), with the local servers already up and BIN naming the `paygate` binary.
#
#   start_dev_server [VAR=VALUE…]   makes a work directory ($work), starts `$BIN dev --no-servers`
#                                   on a free port with that environment (sets dev_pid, and base:
#                                   its URL), and stops it and removes $work when the script exits

start_dev_server() {
  work=$(mktemp -d)
  dev_pid=""
  trap stop_dev_server EXIT
  # The client suites page through many events of one account at once: no per-account rate limit
  # here (tests/it/events_api.rs holds the limit itself).
  env PAYGATE_RATE_LIMIT_TEST=0 PAYGATE_RATE_LIMIT_LIVE=0 "$@" "$BIN" dev --no-servers --addr 127.0.0.1:0 >"$work/dev.out" 2>"$work/dev.err" &
  dev_pid=$!
  for _ in $(seq 1 600); do
    grep -q "HTTP API" "$work/dev.out" 2>/dev/null && break
    kill -0 "$dev_pid" 2>/dev/null || { cat "$work/dev.err" >&2; echo "error: paygate dev exited" >&2; return 1; }
    sleep 0.1
  done
  base=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/dev.out" | head -1)
  [ -n "$base" ] || { echo "error: paygate dev did not say where it listens" >&2; return 1; }
}

stop_dev_server() {
  if [ -n "${dev_pid:-}" ]; then
    kill -TERM "$dev_pid" 2>/dev/null && wait "$dev_pid" 2>/dev/null
    dev_pid=""
  fi
  rm -rf "${work:?}"
}
