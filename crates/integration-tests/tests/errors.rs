//! Bad input: each failure is a short error naming the cause on stderr, a
//! non-zero exit, and nothing left behind (process, mount, cgroup, state).

use serde_json::{json, Value};
use skiff_integration_tests::*;
use std::fs;

/// `create` (and `run`) must fail with an error mentioning one of `needles`
/// and leave nothing behind.
fn expect_clean_failure(env: &TestEnv, needles: &[&str]) {
    let out = env.create();
    out.failed().short_error(5).stderr_mentions(needles);
    env.assert_no_leftovers(&env.id);
    let id2 = env.new_id();
    let out = env.run_id(&id2, &[]);
    out.failed().short_error(5).stderr_mentions(needles);
    env.assert_no_leftovers(&id2);
}

#[test]
fn missing_bundle() {
    require_root!();
    let env = TestEnv::new("err-nobundle");
    let missing = env.dir.join("no-such-bundle");
    let m = missing.to_string_lossy().into_owned();
    let out = env.rt(&["create", "--bundle", &m, &env.id]);
    out.failed().short_error(5).stderr_mentions(&[&m, "no such file"]);
    env.assert_no_leftovers(&env.id);
}

#[test]
fn missing_config_json() {
    require_root!();
    let env = TestEnv::new("err-noconfig");
    let b = env.bundle.to_string_lossy().into_owned();
    let out = env.rt(&["create", "--bundle", &b, &env.id]);
    out.failed().short_error(5).stderr_mentions(&["config.json"]);
    env.assert_no_leftovers(&env.id);
}

#[test]
fn invalid_json() {
    require_root!();
    let env = TestEnv::new("err-badjson");
    env.write_config();
    fs::write(env.bundle.join("config.json"), "{ \"ociVersion\": \"1.0.2\", \"process\": ").unwrap();
    let b = env.bundle.to_string_lossy().into_owned();
    let out = env.rt(&["create", "--bundle", &b, &env.id]);
    out.failed().short_error(5).stderr_mentions(&["json", "config", "EOF", "parse"]);
    env.assert_no_leftovers(&env.id);
}

#[test]
fn unknown_namespace_type() {
    require_root!();
    let mut env = TestEnv::new("err-badns");
    env.set_args(&["true"]);
    env.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "bogusns"}));
    expect_clean_failure(&env, &["bogusns"]);
}

#[test]
fn bind_mount_source_missing() {
    require_root!();
    let mut env = TestEnv::new("err-badmount");
    env.set_args(&["true"]);
    let src = env.dir.join("no-such-source");
    env.add_mount(json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind"]}));
    expect_clean_failure(&env, &["no-such-source"]);
}

#[test]
fn unknown_capability() {
    require_root!();
    // NOTE: runc 1.1 only warns about unknown capabilities and starts the
    // container anyway; the requirement is a clean failure.
    let mut env = TestEnv::new("err-badcap");
    env.set_args(&["true"]);
    for set in ["bounding", "effective", "permitted"] {
        env.config["process"]["capabilities"][set].as_array_mut().unwrap().push(Value::from("CAP_NOPE"));
    }
    expect_clean_failure(&env, &["CAP_NOPE"]);
}

#[test]
fn nonexistent_process_binary() {
    require_root!();
    let mut env = TestEnv::new("err-noexec");
    env.set_args(&["/bin/nope", "arg"]);
    expect_clean_failure(&env, &["/bin/nope"]);
}

#[test]
fn relative_process_not_in_path() {
    require_root!();
    let mut env = TestEnv::new("err-nopath");
    env.set_args(&["nope-not-in-path"]);
    expect_clean_failure(&env, &["nope-not-in-path"]);
}

#[test]
fn log_json_early_failure() {
    require_root!();
    let env = TestEnv::new("err-logjson");
    let log = env.dir.join("logs/runtime.log");
    fs::create_dir_all(log.parent().unwrap()).unwrap();
    let l = log.to_string_lossy().into_owned();
    let missing = env.dir.join("no-such-bundle");
    let m = missing.to_string_lossy().into_owned();
    let mut cmd = std::process::Command::new(runtime_bin());
    cmd.args(["--root"]).arg(&env.root).args(["--log", &l, "--log-format", "json", "create", "--bundle", &m, &env.id]);
    let out = env.run_cmd(cmd);
    assert!(out.code != 0 && !out.timed_out, "{}", out.describe());
    let text = fs::read_to_string(&log).unwrap_or_else(|e| panic!("log file {l} not created ({e}): {}", out.describe()));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "log file is empty: {}", out.describe());
    let mut last_error = None;
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line:?}"));
        assert!(v.is_object(), "log line is not an object: {line}");
        for k in ["level", "msg", "time"] {
            assert!(v[k].is_string(), "log line lacks string {k:?}: {line}");
        }
        assert!(is_rfc3339(v["time"].as_str().unwrap()), "time is not RFC3339: {line}");
        if v["level"] == "error" {
            last_error = Some(v);
        }
    }
    let e = last_error.unwrap_or_else(|| panic!("no error line in log:\n{text}"));
    let msg = e["msg"].as_str().unwrap();
    assert!(msg.contains(&m) || msg.to_lowercase().contains("no such file"), "last error does not name the cause: {e}");
    env.assert_no_leftovers(&env.id);
}

#[test]
fn log_json_runtime_failure() {
    require_root!();
    let mut env = TestEnv::new("err-logjson2");
    env.set_args(&["/bin/nope"]);
    env.write_config();
    let log = env.dir.join("runtime.log");
    let l = log.to_string_lossy().into_owned();
    let b = env.bundle.to_string_lossy().into_owned();
    let mut cmd = std::process::Command::new(runtime_bin());
    cmd.args(["--root"]).arg(&env.root).args(["--log", &l, "--log-format", "json", "run", "--bundle", &b, &env.id]);
    cmd.env(MARKER_VAR, &env.marker);
    let out = env.run_cmd(cmd);
    assert!(out.code != 0 && !out.timed_out, "{}", out.describe());
    let text = fs::read_to_string(&log).unwrap_or_else(|e| panic!("log file not created ({e})"));
    let mut last_error = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line:?}"));
        for k in ["level", "msg", "time"] {
            assert!(v[k].is_string(), "log line lacks {k:?}: {line}");
        }
        if v["level"] == "error" {
            last_error = Some(v);
        }
    }
    let e = last_error.unwrap_or_else(|| panic!("no error line in log:\n{text}"));
    assert!(e["msg"].as_str().unwrap().contains("/bin/nope"), "{e}");
    env.assert_no_leftovers(&env.id);
}

#[test]
fn unknown_subcommand_and_missing_args() {
    require_root!();
    let env = TestEnv::new("err-cli");
    env.rt(&["frobnicate"]).failed();
    env.rt(&["start"]).failed();
    env.rt(&["state"]).failed();
    env.rt(&["kill"]).failed();
    env.rt(&["state", "no-such-container"]).failed().stderr_mentions(&["no-such-container", "not exist", "not found"]);
    env.rt(&["start", "no-such-container"]).failed();
    env.rt(&["kill", "no-such-container", "KILL"]).failed();
    env.rt(&["delete", "no-such-container"]).failed();
}
