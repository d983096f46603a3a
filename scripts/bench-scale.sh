#!/usr/bin/env bash
# bench-scale.sh — does a runtime's hot path scan its state root?
#
#   just bench-scale                       # skiff, crun, runc
#   RUNTIMES="skiff crun" N=1000 scripts/bench-scale.sh
#
# For each runtime, in a root of its own:
#   1. `list`, `list -q` and `state ID` with 1 container in the root, then with
#      N (default 1 000) real containers: each `create`d from a bundle of its
#      own (/bin/true, a cgroup /skiff-scale-PID-i of its own), so N init
#      processes wait on their exec.fifo, with their namespaces, mounts and
#      cgroups, as after N `create`s in production.
#   2. `create` (the previous one deleted in --prepare) into an empty root, then
#      into a root holding M (default 10 000) entries. 10 000 real containers
#      would cost ~10 000 processes, network namespaces and ~100 000 cgroup
#      dirs on a 2-CPU VM, so the M entries are copies of one real created
#      container's state dir (its files byte for byte, the id replaced by a
#      distinct one of the same length, the exec.fifo recreated): each entry
#      names the same live init pid, so a runtime that looks at them sees
#      valid created containers. What matters is that they exist: a create
#      that scans or locks the whole root shows up as growth.
# Prints medians and ratios: flat (~1.0x) is the goal for state and create;
# list is linear by nature, so its cost per container is printed too.
#
# Environment: RUNTIMES (default: skiff crun runc), SKIFF, CRUN, RUNC,
# N (1000), M (10000), RUNS (hyperfine runs per cell, default 20),
# SPEC_FROM (runc). Needs root, hyperfine, python3, busybox-static.
# Cleans up every container, mount, cgroup and process it made, also on failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

die() { echo "bench-scale.sh: $*" >&2; exit 1; }

# ---- run under a child subreaper (bench-lib.sh says why) --------------------
# shellcheck source=bench-lib.sh
. "$here/bench-lib.sh"
under_subreaper "$0" "$@"

# ---- configuration and preflight -------------------------------------------
repo=$(cd "$here/.." && pwd)
RUNTIMES=${RUNTIMES:-skiff crun runc}
SKIFF=${SKIFF:-$repo/target/release/skiff}
CRUN=${CRUN:-$(command -v crun || echo /usr/bin/crun)}
RUNC=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
SPEC_FROM=${SPEC_FROM:-runc}
N=${N:-1000}
M=${M:-10000}
RUNS=${RUNS:-20}
[ "$(id -u)" = 0 ] || die "must run as root"
command -v hyperfine >/dev/null || die "hyperfine is not installed (apt-get install hyperfine)"
[ "$N" -ge 2 ] && [ "$M" -ge 1 ] || die "N must be >= 2 and M >= 1"
bin_of() {
	case $1 in
		skiff) echo "$SKIFF" ;; crun) echo "$CRUN" ;; runc) echo "$RUNC" ;;
		*) die "unknown runtime '$1' in RUNTIMES (expected skiff, crun, runc)" ;;
	esac
}
for rt in $RUNTIMES; do
	[ -x "$(bin_of "$rt")" ] || die "$rt not found: '$(bin_of "$rt")' (set ${rt^^}=/path or leave it out of RUNTIMES)"
done
spec_bin=$(bin_of "$SPEC_FROM")

W=$(mktemp -d /tmp/skiff-scale.XXXXXX)
CG=skiff-scale-$$
# delete -f every real container of a root (the copied entries are removed
# with rm first: deleting them through the runtime would kill the shared pid)
sweep_root() { # runtime root
	local b=$1 root=$2 id
	[ -d "$root" ] || return 0
	rm -rf "$root"/fake-* 2>/dev/null
	for id in $(timeout 60 "$b" --root "$root" list -q 2>/dev/null); do
		timeout 10 "$b" --root "$root" delete -f "$id" >/dev/null 2>&1 ||
			{ kill_cg; timeout 10 "$b" --root "$root" delete -f "$id" >/dev/null 2>&1; }
	done
}
cleanup() {
	local rt r
	set +e
	for rt in $RUNTIMES; do
		for r in "$W"/root-"$rt"-*; do sweep_root "$(bin_of "$rt")" "$r"; done
	done
	remove_leftovers
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- bundles: one per container (its own cgroup), same rootfs ---------------------
ROOTFS=$W/rootfs
"$here"/mk-rootfs.sh "$ROOTFS" >/dev/null || die "mk-rootfs.sh failed"
mkdir -p "$W/spec"
(cd "$W/spec" && "$spec_bin" spec) || die "'$spec_bin spec' failed"
python3 - "$W" "$ROOTFS" "/$CG" "$N" <<'PY' || die "writing the bundles failed"
import json, os, sys
w, rootfs, cg, n = sys.argv[1:5]
c = json.load(open(os.path.join(w, "spec", "config.json")))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["root"]["path"] = rootfs
for i in ["c"] + [str(i) for i in range(1, int(n) + 1)]:
    c["linux"]["cgroupsPath"] = f"{cg}-{i}"
    os.makedirs(os.path.join(w, "b", i))
    json.dump(c, open(os.path.join(w, "b", i, "config.json"), "w"))
PY

hf() { # json-out command [hyperfine args]
	local out=$1
	shift
	timeout -k 5 600 hyperfine -N --style none --runs "$RUNS" --warmup 2 --export-json "$out" "$@" >"$W/hf.log" 2>&1 ||
		{ cat "$W/hf.log" >&2; die "hyperfine failed: $*"; }
}
# create containers FROM..TO (ids c-<i>, bundle b/<i>) in a root
create_range() { # binary root from to
	local b=$1 root=$2 i
	for i in $(seq "$3" "$4"); do
		timeout 30 "$b" --root "$root" create --bundle "$W/b/$i" "c-$i" </dev/null >/dev/null 2>&1 ||
			die "$(basename "$b"): create of container $i failed: $b --root $root create --bundle $W/b/$i c-$i"
	done
}

R=$W/results
mkdir -p "$R"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for rt in $RUNTIMES; do
	b=$(bin_of "$rt")
	echo "== $rt: 1 container"
	root=$W/root-$rt-n
	create_range "$b" "$root" 1 1
	mid=$(( N / 2 ))
	hf "$R/$rt-list-1.json" "$b --root $root list"
	hf "$R/$rt-listq-1.json" "$b --root $root list -q"
	hf "$R/$rt-state-1.json" "$b --root $root state c-1"
	echo "== $rt: $N containers (creating $(( N - 1 )) more)"
	t0=$(date +%s.%N)
	create_range "$b" "$root" 2 "$N"
	t1=$(date +%s.%N)
	have=$(timeout 60 "$b" --root "$root" list -q | wc -l)
	[ "$have" = "$N" ] || die "$rt lists $have containers, expected $N"
	hf "$R/$rt-list-N.json" "$b --root $root list"
	hf "$R/$rt-listq-N.json" "$b --root $root list -q"
	hf "$R/$rt-state-N.json" "$b --root $root state c-$mid"
	echo "== $rt: deleting the $N"
	t2=$(date +%s.%N)
	sweep_root "$b" "$root"
	t3=$(date +%s.%N)
	python3 -c "import sys; print(sys.argv[1], (float(sys.argv[3]) - float(sys.argv[2])) / (int(sys.argv[4]) - 1), (float(sys.argv[6]) - float(sys.argv[5])) / int(sys.argv[4]))" \
		"$rt" "$t0" "$t1" "$N" "$t2" "$t3" >"$R/$rt-bulk"

	echo "== $rt: create into an empty root"
	root=$W/root-$rt-m
	mkdir -p "$root"
	prep="$W/prep-$rt.sh"
	printf '%s\n' "$b --root $root delete -f c-c >/dev/null 2>&1; true" >"$prep"
	hf "$R/$rt-create-0.json" --prepare "sh $prep" "$b --root $root create --bundle $W/b/c c-c"
	timeout 10 "$b" --root "$root" delete -f c-c >/dev/null 2>&1 || die "$rt: delete -f c-c failed"
	echo "== $rt: create into a root of $M entries (copies of a real created container's state)"
	timeout 30 "$b" --root "$root" create --bundle "$W/b/1" real-00000000 </dev/null >/dev/null 2>&1 ||
		die "$rt: create of the real container failed"
	python3 - "$root" real-00000000 "$M" <<'PY' || die "copying the state dirs failed"
import os, stat, sys
root, real, m = sys.argv[1], sys.argv[2], int(sys.argv[3])
src = os.path.join(root, real)
files = []
for name in os.listdir(src):
    p = os.path.join(src, name)
    st = os.lstat(p)
    if stat.S_ISREG(st.st_mode):
        files.append((name, "reg", open(p, "rb").read(), st.st_mode & 0o7777))
    elif stat.S_ISFIFO(st.st_mode):
        files.append((name, "fifo", None, st.st_mode & 0o7777))
    elif stat.S_ISLNK(st.st_mode):
        files.append((name, "lnk", os.readlink(p), 0))
dmode = os.stat(src).st_mode & 0o7777
old = real.encode()
for i in range(1, m + 1):
    fid = f"fake-{i:08d}"          # same length as the real id
    assert len(fid) == len(real)
    d = os.path.join(root, fid)
    os.mkdir(d, dmode)
    for name, kind, data, mode in files:
        p = os.path.join(d, name)
        if kind == "reg":
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            os.write(fd, data.replace(old, fid.encode()))
            os.close(fd)
        elif kind == "fifo":
            os.mkfifo(p, mode)
        else:
            os.symlink(data, p)
PY
	hf "$R/$rt-create-M.json" --prepare "sh $prep" "$b --root $root create --bundle $W/b/c c-c"
	hf "$R/$rt-statem-M.json" "$b --root $root state real-00000000"
	timeout 10 "$b" --root "$root" delete -f c-c >/dev/null 2>&1 || die "$rt: delete -f c-c failed"
	sweep_root "$b" "$root"
	left=$(find /sys/fs/cgroup -maxdepth 3 -type d -path "*/$CG*" | wc -l)
	[ "$left" = 0 ] || echo "bench-scale.sh: $rt left $left cgroup dirs behind" >&2
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "### Scale: $N containers in the root, create with $M entries ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "- load average (1/5/15 min): before $load_start, after $load_end; hyperfine -N, $RUNS runs per cell (2 warm-up)"
for rt in $RUNTIMES; do echo "- $rt: \`$(bin_of "$rt")\` — $("$(bin_of "$rt")" --version 2>/dev/null | head -n1)"; done
echo
python3 - "$R" "$N" "$M" $RUNTIMES <<'PY'
import json, os, statistics, sys
r, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rts = sys.argv[4:]
def med(name):
    return statistics.median(json.load(open(os.path.join(r, name)))["results"][0]["times"])
print(f"| runtime | command | 1 container ms | {n} containers ms | ratio | per extra container µs |")
print("|---|---|---:|---:|---:|---:|")
for rt in rts:
    for key, cmd in (("list", "`list`"), ("listq", "`list -q`"), ("state", "`state ID`")):
        a, b = med(f"{rt}-{key}-1.json"), med(f"{rt}-{key}-N.json")
        print(f"| {rt} | {cmd} | {a*1e3:.2f} | {b*1e3:.2f} | {b/a:.2f}× | {(b-a)/(n-1)*1e6:.1f} |")
print()
print(f"| runtime | command | empty root ms | {m} entries ms | ratio |")
print("|---|---|---:|---:|---:|")
for rt in rts:
    a, b = med(f"{rt}-create-0.json"), med(f"{rt}-create-M.json")
    print(f"| {rt} | `create` | {a*1e3:.2f} | {b*1e3:.2f} | {b/a:.2f}× |")
    s1, sm = med(f"{rt}-state-1.json"), med(f"{rt}-statem-M.json")
    print(f"| {rt} | `state ID` (vs 1 container) | {s1*1e3:.2f} | {sm*1e3:.2f} | {sm/s1:.2f}× |")
print()
print(f"| runtime | `create` of {n} one by one, ms each (shell loop) | `delete -f` of {n}, ms each |")
print("|---|---:|---:|")
for rt in rts:
    _, c, d = open(os.path.join(r, f"{rt}-bulk")).read().split()
    print(f"| {rt} | {float(c)*1e3:.2f} | {float(d)*1e3:.2f} |")
PY
