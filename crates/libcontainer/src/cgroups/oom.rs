//! Notification of the container's cgroup running out of memory: on v1 an
//! eventfd registered for `memory.oom_control` through
//! `cgroup.event_control` (signalled in the OOM path itself), on v2 an
//! inotify watch on `memory.events`, whose `oom_kill` counter says whether
//! the change was an OOM kill. One descriptor to poll either way.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::*;

enum Kind {
    /// The eventfd's registration lives as long as the eventfd; the
    /// control file is kept open with it.
    V1 { _control: File, dir: PathBuf },
    V2 { events: PathBuf, seen: u64 },
}

pub struct OomWatch {
    fd: OwnedFd,
    kind: Kind,
}

fn last_err(what: &str, p: &Path) -> Error {
    Error::Cgroup(format!("{what} {}: {}", p.display(), crate::error::strerror(&std::io::Error::last_os_error())))
}

/// The `oom_kill` counter of `memory.events` (v2).
fn oom_kills(events: &Path) -> u64 {
    stats::flat_keyed(&stats::read_string(events).unwrap_or_default()).get("oom_kill").copied().unwrap_or(0)
}

impl OomWatch {
    /// A watch on the container's memory cgroup; None without one (no
    /// memory controller).
    pub fn new(dirs: &[PathBuf]) -> Result<Option<OomWatch>> {
        let d = stats::Dirs::new(dirs);
        let Some(dir) = d.get("memory") else { return Ok(None) };
        if is_v2() {
            let events = dir.join("memory.events");
            if !events.exists() {
                return Ok(None);
            }
            return Self::v2(events).map(Some);
        }
        if !dir.join("memory.oom_control").exists() {
            return Ok(None);
        }
        Self::v1(dir).map(Some)
    }

    fn v1(dir: &Path) -> Result<OomWatch> {
        let control_path = dir.join("memory.oom_control");
        let control = File::open(&control_path).map_err(|e| cg_err("open", &control_path, &e))?;
        // SAFETY: eventfd takes two integers and returns a new descriptor or -1.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(last_err("eventfd for", &control_path));
        }
        // SAFETY: eventfd just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let line = format!("{} {}", fd.as_raw_fd(), control.as_raw_fd());
        std::fs::write(dir.join("cgroup.event_control"), &line).map_err(|e| cg_err("register an oom eventfd in", &dir.join("cgroup.event_control"), &e))?;
        Ok(OomWatch { fd, kind: Kind::V1 { _control: control, dir: dir.to_path_buf() } })
    }

    fn v2(events: PathBuf) -> Result<OomWatch> {
        // SAFETY: inotify_init1 takes flags and returns a new descriptor or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if raw < 0 {
            return Err(last_err("inotify for", &events));
        }
        // SAFETY: inotify_init1 just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let c = std::ffi::CString::new(events.as_os_str().as_encoded_bytes()).map_err(|_| Error::Cgroup(format!("{}: nul in path", events.display())))?;
        // SAFETY: a valid inotify descriptor and a nul-terminated path that outlives the call.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) } < 0 {
            return Err(last_err("watch", &events));
        }
        // Counted from now: earlier kills are not reported.
        let seen = oom_kills(&events);
        Ok(OomWatch { fd, kind: Kind::V2 { events, seen } })
    }

    /// The descriptor to poll for input.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// How many OOM events arrived since the last call (0 when woken for
    /// something else); never blocks. On v1 the kernel also signals the
    /// eventfd when the cgroup is removed: that is not counted.
    pub fn take(&mut self) -> u64 {
        let mut buf = [0u8; 4096];
        let mut f = File::from(self.fd.try_clone().expect("dup the oom descriptor"));
        let mut got = 0u64;
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            if n == 8 && matches!(self.kind, Kind::V1 { .. }) {
                got += u64::from_ne_bytes(buf[..8].try_into().expect("8 bytes"));
            }
        }
        match &mut self.kind {
            Kind::V1 { dir, .. } => {
                if dir.join("memory.oom_control").exists() {
                    got
                } else {
                    0
                }
            }
            Kind::V2 { events, seen } => {
                let now = oom_kills(events);
                let new = now.saturating_sub(*seen);
                *seen = now.max(*seen);
                new
            }
        }
    }
}
