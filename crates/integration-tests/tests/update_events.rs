//! `update` and `events` as runc has them: new limits on a live
//! container's cgroup (read back from the cgroup files, on v1 and v2), zero
//! values leaving limits unchanged, updates merging, `events --stats`
//! showing them; the `events` stream reporting an OOM kill and CPU
//! throttling and ending when the container stops; bad input refused with
//! one line and nothing changed.

use serde_json::{json, Value};
use skiff_integration_tests::*;
use std::cell::RefCell;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

fn is_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The container's directory that has controller `ctrl` (v2: the one).
fn ctrl_dir(env: &TestEnv, id: &str, ctrl: &str) -> PathBuf {
    let dirs = env.cgroup_dirs(id);
    let found = if is_v2() {
        dirs.first().cloned()
    } else {
        dirs.into_iter().find(|d| {
            d.strip_prefix("/sys/fs/cgroup").ok().and_then(|r| r.components().next()).is_some_and(|h| h.as_os_str().to_string_lossy().split(',').any(|n| n == ctrl))
        })
    };
    found.unwrap_or_else(|| panic!("no {ctrl} cgroup directory for {id}"))
}

/// A cgroup file of the container: the v1 name or the v2 one.
fn cg_read(env: &TestEnv, id: &str, ctrl: &str, v1: &str, v2: &str) -> String {
    let p = ctrl_dir(env, id, ctrl).join(if is_v2() { v2 } else { v1 });
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())).trim().to_string()
}

fn memory_limit(env: &TestEnv, id: &str) -> u64 {
    cg_read(env, id, "memory", "memory.limit_in_bytes", "memory.max").parse().expect("memory limit")
}

/// (quota, period) in microseconds; quota -1 when unlimited.
fn cpu_max(env: &TestEnv, id: &str) -> (i64, u64) {
    if is_v2() {
        let t = cg_read(env, id, "cpu", "", "cpu.max");
        let (q, p) = t.split_once(' ').expect("cpu.max");
        return (if q == "max" { -1 } else { q.parse().unwrap() }, p.parse().unwrap());
    }
    (cg_read(env, id, "cpu", "cpu.cfs_quota_us", "").parse().unwrap(), cg_read(env, id, "cpu", "cpu.cfs_period_us", "").parse().unwrap())
}

fn pids_max(env: &TestEnv, id: &str) -> String {
    cg_read(env, id, "pids", "pids.max", "pids.max")
}

/// A container running `script` in the background with `resources`.
fn running(env: &mut TestEnv, script: &str, resources: Value) -> String {
    env.set_sh(script);
    env.config["linux"]["resources"] = resources;
    let id = env.id.clone();
    env.run(&["-d"]).ok();
    env.wait_status_id(&id, "running", Duration::from_secs(10));
    id
}

/// The memory resources with swap disabled (limit = limit + swap).
fn mem(limit: u64) -> Value {
    json!({"limit": limit, "swap": limit})
}

fn update_stdin(env: &TestEnv, args: &[&str], input: &str) -> Output {
    let mut cmd = env.command(args);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn update");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let deadline = Instant::now() + env.timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`{args:?}` timed out");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = child.wait_with_output().unwrap();
    Output {
        cmdline: format!("{args:?} < {input}"),
        code: o.status.code().unwrap_or(-1),
        signaled: o.status.code().is_none(),
        timed_out: false,
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        elapsed: Duration::ZERO,
    }
}

/// `events --stats ID`, parsed: one line of runc's envelope.
fn stats(env: &TestEnv, id: &str) -> Value {
    let out = env.rt(&["events", "--stats", id]);
    out.ok();
    assert_eq!(out.stdout.lines().count(), 1, "one line expected:\n{}", out.describe());
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", out.describe()));
    assert_eq!((v["type"].as_str(), v["id"].as_str()), (Some("stats"), Some(id)), "{v}");
    v
}

/// A running `events` stream whose lines go to a file; killed on cleanup.
struct Stream {
    child: Rc<RefCell<Option<Child>>>,
    out: PathBuf,
}

impl Stream {
    fn spawn(env: &TestEnv, id: &str, interval: &str) -> Stream {
        let out = env.dir.join(format!("events-{id}.out"));
        let mut cmd = env.command(&["events", "--interval", interval, id]);
        cmd.stdin(Stdio::null()).stdout(fs::File::create(&out).unwrap()).stderr(fs::File::create(out.with_extension("err")).unwrap());
        let child = Rc::new(RefCell::new(Some(cmd.spawn().expect("spawn events"))));
        let c = child.clone();
        env.on_cleanup(move || {
            if let Some(mut ch) = c.borrow_mut().take() {
                let _ = ch.kill();
                let _ = ch.wait();
            }
        });
        Stream { child, out }
    }

    fn lines(&self) -> Vec<Value> {
        let text = fs::read_to_string(&self.out).unwrap_or_default();
        text.lines().filter(|l| l.ends_with('}')).map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("events line is not JSON ({e}): {l}"))).collect()
    }

    fn describe(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", fs::read_to_string(&self.out).unwrap_or_default(), fs::read_to_string(self.out.with_extension("err")).unwrap_or_default())
    }

    /// Waits until `pred` holds for the lines so far.
    fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Value]) -> bool) -> bool {
        wait_until(timeout, || pred(&self.lines()))
    }

    /// Whether the stream exited (successfully) within `timeout`.
    fn exits_within(&self, timeout: Duration) -> Option<bool> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(st) = self.child.borrow_mut().as_mut().unwrap().try_wait().unwrap() {
                return Some(st.success());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

#[test]
fn update_flags_change_a_live_containers_limits() {
    require_root!();
    let mut env = TestEnv::new("upd-flags");
    let id = running(&mut env, "sleep 1000", json!({"memory": {"limit": 100 * MIB}, "cpu": {"quota": 50000, "period": 100000, "shares": 512}, "pids": {"limit": 100}}));
    assert_eq!(memory_limit(&env, &id), 100 * MIB);
    env.rt(&["update", "--memory", "200m", "--cpu-quota", "30000", "--cpu-period", "200000", "--cpu-share", "300", "--pids-limit", "50", &id]).ok();
    assert_eq!(memory_limit(&env, &id), 200 * MIB);
    assert_eq!(cpu_max(&env, &id), (30000, 200000));
    assert_eq!(pids_max(&env, &id), "50");
    let shares = if is_v2() { cg_read(&env, &id, "cpu", "", "cpu.weight") } else { cg_read(&env, &id, "cpu", "cpu.shares", "") };
    if is_v2() {
        // runc 1.1's linear conversion of shares to cpu.weight, or the one
        // of crun and newer libcgroups (runc >= 1.3).
        let l = (300f64).log2();
        let quadratic = 10f64.powf((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0).ceil() as u64;
        let linear = 1 + (300 - 2) * 9999 / 262142;
        assert!([linear.to_string(), quadratic.to_string()].contains(&shares), "cpu.weight {shares} for 300 shares (want {linear} or {quadratic})");
    } else {
        assert_eq!(shares, "300");
    }
    // -1 lifts a limit.
    env.rt(&["update", "--pids-limit", "-1", "--cpu-quota", "-1", &id]).ok();
    assert_eq!(pids_max(&env, &id), "max");
    assert_eq!(cpu_max(&env, &id).0, -1);
    let s = stats(&env, &id);
    assert_eq!(s["data"]["memory"]["usage"]["limit"].as_u64(), Some(200 * MIB), "{s}");
    assert!(s["data"]["pids"]["current"].as_u64() >= Some(1), "{s}");
}

#[test]
fn update_resources_from_stdin_zeros_keep_values_and_updates_merge() {
    require_root!();
    let mut env = TestEnv::new("upd-json");
    let id = running(&mut env, "sleep 1000", json!({"memory": {"limit": 100 * MIB}, "cpu": {"quota": 50000, "period": 100000}, "pids": {"limit": 100}}));
    let devices_before = (!is_v2()).then(|| cg_read(&env, &id, "devices", "devices.list", ""));
    update_stdin(&env, &["update", "--resources", "-", &id], &json!({"memory": {"limit": 150 * MIB}}).to_string()).ok();
    assert_eq!(memory_limit(&env, &id), 150 * MIB);
    assert_eq!(cpu_max(&env, &id), (50000, 100000), "a field not given is unchanged");
    // What Docker and Podman send: every field, zero for "unchanged".
    let zeros = json!({"memory": {"limit": 0, "reservation": 0, "swap": 0}, "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0, "cpus": "", "mems": ""}, "pids": {"limit": 0}, "blockIO": {"weight": 0}});
    update_stdin(&env, &["update", "--resources=-", &id], &zeros.to_string()).ok();
    assert_eq!(memory_limit(&env, &id), 150 * MIB);
    assert_eq!(cpu_max(&env, &id), (50000, 100000));
    assert_eq!(pids_max(&env, &id), "100");
    // From a file, as Podman passes it; merged onto the earlier update.
    let file = env.dir.join("resources.json");
    fs::write(&file, json!({"cpu": {"quota": 20000}, "pids": {"limit": 33}}).to_string()).unwrap();
    env.rt(&["update", "--resources", file.to_str().unwrap(), &id]).ok();
    assert_eq!(cpu_max(&env, &id), (20000, 100000));
    assert_eq!(pids_max(&env, &id), "33");
    assert_eq!(memory_limit(&env, &id), 150 * MIB, "the earlier update still holds");
    let s = stats(&env, &id);
    assert_eq!(s["data"]["memory"]["usage"]["limit"].as_u64(), Some(150 * MIB), "{s}");
    if let Some(before) = devices_before {
        assert_eq!(cg_read(&env, &id, "devices", "devices.list", ""), before, "update changed the device rules");
    }
}

#[test]
fn events_reports_the_oom_kill() {
    require_root!();
    let mut env = TestEnv::new("ev-oom");
    // `tail /dev/zero` keeps one ever-growing line: it exceeds 16 MiB. It
    // starts once the stream is up (its first line), on a file made here.
    let trigger = env.bind_dir("trigger", "/trigger", true);
    let id = running(&mut env, "while [ ! -e /trigger/go ]; do sleep 0.1; done; tail /dev/zero; sleep 1000", json!({"memory": mem(16 * MIB)}));
    let stream = Stream::spawn(&env, &id, "1s");
    assert!(stream.wait_for(Duration::from_secs(20), |l| !l.is_empty()), "no stats line:\n{}", stream.describe());
    fs::write(trigger.join("go"), "").unwrap();
    let got = stream.wait_for(Duration::from_secs(20), |l| l.iter().any(|e| e["type"] == "oom"));
    assert!(got, "no oom event:\n{}", stream.describe());
    let oom = stream.lines().into_iter().find(|e| e["type"] == "oom").unwrap();
    assert_eq!(oom, json!({"type": "oom", "id": id}), "runc's envelope, no data");
    // (v1 notifies when the cgroup goes out of memory, just before the kill.)
    let kills = || if is_v2() { cg_read(&env, &id, "memory", "", "memory.events") } else { cg_read(&env, &id, "memory", "memory.oom_control", "") };
    let counted = wait_until(Duration::from_secs(5), || kills().lines().find_map(|l| l.strip_prefix("oom_kill ")).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) >= 1);
    assert!(counted, "the kernel counted no oom kill:\n{}", kills());
    assert_eq!(env.status_id(&id).as_deref(), Some("running"), "only the memory hog was killed");
}

#[test]
fn cpu_quota_throttles_and_events_show_it() {
    require_root!();
    let mut env = TestEnv::new("ev-throttle");
    let id = running(&mut env, "while :; do :; done", json!({}));
    // A tenth of a CPU, set on the live container.
    env.rt(&["update", "--cpu-quota", "10000", "--cpu-period", "100000", &id]).ok();
    let stream = Stream::spawn(&env, &id, "1s");
    let throttled = |e: &Value| e["data"]["cpu"]["throttling"]["throttledPeriods"].as_u64().unwrap_or(0);
    let ok = stream.wait_for(Duration::from_secs(20), |l| {
        let s: Vec<&Value> = l.iter().filter(|e| e["type"] == "stats").collect();
        s.len() >= 3 && throttled(s[0]) > 0 && throttled(s[s.len() - 1]) > throttled(s[0])
    });
    assert!(ok, "nr_throttled did not grow:\n{}", stream.describe());
    let lines = stream.lines();
    let last = lines.iter().rfind(|e| e["type"] == "stats").unwrap();
    assert!(last["data"]["cpu"]["throttling"]["throttledTime"].as_u64() > Some(0), "{last}");
    if !is_runc() {
        // skiff's extras: the kernel's cpu.stat and the pressure files.
        let raw = &last["data"]["skiff"]["cpu_stat"];
        assert_eq!(raw["nr_throttled"], last["data"]["cpu"]["throttling"]["throttledPeriods"], "{last}");
        assert!(raw["throttled_usec"].as_u64().or(raw["throttled_time"].as_u64()) > Some(0), "{last}");
        if Path::new("/proc/pressure/cpu").exists() && (is_v2() || Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists()) {
            assert!(last["data"]["skiff"]["pressure"]["cpu"]["some"]["total"].as_u64().is_some(), "{last}");
        }
    }
}

#[test]
fn events_stream_ends_when_the_container_stops() {
    require_root!();
    let mut env = TestEnv::new("ev-stop");
    let id = running(&mut env, "sleep 1000", json!({}));
    let stream = Stream::spawn(&env, &id, "500ms");
    assert!(stream.wait_for(Duration::from_secs(10), |l| !l.is_empty()), "no stats line:\n{}", stream.describe());
    assert_eq!(stream.exits_within(Duration::from_millis(300)), None, "the stream ended while the container runs:\n{}", stream.describe());
    env.rt(&["kill", &id, "KILL"]).ok();
    let ended = stream.exits_within(Duration::from_secs(5));
    assert_eq!(ended, Some(true), "the stream did not end (successfully) after the container stopped:\n{}", stream.describe());
}

/// The limits the failed commands must leave as they were.
fn snapshot(env: &TestEnv, id: &str) -> (u64, (i64, u64), String, Value) {
    (memory_limit(env, id), cpu_max(env, id), pids_max(env, id), stats(env, id)["data"]["memory"]["usage"]["limit"].clone())
}

#[test]
fn bad_update_input_is_refused_and_nothing_changes() {
    require_root!();
    let mut env = TestEnv::new("upd-bad");
    let id = running(&mut env, "sleep 1000", json!({"memory": {"limit": 100 * MIB}, "cpu": {"quota": 50000, "period": 100000}, "pids": {"limit": 100}}));
    let before = snapshot(&env, &id);
    for input in ["{\"memory\":{\"limit\":", "{\"memory\":{\"limit\":\"x\"}}", "{\"memory\":{\"limit\":-5}}", "[1,2]"] {
        let out = update_stdin(&env, &["update", "--resources", "-", &id], input);
        out.failed().short_error(2);
        assert_eq!(snapshot(&env, &id), before, "{input} changed something");
    }
    for flags in [&["--memory", "10x"][..], &["--memory", "-5"], &["--cpu-quota", "abc"], &["--pids-limit", "1.5"]] {
        let mut args = vec!["update"];
        args.extend_from_slice(flags);
        args.push(&id);
        env.rt(&args).failed().short_error(2).stderr_mentions(&[flags[0].trim_start_matches('-'), "invalid"]);
        assert_eq!(snapshot(&env, &id), before, "{flags:?} changed something");
    }
    env.rt(&["update", "--resources", env.dir.join("missing.json").to_str().unwrap(), &id]).failed().short_error(2).stderr_mentions(&["no such file"]);
    env.rt(&["update", "--l3-cache-schema", "L3:0=ff", &id]).failed().short_error(2).stderr_mentions(&["l3 cache"]);
    assert_eq!(snapshot(&env, &id), before);
}

#[test]
fn a_value_the_kernel_refuses_changes_nothing() {
    require_root!();
    let mut env = TestEnv::new("upd-refused");
    let id = running(&mut env, "sleep 1000", json!({"memory": {"limit": 100 * MIB}, "cpu": {"quota": 50000, "period": 100000}}));
    let before = snapshot(&env, &id);
    // A new memory limit with a memory+swap limit below it: runc writes the
    // memory limit, then fails on the swap one.
    env.rt(&["update", "--memory", "300m", "--memory-swap", "100m", &id]).failed().short_error(2).stderr_mentions(&["swap", "memsw"]);
    assert_eq!(snapshot(&env, &id), before);
    if !is_v2() {
        // Below the current usage: the v1 kernel refuses it (v2 would OOM-kill).
        env.rt(&["update", "--memory", "4096", &id]).failed().short_error(2).stderr_mentions(&["memory"]);
        assert_eq!(snapshot(&env, &id), before);
    }
}

#[test]
fn update_and_events_of_a_stopped_or_missing_container_fail() {
    require_root!();
    let mut env = TestEnv::new("upd-stopped");
    env.set_sh("true");
    let id = env.id.clone();
    env.run(&["-d"]).ok();
    env.wait_status_id(&id, "stopped", Duration::from_secs(10));
    let missing = format!("{id}-missing");
    for c in [&id, &missing] {
        let not = if *c == id { "not running" } else { "does not exist" };
        env.rt(&["update", "--memory", "64m", c]).failed().short_error(2).stderr_mentions(&[not]);
        update_stdin(&env, &["update", "--resources", "-", c], "{\"memory\":{\"limit\":67108864}}").failed().short_error(2).stderr_mentions(&[not]);
        env.rt(&["events", "--stats", c]).failed().short_error(2).stderr_mentions(&[not]);
        env.rt_timeout(&["events", "--interval", "1s", c], Duration::from_secs(10)).failed().short_error(2).stderr_mentions(&[not]);
    }
    env.rt(&["delete", &id]).ok();
}

#[test]
fn bad_interval_is_refused() {
    require_root!();
    let mut env = TestEnv::new("ev-interval");
    let id = running(&mut env, "sleep 1000", json!({}));
    for bad in ["1x", "5", "-1s", "0"] {
        env.rt_timeout(&["events", "--interval", bad, &id], Duration::from_secs(10)).failed().short_error(2).stderr_mentions(&["interval"]);
    }
}
