#!/usr/bin/env bash
# e2e/checkpoint-vm.sh — checkpoint and restore through the real callers
# (ctr's task checkpoint and containers restore --live with containerd 1.6's
# runc shim; Podman 4.3's container checkpoint / restore through conmon),
# with the runtime under test, in the throw-away VM of
# ../shared/tools/vm-run.sh: CRIU cannot work on this host's kernel. Runs
# e2e/run.sh's containerd and podman parts with only their checkpoint
# scenario (E2E_CHECKPOINT_ONLY=1), so the same snapshots and leftover
# checks apply. RUNTIME= as for e2e/run.sh; VM_TEST_TIMEOUT the VM's limit.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
RUNTIME=$(readlink -f "${RUNTIME:-$repo/target/debug/skiff}")
exec "$repo/../shared/tools/vm-run.sh" -C "$repo" -t "${VM_TEST_TIMEOUT:-600}" \
	-e "RUNTIME=$RUNTIME" -e E2E_CHECKPOINT_ONLY=1 -e "E2E_TIMEOUT=${E2E_TIMEOUT:-120}" \
	-- "$repo/e2e/run.sh" containerd podman
