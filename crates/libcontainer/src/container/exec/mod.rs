//! `exec`: a new process in a created or running container, in the order
//! [`exec`] calls the steps:
//! 1. the container's state and status (a paused one only with
//!    `--ignore-paused`), the process worked out (`process.rs`);
//! 2. [`Plan::new`]: everything the process needs, converted before the
//!    clone by the same code as for the init (ExecPlan, CapPlan, LsmPlan,
//!    the container's compiled seccomp filter);
//! 3. [`spawn`]: the clone into the container's pid namespace (entered for
//!    our children) — a child of our caller when detached, else our own —
//!    its cgroups, `Go`, and the conversation until it execs;
//! 4. the pid file, and in the foreground the wait (signals forwarded, the
//!    terminal relayed, the exit code passed on).
//!
//! The child's side is `init::exec`, which ends in the set-up shared with
//! the container's init (`init::process`).

mod process;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process};

pub use process::{read_process_file, ExecProcess, ProcessOverrides};

use super::create::{compile_seccomp, console_socket, seccomp_state, send};
use super::foreground::{self, Blocked};
use crate::channel::{self, Channel, ToChild, ToParent};
use crate::error::{Context, Error, Result};
use crate::init::exec::ExecArgs;
use crate::init::ProcessArgs;
use crate::state::{self, ExecBase, State, Status, Store};
use crate::sys::{self, Forked};

/// Options of `exec`.
pub struct ExecOptions<'a> {
    pub process: ExecProcess,
    pub console_socket: Option<&'a Path>,
    pub pid_file: Option<&'a Path>,
    /// Leave the process running (a child of our caller) and return.
    pub detach: bool,
    pub preserve_fds: u32,
    /// `--cgroup`: sub-cgroups of the container's to join, each
    /// `[controller[,controller]:]path`.
    pub cgroups: &'a [String],
    pub ignore_paused: bool,
    pub seccomp_cache: Option<&'a Path>,
}

/// `exec`: starts a process in the container. Returns its exit code in the
/// foreground, 0 once it runs when detached.
pub fn exec(store: &Store, id: &str, opts: &ExecOptions) -> Result<i32> {
    // No lock: exec changes nothing in the state, and a process frozen in a
    // paused container must not keep `resume` from taking it.
    let mut t = crate::trace::Stages::start("exec");
    let dir = store.peek(id)?;
    let st = dir.load()?;
    let base = st.exec_base()?;
    t.mark("state load");
    let base = base.as_ref().ok_or_else(|| Error::BadState("cannot exec in a container created by an older skiff (its state has no process)".into()))?;
    match st.status(&dir.path) {
        Status::Stopped => return Err(Error::BadState("cannot exec in a stopped container".into())),
        Status::Paused if !opts.ignore_paused => return Err(Error::BadState("cannot exec in a paused container (use --ignore-paused to override)".into())),
        Status::Creating => return Err(Error::BadState("cannot exec in a container that is being created".into())),
        _ => {}
    }
    let proc = process::resolve(&base.process, &opts.process)?;
    let init = super::init_pidfd(&st).ok_or_else(|| Error::BadState("cannot exec in a stopped container".into()))?;
    let plan = Plan::new(&st, base, &proc, opts, &mut t)?;
    // In the foreground, the signals to forward are held from before the
    // process exists.
    let blocked = if opts.detach { None } else { Some(Blocked::new()?) };
    let child = spawn(&st, base, plan, init, opts, &mut t)?;
    if let Some(p) = opts.pid_file {
        state::write_atomic(p, child.pid.as_raw().to_string().as_bytes(), 0o644)?;
    }
    t.total();
    let Some(blocked) = blocked else {
        child.disarm();
        return Ok(0);
    };
    let code = foreground::wait(child.pid, &child.pidfd, child.console.as_ref(), &blocked, None);
    child.disarm();
    code
}

/// What [`Plan::new`] works out before the clone.
struct Plan {
    args: ProcessArgs,
    /// The container's namespaces joined by the child through the init's pidfd.
    join: CloneFlags,
    enter_pid: bool,
    /// Rootless: the child joins the pid namespace itself and forks into it.
    fork_in_pid: bool,
    chroot: Option<PathBuf>,
    cgroup_dirs: Vec<PathBuf>,
    /// Our end of the console socket, when we relay the terminal.
    console_recv: Option<OwnedFd>,
    cpu_initial: Option<Vec<usize>>,
    oom_score_adj: Option<i32>,
}

impl Plan {
    fn new(st: &State, base: &ExecBase, p: &Process, opts: &ExecOptions, t: &mut crate::trace::Stages) -> Result<Plan> {
        let terminal = p.terminal().unwrap_or(false);
        if terminal && opts.detach && opts.console_socket.is_none() {
            return Err(Error::Process { field: "terminal".into(), reason: "cannot allocate a pseudo-TTY if skiff detaches without --console-socket".into() });
        }
        if !terminal && opts.console_socket.is_some() {
            return Err(Error::Process { field: "terminal".into(), reason: "--console-socket given but the process has no terminal".into() });
        }
        let exec = crate::process::ExecPlan::new(p, base.personality.as_ref()).map_err(process::as_process_error)?;
        let caps = crate::capabilities::CapPlan::new(p.capabilities().as_ref()).map_err(process::as_process_error)?;
        let lsm = crate::lsm::LsmPlan::new(p).map_err(process::as_process_error)?;
        t.mark("plan (process, capabilities)");
        let seccomp = compile_seccomp(base.seccomp.as_ref(), opts.seccomp_cache, t)?;
        let affinity = |which: &str, v: Option<&String>| -> Result<Option<Vec<usize>>> {
            v.map(|s| sys::parse_cpu_list(s).ok_or_else(|| Error::Process { field: format!("execCPUAffinity.{which}"), reason: format!("invalid CPU list {s:?}") })).transpose()
        };
        let aff = p.exec_cpu_affinity().as_ref();
        let cpu_initial = affinity("initial", aff.and_then(|a| a.initial().as_ref()))?;
        let cpu_final = affinity("final", aff.and_then(|a| a.cpu_affinity_final().as_ref()))?;
        let (mut join, in_userns) = namespaces_to_join(st, &base.namespaces);
        // An unprivileged runtime cannot enter the pid namespace from outside
        // its user namespace: the child does, once in it, and forks.
        let has_pid = base.namespaces.contains(&LinuxNamespaceType::Pid);
        let fork_in_pid = has_pid && !nix::unistd::geteuid().is_root();
        if fork_in_pid {
            join |= CloneFlags::CLONE_NEWPID;
        }
        let (console_socket, console_recv) = console_socket(opts.console_socket, terminal)?;
        let console_size = p.console_size().as_ref().map(|b| (b.height() as u16, b.width() as u16));
        Ok(Plan {
            args: ProcessArgs { exec, caps, seccomp, lsm, terminal, console_size, console_socket, preserve_fds: opts.preserve_fds, in_userns, cpu_affinity: cpu_final },
            join,
            enter_pid: has_pid && !fork_in_pid,
            fork_in_pid,
            chroot: (!base.namespaces.contains(&LinuxNamespaceType::Mount)).then(|| st.rootfs.clone()),
            cgroup_dirs: cgroup_dirs(st.member_dirs(), opts.cgroups)?,
            console_recv,
            cpu_initial,
            oom_score_adj: p.oom_score_adj(),
        })
    }
}

/// The container's namespaces but pid (entered by the runtime for its
/// children), and whether one of them is a user namespace other than ours
/// (joining one's own is refused by the kernel).
fn namespaces_to_join(st: &State, types: &[LinuxNamespaceType]) -> (CloneFlags, bool) {
    let mut flags = CloneFlags::empty();
    let mut in_userns = false;
    for &t in types {
        if t == LinuxNamespaceType::Pid {
            continue;
        }
        if t == LinuxNamespaceType::User {
            let ino = |p: String| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).ok();
            if ino(format!("/proc/{}/ns/user", st.pid)) == ino("/proc/self/ns/user".into()) {
                continue;
            }
            in_userns = true;
        }
        flags |= crate::namespaces::clone_flag(t);
    }
    (flags, in_userns)
}

/// The cgroup directories the process joins: the container's, or with
/// `--cgroup` the given sub-cgroups of them (`path` for every hierarchy,
/// `ctrl[,ctrl]:path` for those of the named controllers), which must exist.
fn cgroup_dirs(dirs: &[PathBuf], wanted: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = dirs.to_vec();
    for w in wanted {
        let (ctrls, sub) = match w.split_once(':') {
            Some((c, s)) => (Some(c.split(',').collect::<Vec<_>>()), s),
            None => (None, w.as_str()),
        };
        let rel = Path::new(sub.trim_start_matches('/'));
        if rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            return Err(Error::Process { field: "--cgroup".into(), reason: format!("{sub:?} must be a path below the container's cgroup") });
        }
        let mut matched = false;
        for (i, d) in dirs.iter().enumerate() {
            if ctrls.as_ref().is_some_and(|c| !c.iter().any(|c| crate::cgroups::hierarchy_has(d, c))) {
                continue;
            }
            let dir = d.join(rel);
            if !dir.is_dir() {
                return Err(Error::Process { field: "--cgroup".into(), reason: format!("{} does not exist", dir.display()) });
            }
            out[i] = dir;
            matched = true;
        }
        if !matched {
            return Err(Error::Process { field: "--cgroup".into(), reason: format!("no cgroup hierarchy of the container matches {w:?}") });
        }
    }
    Ok(out)
}

/// The exec'd process, killed (and reaped, if ours) unless disarmed.
struct Child {
    pid: Pid,
    pidfd: OwnedFd,
    ours: bool,
    console: Option<OwnedFd>,
    armed: bool,
}

impl Child {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.armed {
            let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
            if self.ours {
                let _ = nix::sys::wait::waitpid(self.pid, None);
            }
        }
    }
}

/// Clones the process, puts it in its cgroups and serves it until execve.
fn spawn(st: &State, base: &ExecBase, plan: Plan, init: OwnedFd, opts: &ExecOptions, t: &mut crate::trace::Stages) -> Result<Child> {
    let (parent_chan, child_chan) = channel::pair()?;
    let pid_guard = if plan.enter_pid { Some(crate::namespaces::ChildrenNsGuard::enter_pid_of(init.as_fd())?) } else { None };
    crate::exec_guard::record_runtime_binary();
    let flags = if opts.detach { libc::CLONE_PARENT as u64 } else { 0 };
    // On v1, as root, the process moves itself into the container's v1
    // cgroups (no grace-period wait, `cgroups::join_self`), born in the
    // cgroup2 one of a hybrid host when it can be.
    let self_join = !crate::cgroups::is_v2() && !plan.fork_in_pid && nix::unistd::geteuid().is_root();
    let join_cgroups = if self_join { plan.cgroup_dirs.clone() } else { Vec::new() };
    let mut args = ExecArgs { process: plan.args, init, join: plan.join, chroot: plan.chroot, fork: plan.fork_in_pid, join_cgroups, born_in_cgroup: false };
    if plan.fork_in_pid && !opts.detach {
        // The process will be our grandchild: become its reaper, to wait for it.
        // SAFETY: plain integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    // On v2 the process is born in the container's cgroup where it can be.
    let into = match plan.cgroup_dirs.as_slice() {
        [d] if crate::cgroups::is_v2() => open_dir(d),
        dirs if self_join => crate::cgroups::unified_dir(dirs).and_then(|d| open_dir(d)),
        _ => None,
    };
    let mut joined = into.is_some() || self_join;
    args.born_in_cgroup = into.is_some();
    let forked = match into.as_ref().map(|fd| sys::clone_process_into(flags, Some(fd.as_fd()))) {
        Some(Ok(f)) => f,
        _ => {
            joined = self_join;
            args.born_in_cgroup = false;
            sys::clone_process(flags).ctx(|| "clone the exec process".into())?
        }
    };
    let (pid, pidfd) = match forked {
        Forked::Child => {
            // The guard restores the runtime's pid namespace for children;
            // this process has no use for it.
            std::mem::forget(pid_guard);
            drop(parent_chan);
            crate::init::exec::run(args, child_chan)
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(pid_guard);
    drop(child_chan);
    drop(args);
    let mut child = Child { pid, pidfd, ours: !opts.detach, console: None, armed: true };
    crate::fault::point("exec:cloned");
    tracing::debug!(pid = pid.as_raw(), "exec process cloned");
    t.mark("clone");
    if let Some(cpus) = &plan.cpu_initial {
        sys::set_affinity(pid.as_raw(), cpus).map_err(|e| Error::io("process.execCPUAffinity.initial", e))?;
    }
    crate::process::set_oom_score_adj(pid, plan.oom_score_adj)?;
    if !joined {
        crate::cgroups::join_dirs(&plan.cgroup_dirs, pid)?;
    }
    send(&parent_chan, &ToChild::Go(Vec::new()))?;
    t.mark("cgroups joined");
    let forked = converse(&parent_chan, st, base, pid, t)?;
    t.mark("set-up in the container, execve");
    if let Some(forked) = forked {
        // The process is the child's child; the child has left.
        let fd = sys::pidfd_open(forked).ctx(|| "open a pidfd for the exec process".into())?;
        if child.ours {
            let _ = nix::sys::wait::waitpid(child.pid, None);
        }
        child.pid = forked;
        child.pidfd = fd;
    }
    if let Some(sock) = plan.console_recv {
        let mut buf = [0u8; 256];
        child.console = Some(crate::socket::recv_fd(sock.as_fd(), &mut buf).map(|(fd, _)| fd).map_err(|e| Error::Tty(format!("receive the pty master: {e}")))?);
    }
    Ok(child)
}

fn open_dir(d: &Path) -> Option<OwnedFd> {
    super::open_fd(d, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY).ok()
}

/// Serves the process until its execve closes the channel: its seccomp
/// notify fd to the listener, its errors. Returns the pid of the process
/// when the child forked it (rootless, into the pid namespace).
fn converse(chan: &Channel, st: &State, base: &ExecBase, mut pid: Pid, t: &crate::trace::Stages) -> Result<Option<Pid>> {
    let mut ready = false;
    let mut forked = None;
    loop {
        match chan.recv_in_parent()? {
            Some((ToParent::Stages(report), _)) => t.init_stages(&report),
            Some((ToParent::InitPid(p), _)) if forked.is_none() => {
                pid = Pid::from_raw(p);
                forked = Some(pid);
            }
            Some((ToParent::SeccompFd, Some(fd))) => {
                let s = base.seccomp.as_ref();
                let path = s.and_then(|s| s.listener_path().clone()).ok_or_else(|| Error::Process { field: "linux.seccomp.listenerPath".into(), reason: "SCMP_ACT_NOTIFY needs a listener path".into() })?;
                let meta = s.and_then(|s| s.listener_metadata().clone());
                let payload = seccomp_state(st, meta.as_deref(), fd.as_raw_fd(), pid.as_raw(), Status::Running);
                crate::socket::send_seccomp_notify(&path, fd.as_fd(), &payload)?;
            }
            Some((ToParent::Ready, _)) => ready = true,
            Some((ToParent::Error(msg), _)) => return Err(Error::Init(msg)),
            Some((m, _)) => return Err(Error::Init(format!("unexpected {m:?} from the exec process"))),
            None if ready => return Ok(forked),
            None => return Err(Error::Init("the exec process exited before it was ready".into())),
        }
    }
}
