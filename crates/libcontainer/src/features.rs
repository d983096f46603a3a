//! `features`: the runtime-spec features document, true for this build on
//! this host (what callers such as CRI-O read before they use a feature).

use serde_json::{json, Value};

/// Mount options `mounts[].options` understands (the rest of an option
/// list is passed to the filesystem as data).
const MOUNT_OPTIONS: &[&str] = &[
    "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "idmap", "iversion", "lazytime", "loud", "mand",
    "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid",
    "nosymfollow", "private", "ratime", "rbind", "rdev", "rdiratime", "relatime", "remount", "rexec", "ridmap", "rnoatime",
    "rnodev", "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow", "ro", "rprivate",
    "rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime", "rsuid", "runbindable", "rw", "shared", "silent", "slave",
    "strictatime", "suid", "symfollow", "sync", "unbindable",
];

const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",
];

const SECCOMP_OPERATORS: &[&str] =
    &["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"];

/// The filter flags skiff passes to seccomp(2), with their kernel values.
/// (WAIT_KILLABLE_RECV is only valid with NEW_LISTENER, 8: probed together.)
const SECCOMP_FLAGS: &[(&str, u32)] =
    &[("SECCOMP_FILTER_FLAG_LOG", 2), ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", 4), ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 32 | 8)];

/// A flag the kernel knows: seccomp(SET_MODE_FILTER) with it and no program
/// fails with EFAULT (it got as far as reading the program), not EINVAL.
fn kernel_knows_flag(flag: u32) -> bool {
    // SAFETY: a null program pointer: the kernel validates the flags, then
    // fails to read the program and returns EFAULT; nothing is installed.
    let r = unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong, flag as libc::c_ulong, std::ptr::null::<libc::c_void>()) };
    r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// Idmapped mounts need mount_setattr(2) (Linux 5.12): an invalid call
/// fails with EBADF or EINVAL where it exists, ENOSYS where it does not.
fn kernel_has_mount_setattr() -> bool {
    // SAFETY: an invalid descriptor and a null attribute pointer: the call
    // only validates its arguments and fails.
    let r = unsafe { libc::syscall(libc::SYS_mount_setattr, -1, c"".as_ptr(), 0, std::ptr::null::<libc::c_void>(), 0) };
    r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
}

fn namespaces() -> Vec<&'static str> {
    let mut v = vec!["cgroup", "ipc", "mount", "network", "pid", "user", "uts"];
    if std::path::Path::new("/proc/self/ns/time").exists() {
        v.push("time");
    }
    v
}

fn capabilities() -> Vec<String> {
    let mut v: Vec<String> = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all()).into_iter().map(|c| c.to_string()).collect();
    v.sort();
    v
}

/// What skiff can do with this host's cgroups: v1 or v2 (whichever the
/// host has; a hybrid host's unified hierarchy holds no controllers, so it
/// counts as v1), the systemd driver (cgroup v2 with systemd running; no
/// user instance), and rdma limits where the rdma controller exists.
fn cgroup() -> Value {
    let v2 = crate::cgroups::is_v2();
    let systemd = v2 && std::path::Path::new("/run/systemd/system").is_dir();
    json!({"v1": !v2, "v2": v2, "systemd": systemd, "systemdUser": false, "rdma": crate::cgroups::has_controller("rdma")})
}

/// The features document (key order of the runtime-spec). Checkpoint and
/// restore are said to work (runc's annotation) only when `criu` is there
/// and `criu check` passes on this kernel.
pub fn features(criu: &std::path::Path) -> Value {
    let known: Vec<&str> = SECCOMP_FLAGS.iter().map(|(n, _)| *n).collect();
    let supported: Vec<&str> = SECCOMP_FLAGS.iter().filter(|(_, f)| kernel_knows_flag(*f)).map(|(n, _)| *n).collect();
    let mut annotations = serde_json::Map::new();
    if let Ok(v) = crate::seccomp::library_version() {
        annotations.insert("io.github.seccomp.libseccomp.version".into(), json!(v));
    }
    if crate::container::criu_works(criu) {
        annotations.insert("org.opencontainers.runc.checkpoint.enabled".into(), json!("true"));
    }
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": namespaces(),
            "capabilities": capabilities(),
            "cgroup": cgroup(),
            "seccomp": {
                "enabled": true,
                "actions": SECCOMP_ACTIONS,
                "operators": SECCOMP_OPERATORS,
                "archs": crate::seccomp::supported_archs(),
                "knownFlags": known,
                "supportedFlags": supported
            },
            "apparmor": {"enabled": crate::lsm::apparmor_enabled()},
            "selinux": {"enabled": crate::lsm::selinux_enabled()},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": kernel_has_mount_setattr()}}
        },
        "annotations": annotations
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_is_the_spec_s_features_schema() {
        let v = super::features(std::path::Path::new("criu"));
        let f: oci_spec::runtime::Features = serde_json::from_value(v.clone()).expect("a runtime-spec features document");
        assert_eq!(f.oci_version_max(), crate::spec::OCI_VERSION);
        let linux = f.linux().as_ref().unwrap();
        assert!(linux.seccomp().as_ref().unwrap().actions().as_ref().unwrap().len() == 9);
        assert!(linux.capabilities().as_ref().unwrap().iter().any(|c| c == "CAP_SYS_ADMIN"));
        let criu = crate::container::criu_works(std::path::Path::new("criu"));
        assert_eq!(v["annotations"].get("org.opencontainers.runc.checkpoint.enabled").is_some(), criu, "checkpoint support as criu check says");
        let none = super::features(std::path::Path::new("/nonexistent/criu"));
        assert!(none["annotations"].get("org.opencontainers.runc.checkpoint.enabled").is_none(), "no criu, no checkpoint support");
    }

    #[test]
    fn mount_options_are_sorted_and_unique() {
        assert!(super::MOUNT_OPTIONS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn every_listed_mount_option_is_understood() {
        for o in super::MOUNT_OPTIONS {
            let p = crate::rootfs::parse_options(&[o.to_string()]);
            assert!(p.data.is_empty(), "{o} would be passed to the filesystem as data");
        }
    }
}
