//! AppArmor and SELinux: the profile and labels of config.json applied as
//! runc applies them, and refused with runc's reason where the host lacks
//! the module. The AppArmor test needs a kernel with AppArmor and
//! `apparmor_parser`: this host's kernel has no LSM, so `just test` runs it
//! in the VM (scripts/lsm-vm.sh); elsewhere it says it was skipped.

use serde_json::json;
use skiff_integration_tests::*;
use std::path::Path;
use std::process::Command;

fn apparmor_enabled() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists() && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.starts_with('Y'))
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

const PROFILE: &str = "skiff-it-confined";

/// Loads a profile that allows everything but writing /tmp/denied.
fn load_profile(env: &TestEnv) -> bool {
    let text = format!("profile {PROFILE} flags=(attach_disconnected,mediate_deleted) {{\n  file,\n  capability,\n  network,\n  mount,\n  umount,\n  pivot_root,\n  signal,\n  ptrace,\n  unix,\n  deny /tmp/denied w,\n}}\n");
    let p = env.dir.join("profile");
    std::fs::write(&p, text).unwrap();
    let ok = Command::new("apparmor_parser").arg("-r").arg(&p).status().is_ok_and(|s| s.success());
    if ok {
        env.on_cleanup(move || {
            let _ = Command::new("apparmor_parser").arg("-R").arg(&p).status();
        });
    }
    ok
}

#[test]
fn apparmor_profile_is_applied() {
    require_root!();
    let mut env = TestEnv::new("lsm-apparmor");
    if !apparmor_enabled() {
        env.config["process"]["apparmorProfile"] = json!(PROFILE);
        env.set_args(&["true"]);
        // runc: "unable to apply apparmor profile: ..." (it fails in the init).
        env.run(&[]).failed().stderr_mentions(&["apparmor"]);
        env.assert_no_leftovers(&env.id);
        skip_message("SKIPPED lsm::apparmor_profile_is_applied: no AppArmor in this kernel (refusal checked instead; `just test` runs it in the VM)\n");
        return;
    }
    assert!(load_profile(&env), "apparmor_parser could not load the test profile");
    env.config["process"]["apparmorProfile"] = json!(PROFILE);
    env.config["root"]["readonly"] = json!(false);
    env.set_sh("cat /proc/self/attr/current; mkdir -p /tmp; touch /tmp/allowed && echo allowed-ok; touch /tmp/denied 2>/dev/null || echo denied-ok");
    let out = env.run(&[]);
    out.ok();
    assert!(out.stdout.contains(&format!("{PROFILE} (enforce)")), "{}", out.describe());
    assert!(out.stdout.contains("allowed-ok") && out.stdout.contains("denied-ok"), "{}", out.describe());
    // An exec'd process gets the container's profile, or the one --apparmor
    // names (here `unconfined`, the kernel's).
    env.set_args(&["sleep", "300"]);
    let id = env.new_id();
    env.run_id(&id, &["-d"]).ok();
    let out = env.rt(&["exec", &id, "cat", "/proc/self/attr/current"]);
    assert_eq!(out.ok().stdout.trim(), format!("{PROFILE} (enforce)"), "{}", out.describe());
    let out = env.rt(&["exec", "--apparmor", "unconfined", &id, "cat", "/proc/self/attr/current"]);
    assert_eq!(out.ok().stdout.trim(), "unconfined", "{}", out.describe());
    env.rt(&["delete", "--force", &id]).ok();
}

#[test]
fn selinux_label_without_selinux_is_refused() {
    require_root!();
    if selinux_enabled() {
        skip_message("SKIPPED lsm::selinux_label_without_selinux_is_refused: this host has SELinux\n");
        return;
    }
    let mut env = TestEnv::new("lsm-selinux");
    env.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    env.set_args(&["true"]);
    env.create().failed().stderr_mentions(&["selinux label is specified in config, but selinux is disabled or not supported"]);
    env.assert_no_leftovers(&env.id);
}

/// linux.mountLabel is the context= option of the tmpfs and devpts mounts
/// on an SELinux host; without SELinux it is left out (crun, runc 1.2+;
/// runc 1.1.5 passes it and the kernel refuses the mount).
#[test]
fn mount_label_is_passed_as_context() {
    require_root!();
    let mut env = TestEnv::new("lsm-mountlabel");
    env.config["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0");
    env.set_sh("grep ' /dev ' /proc/self/mountinfo");
    let out = env.run(&[]);
    out.ok();
    assert_eq!(out.stdout.contains("context="), selinux_enabled(), "{}", out.describe());
}
