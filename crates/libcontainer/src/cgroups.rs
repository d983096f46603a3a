//! The container's cgroup, through `libcgroups` (v1, v2 and systemd).
//!
//! The runtime creates the cgroup and puts the init in it before the init
//! runs any code of the container; `delete` removes it. This module also
//! answers the two cheap questions the status needs (is it frozen?) and
//! `kill --all` needs (which pids are in it?).

use std::path::{Path, PathBuf};

use libcgroups::common::{self, AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};

const ROOT: &str = "/sys/fs/cgroup";

/// The cgroup path used when config.json has none.
pub fn default_path(id: &str, systemd: bool) -> PathBuf {
    if systemd {
        PathBuf::from(format!("system.slice:skiff:{id}"))
    } else {
        PathBuf::from(format!("/skiff/{id}"))
    }
}

/// Normalises `linux.cgroupsPath`: a relative cgroupfs path is taken
/// relative to the hierarchy root (as runc does for root containers).
pub fn resolve_path(configured: Option<&Path>, id: &str, systemd: bool) -> PathBuf {
    match configured {
        None => default_path(id, systemd),
        Some(p) if p.as_os_str().is_empty() => default_path(id, systemd),
        Some(p) if systemd || p.is_absolute() => p.to_path_buf(),
        Some(p) => Path::new("/").join(p),
    }
}

pub fn is_v2() -> bool {
    matches!(nix::sys::statfs::statfs(ROOT), Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

fn rel(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// A manager for the container's cgroup.
pub fn manager(path: &Path, systemd: bool, id: &str) -> Result<AnyCgroupManager> {
    if systemd && !is_v2() {
        return Err(Error::Cgroup("the systemd cgroup driver needs cgroup v2 (this host uses cgroup v1)".into()));
    }
    common::create_cgroup_manager(CgroupConfig {
        cgroup_path: path.to_path_buf(),
        systemd_cgroup: systemd,
        container_name: id.to_string(),
    })
    .map_err(|e| Error::Cgroup(format!("{}: {e}", path.display())))
}

/// Creates the cgroup, moves `pid` into it and applies the resources.
pub fn setup(mgr: &AnyCgroupManager, pid: Pid, resources: Option<&LinuxResources>, path: &Path) -> Result<()> {
    mgr.add_task(pid).map_err(|e| Error::Cgroup(format!("join {}: {e}", path.display())))?;
    if let Some(resources) = resources {
        let opt = ControllerOpt { resources, disable_oom_killer: resources.memory().as_ref().and_then(|m| m.disable_oom_killer()).unwrap_or(false), oom_score_adj: None, freezer_state: None };
        mgr.apply(&opt).map_err(|e| Error::Cgroup(format!("apply linux.resources to {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Kills whatever is left in the cgroup and removes it.
pub fn remove(path: &Path, systemd: bool, id: &str) -> Result<()> {
    let mgr = manager(path, systemd, id)?;
    mgr.remove().map_err(|e| Error::Cgroup(format!("remove {}: {e}", path.display())))
}

/// Pids in the container's cgroup.
pub fn pids(path: &Path, systemd: bool, id: &str) -> Result<Vec<Pid>> {
    let mgr = manager(path, systemd, id)?;
    mgr.get_all_pids().map_err(|e| Error::Cgroup(format!("list pids of {}: {e}", path.display())))
}

/// Whether the cgroup is frozen (`skiff pause`). Cheap: one file read.
pub fn is_frozen(path: &Path, systemd: bool) -> bool {
    if systemd {
        return false;
    }
    if is_v2() {
        std::fs::read_to_string(Path::new(ROOT).join(rel(path)).join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
    } else {
        std::fs::read_to_string(Path::new(ROOT).join("freezer").join(rel(path)).join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
    }
}

/// For a `cgroup` mount inside the container: each hierarchy's mount name
/// (`cpu,cpuacct`, or "" for the v2 unified hierarchy) and the container's
/// directory in it on the host.
pub fn container_dirs(path: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return out };
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let fstype = post.split(' ').next().unwrap_or("");
        let mnt = pre.split(' ').nth(4).unwrap_or("");
        let Some(name) = mnt.strip_prefix("/sys/fs/cgroup") else { continue };
        match fstype {
            "cgroup" => {
                let name = name.trim_start_matches('/');
                if !name.is_empty() && !name.contains('/') {
                    out.push((name.to_string(), Path::new(mnt).join(rel(path))));
                }
            }
            "cgroup2" if name.is_empty() => out.push((String::new(), Path::new(mnt).join(rel(path)))),
            _ => {}
        }
    }
    out
}

/// `linux.resources` with the device rules every container needs appended
/// (as runc does): mknod of anything, the standard character devices, ptys,
/// and the devices of `linux.devices`.
pub fn with_device_rules(res: Option<&LinuxResources>, devices: &[crate::devices::Device]) -> LinuxResources {
    let mut res = res.cloned().unwrap_or_default();
    let mut rules = res.devices().clone().unwrap_or_default();
    let rule = |t: &str, major: i64, minor: i64, access: &str| {
        let mut v = serde_json::json!({"allow": true, "type": t, "access": access});
        if major >= 0 {
            v["major"] = major.into();
        }
        if minor >= 0 {
            v["minor"] = minor.into();
        }
        serde_json::from_value::<oci_spec::runtime::LinuxDeviceCgroup>(v).expect("valid rule")
    };
    rules.push(rule("c", -1, -1, "m"));
    rules.push(rule("b", -1, -1, "m"));
    for (ma, mi) in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (10, 200)] {
        rules.push(rule("c", ma, mi, "rwm"));
    }
    rules.push(rule("c", 136, -1, "rwm"));
    for d in devices {
        let t = match d.kind {
            libc::S_IFBLK => "b",
            libc::S_IFIFO => continue,
            _ => "c",
        };
        rules.push(rule(t, d.major as i64, d.minor as i64, "rwm"));
    }
    res.set_devices(Some(rules));
    res
}
