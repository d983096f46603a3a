#!/usr/bin/env bash
# bench.sh — side-by-side latency and memory benchmark of skiff, crun, runc
# (youki when installed) and the reference floor (bench/floor.c: the kernel
# work of the same container, no JSON, no runtime).
#
#   just bench                             # builds skiff + the floor, both runtime orders
#   scripts/bench.sh                       # every runtime found, forward order
#   RUNTIMES="skiff crun floor" ORDERS="forward reverse" scripts/bench.sh
#
# Every runtime runs the SAME bundle (busybox rootfs from scripts/mk-rootfs.sh,
# config.json from `$SPEC_FROM spec`: process /bin/true, terminal false,
# linux.cgroupsPath /skiff-bench-PID), each with its own --root.  Rows
# (docs/benchmarks.md, "Methodology", has the details of each):
#   run        RT run --bundle B ID                              (/bin/true)
#   create     RT create --bundle B ID; the delete -f of the previous one in --prepare
#   start      RT start ID; its create (and the previous delete) in --prepare
#   state      RT state ID of one created container (the only one in its root)
#   lifecycle  create + start + wait for the exit + delete       (/bin/true)
#   delete-f   delete -f of a running sleep 1000 (create + start in --prepare)
#   exec       RT exec ID /bin/true into one running sleep 1000
#   seq100     one command: 100 x (create + start + wait for exit + delete)
#   par20      one command: 20 `run`s launched at once, waiting for all
#   seccomp    `run` with the 434-rule profile (scripts/bench-seccomp-profile.py)
#   peak RSS   of `run` (GNU time %M)
#   USS        after `create` of USS_N containers: Private_Clean+Private_Dirty
#              (smaps_rollup) of every process in their cgroups and of any other
#              process of the runtime left running, divided by USS_N
# and a final table of issue 12's targets for skiff, met or missed per order.
#
# Environment:
#   RUNTIMES   subset of: skiff crun runc youki floor (default: skiff crun runc,
#              youki if in PATH, floor)
#   SKIFF, CRUN, RUNC, YOUKI   binaries (default: target/release/skiff, PATH)
#   FLOOR      the floor binary (default: target/bench/floor; `just bench` builds it:
#              cc -O2 -static bench/floor.c)
#   ORDERS     "forward", "reverse" or both ("forward reverse"): the whole
#              measurement once per order, the runtimes alternating in that
#              order (reverse = the list reversed); ORDER=... is the same
#   SPEC_FROM  runtime whose `spec` output is the base config (default: runc)
#   RUNS       timed iterations per runtime and row (default 100)
#   ROUNDS     RUNS is split into this many rounds; runtimes alternate per
#              round so background load is shared fairly (default 5)
#   WARMUP     warm-up iterations per runtime, row and round (default 2)
#   SEQ_RUNS   timed runs of the 100-container loop per round (default 2)
#   SEQ_ONCE   runtimes whose 100-container loop runs once per order, not per
#              round (default: runc, ~20 s a loop)
#   PAR_RUNS   timed runs of the 20-parallel row per round (default RUNS/ROUNDS/4, >= 2)
#   RSS_RUNS   iterations for the RSS measurement (default 20)
#   USS_N      containers created for the USS measurement (default 10)
#   CELL_TIMEOUT  seconds one hyperfine call may take before the runtime is
#              considered hung (default 120)
#   BENCH_MD   if set, the markdown report is also written to this file
#   STATE_FS   where the runtimes' --root directories live: "tmpfs" (default: a
#              tmpfs mounted for the run, as /run — every runtime's default root —
#              is on any systemd or Debian host) or "disk" (the same directory as
#              the bundles; on this project's VM the root ext4, mounted with
#              `discard`, where each unlink of a file with data issues a
#              synchronous discard)
#   SECCOMP    the linux.seccomp JSON of the seccomp row (default: written by
#              scripts/bench-seccomp-profile.py; 434 names, default SCMP_ACT_ERRNO)
#
# A missed target is a measurement, not a failure; a runtime that fails the
# sanity run or a timed row makes the script exit non-zero.
# Needs root, hyperfine, GNU time (/usr/bin/time, apt package `time`),
# python3 (with libseccomp.so.2 for the profile) and busybox-static.  Installs nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

die() { echo "bench.sh: $*" >&2; exit 1; }

# ---- run under a child subreaper (e2e/subreaper.py) ---------------------------
# Detached containers (create/start) are orphaned when the runtime exits and
# get reparented.  If nobody reaps them promptly, the runtimes' "is it dead
# yet" polling (kill(pid, 0)) measures the reaper, not the runtime (on some
# hosts PID 1 reaps only every second or so).  So the whole benchmark runs
# below a subreaper that reaps every orphan immediately (and kills and
# reports any process the clean-up missed).
# shellcheck source=bench-lib.sh
. "$here/bench-lib.sh"
under_subreaper "$0" "$@"

# ---- configuration and preflight -------------------------------------------
repo=$(cd "$here/.." && pwd)
SKIFF=${SKIFF:-$repo/target/release/skiff}
CRUN=${CRUN:-$(command -v crun || echo /usr/bin/crun)}
RUNC=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
YOUKI=${YOUKI:-$(command -v youki || echo /usr/bin/youki)}
FLOOR=${FLOOR:-$repo/target/bench/floor}
if [ -z "${RUNTIMES:-}" ]; then
	RUNTIMES="skiff crun runc"
	[ -x "$YOUKI" ] && RUNTIMES+=" youki"
	RUNTIMES+=" floor"
fi
ORDERS=${ORDERS:-${ORDER:-forward}}
SPEC_FROM=${SPEC_FROM:-runc}
RUNS=${RUNS:-100}
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-2}
SEQ_RUNS=${SEQ_RUNS:-2}
SEQ_ONCE=${SEQ_ONCE:-runc}
RSS_RUNS=${RSS_RUNS:-20}
USS_N=${USS_N:-10}
PAR_N=20
SEQ_N=100
CELL_TIMEOUT=${CELL_TIMEOUT:-120}
per_round=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
PAR_RUNS=${PAR_RUNS:-$(( per_round / 4 > 2 ? per_round / 4 : 2 ))}

[ "$(id -u)" = 0 ] || die "must run as root (runtimes need it for namespaces/cgroups)"
command -v hyperfine >/dev/null || die "hyperfine is not installed (apt-get install hyperfine)"
[ -x /usr/bin/time ] && /usr/bin/time -f %M true >/dev/null 2>&1 ||
	die "GNU time is not installed at /usr/bin/time (apt-get install time)"
for o in $ORDERS; do
	case $o in forward|reverse) ;; *) die "ORDERS: unknown order '$o' (expected forward and/or reverse)" ;; esac
done

bin_of() {
	case $1 in
		skiff) echo "$SKIFF" ;; crun) echo "$CRUN" ;; runc) echo "$RUNC" ;;
		youki) echo "$YOUKI" ;; floor) echo "$FLOOR" ;;
		*) die "unknown runtime '$1' in RUNTIMES (expected skiff, crun, runc, youki, floor)" ;;
	esac
}
for rt in $RUNTIMES; do
	b=$(bin_of "$rt")
	if [ ! -x "$b" ]; then
		case $rt in
			skiff) die "skiff release binary not found: $b (just release, or set SKIFF=..., or leave skiff out of RUNTIMES)" ;;
			floor) die "floor binary not found: $b (just bench builds it: cc -O2 -static -o $b bench/floor.c; or set FLOOR=..., or leave floor out of RUNTIMES)" ;;
			*) die "$rt not found: '$b' (install it or set ${rt^^}=/path, or leave it out of RUNTIMES)" ;;
		esac
	fi
done
spec_bin=$(bin_of "$SPEC_FROM")
[ "$SPEC_FROM" != floor ] && [ -x "$spec_bin" ] || die "SPEC_FROM=$SPEC_FROM: '$spec_bin' not usable"

W=$(mktemp -d /tmp/skiff-bench.XXXXXX)
CG=skiff-bench-$$
# The --root directories (state) of every runtime, the floor's too. Unmounted
# by remove_leftovers (bench-lib.sh) with everything else under $W.
STATE_FS=${STATE_FS:-tmpfs}
SR=$W/state
mkdir -p "$SR"
case $STATE_FS in
	tmpfs) mount -t tmpfs -o mode=0711,size=64m skiff-bench-state "$SR" || die "mounting a tmpfs for the state roots failed (STATE_FS=disk to keep them on disk)" ;;
	disk) ;;
	*) die "STATE_FS=$STATE_FS: tmpfs or disk" ;;
esac
# the containers of one root (the floor's root holds one state dir per container)
list_ids() { # runtime-name root
	if [ "$1" = floor ]; then
		[ -d "$2" ] && ls "$2"
	else
		timeout 10 "$(bin_of "$1")" --root "$2" list -q 2>/dev/null
	fi
}
del_f() { # runtime-name root id
	if [ "$1" = floor ]; then
		timeout 10 "$FLOOR" delete "$2/$3"
	else
		timeout 10 "$(bin_of "$1")" --root "$2" delete -f "$3"
	fi
}
# delete -f every container a runtime still lists in a root; kill leftovers if
# that hangs; print what was left
sweep() { # runtime-name [root]
	local root=${2:-$SR/root-$1} id left
	[ -d "$root" ] || return 0
	left=$(list_ids "$1" "$root" || true)
	[ -n "$left" ] || return 0
	for id in $left; do
		del_f "$1" "$root" "$id" >/dev/null 2>&1 && continue
		kill_cg
		sleep 0.2
		del_f "$1" "$root" "$id" >/dev/null 2>&1
	done
	echo "$left"
}
cleanup() {
	local rt r
	set +e
	for rt in $RUNTIMES; do
		for r in "$SR/root-$rt" "$SR/sroot-$rt" "$SR/xroot-$rt" "$SR/uroot-$rt"; do sweep "$rt" "$r" >/dev/null; done
	done
	remove_leftovers
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- bundles -------------------------------------------------------------------
# One rootfs; one bundle directory per config variant (root.path absolute):
#   B      /bin/true, cgroup /CG               BSLEEP  sleep 1000, /CG
#   BSAN   sh -c 'exit 7', /CG                 BX      sleep 1000, /CG-exec
#   BST    /bin/true, /CG-state                BSEC    /bin/true + the seccomp profile, /CG
#   BP/i   /bin/true, /CG-p<i> (parallel)      BU/i    /bin/true, /CG-u<i> (USS)
ROOTFS=$W/rootfs
B=$W/bundle BSLEEP=$W/bundle-sleep BSAN=$W/bundle-sanity BX=$W/bundle-exec BST=$W/bundle-state BSEC=$W/bundle-seccomp
"$here"/mk-rootfs.sh "$ROOTFS" >/dev/null || die "mk-rootfs.sh failed"
mkdir -p "$W/spec"
(cd "$W/spec" && "$spec_bin" spec) || die "'$spec_bin spec' failed"
[ -s "$W/spec/config.json" ] || die "'$spec_bin spec' wrote no config.json"
if [ -n "${SECCOMP:-}" ]; then
	[ -r "$SECCOMP" ] || die "SECCOMP=$SECCOMP: not a readable file"
else
	SECCOMP=$W/seccomp-434.json
	python3 "$here"/bench-seccomp-profile.py >"$SECCOMP" || die "bench-seccomp-profile.py failed (needs libseccomp.so.2)"
fi
python3 - "$W" "$ROOTFS" "/$CG" "$SECCOMP" "$PAR_N" "$USS_N" <<'PY' || die "writing the bundles failed"
import json, os, sys
w, rootfs, cg, seccomp, par_n, uss_n = sys.argv[1:7]
base = json.load(open(os.path.join(w, "spec", "config.json")))
def bundle(d, args, cgroup, sec=False):
    c = json.loads(json.dumps(base))
    c["process"]["terminal"] = False
    c["process"]["args"] = args
    c["root"]["path"] = rootfs
    # every runtime does the same cgroup work (create, join, remove)
    c.setdefault("linux", {})["cgroupsPath"] = cgroup
    if sec:
        c["linux"]["seccomp"] = json.load(open(seccomp))
    os.makedirs(os.path.join(w, d), exist_ok=True)
    json.dump(c, open(os.path.join(w, d, "config.json"), "w"), indent=2)
true = ["/bin/true"]
bundle("bundle", true, cg)
bundle("bundle-sleep", ["/bin/sleep", "1000"], cg)
bundle("bundle-sanity", ["/bin/sh", "-c", "exit 7"], cg)
bundle("bundle-exec", ["/bin/sleep", "1000"], cg + "-exec")
bundle("bundle-state", true, cg + "-state")
bundle("bundle-seccomp", true, cg, sec=True)
for i in range(1, int(par_n) + 1):
    bundle(f"bp/{i}", true, f"{cg}-p{i}")
for i in range(1, int(uss_n) + 1):
    bundle(f"bu/{i}", true, f"{cg}-u{i}")
PY

# ---- sanity: each runtime must really run a container ------------------------
# (`sh -c 'exit 7'` must come back as exit status 7, so a runtime that exits 0
# without doing anything is caught before it gets timed; the floor too)
ok_rts=
failed_rts=
bad=0
for rt in $RUNTIMES; do
	b=$(bin_of "$rt")
	mkdir -p "$SR/root-$rt" "$SR/sroot-$rt" "$SR/xroot-$rt" "$SR/uroot-$rt"
	rc=0
	if [ "$rt" = floor ]; then
		cmd=("$b" run "/$CG" "$ROOTFS" /bin/sh -c 'exit 7')
	else
		cmd=("$b" --root "$SR/root-$rt" run --bundle "$BSAN" "sanity-$rt")
	fi
	out=$(timeout 30 "${cmd[@]}" 2>&1) || rc=$?
	if [ "$rc" = 7 ]; then
		ok_rts+=" $rt"
	else
		echo "bench.sh: $rt failed the sanity run (exit $rc, expected 7): ${cmd[*]}" >&2
		printf '%s\n' "${out:-(no output)}" | sed 's/^/    | /' >&2
		failed_rts+=" $rt"
		case $out in *"hybrid mode not supported"*)
			echo "    hint: mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb" >&2 ;;
		esac
		[ "$rt" = floor ] || timeout 10 "$b" --root "$SR/root-$rt" delete -f "sanity-$rt" >/dev/null 2>&1 || true
		bad=1
	fi
done
[ -n "$ok_rts" ] || die "no runtime could run the bundle"
[ "$bad" = 0 ] || echo "bench.sh: continuing with:$ok_rts (the run will exit non-zero)" >&2

# ---- the commands of each row, per runtime -------------------------------------
# hyperfine runs each command through `sh -c` (its spawn cost is measured and
# subtracted); $$ of that shell gives a fresh container id where one is needed.
# The floor's "root" is a directory of state dirs: ID = $FR/name.
# a shell snippet that waits (builtins only) until the process whose pid is
# the first word of file $1 has exited
waitexit() {
	echo "{ read p _ < $1 || [ -n \"\$p\" ]; } && while [ -e /proc/\$p ] && read -r _ _ s _ < /proc/\$p/stat && [ \"\$s\" != Z ]; do :; done"
}
setup_cmds() { # runtime-name: sets the cmd_* variables
	local rt=$1 b
	b=$(bin_of "$rt")
	if [ "$rt" = floor ]; then
		local F=$b FR=$SR/root-floor
		cmd_run="$F run /$CG $ROOTFS"
		prep_create="[ ! -d $FR/cr ] || $F delete $FR/cr"
		cmd_create="$F create $FR/cr /$CG $ROOTFS"
		prep_start="{ [ ! -d $FR/st ] || $F delete $FR/st; } && $F create $FR/st /$CG $ROOTFS"
		cmd_start="$F start $FR/st"
		clean_rows="for d in cr st; do [ ! -d $FR/\$d ] || $F delete $FR/\$d; done"
		mk_state="$F create $SR/sroot-floor/sq /$CG-state $ROOTFS"
		cmd_state="$F state $SR/sroot-floor/sq"
		cmd_lifecycle="$F create $FR/l\$\$ /$CG $ROOTFS && $F start $FR/l\$\$ && $(waitexit "$FR/l\$\$/state") && $F delete $FR/l\$\$"
		prep_deletef="$F create $FR/df /$CG $ROOTFS /bin/sleep 1000 && $F start $FR/df"
		cmd_deletef="$F delete $FR/df"
		mk_exec="$F create $SR/xroot-floor/x-floor /$CG-exec $ROOTFS /bin/sleep 1000 && $F start $SR/xroot-floor/x-floor"
		cmd_exec="$F exec $SR/xroot-floor/x-floor"
		cmd_seccomp=
		one_seq="$F create $FR/q\$\$-\$i /$CG $ROOTFS && $F start $FR/q\$\$-\$i && $(waitexit "$FR/q\$\$-\$i/state") && $F delete $FR/q\$\$-\$i"
		one_par="$F run /$CG-p\$i $ROOTFS"
		one_uss="$F create $SR/uroot-floor/u\$i /$CG-u\$i $ROOTFS"
		cmd_rss="$F run /$CG $ROOTFS"
	else
		local R="$b --root $SR/root-$rt"
		cmd_run="$R run --bundle $B r\$\$"
		prep_create="$R delete -f cr >/dev/null 2>&1; true"
		cmd_create="$R create --bundle $B cr"
		prep_start="$R delete -f st >/dev/null 2>&1; $R create --bundle $B st"
		cmd_start="$R start st"
		clean_rows="$R delete -f cr >/dev/null 2>&1; $R delete -f st >/dev/null 2>&1; true"
		mk_state="$b --root $SR/sroot-$rt create --bundle $BST sq"
		cmd_state="$b --root $SR/sroot-$rt state sq"
		cmd_lifecycle="$R create --bundle $B --pid-file $W/pid-\$\$ l\$\$ && $R start l\$\$ && $(waitexit "$W/pid-\$\$") && $R delete l\$\$ && rm -f $W/pid-\$\$"
		prep_deletef="$R create --bundle $BSLEEP df && $R start df"
		cmd_deletef="$R delete -f df"
		mk_exec="$b --root $SR/xroot-$rt run -d --bundle $BX x-$rt </dev/null >/dev/null 2>&1"
		cmd_exec="$b --root $SR/xroot-$rt exec x-$rt /bin/true"
		cmd_seccomp="$R run --bundle $BSEC s\$\$"
		one_seq="$R create --bundle $B --pid-file $W/qpid-\$\$ q\$\$-\$i && $R start q\$\$-\$i && $(waitexit "$W/qpid-\$\$") && $R delete q\$\$-\$i"
		one_par="$R run --bundle $W/bp/\$i p\$\$-\$i"
		one_uss="$b --root $SR/uroot-$rt create --bundle $W/bu/\$i u\$i"
		cmd_rss="$R run --bundle $B"
	fi
	# the --prepare steps of the rows timed without a shell (hyperfine -N)
	local k v
	for k in create start deletef; do
		v=prep_$k
		printf '%s\n' "${!v}" >"$W/prep-$k-$rt.sh"
	done
	# the loops of the seq100 and par20 rows, as scripts (one timed command each)
	cat >"$W/seq-$rt.sh" <<SH
i=0
while [ \$i -lt $SEQ_N ]; do
	$one_seq || { echo "seq100: iteration \$i failed" >&2; exit 1; }
	i=\$((i + 1))
done
SH
	cat >"$W/par-$rt.sh" <<SH
i=1; pids=
while [ \$i -le $PAR_N ]; do
	$one_par >/dev/null 2>&1 &
	pids="\$pids \$!"
	i=\$((i + 1))
done
rc=0
for p in \$pids; do wait \$p || rc=1; done
exit \$rc
SH
}

# hf NAME JSON RUNS WARMUP [-N] HYPERFINE-ARGS...: one cell; -N = no shell
# (for plain commands: no spawn of sh to subtract, which matters below 1 ms)
hf() {
	local name=$1 out=$2 runs=$3 warm=$4 sh=(--shell sh)
	shift 4
	if [ "${1:-}" = -N ]; then sh=(-N); shift; fi
	echo "== $name"
	local rc=0
	timeout -k 5 "$CELL_TIMEOUT" hyperfine "${sh[@]}" --style none --runs "$runs" --warmup "$warm" \
		--export-json "$out" "$@" >"$W/hf.log" 2>&1 || rc=$?
	# hyperfine's warnings (commands under 5 ms, outliers, a slow first run)
	# are noise here: the tables give min, max and σ
	grep -v -e 'Warning:' -e 'shell startup time much more precise' -e '^ *$' "$W/hf.log" || true
	if [ "$rc" != 0 ]; then
		rm -f "$out"
		if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
			echo "bench.sh: FAILED: $name: no result after ${CELL_TIMEOUT}s (runtime hung?), skipping this row for it" >&2
		else
			echo "bench.sh: FAILED: $name (hyperfine hides the runtime's output; run the command by hand)" >&2
		fi
		bad=1
		return 1
	fi
}

# ---- USS of created containers ------------------------------------------------------
# After `create` of USS_N containers (each in a cgroup of its own), sum
# Private_Clean + Private_Dirty (smaps_rollup) of every process in their
# cgroups, plus every other process running the runtime's binary (a monitor
# or helper a runtime leaves behind); divided by USS_N.
uss() { # runtime-name out-file
	local rt=$1 out=$2 i b
	b=$(readlink -f "$(bin_of "$rt")")
	setup_cmds "$rt"
	for i in $(seq "$USS_N"); do
		if ! timeout 30 sh -c "i=$i; $one_uss" </dev/null >/dev/null 2>&1; then
			echo "bench.sh: $rt: create failed during the USS measurement" >&2
			bad=1
			sweep "$rt" "$SR/uroot-$rt" >/dev/null
			return 0
		fi
	done
	python3 - "$CG" "$USS_N" "$b" $$ >"$out" <<'PY' || { echo "bench.sh: $rt: USS measurement failed" >&2; bad=1; }
import glob, os, sys
cg, n, binary, me = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
pids = set()
for i in range(1, n + 1):
    # any one hierarchy holds every process of the container (pids on v1, the v2 dir)
    for d in (f"/sys/fs/cgroup/pids/{cg}-u{i}", f"/sys/fs/cgroup/{cg}-u{i}", f"/sys/fs/cgroup/unified/{cg}-u{i}"):
        if os.path.exists(d + "/cgroup.procs"):
            pids |= {int(p) for p in open(d + "/cgroup.procs").read().split()}
            break
    else:
        sys.exit(f"no cgroup for container u{i}")
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            if os.readlink(f"/proc/{p}/exe") == binary:
                pids.add(int(p))
        except OSError:
            pass
total = 0
for p in pids:
    try:
        for line in open(f"/proc/{p}/smaps_rollup"):
            k, v = line.split(":", 1) if ":" in line else (None, None)
            if k in ("Private_Clean", "Private_Dirty"):
                total += int(v.split()[0])
    except OSError:
        pass
print(total / n, len(pids) / n)
PY
	sweep "$rt" "$SR/uroot-$rt" >/dev/null
}

# ---- one measurement, the runtimes alternating in one order ---------------------------
measure() { # order runtimes...
	local order=$1 rt b round tag left i
	shift
	local rts="$*" O=$W/$order
	mkdir -p "$O"
	declare -A broken=()
	echo "=== order $order:" $rts
	echo "$(cut -d' ' -f1-3 /proc/loadavg)" >"$O/load-start"
	# the container `exec` enters, one per runtime, outside the swept roots
	for rt in $rts; do
		setup_cmds "$rt"
		timeout 30 sh -c "$mk_exec" </dev/null >/dev/null 2>&1 ||
			{ echo "bench.sh: $rt could not start the container for exec" >&2; broken[exec-$rt]=1; bad=1; }
	done
	for round in $(seq "$ROUNDS"); do
		for rt in $rts; do
			setup_cmds "$rt"
			tag="$order, round $round/$ROUNDS, $rt"
			row() { # key title runs warmup hyperfine-args...
				local key=$1 title=$2 runs=$3 warm=$4
				shift 4
				[ -z "${broken[$key-$rt]:-}" ] || return 0
				hf "$title ($tag)" "$O/$key-$rt-$round.json" "$runs" "$warm" "$@" ||
					{ broken[$key-$rt]=1; : >"$O/failed-$key-$rt"; }
			}
			row run run "$per_round" "$WARMUP" "$cmd_run"
			row create create "$per_round" "$WARMUP" -N --prepare "sh $W/prep-create-$rt.sh" "$cmd_create"
			# (the rows share the cgroup /CG: one container in it at a time)
			timeout 30 sh -c "$clean_rows" </dev/null >/dev/null 2>&1 ||
				{ echo "bench.sh: $rt: deleting the create row's container failed" >&2; bad=1; }
			row start start "$per_round" "$WARMUP" -N --prepare "sh $W/prep-start-$rt.sh" "$cmd_start"
			timeout 30 sh -c "$clean_rows" </dev/null >/dev/null 2>&1 ||
				{ echo "bench.sh: $rt: deleting the create/start rows' containers failed" >&2; bad=1; }
			if [ -z "${broken[state-$rt]:-}" ]; then
				if timeout 30 sh -c "$mk_state" </dev/null >/dev/null 2>&1; then
					row state state "$per_round" "$WARMUP" -N "$cmd_state"
				else
					echo "bench.sh: $rt could not create the container for state" >&2
					broken[state-$rt]=1
					bad=1
				fi
				sweep "$rt" "$SR/sroot-$rt" >/dev/null
			fi
			row lifecycle lifecycle "$per_round" "$WARMUP" "$cmd_lifecycle"
			row deletef "delete -f" "$per_round" "$WARMUP" -N --prepare "sh $W/prep-deletef-$rt.sh" "$cmd_deletef"
			row exec exec "$per_round" "$WARMUP" -N "$cmd_exec"
			[ -z "$cmd_seccomp" ] || row seccomp "run with seccomp" "$per_round" "$WARMUP" "$cmd_seccomp"
			# runc takes ~20 s for the 100: once per order (SEQ_ONCE), not per round
			case " $SEQ_ONCE " in
				*" $rt "*) [ "$round" != 1 ] || row seq100 "$SEQ_N sequential" 1 0 "sh $W/seq-$rt.sh" ;;
				*) row seq100 "$SEQ_N sequential" "$SEQ_RUNS" 0 "sh $W/seq-$rt.sh" ;;
			esac
			row par20 "$PAR_N parallel" "$PAR_RUNS" 1 "sh $W/par-$rt.sh"
			left=$(sweep "$rt")
			if [ -n "$left" ]; then
				echo "bench.sh: $rt left containers behind:" $left >&2
				bad=1
			fi
		done
	done
	echo "$(cut -d' ' -f1-3 /proc/loadavg)" >"$O/load-end"
	for rt in $rts; do
		sweep "$rt" "$SR/xroot-$rt" >/dev/null
		# peak RSS of `run`
		setup_cmds "$rt"
		: >"$O/rss-$rt"
		for i in $(seq "$RSS_RUNS"); do
			# shellcheck disable=SC2086 # the command is a word list
			timeout -k 5 60 /usr/bin/time -o "$W/rss-one" -f %M $cmd_rss $([ "$rt" = floor ] || echo "m$i-$$") >/dev/null 2>&1 ||
				{ echo "bench.sh: $rt run failed during the RSS measurement" >&2; bad=1; }
			tail -n1 "$W/rss-one" >>"$O/rss-$rt"
		done
		uss "$rt" "$O/uss-$rt"
	done
}

list_rev() { local out= x; for x in "$@"; do out="$x $out"; done; echo $out; }
for order in $ORDERS; do
	# shellcheck disable=SC2086
	if [ "$order" = forward ]; then measure forward $ok_rts; else measure reverse $(list_rev $ok_rts); fi
done

# ---- report ------------------------------------------------------------------------
for rt in $ok_rts; do
	b=$(readlink -f "$(bin_of "$rt")")
	echo $(( $(stat -c %s "$b") / 1024 )) >"$W/size-$rt"
done
report=$W/report.md
{
	echo "## Results $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
	echo "- kernel: $(uname -sr), cgroup: $(if [ -d /sys/fs/cgroup/unified ]; then echo 'v1 hybrid'; elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo v2; else echo v1; fi)"
	for rt in $ok_rts; do
		b=$(bin_of "$rt")
		if [ "$rt" = floor ]; then
			echo "- floor: \`$b\` — bench/floor.c"
		else
			echo "- $rt: \`$b\` — $("$b" --version 2>/dev/null | head -n1)"
		fi
	done
	for order in $ORDERS; do
		echo "- load average (1/5/15 min), $order order: before $(cat "$W/$order/load-start"), after $(cat "$W/$order/load-end")"
	done
	[ -z "$failed_rts" ] || echo "- NOT measured (failed the sanity run):$failed_rts"
	echo "- state roots (--root): $STATE_FS ($(findmnt -no FSTYPE,OPTIONS -T "$SR" 2>/dev/null | tr -s ' ' ' '))"
	echo "- bundle config: \`$SPEC_FROM spec\`, process /bin/true, terminal false, cgroupsPath /$CG; seccomp row: \`$(basename "$SECCOMP")\`"
	echo
} >"$report"
python3 - "$W" "$RUNS" "$WARMUP" "$RSS_RUNS" "$ROUNDS" "$USS_N" "$SEQ_RUNS" "$PAR_RUNS" "$ORDERS" $ok_rts >>"$report" <<'PY'
import json, os, statistics, sys
w, runs, warmup, rss_runs, rounds, uss_n, seq_runs, par_runs, orders = sys.argv[1:10]
rts = sys.argv[10:]
orders = orders.split()
rounds = int(rounds)
scen = [("run", "`run` of /bin/true", 1e3, "ms"),
        ("create", "`create` alone (delete -f of the previous one in --prepare)", 1e3, "ms"),
        ("start", "`start` alone (its create in --prepare)", 1e3, "ms"),
        ("state", "`state` of a created container", 1e3, "ms"),
        ("lifecycle", "create + start + wait + delete of /bin/true", 1e3, "ms"),
        ("deletef", "`delete -f` of a running container (sleep 1000)", 1e3, "ms"),
        ("exec", "`exec` of /bin/true into a running container", 1e3, "ms"),
        ("seq100", "100 sequential create + start + wait + delete (one command)", 1, "s"),
        ("par20", "20 `run`s in parallel, waiting for all (one command)", 1e3, "ms"),
        ("seccomp", "`run` with the 434-rule seccomp profile", 1e3, "ms")]
def res(order, s, rt):
    """merge the per-round hyperfine results of one cell; None if it failed"""
    times = []
    if os.path.exists(os.path.join(w, order, f"failed-{s}-{rt}")):
        return None
    for r in range(1, rounds + 1):
        try:
            times += json.load(open(os.path.join(w, order, f"{s}-{rt}-{r}.json")))["results"][0]["times"]
        except FileNotFoundError:
            pass  # a row measured only once per order (SEQ_ONCE)
    if not times:
        return None
    return {"median": statistics.median(times), "mean": statistics.mean(times),
            "stddev": statistics.stdev(times) if len(times) > 1 else 0.0,
            "min": min(times), "max": max(times), "n": len(times)}
def rss(order, rt):
    try:
        v = [int(x) for x in open(os.path.join(w, order, f"rss-{rt}")).read().split() if x.strip().isdigit()]
    except FileNotFoundError:
        v = []
    return v
def uss(order, rt):
    try:
        a, b = open(os.path.join(w, order, f"uss-{rt}")).read().split()
        return float(a), float(b)
    except (FileNotFoundError, ValueError):
        return None
def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "n/a"
out = []
got = {}
for order in orders:
    o = rts if order == "forward" else rts[::-1]
    out.append(f"### {order.capitalize()} order ({', '.join(o)})\n")
    for s, title, scale, unit in scen:
        out.append(f"#### {title}\n")
        extra = " | seccomp / plain run" if s == "seccomp" else ""
        out.append(f"| runtime | median {unit} | mean ± σ {unit} | min {unit} | max {unit} | n | vs crun | vs floor{extra} |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if extra else ""))
        c, f = res(order, s, "crun"), res(order, s, "floor")
        for rt in o:
            r = res(order, s, rt)
            got[(order, s, rt)] = r["median"] if r else None
            if rt == "floor" and s == "seccomp":
                continue
            if r is None:
                out.append(f"| {rt} | FAILED | | | | | | |" + (" |" if extra else ""))
                continue
            fmt = (lambda x: f"{x * scale:.3f}") if unit == "s" else (lambda x: f"{x * scale:.2f}")
            e = ""
            if extra:
                p = res(order, "run", rt)
                e = f" {ratio(r['median'], p['median'] if p else None)} |"
            out.append(f"| {rt} | {fmt(r['median'])} | {fmt(r['mean'])} ± {fmt(r['stddev'])} | {fmt(r['min'])} "
                       f"| {fmt(r['max'])} | {r['n']} | {ratio(r['median'], c['median'] if c else None)} "
                       f"| {ratio(r['median'], f['median'] if f else None)} |{e}")
        out.append("")
    out.append(f"#### Peak RSS of `run` (GNU time %M, {rss_runs} runs) and USS per created container ({uss_n} created)\n")
    out.append("| runtime | RSS max KiB | RSS median KiB | RSS vs crun | RSS vs floor | USS KiB per container | processes per container | USS vs crun | USS vs floor | binary KiB |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    med = {rt: (statistics.median(rss(order, rt)) if rss(order, rt) else None) for rt in o}
    us = {rt: uss(order, rt) for rt in o}
    for rt in o:
        v = rss(order, rt)
        size = open(os.path.join(w, f"size-{rt}")).read().strip()
        u = us[rt]
        got[(order, "rss", rt)] = med[rt]
        got[(order, "uss", rt)] = u[0] if u else None
        uc, uf = (us.get("crun") or (None,))[0], (us.get("floor") or (None,))[0]
        out.append(f"| {rt} | {max(v) if v else 'n/a'} | {int(med[rt]) if v else 'n/a'} | {ratio(med[rt], med.get('crun'))} "
                   f"| {ratio(med[rt], med.get('floor'))} | {f'{u[0]:.0f}' if u else 'n/a'} | {f'{u[1]:.1f}' if u else 'n/a'} "
                   f"| {ratio(u[0] if u else None, uc)} | {ratio(u[0] if u else None, uf)} | {size} |")
    out.append("")
n = rounds * -(-int(runs) // rounds)
out.append(f"hyperfine: {n} timed runs per cell in {rounds} interleaved rounds ({warmup} warm-up runs per round; "
           f"the 100-sequential row {seq_runs} and the 20-parallel row {par_runs} runs per round), shell spawn time subtracted.\n")
# ---- the targets of issue 12, for skiff
if "skiff" in rts:
    def g(order, s, rt="skiff"):
        return got.get((order, s, rt))
    def rel(order, s, other, limit):
        a, b = g(order, s), g(order, s, other)
        return (a / b if a is not None and b else None), limit, "×"
    targets = [
        ("`run` ≤ 0.6× crun", lambda o: rel(o, "run", "crun", 0.6)),
        ("`run` ≤ 1.3× floor", lambda o: rel(o, "run", "floor", 1.3)),
        ("`create` ≤ 1.2× floor", lambda o: rel(o, "create", "floor", 1.2)),
        ("`start` ≤ 1 ms", lambda o: ((g(o, "start") or 0) * 1e3 or None, 1.0, " ms")),
        ("`state` ≤ 1 ms", lambda o: ((g(o, "state") or 0) * 1e3 or None, 1.0, " ms")),
        ("`exec` ≤ 0.5× crun", lambda o: rel(o, "exec", "crun", 0.5)),
        ("100 sequential ≤ 0.7 s", lambda o: (g(o, "seq100"), 0.7, " s")),
        ("20 parallel ≤ 0.6× crun", lambda o: rel(o, "par20", "crun", 0.6)),
        ("seccomp `run` ≤ 1.5× plain `run`", lambda o: ((g(o, "seccomp") / g(o, "run")) if g(o, "seccomp") and g(o, "run") else None, 1.5, "×")),
        ("peak RSS ≤ 0.8× crun", lambda o: rel(o, "rss", "crun", 0.8)),
        ("USS per container ≤ 0.8× crun", lambda o: rel(o, "uss", "crun", 0.8)),
    ]
    out.append("### Targets (issue 12), skiff\n")
    out.append("| target | " + " | ".join(orders) + " |")
    out.append("|---|" + "---:|" * len(orders))
    for name, fn in targets:
        cells = []
        for o in orders:
            v, limit, unit = fn(o)
            if v is None:
                cells.append("n/a")
            else:
                cells.append(f"{v:.2f}{unit} {'met' if v <= limit else '**missed**'}")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out.append("")
print("\n".join(out))
PY
echo
cat "$report"
if [ -n "${BENCH_MD:-}" ]; then cp "$report" "$BENCH_MD"; echo "(report written to $BENCH_MD)"; fi
[ "$bad" = 0 ] || die "some runtime failed (see above)"
