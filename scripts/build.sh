#!/usr/bin/env bash
# `make build`: `sam build` (BuildMethod rust-cargolambda) → an arm64 `bootstrap` per function in
# .aws-sam/build, then the size of each zipped bootstrap.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/local.sh tools
export SAM_CLI_TELEMETRY=0
export PATH="$PWD/.tools/build-venv/bin:$PATH"   # sam finds cargo-lambda (and its zig) here
sam build --template template.yaml "$@"
echo
echo "function                   bootstrap (zipped)"
for dir in .aws-sam/build/*Function; do
  [ -f "$dir/bootstrap" ] || continue
  size=$(cd "$dir" && python3 -c "import io,zipfile,sys; b=io.BytesIO(); z=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED); z.write('bootstrap'); z.close(); print(len(b.getvalue()))")
  printf "%-26s %6d KiB (%s)\n" "$(basename "$dir")" $((size / 1024)) "$(file -b "$dir/bootstrap" | cut -d, -f1-2)"
done
