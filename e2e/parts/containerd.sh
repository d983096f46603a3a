#!/usr/bin/env bash
# containerd 1.6 + ctr, the runtime given with `ctr run --runc-binary` (the
# io.containerd.runc.v2 shim). A private containerd: own root, state, socket
# (CRI disabled here; e2e/parts/cri.sh drives the CRI plugin).
CLIENT=containerd
. "$(dirname "$0")/../lib.sh"

D=$PART_DIR
SOCK=$D/containerd.sock
NS=e2e-$E2E_TAG
IMAGE=docker.io/library/e2e-busybox:$E2E_TAG
W=$D/bin/$(basename "$RUNTIME")
ID_RUN=ctr-run-$E2E_TAG
ID_DET=ctr-det-$E2E_TAG
ID_TTY=ctr-tty-$E2E_TAG
ID_MEM=ctr-mem-$E2E_TAG
ID_CR=ctr-cr-$E2E_TAG
ID_CR2=ctr-cr2-$E2E_TAG
CTRD_PID=

ctr_() { t ctr --address "$SOCK" --namespace "$NS" "$@"; }
RUN_FLAGS=(--runc-binary "$W" --runc-root "$D/runc-root" --fifo-dir "$D/fifo")
status_of() { ctr_ task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }
pid_of() { ctr_ task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $2 }'; }
our_shims() { pids_matching "containerd-shim-runc-v2 -namespace $NS -address $SOCK "; }

cleanup() {
	stop_pid "$CTRD_PID"
	# only finds something after a failure: shims and containers left
	local p
	for p in $(our_shims) $(pids_in_cgroup "/$NS/"); do kill -KILL "$p" 2>/dev/null; done
	force_cleanup "$D/"
	find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -depth -type d -path "*/$NS*" -exec rmdir {} + 2>/dev/null
}
trap cleanup EXIT

s_daemon() {
	mkdir -p "$D"/root "$D"/state "$D"/fifo "$D"/runc-root
	containerd_config "$D" "$SOCK" io.containerd.grpc.v1.cri >"$D/config.toml"
	containerd --config "$D/config.toml" >"$D/containerd.log" 2>&1 &
	CTRD_PID=$!
	wait_for 20 ctr --address "$SOCK" version || { show "$(tail -n 20 "$D/containerd.log")"; fail "containerd did not come up"; return 1; }
	mk_wrapper "$W"
	local out
	out=$(ctr_ images import "$E2E_IMAGES/busybox-oci.tar" 2>&1) || { show "$out"; fail "ctr images import: $out"; return 1; }
	ctr_ images ls -q | grep -qxF "$IMAGE" || { fail "image $IMAGE not listed after import"; return 1; }
	note "containerd $(containerd --version | awk '{print $3}') pid $CTRD_PID, image imported"
}

s_run() {
	local out rc
	out=$(ctr_ run --rm "${RUN_FLAGS[@]}" "$IMAGE" "$ID_RUN" sh -c 'echo hello-e2e; exit 3' 2>&1)
	rc=$?
	show "$out"
	expect_line "output" "$out" hello-e2e || return 1
	expect_eq "exit code" "$rc" 3 || return 1
	! ctr_ containers ls -q | grep -qxF "$ID_RUN" || { fail "$ID_RUN still listed after --rm"; return 1; }
	note "output and exit code 3; removed"
}

s_tty() {
	local out rc
	out=$(run_tty ctr --address "$SOCK" --namespace "$NS" run --rm -t "${RUN_FLAGS[@]}" "$IMAGE" "$ID_TTY" \
		sh -c '[ -t 0 ] && [ -t 1 ] && echo tty-ok; exit 4')
	rc=$?
	show "$out"
	expect_end "output" "$out" tty-ok || return 1
	expect_eq "exit code" "$rc" 4
}

DET_PID=
s_detached() {
	local out st
	out=$(ctr_ run -d "${RUN_FLAGS[@]}" "$IMAGE" "$ID_DET" sleep 1000 2>&1) || { show "$out"; fail "run -d: $out"; return 1; }
	st=$(status_of "$ID_DET")
	expect_eq "task status" "$st" RUNNING || return 1
	DET_PID=$(pid_of "$ID_DET")
	expect_eq "task pid's cmdline" "$(tr '\0' ' ' <"/proc/$DET_PID/cmdline" 2>/dev/null)" "sleep 1000 " || return 1
	note "RUNNING, pid $DET_PID is 'sleep 1000'"
}

need_det() { [ -n "$DET_PID" ] || { fail "no detached task (run -d failed)"; return 1; }; }

s_exec() {
	need_det || return 1
	local out rc
	out=$(ctr_ task exec --exec-id "e1-$E2E_TAG" "$ID_DET" sh -c 'echo exec-ok; exit 5' 2>&1)
	rc=$?
	show "$out"
	expect_line "exec output" "$out" exec-ok || return 1
	expect_eq "exec exit code" "$rc" 5
}

s_exec_tty() {
	need_det || return 1
	local out rc
	out=$(run_tty ctr --address "$SOCK" --namespace "$NS" task exec -t --exec-id "e2-$E2E_TAG" "$ID_DET" \
		sh -c '[ -t 0 ] && [ -t 1 ] && echo exec-tty-ok; exit 6')
	rc=$?
	show "$out"
	expect_end "exec -t output" "$out" exec-tty-ok || return 1
	expect_eq "exec -t exit code" "$rc" 6
}

s_exec_user() {
	need_det || return 1
	local out rc
	out=$(ctr_ task exec --user 65534 --exec-id "e3-$E2E_TAG" "$ID_DET" sh -c 'echo "uid=$(id -u) gid=$(id -g)"' 2>&1)
	rc=$?
	show "$out"
	expect_eq "exec --user exit code" "$rc" 0 || return 1
	expect_line "exec --user output" "$out" "uid=65534 gid=65534"
}

s_ps() {
	need_det || return 1
	local out
	out=$(ctr_ task ps "$ID_DET" 2>&1)
	show "$out"
	printf '%s\n' "$out" | awk 'NR > 1 { print $1 }' | grep -qxF "$DET_PID" || { fail "task ps does not list $DET_PID"; return 1; }
	note "lists pid $DET_PID"
}

s_pause() {
	need_det || return 1
	local out st
	out=$(ctr_ task pause "$ID_DET" 2>&1) || { show "$out"; fail "pause: $out"; return 1; }
	expect_eq "status after pause" "$(status_of "$ID_DET")" PAUSED || return 1
	st=$(awk '/^State:/ { print $2 }' "/proc/$DET_PID/status")
	expect_eq "kernel state of $DET_PID while paused" "$st" D || return 1
	out=$(ctr_ task resume "$ID_DET" 2>&1) || { show "$out"; fail "resume: $out"; return 1; }
	expect_eq "status after resume" "$(status_of "$ID_DET")" RUNNING || return 1
	note "PAUSED (frozen), then RUNNING"
}

s_metrics() {
	need_det || return 1
	local out
	out=$(ctr_ task metrics --format json "$ID_DET" 2>&1) || { show "$out"; fail "metrics: $out"; return 1; }
	show "$(printf '%s' "$out" | head -c 1500)"
	python3 - "$out" <<'PY' || { fail "metrics: no memory usage / pids in the output"; return 1; }
import json, sys
m = json.loads(sys.argv[1])
d = m.get("Data") or m.get("data") or m
mem = (d.get("memory") or d.get("Memory") or {})
usage = (mem.get("usage") or {}).get("usage", 0)
pids = (d.get("pids") or {}).get("current", 0)
print("memory usage", usage, "pids", pids)
sys.exit(0 if usage > 0 and pids >= 1 else 1)
PY
	note "memory usage and pids reported"
}

s_kill() {
	need_det || return 1
	local out
	out=$(ctr_ task kill -s SIGKILL "$ID_DET" 2>&1) || { show "$out"; fail "kill: $out"; return 1; }
	wait_for 10 sh -c "ctr --address $SOCK --namespace $NS task ls | awk '\$1 == \"$ID_DET\" { print \$3 }' | grep -qx STOPPED" ||
		{ fail "status '$(status_of "$ID_DET")' after SIGKILL, want STOPPED"; return 1; }
	if [ -d "/proc/$DET_PID" ] && ! grep -q '^State:.*Z' "/proc/$DET_PID/status" 2>/dev/null; then
		fail "container process $DET_PID alive after SIGKILL"; return 1
	fi
	out=$(ctr_ task delete "$ID_DET" 2>&1)
	show "$out"
	note "STOPPED after SIGKILL"
}

s_delete() {
	need_det || return 1
	local out
	out=$(ctr_ task delete "$ID_DET" 2>&1)
	ctr_ task ls -q | grep -qxF "$ID_DET" && { show "$out"; fail "task still listed after task delete"; return 1; }
	out=$(ctr_ container delete "$ID_DET" 2>&1) || { show "$out"; fail "container delete: $out"; return 1; }
	ctr_ containers ls -q | grep -qxF "$ID_DET" && { fail "container still listed"; return 1; }
	note "task and container deleted"
}

s_memory() {
	local out rc
	# ctr's default spec has no cgroup mount (CRI and Docker add one): ask for it
	out=$(ctr_ run --rm --memory-limit 67108864 "${RUN_FLAGS[@]}" \
		--mount type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:noexec:nodev \
		"$IMAGE" "$ID_MEM" cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1)
	rc=$?
	show "$out"
	expect_eq "exit code" "$rc" 0 || return 1
	expect_line "memory.limit_in_bytes inside" "$out" 67108864 || return 1
	note "64 MiB limit seen inside"
}

# A counter in the container's /tmp, read with task exec.
cr_count() { ctr_ task exec --exec-id "cr$RANDOM" "$1" cat /tmp/n 2>/dev/null; }

# ctr task checkpoint (the shim's `checkpoint --leave-running --image-path
# --work-path`), then a checkpoint image (`containers checkpoint --task --rw`)
# restored into a new container (`containers restore --live --rw`: the shim's
# `restore --detach ... -no-subreaper`), which counts on from where it was.
# The rw layer goes with the image: the shell may hold its count file open
# at the moment of the dump, and CRIU restores an open file only if it exists
# in the new container's rootfs (without --rw it does not). The shell holds
# /tmp/held open throughout, so that this is tested every time, not by
# chance. CRIU works in the VM only (just e2e-checkpoint).
s_checkpoint() {
	criu check >/dev/null 2>&1 || { skip "criu check fails on this kernel (runs in the VM: just e2e-checkpoint)"; return 0; }
	local rc=0
	cr_scenario || rc=1
	cr_cleanup
	return $rc
}

# Whatever cr_scenario left, gone, so that a failure in it fails only itself
# (`task delete --force` kills a running task and waits for it).
cr_cleanup() {
	ctr_ task delete --force "$ID_CR" "$ID_CR2" >/dev/null 2>&1
	ctr_ containers delete "$ID_CR" "$ID_CR2" >/dev/null 2>&1
	ctr_ images rm "e2e-cr:$E2E_TAG" >/dev/null 2>&1
	return 0
}

cr_scenario() {
	local out a b
	out=$(ctr_ run -d "${RUN_FLAGS[@]}" "$IMAGE" "$ID_CR" sh -c "exec 3>/tmp/held; $COUNTER_SH" 2>&1) ||
		{ show "$out"; fail "run -d: $out"; return 1; }
	wait_for 30 sh -c "[ \"\$(ctr --address $SOCK --namespace $NS task exec --exec-id w\$\$ $ID_CR cat /tmp/n 2>/dev/null)\" -ge 20 ]" || { fail "the counter did not count"; return 1; }
	out=$(ctr_ task checkpoint --image-path "$D/cr-img" --work-path "$D/cr-work" "$ID_CR" 2>&1) || { show "$out"; fail "task checkpoint: $out"; return 1; }
	[ -f "$D/cr-img/inventory.img" ] || { fail "task checkpoint wrote no CRIU image in $D/cr-img"; return 1; }
	expect_eq "status after task checkpoint" "$(status_of "$ID_CR")" RUNNING || return 1
	# read before the checkpoint: the task runs on after it, and the image
	# holds a count at least this one
	a=$(cr_count "$ID_CR")
	out=$(ctr_ containers checkpoint --task --rw "$ID_CR" "e2e-cr:$E2E_TAG" 2>&1) || { show "$out"; fail "containers checkpoint --task --rw: $out"; return 1; }
	ctr_ task kill -s SIGKILL "$ID_CR" >/dev/null 2>&1
	wait_for 10 sh -c "ctr --address $SOCK --namespace $NS task ls | awk '\$1 == \"$ID_CR\" { print \$3 }' | grep -qx STOPPED"
	ctr_ task delete "$ID_CR" >/dev/null 2>&1
	out=$(ctr_ containers restore --live --rw "$ID_CR2" "e2e-cr:$E2E_TAG" 2>&1) || { show "$out"; fail "containers restore --live --rw: $out"; return 1; }
	wait_for 20 sh -c "ctr --address $SOCK --namespace $NS task ls | awk '\$1 == \"$ID_CR2\" { print \$3 }' | grep -qx RUNNING" ||
		{ fail "restored task status '$(status_of "$ID_CR2")', want RUNNING"; return 1; }
	b=$(cr_count "$ID_CR2")
	grep -q "restore .*$ID_CR2\$" "$W.calls" || { fail "the runtime under test did not restore $ID_CR2"; return 1; }
	[ -n "$a" ] && [ -n "$b" ] && [ "$b" -ge "$a" ] || { fail "the restored counter is at '$b', the checkpointed one was at '$a'"; return 1; }
	note "task checkpoint left it running; restored into $ID_CR2, counting on ($a -> $b)"
}

s_runtime() { runtime_ran "$W" "$ID_RUN" "$ID_TTY" "$ID_DET" "$ID_MEM"; }

s_nothing_left() {
	local left
	sleep 0.3
	left=$(ctr_ containers ls -q)
	[ -z "$left" ] || { fail "containers left: $left"; return 1; }
	wait_for 6 sh -c "[ -z \"\$(ps -eo args | grep -F -- '-namespace $NS -address $SOCK' | grep -v grep)\" ]" ||
		{ fail "shims left: $(our_shims)"; return 1; }
	left=$(pids_in_cgroup "/$NS/")
	[ -z "$left" ] || { fail "container processes left: $left"; return 1; }
	left=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d -path "*/$NS/*" 2>/dev/null)
	[ -z "$left" ] || { fail "cgroups left: $left"; return 1; }
	# per-container state; skiff's seccomp cache (<root>/:seccomp-cache) is not
	left=$(find "$D/runc-root" -mindepth 2 ! -path "*/:seccomp-cache*" 2>/dev/null)
	[ -z "$left" ] || { fail "runtime state left: $left"; return 1; }
	stop_pid "$CTRD_PID"
	CTRD_PID=
	left=$(awk -v t="$D/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo)
	[ -z "$left" ] || { fail "mounts left: $left"; return 1; }
	# the namespace's parent cgroups are ctr's, not the runtime's
	find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -name "$NS" -exec rmdir {} + 2>/dev/null
	note "no container, shim, process, cgroup, state or mount left; containerd stopped"
}

scenario daemon s_daemon
if [ -n "$CTRD_PID" ] && [ "${E2E_CHECKPOINT_ONLY:-0}" = 1 ]; then
	scenario "task checkpoint + restore (CRIU)" s_checkpoint
	scenario "nothing left" s_nothing_left
elif [ -n "$CTRD_PID" ]; then
	scenario "run (output, exit code)" s_run
	scenario "run --tty" s_tty
	scenario "run -d (detached task)" s_detached
	scenario "task exec" s_exec
	scenario "task exec --tty" s_exec_tty
	scenario "task exec --user" s_exec_user
	scenario "task ps" s_ps
	scenario "task pause/resume" s_pause
	scenario "task metrics" s_metrics
	scenario "task kill" s_kill
	scenario "task/container delete" s_delete
	scenario "memory limit inside" s_memory
	scenario "task checkpoint + restore (CRIU)" s_checkpoint
	scenario "runtime under test ran them" s_runtime
	scenario "nothing left" s_nothing_left
fi
