//! `pause`, `resume` and `ps` (project issue 8): the cgroup freezer, the
//! `paused` status, and the processes of a container's cgroup, as runc.

use skiff_integration_tests::*;
use std::time::Duration;

fn proc_state(pid: i64) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.chars().next().unwrap_or('?').to_string())).unwrap_or_default()
}

#[test]
fn pause_and_resume() {
    require_root!();
    let mut env = TestEnv::new("pause");
    env.set_sh("while :; do sleep 1; done");
    env.run(&["-d"]).ok();
    let pid = env.state()["pid"].as_i64().unwrap();
    env.rt(&["pause", &env.id]).ok();
    assert_eq!(env.status_id(&env.id).as_deref(), Some("paused"));
    let list = env.rt(&["list", "--format", "json"]).ok().stdout.clone();
    assert!(list.contains("\"status\":\"paused\""), "{list}");
    // A frozen task sleeps in the freezer; pausing again is refused, as runc.
    assert!(wait_until(Duration::from_secs(5), || matches!(proc_state(pid).as_str(), "D" | "S")));
    env.rt(&["pause", &env.id]).failed().stderr_mentions(&["not running"]);
    // On a hybrid host the v1 freezer holds the tasks; the unified
    // hierarchy's freeze is left alone, as runc does (a v2 freeze of tasks
    // the v1 freezer holds never completes: `pause` waited for it).
    for d in env.cgroup_dirs(&env.id).into_iter().filter(|d| d.starts_with("/sys/fs/cgroup/unified")) {
        assert_eq!(std::fs::read_to_string(d.join("cgroup.freeze")).unwrap().trim(), "0", "{}", d.display());
    }
    env.rt(&["resume", &env.id]).ok();
    assert_eq!(env.status_id(&env.id).as_deref(), Some("running"));
    env.rt(&["resume", &env.id]).failed().stderr_mentions(&["not paused"]);
    // delete --force of a paused container thaws and kills it.
    env.rt(&["pause", &env.id]).ok();
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

#[test]
fn pause_of_a_stopped_or_missing_container_fails() {
    require_root!();
    let mut env = TestEnv::new("pause-stopped");
    env.set_args(&["true"]);
    env.run(&["--keep"]).ok();
    env.rt(&["pause", &env.id]).failed().stderr_mentions(&["not running"]);
    env.rt(&["resume", &env.id]).failed().stderr_mentions(&["not paused"]);
    env.rt(&["pause", "it-no-such-container"]).failed().stderr_mentions(&["does not exist"]);
    env.rt(&["delete", &env.id]).ok();
}

#[test]
fn ps_lists_the_containers_processes() {
    require_root!();
    let mut env = TestEnv::new("ps");
    env.set_sh("sleep 31 & sleep 32 & wait");
    env.run(&["-d"]).ok();
    let pid = env.state()["pid"].as_i64().unwrap();
    let mut pids: Vec<i64> = Vec::new();
    assert!(wait_until(Duration::from_secs(5), || {
        pids = serde_json::from_str(&env.rt(&["ps", "--format", "json", &env.id]).ok().stdout).unwrap_or_default();
        pids.len() == 3
    }), "ps --format json: {pids:?}");
    assert!(pids.contains(&pid), "the init {pid} is not in {pids:?}");
    // (a forked child is still `sh` until it has exec'd sleep)
    let mut table = String::new();
    let sleeps = |t: &str| t.lines().filter(|l| l.ends_with("sleep 31") || l.ends_with("sleep 32")).count();
    wait_until(Duration::from_secs(5), || {
        table = env.rt(&["ps", &env.id]).ok().stdout.clone();
        sleeps(&table) == 2
    });
    assert!(table.lines().next().is_some_and(|h| h.contains("PID")), "{table}");
    assert_eq!(sleeps(&table), 2, "{table}");
    let custom = env.rt(&["ps", &env.id, "-o", "pid,comm"]).ok().stdout.clone();
    assert!(custom.lines().count() == 4 && custom.contains("sleep"), "{custom}");
    env.rt(&["delete", "--force", &env.id]).ok();
}

/// A paused container makes no progress; resumed, it goes on.
#[test]
fn paused_processes_make_no_progress() {
    require_root!();
    let mut env = TestEnv::new("pause-progress");
    let log = env.bind_dir("log", "/log", false);
    env.set_sh("i=0; while :; do i=$((i+1)); echo $i > /log/n.tmp; mv /log/n.tmp /log/n; done");
    env.run(&["-d"]).ok();
    let n = || std::fs::read_to_string(log.join("n")).ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0);
    assert!(wait_until(Duration::from_secs(10), || n() > 10), "the counter does not run");
    env.rt(&["pause", &env.id]).ok();
    let frozen = n();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(n(), frozen, "the counter went on while paused");
    env.rt(&["resume", &env.id]).ok();
    assert!(wait_until(Duration::from_secs(10), || n() > frozen + 10), "the counter did not go on after resume");
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

/// kill of a paused container: SIGKILL is delivered (the container is
/// thawed so that it dies, as runc does); another signal waits for resume.
#[test]
fn kill_of_a_paused_container() {
    require_root!();
    let mut env = TestEnv::new("pause-kill");
    let log = env.bind_dir("log", "/log", false);
    env.set_sh("trap 'echo usr1 > /log/got' USR1; while :; do sleep 0.1; done");
    env.run(&["-d"]).ok();
    std::thread::sleep(Duration::from_millis(300));
    env.rt(&["pause", &env.id]).ok();
    env.rt(&["kill", &env.id, "USR1"]).ok();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!log.join("got").exists(), "a paused container handled a signal");
    env.rt(&["resume", &env.id]).ok();
    assert!(wait_until(Duration::from_secs(10), || log.join("got").exists()), "the signal was lost across the pause");
    env.rt(&["pause", &env.id]).ok();
    env.rt(&["kill", &env.id, "KILL"]).ok();
    env.wait_status_id(&env.id, "stopped", Duration::from_secs(10));
    env.rt(&["delete", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}
