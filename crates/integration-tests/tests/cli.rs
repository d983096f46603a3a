//! `spec` and `--version`.

use serde_json::{json, Value};
use skiff_integration_tests::*;
use std::fs;

#[test]
fn version_first_line() {
    require_root!();
    let env = TestEnv::new("cli-version");
    let out = env.rt(&["--version"]);
    out.ok();
    let first = out.stdout.lines().next().unwrap_or("");
    let words: Vec<&str> = first.split_whitespace().collect();
    let name = runtime_name();
    assert!(words.len() >= 3, "version line {first:?}");
    assert_eq!(words[0], name, "first word must be the binary name: {first:?}");
    assert_eq!(words[1], "version", "{first:?}");
    let v = words[2];
    let core: Vec<&str> = v.splitn(3, '.').collect();
    assert_eq!(core.len(), 3, "not X.Y.Z: {v}");
    assert!(core[0].parse::<u32>().is_ok() && core[1].parse::<u32>().is_ok(), "not X.Y.Z: {v}");
    let patch: String = core[2].chars().take_while(|c| c.is_ascii_digit()).collect();
    assert!(!patch.is_empty(), "not X.Y.Z: {v}");
}

#[test]
fn spec_writes_config() {
    require_root!();
    let env = TestEnv::new("cli-spec");
    let out = env.run_cmd({
        let mut c = env.command(&["spec"]);
        c.current_dir(&env.bundle);
        c
    });
    out.ok();
    let text = fs::read_to_string(env.bundle.join("config.json")).expect("spec did not write config.json");
    let v: Value = serde_json::from_str(&text).expect("spec output is not JSON");
    assert!(v["ociVersion"].as_str().is_some_and(|s| s.starts_with("1.")), "{v}");
    assert_eq!(v["root"]["path"], "rootfs");
    assert!(v["process"]["args"].as_array().is_some_and(|a| !a.is_empty()));
    assert!(v["process"]["cwd"].is_string());
    let ns: Vec<&str> = v["linux"]["namespaces"].as_array().expect("namespaces").iter().filter_map(|n| n["type"].as_str()).collect();
    for k in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(ns.contains(&k), "default spec lacks {k} namespace: {ns:?}");
    }
    assert!(v["mounts"].as_array().is_some_and(|m| m.iter().any(|m| m["destination"] == "/proc")));

    // a second spec must not silently overwrite it
    let again = env.run_cmd({
        let mut c = env.command(&["spec"]);
        c.current_dir(&env.bundle);
        c
    });
    again.failed();
}

#[test]
fn spec_output_is_runnable() {
    require_root!();
    let mut env = TestEnv::new("cli-spec-run");
    let out = env.run_cmd({
        let mut c = env.command(&["spec"]);
        c.current_dir(&env.bundle);
        c
    });
    out.ok();
    let mut v: Value = serde_json::from_str(&fs::read_to_string(env.bundle.join("config.json")).unwrap()).unwrap();
    v["process"]["terminal"] = json!(false);
    v["process"]["args"] = json!(["sh", "-c", "echo spec-ok; hostname"]);
    env.config = v;
    let out = env.run(&[]);
    out.ok();
    assert!(out.stdout.starts_with("spec-ok\n"), "{}", out.describe());
}
