#!/usr/bin/env bash
# Podman 4.3 + conmon, rootful, with `--runtime <runtime under test>`:
# private --root/--runroot/--tmpdir, a private containers.conf
# (CONTAINERS_CONF), cgroupfs, events to a file, overlay storage. Containers
# have no network (--network none) but for the published-port scenario,
# which uses slirp4netns (+ rootlessport): no bridge, veth or iptables rule
# on the host (netavark is not in Debian 12; CNI would add both).
CLIENT=podman
. "$(dirname "$0")/../lib.sh"

D=$PART_DIR
W=$D/bin/$(basename "$RUNTIME")
IMAGE=docker.io/library/e2e-busybox:$E2E_TAG
CG_PARENT=/e2e-podman-$E2E_TAG
DET=
export CONTAINERS_CONF=$D/containers.conf

pm() {
	t podman --root "$D/root" --runroot "$D/runroot" --tmpdir "$D/tmp" --storage-driver overlay \
		--cgroup-manager cgroupfs --events-backend file --network-config-dir "$D/net" \
		--runtime "$W" "$@"
}
# podman run in the pod's cgroup parent, no network unless asked
pm_run() { pm run --cgroup-parent "$CG_PARENT" "$@"; }
PM_TTY=(podman --root "$D/root" --runroot "$D/runroot" --tmpdir "$D/tmp" --storage-driver overlay
	--cgroup-manager cgroupfs --events-backend file --network-config-dir "$D/net" --runtime "$W")

# conmon, slirp4netns, rootlessport and podman's exit command mention our dirs
ours_running() { pids_matching "$D/"; }

cleanup() {
	if [ -d "$D/root" ]; then
		pm rm -af -t 0 >/dev/null 2>&1
	fi
	local p
	for p in $(ours_running) $(pids_in_cgroup "$CG_PARENT/"); do kill -KILL "$p" 2>/dev/null; done
	force_cleanup "$D/"
	find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -depth -type d -path "*$CG_PARENT*" -exec rmdir {} + 2>/dev/null
}
trap cleanup EXIT

s_setup() {
	mkdir -p "$D"/root "$D"/runroot "$D"/tmp "$D"/net
	# Podman's default RLIMIT_NOFILE/NPROC (1048576) are above what this VM
	# lets a process raise its hard limits to: setrlimit fails with EPERM in
	# any runtime. Use the limits the runtime process has.
	local nofile nproc
	nofile=$(ulimit -Hn)
	nproc=$(ulimit -Hu)
	[ "$nproc" = unlimited ] || [ "$nproc" -gt "$(cat /proc/sys/kernel/pid_max)" ] && nproc=$(cat /proc/sys/kernel/pid_max)
	cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$D/events.log"
[network]
network_config_dir = "$D/net"
EOF
	mk_wrapper "$W"
	local out
	out=$(pm load -i "$E2E_IMAGES/busybox-docker.tar" 2>&1) || { show "$out"; fail "podman load: $out"; return 1; }
	pm image exists "$IMAGE" || { fail "image $IMAGE not found after load"; return 1; }
	expect_eq "OCI runtime" "$(pm info --format '{{.Host.OCIRuntime.Path}}')" "$W" || return 1
	note "podman $(podman --version | awk '{print $3}'), runtime $W, image loaded"
}

s_run() {
	local out rc
	out=$(pm_run --rm --network none "$IMAGE" sh -c 'echo hello-e2e; exit 3' 2>&1)
	rc=$?
	show "$out"
	expect_line "output" "$out" hello-e2e || return 1
	expect_eq "exit code" "$rc" 3 || return 1
	note "output, exit code 3"
}

# Podman attaches to the terminal after the container has started: what a
# process writes at once can be lost (with runc as well), hence the sleeps.
s_tty() {
	local out rc
	out=$(run_tty "${PM_TTY[@]}" run --cgroup-parent "$CG_PARENT" --rm -it --network none "$IMAGE" \
		sh -c 'sleep 0.5; [ -t 0 ] && [ -t 1 ] && echo tty-ok; exit 4')
	rc=$?
	show "$out"
	expect_end "output" "$out" tty-ok || return 1
	expect_eq "exit code" "$rc" 4 || return 1
	note "a terminal inside, exit code 4"
}

DET_PID=
s_detached() {
	local out
	out=$(pm_run -d --network none --name "det-$E2E_TAG" "$IMAGE" sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done' 2>&1) ||
		{ show "$out"; fail "run -d: $out"; return 1; }
	DET=$(printf '%s' "$out" | tail -n1)
	expect_eq "status" "$(pm inspect -f '{{.State.Status}}' "$DET")" running || return 1
	DET_PID=$(pm inspect -f '{{.State.Pid}}' "$DET")
	grep -q "$CG_PARENT/" "/proc/$DET_PID/cgroup" 2>/dev/null || { fail "pid '$DET_PID' not below $CG_PARENT"; return 1; }
	note "running, pid $DET_PID"
}
need_det() { [ -n "$DET_PID" ] || { fail "no detached container (run -d failed)"; return 1; }; }

s_exec() {
	need_det || return 1
	local out rc
	out=$(pm exec "$DET" sh -c 'echo exec-ok; exit 5' 2>&1)
	rc=$?
	show "$out"
	expect_line "exec output" "$out" exec-ok || return 1
	expect_eq "exec exit code" "$rc" 5 || return 1
	out=$(run_tty "${PM_TTY[@]}" exec -it -u 65534 "$DET" sh -c 'sleep 0.5; [ -t 1 ] && echo "tty uid=$(id -u)"')
	rc=$?
	show "$out"
	expect_end "exec -it -u output" "$out" "tty uid=65534" || return 1
	expect_eq "exec -it exit code" "$rc" 0 || return 1
	note "output, exit code 5; -it -u 65534 gets a terminal as uid 65534"
}

s_update() {
	need_det || return 1
	local out
	out=$(pm update --memory 96m "$DET" 2>&1) || { show "$out"; fail "update: $(printf '%s' "$out" | tail -n1)"; return 1; }
	out=$(pm exec "$DET" cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1)
	expect_eq "memory.limit_in_bytes after update" "$out" 100663296 || return 1
	note "96 MiB after podman update"
}

s_stop() {
	need_det || return 1
	local out
	out=$(pm stop -t 10 "$DET" 2>&1) || { show "$out"; fail "stop: $out"; return 1; }
	expect_eq "status after stop" "$(pm inspect -f '{{.State.Status}}' "$DET")" exited || return 1
	expect_eq "exit code (SIGTERM trapped)" "$(pm inspect -f '{{.State.ExitCode}}' "$DET")" 0 || return 1
	out=$(pm rm "$DET" 2>&1) || { show "$out"; fail "rm: $out"; return 1; }
	pm container exists "$DET" && { fail "still exists after rm"; return 1; }
	note "stopped by SIGTERM (exit 0), removed"
}

s_resources() {
	local out rc
	out=$(pm_run --rm --network none --memory 64m --pids-limit 33 --cpus 0.5 "$IMAGE" \
		cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>&1)
	rc=$?
	show "$out"
	expect_eq "exit code" "$rc" 0 || return 1
	expect_eq "memory, pids, cfs quota inside" "$(printf '%s' "$out" | tr '\n' ' ')" "67108864 33 50000" || return 1
	note "--memory 64m, --pids-limit 33, --cpus 0.5 seen in the cgroup"
}

s_cap_drop() {
	local out rc eff
	out=$(pm_run --rm --network none --cap-drop CHOWN "$IMAGE" sh -c 'grep CapEff /proc/self/status; touch /tmp/f; chown 1 /tmp/f && echo chown-ok || echo chown-denied' 2>&1)
	rc=$?
	show "$out"
	expect_eq "exit code" "$rc" 0 || return 1
	eff=$(printf '%s\n' "$out" | awk '/^CapEff:/ { print $2 }')
	[ -n "$eff" ] && [ $((0x$eff & 1)) = 0 ] && [ $((0x$eff & 2)) = 2 ] ||
		{ fail "CapEff '$eff': want CAP_CHOWN (bit 0) cleared, CAP_DAC_OVERRIDE (bit 1) kept"; return 1; }
	expect_line "chown" "$out" chown-denied || return 1
	note "CapEff $eff: CAP_CHOWN dropped, chown refused"
}

s_read_only() {
	local out rc
	out=$(pm_run --rm --network none --read-only "$IMAGE" sh -c 'touch /x 2>&1; touch /tmp/y && echo tmp-ok' 2>&1)
	rc=$?
	show "$out"
	expect_eq "exit code" "$rc" 0 || return 1
	printf '%s' "$out" | grep -q "Read-only file system" || { fail "writing / did not fail with EROFS"; return 1; }
	expect_line "tmpfs /tmp" "$out" tmp-ok || return 1
	note "/ read-only (EROFS), /tmp writable"
}

s_user() {
	local out rc
	out=$(pm_run --rm --network none --user 65534:65534 "$IMAGE" sh -c 'echo "uid=$(id -u) gid=$(id -g)"' 2>&1)
	rc=$?
	show "$out"
	expect_eq "exit code" "$rc" 0 || return 1
	expect_line "ids" "$out" "uid=65534 gid=65534" || return 1
	note "uid and gid 65534"
}

s_port() {
	local port out body id
	port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	echo "e2e-port-$E2E_TAG" >"$D/index.html"
	out=$(pm_run -d --network slirp4netns -p "127.0.0.1:$port:8080" -v "$D/index.html:/www/index.html:ro" \
		"$IMAGE" httpd -f -p 8080 -h /www 2>&1) || { show "$out"; fail "run -d -p: $out"; return 1; }
	id=$(printf '%s' "$out" | tail -n1)
	body=
	for _ in $(seq 50); do
		body=$(/usr/bin/python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode().strip())' \
			"http://127.0.0.1:$port/" 2>/dev/null) && break
		sleep 0.1
	done
	out=$(pm rm -f -t 0 "$id" 2>&1)
	expect_eq "HTTP body from 127.0.0.1:$port" "$body" "e2e-port-$E2E_TAG" || return 1
	note "127.0.0.1:$port -> httpd in the container (slirp4netns)"
}

s_runtime() {
	# the ids of every container this part created (podman keeps the exited ones' events)
	local ids
	ids=$(grep -o '"ID":"[0-9a-f]\{64\}","Image[^}]*"Status":"create"' "$D/events.log" 2>/dev/null | cut -d'"' -f4 | sort -u)
	[ -n "$ids" ] || ids=$(grep -o '"ID":"[0-9a-f]\{64\}"' "$D/events.log" | cut -d'"' -f4 | sort -u)
	runtime_ran "$W" $ids
}

s_nothing_left() {
	local left
	left=$(pm ps -aq)
	[ -z "$left" ] || { fail "containers left: $left"; return 1; }
	# conmon runs `podman container cleanup` when a container exits
	wait_for 10 sh -c "[ -z \"\$(ps -eo args | grep -F -- '$D/' | grep -v grep)\" ]" ||
		{ fail "processes left: $(for p in $(ours_running); do tr '\0' ' ' <"/proc/$p/cmdline" | cut -c1-100; echo; done)"; return 1; }
	left=$(pids_in_cgroup "$CG_PARENT/")
	[ -z "$left" ] || { fail "container processes left: $left"; return 1; }
	# podman (cgroupfs) puts conmon in <parent>/conmon and leaves it: the caller's, not the runtime's
	left=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d -path "*$CG_PARENT/*" ! -path "*$CG_PARENT/conmon" 2>/dev/null)
	[ -z "$left" ] || { fail "cgroups left: $left"; return 1; }
	# the overlay driver's own private mount of its home stays until the storage is shut down
	pm system reset -f >/dev/null 2>&1
	left=$(awk -v t="$D/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo)
	[ -z "$left" ] || { fail "mounts left: $left"; return 1; }
	find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -depth -type d -path "*$CG_PARENT*" -exec rmdir {} + 2>/dev/null
	note "no container, conmon, slirp4netns, cgroup or mount left"
}

scenario "setup (load, containers.conf)" s_setup
if [ -f "$W.calls" ]; then
	scenario "run --rm (output, exit code)" s_run
	scenario "run -it" s_tty
	scenario "run -d" s_detached
	scenario "exec (+ -it -u)" s_exec
	scenario "update --memory (out of scope)" s_update
	scenario "stop + rm" s_stop
	scenario "--memory --pids-limit --cpus" s_resources
	scenario "--cap-drop" s_cap_drop
	scenario "--read-only" s_read_only
	scenario "--user" s_user
	scenario "-p 127.0.0.1:PORT (slirp4netns)" s_port
	scenario "runtime under test ran them" s_runtime
	scenario "nothing left" s_nothing_left
fi
