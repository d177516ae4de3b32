#!/usr/bin/env bash
# `make deploy-local`: template.yaml itself, deployed on a local AWS emulator (ministack, IAM
# enforced, no Docker, no AWS account): the real function binaries behind the real HTTP API, stream
# and queue mappings, schedule and policies. Run it again to update the stack in place;
# `make stop` stops the emulator. `paygate dev` stays the fast inner loop.
#
#   PAYGATE_EMULATOR_PORT (4599)   PAYGATE_LOCAL_STACK (paygate-local)   RETRY_SCHEDULE (1,2,4)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PORT=${PAYGATE_EMULATOR_PORT:-4599}
STACK=${PAYGATE_LOCAL_STACK:-paygate-local}
OUT=$ROOT/.tools/deploy-local
PY=$ROOT/.tools/build-venv/bin/python
SAM=$ROOT/.tools/build-venv/bin/sam
say() { echo "deploy-local: $*" >&2; }

scripts/local.sh tools
scripts/local.sh emulator >/dev/null
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT SAM_CLI_TELEMETRY=0

say "building the function binaries for this machine"
functions=$(grep -A3 'BuildMethod: rust-cargolambda' template.yaml | sed -n 's/.*Binary: //p')
# shellcheck disable=SC2046
cargo build -q --locked $(printf -- '--bin %s ' $functions) --bin paygate
mkdir -p "$OUT/bin"
for f in $functions; do
  cp "target/debug/$f" "$OUT/bin/$f"
  strip "$OUT/bin/$f" 2>/dev/null || true   # debug info is most of a debug build
done
"$PY" scripts/deploy_local.py prepare template.yaml "$OUT/bin" "$OUT"

"$PY" - <<PYEOF
import boto3
s3 = boto3.client("s3")
if "$STACK-artifacts" not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket="$STACK-artifacts")
PYEOF
# DueShards=8: the sweeper reads every shard each second, and the emulator is one Python process
# on a small machine; 512 (the default) is sized for AWS's partitions, not for it. The ingest
# queue's 10 s and 2 receives: a poisoned message reaches its dead-letter queue in seconds.
say "deploying stack $STACK"
"$SAM" deploy --template-file "$OUT/template.yaml" --stack-name "$STACK" --s3-bucket "$STACK-artifacts" \
  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-confirm-changeset --no-fail-on-empty-changeset \
  --parameter-overrides "RetrySchedule=${RETRY_SCHEDULE:-1,2,4}" AllowPrivateWebhookUrls=true "DueShards=${DUE_SHARDS:-8}" IngestQueueVisibilitySeconds=10 IngestQueueMaxReceives=2 >"$OUT/deploy.log" 2>&1 \
  || { tail -30 "$OUT/deploy.log" >&2; say "error: sam deploy failed (log: $OUT/deploy.log)"; exit 1; }

# The stack's names, for the CLI and for you.
"$PY" - >"$OUT/env" <<PYEOF
import boto3
cf = boto3.client("cloudformation")
res = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in cf.describe_stack_resources(StackName="$STACK")["StackResources"]}
for var, lid in [("PAYGATE_EVENTS_TABLE", "EventsTable"), ("PAYGATE_WEBHOOK_ENDPOINTS_TABLE", "WebhookEndpointsTable"),
                 ("PAYGATE_API_KEYS_TABLE", "ApiKeysTable"), ("PAYGATE_DELIVERIES_TABLE", "DeliveriesTable"),
                 ("PAYGATE_DELIVERY_QUEUE_URL", "DeliveryQueue"), ("PAYGATE_DELIVERY_DLQ_URL", "DeliveryDeadLetterQueue"),
                 ("PAYGATE_SLOW_DELIVERY_QUEUE_URL", "SlowDeliveryQueue")]:
    print(f"export {var}={res[lid]}")
stage = "dev"  # the Stage parameter's default
# The emulator's path-style address of the API: every client resolves 127.0.0.1, where
# {id}.execute-api.localhost resolves in curl only (not in Python or Node).
print(f"export PAYGATE_API_URL=$AWS_ENDPOINT_URL/_aws/execute-api/{res['HttpApi']}/{stage}")
print("export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL")
print("export PAYGATE_ALLOW_PRIVATE_WEBHOOK_URLS=true  # as the stack was deployed (AllowPrivateWebhookUrls)")
PYEOF
# shellcheck disable=SC1091
. "$OUT/env"
# The account, key, event and endpoint the files in events/ name, for `sam remote invoke`.
target/debug/paygate --deployed samples seed >/dev/null
account=$(target/debug/paygate accounts create)
key=$(echo "$account" | sed -n 's/.*"test_key":"\([^"]*\)".*/\1/p')
cat <<DONE
Stack $STACK is up on the AWS emulator at $AWS_ENDPOINT_URL (IAM enforced).

  HTTP API   $PAYGATE_API_URL
  test key   $key   (a new account: $account)

  curl -H "Authorization: Bearer $key" $PAYGATE_API_URL/v1/events

The CLI against this stack (accounts create, trigger, listen, recover): paygate --deployed <command>
Invoke a function with a file from events/ (the deployed stack's answer to \`sam local invoke\`):
  . $OUT/env && $SAM remote invoke GetEventFunction --stack-name $STACK --event-file events/get-event.apigw.json
Run \`make deploy-local\` again to update the stack; \`make stop\` stops the emulator.
DONE
