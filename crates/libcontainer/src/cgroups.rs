//! The container's cgroup, through `libcgroups` (v1, v2 and systemd).
//!
//! The runtime creates the cgroup and puts the init in it before the init
//! runs any code of the container; `delete` removes it. Paths follow runc:
//! `linux.cgroupsPath` is cleaned lexically (it can never leave the
//! hierarchy), a relative path (and the default, the container id) is taken
//! below the runtime's own cgroup, and the hierarchy root itself is refused.
//! Only directories the runtime created are ever removed, and only the
//! processes of a cgroup it created are ever signalled wholesale.

use std::path::{Component, Path, PathBuf};

use libcgroups::common::{self, AnyCgroupManager, CgroupConfig, CgroupManager, ControllerOpt};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};

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

fn rel(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// `linux.resources.unified` needs cgroup v2 (runc refuses it on v1 too).
pub fn check_unified(res: Option<&LinuxResources>) -> Result<()> {
    if res.and_then(|r| r.unified().as_ref()).is_some_and(|u| !u.is_empty()) && !is_v2() {
        return Err(Error::config("linux.resources.unified", "cannot be used on a cgroup v1 host"));
    }
    Ok(())
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

/// Before anything is created (as runc): a frozen existing cgroup is
/// refused — the init would freeze in it and `create` never return — and a
/// non-empty one gets runc's warning. Returns the processes already in it
/// (pid, start time): they are not the container's, and are never killed.
pub fn precheck(dirs: &[PathBuf]) -> Result<Vec<(i32, u64)>> {
    for d in dirs {
        let frozen = std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED")
            || std::fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
        if frozen {
            return Err(Error::CgroupFrozen(d.clone()));
        }
    }
    // As runc, the devices hierarchy (or the only one) stands for all.
    if let Some(d) = dirs.iter().find(|d| is_devices(d)).or(dirs.first()) {
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

/// Creates the container's directory in every hierarchy; records in
/// `created` the directories it made (ancestors included), top-down, for
/// `delete` to remove — and nothing else. The cpuset hierarchy needs cpus and mems
/// before a task can join: they are copied from the parent, as the
/// kernel's clone_children would.
pub fn create_dirs(dirs: &[PathBuf], created: &mut Vec<PathBuf>) -> Result<()> {
    let v2 = is_v2();
    for d in dirs {
        let mut missing: Vec<&Path> = d.ancestors().take_while(|a| !a.exists()).collect();
        missing.reverse();
        for m in missing {
            match std::fs::create_dir(m) {
                Ok(()) => created.push(m.to_path_buf()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(cg_err("create", m, &e)),
            }
        }
        // (On cgroup v2 an empty cpuset is inherited: nothing to copy.)
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if !v2 && std::fs::read_to_string(d.join(f)).is_ok_and(|v| v.trim().is_empty()) {
                ensure_cpuset(d, f).map_err(|e| cg_err("create", d, &e))?;
            }
        }
    }
    Ok(())
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
    for d in dirs.iter().filter(|d| !is_devices(d)) {
        std::fs::write(d.join("cgroup.procs"), pid.as_raw().to_string()).map_err(|e| cg_err("join", d, &e))?;
    }
    Ok(())
}

fn is_devices(d: &Path) -> bool {
    d.strip_prefix(ROOT).ok().and_then(|r| r.components().next()).is_some_and(|c| c.as_os_str() == "devices")
}

/// Second half of [`join_v1_dirs`]: moves `pid` into the devices cgroup.
pub fn join_v1_devices(dirs: &[PathBuf], pid: Pid) -> Result<()> {
    for d in dirs.iter().filter(|d| is_devices(d)) {
        std::fs::write(d.join("cgroup.procs"), pid.as_raw().to_string()).map_err(|e| cg_err("join", d, &e))?;
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

/// Applies `linux.resources`. On cgroup v1 the device rules and the
/// per-device block I/O weights are written here (libcgroups writes every
/// rule as given, and no weight_device at all); the rest through libcgroups.
pub fn apply(mgr: &AnyCgroupManager, resources: Option<&LinuxResources>, path: &Path, dirs: &[PathBuf]) -> Result<()> {
    let Some(resources) = resources else { return Ok(()) };
    let v1 = !dirs.is_empty() && !is_v2();
    let mut res = resources.clone();
    let rules = if v1 { Some(crate::devices::CgroupV1Rules::from_rules(res.devices().as_deref().unwrap_or(&[]))?) } else { None };
    if v1 {
        res.set_devices(None);
        apply_off_path(&mut res, path, dirs)?;
    }
    let opt = ControllerOpt { resources: &res, disable_oom_killer: res.memory().as_ref().and_then(|m| m.disable_oom_killer()).unwrap_or(false), oom_score_adj: None, freezer_state: None };
    mgr.apply(&opt).map_err(|e| Error::Cgroup(format!("apply linux.resources to {}: {e}", path.display())))?;
    if !v1 {
        v2_no_swap(&res, dirs)?;
    }
    if let Some(rules) = rules {
        for d in dirs.iter().filter(|d| is_devices(d)) {
            for (file, line) in rules.writes() {
                std::fs::write(d.join(file), &line).map_err(|e| Error::Cgroup(format!("linux.resources.devices: write {line:?} to {}: {}", d.join(file).display(), crate::error::strerror(&e))))?;
            }
        }
        if let Some(d) = dirs.iter().find(|d| d.join("blkio.throttle.read_bps_device").exists()) {
            write_blkio_weights(d, &res)?;
        }
    }
    Ok(())
}

/// On cgroup v2 `memory.swap` equal to `memory.limit` means no swap at all
/// (`memory.swap.max` 0, as runc writes it); libcgroups takes the 0 it
/// computes for "leave unchanged" and writes nothing.
fn v2_no_swap(res: &LinuxResources, dirs: &[PathBuf]) -> Result<()> {
    let Some(m) = res.memory() else { return Ok(()) };
    match (m.limit(), m.swap()) {
        (Some(l), Some(s)) if l > 0 && s == l => {}
        _ => return Ok(()),
    }
    for d in dirs.iter().filter(|d| d.join("memory.swap.max").exists()) {
        std::fs::write(d.join("memory.swap.max"), "0").map_err(|e| Error::Cgroup(format!("linux.resources.memory.swap: write \"0\" to {}: {}", d.join("memory.swap.max").display(), crate::error::strerror(&e))))?;
    }
    Ok(())
}

/// `blockIO.weightDevice` (and leaf weights) on cgroup v1, as runc writes
/// them: to `blkio.weight_device` where the (CFQ) `blkio.weight` exists,
/// else to BFQ's `blkio.bfq.weight_device`.
fn write_blkio_weights(d: &Path, res: &LinuxResources) -> Result<()> {
    let Some(io) = res.block_io() else { return Ok(()) };
    let file = if d.join("blkio.weight").exists() { "blkio.weight_device" } else { "blkio.bfq.weight_device" };
    let write = |f: &str, v: String, field: &str| std::fs::write(d.join(f), &v).map_err(|e| Error::Cgroup(format!("{field}: write {v:?} to {}: {}", d.join(f).display(), crate::error::strerror(&e))));
    if let Some(w) = io.leaf_weight().filter(|w| *w != 0) {
        write("blkio.leaf_weight", w.to_string(), "linux.resources.blockIO.leafWeight")?;
    }
    for (i, wd) in io.weight_device().iter().flatten().enumerate() {
        if let Some(w) = wd.weight().filter(|w| *w != 0) {
            write(file, format!("{}:{} {w}", wd.major(), wd.minor()), &format!("linux.resources.blockIO.weightDevice[{i}].weight"))?;
        }
        if let Some(w) = wd.leaf_weight().filter(|w| *w != 0) {
            write("blkio.leaf_weight_device", format!("{}:{} {w}", wd.major(), wd.minor()), &format!("linux.resources.blockIO.weightDevice[{i}].leafWeight"))?;
        }
    }
    Ok(())
}

/// The v1 hierarchies (controller name, directory) whose directory is not
/// at the manager's path: with a relative cgroupsPath, where the runtime's
/// own cgroups differ between hierarchies (runc places the container below
/// each of them).
fn off_path(path: &Path, dirs: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for d in dirs {
        let Ok(r) = d.strip_prefix(ROOT) else { continue };
        let mut c = r.components();
        let Some(h) = c.next().and_then(|h| h.as_os_str().to_str()) else { continue };
        if Path::new("/").join(c.as_path()) != path {
            out.extend(h.split(',').map(|n| (n.to_string(), d.clone())));
        }
    }
    out
}

/// libcgroups' v1 manager puts the container at one path in every
/// hierarchy. The limits of a hierarchy at another path ([`off_path`]) are
/// taken out of what it applies and written here: memory, pids, cpu and
/// cpuset; any other is refused rather than misplaced.
fn apply_off_path(res: &mut LinuxResources, path: &Path, dirs: &[PathBuf]) -> Result<()> {
    for (name, d) in off_path(path, dirs) {
        let w = |f: &str, v: String| std::fs::write(d.join(f), &v).map_err(|e| Error::Cgroup(format!("linux.resources: write {v:?} to {}: {}", d.join(f).display(), crate::error::strerror(&e))));
        match name.as_str() {
            "memory" => {
                let Some(m) = *res.memory() else { continue };
                let files = [
                    ("memory.limit_in_bytes", m.limit()),
                    ("memory.memsw.limit_in_bytes", m.swap()),
                    ("memory.soft_limit_in_bytes", m.reservation()),
                    ("memory.kmem.limit_in_bytes", m.kernel()),
                    ("memory.kmem.tcp.limit_in_bytes", m.kernel_tcp()),
                ];
                for (f, v) in files {
                    if let Some(v) = v.filter(|v| *v != 0) {
                        w(f, v.to_string())?;
                    }
                }
                if let Some(v) = m.swappiness() {
                    w("memory.swappiness", v.to_string())?;
                }
                if m.disable_oom_killer() == Some(true) {
                    w("memory.oom_control", "1".into())?;
                }
                res.set_memory(None);
            }
            "pids" => {
                if let Some(p) = *res.pids() {
                    w("pids.max", if p.limit() > 0 { p.limit().to_string() } else { "max".into() })?;
                    res.set_pids(None);
                }
            }
            "cpu" | "cpuset" => {
                let Some(mut c) = res.cpu().clone() else { continue };
                if name == "cpu" {
                    let shares = c.shares().map(|v| ("cpu.shares", v.to_string()));
                    let rest = [("cpu.cfs_period_us", c.period().map(|v| v.to_string())), ("cpu.cfs_quota_us", c.quota().map(|v| v.to_string())), ("cpu.rt_period_us", c.realtime_period().map(|v| v.to_string())), ("cpu.rt_runtime_us", c.realtime_runtime().map(|v| v.to_string()))];
                    for (f, v) in shares.into_iter().chain(rest.into_iter().filter_map(|(f, v)| v.map(|v| (f, v)))) {
                        w(f, v)?;
                    }
                    c.set_shares(None).set_period(None).set_quota(None).set_realtime_period(None).set_realtime_runtime(None);
                } else {
                    for (f, v) in [("cpuset.cpus", c.cpus().clone()), ("cpuset.mems", c.mems().clone())] {
                        if let Some(v) = v.filter(|v| !v.is_empty()) {
                            w(f, v)?;
                        }
                    }
                    c.set_cpus(None).set_mems(None);
                }
                res.set_cpu(Some(c));
            }
            n => {
                let set = match n {
                    "blkio" => res.block_io().is_some(),
                    "hugetlb" => res.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
                    "net_cls" | "net_prio" => res.network().is_some(),
                    _ => false,
                };
                if set {
                    return Err(Error::Cgroup(format!("linux.resources: cannot apply the {n} limits: the runtime's own {n} cgroup is not at the same path as its devices cgroup; give linux.cgroupsPath as an absolute path")));
                }
            }
        }
    }
    Ok(())
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
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return out };
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
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

/// A directory strictly below a hierarchy's root: the only kind this
/// module ever signals or removes (a guard for states written before paths
/// were cleaned).
fn below_root(d: &Path) -> bool {
    let min = if is_v2() { 1 } else { 2 };
    d.strip_prefix(ROOT).is_ok_and(|r| r.components().all(|c| matches!(c, Component::Normal(_))) && r.components().count() >= min)
}

/// The container's cgroup as recorded in its state, and what of it the
/// runtime created.
pub struct Owned<'a> {
    pub path: &'a Path,
    pub systemd: bool,
    pub id: &'a str,
    pub dirs: &'a [PathBuf],
    /// The directories the runtime created; None for a state written before
    /// this was recorded (then the leaves count as created).
    pub created: Option<&'a [PathBuf]>,
    /// The processes that were in a pre-existing cgroup before the
    /// container (pid, start time).
    pub foreign: &'a [(i32, u64)],
}

/// Who, besides a created cgroup's members, may be signalled: the init
/// and, with a pid namespace of its own, the processes in it.
#[derive(Clone, Copy)]
pub struct Scope {
    pub init: Option<Pid>,
    pub own_pid_ns: bool,
}

impl Owned<'_> {
    fn created_leaf(&self, d: &Path) -> bool {
        below_root(d) && self.created.is_none_or(|c| c.iter().any(|x| x == d))
    }

    /// Pids in the container's cgroup (and its sub-cgroups).
    pub fn pids(&self) -> Result<Vec<Pid>> {
        if let Some(d) = self.dirs.iter().find(|d| below_root(d) && d.exists()) {
            let mut out = Vec::new();
            read_pids(d, &mut out);
            return Ok(out);
        }
        if !self.dirs.is_empty() {
            return Ok(Vec::new());
        }
        let mgr = manager(self.path, self.systemd, self.id)?;
        mgr.get_all_pids().map_err(|e| Error::Cgroup(format!("list pids of {}: {e}", self.path.display())))
    }

    /// Sends `sig` to the container's processes; returns the pids signalled
    /// (empty when `cgroup.kill` did the work). A cgroup the runtime created
    /// is the container's alone: everything in it is signalled — SIGKILL
    /// through `cgroup.kill` where the kernel has it, otherwise with the
    /// freezer holding the cgroup still so that no fork escapes. A
    /// pre-existing cgroup may hold processes that are not the container's:
    /// those found there at create are spared — with a pid namespace of its
    /// own, only the init and the members of that namespace are signalled.
    pub fn signal_all(&self, sig: i32, scope: Scope) -> Result<Vec<Pid>> {
        if self.dirs.is_empty() {
            let pids = self.pids()?;
            signal(&pids, sig);
            return Ok(pids);
        }
        let own: Vec<&PathBuf> = self.dirs.iter().filter(|d| self.created_leaf(d) && d.exists()).collect();
        if own.is_empty() {
            return Ok(self.signal_foreign(sig, scope));
        }
        if sig == libc::SIGKILL {
            if let Some(d) = own.iter().find(|d| d.join("cgroup.kill").exists()) {
                let mut pids = Vec::new();
                read_pids(d, &mut pids);
                std::fs::write(d.join("cgroup.kill"), "1").map_err(|e| cg_err("kill", d, &e))?;
                return Ok(pids);
            }
        }
        let freezer = own.iter().find(|d| d.join("freezer.state").exists());
        if let Some(f) = freezer {
            freeze_v1(f, true);
        }
        let mut pids = Vec::new();
        read_pids(own[0], &mut pids);
        signal(&pids, sig);
        if let Some(f) = freezer {
            freeze_v1(f, false);
        }
        Ok(pids)
    }

    fn signal_foreign(&self, sig: i32, scope: Scope) -> Vec<Pid> {
        let mut all = Vec::new();
        if let Some(d) = self.dirs.iter().find(|d| below_root(d)) {
            read_pids(d, &mut all);
        }
        let ns = |p: Pid| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
        let init_ns = scope.init.and_then(ns);
        let was_there = |p: Pid| crate::sys::proc_start_time(p.as_raw()).is_some_and(|(t, _)| self.foreign.contains(&(p.as_raw(), t)));
        let mut pids: Vec<Pid> = all
            .into_iter()
            .filter(|p| Some(*p) != scope.init && !was_there(*p))
            .filter(|p| !scope.own_pid_ns || (init_ns.is_some() && ns(*p) == init_ns))
            .collect();
        pids.extend(scope.init);
        signal(&pids, sig);
        pids
    }

    /// Kills whatever of the container is left, waits for it on pidfds, and
    /// removes the directories the runtime created (sub-cgroups of a created
    /// leaf first; created ancestors only if empty). Pre-existing
    /// directories are left as they were found.
    pub fn remove(&self, scope: Scope) -> Result<()> {
        if self.dirs.is_empty() {
            let mgr = manager(self.path, self.systemd, self.id)?;
            return mgr.remove().map_err(|e| Error::Cgroup(format!("remove {}: {e}", self.path.display())));
        }
        let mut before = Vec::new();
        if let Some(d) = self.dirs.iter().find(|d| self.created_leaf(d)) {
            read_pids(d, &mut before);
        }
        let fds: Vec<_> = before.iter().filter_map(|p| crate::sys::pidfd_open(*p).ok()).collect();
        self.signal_all(libc::SIGKILL, scope)?;
        for fd in &fds {
            let _ = crate::sys::pidfd_wait_exit(std::os::fd::AsFd::as_fd(fd), 10_000);
        }
        for d in self.dirs.iter().filter(|d| self.created_leaf(d)) {
            rmdir_tree(d).map_err(|e| cg_err("remove", d, &e))?;
        }
        let mut ancestors: Vec<&PathBuf> = self.created.unwrap_or(&[]).iter().filter(|c| !self.dirs.contains(c) && below_root(c)).collect();
        ancestors.sort_by_key(|a| std::cmp::Reverse(a.components().count()));
        for a in ancestors {
            let _ = std::fs::remove_dir(a);
        }
        Ok(())
    }
}

fn signal(pids: &[Pid], sig: i32) {
    for p in pids {
        // SAFETY: plain integer arguments (any signal number, real-time ones included).
        unsafe { libc::kill(p.as_raw(), sig) };
    }
}

/// Freezes (or thaws) a v1 freezer cgroup; a freeze waits up to a second
/// for the kernel to report FROZEN.
fn freeze_v1(d: &Path, frozen: bool) {
    let state = d.join("freezer.state");
    let _ = std::fs::write(&state, if frozen { "FROZEN" } else { "THAWED" });
    for _ in 0..if frozen { 500 } else { 0 } {
        if std::fs::read_to_string(&state).is_ok_and(|s| s.trim() == "FROZEN") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Freezes (`pause`) or thaws (`resume`) the container's cgroup and waits
/// until the kernel reports it: the v1 freezer, v2's `cgroup.freeze` (with
/// `cgroup.events`), or the systemd driver's manager.
pub fn set_frozen(c: &Owned, frozen: bool) -> Result<()> {
    let dirs: Vec<&PathBuf> = c.dirs.iter().filter(|d| below_root(d) && (d.join("freezer.state").exists() || d.join("cgroup.freeze").exists())).collect();
    if dirs.is_empty() {
        let mgr = manager(c.path, c.systemd, c.id)?;
        use libcgroups::common::CgroupManager;
        let state = if frozen { libcgroups::common::FreezerState::Frozen } else { libcgroups::common::FreezerState::Thawed };
        return mgr.freeze(state).map_err(|e| Error::Cgroup(format!("freeze {}: {e}", c.path.display())));
    }
    for d in dirs {
        if d.join("freezer.state").exists() {
            freeze_v1(d, frozen);
            continue;
        }
        std::fs::write(d.join("cgroup.freeze"), if frozen { "1" } else { "0" }).map_err(|e| Error::Cgroup(format!("write {}: {}", d.join("cgroup.freeze").display(), crate::error::strerror(&e))))?;
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        for _ in 0..500 {
            if std::fs::read_to_string(d.join("cgroup.events")).is_ok_and(|e| e.lines().any(|l| l == want)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    Ok(())
}

/// Thaws the container's cgroup (before `delete --force` of a paused one).
pub fn thaw(dirs: &[PathBuf]) {
    for d in dirs.iter().filter(|d| below_root(d)) {
        if d.join("freezer.state").exists() {
            freeze_v1(d, false);
        } else if d.join("cgroup.freeze").exists() {
            let _ = std::fs::write(d.join("cgroup.freeze"), "0");
        }
    }
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

/// Whether the cgroup is frozen (`skiff pause`). Cheap: one file read, in
/// the freezer hierarchy (v1) or the container's directory (v2).
pub fn is_frozen(dirs: &[PathBuf], systemd: bool) -> bool {
    if systemd {
        return false;
    }
    if is_v2() {
        return dirs.iter().any(|d| std::fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1"));
    }
    dirs.iter().filter(|d| hierarchy_has(d, "freezer")).any(|d| std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN"))
}

/// Whether `dir` is in a v1 hierarchy (its directory under /sys/fs/cgroup,
/// e.g. `cpu,cpuacct`) that has controller `ctrl` (or is named `ctrl`).
pub fn hierarchy_has(dir: &Path, ctrl: &str) -> bool {
    dir.strip_prefix(ROOT).ok().and_then(|r| r.components().next()).is_some_and(|c| c.as_os_str().to_string_lossy().split(',').any(|n| n == ctrl || n.strip_prefix("name=") == Some(ctrl)))
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

#[cfg(test)]
mod tests {
    use super::*;

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
