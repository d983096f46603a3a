//! The systemd cgroup driver (`--systemd-cgroup`, cgroupsPath
//! `slice:prefix:name`) against a real systemd: a transient scope with
//! `Delegate=yes` and the limits as unit properties, changed by `update`,
//! read by `events`, joined by `exec`, frozen by `pause`, gone after
//! `delete`. Runs where systemd is PID 1 on
//! cgroup v2 (`just test` runs it in the VM: `scripts/vm-test.sh --systemd
//! systemd`); elsewhere it says SKIPPED.

use serde_json::json;
use skiff_integration_tests::*;
use std::process::Command;

fn systemd_v2() -> bool {
    std::path::Path::new("/run/systemd/system").exists()
        && std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd")
        && std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn show(unit: &str, props: &str) -> String {
    let out = Command::new("systemctl").args(["show", unit, "-p", props]).output().expect("systemctl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn transient_scope_with_limits_exec_pause_and_delete() {
    require_root!();
    if !systemd_v2() {
        return skip_message("SKIPPED systemd::transient_scope_with_limits_exec_pause_and_delete: systemd is not PID 1 on cgroup v2 here\n");
    }
    let mut env = TestEnv::new("systemd");
    env.set_args(&["sleep", "300"]);
    let name = env.id.clone();
    env.config["linux"]["cgroupsPath"] = json!(format!("system.slice:skiff-it:{name}"));
    env.config["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}, "cpu": {"quota": 20000, "period": 100000}});
    let unit = format!("skiff-it-{name}.scope");
    env.on_cleanup({
        let unit = unit.clone();
        move || {
            let _ = Command::new("systemctl").args(["stop", &unit]).stderr(std::process::Stdio::null()).status();
        }
    });
    env.write_config();
    let b = env.bundle.to_string_lossy().into_owned();
    env.rt(&["--systemd-cgroup", "run", "-d", "--bundle", &b, &env.id]).ok();
    let props = show(&unit, "ActiveState,Delegate,MemoryMax,TasksMax,CPUQuotaPerSecUSec,ControlGroup");
    for want in ["ActiveState=active", "Delegate=yes", "MemoryMax=67108864", "TasksMax=50", "CPUQuotaPerSecUSec=200ms", &format!("ControlGroup=/system.slice/{unit}")] {
        assert!(props.lines().any(|l| l == want), "{unit}: no {want} in\n{props}");
    }
    let pid = env.state()["pid"].as_i64().unwrap();
    let cg = format!("0::/system.slice/{unit}\n");
    assert_eq!(std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(), cg);
    assert_eq!(std::fs::read_to_string(format!("/sys/fs/cgroup/system.slice/{unit}/memory.max")).unwrap().trim(), "67108864");
    // exec joins the scope; pause freezes it and `state` says so.
    assert_eq!(env.rt(&["--systemd-cgroup", "exec", &env.id, "cat", "/proc/self/cgroup"]).ok().stdout, cg);
    // update goes to the unit's properties (and its cgroup files).
    env.rt(&["--systemd-cgroup", "update", "--memory", "128m", "--pids-limit", "60", &env.id]).ok();
    let props = show(&unit, "MemoryMax,TasksMax");
    assert!(props.lines().any(|l| l == "MemoryMax=134217728") && props.lines().any(|l| l == "TasksMax=60"), "after update:\n{props}");
    assert_eq!(std::fs::read_to_string(format!("/sys/fs/cgroup/system.slice/{unit}/memory.max")).unwrap().trim(), "134217728");
    let stats = env.rt(&["--systemd-cgroup", "events", "--stats", &env.id]);
    let v: serde_json::Value = serde_json::from_str(stats.ok().stdout.trim()).unwrap();
    assert_eq!(v["data"]["memory"]["usage"]["limit"], 134217728, "{}", stats.stdout);
    env.rt(&["--systemd-cgroup", "pause", &env.id]).ok();
    assert_eq!(env.status_id(&env.id).as_deref(), Some("paused"));
    env.rt(&["--systemd-cgroup", "resume", &env.id]).ok();
    assert_eq!(env.status_id(&env.id).as_deref(), Some("running"));
    env.rt(&["--systemd-cgroup", "delete", "--force", &env.id]).ok();
    let after = show(&unit, "LoadState,ActiveState");
    assert!(after.contains("LoadState=not-found") || after.contains("ActiveState=inactive"), "{unit} still there:\n{after}");
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/system.slice/{unit}")).exists(), "the scope's cgroup is left");
}
