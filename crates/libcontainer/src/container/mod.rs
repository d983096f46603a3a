//! The container lifecycle, top to bottom: create, start, run, kill,
//! pause/resume, delete, state, list, ps.
//!
//! `create` is the only step with a child process: the runtime prepares
//! everything it can (config validation, namespace plan, compiled seccomp
//! filter, cgroup), clones the init directly into its new namespaces — as a
//! child of *our caller* (CLONE_PARENT), so containerd-shim or conmon can
//! reap it, just as with runc — and talks to it over [`crate::channel`]
//! until it reports Ready. The init then blocks on `exec.fifo` until
//! `start` writes to it. No re-exec of the binary, and no extra fork but
//! the one a new pid namespace needs when it is unshared after joining a
//! user namespace (`namespaces::Plan::fork_after_unshare`).
//!
//! One module per command family, whose public items are re-exported here:
//! - `create.rs`: [`create`](create()) with [`CreateOptions`] and
//!   [`Created`], the undo guard, the steps from a bundle to an init waiting
//!   on `exec.fifo`;
//! - `start.rs`: [`start`](start()), the release through `exec.fifo` and the
//!   init's late errors;
//! - `query.rs`: [`state`](state()), [`list`], [`pids`] (`ps`);
//! - `pause.rs`: [`pause`], [`resume`] (the cgroup freezer);
//! - `signal.rs`: [`kill`];
//! - `delete.rs`: [`delete`](delete());
//! - `run.rs`: [`run`](run()), create and start with the foreground wait,
//!   [`exit_code`];
//! - `update.rs`: [`update`](update()), new limits merged onto the
//!   recorded ones and applied to the live cgroup;
//! - `checkpoint/`: [`checkpoint`](checkpoint()) and [`restore`](restore()),
//!   through CRIU's RPC interface;
//! - `events.rs`: [`events`](events()) and [`stats`], the statistics and
//!   OOM notifications in runc's envelope.
//!
//! What several of them need stays here: the init's pidfd, checked against
//! pid reuse (`init_pidfd`), who may be signalled (`cgroup_scope`), killing
//! and removing a container (`kill_and_wait`, `destroy`), `open_fd`.

mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod foreground;
mod pause;
mod query;
mod run;
mod signal;
mod start;
mod update;

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::Pid;

pub use checkpoint::{checkpoint, criu_works, parse_empty_ns, parse_page_server, restore, CgroupsMode, CheckpointOptions, CriuOptions, RestoreOptions};
pub use create::{create, CreateOptions, Created};
pub use delete::delete;
pub use pause::{pause, resume};
pub use query::{list, list_ids, pids, state};
pub use exec::{exec, read_process_file, ExecOptions, ExecProcess, ProcessOverrides};
pub use foreground::exit_code;
pub use run::run;
pub use signal::kill;
pub use start::start;
pub use events::{events, parse_go_duration, stats, Event};
pub use update::{update, UpdateFlags, UpdateSource};

use crate::error::{Context, Result};
use crate::state::{ContainerDir, State, Status};
use crate::sys;

/// SIGTERM, SIGINT and SIGHUP held (blocked) while a command must not be
/// stopped half-way; restored on drop. [`Termination::pending`] takes one
/// that came meanwhile.
pub(crate) struct Termination {
    set: nix::sys::signal::SigSet,
    old: nix::sys::signal::SigSet,
}

impl Termination {
    pub(crate) fn hold() -> Result<Termination> {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal};
        let mut set = SigSet::empty();
        for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
            set.add(s);
        }
        let mut old = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)).ctx(|| "block signals".into())?;
        Ok(Termination { set, old })
    }

    /// The name of a held signal that arrived, consumed — unless the caller
    /// held it already (then it is not ours to take).
    pub(crate) fn pending(&self) -> Option<String> {
        // SAFETY: sigpending fills the sigset_t it is given.
        let pending = unsafe {
            let mut raw: libc::sigset_t = std::mem::zeroed();
            if libc::sigpending(&mut raw) < 0 {
                return None;
            }
            nix::sys::signal::SigSet::from_sigset_t_unchecked(raw)
        };
        let sig = self.set.iter().find(|s| pending.contains(*s) && !self.old.contains(*s))?;
        let mut one = nix::sys::signal::SigSet::empty();
        one.add(sig);
        let _ = one.wait();
        Some(sig.as_str().to_string())
    }
}

impl Drop for Termination {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// Opens `p` close-on-exec.
fn open_fd(p: &Path, flags: OFlag) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(p, flags | OFlag::O_CLOEXEC, Mode::empty()).ctx(|| format!("open {}", p.display()))?;
    // SAFETY: `open` just returned this descriptor.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
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

/// Who may be signalled besides the members of a cgroup skiff created.
fn cgroup_scope(st: &State) -> crate::cgroups::Scope {
    crate::cgroups::Scope { init: init_pidfd(st).map(|_| Pid::from_raw(st.pid)), own_pid_ns: st.own_pid_ns }
}

/// SIGKILLs the init (and, without a pid namespace of its own, everything
/// in the cgroup) and waits on its pidfd until it is gone: no polling loop.
fn kill_and_wait(st: &State) {
    if !st.own_pid_ns {
        let _ = st.cgroup().signal_all(libc::SIGKILL, cgroup_scope(st));
    }
    if let Some(fd) = init_pidfd(st) {
        let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        let _ = sys::pidfd_wait_exit(fd.as_fd(), 10_000);
    }
}

/// SIGKILLs the process group of the runtime hook a killed `create` was
/// running ([`State::hook_group`]). While the group has a member its number
/// cannot go to a new process, so a process now at that pid with another
/// start time means the group is empty (and that one is not ours).
fn kill_hook_group(st: &State) {
    let Some(g) = st.hook_group else { return };
    if sys::proc_start_time(g.pid).is_some_and(|(t, _)| t != g.start_time) {
        return;
    }
    // SAFETY: plain integer arguments.
    unsafe { libc::killpg(g.pid, libc::SIGKILL) };
}

/// Removes what is left of a stopped container and runs poststop hooks.
fn destroy(dir: ContainerDir, st: &State) -> Result<()> {
    kill_hook_group(st);
    if let Some(before) = &st.host_mounts {
        crate::rootfs::unmount_new(&st.rootfs, before);
    }
    let r = st.cgroup().remove(cgroup_scope(st));
    let json = serde_json::to_vec(&st.to_oci(Status::Stopped)).expect("json");
    for w in crate::hooks::run_all_warn("poststop", &st.poststop, &json) {
        tracing::warn!("{w}");
    }
    dir.remove()?;
    r
}
