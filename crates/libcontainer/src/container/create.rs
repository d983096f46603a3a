//! `create`: from a bundle to an init blocked on `exec.fifo`, in the order
//! [`create`] calls the steps:
//! 1. [`Plan::new`] works out from the config all that the init and the
//!    runtime will need, before anything is made on the host;
//! 2. [`reserve`] makes the state directory (which reserves the id), the
//!    cgroup directories (on v1, only recorded: see step 4), `exec.fifo` and
//!    the console socket, each put in the [`Undo`] guard as it is made;
//! 3. [`clone_init`] clones the init into its namespaces (with the extra
//!    fork where there is one);
//! 4. the id maps, the state and `Go`, then, while the init mounts its
//!    rootfs, the v1 cgroup directories and [`set_up_cgroup`];
//! 5. [`converse`] serves the init until it is Ready;
//! 6. [`finish`] writes the state and pid files and disarms the guard.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{Hooks, LinuxNamespaceType, LinuxSeccomp};

use super::open_fd;
use crate::channel::{self, Channel, ToChild, ToParent};
use crate::config::Config;
use crate::devices::Device;
use crate::error::{Context, Error, Result};
use crate::init::{InitArgs, ProcessArgs};
use crate::rootfs::RootfsPlan;
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
    /// The caller's NOTIFY_SOCKET: the container gets a socket of its own
    /// that `start` passes on ([`crate::notify`]).
    pub notify_socket: Option<&'a Path>,
    /// Descriptors passed by socket activation (LISTEN_FDS, from fd 3, before
    /// the `preserve_fds` ones): the process gets them with LISTEN_FDS=n and
    /// LISTEN_PID=1, as with runc.
    pub listen_fds: u32,
    /// Rootless (runc's `--rootless`): the container gets a cgroup only
    /// where the user has been delegated one.
    pub rootless: bool,
    /// `run`: `start` follows at once.
    pub then_start: bool,
}

/// A container created by [`create`].
pub struct Created {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    pub dir: ContainerDir,
    pub state: State,
    /// The pty master, when `run` in the foreground allocated a terminal.
    pub console: Option<OwnedFd>,
    /// `run`: the channel to the init, open until the release (its closing
    /// before would tell the init that we died).
    _chan: Option<Channel>,
}

/// Undoes a partial create: kills the init, removes the cgroup and the
/// state directory. Disarmed once the container is created.
struct Undo {
    pidfd: Option<OwnedFd>,
    /// The rootfs and the host mounts below it before `create`, when the
    /// container shares the host's mount namespace.
    host_mounts: Option<(PathBuf, Vec<u64>)>,
    cgroup: Option<UndoCgroup>,
    dir: Option<ContainerDir>,
}

/// The cgroup part of [`Undo`]: what create made, to be removed.
struct UndoCgroup {
    path: PathBuf,
    systemd: bool,
    id: String,
    dirs: Vec<PathBuf>,
    created: Vec<PathBuf>,
    foreign: Vec<(i32, u64)>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(fd) = self.pidfd.take() {
            let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            let _ = sys::pidfd_wait_exit(fd.as_fd(), 5000);
        }
        if let Some((rootfs, before)) = self.host_mounts.take() {
            crate::rootfs::unmount_new(&rootfs, &before);
        }
        if let Some(c) = self.cgroup.take() {
            let owned = crate::cgroups::Owned { path: &c.path, systemd: c.systemd, id: &c.id, dirs: &c.dirs, created: Some(&c.created), foreign: &c.foreign };
            if let Err(e) = owned.remove(crate::cgroups::Scope { init: None, own_pid_ns: false }) {
                tracing::warn!("cleanup: {e}");
            }
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
    }
}

/// `create`: from the bundle to an init that waits on `exec.fifo` for
/// `start`. On any failure the undo guard removes what was made. SIGTERM,
/// SIGINT and SIGHUP are held meanwhile, so that skiff is never stopped
/// half-way by them; one that came (a caller giving up) removes the
/// container again — in the foreground `run`, they are for the container.
pub fn create(store: &Store, opts: &CreateOptions) -> Result<Created> {
    let held = super::Termination::hold()?;
    let c = create_steps(store, opts)?;
    match held.pending() {
        Some(sig) if !opts.foreground => {
            super::kill_and_wait(&c.state);
            let _ = super::destroy(c.dir, &c.state);
            Err(Error::Interrupted(sig))
        }
        _ => Ok(c),
    }
}

fn create_steps(store: &Store, opts: &CreateOptions) -> Result<Created> {
    let mut t = crate::trace::Stages::start("create");
    let cfg = Config::load(opts.bundle)?;
    t.mark("config load");
    let (plan, init_args) = Plan::new(&cfg, opts, &mut t)?;
    let Reserved { mut undo, fifo, console_socket, console_recv, notify_dir, state: mut st, late_dirs, unified_leaf } = reserve(store, opts, &cfg, &plan, &mut t)?;
    // On v2 the init is born in its cgroup (on a hybrid host, in its
    // directory of the cgroup2 hierarchy when it joins the others itself).
    let v2_leaf = (!opts.systemd_cgroup && crate::cgroups::is_v2()).then(|| undo.cgroup.as_ref().and_then(|c| c.dirs.first().and_then(|d| crate::cgroups::prepare_v2_leaf(d)))).flatten();
    let mut args = init_args(fifo, console_socket, notify_dir)?;
    if plan.init_joins {
        args.join_cgroups = st.cgroup_dirs.clone();
    }
    let (pid, chan, in_cgroup) = clone_init(args, &mut undo, opts.foreground, v2_leaf.or(unified_leaf))?;
    t.mark("clone");

    // Id maps and cgroup before the init runs any of the container's code.
    if plan.new_user {
        write_id_maps(pid, cfg.linux())?;
        t.mark("id maps");
    }
    st.pid = pid.as_raw();
    let creating = serde_json::to_vec(&st.to_oci(Status::Creating)).expect("json");
    crate::process::set_oom_score_adj(pid, plan.oom_score_adj)?;
    send(&chan, &ToChild::Go(creating.clone()))?;
    t.mark("init released");
    if let Some(planned) = late_dirs {
        let ucg = undo.cgroup.as_mut().expect("set by reserve");
        crate::cgroups::create_dirs(&ucg.dirs, &planned, &mut ucg.created)?;
        st.cgroup_created = Some(ucg.created.clone());
        t.mark("cgroup dirs");
    }
    set_up_cgroup(&chan, opts, &plan, &st, in_cgroup)?;
    t.mark("cgroup (join, limits)");
    // The pid is saved once the init has what it waits for from us (its
    // cgroup), while it mounts: until it has heard from us again it runs
    // none of the container's code, and should we die before, its channel
    // closes and it exits by itself; the directories made so far are
    // recorded (`cgroup_created`) for `delete` to remove.
    st.init_start_time = sys::proc_start_time(pid.as_raw()).map(|(t, _)| t).unwrap_or(0);
    undo.dir.as_ref().expect("set by reserve").save(&st)?;
    crate::fault::point("create:cloned");
    t.mark("state saved");
    crate::fault::point("create:cgroup");
    converse(&chan, &cfg, &plan, (undo.dir.as_ref().expect("set by reserve"), &st), &creating, &t)?;
    t.mark("init set-up (rootfs, hooks, pivot_root, process)");
    crate::fault::point("create:ready");
    let created = finish(opts, &mut undo, st, console_recv, chan);
    t.mark("state and pid file written");
    t.total();
    created
}

/// What `create` works out from the config before it makes anything on the
/// host, for the runtime's own steps. What the init is handed comes with it
/// from [`Plan::new`], as a closure that takes what is made once the id is
/// reserved (`exec.fifo`, the console socket, the notify directory).
struct Plan {
    terminal: bool,
    /// Where a seccomp notify fd is sent.
    listener: Option<PathBuf>,
    hooks: Hooks,
    /// The configured cgroup, resolved.
    cgroup_path: PathBuf,
    cgroup_dirs: Vec<(String, PathBuf)>,
    /// Rootless without a delegated cgroup (and no limits asked): none.
    no_cgroup: bool,
    /// What the cgroup gets: `linux.resources` with the device rules every
    /// container needs (none rootless: an unprivileged user can neither load
    /// the v2 device program nor write v1 rules, and its devices are binds of
    /// the host's anyway). Applied by `set_up_cgroup`, recorded in the state.
    resources: oci_spec::runtime::LinuxResources,
    /// The host's mounts below the rootfs, without a mount namespace.
    host_mounts: Option<Vec<u64>>,
    new_user: bool,
    new_pid: bool,
    oom_score_adj: Option<i32>,
    /// The init moves itself into its v1 cgroup (`InitArgs::join_cgroups`).
    init_joins: bool,
}

impl Plan {
    /// Validates the config and computes everything the init needs. Nothing
    /// here needs undoing: besides reading, it only opens descriptors (bind
    /// sources, id-mapped trees) and may fill the seccomp cache.
    fn new(cfg: &Config, opts: &CreateOptions, t: &mut crate::trace::Stages) -> Result<(Plan, impl MakeInitArgs)> {
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
        let mut exec = crate::process::ExecPlan::new(process, linux.personality().as_ref())?;
        exec.add_env(&extra_env(opts))?;
        let preserve_fds = opts.listen_fds + opts.preserve_fds;
        let caps = crate::capabilities::CapPlan::new(process.capabilities().as_ref())?;
        let lsm = crate::lsm::LsmPlan::new(process)?;
        no_pivot_allowed(opts, &ns, &caps)?;
        t.mark("plan (namespaces, process, capabilities)");
        let seccomp = compile_seccomp(linux.seccomp().as_ref(), opts.seccomp_cache, t)?;
        let listener = linux.seccomp().as_ref().and_then(|s| s.listener_path().clone());
        if seccomp.as_ref().is_some_and(|f| f.needs_listener) && listener.is_none() {
            return Err(Error::config("linux.seccomp.listenerPath", "SCMP_ACT_NOTIFY needs a listener path"));
        }
        let hooks = cfg.spec.hooks().clone().unwrap_or_default();
        let cgroup_path = crate::cgroups::resolve_path(linux.cgroups_path().as_deref(), opts.id, opts.systemd_cgroup)?;
        crate::cgroups::check(linux.resources().as_ref())?;
        let cgroup_dirs = crate::cgroups::container_dirs(&cgroup_path, opts.systemd_cgroup);
        let no_cgroup = rootless_without_cgroup(linux, opts, &cgroup_dirs)?;
        let cgroup_dirs = if no_cgroup { Vec::new() } else { cgroup_dirs };
        let devices = crate::devices::plan(linux)?;
        // Without a mount namespace of its own the container's mounts land on
        // the host: those already below the rootfs are recorded, so that
        // `delete` removes exactly the ones skiff made.
        let new_mountns = linux.namespaces().iter().flatten().any(|n| n.typ() == LinuxNamespaceType::Mount);
        let host_mounts = (!new_mountns).then(|| crate::rootfs::mounts_under(&cfg.rootfs).into_iter().map(|(id, _)| id).collect());
        let rootfs = rootfs_plan(cfg, opts, &ns, new_cgroupns, new_mountns, &cgroup_dirs, &devices)?;
        let mut sysctl: Vec<(String, String)> = linux.sysctl().clone().unwrap_or_default().into_iter().collect();
        sysctl.sort();
        t.mark("plan (cgroup, devices, rootfs)");

        let id = opts.id.to_string();
        let no_new_keyring = opts.no_new_keyring;
        let release_while_waiting = !opts.then_start;
        let hostname = cfg.spec.hostname().clone().filter(|h| !h.is_empty());
        let domainname = cfg.spec.domainname().clone().filter(|h| !h.is_empty());
        let console_size = process.console_size().as_ref().map(|b| (b.height() as u16, b.width() as u16));
        let runtime_hooks = hooks.prestart().as_ref().is_some_and(|h| !h.is_empty()) || hooks.create_runtime().as_ref().is_some_and(|h| !h.is_empty());
        let create_container_hooks = hooks.create_container().clone().unwrap_or_default();
        let start_container_hooks = hooks.start_container().clone().unwrap_or_default();
        let resources = if opts.rootless {
            let mut r = linux.resources().clone().unwrap_or_default();
            r.set_devices(None);
            r
        } else {
            crate::cgroups::with_device_rules(linux.resources().as_ref(), &devices)
        };
        let in_userns = rootfs.in_userns;
        // Only where the init can write the host's cgroup files as the
        // runtime does: as root, in the runtime's user namespace, before any
        // user code (a createContainer hook) runs in it.
        let init_joins = crate::cgroups::v1_by_hand(opts.systemd_cgroup)
            && !cgroup_dirs.is_empty()
            && !ns.new_user
            && !ns.unshare_after_join()
            && !in_userns
            && create_container_hooks.is_empty()
            && nix::unistd::geteuid().is_root();
        let plan = Plan { terminal, listener, hooks, cgroup_path, cgroup_dirs, no_cgroup, resources, host_mounts, new_user: ns.new_user, new_pid: ns.new_pid, oom_score_adj: exec.oom_score_adj, init_joins };
        let mut rootfs = rootfs;
        let init_args = move |fifo, console_socket, notify_dir: Option<PathBuf>| {
            if let Some(dir) = notify_dir {
                add_notify_mount(&mut rootfs, &dir)?;
            }
            Ok(InitArgs {
            id,
            rootfs,
            process: ProcessArgs { exec, caps, seccomp, lsm, terminal, console_size, console_socket, preserve_fds, in_userns, cpu_affinity: None },
            hostname,
            domainname,
            sysctl,
            fifo,
            runtime_hooks,
            create_container_hooks,
            start_container_hooks,
            no_new_keyring,
            new_cgroupns,
            ns,
            release_while_waiting,
            join_cgroups: Vec::new(),
            born_in_cgroup: false,
        })
        };
        Ok((plan, init_args))
    }
}

/// What [`Plan::new`] hands back for the init: given `exec.fifo`, the
/// console socket and the notify directory (made once the id is reserved),
/// the init's arguments.
trait MakeInitArgs: FnOnce(OwnedFd, Option<OwnedFd>, Option<PathBuf>) -> Result<InitArgs> {}
impl<F: FnOnce(OwnedFd, Option<OwnedFd>, Option<PathBuf>) -> Result<InitArgs>> MakeInitArgs for F {}

/// Rootless, the container gets a cgroup only where this user has been
/// delegated one (as runc's `--rootless auto`): without, a config that
/// asks for limits is refused, and one that does not runs without.
fn rootless_without_cgroup(linux: &oci_spec::runtime::Linux, opts: &CreateOptions, dirs: &[(String, PathBuf)]) -> Result<bool> {
    let unified = linux.resources().as_ref().and_then(|r| r.unified().as_ref()).is_some_and(|u| !u.is_empty());
    if opts.rootless && unified && !nix::unistd::geteuid().is_root() {
        return Err(Error::config("linux.resources.unified", "cannot be applied by an unprivileged user (libcgroups writes it after the device program, which needs privileges)"));
    }
    if !opts.rootless || opts.systemd_cgroup || crate::cgroups::delegated(dirs) {
        return Ok(false);
    }
    if crate::cgroups::requests_limits(linux.resources().as_ref()) {
        let where_ = dirs.first().map(|(_, d)| d.display().to_string()).unwrap_or_default();
        return Err(Error::config("linux.resources", format!("cannot apply limits: running rootless, and the container's cgroup ({where_}) is not delegated to this user")));
    }
    tracing::debug!("rootless: the cgroup is not delegated and no limit is asked for: the container gets no cgroup");
    Ok(true)
}

/// What the runtime adds to the process's environment: NOTIFY_SOCKET and
/// socket activation's LISTEN_FDS, as runc does.
fn extra_env(opts: &CreateOptions) -> Vec<String> {
    let mut env = Vec::new();
    if opts.notify_socket.is_some() {
        env.push(format!("NOTIFY_SOCKET={}", crate::notify::SOCKET_IN_CONTAINER));
    }
    if opts.listen_fds > 0 {
        env.push(format!("LISTEN_FDS={}", opts.listen_fds));
        env.push("LISTEN_PID=1".into());
    }
    env
}

/// The notify directory's bind mount, last of all (over any /run mount);
/// in a user namespace its source is opened now, as the other binds were.
fn add_notify_mount(rootfs: &mut RootfsPlan, container_dir: &Path) -> Result<()> {
    let m = crate::notify::mount(container_dir);
    if rootfs.in_userns && nix::unistd::geteuid().is_root() {
        let src = m.source().clone().unwrap_or_default();
        let c = std::ffi::CString::new(src.as_os_str().as_encoded_bytes()).map_err(|_| Error::config("NOTIFY_SOCKET", "contains a NUL byte"))?;
        rootfs.bind_sources.resize_with(rootfs.mounts.len(), || None);
        rootfs.bind_sources.push(Some(sys::open_tree_clone(&c, false).ctx(|| format!("open {}", src.display()))?));
    }
    rootfs.mounts.push(m);
    Ok(())
}

/// The compiled seccomp filter, if the config has one: from the cache when
/// there is one.
pub(super) fn compile_seccomp(seccomp: Option<&LinuxSeccomp>, cache: Option<&Path>, t: &mut crate::trace::Stages) -> Result<Option<crate::seccomp::Filter>> {
    let Some(s) = seccomp else {
        return Ok(None);
    };
    let (filter, how) = match cache {
        Some(dir) => crate::seccomp::compile_cached_how(s, dir).map_err(|e| Error::Seccomp(e.to_string()))?,
        None => (crate::seccomp::compile(s).map_err(|e| Error::Seccomp(e.to_string()))?, crate::seccomp::Cached::Bypassed),
    };
    t.mark_with("seccomp", how.as_str());
    Ok(Some(filter))
}

/// How the init builds the container's root.
fn rootfs_plan(cfg: &Config, opts: &CreateOptions, ns: &crate::namespaces::Plan, new_cgroupns: bool, new_mountns: bool, cgroup_dirs: &[(String, PathBuf)], devices: &[Device]) -> Result<RootfsPlan> {
    let linux = cfg.linux();
    let in_userns = ns.new_user || ns.unshare_after_join();
    Ok(RootfsPlan {
        rootfs: cfg.rootfs.clone(),
        bundle: cfg.bundle.clone(),
        mounts: cfg.spec.mounts().clone().unwrap_or_default(),
        propagation: linux.rootfs_propagation().as_deref().filter(|p| !p.is_empty()).and_then(crate::rootfs::propagation_flag),
        readonly: cfg.spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false),
        no_pivot: opts.no_pivot,
        devices: devices.to_vec(),
        masked: linux.masked_paths().clone().unwrap_or_default(),
        readonly_paths: linux.readonly_paths().clone().unwrap_or_default(),
        in_userns,
        bind_devices: in_userns || crate::namespaces::running_in_userns(),
        new_cgroupns,
        new_mountns,
        mount_label: crate::lsm::mount_label(linux.mount_label().as_deref()),
        // As runc: the hybrid host's unified hierarchy is joined, not mounted.
        cgroup_dirs: cgroup_dirs.iter().filter(|(n, _)| n != "unified").cloned().collect(),
        idmap_trees: crate::rootfs::idmapped_trees(cfg.spec.mounts().as_deref().unwrap_or(&[]), &cfg.bundle)?,
        // Root's binds are opened before the user namespace exists (its root
        // may not reach them); a rootless runtime cannot open_tree outside
        // a namespace of its own, and the namespace's root has its access.
        bind_sources: if in_userns && nix::unistd::geteuid().is_root() { crate::rootfs::open_bind_sources(cfg.spec.mounts().as_deref().unwrap_or(&[]), &cfg.bundle)? } else { Vec::new() },
    })
}

/// What [`reserve`] made: the undo guard holding the state directory and
/// the cgroup, and the descriptors for the init.
struct Reserved {
    undo: Undo,
    fifo: OwnedFd,
    console_socket: Option<OwnedFd>,
    /// Our end of the console socket, when `run` relays a terminal.
    console_recv: Option<OwnedFd>,
    /// The container's state directory when it gets a notify socket.
    notify_dir: Option<PathBuf>,
    /// The state as saved (`creating`, no init yet).
    state: State,
    /// On v1 (cgroupfs driver) the cgroup directories are made after the
    /// clone, while the init works (none is needed before its cgroup
    /// mount): those to make, already recorded in the state.
    late_dirs: Option<Vec<PathBuf>>,
    /// When the init joins its v1 cgroup itself: its directory in the
    /// hybrid host's cgroup2 hierarchy, made before the clone, to be born in.
    unified_leaf: Option<OwnedFd>,
}

/// Makes what the init needs before it exists, each piece in the undo guard
/// as soon as it is made.
fn reserve(store: &Store, opts: &CreateOptions, cfg: &Config, plan: &Plan, t: &mut crate::trace::Stages) -> Result<Reserved> {
    // The state directory reserves the id.
    let dir = store.create(opts.id)?;
    let fifo_path = dir.fifo_path();
    let mut undo = Undo { pidfd: None, host_mounts: plan.host_mounts.clone().map(|m| (cfg.rootfs.clone(), m)), cgroup: None, dir: Some(dir) };
    let host_dirs = crate::cgroups::host_dirs(&plan.cgroup_dirs, opts.systemd_cgroup);
    let planned = crate::cgroups::missing_dirs(&host_dirs);
    let foreign = crate::cgroups::precheck(&host_dirs, &planned)?;
    let cgroup_path = crate::cgroups::manager_path(&plan.cgroup_path, opts.systemd_cgroup, &plan.cgroup_dirs);
    let ucg = undo.cgroup.insert(UndoCgroup { path: cgroup_path, systemd: opts.systemd_cgroup, id: opts.id.to_string(), dirs: host_dirs, created: Vec::new(), foreign });
    // From here on the container is visible (`creating`) and, should skiff
    // die, cleanable.
    let mut state = initial_state(cfg, opts, plan, ucg, planned.clone());
    undo.dir.as_ref().expect("set above").save(&state)?;
    t.mark("state dir");
    crate::fault::point("create:reserved");
    // On v2 the init is cloned into its directory, which must exist first.
    let late = crate::cgroups::v1_by_hand(opts.systemd_cgroup);
    let mut unified_leaf = None;
    let late_dirs = if late {
        let (early, late): (Vec<PathBuf>, Vec<PathBuf>) = planned.into_iter().partition(|d| plan.init_joins && crate::cgroups::hierarchy_has(d, "unified"));
        if let Some(leaf) = plan.init_joins.then(|| crate::cgroups::unified_dir(&ucg.dirs)).flatten() {
            crate::cgroups::create_dirs(std::slice::from_ref(leaf), &early, &mut ucg.created)?;
            unified_leaf = open_fd(leaf, OFlag::O_PATH | OFlag::O_DIRECTORY).ok();
        }
        Some(late)
    } else {
        crate::cgroups::create_dirs(&ucg.dirs, &planned, &mut ucg.created)?;
        state.cgroup_created = Some(ucg.created.clone());
        t.mark("cgroup dirs");
        None
    };
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o600)).ctx(|| format!("create {}", fifo_path.display()))?;
    // Read and write: the init waits for `start`'s byte on it and, should it
    // fail after that, leaves its error there for `start` to read.
    let fifo = open_fd(&fifo_path, OFlag::O_RDWR | OFlag::O_NONBLOCK)?;
    let (console_socket, console_recv) = console_socket(opts.console_socket, plan.terminal)?;
    let notify_dir = match opts.notify_socket {
        Some(_) => {
            let d = undo.dir.as_ref().expect("set above").path.clone();
            std::fs::DirBuilder::new().mode(0o755).create(d.join(crate::notify::DIR)).ctx(|| format!("create {}", d.join(crate::notify::DIR).display()))?;
            Some(d)
        }
        None => None,
    };
    t.mark("exec.fifo");
    Ok(Reserved { undo, fifo, console_socket, console_recv, notify_dir, state, late_dirs, unified_leaf })
}

/// The console socket: the caller's, or ours when `run` or `exec` relays a
/// terminal. Returns the process's end, and ours if it is ours.
pub(super) fn console_socket(path: Option<&Path>, terminal: bool) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType};
    if let Some(p) = path {
        let s = nix::sys::socket::socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).ctx(|| "create console socket".into())?;
        let addr = nix::sys::socket::UnixAddr::new(p).ctx(|| format!("console socket path {}", p.display()))?;
        nix::sys::socket::connect(s.as_raw_fd(), &addr).ctx(|| format!("connect to console socket {}", p.display()))?;
        Ok((Some(s), None))
    } else if terminal {
        let (a, b) = nix::sys::socket::socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).ctx(|| "create console socket pair".into())?;
        Ok((Some(b), Some(a)))
    } else {
        Ok((None, None))
    }
}

/// Clones the init straight into its namespaces (and, given its v2 cgroup
/// directory, into that cgroup) and returns its pid — once the clone has
/// forked the real init, where it must — with the runtime's end of the
/// channel and whether the init was born in its cgroup. The init's pidfd
/// goes into the undo guard.
fn clone_init(mut args: InitArgs, undo: &mut Undo, foreground: bool, cgroup: Option<OwnedFd>) -> Result<(Pid, Channel, bool)> {
    let (parent_chan, child_chan) = channel::pair()?;
    // The clone. The cgroup namespace is unshared by the init once it is in
    // its cgroup, so that the namespace's root is the container's cgroup.
    let mut flags = args.ns.flags_for_clone() - CloneFlags::CLONE_NEWCGROUP;
    if !foreground {
        flags |= CloneFlags::from_bits_retain(libc::CLONE_PARENT);
    }
    let extra_fork = args.ns.fork_after_unshare();
    if extra_fork && foreground {
        // The init will be our grandchild: become its reaper so that we can
        // wait for it once its parent has left.
        // SAFETY: plain integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let ns_guard = args.ns.enter_for_children()?;
    // The init's final exec compares against this (docs/security.md).
    crate::exec_guard::record_runtime_binary();
    let flags = flags.bits() as u32 as u64;
    let mut in_cgroup = cgroup.is_some();
    args.born_in_cgroup = in_cgroup;
    let forked = match cgroup.as_ref().map(|fd| sys::clone_process_into(flags, Some(fd.as_fd()))) {
        Some(Ok(f)) => f,
        other => {
            if let Some(Err(e)) = other {
                tracing::debug!("clone into the cgroup: {e}; the init is moved there after the clone");
            }
            in_cgroup = false;
            args.born_in_cgroup = false;
            sys::clone_process(flags).ctx(|| "clone the container init".into())?
        }
    };
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
    if in_cgroup {
        tracing::debug!(pid = pid.as_raw(), "init cloned into its cgroup");
    } else {
        tracing::debug!(pid = pid.as_raw(), "init cloned");
    }
    if !extra_fork {
        return Ok((pid, parent_chan, in_cgroup));
    }
    // The clone forks once more and hands over to its child.
    let init = match parent_chan.recv_in_parent()? {
        Some((ToParent::InitPid(p), _)) => Pid::from_raw(p),
        Some((ToParent::Error(msg), _)) => return Err(Error::Init(msg)),
        _ => return Err(Error::Init("container init exited before it was ready".into())),
    };
    if foreground {
        let _ = nix::sys::wait::waitpid(pid, None);
    }
    undo.pidfd = Some(sys::pidfd_open(init).ctx(|| "open a pidfd for the container init".into())?);
    Ok((init, parent_chan, in_cgroup))
}

/// The container's state as `create` leaves it (and as the hooks see it).
/// No init yet (pid 0); the cgroup directories about to be made are
/// recorded as made (removing one that is not there is harmless), so that
/// a `create` killed at any later point leaves a state `delete` can clean.
fn initial_state(cfg: &Config, opts: &CreateOptions, plan: &Plan, cgroup: &UndoCgroup, planned: Vec<PathBuf>) -> State {
    State {
        cgroup_dirs: cgroup.dirs.clone(),
        cgroup_created: Some(planned),
        cgroup_foreign: cgroup.foreign.clone(),
        cgroup_path: cgroup.path.clone(),
        systemd_cgroup: opts.systemd_cgroup,
        systemd_dirs: if opts.systemd_cgroup { plan.cgroup_dirs.iter().map(|(_, d)| d.clone()).collect() } else { Vec::new() },
        own_pid_ns: plan.new_pid,
        host_mounts: plan.host_mounts.clone(),
        ..bundle_state(cfg, opts.id, &plan.resources)
    }
}

/// What a new container's state takes from the bundle (`create`, and
/// `restore`, which makes a container from a bundle and an image): no init
/// yet, being made by this process, no cgroup.
pub(super) fn bundle_state(cfg: &Config, id: &str, resources: &oci_spec::runtime::LinuxResources) -> State {
    let linux = cfg.linux();
    let hooks = cfg.spec.hooks().as_ref();
    State {
        oci_version: cfg.spec.version().clone(),
        id: id.to_string(),
        pid: 0,
        bundle: cfg.bundle.clone(),
        rootfs: cfg.rootfs.clone(),
        created: state::now_rfc3339(),
        owner: String::new(),
        annotations: cfg.spec.annotations().clone().unwrap_or_default(),
        init_start_time: 0,
        cgroup_dirs: Vec::new(),
        cgroup_created: None,
        cgroup_foreign: Vec::new(),
        cgroup_path: PathBuf::new(),
        systemd_cgroup: false,
        systemd_dirs: Vec::new(),
        own_pid_ns: linux.namespaces().iter().flatten().any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none()),
        host_mounts: None,
        poststop: hooks.and_then(|h| h.poststop().clone()).unwrap_or_default(),
        poststart: hooks.and_then(|h| h.poststart().clone()).unwrap_or_default(),
        exec: serde_json::value::to_raw_value(&state::ExecBase {
            process: cfg.process().clone(),
            seccomp: linux.seccomp().clone(),
            personality: linux.personality().clone(),
            namespaces: linux.namespaces().iter().flatten().map(|n| n.typ()).collect(),
        })
        .ok(),
        resources: serde_json::value::to_raw_value(resources).ok(),
        creating: Some(state::Creator::me()),
        hook_group: None,
    }
}

/// The cgroup, while the init mounts its rootfs. On a v1 host the init
/// is released as soon as the directories exist (its cgroup mount only
/// binds them) and moved in by hand; the manager is built and the
/// resources applied while it goes on (before Ready, so always before the
/// container's process can run), and the devices hierarchy joined last:
/// the init makes its /dev nodes meanwhile, which the device rules
/// (deny-all first, then the allow-list) would refuse half-written. With
/// createContainer hooks (user code in the init) all is done first.
fn set_up_cgroup(chan: &Channel, opts: &CreateOptions, plan: &Plan, st: &State, in_cgroup: bool) -> Result<()> {
    if plan.no_cgroup {
        return send(chan, &ToChild::CgroupReady(true));
    }
    let pid = Pid::from_raw(st.pid);
    // A failure here may stem from the init having died: prefer its error.
    let or_child = |e: Error| chan.pending_error().map(Error::Init).unwrap_or(e);
    let resources = &plan.resources;
    let v1 = crate::cgroups::v1_by_hand(opts.systemd_cgroup);
    let early_release = v1 && plan.hooks.create_container().as_ref().is_none_or(|h| h.is_empty());
    if early_release {
        send(chan, &ToChild::CgroupReady(false))?;
    }
    if v1 && !plan.init_joins {
        crate::cgroups::join_v1_dirs(&st.cgroup_dirs, pid).map_err(or_child)?;
    }
    let mut cgroup_mgr = crate::cgroups::Lazy::new(&st.cgroup_path, opts.systemd_cgroup, opts.id);
    if !v1 && !in_cgroup {
        crate::cgroups::join(cgroup_mgr.get()?, pid, &st.cgroup_path).map_err(or_child)?;
    }
    crate::cgroups::apply(&mut cgroup_mgr, Some(resources), &st.cgroup_path, &st.cgroup_dirs).map_err(or_child)?;
    if v1 && !plan.init_joins {
        crate::cgroups::join_v1_devices(&st.cgroup_dirs, pid).map_err(or_child)?;
    }
    if early_release {
        send(chan, &ToChild::CgroupDone)
    } else {
        send(chan, &ToChild::CgroupReady(true))
    }
}

/// Serves the init until it reports Ready: the runtime's hooks when it
/// asks for them, its seccomp notify fd to the listener.
fn converse(chan: &Channel, cfg: &Config, plan: &Plan, (dir, st): (&ContainerDir, &State), creating: &[u8], t: &crate::trace::Stages) -> Result<()> {
    loop {
        match chan.recv_in_parent()? {
            Some((ToParent::Stages(report), _)) => t.init_stages(&report),
            Some((ToParent::RunHooks, _)) => {
                run_runtime_hooks(&plan.hooks, cfg, (dir, st), creating)?;
                send(chan, &ToChild::HooksDone)?;
            }
            Some((ToParent::SeccompFd, Some(fd))) => {
                let path = plan.listener.as_ref().expect("checked by Plan::new");
                let meta = cfg.linux().seccomp().as_ref().and_then(|s| s.listener_metadata().clone());
                let payload = seccomp_state(st, meta.as_deref(), fd.as_raw_fd(), st.pid, Status::Creating);
                crate::socket::send_seccomp_notify(path, fd.as_fd(), &payload)?;
            }
            Some((ToParent::SeccompFd, None)) => return Err(Error::Init("seccomp fd message without a descriptor".into())),
            Some((ToParent::Ready, _)) => return Ok(()),
            Some((ToParent::InitPid(_), _)) => return Err(Error::Init("unexpected second init pid".into())),
            Some((ToParent::Error(msg), _)) => return Err(Error::Init(msg)),
            None => return Err(Error::Init("container init exited before it was ready".into())),
        }
    }
}

/// The prestart and createRuntime hooks, each recorded in the state
/// (`hook_group`) as it starts, so that a `delete` after this command
/// died kills what the hook left running.
fn run_runtime_hooks(hooks: &Hooks, cfg: &Config, (dir, st): (&ContainerDir, &State), creating: &[u8]) -> Result<()> {
    let mut recorded = st.clone();
    let mut spawned = |pgid: i32| {
        recorded.hook_group = Some(state::Creator::of(pgid));
        if let Err(e) = dir.save(&recorded) {
            tracing::warn!("record the hook's process group: {e}");
        }
    };
    crate::hooks::run_all_in("prestart", hooks.prestart().as_deref().unwrap_or(&[]), creating, &cfg.bundle, &mut spawned)?;
    crate::hooks::run_all_in("createRuntime", hooks.create_runtime().as_deref().unwrap_or(&[]), creating, &cfg.bundle, &mut spawned)
}

/// Takes the pty master (when `run` relays a terminal), writes the state and
/// pid files, and disarms the undo guard.
fn finish(opts: &CreateOptions, undo: &mut Undo, mut st: State, console_recv: Option<OwnedFd>, chan: Channel) -> Result<Created> {
    let console = match console_recv {
        Some(sock) => {
            let mut buf = [0u8; 256];
            Some(crate::socket::recv_fd(sock.as_fd(), &mut buf).map(|(fd, _)| fd).map_err(|e| Error::Tty(format!("receive the pty master: {e}")))?)
        }
        None => None,
    };
    // Until both files are written, a failure still undoes everything.
    st.creating = None;
    undo.dir.as_ref().expect("set by reserve").save(&st)?;
    if let Some(p) = opts.pid_file {
        state::write_atomic(p, st.pid.to_string().as_bytes(), 0o644)?;
    }
    crate::fault::point("create:saved");
    // `run` releases the init at once: the fifo's byte tells it as much
    // (and the channel closing first, that we died).
    if !opts.then_start {
        send(&chan, &ToChild::Created)?;
    }
    let dir = undo.dir.take().expect("set by reserve");
    let pidfd = undo.pidfd.take().expect("set by clone_init");
    undo.cgroup = None;
    undo.host_mounts = None;
    Ok(Created { pid: Pid::from_raw(st.pid), pidfd, dir, state: st, console, _chan: opts.then_start.then_some(chan) })
}

/// Sends to the init; if the init has gone, its own error (queued on the
/// channel) is the one worth reporting.
pub(super) fn send(chan: &channel::Channel, m: &ToChild) -> Result<()> {
    chan.send_to_child(m).map_err(|e| chan.pending_error().map(Error::Init).unwrap_or(e))
}

fn write_id_maps(pid: Pid, linux: &oci_spec::runtime::Linux) -> Result<()> {
    let uid = crate::namespaces::id_map_text(linux.uid_mappings());
    let gid = crate::namespaces::id_map_text(linux.gid_mappings());
    if !nix::unistd::geteuid().is_root() {
        return crate::namespaces::write_rootless_maps(pid, linux)
    }
    let proc = crate::procfs::Proc::runtime()?;
    proc.write_pid(pid.as_raw(), "gid_map", &gid, "linux.gidMappings")?;
    proc.write_pid(pid.as_raw(), "uid_map", &uid, "linux.uidMappings")
}

/// The ContainerProcessState sent with a seccomp notify fd of the process
/// `pid` (the init's, or an exec'd process's).
pub(super) fn seccomp_state(st: &State, meta: Option<&str>, fd: i32, pid: i32, status: Status) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ociVersion": st.oci_version,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": meta.unwrap_or_default(),
        "state": st.to_oci(status),
        "fdIndex": fd,
    }))
    .expect("json")
}

/// `--no-pivot` with a user namespace and CAP_SYS_ADMIN is refused: the
/// namespace's copies of the host's mounts are locked there, so the host's
/// procfs cannot be detached before the move, and CAP_SYS_ADMIN could mount
/// a fresh, unmasked procfs (docs/security.md).
fn no_pivot_allowed(opts: &CreateOptions, ns: &crate::namespaces::Plan, caps: &crate::capabilities::CapPlan) -> Result<()> {
    if opts.no_pivot && (ns.new_user || ns.unshare_after_join()) && caps.bounding.contains(&caps::Capability::CAP_SYS_ADMIN) {
        return Err(Error::config("process.capabilities", "--no-pivot with a user namespace cannot keep the host's procfs out of reach of CAP_SYS_ADMIN: drop CAP_SYS_ADMIN or use pivot_root"));
    }
    Ok(())
}
