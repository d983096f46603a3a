//! What every process entering a container goes through, the container's
//! init and each `exec`'d process alike: one path, not two copies.
//!
//! Once the process is in the container's namespaces, with its root and
//! (when it has one) its terminal:
//! 1. [`prepare_exec`]: rlimits, the controlling terminal, the LSM label,
//!    the bounding set, the user and groups, the working directory (and the
//!    breakout check on it), the executable found and opened, and every
//!    descriptor but the kept ones closed: all of the runtime's own work,
//!    before the container's seccomp filter exists;
//! 2. [`launch`]: no_new_privs and the final capability sets (unless a
//!    filter without no_new_privs needs CAP_SYS_ADMIN to load: then they
//!    come after it), with a seccomp listener the filter and its fd to the
//!    runtime, Ready, the caller's wait (the init's `start`), the filter,
//!    the caller's last step (the init's startContainer hooks), execve.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};

use crate::capabilities::CapPlan;
use crate::channel::{Channel, ToParent};
use crate::error::{Context, Error, Result};
use crate::process::ExecPlan;

/// The process half of what the runtime prepares before the clone.
pub struct ProcessArgs {
    pub exec: ExecPlan,
    pub caps: CapPlan,
    pub seccomp: Option<crate::seccomp::Filter>,
    pub lsm: crate::lsm::LsmPlan,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub console_socket: Option<OwnedFd>,
    pub preserve_fds: u32,
    /// Whether the process ends up in a user namespace other than the host's.
    pub in_userns: bool,
    /// `process.execCPUAffinity.final`: the CPUs once in the cgroup.
    pub cpu_affinity: Option<Vec<usize>>,
}

/// Never constructed: the return type of set-up code that ends in execve.
pub enum Never {}

/// The process's name until it execs (what `ps` shows for a created
/// container, and how `start` tells a failed init from a started process).
pub const INIT_NAME: &str = "skiff:init";

/// Until execve this process is the skiff binary: not dumpable, so no
/// process of the container can ptrace it or open its /proc files (its
/// descriptors). That alone does not keep the host binary out of reach: the
/// final exec refuses to execute it (exec_guard). Called once the runtime
/// has written what it writes under /proc/<pid> (a rootless runtime may
/// only write the files of a dumpable process), before anything of the
/// container can run.
pub fn set_non_dumpable() {
    // SAFETY: plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}

/// Name, signal mask and dispositions of a fresh process.
pub fn reset_process() -> Result<()> {
    // SAFETY: a valid nul-terminated name of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"skiff:init".as_ptr(), 0, 0, 0) };
    // The runtime may have blocked or ignored signals (Rust ignores SIGPIPE);
    // the container starts with defaults.
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).ctx(|| "reset the signal mask".into())?;
    for sig in Signal::iterator() {
        if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
            // SAFETY: restoring the default disposition installs no handler.
            let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) };
        }
    }
    Ok(())
}

/// A new pty in the container's /dev/pts, its master sent to the console
/// socket. Returns it for [`prepare_exec`].
pub fn open_terminal(a: &ProcessArgs) -> Result<Option<crate::tty::Pty>> {
    if !a.terminal {
        return Ok(None);
    }
    let sock = a.console_socket.as_ref().ok_or_else(|| Error::Tty("no console socket".into()))?;
    let pty = crate::tty::open_console(a.console_size).map_err(|e| Error::Tty(e.to_string()))?;
    crate::tty::send_master(sock.as_fd(), &pty).map_err(|e| Error::Tty(e.to_string()))?;
    Ok(Some(pty))
}

/// Step 1: all the runtime's own work, done before the container's filter
/// exists. `proc` is a procfs of the process's own (needed in a user
/// namespace and for an LSM label); `keep` are descriptors of the caller's
/// that must survive until execve (close-on-exec). Returns the executable
/// and the environment.
pub fn prepare_exec(a: &ProcessArgs, chan: &Channel, console: Option<crate::tty::Pty>, proc: Option<crate::procfs::Proc>, keep: &[RawFd]) -> Result<(crate::exec_guard::Prepared, Vec<CString>)> {
    a.exec.set_rlimits()?;
    if let Some(pty) = console {
        // The pty becomes stdio before the user change, which gives it to
        // the container user.
        crate::tty::make_controlling(pty.slave).map_err(|e| Error::Tty(e.to_string()))?;
    } else {
        // As with runc, every container process leads a session of its
        // own: it is out of the caller's session (and its terminal's
        // signals), and CRIU can dump it (a session led from outside the
        // pid namespace cannot be).
        let _ = nix::unistd::setsid();
    }
    if let Some(p) = &proc {
        // While still root: after the user change this non-dumpable
        // process's /proc files are no longer its own.
        a.lsm.apply(p)?;
    }
    let setgroups_allowed = match &proc {
        // Outside a user namespace setgroups is always allowed.
        Some(p) if a.in_userns => p.read_self("setgroups")?.trim() != "deny",
        _ => true,
    };
    drop(proc);
    let path = finalize_process(a, setgroups_allowed)?;
    let program = crate::exec_guard::prepare(&path, &a.exec.args)?;
    let mut env = a.exec.env.clone();
    if let Some(home) = a.exec.home_env() {
        env.push(home);
    }
    // Nothing the caller passed or the runtime opened may reach the
    // container's process: every descriptor past stdio and the preserved
    // ones is closed, but for our channel, the caller's and the program
    // (close-on-exec).
    let mut kept = vec![chan.fd().as_raw_fd(), program.raw_fd()];
    kept.extend_from_slice(keep);
    crate::sys::close_from_except(3 + a.preserve_fds, &kept).ctx(|| "close the runtime's descriptors".into())?;
    Ok((program, env))
}

/// Whether [`prepare_exec`] needs a procfs of the process's own.
pub fn needs_proc(a: &ProcessArgs) -> bool {
    a.in_userns || !a.lsm.is_empty()
}

/// The user change and the working directory, as runc does them: the cwd is
/// entered as root first (a directory only root may enter), and again as
/// the container user only if that was refused. Returns the executable.
fn finalize_process(a: &ProcessArgs, setgroups_allowed: bool) -> Result<CString> {
    let cwd_err = |e: nix::errno::Errno| Error::errno(format!("chdir to cwd ({:?}) set in config.json failed", a.exec.cwd.display().to_string()), e);
    let retry_cwd = match nix::unistd::chdir(&a.exec.cwd) {
        Ok(()) => false,
        Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM) => true,
        Err(e) => return Err(cwd_err(e)),
    };
    a.caps.drop_bounding()?;
    a.exec.switch_user(setgroups_allowed)?;
    if retry_cwd {
        nix::unistd::chdir(&a.exec.cwd).map_err(cwd_err)?;
    }
    // The kernel follows symlinks where a lexical check does not: make sure
    // the cwd really is inside the container's root (CVE-2024-21626).
    let breakout = || Error::Init("current working directory is outside of container mount namespace root -- possible container breakout detected".into());
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => {}
        // glibc reports a cwd outside the root ("(unreachable)/...") as ENOENT.
        Ok(_) | Err(nix::errno::Errno::ENOENT) => return Err(breakout()),
        Err(e) => return Err(cwd_err(e)),
    }
    // Capabilities are kept (effective) until [`launch`] sets the final
    // ones: without no_new_privs, loading a filter needs CAP_SYS_ADMIN.
    a.caps.raise_effective()?;
    a.exec.find_executable()
}

/// Step 2, from the end of [`prepare_exec`] to execve. `wait` runs after
/// Ready (the init blocks there until `start`); `last` right before execve,
/// under the filter (the init's startContainer hooks).
pub fn launch(a: &ProcessArgs, chan: &Channel, program: crate::exec_guard::Prepared, env: Vec<CString>, wait: impl FnOnce() -> Result<()>, last: impl FnOnce() -> Result<()>) -> Result<Never> {
    // The final capability sets go in before the filter, as runc and crun
    // set them, whenever the filter does not need CAP_SYS_ADMIN to load
    // (with no_new_privs, or without a filter): then the profile need not
    // allow capget and capset, and `start` does not wait for them.
    set_no_new_privs(a)?;
    let caps_first = a.exec.no_new_privileges || a.seccomp.is_none();
    if caps_first {
        a.caps.apply()?;
    }
    // With a seccomp listener, the filter goes in now and its fd straight to
    // the runtime (for the agent), before any other system call that a
    // notify rule could trap.
    let mut filter_loaded = false;
    if let Some(f) = a.seccomp.as_ref().filter(|f| f.needs_listener) {
        let fd = load_filter(f)?.ok_or_else(|| Error::Seccomp("the kernel returned no listener fd".into()))?;
        chan.send_fd_to_parent(fd.as_fd())?;
        drop(fd);
        filter_loaded = true;
    }
    if let Some(stages) = crate::trace::init_report() {
        chan.send_to_parent(&ToParent::Stages(stages.to_vec()))?;
    }
    chan.send_to_parent(&ToParent::Ready)?;
    wait()?;
    if let Some(cpus) = &a.cpu_affinity {
        crate::sys::set_affinity(0, cpus).map_err(|e| Error::io("process.execCPUAffinity.final", e))?;
    }
    // The filter, as late as it can be: only the caller's last step and
    // execve run under it (and the capability change, when it needed the
    // capabilities to load).
    if let Some(f) = a.seccomp.as_ref().filter(|_| !filter_loaded) {
        drop(load_filter(f)?);
    }
    if !caps_first {
        a.caps.apply()?;
    }
    last()?;
    // The executable, checked not to be the runtime's own binary, executed
    // through the very descriptor that was checked (docs/security.md).
    Err(program.exec(&env))
}

/// Loads the container's seccomp filter (no_new_privs is set by then when
/// the process asks for it); returns the listener fd of a notify filter.
fn load_filter(f: &crate::seccomp::Filter) -> Result<Option<OwnedFd>> {
    crate::seccomp::load(f).map_err(|e| Error::Seccomp(e.to_string()))
}

fn set_no_new_privs(a: &ProcessArgs) -> Result<()> {
    // SAFETY: plain integer arguments.
    if a.exec.no_new_privileges && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
        return Err(Error::io("prctl(PR_SET_NO_NEW_PRIVS)", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Reports a set-up failure to the runtime (or, once it no longer listens,
/// through `fallback`) and exits.
pub fn fail(err: Error, chan: &Channel, fallback: impl FnOnce(&str) -> bool) -> ! {
    let msg = err.to_string();
    if chan.send_to_parent(&ToParent::Error(msg.clone())).is_err() && !fallback(&msg) {
        eprintln!("skiff: {msg}");
    }
    // SAFETY: _exit is always safe; no destructors or atexit handlers must run
    // in this copy of the runtime.
    unsafe { libc::_exit(1) }
}
