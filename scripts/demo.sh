#!/bin/sh
# demo.sh [SKIFF] — build a busybox bundle and run a container with skiff.
set -eu
skiff=$(realpath "${1:-$(dirname "$0")/../target/release/skiff}")
dir=$(mktemp -d /tmp/skiff-demo.XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$(dirname "$0")"/mk-rootfs.sh "$dir/rootfs"
cd "$dir"
"$skiff" spec
# A non-interactive process instead of the default shell.
python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo hello from a skiff container: hostname $(hostname), pid $$, uid $(id -u); grep -E '^Cap(Eff|Bnd)' /proc/self/status; ls /"]
json.dump(c, open("config.json", "w"), indent=2)
PY
echo "+ skiff run --bundle $dir demo-$$"
"$skiff" --root "$dir/state" run --bundle "$dir" "demo-$$"
