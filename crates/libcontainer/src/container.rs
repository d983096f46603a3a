//! The container lifecycle, top to bottom: create, start, run, kill,
//! delete, state, list.
//!
//! `create` is the only step with a child process: the runtime prepares
//! everything it can (config validation, namespace plan, compiled seccomp
//! filter, cgroup), clones the init directly into its new namespaces — as a
//! child of *our caller* (CLONE_PARENT), so containerd-shim or conmon can
//! reap it, just as with runc — and talks to it over [`crate::channel`]
//! until it reports Ready. The init then blocks on `exec.fifo` until
//! `start` writes to it. No extra fork, no re-exec of the binary.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxNamespaceType;

use crate::channel::{self, ToChild, ToParent};
use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::init::InitArgs;
use crate::state::{self, ContainerDir, State, Status, Store};
use crate::sys::{self, Forked};

/// Options of `create` (and of `run`, which creates first).
pub struct CreateOptions<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub systemd_cgroup: bool,
    /// `run` in the foreground: the init stays our own child, so we can wait
    /// for it and relay its terminal.
    pub foreground: bool,
    /// Where compiled seccomp filters are kept between runs.
    pub seccomp_cache: Option<&'a Path>,
}

/// A container created by [`create`].
pub struct Created {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    pub dir: ContainerDir,
    pub state: State,
    /// The pty master, when `run` in the foreground allocated a terminal.
    pub console: Option<OwnedFd>,
}

/// Undoes a partial create: kills the init, removes the cgroup and the
/// state directory. Disarmed once the container is created.
struct Undo {
    pidfd: Option<OwnedFd>,
    cgroup: Option<(PathBuf, bool, String, Vec<PathBuf>)>,
    dir: Option<ContainerDir>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(fd) = self.pidfd.take() {
            let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            let _ = sys::pidfd_wait_exit(fd.as_fd(), 5000);
        }
        if let Some((path, systemd, id, dirs)) = self.cgroup.take() {
            if let Err(e) = crate::cgroups::remove(&path, systemd, &id, &dirs) {
                tracing::warn!("cleanup: {e}");
            }
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}

pub fn create(store: &Store, opts: &CreateOptions) -> Result<Created> {
    let cfg = Config::load(opts.bundle)?;
    let linux = cfg.linux();
    let process = cfg.process();
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !opts.foreground {
        return Err(Error::config("process.terminal", "cannot allocate a pseudo-TTY without --console-socket"));
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(Error::config("process.terminal", "--console-socket given but process.terminal is false"));
    }

    // Everything the init needs, computed before the clone.
    let ns = crate::namespaces::Plan::new(linux)?;
    let new_cgroupns = linux.namespaces().iter().flatten().any(|n| n.typ() == LinuxNamespaceType::Cgroup && n.path().is_none());
    let exec = crate::process::ExecPlan::new(process, linux.personality().as_ref())?;
    let caps = crate::capabilities::CapPlan::new(process.capabilities().as_ref())?;
    let seccomp = match linux.seccomp() {
        Some(s) => Some(match opts.seccomp_cache {
            Some(dir) => crate::seccomp::compile_cached(s, dir),
            None => crate::seccomp::compile(s),
        }
        .map_err(|e| Error::Seccomp(e.to_string()))?),
        None => None,
    };
    let listener = linux.seccomp().as_ref().and_then(|s| s.listener_path().clone());
    if seccomp.as_ref().is_some_and(|f| f.needs_listener) && listener.is_none() {
        return Err(Error::config("linux.seccomp.listenerPath", "SCMP_ACT_NOTIFY needs a listener path"));
    }
    let hooks = cfg.spec.hooks().clone().unwrap_or_default();
    let cgroup_path = crate::cgroups::resolve_path(linux.cgroups_path().as_deref(), opts.id, opts.systemd_cgroup);
    let device_list = crate::devices::plan(linux)?;
    let rootfs_plan = crate::rootfs::RootfsPlan {
        rootfs: cfg.rootfs.clone(),
        bundle: cfg.bundle.clone(),
        mounts: cfg.spec.mounts().clone().unwrap_or_default(),
        propagation: linux.rootfs_propagation().as_deref().filter(|p| !p.is_empty()).and_then(crate::rootfs::propagation_flag),
        readonly: cfg.spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false),
        no_pivot: opts.no_pivot,
        devices: device_list.clone(),
        masked: linux.masked_paths().clone().unwrap_or_default(),
        readonly_paths: linux.readonly_paths().clone().unwrap_or_default(),
        in_userns: ns.new_user || ns.unshare_after_join(),
        new_cgroupns,
        cgroup_dirs: crate::cgroups::container_dirs(&cgroup_path),
        idmap_trees: crate::rootfs::idmapped_trees(cfg.spec.mounts().as_deref().unwrap_or(&[]), &cfg.bundle)?,
    };
    let mut sysctl: Vec<(String, String)> = linux.sysctl().clone().unwrap_or_default().into_iter().collect();
    sysctl.sort();

    // The state directory reserves the id.
    let dir = store.create(opts.id)?;
    let fifo_path = dir.fifo_path();
    let mut undo = Undo { pidfd: None, cgroup: None, dir: Some(dir) };
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o600)).ctx(|| format!("create {}", fifo_path.display()))?;
    let fifo = open_fd(&fifo_path, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;

    // The console socket: the caller's, or ours when `run` relays a terminal.
    let (console_socket, console_recv) = if let Some(p) = opts.console_socket {
        let s = nix::sys::socket::socket(nix::sys::socket::AddressFamily::Unix, nix::sys::socket::SockType::Stream, nix::sys::socket::SockFlag::SOCK_CLOEXEC, None)
            .ctx(|| "create console socket".into())?;
        let addr = nix::sys::socket::UnixAddr::new(p).ctx(|| format!("console socket path {}", p.display()))?;
        nix::sys::socket::connect(s.as_raw_fd(), &addr).ctx(|| format!("connect to console socket {}", p.display()))?;
        (Some(s), None)
    } else if terminal {
        let (a, b) = nix::sys::socket::socketpair(nix::sys::socket::AddressFamily::Unix, nix::sys::socket::SockType::Stream, None, nix::sys::socket::SockFlag::SOCK_CLOEXEC)
            .ctx(|| "create console socket pair".into())?;
        (Some(b), Some(a))
    } else {
        (None, None)
    };

    let (parent_chan, child_chan) = channel::pair()?;
    let args = InitArgs {
        id: opts.id.to_string(),
        rootfs: rootfs_plan,
        exec,
        caps,
        seccomp,
        hostname: cfg.spec.hostname().clone().filter(|h| !h.is_empty()),
        domainname: cfg.spec.domainname().clone().filter(|h| !h.is_empty()),
        sysctl,
        terminal,
        console_size: process.console_size().as_ref().map(|b| (b.height() as u16, b.width() as u16)),
        console_socket,
        fifo,
        runtime_hooks: hooks.prestart().as_ref().is_some_and(|h| !h.is_empty()) || hooks.create_runtime().as_ref().is_some_and(|h| !h.is_empty()),
        create_container_hooks: hooks.create_container().clone().unwrap_or_default(),
        start_container_hooks: hooks.start_container().clone().unwrap_or_default(),
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.preserve_fds,
        new_cgroupns,
        ns,
    };

    // The clone. The cgroup namespace is unshared by the init once it is in
    // its cgroup, so that the namespace's root is the container's cgroup.
    let mut flags = args.ns.flags_for_clone() - CloneFlags::CLONE_NEWCGROUP;
    if !opts.foreground {
        flags |= CloneFlags::from_bits_retain(libc::CLONE_PARENT);
    }
    let (extra_fork, new_user, new_pid) = (args.ns.fork_after_unshare(), args.ns.new_user, args.ns.new_pid);
    let oom_score_adj = args.exec.oom_score_adj;
    if extra_fork && opts.foreground {
        // The init will be our grandchild: become its reaper so that we can
        // wait for it once its parent has left.
        // SAFETY: plain integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let ns_guard = args.ns.enter_for_children()?;
    // The init's final exec compares against this (docs/security.md).
    crate::exec_guard::record_runtime_binary();
    let forked = sys::clone_process(flags.bits() as u32 as u64).ctx(|| "clone the container init".into())?;
    let (pid, pidfd) = match forked {
        Forked::Child => {
            // The guard restores the *runtime's* namespaces; in the init,
            // setns back to the host's time namespace would undo ours.
            std::mem::forget(ns_guard);
            drop(parent_chan);
            if let Some(d) = undo.dir.as_mut() {
                d.close_lock_in_child();
            }
            crate::init::run(args, child_chan)
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(ns_guard);
    drop(child_chan);
    drop(args);
    undo.pidfd = Some(pidfd);
    tracing::debug!(pid = pid.as_raw(), "init cloned");
    let pid = if extra_fork {
        // The clone forks once more and hands over to its child.
        let init = match parent_chan.recv_in_parent()? {
            Some((ToParent::InitPid(p), _)) => Pid::from_raw(p),
            Some((ToParent::Error(msg), _)) => return Err(Error::Init(msg)),
            _ => return Err(Error::Init("container init exited before it was ready".into())),
        };
        if opts.foreground {
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        undo.pidfd = Some(sys::pidfd_open(init).ctx(|| "open a pidfd for the container init".into())?);
        init
    } else {
        pid
    };

    // Id maps and cgroup before the init runs any of the container's code.
    if new_user {
        write_id_maps(pid, linux)?;
    }

    let init_start_time = sys::proc_start_time(pid.as_raw()).map(|(t, _)| t).unwrap_or(0);
    let st = State {
        oci_version: cfg.spec.version().clone(),
        id: opts.id.to_string(),
        pid: pid.as_raw(),
        bundle: cfg.bundle.clone(),
        rootfs: cfg.rootfs.clone(),
        created: state::now_rfc3339(),
        owner: String::new(),
        annotations: cfg.spec.annotations().clone().unwrap_or_default(),
        init_start_time,
        cgroup_dirs: crate::cgroups::host_dirs(&cgroup_path, opts.systemd_cgroup),
        cgroup_path,
        systemd_cgroup: opts.systemd_cgroup,
        own_pid_ns: new_pid,
        poststop: hooks.poststop().clone().unwrap_or_default(),
        poststart: hooks.poststart().clone().unwrap_or_default(),
    };
    let creating = serde_json::to_vec(&st.to_oci(Status::Creating)).expect("json");
    crate::process::set_oom_score_adj(pid, oom_score_adj)?;
    send(&parent_chan, &ToChild::Go(creating.clone()))?;

    // The cgroup, while the init mounts its rootfs. On a v1 host the init
    // is moved in by hand and released at once, and the manager is built
    // and the resources applied while it goes on (before Ready, so always
    // before the container's process can run). With createContainer hooks
    // — user code in the init — the limits are applied first.
    undo.cgroup = Some((st.cgroup_path.clone(), opts.systemd_cgroup, opts.id.to_string(), st.cgroup_dirs.clone()));
    // A failure here may stem from the init having died: prefer its error.
    let or_child = |e: Error| parent_chan.pending_error().map(Error::Init).unwrap_or(e);
    let resources = crate::cgroups::with_device_rules(linux.resources().as_ref(), &device_list);
    let early_release = !opts.systemd_cgroup && !crate::cgroups::is_v2() && hooks.create_container().as_ref().is_none_or(|h| h.is_empty());
    if early_release {
        crate::cgroups::join_v1_dirs(&st.cgroup_dirs, pid).map_err(or_child)?;
        send(&parent_chan, &ToChild::CgroupReady(false))?;
    }
    let cgroup_mgr = crate::cgroups::manager(&st.cgroup_path, opts.systemd_cgroup, opts.id)?;
    if !early_release {
        crate::cgroups::join(&cgroup_mgr, pid, &st.cgroup_path).map_err(or_child)?;
    }
    crate::cgroups::apply(&cgroup_mgr, Some(&resources), &st.cgroup_path).map_err(or_child)?;
    if early_release {
        crate::cgroups::join_v1_devices(&st.cgroup_dirs, pid).map_err(or_child)?;
        send(&parent_chan, &ToChild::CgroupDone)?;
    } else {
        send(&parent_chan, &ToChild::CgroupReady(true))?;
    }

    loop {
        match parent_chan.recv_in_parent()? {
            Some((ToParent::RunHooks, _)) => {
                crate::hooks::run_all("prestart", hooks.prestart().as_deref().unwrap_or(&[]), &creating)?;
                crate::hooks::run_all("createRuntime", hooks.create_runtime().as_deref().unwrap_or(&[]), &creating)?;
                send(&parent_chan, &ToChild::HooksDone)?;
            }
            Some((ToParent::SeccompFd, Some(fd))) => {
                let path = listener.as_ref().expect("checked above");
                let payload = seccomp_state(&st, &cfg, fd.as_raw_fd());
                crate::socket::send_seccomp_notify(path, fd.as_fd(), &payload).ctx(|| format!("send the seccomp fd to {}", path.display()))?;
            }
            Some((ToParent::SeccompFd, None)) => return Err(Error::Init("seccomp fd message without a descriptor".into())),
            Some((ToParent::Ready, _)) => break,
            Some((ToParent::InitPid(_), _)) => return Err(Error::Init("unexpected second init pid".into())),
            Some((ToParent::Error(msg), _)) => return Err(Error::Init(msg)),
            None => return Err(Error::Init("container init exited before it was ready".into())),
        }
    }

    let console = match console_recv {
        Some(sock) => {
            let mut buf = [0u8; 256];
            Some(crate::socket::recv_fd(sock.as_fd(), &mut buf).map(|(fd, _)| fd).map_err(|e| Error::Tty(format!("receive the pty master: {e}")))?)
        }
        None => None,
    };
    // Until both files are written, a failure still undoes everything.
    undo.dir.as_ref().expect("set above").save(&st)?;
    if let Some(p) = opts.pid_file {
        state::write_atomic(p, pid.as_raw().to_string().as_bytes(), 0o644)?;
    }
    let dir = undo.dir.take().expect("set above");
    let pidfd = undo.pidfd.take().expect("set above");
    undo.cgroup = None;
    Ok(Created { pid, pidfd, dir, state: st, console })
}

/// Sends to the init; if the init has gone, its own error (queued on the
/// channel) is the one worth reporting.
fn send(chan: &channel::Channel, m: &ToChild) -> Result<()> {
    chan.send_to_child(m).map_err(|e| chan.pending_error().map(Error::Init).unwrap_or(e))
}

fn open_fd(p: &Path, flags: OFlag) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(p, flags | OFlag::O_CLOEXEC, Mode::empty()).ctx(|| format!("open {}", p.display()))?;
    // SAFETY: `open` just returned this descriptor.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

fn write_id_maps(pid: Pid, linux: &oci_spec::runtime::Linux) -> Result<()> {
    let uid = crate::namespaces::id_map_text(linux.uid_mappings());
    let gid = crate::namespaces::id_map_text(linux.gid_mappings());
    std::fs::write(format!("/proc/{pid}/gid_map"), gid).ctx(|| "linux.gidMappings: write gid_map".into())?;
    std::fs::write(format!("/proc/{pid}/uid_map"), uid).ctx(|| "linux.uidMappings: write uid_map".into())?;
    Ok(())
}

/// The ContainerProcessState sent with a seccomp notify fd.
fn seccomp_state(st: &State, cfg: &Config, fd: i32) -> Vec<u8> {
    let meta = cfg.linux().seccomp().as_ref().and_then(|s| s.listener_metadata().clone()).unwrap_or_default();
    serde_json::to_vec(&serde_json::json!({
        "ociVersion": st.oci_version,
        "fds": ["seccompFd"],
        "pid": st.pid,
        "metadata": meta,
        "state": st.to_oci(Status::Creating),
        "fdIndex": fd,
    }))
    .expect("json")
}

/// `start`: releases a created container's init and runs poststart hooks.
pub fn start(store: &Store, id: &str) -> Result<()> {
    let dir = store.open(id)?;
    let st = dir.load()?;
    start_locked(&dir, &st)
}

fn start_locked(dir: &ContainerDir, st: &State) -> Result<()> {
    match st.status(&dir.path) {
        Status::Created => {}
        Status::Stopped => return Err(Error::BadState("cannot start a container that has stopped".into())),
        Status::Running => return Err(Error::BadState("cannot start an already running container".into())),
        s => return Err(Error::BadState(format!("cannot start a container in the {s} state"))),
    }
    let fifo = dir.fifo_path();
    let fd = match nix::fcntl::open(&fifo, OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENXIO) => return Err(Error::BadState("cannot start a container that has stopped".into())),
        Err(e) => return Err(Error::errno(format!("open {}", fifo.display()), e)),
    };
    // SAFETY: `open` just returned this descriptor.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // Opened before the release, so that an init dying right away is seen.
    let pidfd = init_pidfd(st);
    nix::unistd::write(&fd, b"0").ctx(|| "release the container init".into())?;
    let _ = std::fs::remove_file(&fifo);
    // The init holds the fifo's read end (close-on-exec) until it execs the
    // container process: when our write end reports POLLERR (no reader
    // left), the process has started — or the init died, e.g. of a failed
    // startContainer hook. Only then do poststart hooks run.
    let mut fds = [libc::pollfd { fd: fd.as_raw_fd(), events: 0, revents: 0 }, libc::pollfd { fd: pidfd.as_ref().map_or(-1, |p| p.as_raw_fd()), events: libc::POLLIN, revents: 0 }];
    loop {
        // SAFETY: a valid array of two pollfds (a negative fd is ignored).
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    drop(fd);
    // An init that died before execve still carries its own name.
    if fds[1].revents != 0 && sys::proc_comm(st.pid).as_deref() == Some(crate::init::INIT_NAME) {
        return Err(Error::Init("the container process failed before exec (see its stderr)".into()));
    }
    let json = serde_json::to_vec(&st.to_oci(Status::Running)).expect("json");
    for w in crate::hooks::run_all_warn("poststart", &st.poststart, &json) {
        tracing::warn!("{w}");
    }
    Ok(())
}

/// `state`: the runtime-spec state object.
pub fn state(store: &Store, id: &str) -> Result<serde_json::Value> {
    let dir = store.peek(id)?;
    let st = dir.load()?;
    Ok(st.to_oci(st.status(&dir.path)))
}

/// `list`: every container with its status.
pub fn list(store: &Store) -> Result<Vec<(State, Status)>> {
    let mut out = Vec::new();
    for id in store.list()? {
        if let Ok(dir) = store.peek(&id) {
            if let Ok(st) = dir.load() {
                let s = st.status(&dir.path);
                out.push((st, s));
            }
        }
    }
    Ok(out)
}

/// A pidfd for the container's init, if it is still the same process.
fn init_pidfd(st: &State) -> Option<OwnedFd> {
    let fd = sys::pidfd_open(Pid::from_raw(st.pid)).ok()?;
    // Checked after opening: from now on the pidfd cannot be recycled.
    match sys::proc_start_time(st.pid) {
        Some((t, s)) if t == st.init_start_time && s != 'Z' && s != 'X' => Some(fd),
        _ => None,
    }
}

/// `kill`: sends `sig` to the init, or with `all` to every process in the
/// container's cgroup.
pub fn kill(store: &Store, id: &str, sig: i32, all: bool) -> Result<()> {
    let dir = store.peek(id)?;
    let st = dir.load()?;
    let status = st.status(&dir.path);
    if all {
        if status == Status::Stopped && !cgroup_has_pids(&st) {
            return Err(Error::NotRunning);
        }
        for p in crate::cgroups::pids(&st.cgroup_path, st.systemd_cgroup, &st.id, &st.cgroup_dirs)? {
            // SAFETY: plain integer arguments (any signal number, real-time ones included).
            unsafe { libc::kill(p.as_raw(), sig) };
        }
        return Ok(());
    }
    if status == Status::Stopped {
        return Err(Error::NotRunning);
    }
    let fd = init_pidfd(&st).ok_or(Error::NotRunning)?;
    sys::pidfd_send_signal(fd.as_fd(), sig).map_err(|e| if e.raw_os_error() == Some(libc::ESRCH) { Error::NotRunning } else { Error::io("kill", e) })
}

fn cgroup_has_pids(st: &State) -> bool {
    crate::cgroups::pids(&st.cgroup_path, st.systemd_cgroup, &st.id, &st.cgroup_dirs).is_ok_and(|p| !p.is_empty())
}

/// `delete`: removes a stopped (or created) container; `force` kills a
/// running one first.
pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    let dir = store.open(id)?;
    let st = dir.load()?;
    match st.status(&dir.path) {
        Status::Stopped => {}
        // A created container is deleted like runc and crun do (containerd's
        // shim relies on it), though the spec's wording asks for stopped.
        Status::Created | Status::Creating => kill_and_wait(&st),
        s if force => {
            if s == Status::Paused {
                let _ = thaw(&st);
            }
            kill_and_wait(&st)
        }
        s => return Err(Error::BadState(format!("cannot delete container {id} that is not stopped: {s}"))),
    }
    destroy(dir, &st)
}

fn thaw(st: &State) -> Result<()> {
    let mgr = crate::cgroups::manager(&st.cgroup_path, st.systemd_cgroup, &st.id)?;
    use libcgroups::common::CgroupManager;
    mgr.freeze(libcgroups::common::FreezerState::Thawed).map_err(|e| Error::Cgroup(e.to_string()))
}

/// SIGKILLs the init (and, without a pid namespace of its own, everything
/// in the cgroup) and waits on its pidfd until it is gone: no polling loop.
fn kill_and_wait(st: &State) {
    if !st.own_pid_ns {
        if let Ok(pids) = crate::cgroups::pids(&st.cgroup_path, st.systemd_cgroup, &st.id, &st.cgroup_dirs) {
            for p in pids {
                let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
    if let Some(fd) = init_pidfd(st) {
        let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        let _ = sys::pidfd_wait_exit(fd.as_fd(), 10_000);
    }
}

/// Removes what is left of a stopped container and runs poststop hooks.
fn destroy(dir: ContainerDir, st: &State) -> Result<()> {
    let r = crate::cgroups::remove(&st.cgroup_path, st.systemd_cgroup, &st.id, &st.cgroup_dirs);
    let json = serde_json::to_vec(&st.to_oci(Status::Stopped)).expect("json");
    for w in crate::hooks::run_all_warn("poststop", &st.poststop, &json) {
        tracing::warn!("{w}");
    }
    dir.remove()?;
    r
}

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
