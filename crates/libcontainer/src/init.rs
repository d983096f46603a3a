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
//! 7. rlimits, bounding set, seccomp (unless no_new_privs defers it), user,
//!    capabilities, no_new_privs;
//! 8. report Ready and block on exec.fifo until `start`;
//! 9. startContainer hooks, the deferred seccomp filter, execve.
//!
//! Any failure before Ready is sent to the runtime as an Error message.

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
    // Before Ready the runtime is listening; after it, only stderr is left.
    if chan.send_to_parent(&ToParent::Error(err.to_string())).is_err() {
        eprintln!("skiff: {err}");
    }
    // SAFETY: _exit is always safe; no destructors or atexit handlers must run
    // in this copy of the runtime.
    unsafe { libc::_exit(1) }
}

enum Never {}

fn setup(a: &InitArgs, chan: &Channel) -> Result<Never> {
    // SAFETY: a valid nul-terminated name of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"skiff:init".as_ptr(), 0, 0, 0) };
    // Until execve this process is the skiff binary: not dumpable, so no
    // process of the container can open /proc/<pid>/exe (CVE-2019-5736).
    // execve makes the container's process dumpable again.
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

    // 1. The runtime writes our id maps first.
    let state_json = match chan.recv_in_child()? {
        ToChild::Go(s) => s,
        m => return Err(Error::Init(format!("unexpected {m:?} from the runtime"))),
    };
    if a.ns.new_user {
        // Become root of the new user namespace.
        nix::unistd::setresgid(0.into(), 0.into(), 0.into()).ctx(|| "setgid 0 in the user namespace".into())?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into()).ctx(|| "setuid 0 in the user namespace".into())?;
    }

    // 2. Namespaces given by path; the cgroup namespace now that we are in
    //    the container's cgroup.
    if !a.ns.fork_after_unshare() {
        a.ns.join_in_child()?;
    }
    // The runtime sets up the cgroup while we mount; we wait for it only
    // when a cgroup mount or a hook needs it. The cgroup namespace is made
    // once we are in our cgroup, so that it is the namespace's root.
    // `CgroupReady(false)` (v1 fast path) means the devices hierarchy is
    // joined later, so the namespace waits for `CgroupDone`.
    let mut cgroup_state = 0; // 0: waiting, 1: partly joined, 2: joined
    let unshare_cgroupns = || -> Result<()> {
        if a.new_cgroupns {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).ctx(|| "create the cgroup namespace".into())?;
        }
        Ok(())
    };
    let mut cgroup_ready = |complete_needed: bool| -> Result<()> {
        if cgroup_state == 0 {
            cgroup_state = match chan.recv_in_child()? {
                ToChild::CgroupReady(true) => 2,
                ToChild::CgroupReady(false) => 1,
                m => return Err(Error::Init(format!("unexpected {m:?} from the runtime"))),
            };
            if cgroup_state == 2 {
                unshare_cgroupns()?;
            }
        }
        if cgroup_state == 1 && complete_needed {
            match chan.recv_in_child()? {
                ToChild::CgroupDone => {}
                m => return Err(Error::Init(format!("unexpected {m:?} from the runtime"))),
            }
            unshare_cgroupns()?;
            cgroup_state = 2;
        }
        Ok(())
    };

    // 3. Privileged process attributes.
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
    a.exec.set_attributes()?;

    // 4. The root filesystem, with the working directory created in it.
    crate::rootfs::prepare(&a.rootfs, &mut || cgroup_ready(false))?;
    cgroup_ready(true)?;
    crate::safe_path::Root::open(&a.rootfs.rootfs)
        .and_then(|r| r.mkdir_all(&a.exec.cwd, false, 0o755))
        .ctx(|| format!("create process.cwd {}", a.exec.cwd.display()))?;

    // 5. Hooks around the root switch.
    if a.runtime_hooks {
        chan.send_to_parent(&ToParent::RunHooks)?;
        match chan.recv_in_child()? {
            ToChild::HooksDone => {}
            m => return Err(Error::Init(format!("unexpected {m:?} from the runtime"))),
        }
    }
    crate::hooks::run_all("createContainer", &a.create_container_hooks, &state_json)?;

    // 6. Switch root, then what must be done from inside.
    crate::rootfs::pivot(&a.rootfs.rootfs, a.rootfs.no_pivot)?;
    let console = if a.terminal {
        let sock = a.console_socket.as_ref().ok_or_else(|| Error::Tty("no console socket".into()))?;
        let pty = crate::tty::open_console(a.console_size).map_err(|e| Error::Tty(e.to_string()))?;
        crate::tty::send_master(sock.as_fd(), &pty).map_err(|e| Error::Tty(e.to_string()))?;
        crate::rootfs::mount_console(&pty.name)?;
        Some(pty)
    } else {
        None
    };
    // Sysctls before /proc/sys becomes read-only (readonlyPaths).
    for (k, v) in &a.sysctl {
        let p = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&p, v).ctx(|| format!("linux.sysctl: write {p}"))?;
    }
    crate::rootfs::finish(&a.rootfs)?;

    // 7. Limits, privileges, seccomp.
    a.exec.set_rlimits()?;
    let nnp = a.exec.no_new_privileges;
    let mut notify_fd = None;
    if let Some(f) = &a.seccomp {
        if !nnp {
            // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN,
            // which the user change may drop: load it now.
            notify_fd = crate::seccomp::load(f).map_err(|e| Error::Seccomp(e.to_string()))?;
        }
    }
    a.caps.drop_bounding()?;
    // Tried as root first (a cwd only root may enter), then again as the
    // container user below, which is the one that must succeed.
    let _ = nix::unistd::chdir(&a.exec.cwd);
    let setgroups_allowed = std::fs::read_to_string("/proc/self/setgroups").map(|s| s.trim() != "deny").unwrap_or(true);
    a.exec.switch_user(setgroups_allowed)?;
    a.caps.apply()?;
    nix::unistd::chdir(&a.exec.cwd).ctx(|| format!("chdir to process.cwd {}", a.exec.cwd.display()))?;
    if nnp {
        // SAFETY: plain integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
            return Err(Error::io("prctl(PR_SET_NO_NEW_PRIVS)", std::io::Error::last_os_error()));
        }
        if let Some(f) = a.seccomp.as_ref().filter(|f| f.needs_listener) {
            notify_fd = crate::seccomp::load(f).map_err(|e| Error::Seccomp(e.to_string()))?;
        }
    }
    if let Some(fd) = &notify_fd {
        chan.send_fd_to_parent(fd.as_fd())?;
    }
    drop(notify_fd);
    let path = a.exec.find_executable()?;
    let mut env = a.exec.env.clone();
    if let Some(home) = a.exec.home_env() {
        env.push(home);
    }
    if let Some(pty) = console {
        crate::tty::make_controlling(pty.slave).map_err(|e| Error::Tty(e.to_string()))?;
    }

    // 8. Ready; wait for `start`.
    chan.send_to_parent(&ToParent::Ready)?;
    wait_for_start(&a.fifo)?;

    // 9. Exec.
    crate::hooks::run_all("startContainer", &a.start_container_hooks, &state_json)?;
    if let Some(f) = a.seccomp.as_ref().filter(|f| nnp && !f.needs_listener) {
        // Loaded as late as possible, so the filter only sees the container.
        crate::seccomp::load(f).map_err(|e| Error::Seccomp(e.to_string()))?;
    }
    crate::sys::cloexec_from(3 + a.preserve_fds).ctx(|| "close the runtime's descriptors".into())?;
    Err(crate::exec_guard::execute(&path, &a.exec.args, &env))
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
