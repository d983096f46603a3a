#!/usr/bin/env bash
# vm-test.sh [--systemd] [--strict] TEST [ARGS...] — run one integration-test
# file (crates/integration-tests/tests/TEST.rs) in the throw-away cgroup-v2 VM
# of ../shared/tools/vm-run.sh (with --systemd: systemd as PID 1), and fail if
# a test failed — with --strict also if one said SKIPPED (tests that exist
# for the VM must really run there).
# SKIFF_BIN picks the runtime; VM_TEST_TIMEOUT the VM's limit (default 600 s).
set -euo pipefail
ws=$(cd "$(dirname "$0")/.." && pwd)
vm_args=()
strict=0
while :; do
  case ${1:-} in
    --systemd) vm_args+=(--systemd); shift ;;
    --strict) strict=1; shift ;;
    *) break ;;
  esac
done
test=${1:?usage: vm-test.sh [--systemd] TEST [ARGS...]}; shift
cd "$ws"
bin=$(cargo test -q -p skiff-integration-tests --test "$test" --no-run --message-format=json 2>/dev/null | python3 -c '
import sys, json
name = sys.argv[1]
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == name:
        print(m["executable"])' "$test")
[ -n "$bin" ] || { echo "vm-test: no test binary for $test" >&2; exit 1; }
[ -n "${SKIFF_BIN:-}" ] && vm_args+=(-e "SKIFF_BIN=$SKIFF_BIN")
out=$(mktemp)
# The test binary's output also goes to a file in the (shared) workspace as
# it runs, so that a VM killed at its time limit still shows which test
# was running.
live="$ws/target/vm-test-$test.log"
trap 'rm -f "$out"' EXIT
run_in_vm() {
  : > "$live"
  set +e
  "$ws/../shared/tools/vm-run.sh" "${vm_args[@]}" -C "$ws" -t "${VM_TEST_TIMEOUT:-600}" -- \
    /bin/sh -c '"$@" > "$0" 2>&1; rc=$?; cat "$0"; exit "$rc"' "$live" "$bin" --test-threads=1 "$@" 2>&1 | tee "$out"
  local rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}
rc=0
run_in_vm "$@" || rc=$?
if [ "$rc" = 124 ]; then
  # The emulated VM (TCG, ~20x slower) has been seen to stall a whole run
  # once in many; a second stall, or any other failure, fails the test.
  echo "vm-test: the VM hit its time limit; the test binary had printed:" >&2
  tail -n 20 "$live" >&2 || true
  echo "vm-test: running $test once more" >&2
  rc=0
  run_in_vm "$@" || rc=$?
fi
[ "$rc" = 0 ] || exit "$rc"
if [ "$strict" = 1 ] && grep -q "SKIPPED" "$out"; then
  echo "vm-test: $test skipped tests in the VM" >&2
  exit 1
fi
grep -q "^test result: ok" "$out"
