//! The container's init: the code that runs in the cloned process, from the
//! clone to the execve of `process.args`.
//!
//! The process is a fork-like copy of the single-threaded runtime, so it may
//! allocate; still, everything that can be computed beforehand is computed
//! by the runtime and handed over in [`InitArgs`] (C strings, capability
//! sets, a compiled seccomp filter), and this code makes system calls. Its
//! order is the one the runtime-spec and the kernel impose:
//!
//! 1. wait for the runtime to write the id maps;
//! 2. join namespaces given by path; the cgroup namespace once the runtime
//!    reports the init is in its cgroup (it sets that up in parallel);
//! 3. hostname, keyring, process attributes (still privileged);
//! 4. mounts, devices (before pivot_root, host paths visible);
//! 5. prestart/createRuntime hooks (run by the runtime), createContainer hooks;
//! 6. pivot_root, console, masked/read-only paths, sysctls;
//! 7. rlimits, bounding set, user, cwd (and the breakout check on it), the
//!    executable looked up, the controlling terminal, and every descriptor
//!    past stdio and `--preserve-fds` made close-on-exec: all of the
//!    runtime's own work is done before the container's seccomp filter is
//!    loaded, so a deny-by-default profile sees none of it;
//! 8. with a seccomp listener, the filter and its fd to the runtime right
//!    away (a notify rule may trap anything after it); report Ready and
//!    block on exec.fifo until `start`;
//! 9. no_new_privs and the filter, the final capability sets,
//!    startContainer hooks (under the filter, as with runc), execve.
//!
//! Any failure before Ready is sent to the runtime as an Error message; a
//! later one is left in exec.fifo, where `start` reads it.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use oci_spec::runtime::Hook;

use crate::capabilities::CapPlan;
use crate::channel::{Channel, ToChild, ToParent};
use crate::error::{Context, Error, Result};
use crate::namespaces::Plan;
use crate::process::ExecPlan;
use crate::rootfs::RootfsPlan;

/// Everything the init needs, prepared by the runtime before the clone.
pub struct InitArgs {
    pub id: String,
    pub ns: Plan,
    pub rootfs: RootfsPlan,
    pub exec: ExecPlan,
    pub caps: CapPlan,
    pub seccomp: Option<crate::seccomp::Filter>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub sysctl: Vec<(String, String)>,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub console_socket: Option<OwnedFd>,
    /// Read end of exec.fifo, opened non-blocking by the runtime.
    pub fifo: OwnedFd,
    /// Whether the runtime has prestart/createRuntime hooks to run.
    pub runtime_hooks: bool,
    pub create_container_hooks: Vec<Hook>,
    pub start_container_hooks: Vec<Hook>,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub new_cgroupns: bool,
    pub lsm: crate::lsm::LsmPlan,
}

/// The init's process name until it execs (what `ps` shows for a created
/// container, and how `start` tells a failed init from a started process).
pub const INIT_NAME: &str = "skiff:init";

/// Runs the init and never returns: either execs the container process or exits.
pub fn run(args: InitArgs, chan: Channel) -> ! {
    let err = match setup(&args, &chan) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // Before Ready the runtime is listening on the channel. After it, `start`
    // is: it reads what is left in exec.fifo once we are gone.
    let msg = err.to_string();
    if chan.send_to_parent(&ToParent::Error(msg.clone())).is_err() && nix::unistd::write(&args.fifo, msg.as_bytes()).is_err() {
        eprintln!("skiff: {msg}");
    }
    // SAFETY: _exit is always safe; no destructors or atexit handlers must run
    // in this copy of the runtime.
    unsafe { libc::_exit(1) }
}

enum Never {}

/// The init, phase by phase (see the module's documentation).
fn setup(a: &InitArgs, chan: &Channel) -> Result<Never> {
    reset_process()?;
    let state_json = enter_namespaces(a, chan)?;
    let mut cgroup = CgroupWait { state: 0 };
    set_attributes(a)?;

    // 4. The root filesystem, with the working directory created in it.
    crate::rootfs::prepare(&a.rootfs, &mut || cgroup.wait(a, chan, false))?;
    cgroup.wait(a, chan, true)?;
    crate::safe_path::Root::open(&a.rootfs.rootfs)
        .and_then(|r| r.mkdir_all(&a.exec.cwd, false, 0o755))
        .ctx(|| format!("create process.cwd {}", a.exec.cwd.display()))?;

    // 5. Hooks around the root switch: the runtime's, then createContainer
    //    hooks in the container's namespaces with the rootfs as their cwd
    //    (where runc runs them).
    if a.runtime_hooks {
        chan.send_to_parent(&ToParent::RunHooks)?;
        match chan.recv_in_child()? {
            ToChild::HooksDone => {}
            m => return Err(Error::Init(format!("unexpected {m:?} from the runtime"))),
        }
    }
    if !a.create_container_hooks.is_empty() {
        nix::unistd::chdir(&a.rootfs.rootfs).ctx(|| format!("chdir {}", a.rootfs.rootfs.display()))?;
        crate::hooks::run_all("createContainer", &a.create_container_hooks, &state_json, Some(&a.exec.env))?;
    }

    // 6. Switch root, then what must be done from inside.
    let (console, proc) = switch_root(a)?;
    // 7. Limits, the user, the working directory, the executable.
    let (path, env) = prepare_exec(a, chan, console, proc)?;

    // 8. With a seccomp listener, the filter goes in now and its fd straight
    //    to the runtime (for the agent), before any other system call that a
    //    notify rule could trap. Then Ready, and wait for `start`.
    let mut filter_loaded = false;
    if let Some(f) = a.seccomp.as_ref().filter(|f| f.needs_listener) {
        let fd = load_filter(a, f)?.ok_or_else(|| Error::Seccomp("the kernel returned no listener fd".into()))?;
        chan.send_fd_to_parent(fd.as_fd())?;
        drop(fd);
        filter_loaded = true;
    }
    chan.send_to_parent(&ToParent::Ready)?;
    wait_for_start(&a.fifo)?;

    // 9. The filter (as late as it can be: only the capability change, the
    //    startContainer hooks and execve run under it), then exec.
    match a.seccomp.as_ref().filter(|_| !filter_loaded) {
        Some(f) => drop(load_filter(a, f)?),
        None if a.seccomp.is_none() => set_no_new_privs(a)?,
        None => {}
    }
    a.caps.apply()?;
    crate::hooks::run_all("startContainer", &a.start_container_hooks, &state_json, Some(&a.exec.env))?;
    // The executable, checked not to be the runtime's own binary, executed
    // through the very descriptor that was checked (docs/security.md).
    Err(path.exec(&env))
}

/// Step 6: pivot_root (or chroot), the console, sysctls, masked and
/// read-only paths. Returns the pty and, when there is work for it, a
/// procfs of our own (not the container's /proc, where a mount or a
/// symlink could redirect a write).
fn switch_root(a: &InitArgs) -> Result<(Option<crate::tty::Pty>, Option<crate::procfs::Proc>)> {
    crate::rootfs::pivot(&a.rootfs.rootfs, a.rootfs.no_pivot, a.rootfs.new_mountns)?;
    let console = if a.terminal {
        let sock = a.console_socket.as_ref().ok_or_else(|| Error::Tty("no console socket".into()))?;
        let pty = crate::tty::open_console(a.console_size).map_err(|e| Error::Tty(e.to_string()))?;
        crate::tty::send_master(sock.as_fd(), &pty).map_err(|e| Error::Tty(e.to_string()))?;
        crate::rootfs::mount_console(&pty.slave)?;
        Some(pty)
    } else {
        None
    };
    let proc = if !a.sysctl.is_empty() || a.rootfs.in_userns || !a.lsm.is_empty() { Some(crate::procfs::Proc::new_private()?) } else { None };
    // Sysctls before /proc/sys becomes read-only (readonlyPaths).
    for (k, v) in &a.sysctl {
        proc.as_ref().expect("opened above").write_sysctl(k, v)?;
    }
    crate::rootfs::finish(&a.rootfs)?;
    Ok((console, proc))
}

/// Step 7: all the runtime's own work, done before the container's filter
/// exists. Returns the executable and the environment.
fn prepare_exec(a: &InitArgs, chan: &Channel, console: Option<crate::tty::Pty>, proc: Option<crate::procfs::Proc>) -> Result<(crate::exec_guard::Prepared, Vec<CString>)> {
    a.exec.set_rlimits()?;
    if let Some(pty) = console {
        // The pty becomes stdio before the user change, which gives it to
        // the container user.
        crate::tty::make_controlling(pty.slave).map_err(|e| Error::Tty(e.to_string()))?;
    }
    if let Some(p) = &proc {
        // While still root: after the user change this non-dumpable
        // process's /proc files are no longer its own.
        a.lsm.apply(p)?;
    }
    let setgroups_allowed = match &proc {
        // Outside a user namespace setgroups is always allowed.
        Some(p) if a.rootfs.in_userns => p.read_self("setgroups")?.trim() != "deny",
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
    // ones is closed, but for our channel, exec.fifo and the program
    // (close-on-exec).
    crate::sys::close_from_except(3 + a.preserve_fds, &[chan.fd().as_raw_fd(), a.fifo.as_raw_fd(), program.raw_fd()]).ctx(|| "close the runtime's descriptors".into())?;
    Ok((program, env))
}

/// The user change and the working directory, as runc does them: the cwd is
/// entered as root first (a directory only root may enter), and again as
/// the container user only if that was refused. Returns the executable.
fn finalize_process(a: &InitArgs, setgroups_allowed: bool) -> Result<CString> {
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
    // Capabilities are kept (effective) until the filter is in: without
    // no_new_privs, loading it needs CAP_SYS_ADMIN.
    a.caps.raise_effective()?;
    a.exec.find_executable()
}

/// Loads the container's seccomp filter (with no_new_privs first when the
/// config asks for it); returns the listener fd of a notify filter.
fn load_filter(a: &InitArgs, f: &crate::seccomp::Filter) -> Result<Option<OwnedFd>> {
    set_no_new_privs(a)?;
    crate::seccomp::load(f).map_err(|e| Error::Seccomp(e.to_string()))
}

fn set_no_new_privs(a: &InitArgs) -> Result<()> {
    // SAFETY: plain integer arguments.
    if a.exec.no_new_privileges && unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
        return Err(Error::io("prctl(PR_SET_NO_NEW_PRIVS)", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Name, dumpability, signal mask and dispositions of a fresh init.
fn reset_process() -> Result<()> {
    // SAFETY: a valid nul-terminated name of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"skiff:init".as_ptr(), 0, 0, 0) };
    // Until execve this process is the skiff binary: not dumpable, so no
    // process of the container can ptrace it or open its /proc files (its
    // descriptors). That alone does not keep the host binary out of reach:
    // the final exec refuses to execute it (exec_guard).
    // SAFETY: plain integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
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

/// Steps 1 and 2: the extra fork when one is needed, the id maps (written
/// by the runtime), namespaces given by path. Returns the state for hooks.
fn enter_namespaces(a: &InitArgs, chan: &Channel) -> Result<Vec<u8>> {
    if a.ns.fork_after_unshare() {
        // A user namespace joined by path and a new pid namespace: join and
        // unshare now (no id maps to wait for), then fork, since the new pid
        // namespace only applies to children. The child goes on as the init
        // (pid 1); this process reports its pid and leaves.
        a.ns.join_in_child()?;
        match crate::sys::clone_process(0).ctx(|| "fork into the new pid namespace".into())? {
            crate::sys::Forked::Child => {}
            crate::sys::Forked::Parent { pid, .. } => {
                let _ = chan.send_to_parent(&ToParent::InitPid(pid.as_raw()));
                // SAFETY: _exit in a forked copy of the runtime.
                unsafe { libc::_exit(0) }
            }
        }
    }
    let state_json = match chan.recv_in_child()? {
        ToChild::Go(s) => s,
        m => return Err(Error::Init(format!("unexpected {m:?} from the runtime"))),
    };
    if a.ns.new_user {
        // Become root of the new user namespace.
        nix::unistd::setresgid(0.into(), 0.into(), 0.into()).ctx(|| "setgid 0 in the user namespace".into())?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into()).ctx(|| "setuid 0 in the user namespace".into())?;
    }
    if !a.ns.fork_after_unshare() {
        a.ns.join_in_child()?;
    }
    Ok(state_json)
}

/// Step 3: hostname, domainname, keyring, personality, I/O priority, scheduler.
fn set_attributes(a: &InitArgs) -> Result<()> {
    if let Some(h) = &a.hostname {
        nix::unistd::sethostname(h).ctx(|| "set hostname".into())?;
    }
    if let Some(d) = &a.domainname {
        // SAFETY: pointer and length of a live string.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } < 0 {
            return Err(Error::io("set domainname", std::io::Error::last_os_error()));
        }
    }
    if !a.no_new_keyring {
        let name = CString::new(format!("_ses.{}", a.id)).unwrap_or_default();
        // Kernels without keyrings (or seccomp'd hosts) just keep the old one.
        if let Err(e) = crate::sys::join_session_keyring(&name) {
            if e.raw_os_error() != Some(libc::ENOSYS) {
                return Err(Error::io("join a new session keyring", e));
            }
        }
    }
    a.exec.set_attributes()
}

/// The runtime sets up the cgroup while the init mounts; the init waits for
/// it only when a cgroup mount or a hook needs it. The cgroup namespace is
/// made once the init is in its cgroup, so that it is the namespace's root.
/// `CgroupReady(false)` (v1 fast path) means the devices hierarchy is joined
/// later, so the namespace waits for `CgroupDone`.
struct CgroupWait {
    /// 0: waiting, 1: partly joined, 2: joined.
    state: u8,
}

impl CgroupWait {
    fn wait(&mut self, a: &InitArgs, chan: &Channel, complete_needed: bool) -> Result<()> {
        let unshare_cgroupns = || -> Result<()> {
            if a.new_cgroupns {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).ctx(|| "create the cgroup namespace".into())?;
            }
            Ok(())
        };
        if self.state == 0 {
            self.state = match chan.recv_in_child()? {
                ToChild::CgroupReady(true) => 2,
                ToChild::CgroupReady(false) => 1,
                m => return Err(Error::Init(format!("unexpected {m:?} from the runtime"))),
            };
            if self.state == 2 {
                unshare_cgroupns()?;
            }
        }
        if self.state == 1 && complete_needed {
            match chan.recv_in_child()? {
                ToChild::CgroupDone => {}
                m => return Err(Error::Init(format!("unexpected {m:?} from the runtime"))),
            }
            unshare_cgroupns()?;
            self.state = 2;
        }
        Ok(())
    }
}

/// Blocks until `start` writes to exec.fifo (or gives up and closes it).
fn wait_for_start(fifo: &OwnedFd) -> Result<()> {
    let mut pfd = libc::pollfd { fd: fifo.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, -1) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(Error::io("wait on exec.fifo", std::io::Error::last_os_error()));
        }
        let mut b = [0u8; 1];
        match nix::unistd::read(fifo.as_raw_fd(), &mut b) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(Error::Init("start was abandoned".into())),
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::errno("read exec.fifo", e)),
        }
    }
}
