#!/bin/sh
# Soak: N container lifecycles (create, start, exec, kill, delete; run with
# a terminal through `script`), then fails if anything grew meanwhile: the
# mounts below its directory or naming its containers, their cgroup directories, this script's open
# descriptors, its zombie children, the files under the state root.
#
#   scripts/soak.sh [N]          # default 50 (what `just test` runs)
#   N=1000 scripts/soak.sh       # by hand, the long one
#   SKIFF=/usr/sbin/runc scripts/soak.sh 20
#
# As root. SKIFF defaults to the debug build (target/debug/skiff).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-${N:-50}}
skiff=${SKIFF:-$here/target/debug/skiff}
[ "$(id -u)" = 0 ] || { echo "soak: needs root" >&2; exit 1; }
[ -x "$skiff" ] || { echo "soak: $skiff: not built (cargo build -p skiff)" >&2; exit 1; }
command -v script > /dev/null || { echo "soak: needs script(1) (util-linux)" >&2; exit 1; }

work=$(mktemp -d /tmp/skiff-soak.XXXXXX)
root=$work/state
prefix=soak-$$
cleanup() {
    for d in "$root"/"$prefix"-*; do
        [ -d "$d" ] && "$skiff" --root "$root" delete --force "$(basename "$d")" > /dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

sh "$here/scripts/mk-rootfs.sh" "$work/bundle/rootfs" > /dev/null
mkdir -p "$work/bundle/tty"
# The config: `skiff spec` with the process waiting until it is told to stop.
(cd "$work/bundle" && "$skiff" spec)
python3 - "$work/bundle/config.json" "$prefix" << 'EOF'
import json, sys
path, prefix = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
c["linux"]["cgroupsPath"] = "/" + prefix
json.dump(c, open(path, "w"))
tty = dict(c, process=dict(c["process"], terminal=True, args=["sh", "-c", "tty && echo soak-tty-ok"]),
           root=dict(c["root"], path=path.replace("config.json", "rootfs")))
json.dump(tty, open(path.replace("config.json", "tty/config.json"), "w"))
EOF

# Only what is ours: other users of the host mount and make cgroups too.
mounts() { grep -c -e "$work" -e "$prefix" /proc/self/mountinfo || true; }
cgroups() { find /sys/fs/cgroup -maxdepth 3 -type d -name "$prefix*" 2> /dev/null | wc -l; }
fds() { ls /proc/$$/fd | wc -l; }
zombies() { ps -o stat= --ppid $$ 2> /dev/null | grep -c '^Z' || true; }
files() { find "$root" 2> /dev/null | grep -v ':seccomp-cache' | wc -l; }
counts() { echo "mounts=$(mounts) cgroup_dirs=$(cgroups) fds=$(fds) zombies=$(zombies) root_files=$(files)"; }

one() {
    id=$prefix-$1
    "$skiff" --root "$root" create --bundle "$work/bundle" "$id" > /dev/null
    "$skiff" --root "$root" start "$id"
    "$skiff" --root "$root" exec "$id" true
    "$skiff" --root "$root" kill "$id" TERM
    i=0
    until "$skiff" --root "$root" state "$id" | grep -q '"stopped"'; do
        i=$((i + 1)); [ $i -lt 250 ] || { echo "soak: $id did not stop" >&2; return 1; }
        sleep 0.02
    done
    "$skiff" --root "$root" delete "$id"
    # run in the foreground with a terminal: script(1) gives it one.
    out=$(cd "$work/bundle" && script -qec "$skiff --root $root run --bundle $work/bundle/tty $id-tty" /dev/null < /dev/null)
    case $out in *soak-tty-ok*) ;; *) echo "soak: run with a terminal printed: $out" >&2; return 1 ;; esac
}

one warm-up  # the seccomp cache and the root itself are made once
before=$(counts)
start=$(date +%s)
k=1
while [ $k -le "$n" ]; do
    one "$k"
    k=$((k + 1))
done
after=$(counts)
echo "soak: $n lifecycles in $(( $(date +%s) - start )) s"
echo "  before: $before"
echo "  after:  $after"
grown=""
for kv in $before; do
    key=${kv%%=*}
    b=${kv#*=}
    a=$(echo "$after" | tr ' ' '\n' | sed -n "s/^$key=//p")
    [ "$a" -le "$b" ] || grown="$grown $key($b -> $a)"
done
if [ -n "$grown" ]; then
    echo "soak: FAILED, grew:$grown" >&2
    exit 1
fi
echo "soak: ok, nothing grew"
