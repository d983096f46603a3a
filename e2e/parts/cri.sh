#!/usr/bin/env bash
# containerd 1.6's CRI plugin driven the way the kubelet drives it, through
# e2e/cri.py (a minimal CRI v1 gRPC client; crictl is not in Debian). The
# runtime is set in containerd's config: the runc runtime's options have
# BinaryName = <runtime under test>.
#
# Network: no CNI plugin is configured (the conf dir is private and empty),
# so the pod uses the host network (NamespaceOption.network = NODE), as a
# hostNetwork pod; pid and ipc namespaces are the pod's own. containerd 1.6
# reports NetworkReady=false without a CNI config but runs such pods.
CLIENT=cri
. "$(dirname "$0")/../lib.sh"

D=$PART_DIR
SOCK=$D/containerd.sock
W=$D/bin/$(basename "$RUNTIME")
PAUSE=docker.io/library/e2e-pause:$E2E_TAG
IMAGE=docker.io/library/e2e-busybox:$E2E_TAG
CG_PARENT=/e2e-cri-$E2E_TAG
CTRD_PID=
SB= CT=

cri() { t /usr/bin/python3 "$(dirname "$0")/../cri.py" "$SOCK" "$@"; }
POD=$(jq -cn --arg n "pod-$E2E_TAG" --arg u "uid-$E2E_TAG" --arg l "$D/pods/pod-$E2E_TAG" --arg cg "$CG_PARENT" \
	'{name: $n, uid: $u, namespace: "e2e", log_directory: $l, cgroup_parent: $cg, labels: {"e2e-tag": $n}}')

cleanup() {
	stop_pid "$CTRD_PID"
	local p
	for p in $(pids_matching "-address $SOCK ") $(pids_in_cgroup "$CG_PARENT/"); do kill -KILL "$p" 2>/dev/null; done
	force_cleanup "$D/"
	find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -depth -type d -path "*$CG_PARENT*" -exec rmdir {} + 2>/dev/null
	find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -depth -type d -name "k8s.io" -newer "$D/config.toml" -exec rmdir {} + 2>/dev/null
}
trap cleanup EXIT

s_daemon() {
	mkdir -p "$D"/root "$D"/state "$D"/runc-root "$D"/cni-conf "$D"/cni-bin "$D/pods/pod-$E2E_TAG"
	{
		containerd_config "$D" "$SOCK"
		cat <<EOF
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_tcp_service = true
  enable_selinux = false
  # this VM refuses a negative oom_score_adj (no CAP_SYS_RESOURCE): the
  # sandbox's -998 would fail in any runtime; keep the daemon's own
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$W"
        Root = "$D/runc-root"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$D/cni-bin"
    conf_dir = "$D/cni-conf"
EOF
	} >"$D/config.toml"
	mk_wrapper "$W"
	containerd --config "$D/config.toml" >"$D/containerd.log" 2>&1 &
	CTRD_PID=$!
	wait_for 30 /usr/bin/python3 "$(dirname "$0")/../cri.py" "$SOCK" version ||
		{ show "$(tail -n 20 "$D/containerd.log")"; fail "containerd's CRI service did not come up"; return 1; }
	local out
	for img in pause-oci busybox-oci; do
		out=$(t ctr --address "$SOCK" --namespace k8s.io images import "$E2E_IMAGES/$img.tar" 2>&1) ||
			{ show "$out"; fail "ctr -n k8s.io images import $img: $out"; return 1; }
	done
	note "$(cri version | jq -r '"\(.runtime_name) \(.runtime_version), CRI \(.runtime_api_version)"'), pid $CTRD_PID"
}

s_images() {
	local id1 id2
	# the CRI plugin learns of imported images from containerd's events
	wait_for 10 sh -c "/usr/bin/python3 $(dirname "$0")/../cri.py $SOCK image-status $PAUSE | jq -e '.id != null'" ||
		{ fail "ImageStatus($PAUSE): not found"; return 1; }
	id1=$(cri image-status "$PAUSE" | jq -r .id)
	id2=$(cri image-status "$IMAGE" | jq -r .id)
	[ "$id2" != null ] || { fail "ImageStatus($IMAGE): not found"; return 1; }
	note "sandbox image ${id1:0:19}, busybox ${id2:0:19}"
}

s_runp() {
	local out st pid
	out=$(cri runp "$POD" 2>&1) || { show "$out"; fail "RunPodSandbox: $out"; return 1; }
	SB=$(jq -r .id <<<"$out")
	st=$(cri sandbox-status "$SB" | jq -r .state)
	expect_eq "sandbox state" "$st" READY || return 1
	pid=$(pids_in_cgroup "$CG_PARENT/$SB" | head -n1)
	[ -n "$pid" ] && [ "$(tr '\0' ' ' <"/proc/$pid/cmdline")" = "sleep 2147483647 " ] ||
		{ fail "no 'sleep 2147483647' (the sandbox image's command) in cgroup $CG_PARENT/$SB"; return 1; }
	note "sandbox ${SB:0:12} READY, its process $pid in $CG_PARENT/$SB"
}

need_sb() { [ -n "$SB" ] || { fail "no sandbox (RunPodSandbox failed)"; return 1; }; }
need_ct() { [ -n "$CT" ] || { fail "no container (CreateContainer/StartContainer failed)"; return 1; }; }

s_container() {
	need_sb || return 1
	local cfg out st
	cfg=$(jq -cn --arg i "$IMAGE" --arg n "app-$E2E_TAG" \
		'{name: $n, image: $i, command: ["sh", "-c"],
		  args: ["trap \"echo got-term; exit 0\" TERM; echo app-started; touch /tmp/healthy; while :; do sleep 0.2; done"],
		  log_path: "app/0.log", memory: 67108864, cpu_period: 100000, cpu_quota: 50000}')
	out=$(cri create "$SB" "$POD" "$cfg" 2>&1) || { show "$out"; fail "CreateContainer: $out"; return 1; }
	CT=$(jq -r .id <<<"$out")
	out=$(cri start "$CT" 2>&1) || { show "$out"; fail "StartContainer: $out"; CT=; return 1; }
	st=$(cri status "$CT" | jq -r .state)
	expect_eq "container state" "$st" RUNNING || return 1
	wait_for 10 grep -q app-started "$D/pods/pod-$E2E_TAG/app/0.log" ||
		{ fail "container log has no 'app-started'"; show "$(cat "$D/pods/pod-$E2E_TAG/app/0.log" 2>&1)"; return 1; }
	note "container ${CT:0:12} RUNNING, stdout in the CRI log file"
}

s_execsync() {
	need_ct || return 1
	local out
	out=$(cri exec "$CT" 10 sh -c 'echo out-ok; echo err-ok >&2; exit 7' 2>&1) || { show "$out"; fail "ExecSync: $out"; return 1; }
	show "$out"
	expect_eq "ExecSync stdout" "$(jq -r .stdout <<<"$out")" out-ok || return 1
	expect_eq "ExecSync stderr" "$(jq -r .stderr <<<"$out")" err-ok || return 1
	expect_eq "ExecSync exit code" "$(jq -r .exit_code <<<"$out")" 7 || return 1
	note "stdout, stderr, exit code 7"
}

s_limits() {
	need_ct || return 1
	local out
	out=$(cri exec "$CT" 10 cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>&1) ||
		{ show "$out"; fail "ExecSync: $out"; return 1; }
	show "$out"
	expect_eq "memory limit and cfs quota inside" "$(jq -j .stdout <<<"$out" | tr '\n' ' ')" "67108864 50000 " || return 1
	note "memory 64 MiB and cpu quota 50000/100000 seen inside"
}

s_liveness() {
	need_ct || return 1
	# as the kubelet's exec probe: periodic ExecSync with a timeout; the
	# probe fails once the file is gone
	local i out rc
	for i in $(seq 10); do
		out=$(cri exec "$CT" 5 cat /tmp/healthy 2>&1) || { show "$out"; fail "probe $i: ExecSync failed: $out"; return 1; }
		rc=$(jq -r .exit_code <<<"$out")
		expect_eq "probe $i exit code" "$rc" 0 || return 1
		sleep 0.1
	done
	out=$(cri exec "$CT" 5 rm /tmp/healthy 2>&1) || { fail "ExecSync rm: $out"; return 1; }
	out=$(cri exec "$CT" 5 cat /tmp/healthy 2>&1) || { fail "probe after rm: ExecSync failed: $out"; return 1; }
	rc=$(jq -r .exit_code <<<"$out")
	[ "$rc" != 0 ] || { fail "probe after rm: exit 0, want non-zero"; return 1; }
	expect_eq "state after probes" "$(cri status "$CT" | jq -r .state)" RUNNING || return 1
	note "10 probes exit 0, failing probe exit $rc, container still RUNNING"
}

s_stop() {
	need_ct || return 1
	local out st
	out=$(cri stop "$CT" 10 2>&1) || { show "$out"; fail "StopContainer: $out"; return 1; }
	out=$(cri status "$CT")
	show "$out"
	expect_eq "state after StopContainer" "$(jq -r .state <<<"$out")" EXITED || return 1
	expect_eq "exit code after SIGTERM (trap)" "$(jq -r .exit_code <<<"$out")" 0 || return 1
	grep -q got-term "$D/pods/pod-$E2E_TAG/app/0.log" || { fail "the container did not log its SIGTERM trap"; return 1; }
	out=$(cri rm "$CT" 2>&1) || { show "$out"; fail "RemoveContainer: $out"; return 1; }
	note "SIGTERM handled (exit 0), EXITED, removed"
}

s_pod_teardown() {
	need_sb || return 1
	local out
	out=$(cri stopp "$SB" 2>&1) || { show "$out"; fail "StopPodSandbox: $out"; return 1; }
	expect_eq "sandbox state after StopPodSandbox" "$(cri sandbox-status "$SB" | jq -r .state)" NOTREADY || return 1
	[ -z "$(pids_in_cgroup "$CG_PARENT/")" ] || { fail "processes left in the pod's cgroups: $(pids_in_cgroup "$CG_PARENT/")"; return 1; }
	out=$(cri rmp "$SB" 2>&1) || { show "$out"; fail "RemovePodSandbox: $out"; return 1; }
	out=$(cri list)
	expect_eq "sandboxes and containers listed" "$out" '{"sandboxes": [], "containers": []}' || return 1
	note "stopped (NOTREADY, no process left), removed, nothing listed"
}

s_runtime() { runtime_ran "$W" ${SB:+"$SB"} ${CT:+"$CT"} && [ -n "$SB" ] && [ -n "$CT" ]; }

s_nothing_left() {
	local left
	wait_for 6 sh -c "[ -z \"\$(ps -eo args | grep -F -- '-address $SOCK ' | grep -v grep)\" ]" ||
		{ fail "shims left: $(pids_matching "-address $SOCK ")"; return 1; }
	left=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d -path "*$CG_PARENT/*" 2>/dev/null)
	[ -z "$left" ] || { fail "cgroups left: $left"; return 1; }
	# per-container state; skiff's seccomp cache (<root>/:seccomp-cache) is not
	left=$(find "$D/runc-root" -mindepth 2 ! -path "*/:seccomp-cache*" 2>/dev/null)
	[ -z "$left" ] || { fail "runtime state left: $left"; return 1; }
	stop_pid "$CTRD_PID"
	CTRD_PID=
	left=$(awk -v t="$D/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo)
	[ -z "$left" ] || { fail "mounts left: $left"; return 1; }
	# the pod's parent cgroup is the kubelet's (here the test's) to remove
	find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -depth -type d -path "*$CG_PARENT" -exec rmdir {} + 2>/dev/null
	note "no shim, cgroup, runtime state or mount left; containerd stopped"
}

scenario "daemon (BinaryName in config)" s_daemon
if [ -n "$CTRD_PID" ]; then
	scenario "images visible to CRI" s_images
	scenario "RunPodSandbox" s_runp
	scenario "CreateContainer/StartContainer" s_container
	scenario "ExecSync" s_execsync
	scenario "limits inside (ExecSync)" s_limits
	scenario "liveness exec loop" s_liveness
	scenario "StopContainer/RemoveContainer" s_stop
	scenario "StopPodSandbox/RemovePodSandbox" s_pod_teardown
	scenario "runtime under test ran them" s_runtime
	scenario "nothing left" s_nothing_left
fi
