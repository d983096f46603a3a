//! The `--debug` startup trace (docs/benchmarks.md, "Startup trace"): one
//! line per stage of `create`/`run`/`start`/`exec` with its duration, in the
//! `--log` file as JSON lines too; none without `--debug`. skiff only (no
//! other runtime has it).

use serde_json::{json, Value};
use skiff_integration_tests::*;
use std::fs;
use std::path::Path;

/// The trace lines of a JSON log: (command, stage, milliseconds).
fn trace_lines(log: &Path) -> Vec<(String, String, f64)> {
    let text = fs::read_to_string(log).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line:?}"));
        let msg = v["msg"].as_str().unwrap_or_default();
        let Some(rest) = msg.strip_prefix("trace ") else { continue };
        assert_eq!(v["level"], "debug", "{line}");
        let (cmd, rest) = rest.split_once(": ").unwrap_or_else(|| panic!("no command in {msg:?}"));
        let (stage, ms) = rest.rsplit_once(' ').and_then(|(s, unit)| (unit == "ms").then_some(s)).and_then(|s| s.rsplit_once(' ')).unwrap_or_else(|| panic!("no duration in {msg:?}"));
        let ms: f64 = ms.parse().unwrap_or_else(|_| panic!("bad duration in {msg:?}"));
        out.push((cmd.to_string(), stage.to_string(), ms));
    }
    out
}

fn skiff_only() -> bool {
    if runtime_name() != "skiff" {
        skip_message(&format!("SKIPPED {}: the startup trace is skiff's own\n", file!()));
        return false;
    }
    true
}

fn stage<'a>(lines: &'a [(String, String, f64)], cmd: &str, stage: &str) -> &'a (String, String, f64) {
    lines
        .iter()
        .find(|(c, s, _)| c == cmd && s.starts_with(stage))
        .unwrap_or_else(|| panic!("no {cmd:?} stage starting {stage:?} in {lines:#?}"))
}

#[test]
fn run_traces_every_stage_and_seccomp_cache_hits() {
    require_root!();
    if !skiff_only() {
        return;
    }
    let mut env = TestEnv::new("trace-run");
    // A small allow-by-default profile: the trace names compile vs cache hit.
    env.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["swapon"], "action": "SCMP_ACT_ERRNO"}]});
    env.set_args(&["/bin/true"]);
    let mut runs = Vec::new();
    for n in 0..2 {
        let log = env.dir.join(format!("run{n}.json"));
        let id = env.new_id();
        let l = log.to_string_lossy().into_owned();
        env.write_config_for(&id);
        let b = env.bundle.to_string_lossy().into_owned();
        let out = env.rt(&["--debug", "--log", &l, "--log-format", "json", "run", "--bundle", &b, &id]);
        out.ok();
        runs.push(trace_lines(&log));
    }
    let first = &runs[0];
    for s in ["config load", "plan", "state dir", "cgroup dirs", "exec.fifo", "clone", "cgroup", "init set-up", "total"] {
        stage(first, "create", s);
    }
    for s in ["namespaces", "mounts", "pivot_root", "console, sysctls", "process"] {
        stage(first, "init", s);
    }
    stage(first, "start", "release, seccomp filter, execve");
    stage(first, "run", "delete");
    assert_eq!(stage(first, "create", "seccomp").1, "seccomp (compiled, cached)");
    assert_eq!(stage(&runs[1], "create", "seccomp").1, "seccomp (cache hit)");
    // The stages add up: the init's happen while create waits, and no stage
    // is longer than the whole.
    let total = stage(first, "create", "total").2;
    let parts: f64 = first.iter().filter(|(c, s, _)| c == "create" && s != "total").map(|l| l.2).sum();
    assert!(parts <= total + 0.01 && parts >= total * 0.5, "create stages sum to {parts} ms, total {total} ms");
    let init: f64 = first.iter().filter(|(c, _, _)| c == "init").map(|l| l.2).sum();
    assert!(init <= total, "init stages {init} ms > create total {total} ms");
}

#[test]
fn exec_is_traced_and_nothing_without_debug() {
    require_root!();
    if !skiff_only() {
        return;
    }
    let mut env = TestEnv::new("trace-exec");
    env.set_args(&["/bin/sleep", "100"]);
    let plain = env.dir.join("plain.json");
    let p = plain.to_string_lossy().into_owned();
    env.write_config_for(&env.id.clone());
    let b = env.bundle.to_string_lossy().into_owned();
    let id = env.id.clone();
    env.rt(&["--log", &p, "--log-format", "json", "run", "-d", "--bundle", &b, &id]).ok();
    env.rt(&["--log", &p, "--log-format", "json", "exec", &id, "/bin/true"]).ok();
    assert!(trace_lines(&plain).is_empty(), "trace lines without --debug:\n{}", fs::read_to_string(&plain).unwrap_or_default());

    let log = env.dir.join("exec.json");
    let l = log.to_string_lossy().into_owned();
    env.rt(&["--debug", "--log", &l, "--log-format", "json", "exec", &id, "/bin/true"]).ok();
    let lines = trace_lines(&log);
    for s in ["state load", "plan", "clone", "cgroups joined", "set-up in the container, execve", "total"] {
        stage(&lines, "exec", s);
    }
    for s in ["namespaces", "attributes", "process"] {
        stage(&lines, "init", s);
    }
    env.rt(&["delete", "-f", &id]).ok();
}
