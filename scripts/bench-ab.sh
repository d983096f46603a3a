#!/usr/bin/env bash
# bench-ab.sh — A/B latency of `run` of /bin/true for two builds of one runtime.
#
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY
#
# Copy both binaries somewhere a rebuild cannot touch first. The two commands
# alternate inside each hyperfine call, ROUNDS calls in all; each binary has
# its own --root, every run a fresh container id. Same bundle as bench.sh
# (busybox rootfs from mk-rootfs.sh, `runc spec`, /bin/true, a cgroupsPath).
# Prints median, mean ± σ and min per binary and the difference of medians.
#
# Environment: RUNS (runs per binary and round, default 100), ROUNDS (6),
# WARMUP (5), SWAP=1 (NEW first in each round), STATE_FS (tmpfs or disk: where
# the two --root directories live, default tmpfs).
# Needs root, hyperfine, python3, busybox-static and runc (for `runc spec`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "bench-ab.sh: $*" >&2; exit 1; }
[ $# = 2 ] || die "usage: bench-ab.sh OLD_BINARY NEW_BINARY"
A=$(readlink -f "$1"); B=$(readlink -f "$2")
[ -x "$A" ] && [ -x "$B" ] || die "both binaries must be executable"
[ "$(id -u)" = 0 ] || die "must run as root"
command -v hyperfine >/dev/null || die "hyperfine is not installed"
RUNS=${RUNS:-100} ROUNDS=${ROUNDS:-6} WARMUP=${WARMUP:-5}

W=$(mktemp -d /tmp/skiff-bench-ab.XXXXXX)
CG=skiff-bench-ab-$$
cleanup() {
	set +e
	for r in "$W/ra" "$W/rb"; do
		for id in $("$A" --root "$r" list -q 2>/dev/null); do "$A" --root "$r" delete -f "$id" >/dev/null 2>&1; done
	done
	find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -depth -type d -name "$CG" -exec rmdir {} + 2>/dev/null
	umount "$W/ra" "$W/rb" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/b" "$W/ra" "$W/rb"
# The --root directories on tmpfs, as /run is on a normal host (bench.sh's
# STATE_FS; STATE_FS=disk keeps them in $W).
if [ "${STATE_FS:-tmpfs}" = tmpfs ]; then
	mount -t tmpfs -o mode=0711,size=16m skiff-bench-ab "$W/ra" && mount -t tmpfs -o mode=0711,size=16m skiff-bench-ab "$W/rb" || die "mounting the tmpfs state roots failed"
fi
"$here"/mk-rootfs.sh "$W/b/rootfs" >/dev/null
(cd "$W/b" && runc spec)
python3 - "$W/b/config.json" "/$CG" <<'PY'
import json, sys
p, cg = sys.argv[1:3]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"]["cgroupsPath"] = cg
json.dump(c, open(p, "w"))
PY
old=(-n old "$A --root $W/ra run --bundle $W/b a\$\$")
new=(-n new "$B --root $W/rb run --bundle $W/b b\$\$")
for r in $(seq "$ROUNDS"); do
	if [ "${SWAP:-0}" = 1 ]; then cmds=("${new[@]}" "${old[@]}"); else cmds=("${old[@]}" "${new[@]}"); fi
	hyperfine --shell sh --style none --warmup "$WARMUP" --runs "$RUNS" --export-json "$W/r$r.json" "${cmds[@]}" >/dev/null
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$W" <<'PY'
import glob, json, statistics, sys
t = {"old": [], "new": []}
for f in sorted(glob.glob(sys.argv[1] + "/r*.json")):
    for r in json.load(open(f))["results"]:
        t[r["command"]] += r["times"]
for k, v in t.items():
    print(f"{k}: n={len(v)} median={statistics.median(v)*1e3:.2f} ms "
          f"mean={statistics.mean(v)*1e3:.2f} ± {statistics.stdev(v)*1e3:.2f} ms min={min(v)*1e3:.2f} ms")
print(f"median new - old: {(statistics.median(t['new']) - statistics.median(t['old']))*1e3:+.3f} ms")
PY
