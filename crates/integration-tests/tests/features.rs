//! `features` (project issue 8): the runtime-spec features document, true
//! for this host. Runs against runc as well (runc 1.1.5 has the command).

use skiff_integration_tests::*;

#[test]
fn features_tell_the_truth_about_this_host() {
    require_root!();
    let env = TestEnv::new("features");
    let mut cmd = std::process::Command::new(runtime_bin());
    cmd.arg("features");
    let out = env.run_cmd(cmd);
    out.ok();
    let f: serde_json::Value = serde_json::from_str(&out.stdout).expect("features is JSON");
    for k in ["ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux"] {
        assert!(f.get(k).is_some(), "no {k}: {}", out.stdout);
    }
    let has = |path: &[&str], want: &str| f.pointer(&format!("/{}", path.join("/"))).and_then(|v| v.as_array()).is_some_and(|a| a.iter().any(|x| x == want));
    assert!(has(&["linux", "namespaces"], "user") && has(&["linux", "namespaces"], "cgroup"));
    if !is_runc() {
        // (runc 1.1.5 has no time namespace support, and says so.)
        assert_eq!(has(&["linux", "namespaces"], "time"), std::path::Path::new("/proc/self/ns/time").exists());
    }
    assert!(has(&["linux", "capabilities"], "CAP_SYS_ADMIN"));
    assert!(has(&["mountOptions"], "rbind") && has(&["mountOptions"], "ro"));
    for a in ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_NOTIFY", "SCMP_ACT_LOG"] {
        assert!(has(&["linux", "seccomp", "actions"], a), "seccomp action {a}");
    }
    let aa = std::path::Path::new("/sys/kernel/security/apparmor").exists() && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.starts_with('Y'));
    assert_eq!(f.pointer("/linux/apparmor/enabled").and_then(|v| v.as_bool()), Some(aa), "apparmor.enabled is not the host's");
    assert_eq!(f.pointer("/linux/selinux/enabled").and_then(|v| v.as_bool()), Some(std::path::Path::new("/sys/fs/selinux/enforce").exists()));
    if !is_runc() {
        // Checkpoint support is claimed only where `criu check` passes (not
        // on this host's kernel; in the VM it does).
        let criu = std::process::Command::new("criu").arg("check").output().is_ok_and(|o| o.status.success());
        let claimed = f.pointer("/annotations/org.opencontainers.runc.checkpoint.enabled").and_then(|v| v.as_str()) == Some("true");
        assert_eq!(claimed, criu, "checkpoint support said to be {claimed}, criu check says {criu}");
        let mut cmd = std::process::Command::new(runtime_bin());
        cmd.args(["--criu", "/nonexistent/criu", "features"]);
        let out = env.run_cmd(cmd);
        assert!(!out.ok().stdout.contains("checkpoint.enabled"), "checkpoint support claimed without criu");
        assert_eq!(f.pointer("/linux/mountExtensions/idmap/enabled").and_then(|v| v.as_bool()), Some(true));
    }
}
