#!/usr/bin/env bash
# dockerd 20.10 (Debian's docker.io) with `--add-runtime <name>=<runtime>`
# as its default runtime. A private dockerd: own data root, exec root (where
# it runs its own containerd), socket and pid file; no bridge, no iptables
# (containers get no network, nothing is added to the host's). The client is
# Debian's /usr/bin/docker, of the daemon's version: /usr/local/bin/docker
# on this machine is another, newer client, first in $PATH.
CLIENT=docker
. "$(dirname "$0")/../lib.sh"

D=$PART_DIR
SOCK=$D/docker.sock
RT_NAME=e2e-$(basename "$RUNTIME")
W=$D/bin/$(basename "$RUNTIME")
IMAGE=e2e-busybox:$E2E_TAG
CG_PARENT=/e2e-docker-$E2E_TAG
DOCKERD_PID=
# dockerd writes its trust key there if it is missing: removed at the end then
KEY_JSON_EXISTED=$([ -e /etc/docker/key.json ] && echo 1)

dk() { t /usr/bin/docker -H "unix://$SOCK" "$@"; }
# docker run with a --cidfile (cid.*), so that every container's id is known
dk_run() { dk run --cidfile "$(mktemp -u "$D/cid.XXXXXX")" "$@"; }
CLI_NAME=docker
UPDATE_ARGS="--memory 96m --memory-swap 96m"
cli() { dk "$@"; }
cli_run() { dk_run "$@"; }
cli_tty() { run_tty /usr/bin/docker -H "unix://$SOCK" "$@"; }
cli_tty_run() { cli_tty run --cidfile "$(mktemp -u "$D/cid.XXXXXX")" "$@"; }
. "$(dirname "$0")/cli-common.sh"

cleanup() {
	if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
		dk rm -f $(dk ps -aq 2>/dev/null) >/dev/null 2>&1
	fi
	stop_pid "$DOCKERD_PID" 30
	local p
	for p in $(pids_matching "$D/exec/containerd/") $(pids_in_cgroup "$CG_PARENT/"); do kill -KILL "$p" 2>/dev/null; done
	force_cleanup "$D/"
	find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -depth -type d -path "*$CG_PARENT*" -exec rmdir {} + 2>/dev/null
	[ -n "$KEY_JSON_EXISTED" ] || rm -f /etc/docker/key.json
}
trap cleanup EXIT

s_daemon() {
	mkdir -p "$D"/data "$D"/exec
	mk_wrapper "$W"
	dockerd --data-root "$D/data" --exec-root "$D/exec" -H "unix://$SOCK" --pidfile "$D/docker.pid" \
		--add-runtime "$RT_NAME=$W" --default-runtime "$RT_NAME" --cgroup-parent "$CG_PARENT" \
		--bridge=none --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
		--userland-proxy=false --storage-driver overlay2 --exec-opt native.cgroupdriver=cgroupfs \
		>"$D/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	wait_for 30 /usr/bin/docker -H "unix://$SOCK" version ||
		{ show "$(tail -n 20 "$D/dockerd.log")"; fail "dockerd did not come up"; DOCKERD_PID=; return 1; }
	local out
	out=$(dk load -i "$E2E_IMAGES/busybox-docker.tar" 2>&1) || { show "$out"; fail "docker load: $out"; return 1; }
	expect_eq "default runtime" "$(dk info --format '{{.DefaultRuntime}}')" "$RT_NAME" || return 1
	note "dockerd $(dk version --format '{{.Server.Version}}') pid $DOCKERD_PID, runtime $RT_NAME=$W, image loaded"
}

# exit_code WANT REGEX CMD...: `docker run` fails with WANT, and its error
# (the runtime's, which decides the code) matches REGEX
exit_code() {
	local want=$1 re=$2 out rc
	shift 2
	out=$(dk_run --rm "$@" 2>&1)
	rc=$?
	show "$out"
	expect_eq "docker run exit code" "$rc" "$want" || return 1
	printf '%s' "$out" | grep -qiE -- "$re" || { fail "exit $rc, but the error does not match /$re/"; return 1; }
	note "$want: $(printf '%s' "$out" | grep -iE -- "$re" | tail -n1 | cut -c1-200)"
}
s_127_path() { exit_code 127 'no-such-command.*executable file not found in \$PATH' "$IMAGE" no-such-command; }
s_127_abs() { exit_code 127 '/no/such/file.*no such file or directory' "$IMAGE" /no/such/file; }
s_126() { exit_code 126 '/etc/passwd.*permission denied' "$IMAGE" /etc/passwd; }
# an RLIMIT_NOFILE above fs.nr_open: setrlimit fails in the runtime (EPERM)
s_125() { exit_code 125 'rlimit.*operation not permitted' --ulimit "nofile=$(($(cat /proc/sys/fs/nr_open) + 1))" "$IMAGE" true; }

s_top() {
	need_det || return 1
	local out
	out=$(dk top "$DET" 2>&1) || { show "$out"; fail "top: $out"; return 1; }
	show "$out"
	printf '%s\n' "$out" | awk 'NR > 1 { print $2 }' | grep -qxF "$DET_PID" || { fail "docker top does not list $DET_PID"; return 1; }
	note "lists pid $DET_PID"
}

s_pause() {
	need_det || return 1
	local out
	out=$(dk pause "$DET" 2>&1) || { show "$out"; fail "pause: $out"; return 1; }
	expect_eq "status after pause" "$(dk inspect -f '{{.State.Status}}' "$DET")" paused || return 1
	expect_eq "kernel state of $DET_PID" "$(awk '/^State:/ { print $2 }' "/proc/$DET_PID/status")" D || return 1
	out=$(dk unpause "$DET" 2>&1) || { show "$out"; fail "unpause: $out"; return 1; }
	expect_eq "status after unpause" "$(dk inspect -f '{{.State.Status}}' "$DET")" running || return 1
	note "paused (frozen), then running"
}

s_runtime() { runtime_ran "$W" $(for f in "$D"/cid.*; do [ -s "$f" ] && echo "$(cat "$f")"; done); }

s_nothing_left() {
	local left
	left=$(dk ps -aq)
	[ -z "$left" ] || { fail "containers left: $left"; return 1; }
	left=$(pids_in_cgroup "$CG_PARENT/")
	[ -z "$left" ] || { fail "container processes left: $left"; return 1; }
	left=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d -path "*$CG_PARENT/*" 2>/dev/null)
	[ -z "$left" ] || { fail "cgroups left: $left"; return 1; }
	# per-container state; skiff's seccomp cache (<root>/:seccomp-cache) is not
	left=$(find "$D/exec/runtime-runc/moby" -mindepth 1 ! -path "*/:seccomp-cache*" 2>/dev/null)
	[ -z "$left" ] || { fail "runtime state left: $left"; return 1; }
	stop_pid "$DOCKERD_PID" 30
	DOCKERD_PID=
	wait_for 5 sh -c "[ -z \"\$(ps -eo args | grep -F -- '$D/exec/containerd/' | grep -v grep)\" ]" ||
		{ fail "containerd or shims left: $(pids_matching "$D/exec/containerd/")"; return 1; }
	left=$(awk -v t="$D/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo)
	[ -z "$left" ] || { fail "mounts left: $left"; return 1; }
	find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -depth -type d -path "*$CG_PARENT" -exec rmdir {} + 2>/dev/null
	note "no container, process, cgroup, runtime state or mount left; dockerd and its containerd stopped"
}

scenario daemon s_daemon
if [ -n "$DOCKERD_PID" ]; then
	scenario "run (output, exit code)" s_run
	scenario "run: exit 127 (not in PATH)" s_127_path
	scenario "run: exit 127 (no such file)" s_127_abs
	scenario "run: exit 126 (not executable)" s_126
	scenario "run: exit 125 (runtime error)" s_125
	scenario "run -it" s_tty
	scenario "run -d" s_detached
	scenario "exec (+ -it -u)" s_exec
	scenario "top" s_top
	scenario "pause/unpause" s_pause
	scenario "update --memory" s_update
	scenario "stop + rm" s_stop
	scenario "--memory --pids-limit --cpus" s_resources
	scenario "runtime under test ran them" s_runtime
	scenario "nothing left" s_nothing_left
fi
