# shellcheck shell=bash
# bench-lib.sh — sourced by bench.sh and bench-scale.sh: the last-resort
# clean-up of what a benchmark made. Both use $CG (the prefix of every cgroup
# the benchmark's containers get) and $W (its temp dir).

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
