//! Container lifecycle: create → start → stopped → delete, the refused
//! transitions, and the `state` JSON.

use skiff_integration_tests::*;
use std::fs;
use std::time::Duration;

#[test]
fn create_start_stop_delete() {
    require_root!();
    let mut env = TestEnv::new("lifecycle");
    let out = env.bind_dir("out", "/out", false);
    env.set_sh("while [ ! -e /out/go ]; do sleep 0.05; done; echo done > /out/finished");

    env.create().ok();
    let st = env.state();
    assert_eq!(st["status"], "created", "after create: {st}");
    let pid = st["pid"].as_i64().unwrap_or(0) as i32;
    assert!(pid > 0, "created container must have pid > 0: {st}");
    assert!(pid_alive(pid), "init pid {pid} is not alive after create");
    assert!(!out.join("finished").exists(), "process ran before start");

    env.start().ok();
    let st = env.state();
    assert_eq!(st["status"], "running", "after start: {st}");
    assert_eq!(st["pid"].as_i64().unwrap_or(0) as i32, pid, "pid changed on start");

    fs::write(out.join("go"), "").unwrap();
    env.wait_status("stopped");
    assert!(out.join("finished").exists(), "process did not finish");

    env.rt(&["delete", &env.id]).ok();
    let gone = env.state_out(&env.id);
    gone.failed();
    assert!(!env.root.join(&env.id).exists(), "state dir still exists after delete");
    assert!(env.cgroup_dirs(&env.id).is_empty(), "cgroup dirs remain after delete: {:?}", env.cgroup_dirs(&env.id));
}

#[test]
fn delete_created_container() {
    require_root!();
    let mut env = TestEnv::new("delete-created");
    env.set_args(&["sleep", "1000"]);
    env.create().ok();
    let pid = env.state()["pid"].as_i64().unwrap() as i32;
    env.rt(&["delete", &env.id]).ok();
    env.state_out(&env.id).failed();
    assert!(
        wait_until(Duration::from_secs(5), || {
            env.reap_tracked();
            !pid_alive(pid)
        }),
        "init {pid} still alive after deleting a created container"
    );
    env.assert_no_leftovers(&env.id);
}

#[test]
fn start_twice_is_refused() {
    require_root!();
    let mut env = TestEnv::new("start-twice");
    env.set_args(&["sleep", "1000"]);
    env.create().ok();
    env.start().ok();
    env.start().failed();
    assert_eq!(env.state()["status"], "running", "container must still be running");
}

#[test]
fn start_stopped_is_refused() {
    require_root!();
    let mut env = TestEnv::new("start-stopped");
    env.set_args(&["true"]);
    env.create().ok();
    env.start().ok();
    env.wait_status("stopped");
    env.start().failed();
    assert_eq!(env.state()["status"], "stopped");
}

#[test]
fn delete_running_needs_force() {
    require_root!();
    let mut env = TestEnv::new("delete-running");
    env.set_args(&["sleep", "1000"]);
    env.create().ok();
    env.start().ok();
    let pid = env.state()["pid"].as_i64().unwrap() as i32;
    env.rt(&["delete", &env.id]).failed();
    let st = env.state();
    assert_eq!(st["status"], "running", "delete without --force must leave it running: {st}");
    assert!(pid_alive(pid));

    env.rt(&["delete", "--force", &env.id]).ok();
    env.state_out(&env.id).failed();
    assert!(
        wait_until(Duration::from_secs(5), || {
            env.reap_tracked();
            !pid_alive(pid)
        }),
        "init {pid} still alive after delete --force"
    );
    env.assert_no_leftovers(&env.id);
}

#[test]
fn kill_stopped_is_refused() {
    require_root!();
    let mut env = TestEnv::new("kill-stopped");
    env.set_args(&["true"]);
    env.create().ok();
    env.start().ok();
    env.wait_status("stopped");
    env.rt(&["kill", &env.id, "KILL"]).failed();
}

#[test]
fn duplicate_id_is_refused() {
    require_root!();
    let mut env = TestEnv::new("dup-id");
    env.set_args(&["sleep", "1000"]);
    env.create().ok();
    let before = env.state();
    env.create().failed();
    let after = env.state();
    assert_eq!(after["status"], "created", "original container disturbed: {after}");
    assert_eq!(after["pid"], before["pid"], "original container replaced");
}

#[test]
fn invalid_ids_are_refused() {
    require_root!();
    let mut env = TestEnv::new("bad-ids");
    env.set_args(&["true"]);
    for bad in ["a/b", "..", "../x", "/abs"] {
        env.write_config();
        let b = env.bundle.to_string_lossy().into_owned();
        let out = env.rt(&["create", "--bundle", &b, bad]);
        out.failed();
        assert!(!env.root.join("a").exists(), "id {bad:?} created state under root");
        assert!(!env.dir.join("x").exists(), "id {bad:?} escaped the root");
        if env.root.exists() {
            let entries: Vec<_> = fs::read_dir(&env.root).unwrap().flatten().map(|e| e.file_name()).collect();
            assert!(entries.is_empty(), "id {bad:?} left state entries {entries:?}");
        }
        assert!(env.marked_processes().is_empty(), "id {bad:?} left processes");
    }
}

#[test]
fn state_json_fields() {
    require_root!();
    let mut env = TestEnv::new("state-json");
    env.set_args(&["sleep", "1000"]);
    env.config["annotations"] = serde_json::json!({"org.skiff.test": "yes", "x.y": "z w"});
    env.write_config();
    // Pass the bundle as a RELATIVE path: state must report it absolute.
    let out = env.rt(&["create", "--bundle", "bundle", &env.id]);
    out.ok();
    let st = env.state();
    assert!(st["ociVersion"].as_str().is_some_and(|s| !s.is_empty()), "ociVersion: {st}");
    assert_eq!(st["id"], env.id.as_str());
    assert!(st["pid"].as_i64().unwrap_or(0) > 0, "pid: {st}");
    assert_eq!(st["status"], "created");
    let bundle = fs::canonicalize(&env.bundle).unwrap();
    assert_eq!(st["bundle"].as_str(), Some(bundle.to_str().unwrap()), "bundle must be absolute: {st}");
    let rootfs = st["rootfs"].as_str().unwrap_or_else(|| panic!("rootfs missing: {st}"));
    assert_eq!(fs::canonicalize(rootfs).ok(), fs::canonicalize(&env.rootfs).ok(), "rootfs: {st}");
    assert!(rootfs.starts_with('/'), "rootfs must be absolute: {st}");
    let created = st["created"].as_str().unwrap_or_else(|| panic!("created missing: {st}"));
    assert!(is_rfc3339(created), "created is not RFC3339: {created}");
    assert!(st["owner"].is_string(), "owner missing: {st}");
    assert_eq!(st["annotations"], serde_json::json!({"org.skiff.test": "yes", "x.y": "z w"}));

    env.start().ok();
    let st2 = env.state();
    assert_eq!(st2["status"], "running");
    assert_eq!(st2["created"], st["created"], "created timestamp must not change");
}

#[test]
fn pid_file_holds_host_pid() {
    require_root!();
    let mut env = TestEnv::new("pid-file");
    env.set_args(&["sleep", "1000"]);
    let pf = env.dir.join("init.pid");
    let pfs = pf.to_string_lossy().into_owned();
    env.create_id(&env.id, &["--pid-file", &pfs]).ok();
    let text = fs::read_to_string(&pf).expect("pid file missing");
    let pid: i32 = text.trim().parse().unwrap_or_else(|_| panic!("pid file content {text:?}"));
    env.track_pid(pid);
    assert_eq!(env.state()["pid"].as_i64(), Some(pid as i64), "pid file != state pid");
    // host pid of the init: in its own pid namespace it is pid 1
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("no such host pid");
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap_or("");
    let last = nspid.split_whitespace().last().unwrap_or("");
    assert_eq!(last, "1", "pid {pid} is not the container init: {nspid}");
    assert_eq!(nspid.split_whitespace().nth(1), Some(pid.to_string().as_str()));
}

#[test]
fn list_formats() {
    require_root!();
    let mut env = TestEnv::new("list");
    env.set_args(&["sleep", "1000"]);
    let id2 = env.new_id();
    env.create().ok();
    env.create_id(&id2, &[]).ok();
    env.start_id(&id2).ok();

    let out = env.rt(&["list"]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let header: Vec<&str> = lines.first().unwrap_or(&"").split_whitespace().collect();
    assert_eq!(header, ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], "{}", out.describe());
    let row = |id: &str| -> Vec<String> {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("{id} not listed:\n{}", out.stdout))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(row(&env.id)[2], "created");
    assert_eq!(row(&id2)[2], "running");
    assert_eq!(lines.len(), 3, "exactly two containers expected:\n{}", out.stdout);

    let q = env.rt(&["list", "-q"]);
    q.ok();
    let mut ids: Vec<&str> = q.stdout.lines().collect();
    ids.sort();
    let mut want = vec![env.id.as_str(), id2.as_str()];
    want.sort();
    assert_eq!(ids, want, "list -q");

    let j = env.rt(&["list", "--format", "json"]);
    j.ok();
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", j.describe()));
    let arr = v.as_array().expect("list --format json must be an array");
    assert_eq!(arr.len(), 2);
    for c in arr {
        assert!(c["id"] == env.id.as_str() || c["id"] == id2.as_str());
        assert!(c["pid"].as_i64().unwrap_or(0) > 0, "{c}");
        assert!(c["bundle"].as_str().is_some_and(|b| b.starts_with('/')), "{c}");
        assert!(c["created"].as_str().is_some_and(is_rfc3339), "{c}");
        let want = if c["id"] == env.id.as_str() { "created" } else { "running" };
        assert_eq!(c["status"], want, "{c}");
    }
}

#[test]
fn list_empty_root() {
    require_root!();
    let env = TestEnv::new("list-empty");
    let q = env.rt(&["list", "-q"]);
    q.ok();
    assert_eq!(q.stdout.trim(), "", "list -q on an empty root");
    let j = env.rt(&["list", "--format", "json"]);
    j.ok();
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", j.describe()));
    assert!(v.is_null() || v.as_array().is_some_and(|a| a.is_empty()), "empty list: {v}");
}
