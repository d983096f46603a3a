# e2e/lib.sh — helpers shared by the parts of the end-to-end suite (sourced).
#
# A part (e2e/parts/<client>.sh) runs scenarios with `scenario NAME FUNC`:
# FUNC's output goes to a per-scenario log, its status decides the row
# (0 PASS, anything else FAIL; `skip REASON` makes it SKIP). Each row is
# appended to $E2E_RESULTS as CLIENT|SCENARIO|STATUS|SECONDS|DETAIL.
#
# Provided by run.sh in the environment: RUNTIME (absolute path), E2E_TMP
# (the suite's private temp dir), E2E_RESULTS, E2E_IMAGES (dir holding the
# image archives), E2E_TAG (unique tag of this run), E2E_TIMEOUT.

set -uo pipefail

: "${E2E_TIMEOUT:=60}"
CLIENT=${CLIENT:?CLIENT must be set by the part}
PART_DIR=$E2E_TMP/$CLIENT
mkdir -p "$PART_DIR/logs"
chmod 711 "$E2E_TMP" "$PART_DIR"

# every client call goes through this: bounded in time, killed hard after it
t() { timeout -k 5 "$E2E_TIMEOUT" "$@"; }

# The checkpoint scenarios' workload: a count in /tmp/n, ten a second. Each
# count is written beside it and renamed over it, so that a reader never
# catches the file between truncation and write (and reads it empty).
COUNTER_SH='i=0; while :; do i=$((i+1)); echo $i >/tmp/n.new; mv /tmp/n.new /tmp/n; sleep 0.1; done'

# ---------------------------------------------------------------- results --

_detail=
_skip=
# note TEXT: the row's detail (last call wins), also printed in the log
note() { _detail=$*; printf '>> %s\n' "$*"; }
# fail TEXT: note + return 1 (use as `cond || { fail "why"; return 1; }`)
fail() { note "$*"; return 1; }
skip() { _skip=1; note "$*"; return 0; }
# show a command's captured output in the log
show() { [ -n "${1:-}" ] && printf '%s\n' "$1" | sed 's/^/   | /'; return 0; }

# expect_eq WHAT GOT WANT
expect_eq() {
	[ "$2" = "$3" ] || { fail "$1: got '$2', want '$3'"; return 1; }
}
# expect_line WHAT TEXT LINE: TEXT has LINE as a whole line (CR stripped)
expect_line() {
	printf '%s\n' "$2" | tr -d '\r' | grep -qxF -- "$3" || {
		fail "$1: no line '$3' in: $(printf '%s' "$2" | tr -d '\r' | tr '\n' ' ' | cut -c1-300)"
		return 1
	}
}

# expect_end WHAT TEXT END: a line of TEXT ends with END (terminal output,
# where echoed control characters may precede it)
expect_end() {
	printf '%s\n' "$2" | tr -d '\r' | grep -qF -- "$3" &&
		printf '%s\n' "$2" | tr -d '\r' | grep -F -- "$3" | grep -q -- "$3\$" || {
		fail "$1: no line ending in '$3' in: $(printf '%s' "$2" | tr -d '\r' | tr '\n' ' ' | cut -c1-300)"
		return 1
	}
}

scenario() {
	local name=$1 fn=$2 log start end rc status
	log=$PART_DIR/logs/$(printf '%s' "$name" | tr -c 'A-Za-z0-9_.-' '_').log
	_detail= _skip=
	start=$(date +%s.%N)
	{ echo "== $CLIENT / $name"; "$fn"; } >"$log" 2>&1
	rc=$?
	end=$(date +%s.%N)
	if [ -n "$_skip" ]; then status=SKIP
	elif [ "$rc" = 0 ]; then status=PASS
	else status=FAIL; [ -n "$_detail" ] || _detail="exit $rc"
	fi
	local secs
	secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
	printf '%s|%s|%s|%s|%s\n' "$CLIENT" "$name" "$status" "$secs" "$(printf '%s' "$_detail" | tr '|\n' '/ ' | cut -c1-400)" >>"$E2E_RESULTS"
	local shown=$status
	case $status/$name in FAIL/*"(out of scope)"*) shown="FAIL, out of scope" ;; esac
	printf '[%s] %-15s %-34s %5ss  %s\n' "$shown" "$CLIENT" "$name" "$secs" "$_detail"
	if [ "$shown" = FAIL ] && [ "${E2E_VERBOSE:-1}" = 1 ]; then
		sed 's/^/       /' "$log" | tail -n 40
	fi
	return 0
}

# ------------------------------------------------- the runtime under test --

# mk_wrapper PATH: a logging wrapper around $RUNTIME at PATH. It appends its
# argv to PATH.calls (one line, arguments separated by spaces) and execs the
# runtime, so the process tree, fds and exit status are the runtime's own.
# E2E_SAVE_CONFIG=1 also keeps a copy of each bundle's config.json beside it.
mk_wrapper() {
	local w=$1
	mkdir -p "$(dirname "$w")"
	cat >"$w" <<EOF
#!/bin/sh
# e2e logging wrapper: the runtime under test is $RUNTIME
printf '%s\n' "\$*" >>"$w.calls"
if [ "\${E2E_SAVE_CONFIG:-0}" = 1 ]; then
	prev=
	for a in "\$@"; do [ "\$prev" = --bundle ] && cp "\$a/config.json" "$w.config.\$\$.json" 2>/dev/null; prev=\$a; done
fi
exec "$RUNTIME" "\$@"
EOF
	chmod 755 "$w"
	: >"$w.calls"
}

# runtime_ran WRAPPER ID...: every ID was created through WRAPPER (the
# wrapper's log has a `create` call naming it), so the runtime under test
# ran it, not Debian's runc.
runtime_ran() {
	local w=$1 id missing= n
	shift
	[ -s "$w.calls" ] || { fail "the runtime wrapper $w was never called"; return 1; }
	[ $# -gt 0 ] || { fail "no container id to look for"; return 1; }
	for id in "$@"; do
		grep -E "(^| )create( | .* )$id\$" "$w.calls" >/dev/null || missing+=" $id"
	done
	n=$(grep -c . "$w.calls")
	echo "$n runtime calls logged by $w:"
	sed 's/^/   | /' "$w.calls" | cut -c1-160 | head -n 20
	[ -z "$missing" ] || { fail "no '$(basename "$RUNTIME") create' logged for:$missing"; return 1; }
	note "$# containers created by $RUNTIME ($n calls logged)"
}

# containerd_config DIR SOCK [PLUGIN...]: the start of a private containerd's
# config (root, state, sockets below DIR; no debug or metrics listener; the
# snapshotters this host lacks and the PLUGINs disabled)
containerd_config() {
	local d=$1 sock=$2 p list='"io.containerd.internal.v1.opt"'
	shift 2
	for p in "$@" io.containerd.snapshotter.v1.aufs io.containerd.snapshotter.v1.btrfs \
		io.containerd.snapshotter.v1.devmapper io.containerd.snapshotter.v1.zfs \
		io.containerd.tracing.processor.v1.otlp io.containerd.internal.v1.tracing; do
		list+=", \"$p\""
	done
	cat <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = [$list]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
}

# ---------------------------------------------------------- process tools --

# pids whose cmdline contains STRING (never this shell or its parents)
pids_matching() {
	local p cl
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" = $$ ] || [ "$p" = "$BASHPID" ] && continue
		cl=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || continue
		case $cl in *"$1"*) echo "$p" ;; esac
	done
}

# pids in a cgroup whose path contains STRING
pids_in_cgroup() {
	local p
	for p in /proc/[0-9]*; do
		grep -qF -- "$1" "$p/cgroup" 2>/dev/null && echo "${p#/proc/}"
	done
}

# stop_pid PID [SECONDS]: SIGTERM, wait, SIGKILL. The pid must be ours (a
# daemon this part started).
stop_pid() {
	local pid=$1 n=${2:-15}
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq $((n * 5))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
	if kill -0 "$pid" 2>/dev/null; then
		echo "pid $pid did not stop on SIGTERM: SIGKILL"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	return 0
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s
wait_for() {
	local n=$(($1 * 10))
	shift
	for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

# force_cleanup STRING: last resort after a failure: SIGKILL by PID every
# process whose cmdline mentions STRING, unmount what is mounted below it.
# A free TCP port on the loopback.
free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The body of an HTTP GET of URL, retried for up to 5 s (a server still
# starting); empty if it never answered.
http_get_retry() { # url
	local body= _
	for _ in $(seq 50); do
		body=$(/usr/bin/python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode().strip())' \
			"$1" 2>/dev/null) && break
		sleep 0.1
	done
	printf '%s' "$body"
}

force_cleanup() {
	local s=$1 p m
	for p in $(pids_matching "$s"); do kill -KILL "$p" 2>/dev/null; done
	sleep 0.2
	for m in $(awk -v t="$s" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null
	done
}

# run_tty CMD...: run CMD with a pty as its stdin/stdout (script(1)), the
# exit status is CMD's; output has CRs and control characters stripped.
run_tty() {
	local cmd= a
	for a in "$@"; do cmd+=" $(printf '%q' "$a")"; done
	t script -qec "$cmd" /dev/null </dev/null 2>&1 | tr -cd '[:print:]\n'
	return "${PIPESTATUS[0]}"
}
