#!/usr/bin/env bash
# The acceptance tests against the deployed template (tests/deployed, pytest): `make deploy-local`
# on the AWS emulator (IAM enforced), then the suite; stops the emulator if this script started it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(scripts/local.sh emulator)
trap '[ -n "$started" ] && scripts/local.sh stop emulator' EXIT
scripts/deploy-local.sh >/dev/null
[ -x .tools/build-venv/bin/pytest ] || .tools/build-venv/bin/pip install -q pytest >&2
# shellcheck disable=SC1091
. .tools/deploy-local/env
.tools/build-venv/bin/pytest -q -p no:cacheprovider tests/deployed
