#!/usr/bin/env bash
# lsm-vm.sh — run the LSM integration tests (crates/integration-tests/tests/lsm.rs)
# in the throw-away VM of ../shared/tools/vm-run.sh, whose Debian kernel has
# AppArmor (this host's kernel has no LSM). Needs apparmor_parser on the host
# (package apparmor; the VM sees the host's files). SKIFF_BIN picks the runtime.
set -euo pipefail
ws=$(cd "$(dirname "$0")/.." && pwd)
vm=$ws/../shared/tools/vm-run.sh
cd "$ws"
bin=$(cargo test -q -p skiff-integration-tests --test lsm --no-run --message-format=json 2>/dev/null | python3 -c '
import sys, json
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "lsm":
        print(m["executable"])')
[ -n "$bin" ] || { echo "lsm-vm: no lsm test binary" >&2; exit 1; }
env_args=()
[ -n "${SKIFF_BIN:-}" ] && env_args=(-e "SKIFF_BIN=$SKIFF_BIN")
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$vm" -t 600 "${env_args[@]}" -- "$bin" --test-threads=1 2>&1 | tee "$out"
# The VM's kernel has AppArmor: the test must have run, not skipped.
if grep -q "SKIPPED lsm::apparmor_profile_is_applied" "$out"; then
  echo "lsm-vm: the AppArmor test was skipped in the VM" >&2
  exit 1
fi
grep -q "^test result: ok" "$out"
