#!/usr/bin/env bash
# `make validate`: `sam validate --lint` and cfn-lint with the serverless rules, both offline.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/local.sh tools
export SAM_CLI_TELEMETRY=0
BIN=.tools/build-venv/bin
"$BIN/sam" validate --lint --template template.yaml
"$BIN/cfn-lint" template.yaml --append-rules cfn_lint_serverless.rules
echo "validate.sh: template.yaml passes sam validate --lint and cfn-lint (serverless rules)"
