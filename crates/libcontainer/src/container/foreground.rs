//! A container process waited for in the foreground (`run`, `exec`): the
//! signals skiff receives are forwarded to it, its terminal is relayed, and
//! its exit becomes skiff's exit code.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

use crate::error::{Context, Error, Result};
use crate::sys;

/// The exit of a foreground process as a shell reports it: its code, or
/// 128 + the signal that killed it.
pub fn exit_code(status: nix::sys::wait::WaitStatus) -> i32 {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, c) => c,
        WaitStatus::Signaled(_, s, _) => 128 + s as i32,
        _ => 1,
    }
}

/// The signals forwarded, blocked from before the process exists (so that
/// none is lost) until the guard is dropped. The process resets its own
/// mask.
pub struct Blocked {
    pub mask: SigSet,
    old: SigSet,
}

impl Blocked {
    pub fn new() -> Result<Blocked> {
        let mut mask = SigSet::all();
        for s in [Signal::SIGKILL, Signal::SIGSTOP, Signal::SIGSEGV, Signal::SIGBUS, Signal::SIGFPE, Signal::SIGILL] {
            mask.remove(s);
        }
        let mut old = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old)).ctx(|| "block signals".into())?;
        Ok(Blocked { mask, old })
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// Waits for our child `pid` while forwarding signals to it, relaying its
/// terminal (`console`, the pty master) and passing on its READY
/// (`notify`), then reaps it and returns its exit code.
pub fn wait(pid: Pid, pidfd: &OwnedFd, console: Option<&OwnedFd>, blocked: &Blocked, mut notify: Option<&crate::notify::Listener>) -> Result<i32> {
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let sfd = SignalFd::with_flags(&blocked.mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ctx(|| "signalfd".into())?;
    let _raw = console.map(|_| crate::tty::RawMode::new(std::io::stdin().as_fd()));
    let mut relay = console.map(|m| crate::tty::Relay::new(m.as_fd()));
    if let Some(m) = console {
        let _ = crate::tty::copy_winsize(std::io::stdin().as_fd(), m.as_fd());
    }
    loop {
        let mut fds = vec![
            libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: sfd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        if let Some(l) = notify {
            fds.push(libc::pollfd { fd: l.fd().as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        let relayed = fds.len();
        if let Some(r) = &relay {
            for (fd, ev) in r.poll_set() {
                fds.push(libc::pollfd { fd, events: ev, revents: 0 });
            }
        }
        // SAFETY: a valid array of pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(Error::io("poll", std::io::Error::last_os_error()));
        }
        if let Some(l) = notify.filter(|_| fds[2].revents != 0) {
            if l.forward_ready(pid.as_raw())? {
                notify = None;
            }
        }
        if let Some(r) = relay.as_mut() {
            for p in &fds[relayed..] {
                if p.revents != 0 {
                    let _ = r.on_ready(p.fd, p.revents);
                }
            }
        }
        if fds[1].revents != 0 {
            forward(&sfd, pidfd, console);
        }
        if fds[0].revents != 0 {
            if let Some(r) = relay.as_mut() {
                r.drain();
            }
            let st = nix::sys::wait::waitpid(pid, None).ctx(|| "wait for the container process".into())?;
            return Ok(exit_code(st));
        }
    }
}

/// Forwards what the signalfd holds; a window change resizes the pty.
fn forward(sfd: &nix::sys::signalfd::SignalFd, pidfd: &OwnedFd, console: Option<&OwnedFd>) {
    while let Ok(Some(info)) = sfd.read_signal() {
        let sig = info.ssi_signo as i32;
        if sig == Signal::SIGCHLD as i32 {
            continue;
        }
        if sig == Signal::SIGWINCH as i32 {
            if let Some(m) = console {
                let _ = crate::tty::copy_winsize(std::io::stdin().as_fd(), m.as_fd());
            }
            continue;
        }
        let _ = sys::pidfd_send_signal(pidfd.as_fd(), sig);
    }
}
