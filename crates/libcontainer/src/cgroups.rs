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

/// Creates the cgroup and moves `pid` into it.
pub fn join(mgr: &AnyCgroupManager, pid: Pid, path: &Path) -> Result<()> {
    mgr.add_task(pid).map_err(|e| Error::Cgroup(format!("join {}: {e}", path.display())))
}

/// On a cgroup v1 host: creates the container's directory in every
/// hierarchy and moves `pid` in, without a manager. Building libcgroups'
/// v1 manager costs ~1.6 ms of /proc parsing; this lets the init go on
/// while the manager is built and the resources applied. The cpuset
/// hierarchy needs cpus and mems before a task can join: they are copied
/// from the parent, as the kernel's clone_children would.
///
/// The devices hierarchy is only created here: the init still makes its
/// /dev nodes while the rules are written (deny-all first, then the
/// allow-list), so it joins that cgroup with [`join_v1_devices`] after the
/// rules are complete.
pub fn join_v1_dirs(dirs: &[PathBuf], pid: Pid) -> Result<()> {
    for d in dirs {
        if is_devices(d) {
            std::fs::create_dir_all(d).map_err(|e| Error::Cgroup(format!("create {}: {}", d.display(), crate::error::strerror(&e))))?;
            continue;
        }
        let err = |e: std::io::Error| Error::Cgroup(format!("join {}: {}", d.display(), crate::error::strerror(&e)));
        std::fs::create_dir_all(d).map_err(err)?;
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let file = d.join(f);
            if std::fs::read_to_string(&file).is_ok_and(|v| v.trim().is_empty()) {
                ensure_cpuset(d, f).map_err(err)?;
            }
        }
        std::fs::write(d.join("cgroup.procs"), pid.as_raw().to_string()).map_err(err)?;
    }
    Ok(())
}

fn is_devices(d: &Path) -> bool {
    d.strip_prefix(ROOT).ok().and_then(|r| r.components().next()).is_some_and(|c| c.as_os_str() == "devices")
}

/// Second half of [`join_v1_dirs`]: moves `pid` into the devices cgroup.
pub fn join_v1_devices(dirs: &[PathBuf], pid: Pid) -> Result<()> {
    for d in dirs.iter().filter(|d| is_devices(d)) {
        std::fs::write(d.join("cgroup.procs"), pid.as_raw().to_string()).map_err(|e| Error::Cgroup(format!("join {}: {}", d.display(), crate::error::strerror(&e))))?;
    }
    Ok(())
}

/// Fills an empty cpuset file from the nearest ancestor, top-down.
fn ensure_cpuset(dir: &Path, file: &str) -> std::io::Result<()> {
    let v = std::fs::read_to_string(dir.join(file))?;
    if !v.trim().is_empty() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        ensure_cpuset(parent, file)?;
        let pv = std::fs::read_to_string(parent.join(file))?;
        std::fs::write(dir.join(file), pv.trim())?;
    }
    Ok(())
}

/// Applies `linux.resources`.
pub fn apply(mgr: &AnyCgroupManager, resources: Option<&LinuxResources>, path: &Path) -> Result<()> {
    if let Some(resources) = resources {
        let opt = ControllerOpt { resources, disable_oom_killer: resources.memory().as_ref().and_then(|m| m.disable_oom_killer()).unwrap_or(false), oom_score_adj: None, freezer_state: None };
        mgr.apply(&opt).map_err(|e| Error::Cgroup(format!("apply linux.resources to {}: {e}", path.display())))?;
    }
    Ok(())
}

/// The container's directory in each hierarchy (empty for the systemd
/// driver, whose unit owns them). Recorded in the state at create, so that
/// `kill --all` and `delete` need not build a cgroup manager again (that
/// costs ~2 ms of /proc parsing on a v1 host).
pub fn host_dirs(path: &Path, systemd: bool) -> Vec<PathBuf> {
    if systemd {
        return Vec::new();
    }
    container_dirs(path).into_iter().map(|(_, d)| d).collect()
}

fn read_pids(dir: &Path, out: &mut Vec<Pid>) {
    if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(s.lines().filter_map(|l| l.trim().parse().ok()).map(Pid::from_raw));
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                read_pids(&e.path(), out);
            }
        }
    }
}

/// Pids in the container's cgroup (and its sub-cgroups).
pub fn pids(path: &Path, systemd: bool, id: &str, dirs: &[PathBuf]) -> Result<Vec<Pid>> {
    if let Some(d) = dirs.iter().find(|d| d.exists()) {
        let mut out = Vec::new();
        read_pids(d, &mut out);
        return Ok(out);
    }
    if !dirs.is_empty() {
        return Ok(Vec::new());
    }
    let mgr = manager(path, systemd, id)?;
    mgr.get_all_pids().map_err(|e| Error::Cgroup(format!("list pids of {}: {e}", path.display())))
}

/// Kills whatever is left in the cgroup, waits for it on pidfds, and
/// removes the cgroup (sub-cgroups first).
pub fn remove(path: &Path, systemd: bool, id: &str, dirs: &[PathBuf]) -> Result<()> {
    if dirs.is_empty() {
        let mgr = manager(path, systemd, id)?;
        return mgr.remove().map_err(|e| Error::Cgroup(format!("remove {}: {e}", path.display())));
    }
    let left = pids(path, systemd, id, dirs)?;
    let fds: Vec<_> = left.iter().filter_map(|p| crate::sys::pidfd_open(*p).ok()).collect();
    for fd in &fds {
        let _ = crate::sys::pidfd_send_signal(std::os::fd::AsFd::as_fd(fd), libc::SIGKILL);
    }
    for fd in &fds {
        let _ = crate::sys::pidfd_wait_exit(std::os::fd::AsFd::as_fd(fd), 10_000);
    }
    for d in dirs {
        rmdir_tree(d).map_err(|e| Error::Cgroup(format!("remove {}: {}", d.display(), crate::error::strerror(&e))))?;
    }
    Ok(())
}

fn rmdir_tree(d: &Path) -> std::io::Result<()> {
    match std::fs::read_dir(d) {
        Ok(rd) => {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rmdir_tree(&e.path())?;
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    // An exited task can linger in the cgroup for a moment after its pidfd
    // reports the exit; retry EBUSY briefly.
    for i in 0..50 {
        match std::fs::remove_dir(d) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && i < 49 => std::thread::sleep(std::time::Duration::from_millis(2)),
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
