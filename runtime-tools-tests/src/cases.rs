//! The cases: one per opencontainers/runtime-tools `validation/` case (same
//! names), written from the runtime-spec, plus extra cases for spec features
//! upstream lacks. Where upstream asserts something the spec does not say,
//! the case follows the spec and says so in a comment.

use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{ns_proc_name, parse_mountinfo};
use crate::ctx::Ctx;

pub struct Case {
    pub name: &'static str,
    pub run: fn(&mut Ctx),
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        pub const CASES: &[Case] = &[$(Case { name: stringify!($name), run: $name }),*];
    };
}

cases!(
    config_updates_without_affect, create, default, delete, delete_only_create_resources,
    delete_resources, hooks, hooks_stdin, hostname, kill, kill_no_effect, killsig,
    linux_cgroups_blkio, linux_cgroups_cpus, linux_cgroups_devices, linux_cgroups_hugetlb,
    linux_cgroups_memory, linux_cgroups_network, linux_cgroups_pids,
    linux_cgroups_relative_blkio, linux_cgroups_relative_cpus, linux_cgroups_relative_devices,
    linux_cgroups_relative_hugetlb, linux_cgroups_relative_memory, linux_cgroups_relative_network,
    linux_cgroups_relative_pids, linux_devices, linux_masked_paths, linux_mount_label,
    linux_ns_itype, linux_ns_nopath, linux_ns_path, linux_ns_path_type,
    linux_process_apparmor_profile, linux_readonly_paths, linux_rootfs_propagation,
    linux_seccomp, linux_sysctl, linux_uid_mappings, misc_props, mounts, pidfile, poststart,
    poststart_fail, poststop, poststop_fail, prestart, prestart_fail, process,
    process_capabilities, process_capabilities_fail, process_oom_score_adj, process_rlimits,
    process_rlimits_fail, process_user, root_readonly_true, start, state,
    // extra cases: spec features the upstream suite lacks
    linux_time_namespace, linux_domainname, process_io_priority, process_scheduler,
    linux_seccomp_notify, linux_idmapped_mounts, linux_cgroups_unified,
);

fn args(v: &[&str]) -> Value {
    json!(v)
}

fn sh() -> &'static str {
    if Path::new("/bin/sh").exists() { "/bin/sh" } else { "/usr/bin/sh" }
}

/// A hook running `script` with the host's shell. The state on stdin is
/// always consumed (see FAILING_HOOK for why).
fn hook(script: &str) -> Value {
    let script = if script.starts_with("cat") || script.starts_with("read") {
        script.to_string()
    } else {
        format!("cat > /dev/null; {script}")
    };
    json!({"path": sh(), "args": ["sh", "-c", script]})
}

/// A hook that fails. It reads the state first: a hook that exits before the
/// runtime has written the state to its stdin makes that write hit EPIPE,
/// and some runtimes then die of SIGPIPE — a different bug from the one the
/// *_fail cases look for.
const FAILING_HOOK: &str = "cat > /dev/null; exit 1";

fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

// ---------------------------------------------------------------------------
// lifecycle / CLI cases
// ---------------------------------------------------------------------------

/// The config the runtime read at `create` is the one that counts: rewriting
/// bundle/config.json afterwards must not change the container.
fn config_updates_without_affect(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["linux"]["maskedPaths"].as_array_mut().unwrap().push(json!("/proc/kcore"));
    cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    cfg["process"]["oomScoreAdj"] = json!(100);
    cfg["hostname"] = json!("rtt-original");
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if !c.check(c.create(&b, &id).ok, "create succeeds") {
        return;
    }
    let mut changed = cfg.clone();
    changed["hostname"] = json!("rtt-changed");
    changed["process"]["args"] = args(&["/bin/false"]);
    changed["process"]["oomScoreAdj"] = json!(200);
    c.write_config(&b, &changed);
    c.check(c.start(&id).ok, "start succeeds after config.json was rewritten");
    c.check(c.wait_status(&id, "stopped", 20), "the container process exits");
    c.collect_checker(&b);
    c.check(c.delete(&id).ok, "delete succeeds");
}

fn create(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["/rtt-checker", "echo", "CONTAINER-RAN"]);
    let b = c.bundle(&cfg);
    c.check(!c.create(&b, "").ok, "create without an ID fails");
    let id = c.new_id();
    c.check(c.create(&b, &id).ok, "create succeeds");
    c.check(c.status(&id).as_deref() == Some("created"), "state is `created` after create");
    std::thread::sleep(Duration::from_millis(300));
    c.check(!b.output().contains("CONTAINER-RAN"), "the user process does not run before start");
    c.check(!c.create(&b, &id).ok, "create with an ID already in use fails");
    c.check(c.status(&id).as_deref() == Some("created"), "the failed duplicate create leaves the container alone");
    c.check(c.start(&id).ok, "start succeeds");
    c.check(wait_for(10, || b.output().contains("CONTAINER-RAN")), "the user process runs after start");
    c.wait_status(&id, "stopped", 10);
    c.delete(&id);
}

/// The default config, everything verified from inside.
fn default(c: &mut Ctx) {
    let cfg = c.base_config();
    c.lifecycle(&cfg, None);
}

fn delete(c: &mut Ctx) {
    c.check(!c.rt(&["delete"]).ok, "delete without an ID fails");
    c.check(!c.delete("rtt-no-such-container").ok, "delete of an unknown container fails");
    // created container: spec lifecycle says delete of a non-stopped container MUST error
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["true"]);
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if c.check(c.create(&b, &id).ok, "create succeeds") {
        c.check(!c.delete(&id).ok, "delete of a `created` container fails");
        c.check(c.state(&id).is_some(), "... and has no effect (state still works)");
    }
    // running container
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["sleep", "30"]);
    let b = c.bundle(&cfg);
    let id2 = c.new_id();
    if c.check(c.create(&b, &id2).ok, "create succeeds") && c.check(c.start(&id2).ok, "start succeeds") {
        c.check(!c.delete(&id2).ok, "delete of a `running` container fails");
        c.check(c.status(&id2).as_deref() == Some("running"), "... and has no effect (still running)");
        c.kill(&id2, "KILL");
        c.check(c.wait_status(&id2, "stopped", 10), "the killed container is `stopped`");
        c.check(c.delete(&id2).ok, "delete of a `stopped` container succeeds");
        c.check(c.state(&id2).is_none(), "state of a deleted container fails");
    }
    c.delete_force(&id);
}

/// Resources associated with the container but not created by the runtime
/// MUST NOT be deleted: a cgroup made by the test that the container's
/// process is moved into survives `delete`.
fn delete_only_create_resources(c: &mut Ctx) {
    let foreign = match cg_mode() {
        CgMode::V1 => match v1_mount("pids") {
            Some(m) => m.join(format!("{}-foreign", c.cgprefix)),
            None => return c.skip("no pids cgroup hierarchy"),
        },
        CgMode::V2(root) => root.join(format!("{}-foreign", c.cgprefix)),
    };
    if fs::create_dir(&foreign).is_err() {
        return c.skip("cannot create a test cgroup");
    }
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["true"]);
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if c.check(c.create(&b, &id).ok, "create succeeds") {
        let pid = c.pid(&id).unwrap_or(0);
        let moved = fs::write(foreign.join("cgroup.procs"), pid.to_string()).is_ok();
        c.check(moved, "moved the container process into a cgroup the runtime did not create");
        c.check(c.start(&id).ok, "start succeeds");
        c.check(c.wait_status(&id, "stopped", 10), "the container process exits");
        c.check(c.delete(&id).ok, "delete succeeds");
        c.check(foreign.exists(), "the cgroup the runtime did not create still exists after delete");
    }
    let _ = fs::remove_dir(&foreign);
}

/// delete removes what create made: the container's cgroup and its state.
fn delete_resources(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["true"]);
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if !c.check(c.create(&b, &id).ok, "create succeeds") {
        return;
    }
    let pid = c.pid(&id).unwrap_or(0);
    let dirs = host_cg_dirs(pid);
    c.check(!dirs.is_empty(), "the container has cgroups");
    c.check(c.start(&id).ok, "start succeeds");
    c.check(c.wait_status(&id, "stopped", 10), "the container process exits");
    c.check(c.delete(&id).ok, "delete succeeds");
    c.check(c.state(&id).is_none(), "state fails after delete");
    let left: Vec<_> = dirs.iter().filter(|d| d.exists()).collect();
    c.check(left.is_empty(), &format!("the container's cgroups are removed (left: {left:?})"));
    // a zombie counts as gone: reaping orphans is the host init's job
    let st = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let gone = st.is_empty() || st.rsplit(')').next().map(|r| r.trim_start().starts_with('Z')).unwrap_or(true);
    c.check(pid == 0 || gone, "the container process is gone");
}

/// prestart/createRuntime/createContainer/startContainer/poststart/poststop
/// run, each once and in the order the spec's lifecycle gives.
fn hooks(c: &mut Ctx) {
    let log = c.dir.join("hooks.log");
    let l = log.display().to_string();
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["/rtt-checker", "echo", "CONTAINER-RAN"]);
    cfg["hooks"] = json!({
        "prestart": [hook(&format!("echo prestart >> {l}"))],
        "createRuntime": [hook(&format!("echo createRuntime >> {l}"))],
        // createContainer runs in the container's namespaces before pivot_root:
        // the host path is still reachable there
        "createContainer": [hook(&format!("echo createContainer >> {l}"))],
        // startContainer runs inside the container: its path resolves there
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo startContainer >> /rtt-start.log"]}],
        "poststart": [hook(&format!("echo poststart >> {l}"))],
        "poststop": [hook(&format!("echo poststop >> {l}"))],
    });
    let b = c.bundle(&cfg);
    let id = c.new_id();
    let read = || fs::read_to_string(&log).unwrap_or_default();
    if !c.check(c.create(&b, &id).ok, "create succeeds") {
        return;
    }
    let after_create = read();
    c.check(after_create.contains("prestart"), "prestart ran during create");
    c.check(after_create.contains("createRuntime"), "createRuntime ran during create");
    c.check(after_create.contains("createContainer"), "createContainer ran during create");
    c.check(!after_create.contains("poststart"), "poststart did not run before start");
    c.check(c.start(&id).ok, "start succeeds");
    c.check(read().contains("poststart"), "poststart ran before start returned");
    c.wait_status(&id, "stopped", 10);
    c.check(fs::read_to_string(b.rootfs().join("rtt-start.log")).unwrap_or_default().contains("startContainer"),
        "startContainer ran inside the container");
    c.check(!read().contains("poststop"), "poststop did not run before delete");
    c.check(c.delete(&id).ok, "delete succeeds");
    let all = read();
    c.note(&format!("hook order: {}", all.replace('\n', " ")));
    let pos = |h: &str| all.lines().position(|l| l == h);
    for h in ["prestart", "createRuntime", "createContainer", "poststart", "poststop"] {
        c.check(all.lines().filter(|l| *l == h).count() == 1, &format!("{h} ran exactly once"));
    }
    c.check(pos("createRuntime") < pos("createContainer"), "createRuntime before createContainer");
    c.check(pos("prestart") < pos("poststart"), "prestart before poststart");
    c.check(pos("poststart") < pos("poststop"), "poststart before poststop");
}

/// Hooks get the container state on stdin, plus their args and env.
fn hooks_stdin(c: &mut Ctx) {
    let d = c.dir.display().to_string();
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["true"]);
    let h = |name: &str| json!({"path": sh(), "args": ["sh", "-c", format!("cat > {d}/{name}.json; echo \"$0 $RTT_HOOK\" > {d}/{name}.env"), "argzero"],
        "env": [format!("RTT_HOOK={name}")]});
    cfg["hooks"] = json!({"prestart": [h("prestart")], "poststart": [h("poststart")], "poststop": [h("poststop")]});
    cfg["annotations"] = json!({"org.rtt.hooks": "stdin"});
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if !c.check(c.create(&b, &id).ok, "create succeeds") {
        return;
    }
    c.check(c.start(&id).ok, "start succeeds");
    c.wait_status(&id, "stopped", 10);
    c.check(c.delete(&id).ok, "delete succeeds");
    for name in ["prestart", "poststart", "poststop"] {
        let raw = fs::read_to_string(c.dir.join(format!("{name}.json"))).unwrap_or_default();
        let st: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
        c.check(!st.is_null(), &format!("{name}: stdin is the state JSON"));
        if st.is_null() {
            c.note(&format!("{name} stdin: {raw:?}"));
            continue;
        }
        c.check(st.get("ociVersion").and_then(|v| v.as_str()).is_some(), &format!("{name}: state has ociVersion"));
        c.check(st.get("id").and_then(|v| v.as_str()) == Some(id.as_str()), &format!("{name}: state.id"));
        c.check(st.get("status").and_then(|v| v.as_str()).is_some(), &format!("{name}: state.status"));
        c.check(st.get("bundle").and_then(|v| v.as_str()) == Some(b.path().as_str()), &format!("{name}: state.bundle is the absolute bundle path"));
        if name != "poststop" {
            c.check(st.get("pid").and_then(|v| v.as_i64()).unwrap_or(0) > 0, &format!("{name}: state.pid"));
        }
        c.check(st.pointer("/annotations/org.rtt.hooks").and_then(|v| v.as_str()) == Some("stdin"), &format!("{name}: state.annotations"));
        let env = fs::read_to_string(c.dir.join(format!("{name}.env"))).unwrap_or_default();
        c.check(env.trim() == format!("argzero {name}"), &format!("{name}: hook args and env are passed (got {:?})", env.trim()));
    }
}

fn hostname(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["hostname"] = json!("rtt-hostname-test");
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "hostname"]);
    c.lifecycle(&cfg, None);
}

fn kill(c: &mut Ctx) {
    c.check(!c.rt(&["kill"]).ok, "kill without an ID fails");
    c.check(!c.kill("rtt-no-such-container", "KILL").ok, "kill of an unknown container fails");
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["sleep", "100"]);
    // running container
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if c.check(c.create(&b, &id).ok, "create succeeds") && c.check(c.start(&id).ok, "start succeeds") {
        c.check(c.kill(&id, "KILL").ok, "kill KILL of a running container succeeds");
        c.check(c.wait_status(&id, "stopped", 10), "the running container is stopped by SIGKILL");
    }
    c.delete_force(&id);
    // created container: kill applies to `created` too
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if c.check(c.create(&b, &id).ok, "create succeeds") {
        c.check(c.kill(&id, "KILL").ok, "kill KILL of a created container succeeds");
        c.check(c.wait_status(&id, "stopped", 10), "the created container is stopped by SIGKILL");
    }
    c.delete_force(&id);
}

/// Signalling a stopped container MUST have no effect on it.
fn kill_no_effect(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["true"]);
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if c.check(c.create(&b, &id).ok, "create succeeds") && c.check(c.start(&id).ok, "start succeeds") {
        c.check(c.wait_status(&id, "stopped", 10), "the container stops");
        let before = c.state(&id);
        let r = c.kill(&id, "KILL");
        c.note(&format!("kill of a stopped container returned {}", if r.ok { "success" } else { "an error" }));
        let after = c.state(&id);
        c.check(before.is_some() && before == after, "kill of a stopped container does not change its state");
    }
    c.delete_force(&id);
}

/// Signals given by name, SIG-name and number reach the container process.
fn killsig(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["/rtt-checker", "sigwait"]);
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if c.check(c.create(&b, &id).ok, "create succeeds") && c.check(c.start(&id).ok, "start succeeds") {
        c.check(wait_for(10, || b.output().contains("ready")), "the signal waiter is ready");
        for (sig, num) in [("USR1", 10), ("SIGHUP", 1), ("12", 12), ("TERM", 15)] {
            let r = c.kill(&id, sig);
            c.check(r.ok, &format!("kill {sig} succeeds"));
            let line = format!("signal {num}");
            c.check(wait_for(5, || b.output().lines().any(|l| l == line)), &format!("the container process received {sig}"));
        }
        c.check(c.wait_status(&id, "stopped", 10), "the container stops after TERM");
    }
    c.delete_force(&id);
}

fn pidfile(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["true"]);
    let b = c.bundle(&cfg);
    let id = c.new_id();
    let pf = c.dir.join("ctr.pid");
    let pfs = pf.display().to_string();
    if c.check(c.create_with(&b, &id, &["--pid-file", &pfs]).ok, "create --pid-file succeeds") {
        let got = fs::read_to_string(&pf).unwrap_or_default();
        let pid = c.pid(&id);
        c.check(pid.is_some() && got.trim() == pid.unwrap().to_string(), &format!("the pid file ({got:?}) holds the state pid ({pid:?})"));
    }
    c.delete_force(&id);
}

/// prestart hooks are called during create, after the environment exists and
/// before the user process starts; they see the container's pid.
fn prestart(c: &mut Ctx) {
    let out = c.dir.join("prestart.out");
    let o = out.display().to_string();
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["/rtt-checker", "echo", "CONTAINER-RAN"]);
    // the hook records the container's net namespace: it must already exist
    cfg["hooks"] = json!({"prestart": [hook(&format!("read s; p=$(echo \"$s\" | sed 's/.*\"pid\": *\\([0-9]*\\).*/\\1/'); readlink /proc/$p/ns/net > {o}"))]});
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if !c.check(c.create(&b, &id).ok, "create succeeds") {
        return;
    }
    let got = fs::read_to_string(&out).unwrap_or_default();
    let pid = c.pid(&id).unwrap_or(0);
    let ns = fs::read_link(format!("/proc/{pid}/ns/net")).map(|p| p.display().to_string()).unwrap_or_default();
    c.check(!got.trim().is_empty(), "the prestart hook ran during create");
    c.check(got.trim() == ns && !ns.is_empty(), "the prestart hook saw the container's (new) network namespace");
    c.check(!b.output().contains("CONTAINER-RAN"), "the user process had not run when prestart ran");
    c.check(c.start(&id).ok, "start succeeds");
    c.wait_status(&id, "stopped", 10);
    c.delete(&id);
}

/// A failing prestart hook: the runtime MUST generate an error, stop the
/// container and go on with delete; the user process must never run.
fn prestart_fail(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["/rtt-checker", "echo", "CONTAINER-RAN"]);
    cfg["hooks"] = json!({"prestart": [hook(FAILING_HOOK)]});
    let b = c.bundle(&cfg);
    let id = c.new_id();
    let created = c.create(&b, &id).ok;
    let started = created && c.start(&id).ok;
    c.check(!created || !started, "create or start reports the failing prestart hook as an error");
    std::thread::sleep(Duration::from_millis(300));
    c.check(!b.output().contains("CONTAINER-RAN"), "the user process did not run");
    let st = c.status(&id);
    c.check(st.is_none() || st.as_deref() == Some("stopped"), &format!("the container is stopped or gone (status {st:?})"));
    c.delete_force(&id);
}

fn poststart(c: &mut Ctx) {
    let out = c.dir.join("poststart.out");
    let o = out.display().to_string();
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["sleep", "30"]);
    cfg["hooks"] = json!({"poststart": [hook(&format!("cat > {o}"))]});
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if c.check(c.create(&b, &id).ok, "create succeeds") {
        c.check(!out.exists(), "poststart did not run at create");
        c.check(c.start(&id).ok, "start succeeds");
        let st: Value = serde_json::from_str(&fs::read_to_string(&out).unwrap_or_default()).unwrap_or(Value::Null);
        c.check(!st.is_null(), "poststart ran before start returned, with the state on stdin");
        c.check(st.get("pid").and_then(|v| v.as_i64()).map(|p| p as i32) == c.pid(&id), "poststart saw the container's pid");
    }
    c.delete_force(&id);
}

/// A failing poststart hook: the runtime MUST log a warning and the
/// remaining hooks and the lifecycle continue as if it had succeeded.
fn poststart_fail(c: &mut Ctx) {
    let log = c.dir.join("hooks.log");
    let l = log.display().to_string();
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["/rtt-checker", "echo", "CONTAINER-RAN"]);
    cfg["hooks"] = json!({"poststart": [hook(FAILING_HOOK), hook(&format!("echo second >> {l}"))]});
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if c.check(c.create(&b, &id).ok, "create succeeds") {
        let r = c.start(&id);
        c.note(&format!("start returned {}", if r.ok { "success" } else { "an error" }));
        c.check(wait_for(10, || b.output().contains("CONTAINER-RAN")), "the user process ran");
        c.check(fs::read_to_string(&log).unwrap_or_default().contains("second"), "the poststart hook after the failing one ran");
        c.check(r.ok, "start succeeds (the failure is only a warning)");
    }
    c.delete_force(&id);
}

fn poststop(c: &mut Ctx) {
    let out = c.dir.join("poststop.out");
    let o = out.display().to_string();
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["true"]);
    cfg["hooks"] = json!({"poststop": [hook(&format!("cat > {o}"))]});
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if c.check(c.create(&b, &id).ok, "create succeeds") && c.check(c.start(&id).ok, "start succeeds") {
        c.check(c.wait_status(&id, "stopped", 10), "the container stops");
        c.check(!out.exists(), "poststop did not run before delete");
        c.check(c.delete(&id).ok, "delete succeeds");
        let st: Value = serde_json::from_str(&fs::read_to_string(&out).unwrap_or_default()).unwrap_or(Value::Null);
        c.check(st.get("id").and_then(|v| v.as_str()) == Some(id.as_str()), "poststop ran at delete with the state on stdin");
    }
    c.delete_force(&id);
}

/// A failing poststop hook: warning only; the remaining hooks run and the
/// container is deleted.
fn poststop_fail(c: &mut Ctx) {
    let log = c.dir.join("hooks.log");
    let l = log.display().to_string();
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["true"]);
    cfg["hooks"] = json!({"poststop": [hook(FAILING_HOOK), hook(&format!("echo second >> {l}"))]});
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if c.check(c.create(&b, &id).ok, "create succeeds") && c.check(c.start(&id).ok, "start succeeds") {
        c.check(c.wait_status(&id, "stopped", 10), "the container stops");
        let r = c.delete(&id);
        c.check(r.ok, "delete succeeds (the failure is only a warning)");
        c.check(fs::read_to_string(&log).unwrap_or_default().contains("second"), "the poststop hook after the failing one ran");
        c.check(c.state(&id).is_none(), "the container is deleted");
    }
    c.delete_force(&id);
}

fn start(c: &mut Ctx) {
    c.check(!c.rt(&["start"]).ok, "start without an ID fails");
    c.check(!c.start("rtt-no-such-container").ok, "start of an unknown container fails");
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["/rtt-checker", "echo", "CONTAINER-RAN"]);
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if c.check(c.create(&b, &id).ok, "create succeeds") {
        c.check(c.start(&id).ok, "start succeeds");
        c.check(wait_for(10, || b.output().contains("CONTAINER-RAN")), "the user process ran");
        c.check(c.wait_status(&id, "stopped", 10), "the container stops");
        c.check(!c.start(&id).ok, "start of a stopped container fails");
        c.check(c.status(&id).as_deref() == Some("stopped"), "... and has no effect");
    }
    c.delete_force(&id);
}

fn state(c: &mut Ctx) {
    c.check(c.state("rtt-no-such-container").is_none(), "state of an unknown container fails");
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["sleep", "30"]);
    cfg["annotations"] = json!({"org.rtt.state": "yes"});
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if !c.check(c.create(&b, &id).ok, "create succeeds") {
        return;
    }
    let st = c.state(&id).unwrap_or(Value::Null);
    c.note(&format!("state: {st}"));
    c.check(st.get("ociVersion").and_then(|v| v.as_str()).map(|s| !s.is_empty()).unwrap_or(false), "state.ociVersion");
    c.check(st.get("id").and_then(|v| v.as_str()) == Some(id.as_str()), "state.id");
    c.check(st.get("status").and_then(|v| v.as_str()) == Some("created"), "state.status is created");
    let pid = st.get("pid").and_then(|v| v.as_i64()).unwrap_or(0);
    c.check(pid > 0 && Path::new(&format!("/proc/{pid}")).exists(), "state.pid is a live process");
    c.check(st.get("bundle").and_then(|v| v.as_str()) == Some(b.path().as_str()), "state.bundle is the absolute bundle path");
    c.check(st.pointer("/annotations/org.rtt.state").and_then(|v| v.as_str()) == Some("yes"), "state.annotations");
    c.start(&id);
    c.check(c.status(&id).as_deref() == Some("running"), "state.status is running after start");
    c.check(c.pid(&id) == Some(pid as i32), "state.pid is unchanged by start");
    c.kill(&id, "KILL");
    c.check(c.wait_status(&id, "stopped", 10), "state.status is stopped after the process exits");
    c.delete_force(&id);
}

/// Unknown annotations and properties are ignored; an invalid value
/// (ociVersion "invalid") is refused.
fn misc_props(c: &mut Ctx) {
    let run = |c: &mut Ctx, cfg: &Value| -> bool {
        let b = c.bundle(cfg);
        let id = c.new_id();
        let ok = c.create(&b, &id).ok && c.start(&id).ok;
        if ok {
            c.wait_status(&id, "stopped", 10);
        }
        let del = c.delete(&id).ok;
        c.delete_force(&id);
        ok && del
    };
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["true"]);
    cfg["annotations"] = json!({"org.rtt.unknown.annotation": ""});
    let r = run(c, &cfg);
    c.check(r, "an unknown annotation key is not an error");
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["true"]);
    cfg["unknown"] = json!("unknown");
    cfg["linux"]["unknownLinuxProperty"] = json!({"x": 1});
    let r = run(c, &cfg);
    c.check(r, "an unknown property is not an error");
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["true"]);
    cfg["ociVersion"] = json!("invalid");
    let r = run(c, &cfg);
    c.check(!r, "an invalid ociVersion is refused");
}

// ---------------------------------------------------------------------------
// process
// ---------------------------------------------------------------------------

fn process(c: &mut Ctx) {
    let mut cfg = c.base_config();
    fs::create_dir_all(c.template.join("home")).ok();
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "args", "cwd", "env", "user", "rlimits", "nnp"]);
    cfg["process"]["cwd"] = json!("/home");
    cfg["process"]["env"].as_array_mut().unwrap().push(json!("RTT_PROCESS=with spaces=and equals"));
    c.lifecycle(&cfg, None);
}

fn process_capabilities(c: &mut Ctx) {
    let mut cfg = c.base_config();
    // For uid 0 execve() makes permitted = effective = bounding (the kernel's
    // root rules), so a config a runtime can honour exactly has them equal.
    let set = json!(["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID"]);
    cfg["process"]["capabilities"] = json!({
        "bounding": set, "effective": set, "permitted": set,
        "inheritable": ["CAP_CHOWN", "CAP_KILL"],
        "ambient": ["CAP_CHOWN"]
    });
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "caps"]);
    c.lifecycle(&cfg, None);
}

fn refused(c: &mut Ctx, cfg: &Value, what: &str) {
    let b = c.bundle(cfg);
    let id = c.new_id();
    let created = c.create(&b, &id).ok;
    let started = created && c.start(&id).ok;
    if started {
        c.wait_status(&id, "stopped", 5);
    }
    c.check(!created || !started, what);
    std::thread::sleep(Duration::from_millis(200));
    c.check(!b.output().contains("CONTAINER-RAN"), &format!("{what}: the user process did not run"));
    c.delete_force(&id);
}

/// An unknown capability name (CAP_TEST).
///
/// Differs from upstream: upstream expects the runtime to refuse the config
/// (runtime-spec 1.0: "MUST cause the runtime to fail"). Since runtime-spec
/// 1.1 a capability that cannot be mapped to a kernel interface MUST be
/// logged as a warning and runtimes SHOULD NOT fail, so this case checks the
/// container runs with the capabilities that do exist. A runtime that still
/// refuses the config is reported in a note, not as a failure.
fn process_capabilities_fail(c: &mut Ctx) {
    let mut cfg = c.base_config();
    for set in ["bounding", "effective", "permitted"] {
        cfg["process"]["capabilities"][set].as_array_mut().unwrap().push(json!("CAP_TEST"));
    }
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "caps"]);
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if !c.create(&b, &id).ok {
        c.note("the runtime refused the unknown capability (runtime-spec 1.0 behaviour)");
        c.check(true, "the unknown capability is refused at create");
        c.delete_force(&id);
        return;
    }
    c.check(c.start(&id).ok, "start succeeds");
    c.check(c.wait_status(&id, "stopped", 20), "the container process exits");
    c.collect_checker(&b);
    c.delete_force(&id);
}

fn process_oom_score_adj(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["process"]["oomScoreAdj"] = json!(500);
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "oom"]);
    c.lifecycle(&cfg, None);
}

fn process_rlimits(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 2048},
        {"type": "RLIMIT_CORE", "hard": 0, "soft": 0},
        {"type": "RLIMIT_NPROC", "hard": 2000, "soft": 1000},
        {"type": "RLIMIT_MSGQUEUE", "hard": 819200, "soft": 409600}
    ]);
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "rlimits"]);
    c.lifecycle(&cfg, None);
}

fn process_rlimits_fail(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["/rtt-checker", "echo", "CONTAINER-RAN"]);
    cfg["process"]["rlimits"] = json!([{"type": "RLIMIT_TEST", "hard": 1024, "soft": 1024}]);
    refused(c, &cfg, "an unknown rlimit type is refused");
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["/rtt-checker", "echo", "CONTAINER-RAN"]);
    cfg["process"]["rlimits"] = json!([
        // the second entry only lowers the limit, so applying both in turn
        // cannot fail for another reason (EPERM on raising a hard limit)
        {"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 2048},
        {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}
    ]);
    refused(c, &cfg, "duplicate rlimit entries are refused");
}

fn process_user(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["process"]["user"] = json!({"uid": 1, "gid": 1, "additionalGids": [10, 65534], "umask": 0o027});
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "user", "cwd", "env"]);
    c.lifecycle(&cfg, None);
}

fn root_readonly_true(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["root"]["readonly"] = json!(true);
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "root", "mounts"]);
    c.lifecycle(&cfg, None);
}

fn process_io_priority(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "iopriority"]);
    c.lifecycle(&cfg, None);
}

fn process_scheduler(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "scheduler"]);
    c.lifecycle(&cfg, None);
}

fn linux_process_apparmor_profile(c: &mut Ctx) {
    if fs::read_to_string("/sys/module/apparmor/parameters/enabled").map(|s| s.trim() == "Y").unwrap_or(false) {
        let mut cfg = c.base_config();
        // "unconfined" always exists where AppArmor is enabled
        cfg["process"]["apparmorProfile"] = json!("unconfined");
        cfg["process"]["args"] = args(&["/rtt-checker", "check", "apparmor"]);
        c.lifecycle(&cfg, None);
    } else {
        c.skip("AppArmor is not enabled on this kernel");
    }
}

fn linux_mount_label(c: &mut Ctx) {
    if !Path::new("/sys/fs/selinux/enforce").exists() {
        return c.skip("SELinux is not enabled on this kernel");
    }
    let mut cfg = c.base_config();
    cfg["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0:c1,c2");
    cfg["mounts"].as_array_mut().unwrap().push(json!({"destination": "/mnt/label", "type": "tmpfs", "source": "tmpfs"}));
    cfg["process"]["args"] = args(&["/bin/sh", "-c", "ls -Zd /mnt/label"]);
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if c.check(c.create(&b, &id).ok, "create succeeds") && c.check(c.start(&id).ok, "start succeeds") {
        c.wait_status(&id, "stopped", 10);
        c.check(b.output().contains("c1,c2"), "the tmpfs carries the mount label");
    }
    c.delete_force(&id);
}

// ---------------------------------------------------------------------------
// filesystem
// ---------------------------------------------------------------------------

fn linux_devices(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["linux"]["devices"] = json!([
        {"path": "/dev/rtt-char", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 0, "gid": 0},
        {"path": "/dev/rtt-unbuf", "type": "u", "major": 1, "minor": 5, "fileMode": 0o640, "uid": 1, "gid": 10},
        {"path": "/dev/rtt-block", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600},
        {"path": "/dev/rtt-fifo", "type": "p", "fileMode": 0o620}
    ]);
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "devices"]);
    c.lifecycle(&cfg, None);
}

fn linux_masked_paths(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["linux"]["maskedPaths"] = json!(["/masked-dir", "/masked-file", "/masked-absent", "/proc/kcore", "/masked-dir-link"]);
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "masked"]);
    let b = c.bundle(&cfg);
    fs::create_dir_all(b.rootfs().join("masked-dir")).unwrap();
    fs::write(b.rootfs().join("masked-dir/secret"), "secret").unwrap();
    fs::write(b.rootfs().join("masked-file"), "secret").unwrap();
    // a symlink in maskedPaths: masking follows it inside the rootfs
    fs::create_dir_all(b.rootfs().join("masked-target")).unwrap();
    fs::write(b.rootfs().join("masked-target/secret"), "secret").unwrap();
    std::os::unix::fs::symlink("/masked-target", b.rootfs().join("masked-dir-link")).unwrap();
    c.lifecycle_bundle(&b, None);
}

fn linux_readonly_paths(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["linux"]["readonlyPaths"] = json!(["/ro-dir", "/ro-file", "/ro-absent", "/proc/sys"]);
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "readonly"]);
    let b = c.bundle(&cfg);
    fs::create_dir_all(b.rootfs().join("ro-dir")).unwrap();
    fs::write(b.rootfs().join("ro-file"), "x").unwrap();
    c.lifecycle_bundle(&b, None);
}

fn linux_rootfs_propagation(c: &mut Ctx) {
    for p in ["shared", "slave", "private", "unbindable"] {
        let mut cfg = c.base_config();
        cfg["linux"]["rootfsPropagation"] = json!(p);
        cfg["process"]["args"] = args(&["/rtt-checker", "check", "propagation"]);
        c.note(&format!("rootfsPropagation {p}"));
        c.lifecycle(&cfg, None);
    }
}

fn mounts(c: &mut Ctx) {
    let src = c.dir.join("share");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("hello"), "hello").unwrap();
    let s = src.display().to_string();
    let mut cfg = c.base_config();
    let m = cfg["mounts"].as_array_mut().unwrap();
    m.push(json!({"destination": "/mnt/tmpfs", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "mode=755", "size=1m"]}));
    m.push(json!({"destination": "/mnt/bind", "type": "bind", "source": s, "options": ["rbind", "rw"]}));
    m.push(json!({"destination": "/mnt/robind", "source": s, "options": ["bind", "ro"]}));
    m.push(json!({"destination": "/mnt/nested/deeper/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]}));
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "mounts"]);
    c.lifecycle(&cfg, None);
}

fn linux_sysctl(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.msgmax": "4096", "net.core.somaxconn": "256"});
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "sysctl"]);
    c.lifecycle(&cfg, None);
}

fn linux_seccomp(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]
    });
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "seccomp"]);
    c.lifecycle(&cfg, None);
}

fn userns_config(c: &mut Ctx) -> Value {
    let mut cfg = c.base_config();
    cfg["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    // no sysfs/cgroup mounts: a user namespace without a cgroup namespace
    // cannot mount them on every kernel
    cfg["mounts"] = json!(cfg["mounts"].as_array().unwrap().iter().filter(|m| {
        let d = m["destination"].as_str().unwrap_or("");
        d != "/sys" && d != "/sys/fs/cgroup"
    }).cloned().collect::<Vec<_>>());
    cfg
}

/// A bundle whose rootfs belongs to the container's root user, as a user
/// namespace needs (the runtime must be able to create mount points in it).
fn userns_bundle(c: &mut Ctx, cfg: &Value) -> crate::ctx::Bundle {
    let b = c.bundle(cfg);
    let id = |k: &str| cfg.pointer(&format!("/linux/{k}/0/hostID")).and_then(|v| v.as_u64()).unwrap_or(0);
    let _ = Command::new("chown").arg("-R").arg("-h").arg(format!("{}:{}", id("uidMappings"), id("gidMappings")))
        .arg(b.rootfs()).status();
    b
}

fn linux_uid_mappings(c: &mut Ctx) {
    let mut cfg = userns_config(c);
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "uidmap", "user", "mounts"]);
    let b = userns_bundle(c, &cfg);
    c.lifecycle_bundle(&b, None);
}

/// Idmapped mounts (mounts[].uidMappings/gidMappings): a directory owned by
/// host root, idmapped with the container's own mapping, shows as owned by
/// container root (without the idmap it would show as the overflow uid).
fn linux_idmapped_mounts(c: &mut Ctx) {
    let src = c.dir.join("idmap-src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("owned-by-root"), "x").unwrap();
    let mut cfg = userns_config(c);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    cfg["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt/idmap", "type": "bind", "source": src.display().to_string(),
        "options": ["rbind", "idmap"], "uidMappings": map, "gidMappings": map
    }));
    cfg["annotations"] = json!({"rtt.idmap.expect-uid": "0"});
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "idmap"]);
    let b = userns_bundle(c, &cfg);
    c.lifecycle_bundle(&b, None);
}

fn linux_domainname(c: &mut Ctx) {
    let mut cfg = c.base_config();
    cfg["domainname"] = json!("rtt.example");
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "hostname", "domainname"]);
    c.lifecycle(&cfg, None);
}

fn linux_time_namespace(c: &mut Ctx) {
    if !Path::new("/proc/self/ns/time").exists() {
        return c.skip("the kernel has no time namespaces");
    }
    let mut cfg = c.base_config();
    cfg["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "time"}));
    cfg["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 172800, "nanosecs": 500}});
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "timens"]);
    let mut insp = |c: &mut Ctx, pid: i32| {
        let host = fs::read_link("/proc/self/ns/time").ok();
        let ctr = fs::read_link(format!("/proc/{pid}/ns/time_for_children")).ok()
            .or_else(|| fs::read_link(format!("/proc/{pid}/ns/time")).ok());
        c.check(ctr.is_some() && ctr != host, "the container gets a new time namespace");
    };
    c.lifecycle(&cfg, Some(&mut insp));
}

// ---------------------------------------------------------------------------
// namespaces
// ---------------------------------------------------------------------------

fn ns_link(pid: &str, t: &str) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/ns/{}", ns_proc_name(t))).ok().map(|p| p.display().to_string())
}

/// Namespace types the config does not list are inherited from the runtime.
fn linux_ns_itype(c: &mut Ctx) {
    let mut cfg = c.base_config();
    // Upstream removes every namespace, mount included. We keep the mount
    // namespace: without it the runtime would have to pivot the host's own
    // root, which the spec allows but no test machine can survive.
    cfg["linux"]["namespaces"] = json!([{"type": "mount"}]);
    cfg.as_object_mut().unwrap().remove("hostname");
    cfg["mounts"] = json!([
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
    ]);
    cfg["linux"].as_object_mut().unwrap().remove("maskedPaths");
    cfg["linux"].as_object_mut().unwrap().remove("readonlyPaths");
    cfg["process"]["args"] = args(&["true"]);
    let insp = |c: &mut Ctx, pid: i32| {
        for t in ["pid", "network", "ipc", "uts", "user", "cgroup"] {
            let h = ns_link("self", t);
            let g = ns_link(&pid.to_string(), t);
            c.check(h.is_some() && h == g, &format!("{t} namespace is inherited ({g:?} vs host {h:?})"));
        }
    };
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if c.check(c.create(&b, &id).ok, "create succeeds") {
        let pid = c.pid(&id).unwrap_or(0);
        insp(c, pid);
        c.start(&id);
        c.wait_status(&id, "stopped", 10);
    }
    c.delete_force(&id);
}

/// Namespace types listed without a path are new namespaces.
fn linux_ns_nopath(c: &mut Ctx) {
    let mut cfg = c.base_config();
    let types = ["pid", "network", "ipc", "uts", "mount", "cgroup"];
    cfg["linux"]["namespaces"] = json!(types.iter().map(|t| json!({"type": t})).collect::<Vec<_>>());
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "hostname", "mounts"]);
    let mut insp = |c: &mut Ctx, pid: i32| {
        for t in types {
            let h = ns_link("self", t);
            let g = ns_link(&pid.to_string(), t);
            c.check(g.is_some() && h != g, &format!("{t} namespace is new ({g:?} vs host {h:?})"));
        }
    };
    c.lifecycle(&cfg, Some(&mut insp));
}

/// Start a process holding fresh ipc/uts/net/cgroup/pid namespaces; returns
/// the pid of the process inside them.
fn ns_holder(c: &mut Ctx) -> Option<u32> {
    let ch = Command::new("unshare")
        .args(["--ipc", "--uts", "--net", "--cgroup", "--pid", "--fork", "--kill-child", "sleep", "300"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let up = ch.id();
    c.track_pid(up);
    let mut holder = None;
    wait_for(5, || {
        let kids = fs::read_to_string(format!("/proc/{up}/task/{up}/children")).unwrap_or_default();
        holder = kids.split_whitespace().next().and_then(|p| p.parse::<u32>().ok());
        holder.is_some()
    });
    if let Some(h) = holder {
        c.track_pid(h);
        // wait until the child has left unshare's namespaces
        wait_for(5, || ns_link(&h.to_string(), "network") != ns_link("self", "network"));
    }
    std::mem::forget(ch);
    holder
}

/// Namespaces given by path are joined.
fn linux_ns_path(c: &mut Ctx) {
    let Some(h) = ns_holder(c) else { return c.skip("cannot start a namespace holder with unshare(1)") };
    let types = ["ipc", "uts", "network", "cgroup", "pid"];
    let mut cfg = c.base_config();
    let mut ns: Vec<Value> = types.iter().map(|t| json!({"type": t, "path": format!("/proc/{h}/ns/{}", ns_proc_name(t))})).collect();
    // The mount namespace is always new here: joining another process's
    // mount namespace would put the rootfs setup there.
    ns.push(json!({"type": "mount"}));
    cfg["linux"]["namespaces"] = json!(ns);
    // no hostname: this case is about joining, not about writing into a
    // namespace someone else owns
    cfg.as_object_mut().unwrap().remove("hostname");
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "args"]);
    let mut insp = |c: &mut Ctx, pid: i32| {
        for t in types {
            let want = ns_link(&h.to_string(), t);
            let got = ns_link(&pid.to_string(), t);
            c.check(want.is_some() && want == got, &format!("joined the {t} namespace by path ({got:?}, want {want:?})"));
        }
    };
    c.lifecycle(&cfg, Some(&mut insp));
    unsafe { libc::kill(h as i32, libc::SIGKILL) };
}

/// A namespace path of the wrong type MUST make the runtime fail.
fn linux_ns_path_type(c: &mut Ctx) {
    let Some(h) = ns_holder(c) else { return c.skip("cannot start a namespace holder with unshare(1)") };
    let mut cfg = c.base_config();
    cfg["process"]["args"] = args(&["/rtt-checker", "echo", "CONTAINER-RAN"]);
    cfg["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"},
        {"type": "ipc", "path": format!("/proc/{h}/ns/net")}, {"type": "network"}]);
    refused(c, &cfg, "an ipc namespace path that is a network namespace is refused");
    unsafe { libc::kill(h as i32, libc::SIGKILL) };
}

// ---------------------------------------------------------------------------
// seccomp notify
// ---------------------------------------------------------------------------

const SECCOMP_IOCTL_NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const SECCOMP_IOCTL_NOTIF_SEND: libc::c_ulong = 0xc018_2101;

struct NotifyResult {
    got_fd: bool,
    state: String,
    answered: usize,
}

/// Accept one connection on `sock`, take the seccomp fd passed with
/// SCM_RIGHTS, answer every notification with EXDEV until the filter goes away.
fn notify_listener(sock: PathBuf, secs: u64) -> std::thread::JoinHandle<NotifyResult> {
    use std::os::unix::io::AsRawFd;
    let l = std::os::unix::net::UnixListener::bind(&sock).expect("bind listener socket");
    std::thread::spawn(move || {
        let mut r = NotifyResult { got_fd: false, state: String::new(), answered: 0 };
        l.set_nonblocking(true).ok();
        let start = Instant::now();
        let conn = loop {
            match l.accept() {
                Ok((s, _)) => break Some(s),
                Err(_) if start.elapsed() < Duration::from_secs(secs) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break None,
            }
        };
        let Some(conn) = conn else { return r };
        conn.set_nonblocking(false).ok();
        let fd = conn.as_raw_fd();
        let mut buf = vec![0u8; 65536];
        let mut cbuf = [0u64; 32];
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut _, iov_len: buf.len() };
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut _;
        msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
        if n <= 0 {
            return r;
        }
        r.state = String::from_utf8_lossy(&buf[..n as usize]).into_owned();
        let mut nfd = -1;
        unsafe {
            let cm = libc::CMSG_FIRSTHDR(&msg);
            if !cm.is_null() && (*cm).cmsg_level == libc::SOL_SOCKET && (*cm).cmsg_type == libc::SCM_RIGHTS {
                nfd = *(libc::CMSG_DATA(cm) as *const i32);
            }
        }
        if nfd < 0 {
            return r;
        }
        r.got_fd = true;
        while start.elapsed() < Duration::from_secs(secs) {
            let mut p = libc::pollfd { fd: nfd, events: libc::POLLIN, revents: 0 };
            if unsafe { libc::poll(&mut p, 1, 200) } <= 0 {
                continue;
            }
            if p.revents & libc::POLLIN != 0 {
                let mut notif = [0u8; 80];
                if unsafe { libc::ioctl(nfd, SECCOMP_IOCTL_NOTIF_RECV as _, notif.as_mut_ptr()) } != 0 {
                    continue;
                }
                let mut resp = [0u8; 24];
                resp[0..8].copy_from_slice(&notif[0..8]);
                resp[16..20].copy_from_slice(&(-libc::EXDEV).to_le_bytes());
                if unsafe { libc::ioctl(nfd, SECCOMP_IOCTL_NOTIF_SEND as _, resp.as_mut_ptr()) } == 0 {
                    r.answered += 1;
                }
            } else if p.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                break;
            }
        }
        unsafe { libc::close(nfd) };
        r
    })
}

fn linux_seccomp_notify(c: &mut Ctx) {
    let sock = c.dir.join("seccomp.sock");
    let mut cfg = c.base_config();
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "listenerPath": sock.display().to_string(),
        "listenerMetadata": "rtt-metadata",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"}]
    });
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "seccomp"]);
    let th = notify_listener(sock, 40);
    c.lifecycle(&cfg, None);
    let r = th.join().unwrap_or(NotifyResult { got_fd: false, state: String::new(), answered: 0 });
    c.check(r.got_fd, "the runtime sent the seccomp notify fd to listenerPath");
    let st: Value = serde_json::from_str(&r.state).unwrap_or(Value::Null);
    c.check(st.get("metadata").and_then(|v| v.as_str()) == Some("rtt-metadata"), "the container process state carries listenerMetadata");
    c.check(st.get("fds").and_then(|v| v.as_array()).map(|a| a.iter().any(|f| f == "seccompFd")).unwrap_or(false),
        "the container process state names the seccompFd");
    c.check(st.pointer("/state/id").and_then(|v| v.as_str()).is_some(), "the container process state carries the container state");
    c.check(r.answered > 0, "the listener received and answered a notification");
}

// ---------------------------------------------------------------------------
// cgroups
// ---------------------------------------------------------------------------

pub enum CgMode {
    V1,
    V2(PathBuf),
}

pub fn cg_mode() -> CgMode {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        CgMode::V2(PathBuf::from("/sys/fs/cgroup"))
    } else {
        CgMode::V1
    }
}

fn v1_mount(controller: &str) -> Option<PathBuf> {
    parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
        .into_iter()
        .find(|m| m.fstype == "cgroup" && m.super_opts.split(',').any(|o| o == controller))
        .map(|m| PathBuf::from(m.mount_point))
}

/// (controller list, path) from /proc/PID/cgroup
fn proc_cgroups(pid: i32) -> Vec<(String, String)> {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(3, ':').collect();
            (f.len() == 3).then(|| (f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

/// The cgroup path of `pid` for `controller` (v1) or its unified path (v2).
fn cg_path_of(pid: i32, controller: &str) -> Option<String> {
    let all = proc_cgroups(pid);
    match cg_mode() {
        CgMode::V2(_) => all.into_iter().find(|(c, _)| c.is_empty()).map(|(_, p)| p),
        CgMode::V1 => all.into_iter().find(|(c, _)| c.split(',').any(|x| x == controller)).map(|(_, p)| p),
    }
}

fn host_cg_dir(pid: i32, controller: &str) -> Option<PathBuf> {
    let p = cg_path_of(pid, controller)?;
    let base = match cg_mode() {
        CgMode::V2(root) => root,
        CgMode::V1 => v1_mount(controller)?,
    };
    Some(base.join(p.trim_start_matches('/')))
}

/// Every cgroup directory of `pid` below the hierarchy roots.
fn host_cg_dirs(pid: i32) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for (ctrls, p) in proc_cgroups(pid) {
        if p == "/" {
            continue;
        }
        let base = match cg_mode() {
            CgMode::V2(root) if ctrls.is_empty() => Some(root),
            CgMode::V2(_) => None,
            CgMode::V1 => ctrls.split(',').map(|c| c.trim_start_matches("name=")).find_map(|c| {
                parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
                    .into_iter()
                    .find(|m| m.fstype == "cgroup" && m.super_opts.split(',').any(|o| o == c || o == format!("name={c}")))
                    .map(|m| PathBuf::from(m.mount_point))
            }),
        };
        if let Some(b) = base {
            v.push(b.join(p.trim_start_matches('/')));
        }
    }
    v
}

fn controller_available(ctrl: &str) -> bool {
    match cg_mode() {
        CgMode::V1 => v1_mount(ctrl).is_some(),
        CgMode::V2(root) => fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default().split_whitespace().any(|c| c == ctrl),
    }
}

/// An expected cgroup file value.
struct Want {
    ctrl: &'static str,
    file: String,
    /// exact (trimmed) content, or a line that must be present
    value: String,
    line: bool,
}

fn want(ctrl: &'static str, file: &str, value: impl ToString) -> Want {
    Want { ctrl, file: file.to_string(), value: value.to_string(), line: false }
}
fn want_line(ctrl: &'static str, file: &str, value: impl ToString) -> Want {
    Want { ctrl, file: file.to_string(), value: value.to_string(), line: true }
}

fn block_device() -> Option<(u64, u64)> {
    let mut names: Vec<String> = fs::read_dir("/sys/block").ok()?.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for n in names {
        if n.starts_with("loop") || n.starts_with("zram") || n.starts_with("ram") {
            continue;
        }
        let d = fs::read_to_string(format!("/sys/block/{n}/dev")).ok()?;
        let (a, b) = d.trim().split_once(':')?;
        return Some((a.parse().ok()?, b.parse().ok()?));
    }
    None
}

fn cgroup_case(c: &mut Ctx, kind: &str, relative: bool) {
    let v2 = matches!(cg_mode(), CgMode::V2(_));
    let mut cfg = c.base_config();
    let path = if relative { c.relative_cgroups_path() } else { c.cgroups_path() };
    cfg["linux"]["cgroupsPath"] = json!(path);
    let mut wants: Vec<Want> = Vec::new();
    let res = &mut cfg["linux"]["resources"];
    match kind {
        "memory" => {
            if !controller_available("memory") {
                return c.skip("no memory controller");
            }
            let (limit, resv, swap) = (52428800i64, 26214400i64, 104857600i64);
            res["memory"] = json!({"limit": limit, "reservation": resv});
            if v2 {
                wants.push(want("memory", "memory.max", limit));
                wants.push(want("memory", "memory.low", resv));
                res["memory"]["swap"] = json!(swap);
                // v2's swap limit excludes memory: swap.max = swap - limit
                wants.push(want("memory", "memory.swap.max", swap - limit));
            } else {
                wants.push(want("memory", "memory.limit_in_bytes", limit));
                wants.push(want("memory", "memory.soft_limit_in_bytes", resv));
                let m = v1_mount("memory").unwrap();
                if m.join("memory.memsw.limit_in_bytes").exists() {
                    res["memory"]["swap"] = json!(swap);
                    wants.push(want("memory", "memory.memsw.limit_in_bytes", swap));
                }
                res["memory"]["swappiness"] = json!(50);
                wants.push(want("memory", "memory.swappiness", 50));
                res["memory"]["disableOOMKiller"] = json!(true);
                wants.push(want_line("memory", "memory.oom_control", "oom_kill_disable 1"));
            }
        }
        "cpus" => {
            res["cpu"] = json!({"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"});
            if v2 {
                // runtime-spec does not define the shares → cpu.weight
                // conversion; this is the one runc and crun use
                // (1 + (shares - 2) * 9999 / 262142).
                // Newer runtimes (runc >= 1.3, libcgroups, recent crun) use a
                // log-scale conversion under which the default 1024 shares map
                // to the default weight 100; both conversions are accepted.
                wants.push(want("cpu", "cpu.weight", format!("{}|100", 1 + ((1024 - 2) * 9999) / 262142)));
                wants.push(want("cpu", "cpu.max", "50000 100000"));
                wants.push(want("cpuset", "cpuset.cpus", "0"));
                wants.push(want("cpuset", "cpuset.mems", "0"));
            } else {
                wants.push(want("cpu", "cpu.shares", 1024));
                wants.push(want("cpu", "cpu.cfs_quota_us", 50000));
                wants.push(want("cpu", "cpu.cfs_period_us", 100000));
                wants.push(want("cpuset", "cpuset.cpus", "0"));
                wants.push(want("cpuset", "cpuset.mems", "0"));
            }
        }
        "pids" => {
            if !controller_available("pids") {
                return c.skip("no pids controller");
            }
            res["pids"] = json!({"limit": 42});
            wants.push(want("pids", "pids.max", 42));
        }
        "blkio" => {
            let ctrl = if v2 { "io" } else { "blkio" };
            if !controller_available(ctrl) {
                return c.skip("no blkio/io controller");
            }
            let Some((ma, mi)) = block_device() else { return c.skip("no block device to throttle") };
            res["blockIO"] = json!({
                "throttleReadBpsDevice": [{"major": ma, "minor": mi, "rate": 1048576}],
                "throttleWriteBpsDevice": [{"major": ma, "minor": mi, "rate": 2097152}],
                "throttleReadIOPSDevice": [{"major": ma, "minor": mi, "rate": 300}],
                "throttleWriteIOPSDevice": [{"major": ma, "minor": mi, "rate": 400}]
            });
            if v2 {
                wants.push(want_line("blkio", "io.max", format!("{ma}:{mi} rbps=1048576 wbps=2097152 riops=300 wiops=400")));
            } else {
                wants.push(want_line("blkio", "blkio.throttle.read_bps_device", format!("{ma}:{mi} 1048576")));
                wants.push(want_line("blkio", "blkio.throttle.write_bps_device", format!("{ma}:{mi} 2097152")));
                wants.push(want_line("blkio", "blkio.throttle.read_iops_device", format!("{ma}:{mi} 300")));
                wants.push(want_line("blkio", "blkio.throttle.write_iops_device", format!("{ma}:{mi} 400")));
                // blkio.weight only exists with the CFQ/BFQ scheduler
                let m = v1_mount("blkio").unwrap();
                for f in ["blkio.weight", "blkio.bfq.weight"] {
                    if m.join(f).exists() {
                        res["blockIO"]["weight"] = json!(500);
                        wants.push(want_line("blkio", f, "500"));
                        break;
                    }
                }
                if res["blockIO"].get("weight").is_none() {
                    c.note("blkio.weight is not available on this kernel: weight not tested");
                }
            }
        }
        "hugetlb" => {
            if !controller_available("hugetlb") {
                return c.skip("no hugetlb controller");
            }
            if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
                return c.skip("no 2MB huge pages");
            }
            res["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 8388608}]);
            wants.push(want("hugetlb", if v2 { "hugetlb.2MB.max" } else { "hugetlb.2MB.limit_in_bytes" }, 8388608));
        }
        "network" => {
            if v2 {
                return c.skip("cgroup v2 has no network controller");
            }
            if v1_mount("net_cls").is_none() || v1_mount("net_prio").is_none() {
                return c.skip("net_cls/net_prio controllers are not mounted");
            }
            res["network"] = json!({"classID": 1048577, "priorities": [{"name": "lo", "priority": 2}]});
            wants.push(want("net_cls", "net_cls.classid", 1048577));
            wants.push(want_line("net_prio", "net_prio.ifpriomap", "lo 2"));
        }
        "devices" => {
            // Enforcement is checked from inside (works for v1 and v2's eBPF
            // device controller): two block device nodes (7:0, 7:1) made by
            // the test and bind-mounted in — not through linux.devices, which
            // some runtimes allow implicitly — one allowed read-only, one not
            // allowed at all. An allowed open may still fail (no such
            // device): only EPERM counts as a denial.
            let nodes = c.dir.join("devnodes");
            fs::create_dir_all(&nodes).unwrap();
            for (n, mi) in [("allowed", 0), ("denied", 1)] {
                let p = std::ffi::CString::new(nodes.join(n).display().to_string()).unwrap();
                if unsafe { libc::mknod(p.as_ptr(), libc::S_IFBLK | 0o666, libc::makedev(7, mi)) } != 0 {
                    return c.skip("cannot mknod test device nodes");
                }
            }
            res["devices"] = json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "b", "major": 7, "minor": 0, "access": "r"}
            ]);
            let m = cfg["mounts"].as_array_mut().unwrap();
            for n in ["allowed", "denied"] {
                m.push(json!({"destination": format!("/dev/rtt-{n}"), "type": "bind",
                    "source": nodes.join(n).display().to_string(), "options": ["bind"]}));
            }
            cfg["annotations"] = json!({"rtt.devaccess": "/dev/rtt-allowed:r:ok,/dev/rtt-allowed:w:EPERM,/dev/rtt-denied:r:EPERM,/dev/null:w:ok"});
            if !v2 {
                wants.push(want_line("devices", "devices.list", "b 7:0 r"));
            }
        }
        _ => unreachable!(),
    }
    cfg["process"]["args"] = args(&["/rtt-checker", "check", "cgroup", "devaccess"]);
    let expect_path = path.clone();
    let mut insp = |c: &mut Ctx, pid: i32| {
        let ctrls: Vec<&str> = {
            let mut v: Vec<&str> = wants.iter().map(|w| w.ctrl).collect();
            if v.is_empty() {
                v.push("devices");
            }
            v.dedup();
            v
        };
        for ctrl in ctrls {
            let got = cg_path_of(pid, ctrl).unwrap_or_default();
            let ok = if relative { got.ends_with(&format!("/{expect_path}")) } else { got == expect_path };
            c.check(ok, &format!("{ctrl} cgroup path is {} cgroupsPath {expect_path} (got {got})", if relative { "relative" } else { "the absolute" }));
        }
        for w in &wants {
            let f = host_cg_dir(pid, w.ctrl).map(|d| d.join(&w.file));
            let got = f.as_ref().and_then(|f| fs::read_to_string(f).ok()).unwrap_or_default();
            // `a|b`: either value is accepted (where the spec leaves the choice open).
            let ok = w.value.split('|').any(|v| if w.line { got.lines().any(|l| l.trim() == v) } else { got.trim() == v });
            c.check(ok, &format!("{} is {:?} (got {:?})", w.file, w.value, got.trim()));
        }
    };
    c.lifecycle(&cfg, Some(&mut insp));
}

fn linux_cgroups_blkio(c: &mut Ctx) { cgroup_case(c, "blkio", false) }
fn linux_cgroups_cpus(c: &mut Ctx) { cgroup_case(c, "cpus", false) }
fn linux_cgroups_devices(c: &mut Ctx) { cgroup_case(c, "devices", false) }
fn linux_cgroups_hugetlb(c: &mut Ctx) { cgroup_case(c, "hugetlb", false) }
fn linux_cgroups_memory(c: &mut Ctx) { cgroup_case(c, "memory", false) }
fn linux_cgroups_network(c: &mut Ctx) { cgroup_case(c, "network", false) }
fn linux_cgroups_pids(c: &mut Ctx) { cgroup_case(c, "pids", false) }
fn linux_cgroups_relative_blkio(c: &mut Ctx) { cgroup_case(c, "blkio", true) }
fn linux_cgroups_relative_cpus(c: &mut Ctx) { cgroup_case(c, "cpus", true) }
fn linux_cgroups_relative_devices(c: &mut Ctx) { cgroup_case(c, "devices", true) }
fn linux_cgroups_relative_hugetlb(c: &mut Ctx) { cgroup_case(c, "hugetlb", true) }
fn linux_cgroups_relative_memory(c: &mut Ctx) { cgroup_case(c, "memory", true) }
fn linux_cgroups_relative_network(c: &mut Ctx) { cgroup_case(c, "network", true) }
fn linux_cgroups_relative_pids(c: &mut Ctx) { cgroup_case(c, "pids", true) }

/// linux.resources.unified: cgroup v2 only.
fn linux_cgroups_unified(c: &mut Ctx) {
    let CgMode::V2(_) = cg_mode() else {
        return c.skip("linux.resources.unified needs a cgroup v2 host");
    };
    let mut cfg = c.base_config();
    cfg["linux"]["resources"]["unified"] = json!({"pids.max": "37", "memory.high": "41943040"});
    cfg["process"]["args"] = args(&["true"]);
    let insp = |c: &mut Ctx, pid: i32| {
        for (f, v) in [("pids.max", "37"), ("memory.high", "41943040")] {
            let got = host_cg_dir(pid, "").map(|d| fs::read_to_string(d.join(f)).unwrap_or_default()).unwrap_or_default();
            c.check(got.trim() == v, &format!("{f} is {v} (got {:?})", got.trim()));
        }
    };
    let b = c.bundle(&cfg);
    let id = c.new_id();
    if c.check(c.create(&b, &id).ok, "create succeeds") {
        let pid = c.pid(&id).unwrap_or(0);
        insp(c, pid);
    }
    c.delete_force(&id);
}
