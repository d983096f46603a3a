//! Every `linux.resources` field of the runtime-spec, applied on this host's
//! cgroup version and read back from the container's cgroup files (issue 9).
//! Each case is a resources fragment plus, per cgroup version, either the
//! lines the cgroup files must hold after `create`, or the field a clean
//! one-line refusal must name — with nothing left behind either way.
//!
//! The cgroup v2 expectations run in the throw-away v2 VM
//! (`scripts/vm-test.sh --strict resources`, part of `just test`'s `vm-tests`).

use serde_json::Value;
use skiff_integration_tests::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = "/sys/fs/cgroup";

fn is_v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// What a case must produce on one cgroup version.
enum Want {
    /// (controller, file, line): the container's `file` in the hierarchy of
    /// `controller` holds `line` (whitespace-normalised; a file of one
    /// line must be exactly it).
    Files(&'static [(&'static str, &'static str, &'static str)]),
    /// `create` fails with a short error naming this field.
    Refused(&'static str),
    /// `create` succeeds with a warning naming this field (a field the
    /// runtime-spec lets runtimes ignore, which the kernel ignores).
    Warned(&'static str),
    /// Per-device weights: [`Files`] on a device that could be given the
    /// BFQ scheduler; on a kernel without BFQ, a refusal naming
    /// `weightDevice[0].weight` and the device (the kernel would refuse the
    /// write).
    Bfq(&'static [(&'static str, &'static str, &'static str)]),
}
use Want::*;

struct Case {
    name: &'static str,
    /// The `linux.resources` object; `{MAJ}`/`{MIN}` stand for a loop
    /// device of the test (BFQ scheduler where the kernel has it).
    res: &'static str,
    v1: Want,
    v2: Want,
}

/// A loop device on a file of the test dir: (path, major, minor, whether it
/// got the BFQ scheduler).
fn loop_device(env: &TestEnv) -> Option<(String, u64, u64, bool)> {
    let img = env.dir.join("disk.img");
    fs::write(&img, vec![0u8; 1 << 20]).ok()?;
    // (The VM's kernel has loop as a module, not loaded at boot.)
    let _ = Command::new("modprobe").arg("loop").output();
    let out = Command::new("losetup").args(["--find", "--show"]).arg(&img).output().ok()?;
    let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || dev.is_empty() {
        return None;
    }
    let d = dev.clone();
    env.on_cleanup(move || {
        let _ = Command::new("losetup").args(["-d", &d]).status();
    });
    let sched = format!("/sys/block/{}/queue/scheduler", dev.trim_start_matches("/dev/"));
    let bfq = match fs::write(&sched, "bfq") {
        Ok(()) => true,
        Err(e) => {
            eprintln!("(no bfq for {dev}: {e})");
            false
        }
    };
    stat_dev(Path::new(&dev)).map(|(_, _, a, b)| (dev, a, b, bfq))
}

/// The container's directory holding `ctrl`'s files.
fn ctrl_dir(id: &str, ctrl: &str) -> Option<PathBuf> {
    if is_v2() {
        return Some(Path::new(ROOT).join(id));
    }
    let h = fs::read_dir(ROOT).ok()?.flatten().find(|e| e.file_name().to_string_lossy().split(',').any(|c| c == ctrl))?;
    Some(h.path().join(id))
}

fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs one case; returns what went wrong, or why it could not run.
fn run_case(c: &Case) -> std::result::Result<(), String> {
    let mut env = TestEnv::new(&format!("res-{}", c.name));
    let mut text = c.res.to_string();
    let mut bfq = false;
    if text.contains("{MAJ}") {
        let Some((_, ma, mi, has_bfq)) = loop_device(&env) else {
            skip_message(&format!("SKIPPED resources case {}: no loop device\n", c.name));
            return Ok(());
        };
        text = text.replace("{MAJ}", &ma.to_string()).replace("{MIN}", &mi.to_string());
        bfq = has_bfq;
    }
    let res: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("case {}: bad fragment: {e}", c.name));
    env.config["linux"]["resources"] = res;
    let want = if is_v2() { &c.v2 } else { &c.v1 };
    let out = env.create();
    let refused_bfq = Refused("weightDevice[0].weight: device");
    let want = match want {
        Bfq(files) if bfq => &Files(files),
        Bfq(_) => &refused_bfq,
        w => w,
    };
    let result = match want {
        Refused(field) => {
            let lines = out.stderr.lines().filter(|l| !l.trim().is_empty()).count();
            let clean = !out.success() && !out.timed_out && !out.signaled && (1..=2).contains(&lines);
            if clean && out.stderr.contains(field) {
                Ok(())
            } else {
                Err(format!("{}: expected a short refusal naming {field}, got: {}", c.name, out.describe()))
            }
        }
        Warned(field) if out.success() && out.stderr.contains(field) && out.stderr.contains("level=warning") => Ok(()),
        Warned(field) => Err(format!("{}: expected success with a warning naming {field}, got: {}", c.name, out.describe())),
        Files(files) if !out.success() => Err(format!("{}: create failed (expected {files:?}): {}", c.name, out.describe())),
        Files(files) => check_files(c.name, &env.id, files, &text),
        Bfq(_) => unreachable!("resolved to Files or Refused above"),
    };
    if out.success() {
        env.rt(&["delete", "-f", &env.id]).ok();
    }
    let left = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| env.assert_no_leftovers(&env.id)));
    result?;
    left.map_err(|_| format!("{}: something was left behind", c.name))
}

fn check_files(name: &str, id: &str, files: &[(&str, &str, &str)], res: &str) -> std::result::Result<(), String> {
    // The device number of the fragment, for the expected lines.
    let num = |k: &str| res.split(&format!("\"{k}\": ")).nth(1).and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next()).unwrap_or("").to_string();
    for (ctrl, file, line) in files {
        let line = line.replace("{MAJ}", &num("major")).replace("{MIN}", &num("minor"));
        let Some(d) = ctrl_dir(id, ctrl) else { return Err(format!("{name}: no {ctrl} hierarchy")) };
        let got = fs::read_to_string(d.join(file)).map_err(|e| format!("{name}: read {}: {e}", d.join(file).display()))?;
        let lines: Vec<String> = got.lines().map(norm).filter(|l| !l.is_empty()).collect();
        let ok = if lines.len() <= 1 { lines.first().map(String::as_str).unwrap_or("") == norm(&line) } else { lines.contains(&norm(&line)) };
        if !ok {
            return Err(format!("{name}: {file} is {got:?}, expected {line:?}"));
        }
    }
    Ok(())
}

fn run_table(cases: &[Case]) {
    let failures: Vec<String> = cases.iter().filter_map(|c| run_case(c).err()).collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn memory() {
    require_root!();
    run_table(&[
        Case {
            name: "mem-limits",
            res: r#"{"memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728, "useHierarchy": true, "checkBeforeUpdate": true}}"#,
            v1: Files(&[("memory", "memory.limit_in_bytes", "67108864"), ("memory", "memory.soft_limit_in_bytes", "33554432"), ("memory", "memory.memsw.limit_in_bytes", "134217728"), ("memory", "memory.use_hierarchy", "1")]),
            v2: Files(&[("memory", "memory.max", "67108864"), ("memory", "memory.low", "33554432"), ("memory", "memory.swap.max", "67108864")]),
        },
        Case {
            name: "mem-no-swap",
            res: r#"{"memory": {"limit": 67108864, "swap": 67108864}}"#,
            v1: Files(&[("memory", "memory.limit_in_bytes", "67108864"), ("memory", "memory.memsw.limit_in_bytes", "67108864")]),
            v2: Files(&[("memory", "memory.max", "67108864"), ("memory", "memory.swap.max", "0")]),
        },
        Case {
            name: "mem-unlimited",
            res: r#"{"memory": {"limit": -1, "swap": -1}}"#,
            v1: Files(&[("memory", "memory.limit_in_bytes", "9223372036854771712"), ("memory", "memory.memsw.limit_in_bytes", "9223372036854771712")]),
            v2: Files(&[("memory", "memory.max", "max"), ("memory", "memory.swap.max", "max")]),
        },
        Case {
            name: "mem-swappiness-oom",
            res: r#"{"memory": {"swappiness": 30, "disableOOMKiller": true}}"#,
            v1: Files(&[("memory", "memory.swappiness", "30"), ("memory", "memory.oom_control", "oom_kill_disable 1")]),
            v2: Warned("linux.resources.memory.swappiness"),
        },
        Case { name: "mem-oom-v2", res: r#"{"memory": {"disableOOMKiller": true}}"#, v1: Files(&[("memory", "memory.oom_control", "oom_kill_disable 1")]), v2: Warned("linux.resources.memory.disableOOMKiller") },
        // Deprecated by the runtime-spec (runtimes may ignore it), a no-op
        // since Linux 5.16: accepted with a warning, as runc does.
        Case { name: "mem-kernel", res: r#"{"memory": {"kernel": 67108864}}"#, v1: Warned("linux.resources.memory.kernel"), v2: Warned("linux.resources.memory.kernel") },
        Case {
            name: "mem-kernel-tcp",
            res: r#"{"memory": {"kernelTCP": 67108864}}"#,
            v1: Files(&[("memory", "memory.kmem.tcp.limit_in_bytes", "67108864")]),
            v2: Warned("linux.resources.memory.kernelTCP"),
        },
        Case { name: "mem-flat", res: r#"{"memory": {"useHierarchy": false}}"#, v1: Refused("linux.resources.memory.useHierarchy"), v2: Refused("linux.resources.memory.useHierarchy") },
        Case { name: "mem-swap-small", res: r#"{"memory": {"limit": 67108864, "swap": 33554432}}"#, v1: Refused("linux.resources.memory.swap"), v2: Refused("linux.resources.memory.swap") },
    ]);
}

#[test]
fn cpu() {
    require_root!();
    run_table(&[
        Case {
            name: "cpu-cfs",
            res: r#"{"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 10000}}"#,
            v1: Files(&[("cpu", "cpu.shares", "1024"), ("cpu", "cpu.cfs_quota_us", "50000"), ("cpu", "cpu.cfs_period_us", "100000"), ("cpu", "cpu.cfs_burst_us", "10000")]),
            v2: Files(&[("cpu", "cpu.weight", "100"), ("cpu", "cpu.max", "50000 100000"), ("cpu", "cpu.max.burst", "10000")]),
        },
        Case { name: "cpu-burst-alone", res: r#"{"cpu": {"burst": 5000}}"#, v1: Files(&[("cpu", "cpu.cfs_burst_us", "5000")]), v2: Files(&[("cpu", "cpu.max.burst", "5000")]) },
        Case { name: "cpu-unlimited", res: r#"{"cpu": {"quota": -1, "period": 250000}}"#, v1: Files(&[("cpu", "cpu.cfs_quota_us", "-1"), ("cpu", "cpu.cfs_period_us", "250000")]), v2: Files(&[("cpu", "cpu.max", "max 250000")]) },
        Case {
            name: "cpu-rt",
            res: r#"{"cpu": {"realtimePeriod": 500000, "realtimeRuntime": 10000}}"#,
            v1: Files(&[("cpu", "cpu.rt_period_us", "500000"), ("cpu", "cpu.rt_runtime_us", "10000")]),
            v2: Refused("linux.resources.cpu.realtime"),
        },
        Case { name: "cpu-idle", res: r#"{"cpu": {"idle": 1}}"#, v1: Files(&[("cpu", "cpu.idle", "1")]), v2: Files(&[("cpu", "cpu.idle", "1")]) },
        Case {
            name: "cpuset",
            res: r#"{"cpu": {"cpus": "0", "mems": "0"}}"#,
            v1: Files(&[("cpuset", "cpuset.cpus", "0"), ("cpuset", "cpuset.mems", "0")]),
            v2: Files(&[("cpuset", "cpuset.cpus", "0"), ("cpuset", "cpuset.mems", "0")]),
        },
    ]);
}

#[test]
fn pids() {
    require_root!();
    run_table(&[
        // The spec: the maximum number of tasks; 0 is a real limit.
        Case { name: "pids-zero", res: r#"{"pids": {"limit": 0}}"#, v1: Files(&[("pids", "pids.max", "0")]), v2: Files(&[("pids", "pids.max", "0")]) },
        Case { name: "pids-max", res: r#"{"pids": {"limit": -1}}"#, v1: Files(&[("pids", "pids.max", "max")]), v2: Files(&[("pids", "pids.max", "max")]) },
        Case { name: "pids-42", res: r#"{"pids": {"limit": 42}}"#, v1: Files(&[("pids", "pids.max", "42")]), v2: Files(&[("pids", "pids.max", "42")]) },
    ]);
}

#[test]
fn block_io() {
    require_root!();
    run_table(&[
        Case {
            name: "blkio-throttle",
            res: r#"{"blockIO": {"throttleReadBpsDevice": [{"major": {MAJ}, "minor": {MIN}, "rate": 1048576}], "throttleWriteBpsDevice": [{"major": {MAJ}, "minor": {MIN}, "rate": 2097152}],
                     "throttleReadIOPSDevice": [{"major": {MAJ}, "minor": {MIN}, "rate": 100}], "throttleWriteIOPSDevice": [{"major": {MAJ}, "minor": {MIN}, "rate": 200}]}}"#,
            v1: Files(&[
                ("blkio", "blkio.throttle.read_bps_device", "{MAJ}:{MIN} 1048576"),
                ("blkio", "blkio.throttle.write_bps_device", "{MAJ}:{MIN} 2097152"),
                ("blkio", "blkio.throttle.read_iops_device", "{MAJ}:{MIN} 100"),
                ("blkio", "blkio.throttle.write_iops_device", "{MAJ}:{MIN} 200"),
            ]),
            v2: Files(&[("io", "io.max", "{MAJ}:{MIN} rbps=1048576 wbps=2097152 riops=100 wiops=200")]),
        },
        Case {
            name: "blkio-weights",
            res: r#"{"blockIO": {"weight": 500, "weightDevice": [{"major": {MAJ}, "minor": {MIN}, "weight": 444}]}}"#,
            v1: Bfq(&[("blkio", "blkio.bfq.weight", "500"), ("blkio", "blkio.bfq.weight_device", "{MAJ}:{MIN} 444")]),
            v2: Bfq(&[("io", "io.bfq.weight", "default 500"), ("io", "io.bfq.weight", "{MAJ}:{MIN} 444")]),
        },
        Case { name: "blkio-leaf", res: r#"{"blockIO": {"leafWeight": 500}}"#, v1: Refused("linux.resources.blockIO.leafWeight"), v2: Refused("linux.resources.blockIO.leafWeight") },
        Case {
            name: "blkio-dev-leaf",
            res: r#"{"blockIO": {"weightDevice": [{"major": {MAJ}, "minor": {MIN}, "leafWeight": 300}]}}"#,
            v1: Refused("linux.resources.blockIO.weightDevice[0].leafWeight"),
            v2: Refused("linux.resources.blockIO.weightDevice[0].leafWeight"),
        },
    ]);
}

#[test]
fn hugepage_limits() {
    require_root!();
    let rsvd = Path::new("/sys/fs/cgroup/hugetlb/hugetlb.2MB.rsvd.limit_in_bytes").exists() || is_v2();
    if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() || !rsvd {
        skip_message("SKIPPED resources::hugepage_limits: no 2MB huge pages with reservation accounting\n");
        return;
    }
    run_table(&[
        Case {
            name: "hugetlb-2mb",
            res: r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#,
            v1: Files(&[("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"), ("hugetlb", "hugetlb.2MB.rsvd.limit_in_bytes", "4194304")]),
            v2: Files(&[("hugetlb", "hugetlb.2MB.max", "4194304"), ("hugetlb", "hugetlb.2MB.rsvd.max", "4194304")]),
        },
        Case {
            name: "hugetlb-unlimited",
            res: r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": -1}]}"#,
            v1: Files(&[("hugetlb", "hugetlb.2MB.limit_in_bytes", "9223372036852678656")]),
            v2: Files(&[("hugetlb", "hugetlb.2MB.max", "max"), ("hugetlb", "hugetlb.2MB.rsvd.max", "max")]),
        },
        Case { name: "hugetlb-bad-size", res: r#"{"hugepageLimits": [{"pageSize": "3MB", "limit": 4194304}]}"#, v1: Refused("linux.resources.hugepageLimits[0].pageSize"), v2: Refused("linux.resources.hugepageLimits[0].pageSize") },
    ]);
}

/// net_cls/net_prio: v1 only, and only where the hierarchies are mounted
/// (not on this project's hosts: then a refusal naming the field).
#[test]
fn network() {
    require_root!();
    let v1_has = |c: &str| !is_v2() && ctrl_dir("", c).is_some();
    if v1_has("net_cls") || v1_has("net_prio") {
        run_table(&[Case {
            name: "net",
            res: r#"{"network": {"classID": 1048577, "priorities": [{"name": "lo", "priority": 5}]}}"#,
            v1: Files(&[("net_cls", "net_cls.classid", "1048577"), ("net_prio", "net_prio.ifpriomap", "lo 5")]),
            v2: Refused("linux.resources.network.classID"),
        }]);
        return;
    }
    run_table(&[
        Case { name: "net-classid", res: r#"{"network": {"classID": 1048577}}"#, v1: Refused("linux.resources.network.classID"), v2: Refused("linux.resources.network.classID") },
        Case { name: "net-prio", res: r#"{"network": {"priorities": [{"name": "lo", "priority": 5}]}}"#, v1: Refused("linux.resources.network.priorities"), v2: Refused("linux.resources.network.priorities") },
    ]);
}

/// rdma: no RDMA device on these hosts (and no rdma controller on the v1
/// one): a refusal naming the device's entry.
#[test]
fn rdma() {
    require_root!();
    run_table(&[Case { name: "rdma", res: r#"{"rdma": {"mlx4_0": {"hcaHandles": 2, "hcaObjects": 2000}}}"#, v1: Refused("linux.resources.rdma.mlx4_0"), v2: Refused("linux.resources.rdma.mlx4_0") }]);
}

#[test]
fn device_rules() {
    require_root!();
    run_table(&[Case {
        name: "devices",
        res: r#"{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "b", "major": {MAJ}, "minor": {MIN}, "access": "r"}]}"#,
        v1: Files(&[("devices", "devices.list", "b {MAJ}:{MIN} r")]),
        // (v2: an eBPF program, no file: see device_rule_is_enforced.)
        v2: Files(&[]),
    }]);
}

/// The device rules as the container sees them (v1 and v2): a block device
/// bind-mounted in is readable with an `r` rule, refused without.
#[test]
fn device_rule_is_enforced() {
    require_root!();
    let mut env = TestEnv::new("res-dev-enforced");
    let Some((dev, ma, mi, _)) = loop_device(&env) else {
        skip_message("SKIPPED resources::device_rule_is_enforced: no loop device\n");
        return;
    };
    env.add_mount(serde_json::json!({"destination": "/disk", "type": "bind", "source": dev, "options": ["bind", "ro"]}));
    let script = "head -c 512 /disk | wc -c; head -c 1 /disk >/dev/null 2>&1 || echo refused";
    env.config["linux"]["resources"]["devices"] = serde_json::json!([{"allow": false, "access": "rwm"}]);
    let out = env.run_sh_ok(script);
    assert!(out.contains("refused"), "the device was readable without a rule:\n{out}");
    env.config["linux"]["resources"]["devices"] = serde_json::json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "b", "major": ma, "minor": mi, "access": "r"}]);
    let out = env.run_sh_ok(script);
    assert!(out.lines().next().is_some_and(|l| l.trim() == "512") && !out.contains("refused"), "the device was not readable with an r rule:\n{out}");
    env.assert_no_leftovers(&env.id);
}

#[test]
fn unified() {
    require_root!();
    run_table(&[
        Case { name: "unified", res: r#"{"unified": {"pids.max": "7", "memory.high": "67108864"}}"#, v1: Refused("linux.resources.unified"), v2: Files(&[("pids", "pids.max", "7"), ("memory", "memory.high", "67108864")]) },
        Case { name: "unified-missing", res: r#"{"unified": {"net_cls.classid": "1"}}"#, v1: Refused("linux.resources.unified"), v2: Refused("linux.resources.unified.net_cls.classid") },
    ]);
}

/// Malformed or out-of-range values: one line naming the field, and
/// nothing created (no state dir, no cgroup).
#[test]
fn bad_input_is_refused_naming_the_field() {
    require_root!();
    let both = |name, res, field| Case { name, res, v1: Refused(field), v2: Refused(field) };
    run_table(&[
        both("bad-shares", r#"{"cpu": {"shares": -1}}"#, "linux.resources.cpu.shares"),
        both("bad-cpus", r#"{"cpu": {"cpus": "0-"}}"#, "linux.resources.cpu.cpus"),
        both("cpus-offline", r#"{"cpu": {"cpus": "0-4095"}}"#, "linux.resources.cpu.cpus"),
        both("bad-mems", r#"{"cpu": {"mems": "a"}}"#, "linux.resources.cpu.mems"),
        both("bad-quota", r#"{"cpu": {"quota": 500}}"#, "linux.resources.cpu.quota"),
        both("bad-period", r#"{"cpu": {"period": 5000000}}"#, "linux.resources.cpu.period"),
        both("bad-idle", r#"{"cpu": {"idle": 2}}"#, "linux.resources.cpu.idle"),
        both("bad-burst", r#"{"cpu": {"quota": 10000, "burst": 20000}}"#, "linux.resources.cpu.burst"),
        both("bad-memory", r#"{"memory": {"limit": -5}}"#, "linux.resources.memory.limit"),
        both("bad-swappiness", r#"{"memory": {"swappiness": 101}}"#, "linux.resources.memory.swappiness"),
        both("bad-weight", r#"{"blockIO": {"weight": 5000}}"#, "linux.resources.blockIO.weight"),
        both("bad-major", r#"{"blockIO": {"throttleReadBpsDevice": [{"major": -3, "minor": 0, "rate": 1}]}}"#, "linux.resources.blockIO.throttleReadBpsDevice[0]"),
        both("no-such-disk", r#"{"blockIO": {"throttleWriteIOPSDevice": [{"major": 4095, "minor": 4095, "rate": 1}]}}"#, "linux.resources.blockIO.throttleWriteIOPSDevice[0]"),
        both("bad-dev-type", r#"{"devices": [{"allow": true, "type": "x", "access": "rwm"}]}"#, "linux.resources.devices[0].type"),
        both("bad-dev-access", r#"{"devices": [{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwx"}]}"#, "linux.resources.devices[0].access"),
        both("bad-dev-major", r#"{"devices": [{"allow": true, "type": "c", "major": -5, "minor": 3, "access": "r"}]}"#, "linux.resources.devices[0].major"),
        both("bad-hugetlb", r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": -7}]}"#, "linux.resources.hugepageLimits[0]"),
        both("rdma-empty", r#"{"rdma": {"mlx4_0": {}}}"#, "linux.resources.rdma.mlx4_0"),
        both("unified-bad-key", r#"{"unified": {"../../evil": "1"}}"#, "linux.resources.unified"),
    ]);
}
