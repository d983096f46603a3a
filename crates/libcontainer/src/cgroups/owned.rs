//! The cgroup a container owns, as recorded in its state: its processes,
//! signalling them all (never a process that was there before the
//! container), and removing the directories skiff created.

use super::*;

pub(super) fn read_pids(dir: &Path, out: &mut Vec<Pid>) {
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

    /// A rootless container whose cgroup was not delegated has none.
    fn none(&self) -> bool {
        self.dirs.is_empty() && !self.systemd
    }

    /// Pids in the container's cgroup (and its sub-cgroups).
    pub fn pids(&self) -> Result<Vec<Pid>> {
        if self.none() {
            return Ok(Vec::new());
        }
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
        if self.none() {
            // Without a cgroup, the init is all skiff knows of.
            let pids: Vec<Pid> = scope.init.into_iter().collect();
            signal(&pids, sig);
            return Ok(pids);
        }
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
        if self.none() {
            self.signal_all(libc::SIGKILL, scope)?;
            return Ok(());
        }
        if self.dirs.is_empty() {
            let mgr = manager(self.path, self.systemd, self.id)?;
            return mgr.remove().map_err(|e| Error::Cgroup(format!("remove {}: {e}", self.path.display())));
        }
        // SAFETY: signal 0 only checks that the process exists.
        let init_alive = scope.init.is_some_and(|p| unsafe { libc::kill(p.as_raw(), 0) } == 0);
        let any_created = self.dirs.iter().any(|d| self.created_leaf(d));
        // A container that exited (the common case) leaves its cgroups
        // empty: one rmdir each, nothing read first. Only a busy one (a
        // process left, a sub-cgroup) is looked into, below.
        if !init_alive && any_created && self.rmdir_empty_leaves()? {
            self.remove_created_ancestors();
            return Ok(());
        }
        let mut before = Vec::new();
        if let Some(d) = self.dirs.iter().find(|d| self.created_leaf(d) && d.exists()) {
            read_pids(d, &mut before);
        }
        let fds: Vec<_> = before.iter().filter_map(|p| crate::sys::pidfd_open(*p).ok()).collect();
        if !before.is_empty() || init_alive || !any_created {
            self.signal_all(libc::SIGKILL, scope)?;
        }
        for fd in &fds {
            let _ = crate::sys::pidfd_wait_exit(std::os::fd::AsFd::as_fd(fd), 10_000);
        }
        for d in self.dirs.iter().filter(|d| self.created_leaf(d)) {
            rmdir_tree(d).map_err(|e| cg_err("remove", d, &e))?;
        }
        self.remove_created_ancestors();
        Ok(())
    }

    /// Removes every created leaf, as long as each is empty: false at the
    /// first busy one (the rest are left for the slow path).
    fn rmdir_empty_leaves(&self) -> Result<bool> {
        for d in self.dirs.iter().filter(|d| self.created_leaf(d)) {
            match std::fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Ok(false),
                Err(e) => return Err(cg_err("remove", d, &e)),
            }
        }
        Ok(true)
    }

    /// The ancestors the runtime created for the container, deepest first,
    /// each only if empty.
    fn remove_created_ancestors(&self) {
        let mut ancestors: Vec<&PathBuf> = self.created.unwrap_or(&[]).iter().filter(|c| !self.dirs.contains(c) && below_root(c)).collect();
        ancestors.sort_by_key(|a| std::cmp::Reverse(a.components().count()));
        for a in ancestors {
            let _ = std::fs::remove_dir(a);
        }
    }
}

pub(super) fn signal(pids: &[Pid], sig: i32) {
    for p in pids {
        // SAFETY: plain integer arguments (any signal number, real-time ones included).
        unsafe { libc::kill(p.as_raw(), sig) };
    }
}

/// Removes `d` and its sub-cgroups. The directory is removed first: a
/// leaf (the usual case) costs one rmdir, and only one that is busy is
/// listed for sub-cgroups.
pub(super) fn rmdir_tree(d: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir(d) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
        Err(e) => return Err(e),
    }
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
