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
export CONTAINERS_CONF=$D/containers.conf

pm() {
	t podman --root "$D/root" --runroot "$D/runroot" --tmpdir "$D/tmp" --storage-driver overlay \
		--cgroup-manager cgroupfs --events-backend file --network-config-dir "$D/net" \
		--runtime "$W" "$@"
}
# podman run in the part's cgroup parent, without a network
pm_run() { pm run --cgroup-parent "$CG_PARENT" --network none "$@"; }
CLI_NAME=podman
UPDATE_ARGS="--memory 96m"
cli() { pm "$@"; }
cli_run() { pm_run "$@"; }
cli_tty() {
	run_tty podman --root "$D/root" --runroot "$D/runroot" --tmpdir "$D/tmp" --storage-driver overlay \
		--cgroup-manager cgroupfs --events-backend file --network-config-dir "$D/net" --runtime "$W" "$@"
}
cli_tty_run() { cli_tty run --cgroup-parent "$CG_PARENT" --network none "$@"; }
. "$(dirname "$0")/cli-common.sh"

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

s_port() {
	local port out body id
	port=$(free_port)
	echo "e2e-port-$E2E_TAG" >"$D/index.html"
	out=$(pm run --cgroup-parent "$CG_PARENT" -d --network slirp4netns -p "127.0.0.1:$port:8080" -v "$D/index.html:/www/index.html:ro" \
		"$IMAGE" httpd -f -p 8080 -h /www 2>&1) || { show "$out"; fail "run -d -p: $out"; return 1; }
	id=$(printf '%s' "$out" | tail -n1)
	body=$(http_get_retry "http://127.0.0.1:$port/")
	out=$(pm rm -f -t 0 "$id" 2>&1)
	expect_eq "HTTP body from 127.0.0.1:$port" "$body" "e2e-port-$E2E_TAG" || return 1
	note "127.0.0.1:$port -> httpd in the container (slirp4netns)"
}

# podman container checkpoint / restore: Podman asks `checkpoint --help`,
# then conmon has the runtime checkpoint and restore (on conmon's pipes);
# the restored container counts on from where it was. CRIU works in the VM
# only (just e2e-checkpoint).
s_checkpoint() {
	criu check >/dev/null 2>&1 || { skip "criu check fails on this kernel (runs in the VM: just e2e-checkpoint)"; return 0; }
	local out id a b
	out=$(pm_run -d "$IMAGE" sh -c "$COUNTER_SH" 2>&1) || { show "$out"; fail "run -d: $out"; return 1; }
	id=$(printf '%s' "$out" | tail -n1)
	wait_for 30 sh -c "[ \"\$(podman --root $D/root --runroot $D/runroot --storage-driver overlay exec $id cat /tmp/n 2>/dev/null)\" -ge 20 ]"
	a=$(pm exec "$id" cat /tmp/n 2>/dev/null)
	out=$(pm container checkpoint "$id" 2>&1) || { show "$out"; fail "container checkpoint: $out"; return 1; }
	expect_eq "status after checkpoint" "$(pm inspect -f '{{.State.Status}}' "$id")" exited || return 1
	grep -q "checkpoint .*$id\$" "$W.calls" || { fail "the runtime under test did not checkpoint $id"; return 1; }
	out=$(pm container restore "$id" 2>&1) || { show "$out"; fail "container restore: $out"; return 1; }
	expect_eq "status after restore" "$(pm inspect -f '{{.State.Status}}' "$id")" running || return 1
	grep -q "restore .*$id\$" "$W.calls" || { fail "the runtime under test did not restore $id"; return 1; }
	b=$(pm exec "$id" cat /tmp/n 2>/dev/null)
	out=$(pm rm -f -t 0 "$id" 2>&1)
	[ -n "$a" ] && [ -n "$b" ] && [ "$b" -ge "$a" ] || { fail "the restored counter is at '$b', the checkpointed one was at '$a'"; return 1; }
	note "checkpointed (exited), restored (running), counting on ($a -> $b)"
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
if [ -f "$W.calls" ] && [ "${E2E_CHECKPOINT_ONLY:-0}" = 1 ]; then
	scenario "container checkpoint + restore (CRIU)" s_checkpoint
	scenario "nothing left" s_nothing_left
elif [ -f "$W.calls" ]; then
	scenario "run --rm (output, exit code)" s_run
	scenario "run -it" s_tty
	scenario "run -d" s_detached
	scenario "exec (+ -it -u)" s_exec
	scenario "update --memory" s_update
	scenario "stop + rm" s_stop
	scenario "--memory --pids-limit --cpus" s_resources
	scenario "--cap-drop" s_cap_drop
	scenario "--read-only" s_read_only
	scenario "--user" s_user
	scenario "-p 127.0.0.1:PORT (slirp4netns)" s_port
	scenario "container checkpoint + restore (CRIU)" s_checkpoint
	scenario "runtime under test ran them" s_runtime
	scenario "nothing left" s_nothing_left
fi
