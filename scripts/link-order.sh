#!/bin/bash
# link-order.sh [--check] SKIFF — the order skiff's functions are linked in.
#
# A `run` executes about 1 400 of the release binary's 7 000 functions
# (~720 KiB of its 2.9 MiB of code), spread over all of it; the kernel maps
# a binary 64 KiB around each page fault, so a `run` mapped 85 % of the
# file (3.6 MB of RSS). `just release` (and `release-glibc`) links the functions a container's
# life runs first and together, in the order they first run, from
# crates/skiff/link-order-musl.txt (link-order.txt for glibc; lld
# --symbol-ordering-file); the rest
# follows. Symbol names carry a hash of the crate, not of the code, so the
# list stays valid while functions change; new functions are missing from
# it until it is regenerated.
#
# This script runs the workload below under bench/entrytrace (a one-shot
# breakpoint on every function of SKIFF, in every process it clones, until
# that process execs the container's program) and:
#   without --check: writes the list (LINK_ORDER, below) from what ran;
#   --check: fails when what ran is below 90 % listed in the list, or
#            not where the order puts it (a stale list; `just test` runs it).
# SKIFF must be the release binary with its link map next to it
# (SKIFF.map, written by `just release`). Root; leaves nothing behind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
die() { echo "link-order: $*" >&2; exit 1; }
# shellcheck source=bench-lib.sh
. "$here/bench-lib.sh"
under_subreaper "$0" "$@"
check=0
[ "${1:-}" = --check ] && { check=1; shift; }
rt=$(readlink -f "${1:?usage: link-order.sh [--check] SKIFF}")
[ -f "$rt.map" ] || die "no link map $rt.map (build with just release)"
[ "$(id -u)" = 0 ] || die "must run as root"
# LINK_ORDER: the list (default crates/skiff/link-order.txt, the glibc
# build's; `just link-order` passes the musl release build's own,
# link-order-musl.txt, as its symbols carry other crate hashes).
list=${LINK_ORDER:-$repo/crates/skiff/link-order.txt}

w=$(mktemp -d /tmp/skiff-link-order.XXXXXX)
root=$w/root
cg=skiff-link-order-$$
cleanup() {
	for id in $("$rt" --root "$root" list -q 2>/dev/null); do "$rt" --root "$root" delete -f "$id" >/dev/null 2>&1 || true; done
	rm -rf "$w"
}
trap cleanup EXIT
cc -O2 -Wall -Wextra -o "$w/entrytrace" "$repo/bench/entrytrace.c"
python3 "$here/link-order.py" entries "$rt.map" > "$w/entries"

"$here"/mk-rootfs.sh "$w/rootfs" >/dev/null
(cd "$w" && "$rt" spec)
python3 - "$w" "$cg" "$repo/runtime-tools-tests/upstream/default-config.json" <<'PY'
import json, os, sys
w, cg, upstream = sys.argv[1:4]
base = json.load(open(os.path.join(w, "config.json")))
def bundle(name, args, cgroup, seccomp=None):
    c = json.loads(json.dumps(base))
    c["root"]["path"] = os.path.join(w, "rootfs")
    c["process"]["args"] = args
    c["process"]["terminal"] = False
    c["linux"]["cgroupsPath"] = "/" + cgroup
    if seccomp:
        c["linux"]["seccomp"] = seccomp
    os.makedirs(os.path.join(w, name), exist_ok=True)
    json.dump(c, open(os.path.join(w, name, "config.json"), "w"))
bundle("true", ["/bin/true"], cg)
bundle("sleep", ["/bin/sleep", "1000"], cg + "-sleep")
bundle("seccomp", ["/bin/true"], cg + "-sec", json.load(open(upstream))["linux"]["seccomp"])
PY

# The lifecycle the benchmarks and the callers (containerd's shim, conmon)
# drive. The one-process commands first (state, start, kill, delete, each
# its own exec of the binary, several per container): their functions come
# first, together, so that each of them runs in as few of the kernel's
# 64 KiB fault-around windows as it can; `run` and `create`, which run
# nearly all of the front anyway, next. (The containers they act on are
# made untraced.)
r() { timeout 60 "$w/entrytrace" "$w/entries" "$w/hits" -- "$rt" --root "$root" "$@"; }
stopped() { for _ in $(seq 100); do "$rt" --root "$root" state "$1" | grep -q '"stopped"' && break; sleep 0.05; done; }
"$rt" --root "$root" create --bundle "$w/true" c0 </dev/null >/dev/null 2>&1
r state c0 >/dev/null
r start c0
stopped c0
r delete c0
"$rt" --root "$root" create --bundle "$w/sleep" k0 </dev/null >/dev/null 2>&1
r kill k0 KILL
stopped k0
r delete k0
r run --bundle "$w/true" t1 >/dev/null
r create --bundle "$w/true" c1
r state c1 >/dev/null
r start c1
stopped c1
r list >/dev/null
r list -q >/dev/null
r delete c1
r run --bundle "$w/seccomp" s1 >/dev/null
r run -d --bundle "$w/sleep" d1 </dev/null >/dev/null
r exec d1 /bin/true
r ps d1 >/dev/null
r pause d1
r resume d1
r kill d1 KILL
r delete -f d1
[ -s "$w/hits" ] || die "the trace recorded nothing"

if [ "$check" = 1 ]; then
	python3 "$here/link-order.py" check "$rt.map" "$list" "$w/hits"
else
	python3 "$here/link-order.py" order "$rt.map" "$w/hits" > "$list"
	echo "link-order: wrote $list; rebuild with just release (or release-glibc)"
fi
