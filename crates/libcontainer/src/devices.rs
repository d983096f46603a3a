//! Device nodes in the container's /dev: the defaults every container gets
//! (null, zero, full, random, urandom, tty), `linux.devices`, and the
//! standard /dev symlinks. Inside a user namespace mknod is not allowed, so
//! the host's node is bind-mounted instead, as runc does.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{Linux, LinuxDeviceType};

use crate::error::{Context, Error, Result};
use crate::safe_path::{fd_path, Root};

#[derive(Clone, Debug)]
pub struct Device {
    pub path: PathBuf,
    /// libc::S_IFCHR, S_IFBLK or S_IFIFO.
    pub kind: u32,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

fn chr(path: &str, major: u64, minor: u64) -> Device {
    Device { path: path.into(), kind: libc::S_IFCHR, major, minor, mode: 0o666, uid: 0, gid: 0 }
}

/// The default devices plus `linux.devices` (a config entry for the same
/// path replaces the default).
pub fn plan(linux: &Linux) -> Result<Vec<Device>> {
    let mut out = vec![chr("/dev/null", 1, 3), chr("/dev/zero", 1, 5), chr("/dev/full", 1, 7), chr("/dev/random", 1, 8), chr("/dev/urandom", 1, 9), chr("/dev/tty", 5, 0)];
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        let field = format!("linux.devices[{i}]");
        if !d.path().is_absolute() {
            return Err(Error::config(format!("{field}.path"), "must be absolute"));
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => return Err(Error::config(format!("{field}.type"), "type \"a\" is only valid in cgroup rules")),
        };
        let dev = Device {
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        };
        out.retain(|o| o.path != dev.path);
        out.push(dev);
    }
    Ok(out)
}

pub fn create_all(root: &Root, devices: &[Device], in_userns: bool) -> Result<()> {
    if in_userns {
        for d in devices {
            bind_host_node(root, d).ctx(|| format!("create device {}", d.path.display()))?;
        }
        return Ok(());
    }
    // One umask of 0 around all the nodes, so that mknod gives each its
    // exact mode (not a chmod per node).
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let r = make_nodes(root, devices);
    nix::sys::stat::umask(old);
    r
}

/// The directory a run of devices shares (opened once for all of them) and
/// the owner a node made in it gets without a chown.
struct Parent {
    path: PathBuf,
    fd: std::os::fd::OwnedFd,
    owner: (u32, u32),
}

fn make_nodes(root: &Root, devices: &[Device]) -> Result<()> {
    let (euid, egid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    let mut parent: Option<Parent> = None;
    for d in devices {
        let dir = d.path.parent().unwrap_or(Path::new("/"));
        if parent.as_ref().is_none_or(|p| p.path != dir) {
            let fd = root.mkdir_all(dir, false, 0o755).ctx(|| format!("create device {}", d.path.display()))?;
            // A set-group-ID directory gives its group to what is made in it.
            let st = nix::sys::stat::fstat(fd.as_raw_fd()).ctx(|| format!("create device {}", d.path.display()))?;
            let gid = if st.st_mode & libc::S_ISGID != 0 { st.st_gid } else { egid };
            parent = Some(Parent { path: dir.to_path_buf(), fd, owner: (euid, gid) });
        }
        let p = parent.as_ref().expect("set above");
        make_node(p, d).ctx(|| format!("create device {}", d.path.display()))?;
    }
    Ok(())
}

fn make_node(parent: &Parent, d: &Device) -> std::io::Result<()> {
    let dir = parent.fd.as_raw_fd();
    let name = CString::new(d.path.file_name().unwrap_or_default().as_bytes()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let dev = libc::makedev(d.major as u32, d.minor as u32);
    // SAFETY: valid dirfd and C string; mknodat never follows a symlink.
    let mknod = || unsafe { libc::mknodat(dir, name.as_ptr(), d.kind | d.mode, dev) };
    if mknod() < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
        // A node (or file, or symlink) the image already has is replaced.
        // SAFETY: valid dirfd and C string.
        unsafe { libc::unlinkat(dir, name.as_ptr(), 0) };
        if mknod() < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    if (d.uid, d.gid) != parent.owner {
        // SAFETY: valid dirfd and C string; AT_SYMLINK_NOFOLLOW.
        if unsafe { libc::fchownat(dir, name.as_ptr(), d.uid, d.gid, libc::AT_SYMLINK_NOFOLLOW) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// In a user namespace mknod is not permitted: the host's node is bound
/// over an empty file.
fn bind_host_node(root: &Root, d: &Device) -> std::io::Result<()> {
    let t = root.mkdir_all(&d.path, true, 0o644)?;
    let p = fd_path(t.as_raw_fd());
    mount(Some(&d.path), p.as_c_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(|e| std::io::Error::from_raw_os_error(e as i32))
}

/// /dev/fd, /dev/std{in,out,err}, /dev/core and, with a devpts mount,
/// /dev/ptmx -> pts/ptmx.
pub fn symlinks(root: &Root, has_devpts: bool) -> Result<()> {
    let dev = root.mkdir_all(Path::new("/dev"), false, 0o755).ctx(|| "create /dev".into())?;
    let mut links = vec![("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr")];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    if has_devpts {
        // SAFETY: valid dirfd and C string.
        unsafe { libc::unlinkat(dev.as_raw_fd(), c"ptmx".as_ptr(), 0) };
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        match nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Error::errno(format!("create /dev/{name}"), e)),
        }
    }
    Ok(())
}

/// The devices cgroup v1 rules, as runc's emulator computes them: the rules
/// are folded, in order, into a default (allow or deny all) plus a set of
/// exceptions, and only that final state is written. A rule that agrees
/// with the default removes a matching exception instead of being written:
/// after a deny-all, a deny rule (`c 1:11 rwm` in `devices.deny`) is
/// already covered and never reaches the kernel.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CgroupV1Rules {
    pub default_allow: bool,
    /// (type, major, minor) -> access bits (r=1, w=2, m=4); -1 is a wildcard.
    pub exceptions: std::collections::BTreeMap<(i64, i64, char), u8>,
}

fn access_bits(s: &str) -> u8 {
    s.chars().fold(0, |b, c| match c {
        'r' => b | 1,
        'w' => b | 2,
        'm' => b | 4,
        _ => b,
    })
}

fn access_str(b: u8) -> String {
    [(1, 'r'), (2, 'w'), (4, 'm')].iter().filter(|(bit, _)| b & bit != 0).map(|(_, c)| *c).collect()
}

impl CgroupV1Rules {
    /// Folds `rules` (the config's, then the defaults) into the final state.
    /// Starts from allow-all, as a new cgroup does.
    pub fn from_rules(rules: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<Self> {
        let mut e = CgroupV1Rules { default_allow: true, exceptions: Default::default() };
        for (i, r) in rules.iter().enumerate() {
            let typ = match r.typ().unwrap_or_default() {
                LinuxDeviceType::A => 'a',
                LinuxDeviceType::B => 'b',
                LinuxDeviceType::C => 'c',
                t => return Err(Error::config(format!("linux.resources.devices[{i}].type"), format!("type {:?} cannot be used in a cgroup rule", t.as_str()))),
            };
            let bits = access_bits(r.access().as_deref().unwrap_or(""));
            if typ == 'a' {
                // A rule for every device resets the state.
                e = CgroupV1Rules { default_allow: r.allow(), exceptions: Default::default() };
                continue;
            }
            let key = (r.major().unwrap_or(-1), r.minor().unwrap_or(-1), typ);
            if r.allow() == e.default_allow {
                e.remove(key, bits, i)?;
            } else {
                *e.exceptions.entry(key).or_insert(0) |= bits;
            }
        }
        e.exceptions.retain(|_, b| *b != 0);
        Ok(e)
    }

    fn remove(&mut self, key: (i64, i64, char), bits: u8, i: usize) -> Result<()> {
        // cgroup v1 silently ignores a hole punched in a wildcard exception;
        // refuse it rather than give a false sense of security (as runc).
        let (ma, mi, t) = key;
        for partial in [(-1, mi, t), (ma, -1, t), (-1, -1, t)] {
            if partial != key && self.exceptions.get(&partial).is_some_and(|b| b & bits != 0) {
                return Err(Error::config(format!("linux.resources.devices[{i}]"), "cannot remove access from part of a wildcard rule (not supported by the devices cgroup v1)"));
            }
        }
        if let Some(b) = self.exceptions.get_mut(&key) {
            *b &= !bits;
        }
        Ok(())
    }

    /// The writes that set a devices cgroup to this state: (file, line),
    /// the reset to the default first.
    pub fn writes(&self) -> Vec<(&'static str, String)> {
        let (reset, exc) = if self.default_allow { ("devices.allow", "devices.deny") } else { ("devices.deny", "devices.allow") };
        let mut out = vec![(reset, "a *:* rwm".to_string())];
        let num = |n: i64| if n < 0 { "*".to_string() } else { n.to_string() };
        for (&(ma, mi, t), &b) in &self.exceptions {
            out.push((exc, format!("{t} {}:{} {}", num(ma), num(mi), access_str(b))));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(allow: bool, t: &str, major: Option<i64>, minor: Option<i64>, access: &str) -> oci_spec::runtime::LinuxDeviceCgroup {
        let mut v = serde_json::json!({"allow": allow, "type": t, "access": access});
        if let Some(m) = major {
            v["major"] = m.into();
        }
        if let Some(m) = minor {
            v["minor"] = m.into();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn deny_after_deny_all_is_not_written() {
        let rules = [rule(false, "a", None, None, "rwm"), rule(false, "c", Some(1), Some(11), "rwa"), rule(true, "c", Some(1), Some(3), "rwm")];
        let e = CgroupV1Rules::from_rules(&rules).unwrap();
        assert_eq!(e.writes(), vec![("devices.deny", "a *:* rwm".to_string()), ("devices.allow", "c 1:3 rwm".to_string())]);
    }

    #[test]
    fn deny_removes_an_earlier_allow() {
        let rules = [rule(false, "a", None, None, "rwm"), rule(true, "c", Some(1), Some(3), "rwm"), rule(false, "c", Some(1), Some(3), "w")];
        let e = CgroupV1Rules::from_rules(&rules).unwrap();
        assert_eq!(e.writes()[1], ("devices.allow", "c 1:3 rm".to_string()));
        let hole = [rule(false, "a", None, None, "rwm"), rule(true, "c", None, None, "m"), rule(false, "c", Some(1), Some(3), "m")];
        assert!(CgroupV1Rules::from_rules(&hole).is_err());
    }

    #[test]
    fn allow_all_keeps_deny_exceptions() {
        let rules = [rule(true, "a", None, None, "rwm"), rule(false, "b", Some(8), None, "w")];
        let e = CgroupV1Rules::from_rules(&rules).unwrap();
        assert_eq!(e.writes(), vec![("devices.allow", "a *:* rwm".to_string()), ("devices.deny", "b 8:* w".to_string())]);
    }
}
