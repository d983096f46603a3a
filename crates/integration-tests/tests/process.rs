//! The container process: rlimits, capabilities, user, cwd, env.

use serde_json::json;
use skiff_integration_tests::*;

#[test]
fn rlimits_applied() {
    require_root!();
    let mut env = TestEnv::new("proc-rlimits");
    env.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1234, "hard": 2345},
        {"type": "RLIMIT_NPROC", "soft": 777, "hard": 888}
    ]);
    let out = env.run_sh_ok("ulimit -n; ulimit -H -n; ulimit -u; ulimit -H -u");
    assert_eq!(out, "1234\n2345\n777\n888\n");
}

const CAP_CHOWN: u64 = 1 << 0;
const CAP_KILL: u64 = 1 << 5;
const CAP_NET_BIND_SERVICE: u64 = 1 << 10;
const CAP_SYS_ADMIN: u64 = 1 << 21;

#[test]
fn capabilities_root() {
    require_root!();
    let mut env = TestEnv::new("proc-caps-root");
    let set = json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    env.config["process"]["capabilities"] = json!({
        "bounding": set, "effective": set, "permitted": set, "inheritable": [], "ambient": []
    });
    let status = env.run_sh_ok("cat /proc/self/status");
    let want = CAP_CHOWN | CAP_KILL | CAP_NET_BIND_SERVICE;
    assert_eq!(cap_mask(&status, "CapBnd"), Some(want), "{status}");
    assert_eq!(cap_mask(&status, "CapEff"), Some(want), "{status}");
    assert_eq!(cap_mask(&status, "CapPrm"), Some(want), "{status}");
    assert_eq!(cap_mask(&status, "CapInh"), Some(0), "{status}");
    assert_eq!(cap_mask(&status, "CapAmb"), Some(0), "{status}");
}

#[test]
fn capabilities_non_root_ambient() {
    require_root!();
    let mut env = TestEnv::new("proc-caps-user");
    env.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    env.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"],
        "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL"],
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL"]
    });
    let status = env.run_sh_ok("cat /proc/self/status");
    assert_eq!(
        cap_mask(&status, "CapBnd"),
        Some(CAP_CHOWN | CAP_KILL | CAP_NET_BIND_SERVICE | CAP_SYS_ADMIN),
        "{status}"
    );
    assert_eq!(cap_mask(&status, "CapEff"), Some(CAP_KILL), "{status}");
    assert_eq!(cap_mask(&status, "CapPrm"), Some(CAP_KILL), "{status}");
    assert_eq!(cap_mask(&status, "CapAmb"), Some(CAP_KILL), "{status}");
}

#[test]
fn capabilities_empty_set() {
    require_root!();
    let mut env = TestEnv::new("proc-caps-none");
    env.config["process"]["capabilities"] = json!({
        "bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []
    });
    let out = env.run_sh("cat /proc/self/status; chown 1 /tmp; echo rc=$?");
    out.ok();
    assert_eq!(cap_mask(&out.stdout, "CapEff"), Some(0), "{}", out.describe());
    assert_eq!(cap_mask(&out.stdout, "CapBnd"), Some(0), "{}", out.describe());
    assert!(out.stdout.contains("rc=1"), "chown without CAP_CHOWN succeeded: {}", out.describe());
}

#[test]
fn user_uid_gid_additional_gids() {
    require_root!();
    let mut env = TestEnv::new("proc-user");
    env.config["process"]["user"] = json!({"uid": 1, "gid": 10, "additionalGids": [65534, 1]});
    let out = env.run_sh_ok("id -u; id -g; id -G; cat /proc/self/status | grep -E '^(Uid|Gid|Groups):'");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "{out}");
    assert_eq!(lines[1], "10", "{out}");
    let mut groups: Vec<u32> = lines[2].split_whitespace().map(|g| g.parse().unwrap()).collect();
    groups.sort();
    groups.dedup();
    groups.retain(|g| *g != 10);
    assert_eq!(groups, [1, 65534], "supplementary groups: {out}");
    let uid_line: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(uid_line, ["Uid:", "1", "1", "1", "1"], "{out}");
    let gid_line: Vec<&str> = lines[4].split_whitespace().collect();
    assert_eq!(gid_line, ["Gid:", "10", "10", "10", "10"], "{out}");
    let mut g: Vec<&str> = lines[5].split_whitespace().skip(1).collect();
    g.sort();
    assert_eq!(g, ["1", "65534"], "Groups: {out}");
}

#[test]
fn cwd_is_applied() {
    require_root!();
    let mut env = TestEnv::new("proc-cwd");
    env.config["process"]["cwd"] = json!("/var");
    assert_eq!(env.run_sh_ok("pwd"), "/var\n");
    // a missing cwd is created by the runtime (runc behaviour)
    env.config["process"]["cwd"] = json!("/work/dir");
    assert_eq!(env.run_sh_ok("pwd"), "/work/dir\n");
}

#[test]
fn env_is_exactly_the_config() {
    require_root!();
    let mut env = TestEnv::new("proc-env");
    env.config["process"]["env"] = json!([
        "PATH=/bin:/usr/bin",
        "FOO=bar baz",
        "EMPTY=",
        "MULTI=a=b=c"
    ]);
    let out = env.run_sh_ok("env");
    // the runtime's own environment (e.g. CARGO_*, RUST_TEST_THREADS) must not leak in
    let mut vars: Vec<&str> = out.lines().collect();
    vars.retain(|v| !v.starts_with(MARKER_VAR) && !v.starts_with("PWD=") && !v.starts_with("SHLVL=") && !v.starts_with("HOME="));
    vars.sort();
    assert_eq!(vars, ["EMPTY=", "FOO=bar baz", "MULTI=a=b=c", "PATH=/bin:/usr/bin"], "{out}");
}

#[test]
fn args_are_passed_verbatim() {
    require_root!();
    let mut env = TestEnv::new("proc-args");
    env.set_args(&["/bin/sh", "-c", "for a in \"$@\"; do echo \"[$a]\"; done", "argv0", "a b", "", "*", "$HOME"]);
    let out = env.run(&[]);
    out.ok();
    assert_eq!(out.stdout, "[a b]\n[]\n[*]\n[$HOME]\n");
}

#[test]
fn no_new_privileges_flag() {
    require_root!();
    let mut env = TestEnv::new("proc-nnp");
    env.config["process"]["noNewPrivileges"] = json!(true);
    let out = env.run_sh_ok("grep NoNewPrivs /proc/self/status");
    assert_eq!(out.split_whitespace().nth(1), Some("1"), "{out}");
    env.config["process"]["noNewPrivileges"] = json!(false);
    let out = env.run_sh_ok("grep NoNewPrivs /proc/self/status");
    assert_eq!(out.split_whitespace().nth(1), Some("0"), "{out}");
}
