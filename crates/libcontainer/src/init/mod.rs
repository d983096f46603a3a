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
//! 8. no_new_privs and the final capability sets (after the filter instead
//!    when it needs CAP_SYS_ADMIN to load: no no_new_privs); with a seccomp
//!    listener, the filter and its fd to the runtime right away (a notify
//!    rule may trap anything after it); report Ready and block on
//!    exec.fifo until `start`;
//! 9. the filter, startContainer hooks (under the filter, as with runc),
//!    execve.
//!
//! Any failure before Ready is sent to the runtime as an Error message; a
//! later one is left in exec.fifo, where `start` reads it.
//!
//! Steps 7 to 9 are those of every process entering a container, and live
//! in `process.rs`, which `exec` (`exec.rs`) goes through as well.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use oci_spec::runtime::Hook;

pub mod exec;
mod process;

pub use exec::ExecArgs;
pub use process::{Never, ProcessArgs};

use crate::channel::{Channel, ToChild, ToParent};
use crate::error::{Context, Error, Result};
use crate::namespaces::Plan;
use crate::rootfs::RootfsPlan;

/// Everything the init needs, prepared by the runtime before the clone.
pub struct InitArgs {
    pub id: String,
    pub ns: Plan,
    pub rootfs: RootfsPlan,
    /// The process half, shared with `exec` ([`process`]).
    pub process: ProcessArgs,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub sysctl: Vec<(String, String)>,
    /// Read end of exec.fifo, opened non-blocking by the runtime.
    pub fifo: OwnedFd,
    /// Whether the runtime has prestart/createRuntime hooks to run.
    pub runtime_hooks: bool,
    pub create_container_hooks: Vec<Hook>,
    pub start_container_hooks: Vec<Hook>,
    pub no_new_keyring: bool,
    pub new_cgroupns: bool,
    /// A `create` whose `start` is another command, later: the init gives
    /// back the memory it no longer needs before it waits (not in `run`,
    /// where `start` follows at once).
    pub release_while_waiting: bool,
    /// cgroup v1 (cgroupfs driver) in the runtime's own user namespace: the
    /// container's directories, which the init moves itself into once the
    /// runtime reports them ready (`cgroups::join_self`); empty when the
    /// runtime moves it. A process that moves itself into a v1 hierarchy
    /// skips the kernel's wait for an RCU grace period that moving another
    /// process costs (~12 ms here after an idle moment).
    pub join_cgroups: Vec<std::path::PathBuf>,
    /// The clone put the init in its cgroup2 directory (CLONE_INTO_CGROUP).
    pub born_in_cgroup: bool,
}

pub use process::INIT_NAME;

/// Runs the init and never returns: either execs the container process or exits.
pub fn run(args: InitArgs, chan: Channel) -> ! {
    let err = match setup(&args, &chan) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // Before Ready the runtime is listening on the channel. After it, `start`
    // is: it reads what is left in exec.fifo once we are gone.
    process::fail(err, &chan, |msg| nix::unistd::write(&args.fifo, msg.as_bytes()).is_ok())
}

/// The init, phase by phase (see the module's documentation).
fn setup(a: &InitArgs, chan: &Channel) -> Result<Never> {
    use crate::trace::{init_mark, InitStage};
    crate::trace::init_begin();
    process::reset_process()?;
    let state_json = enter_namespaces(a, chan)?;
    init_mark(InitStage::Namespaces);
    let mut cgroup = CgroupWait { state: 0 };
    set_attributes(a)?;
    init_mark(InitStage::Attributes);

    // 4. The root filesystem, with the working directory created in it.
    crate::rootfs::prepare(&a.rootfs, &mut || {
        init_mark(InitStage::Mounts);
        let r = cgroup.wait(a, chan, false);
        init_mark(InitStage::CgroupWait);
        r
    })?;
    init_mark(InitStage::Mounts);
    cgroup.wait(a, chan, true)?;
    init_mark(InitStage::CgroupWait);
    crate::safe_path::Root::open(&a.rootfs.rootfs)
        .and_then(|r| r.mkdir_all(&a.process.exec.cwd, false, 0o755))
        .ctx(|| format!("create process.cwd {}", a.process.exec.cwd.display()))?;
    init_mark(InitStage::Mounts);

    // 5. Hooks around the root switch: the runtime's, then createContainer
    //    hooks in the container's namespaces with the rootfs as their cwd
    //    (where runc runs them).
    let hooks = a.runtime_hooks || !a.create_container_hooks.is_empty();
    if a.runtime_hooks {
        chan.send_to_parent(&ToParent::RunHooks)?;
        match chan.recv_in_child()? {
            ToChild::HooksDone => {}
            m => return Err(Error::Init(format!("unexpected {m:?} from the runtime"))),
        }
    }
    if !a.create_container_hooks.is_empty() {
        nix::unistd::chdir(&a.rootfs.rootfs).ctx(|| format!("chdir {}", a.rootfs.rootfs.display()))?;
        crate::hooks::run_all("createContainer", &a.create_container_hooks, &state_json, Some(&a.process.exec.env))?;
    }
    if hooks {
        init_mark(InitStage::Hooks);
    }

    // 6. Switch root, then what must be done from inside.
    let (console, proc) = switch_root(a)?;
    // 7.–9. As for every process entering the container: the runtime's own
    //    work, then (after Ready and `start`) the filter, the capabilities,
    //    the startContainer hooks and execve.
    let (program, env) = process::prepare_exec(&a.process, chan, console, proc, &[a.fifo.as_raw_fd()])?;
    init_mark(InitStage::Process);
    let hooks = || crate::hooks::run_all("startContainer", &a.start_container_hooks, &state_json, Some(&a.process.exec.env));
    let wait = || {
        if a.release_while_waiting {
            crate::sys::release_memory();
        }
        wait_for_start(&a.fifo, chan)
    };
    process::launch(&a.process, chan, program, env, wait, hooks)
}

/// Step 6: pivot_root (or chroot), the console, sysctls, masked and
/// read-only paths. Returns the pty and, when there is work for it, a
/// procfs of our own (not the container's /proc, where a mount or a
/// symlink could redirect a write).
fn switch_root(a: &InitArgs) -> Result<(Option<crate::tty::Pty>, Option<crate::procfs::Proc>)> {
    crate::rootfs::pivot(&a.rootfs.rootfs, a.rootfs.no_pivot, a.rootfs.new_mountns)?;
    crate::trace::init_mark(crate::trace::InitStage::PivotRoot);
    let console = process::open_terminal(&a.process)?;
    if let Some(pty) = &console {
        crate::rootfs::mount_console(&pty.slave)?;
    }
    let proc = if !a.sysctl.is_empty() || process::needs_proc(&a.process) { Some(crate::procfs::Proc::new_private()?) } else { None };
    // Sysctls before /proc/sys becomes read-only (readonlyPaths).
    for (k, v) in &a.sysctl {
        proc.as_ref().expect("opened above").write_sysctl(k, v)?;
    }
    crate::rootfs::finish(&a.rootfs)?;
    crate::trace::init_mark(crate::trace::InitStage::Finish);
    Ok((console, proc))
}

/// Steps 1 and 2: the extra fork when one is needed, the id maps (written
/// by the runtime), namespaces given by path. Returns the state for hooks.
fn enter_namespaces(a: &InitArgs, chan: &Channel) -> Result<Vec<u8>> {
    if a.ns.fork_after_unshare() {
        // A user namespace joined by path and a new pid namespace: join and
        // unshare now (no id maps to wait for), then fork, since the new pid
        // namespace only applies to children. The child goes on as the init
        // (pid 1); this process reports its pid and leaves. There is no id
        // map to write, so it is made not dumpable before it joins.
        process::set_non_dumpable();
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
    // The id maps and oom_score_adj are written: from now on not dumpable.
    process::set_non_dumpable();
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
    a.process.exec.set_attributes()
}

/// The runtime sets up the cgroup while the init mounts; the init waits for
/// it only when a cgroup mount or a hook needs it. The cgroup namespace is
/// made once the init is in its cgroup, so that it is the namespace's root.
/// `CgroupReady(false)` (v1 fast path) means the directories exist (enough
/// for the v1 binds) but the init is joined to them later, so the namespace
/// waits for `CgroupDone`.
struct CgroupWait {
    /// 0: waiting, 1: the directories exist (joined later), 2: joined.
    state: u8,
}

impl CgroupWait {
    fn wait(&mut self, a: &InitArgs, chan: &Channel, complete_needed: bool) -> Result<()> {
        // In the cgroup (by itself, when the runtime left that to it), then
        // the namespace rooted there.
        let enter_cgroup = || -> Result<()> {
            crate::cgroups::join_self(&a.join_cgroups, a.born_in_cgroup)?;
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
                enter_cgroup()?;
            }
        }
        if self.state == 1 && complete_needed {
            match chan.recv_in_child()? {
                ToChild::CgroupDone => {}
                m => return Err(Error::Init(format!("unexpected {m:?} from the runtime"))),
            }
            enter_cgroup()?;
            self.state = 2;
        }
        Ok(())
    }
}

/// Blocks until `start` writes to exec.fifo (or gives up and closes it).
/// Until the runtime reports the container created, the channel is watched
/// too: closed before that, the runtime died half-way (killed by a timeout,
/// say), and this init must never run the container's process. The fifo's
/// byte comes first: it is only ever written once the container is
/// created (`run` writes it without a `Created` of its own, having saved
/// the state, and may die right after).
fn wait_for_start(fifo: &OwnedFd, chan: &Channel) -> Result<()> {
    let mut created = false;
    loop {
        let mut pfd = [
            libc::pollfd { fd: fifo.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: if created { -1 } else { chan.fd().as_raw_fd() }, events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: a valid array of two pollfds (a negative fd is ignored).
        let r = unsafe { libc::poll(pfd.as_mut_ptr(), 2, -1) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(Error::io("wait on exec.fifo", std::io::Error::last_os_error()));
        }
        if pfd[0].revents != 0 {
            let mut b = [0u8; 1];
            match nix::unistd::read(fifo.as_raw_fd(), &mut b) {
                Ok(1) => return Ok(()),
                Ok(_) => return Err(Error::Init("start was abandoned".into())),
                Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::errno("read exec.fifo", e)),
            }
        }
        if pfd[1].revents != 0 {
            match chan.recv_in_child() {
                Ok(ToChild::Created) => created = true,
                Ok(m) => return Err(Error::Init(format!("unexpected {m:?} from the runtime"))),
                Err(_) => return Err(Error::Init("the runtime died before the container was created".into())),
            }
        }
    }
}
