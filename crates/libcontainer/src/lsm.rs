//! Linux security modules: the AppArmor profile and SELinux label the
//! container's process is executed with (`process.apparmorProfile`,
//! `process.selinuxLabel`) and the SELinux context of its mounts
//! (`linux.mountLabel`), as runc applies them.
//!
//! The exec-time attribute is written by the init, still privileged and
//! before the seccomp filter, through the verified procfs handle
//! ([`crate::procfs`]); it takes effect at the next execve (the
//! startContainer hooks' too, as with runc). On a host without the module
//! the config is refused with runc's reason, before anything is created.

use std::path::Path;

use crate::error::{Error, Result};

/// What the init writes before exec.
#[derive(Debug, Default, Clone)]
pub struct LsmPlan {
    pub apparmor: Option<String>,
    pub selinux: Option<String>,
}

/// AppArmor as runc sees it: the securityfs directory and the module enabled.
pub fn apparmor_enabled() -> bool {
    Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.starts_with('Y'))
}

/// SELinux as go-selinux sees it: selinuxfs mounted.
pub fn selinux_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| Path::new("/sys/fs/selinux/enforce").exists())
}

impl LsmPlan {
    /// Checks the process's labels against what the host has.
    pub fn new(p: &oci_spec::runtime::Process) -> Result<LsmPlan> {
        let apparmor = p.apparmor_profile().clone().filter(|s| !s.is_empty());
        let selinux = p.selinux_label().clone().filter(|s| !s.is_empty());
        if apparmor.is_some() && !apparmor_enabled() {
            return Err(Error::config("process.apparmorProfile", "unable to apply apparmor profile: apparmor is not enabled on the host"));
        }
        if selinux.is_some() && !selinux_enabled() {
            return Err(Error::config("process.selinuxLabel", "selinux label is specified in config, but selinux is disabled or not supported"));
        }
        Ok(LsmPlan { apparmor, selinux })
    }

    pub fn is_empty(&self) -> bool {
        self.apparmor.is_none() && self.selinux.is_none()
    }

    /// In the init: the exec-time profile and label.
    pub fn apply(&self, proc: &crate::procfs::Proc) -> Result<()> {
        if let Some(profile) = &self.apparmor {
            // The module's own file where the kernel has it (5.8+), else the
            // shared one.
            let data = format!("exec {profile}");
            let field = format!("unable to apply apparmor profile {profile:?}");
            proc.write_self("attr/apparmor/exec", &data, &field).or_else(|_| proc.write_self("attr/exec", &data, &field))?;
        }
        if let Some(label) = &self.selinux {
            proc.write_self("attr/exec", label, &format!("process.selinuxLabel: set exec label {label:?}"))?;
        }
        Ok(())
    }
}

/// `linux.mountLabel` as the mounts get it: on a host with SELinux; without
/// it the label is left out with a warning, as current go-selinux (runc
/// 1.2+) and crun do (runc 1.1 passed it and the kernel refused the mount).
pub fn mount_label(label: Option<&str>) -> Option<String> {
    mount_label_if(selinux_enabled(), label)
}

fn mount_label_if(selinux: bool, label: Option<&str>) -> Option<String> {
    let label = label.filter(|l| !l.is_empty())?;
    if !selinux {
        tracing::warn!("linux.mountLabel {label:?} left out: selinux is disabled or not supported");
        return None;
    }
    Some(label.to_string())
}

/// The mount data with the mount label as its SELinux context, for the
/// mount types runc labels (not proc, sysfs, mqueue, cgroups, binds).
pub fn label_mount_data(typ: &str, data: Option<&str>, label: Option<&str>) -> Option<String> {
    match label {
        Some(l) if !matches!(typ, "proc" | "sysfs" | "mqueue" | "cgroup" | "cgroup2" | "bind") => {
            let ctx = format!("context=\"{l}\"");
            Some(match data {
                Some(d) if !d.is_empty() => format!("{d},{ctx}"),
                _ => ctx,
            })
        }
        _ => data.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mount_label_goes_where_runc_puts_it() {
        let l = Some("system_u:object_r:container_file_t:s0");
        let f = super::label_mount_data;
        assert_eq!(f("tmpfs", Some("mode=755"), l).as_deref(), Some("mode=755,context=\"system_u:object_r:container_file_t:s0\""));
        assert_eq!(f("devpts", None, l).as_deref(), Some("context=\"system_u:object_r:container_file_t:s0\""));
        assert_eq!(f("proc", Some("x"), l).as_deref(), Some("x"));
        assert_eq!(f("tmpfs", Some("mode=755"), None).as_deref(), Some("mode=755"));
        assert_eq!(super::mount_label_if(false, l), None);
        assert_eq!(super::mount_label_if(true, l).as_deref(), l);
        assert_eq!(super::mount_label_if(true, Some("")), None);
    }
}
