#!/usr/bin/env bash
# bench.sh — side-by-side latency and memory benchmark of skiff, crun and runc.
#
#   scripts/bench.sh                       # all three runtimes (skiff = release build)
#   RUNTIMES="crun runc" scripts/bench.sh  # a subset
#
# Scenarios, every runtime on the SAME bundle (busybox rootfs from
# scripts/mk-rootfs.sh, config.json from `$SPEC_FROM spec` edited), each
# runtime with its own --root, a fresh container id per iteration:
#   run        RUNTIME run --bundle B ID                  (process: /bin/true)
#   lifecycle  create + start + wait for exit + delete    (process: /bin/true)
#   delete-f   delete -f of a running container           (process: sleep 1000;
#              create+start happen in hyperfine's --prepare, untimed)
#   exec       RUNTIME exec ID /bin/true into one running container (sleep 1000,
#              started before the timed rounds, in a root of its own)
# plus the peak RSS of `RUNTIME run` (GNU time %M: max RSS of the runtime
# process and the children it reaped, i.e. its init/exec helper too).
#
# Environment:
#   RUNTIMES   space-separated subset of: skiff crun runc (default: all three)
#   SKIFF      skiff binary   (default: target/release/skiff of this checkout)
#   CRUN       crun binary    (default: crun in PATH)
#   RUNC       runc binary    (default: runc in PATH)
#   SPEC_FROM  runtime whose `spec` output is the base config (default: runc,
#              the CLI contract's reference; must be one of the three names)
#   RUNS       timed iterations per runtime and scenario (default 100)
#   ROUNDS     RUNS is split into this many rounds; runtimes alternate per
#              round so background load is shared fairly (default 5)
#   WARMUP     warm-up iterations per runtime, scenario and round (default 2)
#   RSS_RUNS   iterations for the RSS measurement (default 20)
#   CELL_TIMEOUT  seconds one hyperfine call (runtime x scenario x round) may
#              take before the runtime is considered hung (default 120)
#   BENCH_MD   if set, the markdown report is also written to this file
#   SECCOMP    if set, a JSON file holding a linux.seccomp object added to
#              every config (scripts/bench-seccomp-profile.py writes a
#              Docker-sized one: 434 names, default SCMP_ACT_ERRNO)
#
# Needs root, hyperfine, GNU time (/usr/bin/time, apt package `time`),
# python3 and busybox-static.  Installs nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

die() { echo "bench.sh: $*" >&2; exit 1; }

# ---- run under a child subreaper -------------------------------------------
# Detached containers (create/start) are orphaned when the runtime exits and
# get reparented.  If nobody reaps them promptly, the runtimes' "is it dead
# yet" polling (kill(pid, 0)) measures the reaper, not the runtime (on some
# hosts PID 1 reaps only every second or so).  So the whole benchmark runs
# below a tiny subreaper that reaps every orphan immediately.
if [ -z "${_BENCH_UNDER_REAPER:-}" ]; then
	command -v python3 >/dev/null || die "python3 is required"
	export _BENCH_UNDER_REAPER=1
	exec python3 - "$0" "$@" <<'PY'
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_CHILD_SUBREAPER = 36
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("bench.sh: prctl(PR_SET_CHILD_SUBREAPER) failed")
script = sys.argv[1]
pid = os.fork()
if pid == 0:
    os.execv("/bin/bash", ["bash", script] + sys.argv[2:])
def fwd(signum, frame):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, fwd)
rc = 1
while True:
    try:
        p, st = os.wait()
    except ChildProcessError:
        break
    if p == pid:
        rc = os.waitstatus_to_exitcode(st)
        rc = 128 - rc if rc < 0 else rc
        break
sys.exit(rc)
PY
fi

# ---- configuration and preflight -------------------------------------------
RUNTIMES=${RUNTIMES:-skiff crun runc}
SKIFF=${SKIFF:-$(cd "$here/.." && pwd)/target/release/skiff}
CRUN=${CRUN:-$(command -v crun || echo /usr/bin/crun)}
RUNC=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
SPEC_FROM=${SPEC_FROM:-runc}
RUNS=${RUNS:-100}
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-2}
RSS_RUNS=${RSS_RUNS:-20}
CELL_TIMEOUT=${CELL_TIMEOUT:-120}

[ "$(id -u)" = 0 ] || die "must run as root (runtimes need it for namespaces/cgroups)"
command -v hyperfine >/dev/null || die "hyperfine is not installed (apt-get install hyperfine)"
[ -x /usr/bin/time ] && /usr/bin/time -f %M true >/dev/null 2>&1 ||
	die "GNU time is not installed at /usr/bin/time (apt-get install time)"

bin_of() {
	case $1 in
		skiff) echo "$SKIFF" ;; crun) echo "$CRUN" ;; runc) echo "$RUNC" ;;
		*) die "unknown runtime '$1' in RUNTIMES (expected skiff, crun, runc)" ;;
	esac
}
for rt in $RUNTIMES; do
	b=$(bin_of "$rt")
	if [ ! -x "$b" ]; then
		case $rt in
			skiff) die "skiff release binary not found: $b (cargo build --release -p skiff, or set SKIFF=..., or RUNTIMES=\"crun runc\")" ;;
			*) die "$rt not found: '$b' (install it or set ${rt^^}=/path, or leave it out of RUNTIMES)" ;;
		esac
	fi
done
case " $RUNTIMES " in *" crun "*) have_crun=1 ;; *) have_crun=0 ;; esac
spec_bin=$(bin_of "$SPEC_FROM")
[ -x "$spec_bin" ] || die "SPEC_FROM=$SPEC_FROM: '$spec_bin' not executable"

W=$(mktemp -d /tmp/skiff-bench.XXXXXX)
CG=skiff-bench-$$
# last resort for a hung runtime: SIGKILL whatever sits in the benchmark's cgroup
kill_cg() {
	local f p
	for f in $(find /sys/fs/cgroup -path "*/$CG*" -name cgroup.procs 2>/dev/null); do
		while read -r p; do kill -KILL "$p" 2>/dev/null; done <"$f"
	done
	return 0
}
# delete -f every container a runtime still lists; kill leftovers if that hangs
sweep() { # runtime-name
	local b id left
	b=$(bin_of "$1")
	[ -d "$W/root-$1" ] || return 0
	left=$(timeout 10 "$b" --root "$W/root-$1" list -q 2>/dev/null)
	[ -n "$left" ] || return 0
	for id in $left; do
		timeout 10 "$b" --root "$W/root-$1" delete -f "$id" >/dev/null 2>&1 && continue
		kill_cg
		sleep 0.2
		timeout 10 "$b" --root "$W/root-$1" delete -f "$id" >/dev/null 2>&1
	done
	echo "$left"
}
cleanup() {
	local rt
	set +e
	for rt in $RUNTIMES; do
		sweep "$rt" >/dev/null
		[ -d "$W/xroot-$rt" ] && timeout 10 "$(bin_of "$rt")" --root "$W/xroot-$rt" delete -f "x-$rt" >/dev/null 2>&1
	done
	kill_cg
	sleep 0.2
	find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -depth -type d -path "*/$CG*" -exec rmdir {} + 2>/dev/null
	grep -q " $W" /proc/self/mountinfo && awk -v t="$W" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- bundle ------------------------------------------------------------------
B=$W/bundle            # /bin/true
B2=$W/bundle-sleep     # sleep 1000, same rootfs
B3=$W/bundle-sanity    # sh -c 'exit 7', same rootfs
B4=$W/bundle-exec      # sleep 1000 in a cgroup of its own (the others share one)
mkdir -p "$B" "$B2" "$B3" "$B4"
"$here"/mk-rootfs.sh "$B/rootfs" >/dev/null || die "mk-rootfs.sh failed"
(cd "$B" && "$spec_bin" spec) || die "'$spec_bin spec' failed"
[ -s "$B/config.json" ] || die "'$spec_bin spec' wrote no config.json"
[ -z "${SECCOMP:-}" ] || [ -r "$SECCOMP" ] || die "SECCOMP=$SECCOMP: not a readable file"
python3 - "$B/config.json" "$B2/config.json" "$B3/config.json" "$B/rootfs" "/$CG" "${SECCOMP:-}" "$B4/config.json" <<'PY'
import json, sys
src, dst2, dst3, rootfs, cg, seccomp, dst4 = sys.argv[1:8]
c = json.load(open(src))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
# every runtime does the same cgroup work (create, join, remove)
c.setdefault("linux", {})["cgroupsPath"] = cg
if seccomp:
    c["linux"]["seccomp"] = json.load(open(seccomp))
json.dump(c, open(src, "w"), indent=2)
c["process"]["args"] = ["/bin/sleep", "1000"]
c["root"]["path"] = rootfs
json.dump(c, open(dst2, "w"), indent=2)
c["linux"]["cgroupsPath"] = cg + "-exec"
json.dump(c, open(dst4, "w"), indent=2)
c["linux"]["cgroupsPath"] = cg
c["process"]["args"] = ["/bin/sh", "-c", "exit 7"]
json.dump(c, open(dst3, "w"), indent=2)
PY

# ---- sanity: each runtime must really run a container ------------------------
# (`sh -c 'exit 7'` must come back as exit status 7, so a runtime that exits 0
# without doing anything is caught before it gets timed)
ok_rts=
failed_rts=
bad=0
for rt in $RUNTIMES; do
	b=$(bin_of "$rt")
	mkdir -p "$W/root-$rt"
	rc=0
	out=$(timeout 30 "$b" --root "$W/root-$rt" run --bundle "$B3" "sanity-$rt" 2>&1) || rc=$?
	if [ "$rc" = 7 ]; then
		ok_rts+=" $rt"
	else
		echo "bench.sh: $rt failed the sanity run (exit $rc, expected 7): $b --root $W/root-$rt run --bundle $B3 sanity-$rt" >&2
		printf '%s\n' "${out:-(no output)}" | sed 's/^/    | /' >&2
		failed_rts+=" $rt"
		case $out in *"hybrid mode not supported"*)
			echo "    hint: mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb" >&2 ;;
		esac
		timeout 10 "$b" --root "$W/root-$rt" delete -f "sanity-$rt" >/dev/null 2>&1 || true
		bad=1
	fi
done
[ -n "$ok_rts" ] || die "no runtime could run the bundle"
[ "$bad" = 0 ] || echo "bench.sh: continuing with:$ok_rts (the run will exit non-zero)" >&2

# ---- timed scenarios -----------------------------------------------------------
# hyperfine runs each command through `sh -c` (its spawn cost is measured and
# subtracted); $$ of that shell gives a fresh container id per iteration.
# The RUNS iterations are split into ROUNDS rounds and the runtimes alternate
# inside each round, so a burst of background load hits all of them alike.
hf() { # name json-out hyperfine-args...
	local name=$1 out=$2
	shift 2
	echo "== $name"
	local rc=0
	timeout -k 5 "$CELL_TIMEOUT" hyperfine --shell sh --style none --runs "$per_round" --warmup "$WARMUP" \
		--export-json "$out" "$@" || rc=$?
	if [ "$rc" != 0 ]; then
		rm -f "$out"
		if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
			echo "bench.sh: FAILED: $name: no result after ${CELL_TIMEOUT}s (runtime hung?), skipping this scenario for it" >&2
		else
			echo "bench.sh: FAILED: $name (hyperfine hides the runtime's output; run the command by hand)" >&2
		fi
		bad=1
		return 1
	fi
}

# the container `exec` enters, one per runtime, outside the swept roots
for rt in $ok_rts; do
	b=$(bin_of "$rt")
	timeout 30 "$b" --root "$W/xroot-$rt" run -d --bundle "$B4" "x-$rt" </dev/null >/dev/null 2>&1 ||
		{ echo "bench.sh: $rt could not start the container for exec" >&2; bad=1; }
done

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
per_round=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
declare -A broken=()
for round in $(seq "$ROUNDS"); do
	for rt in $ok_rts; do
		b=$(bin_of "$rt")
		R="$b --root $W/root-$rt"
		tag="round $round/$ROUNDS, $rt"
		[ -n "${broken[run-$rt]:-}" ] ||
			hf "run ($tag)" "$W/run-$rt-$round.json" \
				"$R run --bundle $B r\$\$" || broken[run-$rt]=1
		# create, start, wait until /bin/true has exited (shell builtins only), delete
		[ -n "${broken[lifecycle-$rt]:-}" ] ||
			hf "lifecycle ($tag)" "$W/lifecycle-$rt-$round.json" \
				"$R create --bundle $B --pid-file $W/pid-\$\$ l\$\$ && $R start l\$\$ && { read p < $W/pid-\$\$ || [ -n \"\$p\" ]; } && while [ -e /proc/\$p ] && read -r _ _ s _ < /proc/\$p/stat && [ \"\$s\" != Z ]; do :; done && $R delete l\$\$ && rm -f $W/pid-\$\$" ||
			broken[lifecycle-$rt]=1
		# create + start in --prepare (untimed), then time delete -f alone
		[ -n "${broken[deletef-$rt]:-}" ] ||
			hf "delete -f of a running container ($tag)" "$W/deletef-$rt-$round.json" \
				--prepare "echo d\$\$ > $W/delf-id && $R create --bundle $B2 d\$\$ && $R start d\$\$" \
				"read id < $W/delf-id && $R delete -f \$id" || broken[deletef-$rt]=1
		[ -n "${broken[exec-$rt]:-}" ] ||
			hf "exec ($tag)" "$W/exec-$rt-$round.json" \
				"$b --root $W/xroot-$rt exec x-$rt /bin/true" || broken[exec-$rt]=1
		left=$(sweep "$rt")
		if [ -n "$left" ]; then
			echo "bench.sh: $rt left containers behind:" $left >&2
			bad=1
		fi
	done
done

# ---- peak RSS of `run` -------------------------------------------------------------
for rt in $ok_rts; do
	b=$(bin_of "$rt")
	: >"$W/rss-$rt"
	for i in $(seq "$RSS_RUNS"); do
		timeout -k 5 60 /usr/bin/time -o "$W/rss-one" -f %M "$b" --root "$W/root-$rt" run --bundle "$B" "m$i-$$" >/dev/null 2>&1 ||
			{ echo "bench.sh: $rt run failed during the RSS measurement" >&2; bad=1; }
		tail -n1 "$W/rss-one" >>"$W/rss-$rt"
	done
done

# ---- report ------------------------------------------------------------------------
for rt in $ok_rts; do
	b=$(readlink -f "$(bin_of "$rt")")
	echo $(( $(stat -c %s "$b") / 1024 )) >"$W/size-$rt"
done
report=$W/report.md
{
	echo "## Results $(date -u +%Y-%m-%d)"
	echo
	echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
	echo "- kernel: $(uname -sr), cgroup: $(if [ -d /sys/fs/cgroup/unified ]; then echo 'v1 hybrid'; elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo v2; else echo v1; fi)"
	for rt in $ok_rts; do
		b=$(bin_of "$rt")
		echo "- $rt: \`$b\` — $("$b" --version 2>/dev/null | head -n1)"
	done
	echo "- load average (1/5/15 min) before the timed runs: $load_start, after: $(cut -d' ' -f1-3 /proc/loadavg)"
	[ -z "$failed_rts" ] || echo "- NOT measured (failed the sanity run):$failed_rts"
	echo "- bundle config: \`$SPEC_FROM spec\`, process /bin/true, terminal false, cgroupsPath /$CG"
	[ -z "${SECCOMP:-}" ] || echo "- linux.seccomp from \`$SECCOMP\`"
	echo
} >"$report"
python3 - "$W" "$have_crun" "$RUNS" "$WARMUP" "$RSS_RUNS" "$ROUNDS" $ok_rts >>"$report" <<'PY'
import json, os, statistics, sys
w, have_crun, runs, warmup, rss_runs, rounds = sys.argv[1:7]
rts = sys.argv[7:]
scen = [("run", "`run` of /bin/true"),
        ("lifecycle", "create + start + delete of /bin/true"),
        ("deletef", "`delete -f` of a running container (sleep 1000)"),
        ("exec", "`exec` of /bin/true into a running container")]
def res(s, rt):
    """merge the per-round hyperfine results of one cell; None if it failed"""
    times = []
    for r in range(1, int(rounds) + 1):
        try:
            times += json.load(open(os.path.join(w, f"{s}-{rt}-{r}.json")))["results"][0]["times"]
        except FileNotFoundError:
            return None
    return {"median": statistics.median(times), "mean": statistics.mean(times),
            "stddev": statistics.stdev(times) if len(times) > 1 else 0.0,
            "min": min(times), "max": max(times), "n": len(times)}
out = []
for s, title in scen:
    out.append(f"### {title}\n")
    out.append("| runtime | median ms | mean ± σ ms | min ms | max ms | median vs crun |")
    out.append("|---|---:|---:|---:|---:|---:|")
    b = res(s, "crun") if have_crun == "1" and "crun" in rts else None
    base = b["median"] if b else None
    for rt in rts:
        r = res(s, rt)
        if r is None:
            out.append(f"| {rt} | FAILED | | | | |")
            continue
        ratio = f"{r['median'] / base:.2f}×" if base else "n/a"
        out.append(f"| {rt} | {r['median']*1e3:.1f} | {r['mean']*1e3:.1f} ± {r['stddev']*1e3:.1f} "
                   f"| {r['min']*1e3:.1f} | {r['max']*1e3:.1f} | {ratio} |")
    out.append("")
out.append(f"### Peak RSS of `run` (GNU time %M, {rss_runs} runs)\n")
out.append("| runtime | max KiB | median KiB | binary size KiB |")
out.append("|---|---:|---:|---:|")
for rt in rts:
    v = [int(x) for x in open(os.path.join(w, f"rss-{rt}")).read().split() if x.strip().isdigit()]
    size = open(os.path.join(w, f"size-{rt}")).read().strip()
    if v:
        out.append(f"| {rt} | {max(v)} | {int(statistics.median(v))} | {size} |")
    else:
        out.append(f"| {rt} | n/a | n/a | {size} |")
out.append("")
n = int(rounds) * -(-int(runs) // int(rounds))
out.append(f"hyperfine: {n} timed runs per cell in {rounds} interleaved rounds "
           f"({warmup} warm-up runs per round), shell spawn time subtracted.")
print("\n".join(out))
PY
echo
cat "$report"
if [ -n "${BENCH_MD:-}" ]; then cp "$report" "$BENCH_MD"; echo "(report written to $BENCH_MD)"; fi
[ "$bad" = 0 ] || die "some runtime failed (see above)"
