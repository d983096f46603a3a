//! `run`: create and start in one go and, in the foreground, wait for the
//! container while relaying signals and its terminal.

use std::os::fd::{AsFd, AsRawFd};

use super::create::{create, CreateOptions, Created};
use super::start::start_locked;
use super::{destroy, kill_and_wait};
use crate::error::{Context, Error, Result};
use crate::state::Store;
use crate::sys;

/// The exit of a foreground `run`.
pub fn exit_code(status: nix::sys::wait::WaitStatus) -> i32 {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, c) => c,
        WaitStatus::Signaled(_, s, _) => 128 + s as i32,
        _ => 1,
    }
}

/// `run`: create, start and, in the foreground, wait for the container
/// while forwarding signals (and relaying its terminal), then delete it
/// unless `keep`. Returns the exit code for the caller to exit with.
pub fn run(store: &Store, opts: &CreateOptions, keep: bool) -> Result<i32> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    if !opts.foreground {
        let c = create(store, opts)?;
        start_locked(&c.dir, &c.state)?;
        return Ok(0);
    }
    // Block the signals we forward before the init exists, so none is lost;
    // the init resets its own mask.
    let mut mask = SigSet::all();
    mask.remove(Signal::SIGKILL);
    mask.remove(Signal::SIGSTOP);
    mask.remove(Signal::SIGSEGV);
    mask.remove(Signal::SIGBUS);
    mask.remove(Signal::SIGFPE);
    mask.remove(Signal::SIGILL);
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old)).ctx(|| "block signals".into())?;
    let result = (|| {
        let c = create(store, opts)?;
        let r = start_locked(&c.dir, &c.state).and_then(|_| wait_foreground(&c, &mask));
        let dir = c.dir;
        let code = match r {
            Ok(code) => code,
            Err(e) => {
                kill_and_wait(&c.state);
                let _ = destroy(dir, &c.state);
                return Err(e);
            }
        };
        if !keep {
            kill_and_wait(&c.state);
            destroy(dir, &c.state)?;
        }
        Ok(code)
    })();
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    result
}

fn wait_foreground(c: &Created, mask: &nix::sys::signal::SigSet) -> Result<i32> {
    use nix::sys::signal::Signal;
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let sfd = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ctx(|| "signalfd".into())?;
    let _raw = c.console.as_ref().map(|_| crate::tty::RawMode::new(std::io::stdin().as_fd()));
    let mut relay = c.console.as_ref().map(|m| crate::tty::Relay::new(m.as_fd()));
    if let Some(m) = &c.console {
        let _ = crate::tty::copy_winsize(std::io::stdin().as_fd(), m.as_fd());
    }
    loop {
        let mut fds = vec![
            libc::pollfd { fd: c.pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: sfd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
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
        if let Some(r) = relay.as_mut() {
            for p in &fds[2..] {
                if p.revents != 0 {
                    let _ = r.on_ready(p.fd, p.revents);
                }
            }
        }
        if fds[1].revents != 0 {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == Signal::SIGCHLD as i32 {
                    continue;
                }
                if sig == Signal::SIGWINCH as i32 {
                    if let Some(m) = &c.console {
                        let _ = crate::tty::copy_winsize(std::io::stdin().as_fd(), m.as_fd());
                    }
                    continue;
                }
                let _ = sys::pidfd_send_signal(c.pidfd.as_fd(), sig);
            }
        }
        if fds[0].revents != 0 {
            if let Some(r) = relay.as_mut() {
                r.drain();
            }
            let st = nix::sys::wait::waitpid(c.pid, None).ctx(|| "wait for the container".into())?;
            return Ok(exit_code(st));
        }
    }
}
