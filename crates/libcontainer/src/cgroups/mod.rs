//! The container's cgroup, through `libcgroups` (v1, v2 and systemd).
//!
//! The runtime creates the cgroup and puts the init in it before the init
//! runs any code of the container; `delete` removes it. Paths follow runc:
//! `linux.cgroupsPath` is cleaned lexically (it can never leave the
//! hierarchy), a relative path (and the default, the container id) is taken
//! below the runtime's own cgroup, and the hierarchy root itself is refused.
//! Only directories the runtime created are ever removed, and only the
//! processes of a cgroup it created are ever signalled wholesale.
//!
//! This module: paths and directories, creating and joining them; in
//! `resources.rs` the limits, `owned.rs` the processes and removal of a
//! container's cgroup, `freezer.rs` pause and resume; for `events`,
//! `stats.rs` the statistics in runc's shape and `oom.rs` the OOM watch.

use std::path::{Component, Path, PathBuf};

use libcgroups::common::{self, AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};

mod check;
mod freezer;
mod owned;
mod resources;
// `update` and `events`: statistics and OOM notification.
mod oom;
mod stats;

pub use freezer::{is_frozen, set_frozen, thaw};
pub use owned::{Owned, Scope};
pub use check::{check, has_controller};
pub use resources::{apply, check_unified, with_device_rules};
pub use oom::OomWatch;
pub use stats::{dirs_of, read as read_stats, Stats};
use freezer::freeze_v1;
use owned::read_pids;

const ROOT: &str = "/sys/fs/cgroup";

/// The cgroup path used when config.json has none: runc's.
pub fn default_path(id: &str, systemd: bool) -> PathBuf {
    if systemd {
        PathBuf::from(format!("system.slice:runc:{id}"))
    } else {
        PathBuf::from(id)
    }
}

/// runc's `utils.CleanPath`: a lexical clean in which `..` cannot climb
/// above the start; a relative path stays relative.
pub fn clean_path(p: &Path) -> PathBuf {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let rel: PathBuf = parts.iter().collect();
    if p.is_absolute() {
        Path::new("/").join(rel)
    } else {
        rel
    }
}

/// `linux.cgroupsPath`, cleaned; the default when it is absent or empty.
/// A path that cleans to the hierarchy root (or, relative, to the runtime's
/// own cgroup) is refused: the container needs a cgroup of its own.
pub fn resolve_path(configured: Option<&Path>, id: &str, systemd: bool) -> Result<PathBuf> {
    let p = match configured {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => return Ok(default_path(id, systemd)),
    };
    if systemd {
        return Ok(p.to_path_buf());
    }
    let clean = clean_path(p);
    if clean.as_os_str().is_empty() || clean == Path::new("/") {
        return Err(Error::config("linux.cgroupsPath", format!("{:?} resolves to {}: the container needs a cgroup below it", p, if clean.as_os_str().is_empty() { "the runtime's own cgroup" } else { "the root of the cgroup hierarchy" })));
    }
    Ok(clean)
}

pub fn is_v2() -> bool {
    // Asked many times per command; the host's layout does not change meanwhile.
    static V2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V2.get_or_init(|| matches!(nix::sys::statfs::statfs(ROOT), Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC))
}

/// cgroup v1 with the cgroupfs driver: skiff makes the directories and
/// moves processes in by hand (no CLONE_INTO_CGROUP, no systemd unit).
pub fn v1_by_hand(systemd: bool) -> bool {
    !systemd && !is_v2()
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

/// The container's libcgroups manager, built when first needed: on a v1
/// host building it costs ~1.5 ms of /proc/self/mountinfo parsing, and the
/// default container (device rules only, which skiff writes itself) never
/// needs it.
pub struct Lazy<'a> {
    path: &'a Path,
    systemd: bool,
    id: &'a str,
    built: Option<AnyCgroupManager>,
}

impl<'a> Lazy<'a> {
    pub fn new(path: &'a Path, systemd: bool, id: &'a str) -> Lazy<'a> {
        Lazy { path, systemd, id, built: None }
    }

    pub fn get(&mut self) -> Result<&AnyCgroupManager> {
        if self.built.is_none() {
            self.built = Some(manager(self.path, self.systemd, self.id)?);
        }
        Ok(self.built.as_ref().expect("built above"))
    }
}

/// Creates the cgroup and moves `pid` into it.
pub fn join(mgr: &AnyCgroupManager, pid: Pid, path: &Path) -> Result<()> {
    mgr.add_task(pid).map_err(|e| Error::Cgroup(format!("join {}: {e}", path.display())))
}

/// The path handed to libcgroups: the container's directory relative to
/// its hierarchy (v2), or to the devices hierarchy (v1).
pub fn manager_path(path: &Path, systemd: bool, dirs: &[(String, PathBuf)]) -> PathBuf {
    if systemd {
        return path.to_path_buf();
    }
    let key = if is_v2() { "" } else { "devices" };
    dirs.iter()
        .find(|(n, _)| n == key)
        .and_then(|(n, d)| d.strip_prefix(Path::new(ROOT).join(n)).ok())
        .map(|r| Path::new("/").join(r))
        .unwrap_or_else(|| Path::new("/").join(rel(path)))
}

fn cg_err(what: &str, d: &Path, e: &std::io::Error) -> Error {
    Error::Cgroup(format!("{what} {}: {}", d.display(), crate::error::strerror(e)))
}

/// Rootless: whether this user may make the container's cgroup, i.e. has
/// been delegated the subtree it goes in (the nearest existing directory
/// of each path writable, and an existing one's `cgroup.procs`).
pub fn delegated(dirs: &[(String, PathBuf)]) -> bool {
    use nix::unistd::{access, AccessFlags};
    dirs.iter().all(|(_, d)| {
        let Some(base) = d.ancestors().find(|a| a.exists()) else { return false };
        access(base, AccessFlags::W_OK).is_ok() && (base != d.as_path() || access(&d.join("cgroup.procs"), AccessFlags::W_OK).is_ok())
    })
}

/// Whether `linux.resources` asks for any limit (device rules aside, which
/// a rootless container cannot have anyway).
pub fn requests_limits(res: Option<&LinuxResources>) -> bool {
    let Some(r) = res else { return false };
    let mut v = serde_json::to_value(r).unwrap_or_default();
    let Some(o) = v.as_object_mut() else { return false };
    o.remove("devices");
    o.values().any(|x| !(x.is_null() || x.as_object().is_some_and(|m| m.values().all(|y| y.is_null())) || x.as_array().is_some_and(|a| a.is_empty())))
}

/// Before anything is created (as runc): a frozen existing cgroup is
/// refused — the init would freeze in it and `create` never return — and a
/// non-empty one gets runc's warning. Returns the processes already in it
/// (pid, start time): they are not the container's, and are never killed.
pub fn precheck(dirs: &[PathBuf], missing: &[PathBuf]) -> Result<Vec<(i32, u64)>> {
    // A directory about to be made holds nothing and is not frozen.
    let dirs: Vec<&PathBuf> = dirs.iter().filter(|d| !missing.contains(d)).collect();
    for d in &dirs {
        let frozen = std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED")
            || std::fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
        if frozen {
            return Err(Error::CgroupFrozen(d.to_path_buf()));
        }
    }
    // As runc, the devices hierarchy (or the only one) stands for all.
    if let Some(d) = dirs.iter().find(|d| is_devices(d)).or(dirs.first()).copied() {
        let mut n = Vec::new();
        read_pids(d, &mut n);
        if !n.is_empty() {
            tracing::warn!("container's cgroup is not empty: {} process(es) found", n.len());
            tracing::warn!("DEPRECATED: running container in a non-empty cgroup won't be supported in runc 1.2; https://github.com/opencontainers/runc/issues/3132");
        }
        return Ok(n.iter().filter_map(|p| crate::sys::proc_start_time(p.as_raw()).map(|(t, _)| (p.as_raw(), t))).collect());
    }
    Ok(Vec::new())
}

/// The directories [`create_dirs`] will make for `dirs` (missing ancestors
/// included), top-down.
pub fn missing_dirs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    // The hierarchies' mount points exist (they were read from mountinfo):
    // the cgroup root and, on a v1 or hybrid host, each directory in it.
    let root = Path::new(ROOT);
    let v1 = !is_v2();
    let mount_point = |a: &Path| a == root || (v1 && a.parent() == Some(root));
    let mut out = Vec::new();
    for d in dirs {
        let mut missing: Vec<PathBuf> = d.ancestors().take_while(|a| !mount_point(a) && !a.exists()).map(Path::to_path_buf).collect();
        missing.reverse();
        out.extend(missing);
    }
    out
}

/// Creates `planned` ([`missing_dirs`] of the container's directories
/// `dirs`, top-down); records in `created` the directories it made — and
/// nothing else (one that appeared meanwhile is not ours). The cpuset
/// hierarchy needs cpus and mems before a task can join: they are copied
/// from the parent, as the kernel's clone_children would (into a
/// pre-existing directory too).
pub fn create_dirs(dirs: &[PathBuf], planned: &[PathBuf], created: &mut Vec<PathBuf>) -> Result<()> {
    for m in planned {
        match std::fs::create_dir(m) {
            Ok(()) => created.push(m.to_path_buf()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(cg_err("create", m, &e)),
        }
    }
    // (On cgroup v2 an empty cpuset is inherited: nothing to copy.)
    if is_v2() {
        return Ok(());
    }
    for d in dirs.iter().filter(|d| hierarchy_has(d, "cpuset")) {
        for f in ["cpuset.cpus", "cpuset.mems"] {
            ensure_cpuset(d, f).map_err(|e| cg_err("create", d, &e))?;
        }
    }
    Ok(())
}

/// On a cgroup v2 host (cgroupfs driver): turns on every controller the
/// hierarchy has in the `subtree_control` of the root and of each ancestor
/// of `leaf` (as libcgroups does when it makes the path itself; best effort,
/// a limit that needs a missing controller fails when applied), so that the
/// init can be cloned straight into `leaf`. Returns `leaf` opened for
/// CLONE_INTO_CGROUP.
pub fn prepare_v2_leaf(leaf: &Path) -> Option<std::os::fd::OwnedFd> {
    let root = Path::new(ROOT);
    let ctrls = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    let rel = leaf.strip_prefix(root).ok()?;
    let mut dir = root.to_path_buf();
    let mut parts = rel.components().peekable();
    loop {
        for c in ctrls.split_whitespace() {
            if let Err(e) = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}")) {
                tracing::debug!("cannot enable {c} in {}: {e}", dir.display());
            }
        }
        match parts.next() {
            Some(p) if parts.peek().is_some() => dir.push(p),
            _ => break,
        }
    }
    let fd = nix::fcntl::open(leaf, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).ok()?;
    // SAFETY: `open` just returned this descriptor.
    Some(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// On a cgroup v1 host: moves `pid` into the container's directory of every
/// hierarchy (created by [`create_dirs`]) but the devices one, without a
/// manager. Building libcgroups' v1 manager costs ~1.6 ms of /proc parsing;
/// this lets the init go on while the manager is built and the resources
/// applied.
///
/// The init still makes its /dev nodes while the device rules are written
/// (deny-all first, then the allow-list), so it joins the devices cgroup
/// with [`join_v1_devices`] once the rules are complete.
pub fn join_v1_dirs(dirs: &[PathBuf], pid: Pid) -> Result<()> {
    join_dirs(dirs.iter().filter(|d| !is_devices(d)), pid)
}

fn is_devices(d: &Path) -> bool {
    hierarchy_has(d, "devices")
}

/// In the init, in the runtime's user namespace: moves this process into
/// the container's directories (devices last), as `join_v1_dirs` and
/// `join_v1_devices` would move it from outside. A v1 `tasks` file given 0
/// moves the calling thread (the init has one) without the kernel's
/// process-wide lock, whose taking waits for an RCU grace period when no
/// other move came just before: that wait, not the move, is what a join
/// from outside costs. The cgroup2 directory of a hybrid host is joined at
/// the clone when it can be (`born_in`); otherwise through its
/// `cgroup.procs` (it has no `tasks`).
pub fn join_self(dirs: &[PathBuf], born_in: bool) -> Result<()> {
    for d in dirs.iter().filter(|d| !is_devices(d)).chain(dirs.iter().filter(|d| is_devices(d))) {
        let file = if !hierarchy_has(d, "unified") {
            "tasks"
        } else if born_in {
            continue;
        } else {
            "cgroup.procs"
        };
        write_cg(&d.join(file), "0").map_err(|e| cg_err("join", d, &e))?;
    }
    Ok(())
}

/// Second half of [`join_v1_dirs`]: moves `pid` into the devices cgroup.
pub fn join_v1_devices(dirs: &[PathBuf], pid: Pid) -> Result<()> {
    join_dirs(dirs.iter().filter(|d| is_devices(d)), pid)
}

/// Moves `pid` into each of `dirs` (their `cgroup.procs`).
pub fn join_dirs<'a>(dirs: impl IntoIterator<Item = &'a PathBuf>, pid: Pid) -> Result<()> {
    for d in dirs {
        write_cg(&d.join("cgroup.procs"), pid.as_raw().to_string()).map_err(|e| cg_err("join", d, &e))?;
    }
    Ok(())
}

/// Fills an empty cpuset `file` of `dir` from its parent's (filled first,
/// up to the nearest ancestor that has one); returns the value. Each file
/// is read once; one that cannot be read is an error (the init could not
/// join a cpuset without it).
fn ensure_cpuset(dir: &Path, file: &str) -> std::io::Result<String> {
    let path = dir.join(file);
    let v = crate::sys::read_proc(&path)?;
    if !v.trim().is_empty() {
        return Ok(v.trim().to_string());
    }
    let Some(parent) = dir.parent() else { return Ok(String::new()) };
    let pv = ensure_cpuset(parent, file)?;
    write_cg(&path, &pv)?;
    Ok(pv)
}

/// The container's directory in each hierarchy (empty for the systemd
/// driver, whose unit owns them). Recorded in the state at create, so that
/// `kill --all` and `delete` need not build a cgroup manager again (that
/// costs ~2 ms of /proc parsing on a v1 host).
pub fn host_dirs(dirs: &[(String, PathBuf)], systemd: bool) -> Vec<PathBuf> {
    if systemd {
        return Vec::new();
    }
    dirs.iter().map(|(_, d)| d.clone()).collect()
}

/// The runtime's own cgroup in the hierarchy called `name` ("" for the v2
/// one), from /proc/self/cgroup.
fn own_cgroup(table: &str, name: &str) -> PathBuf {
    for l in table.lines() {
        let mut f = l.splitn(3, ':');
        let (_, ctl, p) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or("/"));
        let matches = if name.is_empty() { ctl.is_empty() } else { ctl == name || ctl.strip_prefix("name=") == Some(name) };
        if matches {
            return clean_path(Path::new(p));
        }
    }
    PathBuf::from("/")
}

/// Where systemd puts the unit of a `slice:prefix:name` cgroupsPath:
/// `/system.slice/runc-<id>.scope`; a dashed slice nests
/// (`a-b.slice` is `/a.slice/a-b.slice`), `-.slice` is the root.
fn systemd_unit_path(path: &Path) -> PathBuf {
    let s = path.to_string_lossy();
    let mut parts = s.splitn(3, ':');
    let (slice, prefix, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let slice = if slice.is_empty() { "system.slice" } else { slice };
    let mut out = PathBuf::from("/");
    if slice != "-.slice" {
        let stem = slice.trim_end_matches(".slice");
        let words: Vec<&str> = stem.split('-').collect();
        for i in 1..=words.len() {
            out.push(format!("{}.slice", words[..i].join("-")));
        }
    }
    out.push(if name.ends_with(".slice") { name.to_string() } else { format!("{prefix}-{name}.scope") });
    clean_path(&out)
}

/// Each hierarchy's mount name (`cpu,cpuacct`; `unified` for the v2
/// hierarchy of a hybrid host; "" on a pure v2 host) and the container's
/// directory in it, as runc places it: an absolute path below the
/// hierarchy root; a relative one below the runtime's own cgroup (on pure
/// v2, below its parent, which holds no process); in the hybrid unified
/// hierarchy always below the root.
pub fn container_dirs(path: &Path, systemd: bool) -> Vec<(String, PathBuf)> {
    if systemd {
        return container_dirs(&systemd_unit_path(path), false);
    }
    let mut out = Vec::new();
    let Ok(info) = crate::sys::read_proc("/proc/self/mountinfo") else { return out };
    let own = if path.is_absolute() { String::new() } else { crate::sys::read_proc("/proc/self/cgroup").unwrap_or_default() };
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let fstype = post.split(' ').next().unwrap_or("");
        let mnt = pre.split(' ').nth(4).unwrap_or("");
        let Some(name) = mnt.strip_prefix(ROOT) else { continue };
        let name = name.trim_start_matches('/');
        if name.contains('/') || (name.is_empty() && fstype != "cgroup2") {
            continue;
        }
        let base = match fstype {
            "cgroup" if !path.is_absolute() => Path::new(mnt).join(rel(&own_cgroup(&own, name))),
            "cgroup2" if name.is_empty() && !path.is_absolute() => Path::new(mnt).join(rel(own_cgroup(&own, "").parent().unwrap_or(Path::new("/")))),
            "cgroup" | "cgroup2" => PathBuf::from(mnt),
            _ => continue,
        };
        out.push((name.to_string(), base.join(rel(path))));
    }
    out
}

/// A directory strictly below a hierarchy's root: the only kind this
/// module ever signals or removes (a guard for states written before paths
/// were cleaned).
fn below_root(d: &Path) -> bool {
    let min = if is_v2() { 1 } else { 2 };
    d.strip_prefix(ROOT).is_ok_and(|r| r.components().all(|c| matches!(c, Component::Normal(_))) && r.components().count() >= min)
}

/// The directory of `dirs` in a hybrid host's cgroup2 hierarchy
/// (`/sys/fs/cgroup/unified/...`), if there is one.
pub fn unified_dir(dirs: &[PathBuf]) -> Option<&PathBuf> {
    dirs.iter().find(|d| hierarchy_has(d, "unified"))
}

/// Writes `v` to an existing cgroup file, opened without O_CREAT and
/// O_TRUNC (which `std::fs::write` sets): a truncate on cgroupfs is a
/// setattr under kernfs's lock, done for nothing (~40 such writes a
/// container).
pub(crate) fn write_cg(path: &Path, v: impl AsRef<[u8]>) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new().write(true).open(path)?.write_all(v.as_ref())
}

/// Whether `dir` is in a v1 hierarchy (its directory under /sys/fs/cgroup,
/// e.g. `cpu,cpuacct`) that has controller `ctrl` (or is named `ctrl`).
/// On the bytes of the path, allocating nothing: it is asked for every
/// directory at every step of create (join, limits, mounts), ~40 times a
/// container.
pub fn hierarchy_has(dir: &Path, ctrl: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Some(rest) = dir.as_os_str().as_bytes().strip_prefix(ROOT.as_bytes()) else { return false };
    // `/sys/fs/cgroupfoo` is not under /sys/fs/cgroup.
    if rest.first().is_some_and(|&b| b != b'/') {
        return false;
    }
    let Some(hierarchy) = rest.split(|&b| b == b'/').find(|c| !c.is_empty() && *c != b".") else { return false };
    let ctrl = ctrl.as_bytes();
    hierarchy.split(|&b| b == b',').any(|n| n == ctrl || n.strip_prefix(b"name=") == Some(ctrl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_has_reads_the_hierarchy_directory() {
        for (d, ctrl, want) in [
            ("/sys/fs/cgroup/cpu,cpuacct/a", "cpu", true),
            ("/sys/fs/cgroup/cpu,cpuacct/a", "cpuacct", true),
            ("/sys/fs/cgroup/cpu,cpuacct", "cpuset", false),
            ("/sys/fs/cgroup//./devices/x/y", "devices", true),
            ("/sys/fs/cgroup/systemd/x", "systemd", true),
            ("/sys/fs/cgroup/name=systemd/x", "systemd", true),
            ("/sys/fs/cgroup/unified/x", "unified", true),
            ("/sys/fs/cgroup", "cpu", false),
            ("/sys/fs/cgroupcpu/x", "cpu", false),
            ("/sys/fs/cgroup/x/cpu", "cpu", false),
            ("/other/cpu", "cpu", false),
        ] {
            assert_eq!(hierarchy_has(Path::new(d), ctrl), want, "{d} {ctrl}");
        }
    }

    #[test]
    fn clean_path_cannot_climb() {
        for (p, want) in [("../../../../etc/evil", "etc/evil"), ("/..", "/"), ("/a/../../b", "/b"), ("a/./b//c/..", "a/b"), ("..", ""), ("/x/y", "/x/y")] {
            assert_eq!(clean_path(Path::new(p)), PathBuf::from(want), "{p}");
        }
    }

    #[test]
    fn root_and_own_cgroup_are_refused() {
        for p in ["/", "/..", "/../..", ".", "..", "a/.."] {
            let e = resolve_path(Some(Path::new(p)), "id", false).unwrap_err().to_string();
            assert!(e.contains("linux.cgroupsPath"), "{p}: {e}");
        }
        assert_eq!(resolve_path(None, "id", false).unwrap(), PathBuf::from("id"));
        assert_eq!(resolve_path(Some(Path::new("")), "id", true).unwrap(), PathBuf::from("system.slice:runc:id"));
        assert_eq!(resolve_path(Some(Path::new("/a/../b")), "id", false).unwrap(), PathBuf::from("/b"));
    }

    #[test]
    fn systemd_unit_paths() {
        assert_eq!(systemd_unit_path(Path::new("system.slice:runc:x")), PathBuf::from("/system.slice/runc-x.scope"));
        assert_eq!(systemd_unit_path(Path::new(":docker:x")), PathBuf::from("/system.slice/docker-x.scope"));
        assert_eq!(systemd_unit_path(Path::new("a-b.slice:p:x")), PathBuf::from("/a.slice/a-b.slice/p-x.scope"));
        assert_eq!(systemd_unit_path(Path::new("-.slice:p:k.slice")), PathBuf::from("/k.slice"));
    }

    #[test]
    fn own_cgroup_lookup() {
        let t = "4:memory:/process_api/x\n2:cpu,cpuacct:/a\n1:name=systemd:/s\n0::/u\n";
        assert_eq!(own_cgroup(t, "memory"), PathBuf::from("/process_api/x"));
        assert_eq!(own_cgroup(t, "cpu,cpuacct"), PathBuf::from("/a"));
        assert_eq!(own_cgroup(t, "systemd"), PathBuf::from("/s"));
        assert_eq!(own_cgroup(t, ""), PathBuf::from("/u"));
        assert_eq!(own_cgroup(t, "pids"), PathBuf::from("/"));
    }
}
