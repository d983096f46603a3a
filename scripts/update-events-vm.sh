#!/usr/bin/env bash
# update-events-vm.sh — run the update/events integration tests
# (crates/integration-tests/tests/update_events.rs) on a pure cgroup-v2 host:
# the throw-away VM of ../shared/tools/vm-run.sh (about 2 minutes under
# emulation). SKIFF_BIN picks the runtime (default: the debug skiff).
set -euo pipefail
ws=$(cd "$(dirname "$0")/.." && pwd)
vm=$ws/../shared/tools/vm-run.sh
cd "$ws"
bin=$(cargo test -q -p skiff-integration-tests --test update_events --no-run --message-format=json 2>/dev/null | python3 -c '
import sys, json
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "update_events":
        print(m["executable"])')
[ -n "$bin" ] || { echo "update-events-vm: no update_events test binary" >&2; exit 1; }
runtime=${SKIFF_BIN:-$ws/target/debug/skiff}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$vm" -C "$ws" -t 400 -e "SKIFF_BIN=$runtime" -e SKIFF_IT_TIMEOUT=120 -- "$bin" --test-threads=1 2>&1 | tee "$out"
# Pure cgroup v2: every test must have run.
if grep -q "SKIPPED" "$out"; then
  echo "update-events-vm: a test was skipped in the VM" >&2
  exit 1
fi
grep -q "^test result: ok" "$out"
