#!/usr/bin/env bash
# e2e/run.sh — the end-to-end suite: the real callers (containerd 1.6 + ctr,
# containerd's CRI plugin driven like the kubelet, dockerd 20.10, Podman 4.3
# rootful and rootless) with the runtime under test as their runtime.
#
#   RUNTIME=/path/to/runtime e2e/run.sh [PART...]
#   (as root; PART: containerd cri docker podman podman-rootless)
#
# Each daemon is started by its part with private state dirs and sockets and
# stopped by PID; the images are built here from a busybox-static rootfs (no
# registry). Prints one row per client × scenario and a table at the end.
# podman-rootless runs Podman as an unprivileged user of its own
# ($E2E_RL_USER, default skiff-e2e: made once, with subordinate ids).
# The host is snapshotted before and checked after (processes, mounts,
# cgroups, network links, iptables rules, network namespaces): anything left
# is a FAIL row (then cleaned up by force).
#
# Environment:
#   RUNTIME        runtime binary (default: target/debug/skiff of this checkout)
#   E2E_EXPECTED   file of "client|scenario" rows expected to FAIL (known
#                  gaps): they are reported XFAIL and do not fail the run;
#                  any other FAIL does. Without it every FAIL fails the run.
#   E2E_TIMEOUT    seconds for each client call (default 60)
#   E2E_PART_TIMEOUT seconds for a whole part (default 300)
#   E2E_RL_USER    the user podman-rootless runs as (default skiff-e2e)
#   E2E_RESULTS    where to write the rows (default: a file in the temp dir,
#                  copied to target/e2e/results-<runtime>.txt)
#   KEEP_TMP=1     keep the temp dir (logs of every scenario)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

# under a child subreaper (this VM's PID 1 reaps no orphans)
if [ -z "${E2E_SUBREAPER:-}" ]; then
	exec python3 "$here/subreaper.py" "$0" "$@"
fi

RUNTIME=${RUNTIME:-$repo/target/debug/skiff}
[ "$(id -u)" = 0 ] || { echo "e2e: must run as root" >&2; exit 1; }
[ -x "$RUNTIME" ] || { echo "e2e: runtime not found or not executable: $RUNTIME" >&2; exit 1; }
RUNTIME=$(readlink -f "$RUNTIME")
PARTS=${*:-containerd cri docker podman podman-rootless}
E2E_TAG=$(printf '%04x%04x' $$ $RANDOM)
E2E_TMP=$(mktemp -d /tmp/e2e.XXXXXX)
chmod 711 "$E2E_TMP"
E2E_IMAGES=$E2E_TMP/images
RESULTS_OUT=${E2E_RESULTS:-}
E2E_RESULTS=$E2E_TMP/results.txt
: >"$E2E_RESULTS"
export RUNTIME E2E_TAG E2E_TMP E2E_IMAGES E2E_RESULTS E2E_TIMEOUT=${E2E_TIMEOUT:-60}

echo "e2e: runtime $RUNTIME ($("$RUNTIME" --version 2>/dev/null | head -n1)); tag $E2E_TAG; tmp $E2E_TMP"

# ------------------------------------------------------ host snapshots --

snapshot() {
	local o=$1
	mkdir -p "$o"
	awk '{ print $5 }' /proc/self/mountinfo | sort >"$o/mounts"
	find /sys/fs/cgroup -mindepth 2 -type d 2>/dev/null | sort >"$o/cgroups"
	ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort >"$o/links"
	{ ip netns list 2>/dev/null; ls /run/netns /run/docker/netns 2>/dev/null; } | sort >"$o/netns"
	for ipt in iptables ip6tables; do
		command -v "$ipt-save" >/dev/null && "$ipt-save" 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
	done | sort >"$o/iptables"
}

# what of a new host entry is ours: other test suites may run on the same
# host meanwhile (their cgroups and mounts are not this suite's leftovers)
ours() {
	case $1 in
		cgroups) grep -E "e2e-|$E2E_TAG|libpod|k8s\.io|/docker|moby" ;;
		mounts) grep -E "^($E2E_TMP|/run/|/var/)" ;;
		*) cat ;;
	esac
}

leftovers() {
	local what f new others
	for what in mounts cgroups links netns iptables; do
		new=$(comm -13 "$E2E_TMP/before/$what" "$E2E_TMP/after/$what" | ours "$what")
		others=$(comm -13 "$E2E_TMP/before/$what" "$E2E_TMP/after/$what" | grep -vxF -f <(printf '%s\n' "$new") )
		[ -n "$others" ] && echo "e2e: note: new $what not made by this suite (another process?): $(printf '%s' "$others" | tr '\n' ' ' | cut -c1-300)"
		[ -z "$new" ] && continue
		printf 'e2e|host: no %s left|FAIL|0|%s\n' "$what" "$(printf '%s' "$new" | tr '\n|' '  ' | cut -c1-300)" >>"$E2E_RESULTS"
		echo "[FAIL] left behind ($what):"
		printf '%s\n' "$new" | sed 's/^/       /'
	done
	new=$(for p in /proc/[0-9]*; do
		p=${p#/proc/}
		tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF -- "$E2E_TMP" && echo "$p: $(tr '\0' ' ' <"/proc/$p/cmdline")"
	done)
	if [ -n "$new" ]; then
		printf 'e2e|host: no processes left|FAIL|0|%s\n' "$(printf '%s' "$new" | tr '\n|' '  ' | cut -c1-300)" >>"$E2E_RESULTS"
		echo "[FAIL] processes left behind:"; printf '%s\n' "$new" | sed 's/^/       /'
	fi
}

force_host_cleanup() {
	local p m c l
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF -- "$E2E_TMP" && kill -KILL "$p" 2>/dev/null
	done
	sleep 0.3
	for m in $(comm -13 "$E2E_TMP/before/mounts" "$E2E_TMP/after/mounts" | ours mounts | sort -r); do umount -l "$m" 2>/dev/null; done
	for c in $(comm -13 "$E2E_TMP/before/cgroups" "$E2E_TMP/after/cgroups" | ours cgroups | sort -r); do rmdir "$c" 2>/dev/null; done
	for l in $(comm -13 "$E2E_TMP/before/links" "$E2E_TMP/after/links"); do ip link del "$l" 2>/dev/null; done
	for l in $(comm -13 "$E2E_TMP/before/netns" "$E2E_TMP/after/netns"); do ip netns del "$l" 2>/dev/null; done
	if [ -n "$(comm -13 "$E2E_TMP/before/iptables" "$E2E_TMP/after/iptables")" ]; then
		echo "e2e: iptables rules were added (see above); they are left for inspection"
	fi
}

finish() {
	local rc=$?
	trap - EXIT INT TERM
	snapshot "$E2E_TMP/after"
	leftovers
	force_host_cleanup
	report
	rc=$?
	if [ -n "$RESULTS_OUT" ]; then
		cp "$E2E_RESULTS" "$RESULTS_OUT"
	else
		mkdir -p "$repo/target/e2e"
		cp "$E2E_RESULTS" "$repo/target/e2e/results-$(basename "$RUNTIME").txt"
	fi
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "e2e: temp dir kept: $E2E_TMP"
	else
		rm -rf "$E2E_TMP"
	fi
	exit "$rc"
}

# the table; exit status 1 if a row failed that is not expected to
report() {
	python3 "$here/table.py" --expected "${E2E_EXPECTED:-}" "$(basename "$RUNTIME")=$E2E_RESULTS"
}

snapshot "$E2E_TMP/before"
trap finish EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ the images --

mkdir -p "$E2E_IMAGES"
if ! { "$repo/scripts/mk-rootfs.sh" "$E2E_IMAGES/rootfs" &&
	python3 "$here/mk-image.py" "$E2E_IMAGES/rootfs" "$E2E_IMAGES/busybox-oci.tar" "e2e-busybox:$E2E_TAG" &&
	python3 "$here/mk-image.py" --format docker "$E2E_IMAGES/rootfs" "$E2E_IMAGES/busybox-docker.tar" "e2e-busybox:$E2E_TAG" &&
	python3 "$here/mk-image.py" --cmd '["sleep", "2147483647"]' "$E2E_IMAGES/rootfs" "$E2E_IMAGES/pause-oci.tar" "e2e-pause:$E2E_TAG"
} >"$E2E_TMP/images.log" 2>&1; then
	cat "$E2E_TMP/images.log"
	echo 'e2e|images|FAIL|0|could not build the images' >>"$E2E_RESULTS"
	exit 1
fi

# --------------------------------------------------------------- the parts --

for part in $PARTS; do
	[ -f "$here/parts/$part.sh" ] || { echo "e2e: no such part: $part" >&2; exit 2; }
	timeout -k 10 "${E2E_PART_TIMEOUT:-300}" bash "$here/parts/$part.sh"
	rc=$?
	if [ "$rc" != 0 ]; then
		printf '%s|part finished|FAIL|0|%s\n' "$part" "exit $rc$([ "$rc" = 124 ] && echo ' (timed out)')" >>"$E2E_RESULTS"
	fi
done
exit 0
