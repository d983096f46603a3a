#!/usr/bin/env bash
# resources-vm.sh — run the linux.resources integration tests
# (crates/integration-tests/tests/resources.rs) in the throw-away cgroup-v2
# VM of ../shared/tools/vm-run.sh, for their cgroup v2 expectations (this
# host is cgroup v1). SKIFF_BIN picks the runtime (default: target/debug/skiff).
set -euo pipefail
ws=$(cd "$(dirname "$0")/.." && pwd)
vm=$ws/../shared/tools/vm-run.sh
cd "$ws"
bin=$(cargo test -q -p skiff-integration-tests --test resources --no-run --message-format=json 2>/dev/null | python3 -c '
import sys, json
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "resources":
        print(m["executable"])')
[ -n "$bin" ] || { echo "resources-vm: no resources test binary" >&2; exit 1; }
env_args=()
[ -n "${SKIFF_BIN:-}" ] && env_args=(-e "SKIFF_BIN=$SKIFF_BIN")
"$vm" -C "$ws" -t 600 "${env_args[@]}" -- "$bin" --test-threads=1 "$@"
