# shellcheck shell=bash
# bench-lib.sh — sourced by bench.sh, bench-scale.sh and link-order.sh: the
# subreaper they run below, and the last-resort clean-up of what a benchmark
# made (which uses $CG, the prefix of every cgroup the benchmark's containers
# get, and $W, its temp dir).

# Re-executes the calling script ($1, then its arguments) below
# e2e/subreaper.py, once: the inits of created containers are orphaned when
# the runtime exits, this host's PID 1 never reaps them, and the subreaper
# reaps them at once (and kills and reports any process the clean-up
# missed). Needs $here (the scripts directory) and die().
under_subreaper() {
	[ -n "${_BENCH_UNDER_REAPER:-}" ] && return 0
	command -v python3 >/dev/null || die "python3 is required"
	export _BENCH_UNDER_REAPER=1
	exec python3 "$here/../e2e/subreaper.py" bash "$@"
}

# SIGKILL whatever sits in the benchmark's cgroups (a hung runtime's leftovers)
kill_cg() {
	local f p
	for f in $(find /sys/fs/cgroup -maxdepth 3 -path "*/$CG*" -name cgroup.procs 2>/dev/null); do
		while read -r p; do kill -KILL "$p" 2>/dev/null; done <"$f"
	done
	return 0
}

# after the runtimes' own deletes: kill what is left, remove the cgroup dirs,
# unmount anything still mounted below $W, remove $W
remove_leftovers() {
	kill_cg
	sleep 0.2
	find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -depth -type d -path "*/$CG*" -exec rmdir {} + 2>/dev/null
	grep -q " $W" /proc/self/mountinfo && awk -v t="$W" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$W"
}
