//! Namespaces: which to create with clone3, which to join by path, and the
//! few that have to be entered by the runtime itself before the clone.
//!
//! - New namespaces are created by the clone itself (one syscall, and a new
//!   user namespace then owns all the others).
//! - A pid namespace given by path is entered by the runtime with setns
//!   before the clone (setns on a pid namespace only affects children), so
//!   the init is born inside it without an extra fork.
//! - A new time namespace is unshared by the runtime before the clone (that
//!   too only affects children) so its offsets can be written before any
//!   process is inside.
//! - Every other path is joined by the init right after the clone, the user
//!   namespace first.
//!
//! When a user namespace is joined by path, the new namespaces are unshared
//! after that setns (so they belong to it); a new pid namespace then needs
//! one extra fork, the only one skiff ever makes.
//!
//! The runtime restores its own pid/time "for children" namespaces after the
//! clone, so later hooks it runs are not affected.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, LinuxNamespaceType};

use crate::error::{Error, Result};

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The namespace set-up of one container, worked out before the clone.
pub struct Plan {
    /// Namespaces created by the clone.
    pub clone_flags: CloneFlags,
    /// Namespaces the init joins after the clone (user first), opened by the
    /// runtime so the paths are resolved on the host.
    pub join: Vec<(LinuxNamespaceType, OwnedFd)>,
    /// A pid namespace the runtime enters before the clone.
    pub pid_path: Option<OwnedFd>,
    /// A new time namespace, with its offsets.
    pub new_time: Option<String>,
    pub new_user: bool,
    pub new_pid: bool,
}

const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

impl Plan {
    pub fn new(linux: &Linux) -> Result<Plan> {
        let mut plan = Plan {
            clone_flags: CloneFlags::empty(),
            join: Vec::new(),
            pid_path: None,
            new_time: None,
            new_user: false,
            new_pid: false,
        };
        for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
            let t = ns.typ();
            match ns.path() {
                None => match t {
                    LinuxNamespaceType::Time => plan.new_time = Some(time_offsets(linux)),
                    _ => {
                        plan.clone_flags |= clone_flag(t);
                        plan.new_user |= t == LinuxNamespaceType::User;
                        plan.new_pid |= t == LinuxNamespaceType::Pid;
                    }
                },
                Some(p) => {
                    let fd = open_ns(p, t).map_err(|reason| Error::config(format!("linux.namespaces[{i}].path"), reason))?;
                    if t == LinuxNamespaceType::Pid {
                        plan.pid_path = Some(fd);
                    } else {
                        plan.join.push((t, fd));
                    }
                }
            }
        }
        // Join the user namespace first: it decides what the others allow.
        plan.join.sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
        Ok(plan)
    }

    /// Whether the init must unshare its new namespaces itself (after joining
    /// a user namespace by path) rather than get them from the clone.
    pub fn unshare_after_join(&self) -> bool {
        self.join.iter().any(|(t, _)| *t == LinuxNamespaceType::User)
    }

    /// Whether the init must fork once more: a new pid namespace unshared
    /// after joining a user namespace by path only applies to children.
    /// This is skiff's only extra fork.
    pub fn fork_after_unshare(&self) -> bool {
        self.unshare_after_join() && self.new_pid
    }

    /// The flags to pass to the clone.
    pub fn flags_for_clone(&self) -> CloneFlags {
        if self.unshare_after_join() {
            CloneFlags::empty()
        } else {
            self.clone_flags
        }
    }

    /// In the runtime, before the clone: enter the pid namespace given by
    /// path and create the new time namespace. The returned guard restores
    /// the runtime's own namespaces for its later children.
    pub fn enter_for_children(&self) -> Result<ChildrenNsGuard> {
        let mut guard = ChildrenNsGuard { pid: None, time: None };
        if let Some(fd) = &self.pid_path {
            guard.pid = Some(open_self_ns("pid_for_children")?);
            setns(fd.as_fd(), CloneFlags::CLONE_NEWPID).map_err(|e| Error::errno("join the pid namespace", e))?;
        }
        if let Some(offsets) = &self.new_time {
            guard.time = Some(open_self_ns("time_for_children")?);
            unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)).map_err(|e| Error::errno("create the time namespace", e))?;
            if !offsets.is_empty() {
                std::fs::write("/proc/self/timens_offsets", offsets).map_err(|e| Error::io("write /proc/self/timens_offsets", e))?;
            }
        }
        Ok(guard)
    }

    /// In the init, right after the clone: join the namespaces given by path
    /// (user first) and, if a user namespace was joined, unshare the new ones.
    pub fn join_in_child(&self) -> Result<()> {
        for (t, fd) in &self.join {
            setns(fd.as_fd(), clone_flag(*t)).map_err(|e| Error::errno(format!("join the {t} namespace"), e))?;
        }
        if self.unshare_after_join() && !self.clone_flags.is_empty() {
            unshare(self.clone_flags).map_err(|e| Error::errno("create namespaces", e))?;
        }
        Ok(())
    }
}

/// Restores the runtime's pid/time namespaces for children on drop.
pub struct ChildrenNsGuard {
    pid: Option<OwnedFd>,
    time: Option<OwnedFd>,
}

impl Drop for ChildrenNsGuard {
    fn drop(&mut self) {
        if let Some(fd) = &self.pid {
            let _ = setns(fd.as_fd(), CloneFlags::CLONE_NEWPID);
        }
        if let Some(fd) = &self.time {
            let _ = setns(fd.as_fd(), CloneFlags::from_bits_retain(libc::CLONE_NEWTIME));
        }
    }
}

impl ChildrenNsGuard {
    /// Enters, for our children, the pid namespace of the process behind
    /// `pidfd` (an `exec` into a container); restored on drop.
    pub fn enter_pid_of(pidfd: std::os::fd::BorrowedFd) -> Result<ChildrenNsGuard> {
        let guard = ChildrenNsGuard { pid: Some(open_self_ns("pid_for_children")?), time: None };
        setns(pidfd, CloneFlags::CLONE_NEWPID).map_err(|e| Error::errno("join the container's pid namespace", e))?;
        Ok(guard)
    }
}

fn open_self_ns(name: &str) -> Result<OwnedFd> {
    let p = format!("/proc/self/ns/{name}");
    nix::fcntl::open(p.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        // SAFETY: `open` just returned this descriptor.
        .map(|fd| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
        .map_err(|e| Error::errno(format!("open {p}"), e))
}

/// Opens a namespace file and checks it is a namespace of type `t`.
fn open_ns(path: &Path, t: LinuxNamespaceType) -> std::result::Result<OwnedFd, String> {
    let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: `open` just returned this descriptor.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: NS_GET_NSTYPE takes no argument and returns the CLONE_NEW* type.
    let ty = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
    if ty < 0 {
        return Err(format!("{} is not a namespace file", path.display()));
    }
    if ty as i32 != clone_flag(t).bits() {
        return Err(format!("{} is not a {t} namespace", path.display()));
    }
    Ok(fd)
}

/// The contents for /proc/self/timens_offsets.
fn time_offsets(linux: &Linux) -> String {
    let mut s = String::new();
    for (clock, off) in linux.time_offsets().iter().flatten() {
        s.push_str(&format!("{clock} {} {}\n", off.secs().unwrap_or(0), off.nanosecs().unwrap_or(0)));
    }
    s
}

/// Whether this process runs in a user namespace other than the initial
/// one (its uid map is not the identity over every id), as runc's
/// `userns.RunningInUserNS`: rootless Podman runs the runtime as root of a
/// user namespace of its own and asks for none in the config. Read once: a
/// runtime command never changes its own user namespace (only its
/// children do).
pub fn running_in_userns() -> bool {
    static IN_USERNS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN_USERNS.get_or_init(|| uid_map_is_partial(&crate::sys::read_proc("/proc/self/uid_map").unwrap_or_default()))
}

fn uid_map_is_partial(map: &str) -> bool {
    map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"]
}

/// The text of a /proc/<pid>/{uid,gid}_map file for `maps`.
pub fn id_map_text(maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>) -> String {
    maps.iter().flatten().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect()
}

/// The id maps of a rootless container's user namespace, as the kernel
/// allows them to an unprivileged user: the user's own uid and gid alone
/// are written directly (the gid map after setgroups is denied); anything
/// more goes through the setuid helpers newuidmap/newgidmap, which check
/// the ranges against /etc/subuid and /etc/subgid.
pub fn write_rootless_maps(pid: nix::unistd::Pid, linux: &Linux) -> Result<()> {
    let own = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>, id: u32| matches!(maps.as_deref(), Some([m]) if m.host_id() == id && m.size() == 1);
    let proc = crate::procfs::Proc::runtime()?;
    if own(linux.uid_mappings(), nix::unistd::geteuid().as_raw()) {
        proc.write_pid(pid.as_raw(), "uid_map", &id_map_text(linux.uid_mappings()), "linux.uidMappings")?;
    } else {
        id_map_helper("newuidmap", pid, linux.uid_mappings(), "linux.uidMappings")?;
    }
    if own(linux.gid_mappings(), nix::unistd::getegid().as_raw()) {
        proc.write_pid(pid.as_raw(), "setgroups", "deny", "linux.gidMappings")?;
        proc.write_pid(pid.as_raw(), "gid_map", &id_map_text(linux.gid_mappings()), "linux.gidMappings")
    } else {
        id_map_helper("newgidmap", pid, linux.gid_mappings(), "linux.gidMappings")
    }
}

fn id_map_helper(helper: &str, pid: nix::unistd::Pid, maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>, field: &str) -> Result<()> {
    let mut cmd = std::process::Command::new(helper);
    cmd.arg(pid.as_raw().to_string());
    for m in maps.iter().flatten() {
        cmd.args([m.container_id().to_string(), m.host_id().to_string(), m.size().to_string()]);
    }
    let out = cmd.output().map_err(|e| Error::config(field, format!("rootless: mapping more than your own id needs {helper} (package uidmap): {}", crate::error::strerror(&e))))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(Error::config(field, format!("{helper} refused the mapping (check /etc/subuid and /etc/subgid): {}", msg.trim())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::uid_map_is_partial;

    #[test]
    fn the_initial_user_namespace_maps_every_id() {
        assert!(!uid_map_is_partial("         0          0 4294967295\n"));
        // rootless Podman's namespace: the user, then its subordinate ids
        assert!(uid_map_is_partial("         0       1004          1\n         1     296608      65536\n"));
        assert!(uid_map_is_partial("0 0 1\n"));
    }
}
