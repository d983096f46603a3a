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

fn pos(order: &[String], name: &str) -> usize {
    order
        .iter()
        .position(|o| o == name)
        .unwrap_or_else(|| panic!("{name} did not run; order: {order:?}"))
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

    env.create().ok();
    let pid = env.state()["pid"].as_i64().unwrap();
    let order = read_order(&dir);
    assert_eq!(order, ["prestart", "createRuntime", "createContainer"], "hooks run by create");

    env.start().ok();
    env.wait_status("stopped");
    assert!(
        wait_until(Duration::from_secs(5), || read_order(&dir).len() >= 6),
        "order: {:?}",
        read_order(&dir)
    );
    env.rt(&["delete", &env.id]).ok();
    let order = read_order(&dir);
    assert_eq!(order.len(), 7, "each hook once plus the process: {order:?}");
    assert!(pos(&order, "prestart") < pos(&order, "createRuntime"));
    assert!(pos(&order, "createRuntime") < pos(&order, "createContainer"));
    assert!(pos(&order, "createContainer") < pos(&order, "startContainer"));
    assert!(pos(&order, "startContainer") < pos(&order, "process"), "startContainer must run before the process: {order:?}");
    assert!(pos(&order, "startContainer") < pos(&order, "poststart"));
    assert_eq!(order.last().map(String::as_str), Some("poststop"));

    let bundle = fs::canonicalize(&env.bundle).unwrap();
    for h in HOOKS {
        let text = fs::read_to_string(dir.join(format!("{h}.json"))).unwrap_or_default();
        let st: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{h}: stdin is not state JSON ({e}): {text:?}"));
        assert_eq!(st["id"], env.id.as_str(), "{h}: {st}");
        assert_eq!(st["bundle"].as_str(), bundle.to_str(), "{h}: {st}");
        assert!(st["ociVersion"].is_string(), "{h}: {st}");
        let status = st["status"].as_str().unwrap_or_else(|| panic!("{h}: no status: {st}"));
        assert!(["creating", "created", "running", "stopped"].contains(&status), "{h}: {st}");
        if h != "poststop" {
            assert_eq!(st["pid"].as_i64(), Some(pid), "{h}: pid: {st}");
        } else {
            assert!(st.get("pid").is_some(), "{h}: pid missing: {st}");
            assert_eq!(status, "stopped", "{h}: {st}");
        }
    }
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
