//! OCI hooks: order, and the container state on each hook's stdin.

use serde_json::{json, Value};
use skiff_integration_tests::*;
use std::fs;
use std::path::Path;
use std::time::Duration;

const HOOKS: [&str; 6] = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];

fn read_order(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("order"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn hooks_order_and_state() {
    require_root!();
    let mut env = TestEnv::new("hooks");
    // The log dir is bind-mounted at the SAME path inside the container, so
    // the hook script and log resolve both in the runtime namespace
    // (prestart, createRuntime, createContainer, poststart, poststop) and in
    // the container namespace (startContainer).
    let dir = env.dir.join("hooklog");
    fs::create_dir_all(&dir).unwrap();
    let d = dir.to_string_lossy().into_owned();
    env.add_mount(json!({"destination": d, "type": "bind", "source": d, "options": ["rbind", "rw"]}));
    let script = format!("#!/bin/sh\necho \"$1\" >> {d}/order\ncat > {d}/\"$1\".json\n");
    fs::write(dir.join("hook.sh"), script).unwrap();
    let mut hooks = serde_json::Map::new();
    for h in HOOKS {
        hooks.insert(
            h.to_string(),
            json!([{"path": "/bin/sh", "args": ["sh", format!("{d}/hook.sh"), h], "env": ["PATH=/bin:/usr/bin"], "timeout": 10}]),
        );
    }
    env.config["hooks"] = Value::Object(hooks);
    env.set_sh(&format!("echo process >> {d}/order"));

    // Problems are collected so one run reports every deviation.
    // NOTE: runc 1.1 runs poststart hooks during `create` (fixed in runc
    // 1.2); the spec requires them after the process started.
    let mut problems: Vec<String> = Vec::new();
    env.create().ok();
    let pid = env.state()["pid"].as_i64().unwrap();
    let order = read_order(&dir);
    if order != ["prestart", "createRuntime", "createContainer"] {
        problems.push(format!("hooks run by create: {order:?}, want [prestart, createRuntime, createContainer]"));
    }

    env.start().ok();
    env.wait_status("stopped");
    wait_until(Duration::from_secs(5), || read_order(&dir).len() >= 6);
    env.rt(&["delete", &env.id]).ok();
    let order = read_order(&dir);
    let pos = |name: &str| order.iter().position(|o| o == name);
    for h in HOOKS.iter().chain(["process"].iter()) {
        let n = order.iter().filter(|o| o == h).count();
        if n != 1 {
            problems.push(format!("{h} ran {n} times"));
        }
    }
    let before = |a: &str, b: &str, problems: &mut Vec<String>| match (pos(a), pos(b)) {
        (Some(x), Some(y)) if x < y => {}
        _ => problems.push(format!("{a} must run before {b}")),
    };
    before("prestart", "createRuntime", &mut problems);
    before("createRuntime", "createContainer", &mut problems);
    before("createContainer", "startContainer", &mut problems);
    before("startContainer", "process", &mut problems);
    before("startContainer", "poststart", &mut problems);
    if order.last().map(String::as_str) != Some("poststop") {
        problems.push("poststop must run last (on delete)".into());
    }

    let bundle = fs::canonicalize(&env.bundle).unwrap();
    for h in HOOKS {
        let text = fs::read_to_string(dir.join(format!("{h}.json"))).unwrap_or_default();
        let st: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{h}: stdin is not state JSON ({e}): {text:?}"));
                continue;
            }
        };
        if st["id"] != env.id.as_str() || st["bundle"].as_str() != bundle.to_str() || !st["ociVersion"].is_string() {
            problems.push(format!("{h}: wrong id/bundle/ociVersion: {st}"));
        }
        let status = st["status"].as_str().unwrap_or("");
        if !["creating", "created", "running", "stopped"].contains(&status) {
            problems.push(format!("{h}: bad status: {st}"));
        }
        match h {
            // run inside the container: runc reports the pid as seen
            // there (1); the host pid is accepted too.
            "createContainer" | "startContainer" => {
                let p = st["pid"].as_i64();
                if p != Some(pid) && p != Some(1) {
                    problems.push(format!("{h}: pid is neither the init pid {pid} nor 1: {st}"));
                }
            }
            // pid is only REQUIRED while created/running
            "poststop" => {}
            _ => {
                if st["pid"].as_i64() != Some(pid) {
                    problems.push(format!("{h}: pid is not the init pid {pid}: {st}"));
                }
            }
        }
        if h == "poststop" && status != "stopped" {
            problems.push(format!("{h}: status must be stopped: {st}"));
        }
    }
    assert!(problems.is_empty(), "hook problems (order {order:?}):\n  {}", problems.join("\n  "));
}

#[test]
fn failing_prestart_hook_aborts_create() {
    require_root!();
    let mut env = TestEnv::new("hooks-fail");
    env.config["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-broke >&2; exit 3"]}]});
    env.set_args(&["sleep", "1000"]);
    let out = env.create();
    out.failed();
    env.assert_no_leftovers(&env.id);
}

/// A hook's `timeout` is honoured: a prestart hook that outlives it is
/// killed, create fails naming the timeout, and nothing is left behind.
#[test]
fn hook_timeout_is_honoured() {
    require_root!();
    let mut env = TestEnv::new("hooks-timeout");
    env.config["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "exec sleep 30"], "timeout": 1}]});
    env.set_args(&["sleep", "1000"]);
    let start = std::time::Instant::now();
    let out = env.create();
    let took = start.elapsed();
    out.failed();
    assert!(took < Duration::from_secs(15), "create took {took:?}: the hook was not cut off at its timeout");
    assert!(out.stderr.contains("timed out"), "error does not name the timeout: {}", out.describe());
    env.assert_no_leftovers(&env.id);
}
