//! `run` (exit codes, stdio, --keep, -d) and `kill`.

use skiff_integration_tests::*;
use std::fs;
use std::time::Duration;

#[test]
fn run_exit_code_passthrough() {
    require_root!();
    let mut env = TestEnv::new("run-exit");
    let out = env.run_sh("exit 7");
    assert_eq!(out.code, 7, "{}", out.describe());
    assert!(!out.signaled);
}

#[test]
fn run_signal_death_is_128_plus_n() {
    require_root!();
    let mut env = TestEnv::new("run-signal");
    // Without a pid namespace the shell is not a namespace init, so it can
    // kill itself.
    env.remove_namespace("pid");
    let out = env.run_sh("kill -KILL $$; sleep 5");
    assert_eq!(out.code, 128 + 9, "{}", out.describe());
    let out = env.run_sh("kill -USR1 $$; sleep 5");
    assert_eq!(out.code, 128 + 10, "{}", out.describe());
}

#[test]
fn run_killed_from_outside_is_128_plus_n() {
    require_root!();
    let mut env = TestEnv::new("run-killed");
    env.set_args(&["sleep", "1000"]);
    env.write_config();
    let b = env.bundle.to_string_lossy().into_owned();
    let cmd = env.command(&["run", "--bundle", &b, &env.id]);
    let io = env.dir.join("io");
    let h = std::thread::spawn(move || run_with_timeout(cmd, Duration::from_secs(30), &io));
    env.wait_status("running");
    env.rt(&["kill", &env.id, "KILL"]).ok();
    let out = h.join().unwrap();
    assert_eq!(out.code, 137, "{}", out.describe());
}

#[test]
fn run_stdout_stderr_passthrough() {
    require_root!();
    let mut env = TestEnv::new("run-stdio");
    let out = env.run_sh("echo to-stdout; echo to-stderr >&2; echo more-out");
    out.ok();
    assert_eq!(out.stdout, "to-stdout\nmore-out\n", "{}", out.describe());
    assert!(out.stderr.contains("to-stderr\n"), "{}", out.describe());
    assert!(!out.stderr.contains("to-stdout"), "{}", out.describe());
}

#[test]
fn run_removes_state() {
    require_root!();
    let mut env = TestEnv::new("run-rm");
    env.run_sh("true").ok();
    env.state_out(&env.id).failed();
    assert!(!env.root.join(&env.id).exists());
    env.assert_no_leftovers(&env.id);
}

#[test]
fn run_keep_keeps_state() {
    require_root!();
    let mut env = TestEnv::new("run-keep");
    env.set_sh("exit 3");
    let out = env.run(&["--keep"]);
    assert_eq!(out.code, 3, "{}", out.describe());
    let st = env.state();
    assert_eq!(st["status"], "stopped", "{st}");
    env.rt(&["delete", &env.id]).ok();
    env.state_out(&env.id).failed();
    env.assert_no_leftovers(&env.id);
}

#[test]
fn run_detached() {
    require_root!();
    let mut env = TestEnv::new("run-d");
    env.set_args(&["sleep", "1000"]);
    let out = env.run(&["-d"]);
    out.ok();
    assert!(out.elapsed < Duration::from_secs(20), "run -d did not return promptly");
    let st = env.state();
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(pid_alive(pid));
    env.rt(&["kill", &env.id, "KILL"]).ok();
    env.wait_status("stopped");
    env.rt(&["delete", &env.id]).ok();
}

fn kill_env(name: &str) -> TestEnv {
    let mut env = TestEnv::new(name);
    env.set_args(&["sleep", "1000"]);
    env.create().ok();
    env.start().ok();
    assert_eq!(env.state()["status"], "running");
    env
}

#[test]
fn kill_by_name_short() {
    require_root!();
    let env = kill_env("kill-name");
    env.rt(&["kill", &env.id, "KILL"]).ok();
    env.wait_status("stopped");
}

#[test]
fn kill_by_name_with_sig_prefix() {
    require_root!();
    let env = kill_env("kill-signame");
    env.rt(&["kill", &env.id, "SIGKILL"]).ok();
    env.wait_status("stopped");
}

#[test]
fn kill_by_number() {
    require_root!();
    let env = kill_env("kill-num");
    env.rt(&["kill", &env.id, "9"]).ok();
    env.wait_status("stopped");
}

#[test]
fn kill_unknown_signal_is_refused() {
    require_root!();
    let env = kill_env("kill-badsig");
    env.rt(&["kill", &env.id, "SIGNOPE"]).failed();
    assert_eq!(env.state()["status"], "running");
}

#[test]
fn kill_default_is_sigterm() {
    require_root!();
    let mut env = TestEnv::new("kill-term");
    let out = env.bind_dir("out", "/out", false);
    env.set_sh(
        "trap 'echo TERM > /out/sig; exit 0' TERM; trap 'echo INT > /out/sig; exit 0' INT; \
         trap 'echo HUP > /out/sig; exit 0' HUP; echo ready > /out/ready; \
         while :; do sleep 0.05; done",
    );
    env.create().ok();
    env.start().ok();
    assert!(
        wait_until(Duration::from_secs(10), || out.join("ready").exists()),
        "container did not become ready"
    );
    env.rt(&["kill", &env.id]).ok();
    env.wait_status("stopped");
    assert_eq!(fs::read_to_string(out.join("sig")).unwrap_or_default().trim(), "TERM");
}

#[test]
fn kill_delivers_named_signal() {
    require_root!();
    let mut env = TestEnv::new("kill-hup");
    let out = env.bind_dir("out", "/out", false);
    env.set_sh(
        "trap 'echo TERM > /out/sig; exit 0' TERM; trap 'echo HUP > /out/sig; exit 0' HUP; \
         echo ready > /out/ready; while :; do sleep 0.05; done",
    );
    env.create().ok();
    env.start().ok();
    assert!(wait_until(Duration::from_secs(10), || out.join("ready").exists()));
    env.rt(&["kill", &env.id, "SIGHUP"]).ok();
    env.wait_status("stopped");
    assert_eq!(fs::read_to_string(out.join("sig")).unwrap_or_default().trim(), "HUP");
}

#[test]
fn kill_all_reaches_every_process() {
    require_root!();
    let mut env = TestEnv::new("kill-all");
    let out = env.bind_dir("out", "/out", false);
    // No pid namespace: killing only the init would leave the children
    // running, so this really tests --all.
    env.remove_namespace("pid");
    env.set_sh("sleep 1000 & sleep 1000 & echo ready > /out/ready; wait");
    env.create().ok();
    env.start().ok();
    assert!(wait_until(Duration::from_secs(10), || out.join("ready").exists()));
    let mut procs = Vec::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            procs = env.cgroup_processes(&env.id);
            procs.len() >= 3
        }),
        "expected 3 processes in the container cgroup, got {procs:?}"
    );
    env.rt(&["kill", "--all", &env.id, "KILL"]).ok();
    let gone = wait_until(Duration::from_secs(10), || {
        env.reap_tracked();
        procs.iter().all(|p| !pid_alive(*p))
    });
    assert!(gone, "kill --all left processes: {:?}", procs.iter().filter(|p| pid_alive(**p)).collect::<Vec<_>>());
    env.wait_status("stopped");
}

/// `delete` of a stopped container removes its cgroup with one rmdir per
/// directory when it is empty (the common case); one that is busy, here
/// with a sub-cgroup left in it (as `exec --cgroup` or the container itself
/// may make), is looked into and removed with what is below it.
#[test]
fn delete_of_a_stopped_container_removes_sub_cgroups_left_in_it() {
    require_root!();
    let mut env = TestEnv::new("del-sub");
    env.set_sh("true");
    env.create().ok();
    let dirs = env.cgroup_dirs(&env.id);
    assert!(!dirs.is_empty() && dirs.iter().all(|d| d.exists()), "no cgroup: {dirs:?}");
    env.start().ok();
    env.wait_status("stopped");
    // Not in the first directory only: every directory is looked at.
    let subs: Vec<_> = dirs.iter().skip(dirs.len() / 2).map(|d| d.join("left-behind")).collect();
    for s in &subs {
        fs::create_dir(s).unwrap();
    }
    env.rt(&["delete", &env.id]).ok();
    for d in subs.iter().chain(&dirs) {
        assert!(!d.exists(), "delete left the cgroup {}", d.display());
    }
}

/// `delete --force` of a container that forks without pause leaves
/// nothing: every process of its cgroup, those forked meanwhile included.
#[test]
fn delete_force_reaches_processes_forked_meanwhile() {
    require_root!();
    let mut env = TestEnv::new("kill-forkloop");
    // A steady storm of short-lived children, well under the limit (at the
    // limit busybox sh exits, and the pid namespace with it).
    env.config["linux"]["resources"]["pids"] = serde_json::json!({"limit": 4000});
    env.set_sh("while :; do sleep 0.05 & done");
    env.run(&["-d"]).ok();
    assert!(wait_until(Duration::from_secs(20), || env.cgroup_processes(&env.id).len() > 10), "the fork loop did not get going");
    env.rt(&["delete", "--force", &env.id]).ok();
    assert!(env.cgroup_processes(&env.id).is_empty(), "processes left in the cgroup");
    assert!(env.marked_processes().is_empty(), "processes left: {:?}", env.marked_processes());
    env.assert_no_leftovers(&env.id);
}
