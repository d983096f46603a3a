#!/usr/bin/env bash
# containerd-smoke.sh — end-to-end check of an OCI runtime driven by containerd.
#
#   RUNTIME=/path/to/runtime scripts/containerd-smoke.sh
#
# The quick containerd check; e2e/run.sh (`just e2e`) is the whole end-to-end
# suite (containerd + ctr, the CRI plugin, dockerd, Podman), which `just test` runs.
#
# Builds a busybox OCI image locally (no registry access), starts a private
# containerd (own root, state and socket under a temp dir, CRI disabled) and
# drives the runtime through `ctr` + the io.containerd.runc.v2 shim with
# --runc-binary.  Every step prints PASS/FAIL; the exit status is non-zero if
# any step failed.  Everything started here is stopped by PID on exit and the
# script asserts that no shim, container process, mount or cgroup is left.
#
# Environment:
#   RUNTIME        runtime binary (default: target/debug/skiff of this checkout)
#   SMOKE_TTY      1 (default) also run a --tty container through script(1); 0 skips
#   SMOKE_EXEC     1 (default) also `ctr task exec` into the detached task; 0 skips
#   SMOKE_TIMEOUT  seconds allowed for each ctr call (default 60)
#   SMOKE_TRACE    1 runs the runtime through a logging wrapper and prints
#                  every invocation (argv, exit code, stderr) at the end
#   KEEP_TMP       1 keeps the temp dir (debugging; cleanup of processes and
#                  mounts still happens)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
RUNTIME=${RUNTIME:-$(cd "$here/.." && pwd)/target/debug/skiff}
SMOKE_TTY=${SMOKE_TTY:-1}
SMOKE_EXEC=${SMOKE_EXEC:-1}
T_CMD=${SMOKE_TIMEOUT:-60}

NS=skiff-smoke-$$-$RANDOM
IMAGE=docker.io/library/skiff-busybox:smoke
ID_RUN=smoke-run-$$
ID_DET=smoke-det-$$
ID_TTY=smoke-tty-$$
ALL_IDS="$ID_RUN $ID_DET $ID_TTY"

fails=0
passes=0
CTRD_PID=
TMP=

pass() { passes=$((passes + 1)); printf '[PASS] %s\n' "$*"; }
fail() { fails=$((fails + 1)); printf '[FAIL] %s\n' "$*"; }
info() { printf '       %s\n' "$*"; }
die()  { printf '[FAIL] %s\n' "$*"; fails=$((fails + 1)); exit 1; }
# indent a blob of captured output for the report
show() { [ -n "$1" ] && printf '%s\n' "$1" | sed 's/^/       | /'; }

ctr_() { timeout -k 5 "$T_CMD" ctr --address "$SOCK" --namespace "$NS" "$@"; }

# ---------------------------------------------------------------- helpers --

# PIDs of shims spawned by *our* containerd (their cmdline carries our socket)
our_shims() {
	local p cl
	for p in /proc/[0-9]*; do
		cl=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		case $cl in
			*containerd-shim*" -address $SOCK "*) echo "${p#/proc/}" ;;
		esac
	done
}

# PIDs of processes placed in a cgroup of our namespace (container processes)
our_container_procs() {
	local p
	for p in /proc/[0-9]*; do
		grep -q -- "/$NS/" "$p/cgroup" 2>/dev/null && echo "${p#/proc/}"
	done
}

our_mounts() { [ -n "$TMP" ] && awk -v t="$TMP" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo; }

our_cgroups() { find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d -path "*/$NS/*" 2>/dev/null; }

stop_containerd() {
	[ -n "$CTRD_PID" ] || return 0
	if kill -0 "$CTRD_PID" 2>/dev/null; then
		kill -TERM "$CTRD_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.2; done
		kill -0 "$CTRD_PID" 2>/dev/null && kill -KILL "$CTRD_PID" 2>/dev/null
	fi
	wait "$CTRD_PID" 2>/dev/null
	CTRD_PID=
}

cleanup() {
	local rc=$? p m c
	trap - EXIT INT TERM
	stop_containerd
	if [ -n "$TMP" ] && [ -n "${SOCK:-}" ]; then
		# forced cleanup: only reached with leftovers when something failed
		local shims socks= a
		shims=$(our_shims)
		if [ -n "$shims" ]; then
			# a SIGKILLed shim leaves its socket in /run/containerd/s
			for a in "$TMP"/state/io.containerd.runtime.v2.task/"$NS"/*/address; do
				[ -f "$a" ] && socks+=" $(sed 's|^unix://||' "$a")"
			done
		fi
		for p in $shims; do kill -KILL "$p" 2>/dev/null; done
		for p in $(our_container_procs); do kill -KILL "$p" 2>/dev/null; done
		sleep 0.2
		for a in $socks; do
			case $a in /run/containerd/s/*) [ -S "$a" ] && rm -f "$a" ;; esac
		done
		for m in $(our_mounts | sort -r); do umount -l "$m" 2>/dev/null; done
		for c in $(our_cgroups | sort -r); do rmdir "$c" 2>/dev/null; done
		find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -name "$NS" -exec rmdir {} + 2>/dev/null
		if [ -s "$TMP/runtime-calls.log" ]; then
			echo "---- runtime invocations (SMOKE_TRACE=1) ----"
			cat "$TMP/runtime-calls.log"
			echo "----"
		fi
		if [ "${KEEP_TMP:-0}" = 1 ]; then
			echo "temp dir kept: $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
	if [ "$fails" -gt 0 ] || [ "$rc" -ne 0 ]; then
		[ "${SMOKE_TRACE:-0}" = 1 ] || [ -z "${RUN_FLAGS:-}" ] || echo "hint: SMOKE_TRACE=1 logs every runtime invocation"
		echo "containerd-smoke: FAILED ($fails failed, $passes passed) runtime=$RUNTIME"
		[ "$rc" -ne 0 ] && exit "$rc"
		exit 1
	fi
	echo "containerd-smoke: OK ($passes passed) runtime=$RUNTIME"
	exit 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- preflight --

[ "$(id -u)" = 0 ] || die "must run as root"
[ -x "$RUNTIME" ] || die "runtime not found or not executable: $RUNTIME"
RUNTIME=$(readlink -f "$RUNTIME")
for b in containerd ctr containerd-shim-runc-v2 python3 timeout; do
	command -v "$b" >/dev/null || die "missing required tool: $b"
done
echo "runtime:    $RUNTIME"
echo "containerd: $(containerd --version)"

TMP=$(mktemp -d /tmp/skiff-ctrd-smoke.XXXXXX)
chmod 711 "$TMP"
SOCK=$TMP/containerd.sock
mkdir -p "$TMP"/root "$TMP"/state "$TMP"/fifo "$TMP"/runc-root

# ------------------------------------------------------------ the image --

if "$here"/mk-rootfs.sh "$TMP/rootfs" >"$TMP/mk-rootfs.log" 2>&1; then
	pass "rootfs built with mk-rootfs.sh"
else
	show "$(cat "$TMP/mk-rootfs.log")"
	die "mk-rootfs.sh failed"
fi

# An OCI image layout tarball (one gzip layer from the rootfs, an image
# config, a manifest), written by e2e/mk-image.py, which the e2e suite uses too.
if python3 "$here/../e2e/mk-image.py" "$TMP/rootfs" "$TMP/image.tar" "$IMAGE" >"$TMP/mk-image.log" 2>&1; then
	pass "OCI image layout written ($(cat "$TMP/mk-image.log"))"
else
	show "$(cat "$TMP/mk-image.log")"
	die "could not write the OCI image tarball"
fi

# ------------------------------------------------------- private containerd --

cat >"$TMP/config.toml" <<EOF
version = 2
root = "$TMP/root"
state = "$TMP/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""
EOF

containerd --config "$TMP/config.toml" --root "$TMP/root" --state "$TMP/state" \
	--address "$SOCK" >"$TMP/containerd.log" 2>&1 &
CTRD_PID=$!
up=0
for _ in $(seq 100); do
	kill -0 "$CTRD_PID" 2>/dev/null || break
	if [ -S "$SOCK" ] && timeout 5 ctr --address "$SOCK" version >/dev/null 2>&1; then up=1; break; fi
	sleep 0.1
done
if [ "$up" = 1 ]; then
	pass "private containerd up (pid $CTRD_PID, socket $SOCK, namespace $NS)"
else
	show "$(tail -n 30 "$TMP/containerd.log")"
	die "containerd did not come up"
fi

if out=$(ctr_ images import --all-platforms "$TMP/image.tar" 2>&1) &&
	ctr_ images ls -q 2>/dev/null | grep -qx "$IMAGE"; then
	pass "image imported: $IMAGE"
else
	show "$out"
	die "ctr images import failed"
fi

RT_BIN=$RUNTIME
if [ "${SMOKE_TRACE:-0}" = 1 ]; then
	RT_BIN=$TMP/runtime-trace
	cat >"$RT_BIN" <<EOF
#!/bin/sh
# logging wrapper around $RUNTIME (SMOKE_TRACE=1)
log=$TMP/runtime-calls.log
err=\$(mktemp $TMP/rt-err.XXXXXX)
echo "\$(date +%T.%N) [\$\$] $RUNTIME \$*" >>"\$log"
"$RUNTIME" "\$@" 2>"\$err"
rc=\$?
sed 's/^/    stderr: /' "\$err" >>"\$log"; cat "\$err" >&2; rm -f "\$err"
echo "\$(date +%T.%N) [\$\$] exit \$rc" >>"\$log"
exit \$rc
EOF
	chmod +x "$RT_BIN"
fi
RUN_FLAGS=(--runc-binary "$RT_BIN" --runc-root "$TMP/runc-root" --fifo-dir "$TMP/fifo")

# --------------------------------------------------- 1. run --rm, exit code --

out=$(ctr_ run --rm "${RUN_FLAGS[@]}" "$IMAGE" "$ID_RUN" sh -c 'echo hello-from-skiff; exit 3' 2>&1)
rc=$?
run_ok=0
[ "$rc" = 3 ] && run_ok=1
if printf '%s\n' "$out" | grep -qx 'hello-from-skiff'; then
	pass "run --rm: output 'hello-from-skiff' received"
else
	fail "run --rm: expected output 'hello-from-skiff' (exit $rc)"
	show "$out"
	case $out in *"hybrid mode not supported"*)
		info "hint: mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb" ;;
	esac
fi
if [ "$rc" = 3 ]; then
	pass "run --rm: exit code 3 propagated"
else
	fail "run --rm: exit code $rc, expected 3"
fi
if ctr_ containers ls -q 2>/dev/null | grep -qx "$ID_RUN"; then
	fail "run --rm: container $ID_RUN still listed after --rm"
else
	pass "run --rm: container removed"
fi

# ------------------------------------------ 2. detached task lifecycle --

out=$(ctr_ run -d "${RUN_FLAGS[@]}" "$IMAGE" "$ID_DET" sleep 1000 2>&1)
rc=$?
det_started=0
if [ "$rc" = 0 ]; then
	det_started=1
	pass "run -d: started $ID_DET"
else
	fail "run -d: exit $rc"
	show "$out"
fi

status_of() { ctr_ task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }
pid_of()    { ctr_ task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $2 }'; }

det_pid=
det_shim_sock=
if [ "$det_started" = 1 ]; then
	st=$(status_of "$ID_DET")
	if [ "$st" = RUNNING ]; then
		det_pid=$(pid_of "$ID_DET")
		pass "task ls: $ID_DET RUNNING (pid $det_pid)"
		if [ -n "$det_pid" ] && [ -r "/proc/$det_pid/cmdline" ] &&
			[ "$(tr '\0' ' ' <"/proc/$det_pid/cmdline")" = "sleep 1000 " ]; then
			pass "task pid $det_pid is the container's 'sleep 1000'"
		else
			fail "task pid '$det_pid' is not a live 'sleep 1000'"
		fi
		af=$(find "$TMP/state" -path "*/$NS/$ID_DET/address" 2>/dev/null | head -n1)
		[ -n "$af" ] && det_shim_sock=$(sed 's|^unix://||' "$af")
	else
		fail "task ls: $ID_DET status '${st:-<absent>}', expected RUNNING"
		show "$(ctr_ task ls 2>&1)"
	fi

	if [ "$SMOKE_EXEC" = 1 ] && [ "$st" = RUNNING ]; then
		out=$(ctr_ task exec --exec-id smoke-exec "$ID_DET" sh -c 'echo exec-ok; exit 5' 2>&1)
		rc=$?
		if [ "$rc" = 5 ] && printf '%s\n' "$out" | grep -qx exec-ok; then
			pass "task exec: output and exit code 5 propagated"
		else
			fail "task exec: exit $rc (expected 5), output:"
			show "$out"
		fi
	fi

	if [ "$st" = RUNNING ]; then
		# ps, pause and resume through the shim (the runtime's ps --format json,
		# pause, resume).
		out=$(ctr_ task ps "$ID_DET" 2>&1)
		if [ -n "$det_pid" ] && printf '%s\n' "$out" | awk 'NR > 1 { print $1 }' | grep -qx "$det_pid"; then
			pass "task ps: lists pid $det_pid"
		else
			fail "task ps: pid $det_pid not listed:"
			show "$out"
		fi
		out=$(ctr_ task pause "$ID_DET" 2>&1)
		st=$(status_of "$ID_DET")
		[ "$st" = PAUSED ] && pass "task pause: PAUSED" || { fail "task pause: status '$st'"; show "$out"; }
		out=$(ctr_ task resume "$ID_DET" 2>&1)
		st=$(status_of "$ID_DET")
		[ "$st" = RUNNING ] && pass "task resume: RUNNING" || { fail "task resume: status '$st'"; show "$out"; }
	fi

	out=$(ctr_ task kill -s SIGKILL "$ID_DET" 2>&1)
	rc=$?
	[ "$rc" = 0 ] && pass "task kill -s SIGKILL" || { fail "task kill: exit $rc"; show "$out"; }

	st=
	for _ in $(seq 50); do
		st=$(status_of "$ID_DET")
		[ "$st" = STOPPED ] && break
		sleep 0.1
	done
	[ "$st" = STOPPED ] && pass "task ls: $ID_DET STOPPED after kill" ||
		fail "task ls: $ID_DET status '${st:-<absent>}' after kill, expected STOPPED"
	if [ -n "$det_pid" ] && [ -d "/proc/$det_pid" ] && ! grep -q '^State:.*Z' "/proc/$det_pid/status" 2>/dev/null; then
		fail "container process $det_pid still alive after SIGKILL"
	fi

	out=$(ctr_ task delete "$ID_DET" 2>&1)
	rc=$?
	[ "$rc" = 0 ] && pass "task delete" || { fail "task delete: exit $rc"; show "$out"; }
else
	printf '[SKIP] task ls/exec/kill/delete of %s: run -d failed\n' "$ID_DET"
fi
if [ "$det_started" = 1 ] || ctr_ containers ls -q 2>/dev/null | grep -qx "$ID_DET"; then
	out=$(ctr_ container delete "$ID_DET" 2>&1)
	rc=$?
	[ "$rc" = 0 ] && pass "container delete" || { fail "container delete: exit $rc"; show "$out"; }
fi
if ctr_ task ls -q 2>/dev/null | grep -qx "$ID_DET" || ctr_ containers ls -q 2>/dev/null | grep -qx "$ID_DET"; then
	fail "$ID_DET still listed after delete"
else
	pass "$ID_DET no longer listed"
fi

# ------------------------------------------------------ 3. --tty (optional) --

if [ "$SMOKE_TTY" = 1 ]; then
	if [ "$run_ok" != 1 ]; then
		# a runtime that cannot run a plain container tends to hang ctr -t
		# until the timeout; the failure is already reported above
		printf '[SKIP] run --rm --tty: skipped because plain run --rm failed\n'
	elif command -v script >/dev/null; then
		# script(1) provides the pty ctr needs on its stdin; -e returns the child's status
		cmd="ctr --address $SOCK --namespace $NS run --rm -t ${RUN_FLAGS[*]} $IMAGE $ID_TTY sh -c '[ -t 0 ] && [ -t 1 ] && echo tty-ok; exit 4'"
		out=$(timeout -k 5 "$T_CMD" script -qec "$cmd" /dev/null </dev/null 2>&1)
		rc=$?
		out=$(printf '%s\n' "$out" | tr -cd '[:print:]\n')
		if [ "$rc" = 4 ] && printf '%s\n' "$out" | grep -q 'tty-ok$'; then
			pass "run --rm --tty: container saw a terminal, exit code 4 propagated"
		else
			fail "run --rm --tty: exit $rc (expected 4), output:"
			show "$out"
		fi
	else
		info "SKIP --tty: script(1) (util-linux) not installed"
	fi
fi

# --------------------------------------------------- 4. nothing left behind --

sleep 0.3   # shims exit asynchronously after delete
left=$(ctr_ containers ls -q 2>/dev/null)
[ -z "$left" ] && pass "no containers left in namespace $NS" || { fail "containers left: $left"; }

shims=
for _ in $(seq 30); do
	shims=$(our_shims)
	[ -z "$shims" ] && break
	sleep 0.2
done
[ -z "$shims" ] && pass "no containerd-shim processes left" || {
	fail "containerd-shim processes left: $shims"
	for p in $shims; do show "$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")"; done
}

procs=$(our_container_procs)
[ -z "$procs" ] && pass "no container processes left" || {
	fail "container processes left:"
	for p in $procs; do show "$p: $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")"; done
}

cgs=
for id in $ALL_IDS; do
	c=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d -name "$id" 2>/dev/null)
	[ -n "$c" ] && cgs+="$c"$'\n'
done
[ -z "$cgs" ] && pass "no cgroup directories left for the container ids" || {
	fail "cgroup directories left:"; show "${cgs%$'\n'}"; }

# the shim passes --root <runc-root>/<namespace>; per-container state lives below
st_left=$(find "$TMP/runc-root" -mindepth 2 2>/dev/null)
[ -z "$st_left" ] && pass "no runtime state left under --root $TMP/runc-root/$NS" || {
	fail "runtime state left:"; show "$(printf '%s\n' "$st_left" | head -n 20)"; }

if [ -n "$det_shim_sock" ]; then
	[ -e "$det_shim_sock" ] && fail "shim socket left: $det_shim_sock" || pass "shim socket removed"
fi

stop_containerd
mnts=$(our_mounts)
[ -z "$mnts" ] && pass "no mounts left under $TMP" || { fail "mounts left under $TMP:"; show "$mnts"; }

# ctr's own cgroup parent for the namespace (/sys/fs/cgroup/<ctl>/<ns>) is
# removed by cleanup(); the per-container dirs were checked above.
exit 0
