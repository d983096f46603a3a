#!/usr/bin/env bash
# Podman 4.3 + conmon, rootless: run by an unprivileged user made for the
# suite ($E2E_RL_USER, default skiff-e2e, with /etc/subuid and /etc/subgid
# ranges), with `--runtime <runtime under test>`. Podman puts itself, conmon
# and the runtime in a user namespace of the user's (newuidmap/newgidmap, a
# catatonit pause process keeps it); the runtime runs there as its root and
# is asked for no user namespace of its own but with --userns=keep-id.
#
# Everything is the user's and private, below the part's dir: HOME,
# XDG_RUNTIME_DIR (the runtime's state: $XDG_RUNTIME_DIR/<runtime>), a
# containers.conf and a storage.conf (vfs: no mount on the host, nothing
# needed from the network; /dev/fuse is root's here, so no fuse-overlayfs),
# --root/--runroot/--tmpdir, cgroupfs (no systemd; cgroup v1 is not
# delegated: no cgroup, no limits), events to a file. Containers have no
# network but for the published-port row (slirp4netns + rootlessport).
# The image is `podman load`ed by the user. A lock keeps two runs from
# sharing the user, so "every process of the user" is this part's.
CLIENT=podman-rootless
. "$(dirname "$0")/../lib.sh"

D=$PART_DIR
U=$D/u
W=$U/bin/$(basename "$RUNTIME")
IMAGE=docker.io/library/e2e-busybox:$E2E_TAG
RL_USER=${E2E_RL_USER:-skiff-e2e}
LOCK=/run/lock/skiff-e2e-podman-rootless.lock
RL_UID= RL_GID=

# AS_USER: a command as the user, with nothing of root's environment but
# PATH and TERM (set once the user is known); PM: its podman
AS_USER=() PM=()
set_user_cmds() {
	AS_USER=(setpriv --reuid="$RL_UID" --regid="$RL_GID" --clear-groups -- env -i
		HOME="$U/home" XDG_RUNTIME_DIR="$U/xdg" XDG_CONFIG_HOME="$U/home/.config"
		XDG_DATA_HOME="$U/home/.local/share" XDG_CACHE_HOME="$U/home/.cache"
		PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM="${TERM:-xterm}" LANG=C.UTF-8
		CONTAINERS_CONF="$U/containers.conf" CONTAINERS_STORAGE_CONF="$U/storage.conf")
	PM=(podman --root "$U/root" --runroot "$U/runroot" --tmpdir "$U/tmp" --storage-driver vfs
		--cgroup-manager cgroupfs --events-backend file --runtime "$W")
}
as_user() { t "${AS_USER[@]}" "$@"; }
pm() { t "${AS_USER[@]}" "${PM[@]}" "$@"; }
CLI_NAME=podman
cli() { pm "$@"; }
cli_run() { pm run --network none "$@"; }
cli_tty() { run_tty "${AS_USER[@]}" "${PM[@]}" "$@"; }
cli_tty_run() { cli_tty run --network none "$@"; }
. "$(dirname "$0")/cli-common.sh"

# the user's ids on the host: its uid and its subordinate ranges (START COUNT lines)
sub_ranges() { awk -F: -v u="$RL_USER" -v n="$RL_UID" '$1 == u || $1 == n { print $2, $3 }' /etc/subuid; }

# every process of the user: its uid or a subordinate one, real or effective
rl_pids() {
	[ -n "$RL_UID" ] || return 0
	local ranges p
	ranges=$(sub_ranges | tr '\n' ' ')
	for p in /proc/[0-9]*; do
		awk -v me="$RL_UID" -v r="$ranges" -v p="${p#/proc/}" '
			/^Uid:/ {
				n = split(r, a, " ")
				for (i = 2; i <= 3; i++) {
					if ($i == me) { print p; exit }
					for (j = 1; j < n; j += 2) if ($i >= a[j] && $i < a[j] + a[j + 1]) { print p; exit }
				}
				exit
			}' "$p/status" 2>/dev/null
	done
}
describe_pids() { local p; for p in "$@"; do printf '%s: %s\n' "$p" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-120)"; done; }

cleanup() {
	if [ -n "$RL_UID" ] && [ -d "$U/root" ]; then
		pm rm -af -t 0 >/dev/null 2>&1
		pm system reset -f >/dev/null 2>&1
	fi
	local p
	for p in $(rl_pids); do kill -KILL "$p" 2>/dev/null; done
	force_cleanup "$D/"
	rm -rf "$U"
}

# the user, made once (as crates/integration-tests/tests/rootless.rs makes
# its own): no home, no login, 65536 subordinate uids and gids
ensure_user() {
	if ! id -u "$RL_USER" >/dev/null 2>&1; then
		useradd -M -d /nonexistent -s /usr/sbin/nologin -c "skiff e2e, rootless Podman" "$RL_USER" ||
			{ fail "useradd $RL_USER failed"; return 1; }
	fi
	RL_UID=$(id -u "$RL_USER") RL_GID=$(id -g "$RL_USER")
	set_user_cmds
	local f end
	for f in subuid subgid; do
		grep -q "^$RL_USER:" "/etc/$f" && continue
		end=$(awk -F: 'BEGIN { m = 100000 } $2 + $3 > m { m = $2 + $3 } END { print m }' /etc/subuid /etc/subgid)
		usermod "--add-${f}s" "$end-$((end + 65535))" "$RL_USER" || { fail "usermod --add-${f}s failed"; return 1; }
	done
	[ -n "$(sub_ranges)" ] || { fail "no /etc/subuid range for $RL_USER"; return 1; }
}

s_setup() {
	exec 9>"$LOCK"
	flock -n 9 || { fail "another run holds $LOCK (it uses the user $RL_USER)"; return 1; }
	ensure_user || return 1
	# The suite's user runs nothing else: what runs is a killed run's.
	local left
	left=$(rl_pids)
	if [ -n "$left" ]; then
		echo "processes of $RL_USER from an earlier run, killed:"; describe_pids $left
		for p in $left; do kill -KILL "$p" 2>/dev/null; done
	fi
	# The host's /dev/null must be the world-writable null device: conmon
	# and Podman open it as the user (and so do the runtimes, runc's
	# "error reopening /dev/null inside container" when it is not).
	local null
	null=$(stat -c '%F %t:%T %a' /dev/null)
	[ "$null" = "character special file 1:3 666" ] ||
		{ fail "the host's /dev/null is '$null', not 'character special file 1:3 666': nothing rootless can run (see docs/compatibility.md)"; return 1; }
	install -d -o "$RL_UID" -g "$RL_GID" -m 700 "$U" "$U/xdg" "$U/home" "$U/bin"
	cat >"$U/containers.conf" <<EOF
[containers]
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$U/events.log"
[network]
network_config_dir = "$U/net"
EOF
	cat >"$U/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$U/root"
runroot = "$U/runroot"
EOF
	mk_wrapper "$W"
	chown -R "$RL_UID:$RL_GID" "$U"
	as_user test -x "$RUNTIME" || { fail "$RL_USER cannot execute $RUNTIME (a directory above it not searchable?)"; return 1; }
	as_user test -r "$E2E_IMAGES/busybox-docker.tar" || { fail "$RL_USER cannot read $E2E_IMAGES/busybox-docker.tar"; return 1; }
	local out
	out=$(pm load -i "$E2E_IMAGES/busybox-docker.tar" 2>&1) || { show "$out"; fail "podman load: $out"; return 1; }
	pm image exists "$IMAGE" || { fail "image $IMAGE not found after load"; return 1; }
	out=$(pm info --format '{{.Host.Security.Rootless}} {{.Store.GraphDriverName}} {{.Host.OCIRuntime.Path}}' 2>&1)
	expect_eq "rootless, driver, OCI runtime" "$out" "true vfs $W" || return 1
	note "podman $(podman --version | awk '{print $3}') as $RL_USER (uid $RL_UID, subuids $(sub_ranges | head -n1 | tr ' ' '+')), vfs, image loaded"
}

# The container's root is the user on the host, in a user namespace.
s_rl_detached() {
	local out owner
	out=$(cli_run -d --name "e2e-rl-det-$E2E_TAG" "$IMAGE" sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done' 2>&1) ||
		{ show "$out"; pm rm -f -t 0 "e2e-rl-det-$E2E_TAG" >/dev/null 2>&1; fail "run -d: $out"; return 1; }
	DET=$(printf '%s' "$out" | tail -n1)
	expect_eq "status" "$(cli inspect -f '{{.State.Status}}' "$DET")" running || return 1
	DET_PID=$(cli inspect -f '{{.State.Pid}}' "$DET")
	[ -n "$DET_PID" ] && [ "$DET_PID" != 0 ] && [ -d "/proc/$DET_PID" ] || { fail "no pid for $DET: '$DET_PID'"; DET_PID=; return 1; }
	owner=$(stat -c %u "/proc/$DET_PID")
	expect_eq "host uid of the container's root (pid $DET_PID)" "$owner" "$RL_UID" || { DET_PID=; return 1; }
	[ "$(readlink "/proc/$DET_PID/ns/user")" != "$(readlink /proc/self/ns/user)" ] ||
		{ fail "pid $DET_PID is in the host's user namespace"; DET_PID=; return 1; }
	note "running, pid $DET_PID: uid $RL_UID on the host, in a user namespace"
}

# --userns=keep-id: the user is itself inside, and what it writes to a
# bound dir is the user's on the host
s_keep_id() {
	local out rc owner
	install -d -o "$RL_UID" -g "$RL_GID" -m 755 "$U/data"
	out=$(cli_run --rm --userns=keep-id -v "$U/data:/data" "$IMAGE" sh -c 'echo "uid=$(id -u) gid=$(id -g)"; touch /data/by-keep-id; grep -c . /proc/self/uid_map' 2>&1)
	rc=$?
	show "$out"
	expect_eq "exit code" "$rc" 0 || return 1
	expect_line "ids inside" "$out" "uid=$RL_UID gid=$RL_GID" || return 1
	owner=$(stat -c %u:%g "$U/data/by-keep-id" 2>&1)
	expect_eq "host owner of /data/by-keep-id" "$owner" "$RL_UID:$RL_GID" || return 1
	note "uid $RL_UID gid $RL_GID inside, the file it wrote is $RL_UID:$RL_GID on the host"
}

s_port() {
	local port out body id
	port=$(free_port)
	echo "e2e-rl-port-$E2E_TAG" >"$U/index.html"
	chown "$RL_UID:$RL_GID" "$U/index.html"
	id=e2e-rl-port-$E2E_TAG
	out=$(pm run -d --name "$id" --network slirp4netns -p "127.0.0.1:$port:8080" -v "$U/index.html:/www/index.html:ro" \
		"$IMAGE" httpd -f -p 8080 -h /www 2>&1) || { show "$out"; pm rm -f -t 0 "$id" >/dev/null 2>&1; fail "run -d -p: $out"; return 1; }
	body=$(http_get_retry "http://127.0.0.1:$port/")
	out=$(pm rm -f -t 0 "$id" 2>&1)
	expect_eq "HTTP body from 127.0.0.1:$port" "$body" "e2e-rl-port-$E2E_TAG" || return 1
	note "127.0.0.1:$port -> httpd in the rootless container (slirp4netns)"
}

s_runtime() {
	local ids
	ids=$(grep -o '"ID":"[0-9a-f]\{64\}","Image[^}]*"Status":"create"' "$U/events.log" 2>/dev/null | cut -d'"' -f4 | sort -u)
	[ -n "$ids" ] || ids=$(grep -o '"ID":"[0-9a-f]\{64\}"' "$U/events.log" 2>/dev/null | cut -d'"' -f4 | sort -u)
	runtime_ran "$W" $ids
}

s_nothing_left() {
	local left
	left=$(pm ps -aq)
	[ -z "$left" ] || { fail "containers left: $left"; return 1; }
	# conmon runs `podman container cleanup` when a container exits; the
	# pause process (catatonit) stays until the storage is reset
	local pause
	pause=$(cat "$U/tmp/pause.pid" 2>/dev/null)
	wait_for 10 sh -c "[ -z \"\$(ps -eo pid= -o args= | grep -F -- '$U/' | grep -v grep)\" ]" ||
		{ fail "processes left: $(describe_pids $(pids_matching "$U/"))"; return 1; }
	left=$(rl_pids | grep -vxF "${pause:-none}")
	[ -z "$left" ] || { fail "processes of $RL_USER left: $(describe_pids $left | tr '\n' ' ')"; return 1; }
	local out
	out=$(pm system reset -f 2>&1) || { show "$out"; fail "system reset: $out"; return 1; }
	wait_for 10 sh -c "[ -z \"\$(ps -o pid= -u $RL_UID)\" ]" ||
		{ fail "processes of $RL_USER left after system reset: $(describe_pids $(rl_pids) | tr '\n' ' ')"; return 1; }
	left=$(rl_pids)
	[ -z "$left" ] || { fail "processes of $RL_USER (or its subordinate ids) left: $(describe_pids $left | tr '\n' ' ')"; return 1; }
	for d in root runroot tmp; do
		[ ! -e "$U/$d" ] || { fail "$U/$d left after system reset: $(find "$U/$d" | head -n 5 | tr '\n' ' ')"; return 1; }
	done
	left=$(awk -v t="$D/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo)
	[ -z "$left" ] || { fail "mounts left: $left"; return 1; }
	# the calls log is read: the rest of the user's dir goes
	cp "$W.calls" "$D/calls.txt"
	rm -rf "$U"
	[ ! -e "$U" ] || { fail "$U could not be removed"; return 1; }
	note "no container, conmon, pause process, process of $RL_USER, storage or mount left"
}

trap cleanup EXIT
scenario "setup (user, storage, load)" s_setup
if [ -f "$W.calls" ] && [ -n "$(pm images -q 2>/dev/null)" ]; then
	scenario "run --rm (output, exit code)" s_run
	scenario "run -it" s_tty
	scenario "run -d (root is the user)" s_rl_detached
	scenario "exec (+ -it -u)" s_exec
	scenario "stop + rm" s_stop
	scenario "--cap-drop" s_cap_drop
	scenario "--read-only" s_read_only
	scenario "--user" s_user
	scenario "--userns=keep-id" s_keep_id
	scenario "-p 127.0.0.1:PORT (slirp4netns)" s_port
	scenario "runtime under test ran them" s_runtime
	scenario "nothing left" s_nothing_left
fi
