//! `restore`: a container made from a bundle and a CRIU image. skiff
//! reserves the id and makes the cgroup as `create` does, bind-mounts the
//! rootfs on a mount point of its own in the state directory (CRIU's
//! `root` must be a mount point whose parent is not over-mounted), starts
//! `criu swrk`, puts CRIU in the container's cgroup (the restored tasks
//! are born there) and asks for a restore with `rst_sibling`: the restored
//! init is then skiff's child, and the caller's (its subreaper's) once
//! skiff exits, as after `create`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::unistd::Pid;
use rust_criu::rust_criu_protobuf::rpc;

use super::{criu, mounts, CriuOptions};
use crate::config::Config;
use crate::error::{Context, Error, Result};
use crate::state::{self, ContainerDir, State, Status, Store};
use crate::sys;

/// `restore`'s own options.
pub struct RestoreOptions<'a> {
    pub common: CriuOptions<'a>,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub detach: bool,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    /// `--no-subreaper`: skiff does not become a child subreaper.
    pub no_subreaper: bool,
    pub systemd_cgroup: bool,
    /// `--lsm-profile TYPE:NAME`.
    pub lsm_profile: Option<&'a str>,
    /// `--lsm-mount-context`.
    pub lsm_mount_context: Option<&'a str>,
}

/// What a failed restore removes again: the restored process, the cgroup
/// directories made, the rootfs mount point, the state directory.
struct Undo {
    st: State,
    pidfd: Option<OwnedFd>,
    root_mount: Option<PathBuf>,
    dir: Option<ContainerDir>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(fd) = self.pidfd.take() {
            let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            let _ = sys::pidfd_wait_exit(fd.as_fd(), 5000);
        }
        unmount_root(self.root_mount.take());
        if let Some(dir) = self.dir.take() {
            if let Err(e) = self.st.cgroup().remove(crate::cgroups::Scope { init: None, own_pid_ns: false }) {
                tracing::warn!("cleanup: {e}");
            }
            let _ = dir.remove();
        }
    }
}

fn unmount_root(root: Option<PathBuf>) {
    if let Some(r) = root {
        let _ = nix::mount::umount2(&r, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&r);
    }
}

/// `restore`: returns the exit code to exit with (0 when detached; else
/// the restored container's, once it exits, as `run`).
pub fn restore(store: &Store, o: &RestoreOptions) -> Result<i32> {
    super::require_root("restore")?;
    let cfg = Config::load(o.bundle)?;
    let terminal = cfg.process().terminal().unwrap_or(false);
    if terminal && o.detach && o.console_socket.is_none() {
        return Err(Error::config("process.terminal", "cannot allocate a pseudo-TTY without --console-socket"));
    }
    if !terminal && o.console_socket.is_some() {
        return Err(Error::config("process.terminal", "--console-socket given but process.terminal is false"));
    }
    let image = o.common.image_path;
    let image_fd = super::open_dir(image).map_err(|e| Error::Criu(format!("invalid --image-path: {e}")))?;
    let (console, _) = super::super::create::console_socket(o.console_socket, false)?;
    if !o.no_subreaper {
        // As runc: orphans of the restored tree come to us while we wait.
        // SAFETY: plain integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    // As in create: SIGTERM, SIGINT and SIGHUP wait until the container is
    // made (or undone), so that no half-made one (the rootfs mount point
    // in the state directory) is left; one that came undoes it.
    let held = super::super::Termination::hold()?;
    let mut undo = reserve(store, o, &cfg)?;
    let dir_path = undo.dir.as_ref().expect("set by reserve").path.clone();
    let work = o.common.work_path.map(Path::to_path_buf).unwrap_or_else(|| dir_path.join("criu.work"));
    super::make_dir(&work)?;
    let work_fd = super::open_dir(&work)?;
    let root = dir_path.join("criu-root");
    std::fs::create_dir(&root).ctx(|| format!("create {}", root.display()))?;
    undo.root_mount = Some(root.clone());
    nix::mount::mount(Some(&cfg.rootfs), &root, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>).ctx(|| format!("bind {} on {}", cfg.rootfs.display(), root.display()))?;
    mounts::make_mountpoints(&cfg)?;

    let mut opts = super::base_opts(&o.common, &cfg, "restore.log");
    opts.set_images_dir_fd(image_fd.as_raw_fd());
    opts.set_work_dir_fd(work_fd.as_raw_fd());
    opts.set_root(root.to_string_lossy().into_owned());
    opts.set_rst_sibling(true);
    opts.set_evasive_devices(true);
    if let Some(p) = o.lsm_profile {
        opts.set_lsm_profile(p.to_string());
    }
    if let Some(c) = o.lsm_mount_context {
        opts.set_lsm_mount_context(c.to_string());
    }
    opts.ext_mnt = mounts::restore_ext_mounts(&cfg);
    opts.ext_mnt.extend(mounts::cgroup_ext_mounts(&cfg, undo.st.member_dirs(), true));
    let ns_fds = mounts::restore_namespaces(&cfg, &mut opts)?;
    let stdio = stdio_copies()?;
    mounts::restore_descriptors(image, &stdio, &mut opts)?;
    let mut inherit: Vec<BorrowedFd> = vec![image_fd.as_fd(), work_fd.as_fd()];
    inherit.extend(ns_fds.iter().chain(&stdio).map(|f| f.as_fd()));

    let req = criu::Request { kind: rpc::Criu_req_type::RESTORE, log: work.join("restore.log"), stderr: work.join("criu.err"), opts };
    let (pid, master) = run_criu(o, &cfg, &mut undo, req, &inherit, console.as_ref(), terminal)?;
    drop((stdio, ns_fds));
    unmount_root(undo.root_mount.take());
    if let Some(sig) = held.pending() {
        return Err(Error::Interrupted(sig));
    }
    drop(held);
    finish(o, undo, pid, master)
}

/// Reserves the id (the state directory, saved `creating`) and makes the
/// container's cgroup directories, as `create` does.
fn reserve(store: &Store, o: &RestoreOptions, cfg: &Config) -> Result<Undo> {
    let linux = cfg.linux();
    let path = crate::cgroups::resolve_path(linux.cgroups_path().as_deref(), o.id, o.systemd_cgroup)?;
    let planned = crate::cgroups::container_dirs(&path, o.systemd_cgroup);
    let dir = store.create(o.id)?;
    let host_dirs = crate::cgroups::host_dirs(&planned, o.systemd_cgroup);
    let mut undo = Undo { st: new_state(cfg, o, &path, &planned, &host_dirs), pidfd: None, root_mount: None, dir: Some(dir) };
    let planned_dirs = crate::cgroups::missing_dirs(&host_dirs);
    undo.st.cgroup_foreign = crate::cgroups::precheck(&host_dirs, &planned_dirs)?;
    undo.st.cgroup_created = Some(planned_dirs.clone());
    let d = undo.dir.as_ref().expect("set above");
    d.save(&undo.st)?;
    let mut created = Vec::new();
    let r = crate::cgroups::create_dirs(&host_dirs, &planned_dirs, &mut created);
    undo.st.cgroup_created = Some(created);
    r?;
    if !o.systemd_cgroup && crate::cgroups::is_v2() {
        // The controllers on in every ancestor, as for create's init.
        if let Some(d) = host_dirs.first() {
            drop(crate::cgroups::prepare_v2_leaf(d));
        }
    }
    Ok(undo)
}

/// The state of the restored container, before it has an init.
fn new_state(cfg: &Config, o: &RestoreOptions, path: &Path, planned: &[(String, PathBuf)], host_dirs: &[PathBuf]) -> State {
    let linux = cfg.linux();
    let devices = crate::devices::plan(linux).unwrap_or_default();
    let resources = crate::cgroups::with_device_rules(linux.resources().as_ref(), &devices);
    State {
        cgroup_path: crate::cgroups::manager_path(path, o.systemd_cgroup, planned),
        systemd_cgroup: o.systemd_cgroup,
        cgroup_dirs: host_dirs.to_vec(),
        systemd_dirs: if o.systemd_cgroup { planned.iter().map(|(_, d)| d.clone()).collect() } else { Vec::new() },
        ..super::super::create::bundle_state(cfg, o.id, &resources)
    }
}

/// Copies of our stdio (the caller's pipes), for CRIU to put where the
/// checkpointed init had its pipes.
fn stdio_copies() -> Result<Vec<OwnedFd>> {
    [std::io::stdin().as_fd(), std::io::stdout().as_fd(), std::io::stderr().as_fd()]
        .into_iter()
        .map(|fd| fd.try_clone_to_owned().ctx(|| "duplicate stdio for criu".into()))
        .collect()
}

/// Puts CRIU in the container's cgroup (with the limits applied), then has
/// it restore: the prestart and createRuntime hooks run once it has made
/// the namespaces, the pty master it makes goes to the console socket (or
/// is kept, for the foreground relay). Returns the restored init's pid.
fn run_criu(o: &RestoreOptions, cfg: &Config, undo: &mut Undo, req: criu::Request, inherit: &[BorrowedFd], console: Option<&OwnedFd>, terminal: bool) -> Result<(Pid, Option<OwnedFd>)> {
    let st = undo.st.clone();
    let mut join = |pid: i32, opts: &mut rpc::Criu_opts| join_cgroup(&st, pid, opts);
    let mut restored = 0;
    let mut master = None;
    let mut notify = |script: &str, pid: i32, fd: Option<OwnedFd>| -> Result<()> {
        match script {
            "setup-namespaces" => {
                let mut s = st.clone();
                s.pid = pid;
                let json = serde_json::to_vec(&s.to_oci(Status::Creating)).expect("json");
                let hooks = cfg.spec.hooks().clone().unwrap_or_default();
                crate::hooks::run_all_in("prestart", hooks.prestart().as_deref().unwrap_or(&[]), &json, &cfg.bundle, &mut |_| {})?;
                crate::hooks::run_all_in("createRuntime", hooks.create_runtime().as_deref().unwrap_or(&[]), &json, &cfg.bundle, &mut |_| {})
            }
            "post-restore" => {
                restored = pid;
                Ok(())
            }
            "orphan-pts-master" => {
                let fd = fd.ok_or_else(|| Error::Tty("criu sent no pty master".into()))?;
                match console {
                    Some(sock) => crate::socket::send_fd(sock.as_fd(), fd.as_fd(), b"/dev/ptmx").map_err(|e| Error::Tty(format!("send the pty master: {e}"))),
                    None => {
                        master = Some(fd);
                        Ok(())
                    }
                }
            }
            _ => Ok(()),
        }
    };
    let resp = criu::call(o.common.criu, req, inherit, &mut join, &mut notify)?;
    let pid = if resp.restore.is_some() { resp.restore.pid() } else { restored };
    if pid <= 0 {
        return Err(Error::Criu("criu restored no process".into()));
    }
    undo.pidfd = Some(sys::pidfd_open(Pid::from_raw(pid)).ctx(|| "open a pidfd for the restored init".into())?);
    if terminal && master.is_none() && console.is_none() && !o.common.shell_job {
        tracing::warn!("the restored container has a terminal but criu sent no pty master");
    }
    Ok((Pid::from_raw(pid), master))
}

/// CRIU (`pid`) joins the container's cgroup, whose limits are applied
/// first, and is told that this cgroup is the root of the restored tree
/// (`cg_root`: else CRIU would make the checkpointed container's cgroup,
/// named after its id, and put the processes there).
fn join_cgroup(st: &State, pid: i32, opts: &mut rpc::Criu_opts) -> Result<()> {
    if st.cgroup_dirs.is_empty() && !st.systemd_cgroup {
        return Ok(());
    }
    let pid = Pid::from_raw(pid);
    let v1 = crate::cgroups::v1_by_hand(st.systemd_cgroup);
    if v1 {
        crate::cgroups::join_v1_dirs(&st.cgroup_dirs, pid)?;
    }
    let mut mgr = crate::cgroups::Lazy::new(&st.cgroup_path, st.systemd_cgroup, &st.id);
    if !v1 {
        crate::cgroups::join(mgr.get()?, pid, &st.cgroup_path)?;
    }
    let res = st.applied_resources()?;
    crate::cgroups::apply(&mut mgr, res.as_ref(), &st.cgroup_path, &st.cgroup_dirs)?;
    if v1 {
        crate::cgroups::join_v1_devices(&st.cgroup_dirs, pid)?;
    }
    for (ctrl, path) in cgroups_of(pid.as_raw()) {
        let mut r = rpc::Cgroup_root::new();
        if !ctrl.is_empty() {
            r.set_ctrl(ctrl);
        }
        r.set_path(path);
        opts.cg_root.push(r);
    }
    Ok(())
}

/// `/proc/PID/cgroup`: each hierarchy's controllers ("" for v2's) and the
/// process's cgroup in it.
fn cgroups_of(pid: i32) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            Some((ctrl.to_string(), path.to_string()))
        })
        .collect()
}

/// Records the restored init, writes the pid file, runs the poststart
/// hooks; in the foreground, waits for the container and removes it.
fn finish(o: &RestoreOptions, mut undo: Undo, pid: Pid, master: Option<OwnedFd>) -> Result<i32> {
    undo.st.pid = pid.as_raw();
    undo.st.init_start_time = sys::proc_start_time(pid.as_raw()).map(|(t, _)| t).unwrap_or(0);
    undo.st.creating = None;
    let dir = undo.dir.as_ref().expect("set by reserve");
    dir.save(&undo.st)?;
    if let Some(p) = o.pid_file {
        state::write_atomic(p, pid.as_raw().to_string().as_bytes(), 0o644)?;
    }
    let json = serde_json::to_vec(&undo.st.to_oci(Status::Running)).expect("json");
    for w in crate::hooks::run_all_warn("poststart", &undo.st.poststart, &json) {
        tracing::warn!("{w}");
    }
    let dir = undo.dir.take().expect("set by reserve");
    let pidfd = undo.pidfd.take().expect("set by run_criu");
    let st = undo.st.clone();
    drop(undo);
    if o.detach {
        return Ok(0);
    }
    let blocked = super::super::foreground::Blocked::new()?;
    let code = super::super::foreground::wait(pid, &pidfd, master.as_ref(), &blocked, None);
    drop(blocked);
    super::super::kill_and_wait(&st);
    super::super::destroy(dir, &st)?;
    code
}
