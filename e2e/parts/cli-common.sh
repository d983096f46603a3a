# e2e/parts/cli-common.sh — the scenarios docker.sh, podman.sh and
# podman-rootless.sh share (sourced): their command lines are the same.
# The part defines
#   cli ARGS...          the client, bounded in time (dk, pm)
#   cli_run ARGS...      `cli run` with the part's own flags (cgroup parent, ...)
#   cli_tty ARGS...      the client under a terminal (run_tty), for `exec -it`
#   cli_tty_run ARGS...  `run` with the part's own flags under a terminal
# and CLI_NAME, IMAGE, CG_PARENT, UPDATE_ARGS (flags of `update` for 96 MiB).
# The detached container is DET (its id) and DET_PID.

s_run() {
	local out rc
	out=$(cli_run --rm "$IMAGE" sh -c 'echo hello-e2e; exit 3' 2>&1)
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
	out=$(cli_tty_run --rm -it "$IMAGE" sh -c 'sleep 0.5; [ -t 0 ] && [ -t 1 ] && echo tty-ok; exit 4')
	rc=$?
	show "$out"
	expect_end "output" "$out" tty-ok || return 1
	expect_eq "exit code" "$rc" 4 || return 1
	note "a terminal inside, exit code 4"
}

DET= DET_PID=
s_detached() {
	local out
	out=$(cli_run -d "$IMAGE" sh -c 'trap "exit 0" TERM; while :; do sleep 0.2; done' 2>&1) ||
		{ show "$out"; fail "run -d: $out"; return 1; }
	DET=$(printf '%s' "$out" | tail -n1)
	expect_eq "status" "$(cli inspect -f '{{.State.Status}}' "$DET")" running || return 1
	DET_PID=$(cli inspect -f '{{.State.Pid}}' "$DET")
	[ -n "$DET_PID" ] && [ "$DET_PID" != 0 ] && grep -q "$CG_PARENT/.*$DET" "/proc/$DET_PID/cgroup" ||
		{ fail "pid '$DET_PID' is not in a cgroup $CG_PARENT/…$DET"; DET_PID=; return 1; }
	note "running, pid $DET_PID below $CG_PARENT"
}
need_det() { [ -n "$DET_PID" ] || { fail "no detached container (run -d failed)"; return 1; }; }

s_exec() {
	need_det || return 1
	local out rc
	out=$(cli exec "$DET" sh -c 'echo exec-ok; exit 5' 2>&1)
	rc=$?
	show "$out"
	expect_line "exec output" "$out" exec-ok || return 1
	expect_eq "exec exit code" "$rc" 5 || return 1
	out=$(cli_tty exec -it -u 65534 "$DET" sh -c 'sleep 0.5; [ -t 1 ] && echo "tty uid=$(id -u)"')
	rc=$?
	show "$out"
	expect_end "exec -it -u output" "$out" "tty uid=65534" || return 1
	expect_eq "exec -it exit code" "$rc" 0 || return 1
	note "output, exit code 5; -it -u 65534 gets a terminal as uid 65534"
}

s_update() {
	need_det || return 1
	local out
	out=$(cli update $UPDATE_ARGS "$DET" 2>&1) || { show "$out"; fail "update: $(printf '%s' "$out" | tr '\n' ' ')"; return 1; }
	out=$(cli exec "$DET" cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1)
	expect_eq "memory.limit_in_bytes after update" "$out" 100663296 || return 1
	note "96 MiB after $CLI_NAME update"
}

s_stop() {
	need_det || return 1
	local out
	out=$(cli stop -t 10 "$DET" 2>&1) || { show "$out"; fail "stop: $out"; return 1; }
	expect_eq "status after stop" "$(cli inspect -f '{{.State.Status}}' "$DET")" exited || return 1
	expect_eq "exit code (SIGTERM trapped)" "$(cli inspect -f '{{.State.ExitCode}}' "$DET")" 0 || return 1
	out=$(cli rm "$DET" 2>&1) || { show "$out"; fail "rm: $out"; return 1; }
	cli inspect "$DET" >/dev/null 2>&1 && { fail "$DET still exists after rm"; return 1; }
	note "stopped by SIGTERM (exit 0), removed"
}

s_resources() {
	local out rc
	out=$(cli_run --rm --memory 64m --pids-limit 33 --cpus 0.5 "$IMAGE" \
		cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>&1)
	rc=$?
	show "$out"
	expect_eq "exit code" "$rc" 0 || return 1
	# (docker's client adds its daemon's warnings, such as "IPv4 forwarding
	# is disabled" on a host with net.ipv4.ip_forward=0, to the same stream)
	expect_eq "memory, pids, cfs quota inside" "$(printf '%s\n' "$out" | grep -v '^WARNING: ' | tr '\n' ' ' | sed 's/ $//')" "67108864 33 50000" || return 1
	note "--memory 64m, --pids-limit 33, --cpus 0.5 seen in the cgroup"
}

# podman.sh and podman-rootless.sh
s_cap_drop() {
	local out rc eff
	out=$(cli_run --rm --cap-drop CHOWN "$IMAGE" sh -c 'grep CapEff /proc/self/status; touch /tmp/f; chown 1 /tmp/f && echo chown-ok || echo chown-denied' 2>&1)
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
	out=$(cli_run --rm --read-only "$IMAGE" sh -c 'touch /x 2>&1; touch /tmp/y && echo tmp-ok' 2>&1)
	rc=$?
	show "$out"
	expect_eq "exit code" "$rc" 0 || return 1
	printf '%s' "$out" | grep -q "Read-only file system" || { fail "writing / did not fail with EROFS"; return 1; }
	expect_line "tmpfs /tmp" "$out" tmp-ok || return 1
	note "/ read-only (EROFS), /tmp writable"
}

s_user() {
	local out rc
	out=$(cli_run --rm --user 65534:65534 "$IMAGE" sh -c 'echo "uid=$(id -u) gid=$(id -g)"' 2>&1)
	rc=$?
	show "$out"
	expect_eq "exit code" "$rc" 0 || return 1
	expect_line "ids" "$out" "uid=65534 gid=65534" || return 1
	note "uid and gid 65534"
}
