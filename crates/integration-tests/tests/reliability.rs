//! Crash consistency (docs/architecture.md, "Crash consistency"): skiff
//! SIGKILLed at every step of create, start, exec, delete and run
//! (`SKIFF_FAULT`, debug builds only) and during a hook; SIGTERM and
//! SIGINT; a corrupt state; a full or read-only state root; a recorded pid
//! now another process's; concurrent commands. After each, the container
//! must be listed and reported truthfully, `delete` must remove it
//! completely, and the id must be usable again.

use serde_json::{json, Value};
use skiff_integration_tests::*;
use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// How long a process left behind may take to go away on its own.
const GONE: Duration = Duration::from_secs(5);

const CREATE_STEPS: [&str; 5] = ["create:reserved", "create:cloned", "create:cgroup", "create:ready", "create:saved"];

/// Fault injection is skiff's own, and only its debug build has it (a
/// release build compiles the points to nothing, the variable's name
/// included): other runtimes and release builds (`just release-check`) skip
/// these tests.
fn fault_injection(test: &str) -> bool {
    static COMPILED_IN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let compiled_in = *COMPILED_IN.get_or_init(|| runtime_name() == "skiff" && std::fs::read(runtime_bin()).is_ok_and(|b| b.windows(11).any(|w| w == b"SKIFF_FAULT")));
    if compiled_in {
        return true;
    }
    skip_message(&format!("SKIPPED reliability::{test}: SKIFF_FAULT fault injection exists only in skiff's debug build\n"));
    false
}

/// The runtime with `SKIFF_FAULT=step`.
fn with_fault(env: &TestEnv, step: &str, args: &[&str]) -> Output {
    let mut cmd = env.command(args);
    cmd.env("SKIFF_FAULT", step);
    env.run_cmd(cmd)
}

#[track_caller]
fn assert_killed_at(out: &Output, step: &str) {
    assert!(out.signaled && out.code == 128 + libc::SIGKILL, "skiff was not killed at {step} (not a debug build?):\n{}", out.describe());
}

/// The init pid the state file records (0 if none), tracked for reaping.
fn recorded_pid(root: &Path, env: &TestEnv, id: &str) -> i32 {
    let text = fs::read_to_string(root.join(id).join("state.json")).unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let pid = v["pid"].as_i64().or_else(|| v["init_process_pid"].as_i64()).unwrap_or(0) as i32;
    env.track_pid(pid);
    pid
}

fn listed(env: &TestEnv, id: &str) -> bool {
    let out = env.rt(&["list", "-q"]);
    out.ok();
    out.stdout.lines().any(|l| l.trim() == id)
}

#[track_caller]
fn assert_gone(env: &TestEnv, pid: i32, what: &str) {
    if pid <= 0 {
        return;
    }
    let gone = wait_until(GONE, || {
        env.reap_tracked();
        !pid_alive(pid)
    });
    assert!(gone, "{what}: process {pid} still alive after {GONE:?}");
}

/// The id can be used again: create, delete --force, nothing left.
#[track_caller]
fn assert_reusable(env: &TestEnv, id: &str) {
    env.create_id(id, &[]).ok();
    assert_eq!(env.state_id(id)["status"], "created");
    env.rt(&["delete", "--force", id]).ok();
    env.assert_no_leftovers(id);
}

/// After a runtime was killed: the container is listed, stopped (its init,
/// if any, gone on its own), deleted by `delete` (plain or forced), leaves
/// nothing, and its id works again.
#[track_caller]
fn assert_stopped_and_cleanable(env: &TestEnv, id: &str, step: &str, force: bool) {
    assert!(listed(env, id), "{step}: `list` does not show {id}");
    let pid = recorded_pid(&env.root, env, id);
    env.wait_status_id(id, "stopped", GONE);
    assert_eq!(env.state_id(id)["pid"], 0, "{step}: a stopped container reports pid 0");
    assert_gone(env, pid, &format!("{step}: the init of a container whose runtime died"));
    let args: &[&str] = if force { &["delete", "--force", id] } else { &["delete", id] };
    env.rt(args).ok();
    env.assert_no_leftovers(id);
    assert_reusable(env, id);
}

fn sleeper(env: &mut TestEnv) {
    env.set_args(&["sleep", "1000"]);
}

#[test]
fn create_killed_at_each_step_is_stopped_and_cleanable() {
    require_root!();
    if !fault_injection("create_killed_at_each_step_is_stopped_and_cleanable") {
        return;
    }
    let mut env = TestEnv::new("rel-create-fault");
    sleeper(&mut env);
    for step in CREATE_STEPS {
        for force in [false, true] {
            let id = env.new_id();
            env.write_config_for(&id);
            let b = env.bundle.to_string_lossy().into_owned();
            assert_killed_at(&with_fault(&env, step, &["create", "--bundle", &b, &id]), step);
            assert_stopped_and_cleanable(&env, &id, step, force);
        }
    }
}

#[test]
fn run_killed_at_each_step_is_cleanable() {
    require_root!();
    if !fault_injection("run_killed_at_each_step_is_cleanable") {
        return;
    }
    let mut env = TestEnv::new("rel-run-fault");
    sleeper(&mut env);
    for step in CREATE_STEPS.iter().skip(1).chain(&["start:released"]) {
        let id = env.new_id();
        env.write_config_for(&id);
        let b = env.bundle.to_string_lossy().into_owned();
        assert_killed_at(&with_fault(&env, step, &["run", "--bundle", &b, &id]), step);
        if *step == "start:released" {
            assert_running_then_force_deleted(&env, &id, step);
        } else {
            assert_stopped_and_cleanable(&env, &id, step, false);
        }
    }
}

/// A container released before its runtime died runs: `running` (not
/// `created`), refused by a plain delete, removed by delete --force.
#[track_caller]
fn assert_running_then_force_deleted(env: &TestEnv, id: &str, step: &str) {
    assert!(listed(env, id), "{step}: `list` does not show {id}");
    env.wait_status_id(id, "running", GONE);
    env.rt(&["start", id]).failed();
    env.rt(&["delete", id]).failed().short_error(1);
    env.rt(&["delete", "--force", id]).ok();
    env.assert_no_leftovers(id);
    assert_reusable(env, id);
}

#[test]
fn start_killed_after_the_release_leaves_a_running_container() {
    require_root!();
    if !fault_injection("start_killed_after_the_release_leaves_a_running_container") {
        return;
    }
    let mut env = TestEnv::new("rel-start-fault");
    sleeper(&mut env);
    let id = env.id.clone();
    env.create().ok();
    assert_killed_at(&with_fault(&env, "start:released", &["start", &id]), "start:released");
    assert_running_then_force_deleted(&env, &id, "start:released");
}

#[test]
fn exec_killed_after_the_clone_leaves_the_container_as_it_was() {
    require_root!();
    if !fault_injection("exec_killed_after_the_clone_leaves_the_container_as_it_was") {
        return;
    }
    let mut env = TestEnv::new("rel-exec-fault");
    let out = env.bind_dir("out", "/out", false);
    sleeper(&mut env);
    let id = env.id.clone();
    env.run(&["-d"]).ok();
    let init = env.state()["pid"].as_i64().unwrap() as i32;
    for (n, detach) in [false, true].into_iter().enumerate() {
        let script = format!("touch /out/ran-{n}");
        let mut args = vec!["exec"];
        if detach {
            args.push("-d");
        }
        args.extend([id.as_str(), "sh", "-c", &script]);
        assert_killed_at(&with_fault(&env, "exec:cloned", &args), "exec:cloned");
        // The clone waits for Go: with the runtime gone it must exit.
        let mut left = Vec::new();
        let only_init = wait_until(GONE, || {
            left = env.marked_processes();
            left == [init]
        });
        assert!(only_init, "exec:cloned (detach {detach}): processes besides the init {init}: {left:?}");
        assert!(!out.join(format!("ran-{n}")).exists(), "the process of a killed exec ran");
        assert_eq!(env.state()["status"], "running");
    }
    env.rt(&["exec", &id, "true"]).ok();
    env.rt(&["delete", "--force", &id]).ok();
    env.assert_no_leftovers(&id);
    assert_reusable(&env, &id);
}

#[test]
fn delete_killed_after_the_kill_can_be_deleted_again() {
    require_root!();
    if !fault_injection("delete_killed_after_the_kill_can_be_deleted_again") {
        return;
    }
    let mut env = TestEnv::new("rel-delete-fault");
    sleeper(&mut env);
    for started in [false, true] {
        let id = env.new_id();
        env.create_id(&id, &[]).ok();
        if started {
            env.start_id(&id).ok();
        }
        let out = with_fault(&env, "delete:killed", &["delete", "--force", &id]);
        assert_killed_at(&out, "delete:killed");
        assert_stopped_and_cleanable(&env, &id, "delete:killed", false);
    }
}

/// The runtime under test, started in the background with the env's root
/// and marker; stdout and stderr go to `<dir>/<name>.out|.err`.
fn spawn_rt(env: &TestEnv, name: &str, args: &[&str]) -> Child {
    let mut cmd = env.command(args);
    let io = |ext: &str| Stdio::from(fs::File::create(env.dir.join(format!("{name}.{ext}"))).unwrap());
    cmd.stdin(Stdio::null()).stdout(io("out")).stderr(io("err")).process_group(0);
    cmd.spawn().expect("spawn the runtime")
}

/// Waits for `child` at most `timeout` (then SIGKILLs it and fails).
#[track_caller]
fn wait_child(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the runtime did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[track_caller]
fn wait_file(p: &Path, timeout: Duration) {
    assert!(wait_until(timeout, || fs::metadata(p).is_ok_and(|m| m.len() > 0)), "{} did not appear within {timeout:?}", p.display());
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: plain integers; `pid` is our own child, not yet reaped.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Starts `create` of the primary container with a createRuntime hook
/// running `script`, and returns once the hook has written `mark`.
fn create_in_hook(env: &mut TestEnv, script: &str, mark: &Path) -> (String, Child) {
    env.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    env.write_config();
    let b = env.bundle.to_string_lossy().into_owned();
    let id = env.id.clone();
    let rt = spawn_rt(env, "create", &["create", "--bundle", &b, &id]);
    wait_file(mark, Duration::from_secs(20));
    (id, rt)
}

#[test]
fn create_killed_during_a_hook_takes_the_hooks_children_with_it() {
    require_root!();
    let mut env = TestEnv::new("rel-hook-kill");
    sleeper(&mut env);
    let mark = env.dir.join("hook-child");
    let script = format!("sleep 600 & echo $! > {}; exec sleep 60", mark.display());
    let (id, mut rt) = create_in_hook(&mut env, &script, &mark);
    signal(rt.id(), libc::SIGKILL);
    wait_child(&mut rt, Duration::from_secs(10));
    let hook_child: i32 = fs::read_to_string(&mark).unwrap().trim().parse().unwrap();
    assert!(pid_alive(hook_child), "the hook's child is not running");
    assert!(listed(&env, &id), "`list` does not show {id}");
    recorded_pid(&env.root, &env, &id);
    env.wait_status_id(&id, "stopped", GONE);
    env.rt(&["delete", &id]).ok();
    assert!(wait_until(GONE, || !pid_alive(hook_child)), "the hook's child {hook_child} survived delete");
    env.assert_no_leftovers(&id);
    env.config["hooks"] = json!({});
    assert_reusable(&env, &id);
}

#[test]
fn sigterm_during_create_removes_the_container() {
    require_root!();
    let mut env = TestEnv::new("rel-sigterm");
    sleeper(&mut env);
    let mark = env.dir.join("hook-ran");
    let script = format!("echo ran > {}; sleep 2", mark.display());
    let (id, mut rt) = create_in_hook(&mut env, &script, &mark);
    recorded_pid(&env.root, &env, &id);
    signal(rt.id(), libc::SIGTERM);
    let st = wait_child(&mut rt, Duration::from_secs(30));
    let err = fs::read_to_string(env.dir.join("create.err")).unwrap_or_default();
    assert!(st.code().is_some_and(|c| c != 0), "create must exit non-zero (not die by the signal): {st:?}, stderr: {err}");
    assert!(err.contains("interrupted by SIGTERM"), "no interrupted message: {err}");
    assert_eq!(err.lines().filter(|l| !l.trim().is_empty()).count(), 1, "not one line: {err}");
    env.state_out(&id).failed();
    env.assert_no_leftovers(&id);
}

#[test]
fn sigint_to_a_foreground_run_reaches_the_container() {
    require_root!();
    let mut env = TestEnv::new("rel-sigint");
    let out = env.bind_dir("out", "/out", false);
    env.set_sh("trap 'exit 42' INT; echo ready > /out/ready; while :; do sleep 0.1; done");
    env.write_config();
    let b = env.bundle.to_string_lossy().into_owned();
    let id = env.id.clone();
    let mut rt = spawn_rt(&env, "run", &["run", "--bundle", &b, &id]);
    wait_file(&out.join("ready"), Duration::from_secs(20));
    signal(rt.id(), libc::SIGINT);
    let st = wait_child(&mut rt, Duration::from_secs(20));
    assert_eq!(st.code(), Some(42), "run did not exit with the trap's code: {st:?} (signal {:?})", st.signal());
    env.assert_no_leftovers(&id);
}

/// The corrupt variants of a state file.
fn corruptions(good: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    vec![("truncated", good[..good.len() / 2].to_vec()), ("garbage", b"\x00\x01garbage{".to_vec()), ("empty", Vec::new())]
}

#[test]
fn corrupt_state_is_reported_removable_and_skipped_by_list() {
    require_root!();
    let mut env = TestEnv::new("rel-corrupt");
    sleeper(&mut env);
    let healthy = env.new_id();
    env.create_id(&healthy, &[]).ok();
    for (what, _) in corruptions(b"{}") {
        let id = env.new_id();
        env.create_id(&id, &[]).ok();
        let init = recorded_pid(&env.root, &env, &id);
        let file = env.root.join(&id).join("state.json");
        let bytes = corruptions(&fs::read(&file).unwrap()).into_iter().find(|(w, _)| *w == what).unwrap().1;
        fs::write(&file, bytes).unwrap();
        let st = env.state_out(&id);
        st.failed().short_error(1);
        st.stderr_mentions(&[&file.to_string_lossy()]);
        let list = env.rt(&["list"]);
        list.ok();
        assert!(list.stdout.contains(&healthy), "{what}: list lost the healthy container:\n{}", list.describe());
        // Skipped, but not silently.
        list.stderr_mentions(&[&id]);
        env.rt(&["delete", "--force", &id]).ok();
        assert!(!env.root.join(&id).exists(), "{what}: the state directory is still there");
        // Found by its exec.fifo; its cgroup is not known without a state.
        assert_gone(&env, init, &format!("{what}: the init of a container whose state was corrupt"));
        assert!(env.cgroup_processes(&id).is_empty(), "{what}: processes left in the cgroup");
    }
    assert_eq!(env.state_id(&healthy)["status"], "created");
}

/// The runtime with another `--root` (and the env's marker).
fn cmd_in(env: &TestEnv, root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(runtime_bin());
    cmd.arg("--root").arg(root).args(args);
    cmd.env(MARKER_VAR, &env.marker).current_dir(&env.dir);
    cmd
}

/// `create` of the env's bundle with another `--root`.
fn create_in(env: &TestEnv, root: &Path, id: &str) -> Output {
    env.write_config_for(id);
    let mut cmd = cmd_in(env, root, &["create", "--bundle"]);
    cmd.arg(&env.bundle).arg(id);
    env.run_cmd(cmd)
}

/// Nothing of `id` anywhere: its state directory under `root`, a process,
/// a cgroup directory.
#[track_caller]
fn assert_nothing_of(env: &TestEnv, root: &Path, id: &str) {
    assert!(!root.join(id).exists(), "state directory {} left behind", root.join(id).display());
    let mut left = Vec::new();
    let none = wait_until(Duration::from_secs(2), || {
        env.reap_tracked();
        left = env.marked_processes();
        left.extend(env.cgroup_processes(id));
        left.is_empty()
    });
    assert!(none, "processes left behind: {left:?}");
    assert!(env.cgroup_dirs(id).is_empty(), "cgroup directories left behind: {:?}", env.cgroup_dirs(id));
}

#[test]
fn full_state_filesystem_fails_cleanly() {
    require_root!();
    let mut env = TestEnv::new("rel-full");
    sleeper(&mut env);
    let full = env.dir.join("full");
    fs::create_dir(&full).unwrap();
    nix::mount::mount(Some("tmpfs"), &full, Some("tmpfs"), nix::mount::MsFlags::empty(), Some("size=128k")).expect("mount a small tmpfs");
    let root = full.join("state");
    fs::create_dir(&root).unwrap();
    {
        use std::io::Write;
        let mut f = fs::File::create(full.join("filler")).unwrap();
        while f.write_all(&[0u8; 4096]).is_ok() {}
        while f.write_all(&[0u8]).is_ok() {}
    }
    let id = env.id.clone();
    let out = create_in(&env, &root, &id);
    out.failed().short_error(1).stderr_mentions(&["no space left on device"]);
    assert_nothing_of(&env, &root, &id);
    assert_eq!(fs::read_dir(&root).unwrap().count(), 0, "files left in the root: {:?}", fs::read_dir(&root).unwrap().flatten().map(|e| e.file_name()).collect::<Vec<_>>());
    nix::mount::umount2(&full, nix::mount::MntFlags::MNT_DETACH).unwrap();
    env.assert_no_leftovers(&id);
}

#[test]
fn read_only_state_root_fails_cleanly() {
    require_root!();
    let mut env = TestEnv::new("rel-ro");
    sleeper(&mut env);
    let ro = env.dir.join("ro");
    fs::create_dir(&ro).unwrap();
    use nix::mount::{mount, MsFlags};
    mount(Some(&ro), &ro, None::<&str>, MsFlags::MS_BIND, None::<&str>).unwrap();
    mount(None::<&str>, &ro, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None::<&str>).unwrap();
    let id = env.id.clone();
    for root in [ro.clone(), ro.join("sub")] {
        let out = create_in(&env, &root, &id);
        out.failed().short_error(1).stderr_mentions(&["read-only file system"]);
        assert_nothing_of(&env, &root, &id);
    }
    nix::mount::umount2(&ro, nix::mount::MntFlags::MNT_DETACH).unwrap();
    env.assert_no_leftovers(&id);
}

/// A `sleep 600` of the test's own, leading its process group, killed at
/// the end of the test.
fn bystander(env: &TestEnv) -> i32 {
    let mut child = Command::new("sleep").arg("600").process_group(0).spawn().unwrap();
    let pid = child.id() as i32;
    env.on_cleanup(move || {
        let _ = child.kill();
        let _ = child.wait();
    });
    pid
}

fn edit_state(root: &Path, id: &str, f: impl FnOnce(&mut Value)) {
    let p = root.join(id).join("state.json");
    let mut v: Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn a_recorded_pid_now_another_process_is_never_signalled() {
    require_root!();
    let mut env = TestEnv::new("rel-pid-reuse");
    sleeper(&mut env);
    let id = env.id.clone();
    env.create().ok();
    env.start().ok();
    let init = env.state()["pid"].as_i64().unwrap() as i32;
    env.rt(&["kill", &id, "KILL"]).ok();
    env.wait_status("stopped");
    assert_gone(&env, init, "the killed init");
    let other = bystander(&env);
    edit_state(&env.root, &id, |v| {
        let key = if v.get("init_process_pid").is_some() { "init_process_pid" } else { "pid" };
        v[key] = json!(other);
    });
    let st = env.state();
    assert_eq!((st["status"].as_str(), st["pid"].as_i64()), (Some("stopped"), Some(0)), "{st}");
    env.rt(&["kill", &id, "KILL"]).failed();
    let _ = env.rt(&["kill", "--all", &id, "KILL"]);
    env.rt(&["delete", "--force", &id]).ok();
    std::thread::sleep(Duration::from_millis(200));
    assert!(pid_alive(other), "the process that reused the init's pid was killed");
    env.assert_no_leftovers(&id);
    // skiff's other recorded processes: the creator and a hook's group.
    if !fault_injection("a_recorded_pid_now_another_process_is_never_signalled (the creator and a hook's group)") {
        return;
    }
    for key in ["creating", "hook_group"] {
        let id = env.new_id();
        env.write_config_for(&id);
        let b = env.bundle.to_string_lossy().into_owned();
        assert_killed_at(&with_fault(&env, "create:reserved", &["create", "--bundle", &b, &id]), "create:reserved");
        edit_state(&env.root, &id, |v| v[key] = json!({"pid": other, "start_time": 1}));
        assert_eq!(env.state_id(&id)["status"], "stopped", "{key}");
        env.rt(&["delete", &id]).ok();
        std::thread::sleep(Duration::from_millis(200));
        assert!(pid_alive(other), "{key}: the process that reused the recorded pid was killed");
        env.assert_no_leftovers(&id);
    }
}

/// A bundle of its own for `id` (the env's rootfs, cgroupsPath `/<cg>`).
fn bundle_for(env: &TestEnv, id: &str, cg: &str) -> PathBuf {
    let b = env.dir.join(format!("bundle-{id}"));
    fs::create_dir_all(&b).unwrap();
    let mut c = env.config.clone();
    c["root"]["path"] = json!(env.rootfs);
    c["linux"]["cgroupsPath"] = json!(format!("/{cg}"));
    c["process"]["env"].as_array_mut().unwrap().push(json!(format!("{MARKER_VAR}={}", env.marker)));
    fs::write(b.join("config.json"), serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    b
}

/// Runs the commands at once (threads released together), in order.
fn all_at_once(cmds: Vec<Command>, io: &Path, timeout: Duration) -> Vec<Output> {
    let barrier = Arc::new(Barrier::new(cmds.len()));
    let threads: Vec<_> = cmds
        .into_iter()
        .map(|c| {
            let (barrier, io) = (barrier.clone(), io.to_path_buf());
            std::thread::spawn(move || {
                barrier.wait();
                run_with_timeout(c, timeout, &io)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().expect("command thread")).collect()
}

/// A failure must be clean: an exit code, a message of one line, no panic.
#[track_caller]
fn acted_or_failed_cleanly(o: &Output) {
    assert!(!o.timed_out && !o.signaled, "{}", o.describe());
    assert!(!o.stderr.contains("panicked"), "panic: {}", o.describe());
    if !o.success() {
        o.failed().short_error(1);
    }
}

#[test]
fn fifty_parallel_creates() {
    require_root!();
    let mut env = TestEnv::new("rel-fifty");
    sleeper(&mut env);
    let ids: Vec<String> = (0..50).map(|_| env.new_id()).collect();
    let cmds = ids.iter().map(|id| {
        let b = bundle_for(&env, id, id);
        let mut c = env.command(&["create", "--bundle"]);
        c.arg(b).arg(id);
        c
    });
    for o in all_at_once(cmds.collect(), &env.dir.join("io"), Duration::from_secs(120)) {
        o.ok();
    }
    let list: Value = serde_json::from_str(&env.rt(&["list", "--format", "json"]).ok().stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 50, "{list:?}");
    for c in list {
        assert_eq!(c["status"], "created", "{c}");
        env.track_pid(c["pid"].as_i64().unwrap() as i32);
    }
    let dels = ids.iter().map(|id| env.command(&["delete", "--force", id])).collect();
    for o in all_at_once(dels, &env.dir.join("io"), Duration::from_secs(120)) {
        o.ok();
    }
    for id in &ids {
        env.assert_no_leftovers(id);
    }
    assert_eq!(fs::read_dir(&env.root).unwrap().flatten().filter(|e| !e.file_name().to_string_lossy().starts_with(':')).count(), 0, "files left in the root");
}

#[test]
fn concurrent_commands_on_one_id() {
    require_root!();
    let mut env = TestEnv::new("rel-one-id");
    sleeper(&mut env);
    let id = env.id.clone();
    for round in 0..2 {
        env.create().ok();
        let kinds: Vec<usize> = (0..20).map(|i| (i + round) % 5).collect();
        let cmds = kinds
            .iter()
            .map(|k| match k {
                0 => env.command(&["start", &id]),
                1 => env.command(&["state", &id]),
                2 => env.command(&["exec", &id, "true"]),
                3 => env.command(&["kill", &id, "KILL"]),
                _ => env.command(&["delete", &id]),
            })
            .collect();
        for (o, &kind) in all_at_once(cmds, &env.dir.join("io"), Duration::from_secs(60)).iter().zip(&kinds) {
            // An exec that got in before a `kill KILL` took the pid
            // namespace down reports its process's death, as runc does:
            // 128+9 and nothing to say.
            if kind == 2 && o.code == 128 + 9 && !o.signaled && o.stderr.trim().is_empty() {
                continue;
            }
            acted_or_failed_cleanly(o);
        }
        let dir = env.root.join(&id);
        if dir.exists() {
            let text = fs::read(dir.join("state.json")).unwrap();
            serde_json::from_slice::<Value>(&text).expect("state.json is not valid JSON after the commands");
            let tmp: Vec<_> = fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).filter(|n| n.to_string_lossy().ends_with(".tmp")).collect();
            assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
            recorded_pid(&env.root, &env, &id);
        }
        env.rt(&["delete", "--force", &id]).ok();
        env.assert_no_leftovers(&id);
    }
}

#[test]
fn two_roots_never_interfere() {
    require_root!();
    let mut env = TestEnv::new("rel-two-roots");
    sleeper(&mut env);
    let id = env.id.clone();
    let cg_b = env.new_id();
    let root_b = env.dir.join("state-b");
    let bundle_a = bundle_for(&env, &id, &id);
    let bundle_b = bundle_for(&env, &format!("{id}-b"), &cg_b);
    let (bin, rb, i) = (runtime_bin(), root_b.clone(), id.clone());
    env.on_cleanup(move || {
        let mut c = Command::new(bin);
        c.arg("--root").arg(&rb).args(["delete", "--force", &i]);
        let _ = try_run_with_timeout(c, Duration::from_secs(15), Path::new("/tmp"));
    });
    let in_b = |args: &[&str]| cmd_in(&env, &root_b, args);
    let mut ca = env.command(&["create", "--bundle"]);
    ca.arg(&bundle_a).arg(&id);
    let mut cb = in_b(&["create", "--bundle"]);
    cb.arg(&bundle_b).arg(&id);
    for o in all_at_once(vec![ca, cb], &env.dir.join("io"), Duration::from_secs(60)) {
        o.ok();
    }
    let pid_a = recorded_pid(&env.root, &env, &id);
    let pid_b = recorded_pid(&root_b, &env, &id);
    assert!(pid_a > 0 && pid_b > 0 && pid_a != pid_b, "pids {pid_a} {pid_b}");
    for (root, n) in [(&env.root, "a"), (&root_b, "b")] {
        assert_eq!(fs::read_dir(root).unwrap().flatten().filter(|e| e.file_name() == id.as_str()).count(), 1, "root {n}");
    }
    env.rt(&["delete", "--force", &id]).ok();
    assert!(!env.root.join(&id).exists());
    assert_gone(&env, pid_a, "the init of the container deleted in root a");
    assert!(pid_alive(pid_b), "deleting in root a killed root b's container");
    let st: Value = serde_json::from_str(&env.run_cmd(in_b(&["state", &id])).ok().stdout).unwrap();
    assert_eq!(st["status"], "created", "{st}");
    env.run_cmd(in_b(&["start", &id])).ok();
    env.run_cmd(in_b(&["delete", "--force", &id])).ok();
    assert_gone(&env, pid_b, "root b's init");
    assert_nothing_of(&env, &root_b, &cg_b);
    env.assert_no_leftovers(&id);
}

#[test]
fn delete_force_racing_start_leaves_nothing() {
    require_root!();
    let mut env = TestEnv::new("rel-race");
    sleeper(&mut env);
    for _ in 0..5 {
        let id = env.new_id();
        env.create_id(&id, &[]).ok();
        let outs = all_at_once(vec![env.command(&["start", &id]), env.command(&["delete", "--force", &id])], &env.dir.join("io"), Duration::from_secs(60));
        acted_or_failed_cleanly(&outs[0]);
        outs[1].ok();
        env.assert_no_leftovers(&id);
    }
}
