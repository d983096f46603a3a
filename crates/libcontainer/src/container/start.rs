//! `start`: releases a created container's init.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::unistd::Pid;

use super::{init_pidfd, open_fd};
use crate::error::{Context, Error, Result};
use crate::state::{ContainerDir, State, Status, Store};
use crate::sys;

/// `start`: releases a created container's init and runs poststart hooks;
/// with `notify` (the caller's NOTIFY_SOCKET), waits for the container's
/// READY and passes it on.
pub fn start(store: &Store, id: &str, notify: Option<&Path>) -> Result<()> {
    let mut t = crate::trace::Stages::start("start");
    let dir = store.open(id)?;
    let st = dir.load()?;
    t.mark("state load");
    let listener = start_locked(&dir, &st, notify, None, &mut t)?;
    // Unlocked while it waits: the container may be killed meanwhile.
    drop(dir);
    if let Some(l) = listener {
        if let Some(p) = init_pidfd(&st) {
            l.wait(p.as_fd(), st.pid)?;
        }
    }
    Ok(())
}

/// The release itself. Returns the notify listener (bound before the
/// release, so no message is lost) for the caller to wait on. `created`:
/// the init's pidfd when this command has just created the container
/// (`run`, still holding its lock): then it is known to be created, and
/// its status is not read back.
pub(super) fn start_locked(dir: &ContainerDir, st: &State, notify: Option<&Path>, created: Option<&OwnedFd>, t: &mut crate::trace::Stages) -> Result<Option<crate::notify::Listener>> {
    let (checked, writer) = match created {
        Some(_) => (None, None),
        None => status_check(dir, st)?,
    };
    let pidfd = created.or(checked.as_ref());
    let fifo = dir.fifo_path();
    let fd = match writer {
        Some(fd) => fd,
        None => open_writer(&fifo)?,
    };
    let listener = match notify {
        Some(host) => crate::notify::Listener::bind(&dir.path, host)?,
        None => None,
    };
    nix::unistd::write(&fd, b"0").ctx(|| "release the container init".into())?;
    crate::fault::point("start:released");
    // The container is running from here on (runc removes the fifo once
    // its read returns); removed while the init execs rather than after.
    // A message the init leaves is read through our descriptor.
    let _ = std::fs::remove_file(&fifo);
    // The init holds the fifo (close-on-exec) until it execs the container
    // process: when our write end reports POLLERR (no reader left), the
    // process has started — or the init failed, in which case its error is
    // waiting in the fifo. Only then do poststart hooks run.
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: 0, revents: 0 };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, -1) };
        if r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    let left = if queued_bytes(fd.as_fd()) != Some(0) { init_error(fd.as_fd()) } else { None };
    drop(fd);
    if let Some(msg) = left {
        return Err(Error::Init(msg));
    }
    if pidfd.is_some_and(|p| init_died_before_exec(p.as_fd(), st.pid)) {
        return Err(Error::Init("the container init exited before it started the container process".into()));
    }
    t.mark("release, seccomp filter, execve");
    if !st.poststart.is_empty() {
        let json = serde_json::to_vec(&st.to_oci(Status::Running)).expect("json");
        for w in crate::hooks::run_all_warn("poststart", &st.poststart, &json) {
            tracing::warn!("{w}");
        }
        t.mark("poststart hooks");
    }
    t.total();
    Ok(listener)
}

/// Refuses a container that is not `created`. Returns the init's pidfd,
/// opened before the check, which then proves it is the init's (and before
/// the release, so that an init dying right away is seen), and the fifo's
/// write end when the check opened it.
fn status_check(dir: &ContainerDir, st: &State) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    let pidfd = if st.pid > 0 { sys::pidfd_open(Pid::from_raw(st.pid)).ok() } else { None };
    let (status, writer) = st.status_and_fifo(&dir.path);
    match status {
        Status::Created => Ok((pidfd, writer)),
        Status::Stopped => Err(Error::BadState("cannot start a container that has stopped".into())),
        Status::Running => Err(Error::BadState("cannot start an already running container".into())),
        s => Err(Error::BadState(format!("cannot start a container in the {s} state"))),
    }
}

/// The write end of a created container's fifo, when the status check
/// could not keep the one it opened.
fn open_writer(fifo: &Path) -> Result<OwnedFd> {
    crate::state::fifo_writer(fifo).map_err(|e| match e {
        nix::errno::Errno::ENXIO => Error::BadState("cannot start a container that has stopped".into()),
        e => Error::errno(format!("open {}", fifo.display()), e),
    })
}

/// An init killed before execve leaves no message. execve closes the fifo a
/// moment before it renames the process, so a process still named like the
/// init is watched briefly: it either takes its new name or is seen dead.
fn init_died_before_exec(pidfd: std::os::fd::BorrowedFd, pid: i32) -> bool {
    // Checked every 50 µs (an exec renames the process within microseconds
    // of closing the fifo), for 200 ms at most.
    for _ in 0..4000 {
        if sys::proc_comm(pid).as_deref() != Some(crate::init::INIT_NAME) {
            return false;
        }
        if sys::pidfd_wait_exit_us(pidfd, 50).unwrap_or(false) {
            return sys::proc_comm(pid).as_deref() == Some(crate::init::INIT_NAME);
        }
    }
    false
}

/// How many bytes wait in the pipe behind `fd` (either end); None if the
/// kernel would not say. Zero on every good start: no reopen to read.
fn queued_bytes(fd: std::os::fd::BorrowedFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer we pass.
    (unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) } == 0).then_some(n as usize)
}

/// What a failed init left in exec.fifo (we still hold a write end, so the
/// pipe and its contents outlive the init, and its name): a read end opened
/// through our own descriptor.
fn init_error(writer: std::os::fd::BorrowedFd) -> Option<String> {
    let fd = open_fd(Path::new(&format!("/proc/self/fd/{}", writer.as_raw_fd())), OFlag::O_RDONLY | OFlag::O_NONBLOCK).ok()?;
    let mut buf = vec![0u8; 65_536];
    match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
        Ok(n) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).trim().to_string()),
        _ => None,
    }
}
