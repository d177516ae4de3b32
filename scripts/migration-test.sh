#!/usr/bin/env bash
# A deployed stack updates in place with nothing lost (README "Capacity"; not part of `make test`:
# two builds and two deploys, about 10 minutes). On the AWS emulator: `make deploy-local` of an
# older revision (default: the last before shard plans and delivery copies), events published and
# their deliveries finally failed there; then `make deploy-local` of this tree over it, and the old
# events read, listed and delivered by the new functions (tests/deployed/migration.py).
#
#   scripts/migration-test.sh [OLD_REVISION]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OLD=${1:-0408e52}  # the last main before shard plans and endpoint delivery copies
WORK=$ROOT/.tools/migration
say() { echo "migration-test: $*" >&2; }

started=$(scripts/local.sh emulator)
cleanup() {
  git worktree remove --force "$WORK/old" 2>/dev/null || true
  [ -n "$started" ] && scripts/local.sh stop emulator
}
trap cleanup EXIT
rm -rf "$WORK" && mkdir -p "$WORK"
git worktree prune
git worktree add -q --detach "$WORK/old" "$OLD"
# The old tree deploys with this tree's tools but builds into a target of its own, kept for the next
# run: Cargo gives a workspace's crates the same artifact names wherever the checkout is, so one
# target shared by two checkouts would mix their crates.
mkdir -p "$ROOT/.tools/migration-target"
ln -s "$ROOT/.tools/migration-target" "$WORK/old/target"
ln -s "$ROOT/.tools" "$WORK/old/.tools"

say "deploying $(git rev-parse --short "$OLD") (the old revision)"
(cd "$WORK/old" && scripts/deploy-local.sh >/dev/null)
# shellcheck disable=SC1091
. .tools/deploy-local/env
.tools/build-venv/bin/python tests/deployed/migration.py before "$WORK/state.json"

say "updating the stack in place to this tree"
scripts/deploy-local.sh >/dev/null
# shellcheck disable=SC1091
. .tools/deploy-local/env
.tools/build-venv/bin/python tests/deployed/migration.py after "$WORK/state.json"
say "passed: nothing lost across the update"
