//! A process `exec`'d into a running container: the code of the cloned
//! child from the clone to execve.
//!
//! The runtime clones it into the container's pid namespace (entered for
//! its children) and moves it into the container's cgroups; the child then
//!
//! 1. waits for `Go` (it is in its cgroups from then on);
//! 2. joins every other namespace of the container in one `setns` through
//!    a pidfd of the container's init (the kernel orders them, the user
//!    namespace first), or without a mount namespace of its own, enters the
//!    container's root with chroot; rootless, the pid namespace too, and
//!    then forks once into it (the runtime could not enter it for us);
//! 3. personality, I/O priority and scheduler, a terminal from the
//!    container's `/dev/pts`;
//! 4. goes the way of every process entering the container (`process.rs`):
//!    rlimits, LSM label, user, cwd, executable, Ready, the filter, the
//!    capabilities, execve.
//!
//! Failures go to the runtime as an Error message, which waits on the
//! channel until it closes at execve.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::CloneFlags;

use super::process::{self, Never, ProcessArgs};
use crate::channel::{Channel, ToChild};
use crate::error::{Context, Error, Result};

/// Everything the exec'd process needs, prepared by the runtime.
pub struct ExecArgs {
    pub process: ProcessArgs,
    /// A pidfd of the container's init, whose namespaces are joined.
    pub init: OwnedFd,
    /// The namespaces joined through it (the pid namespace is not among
    /// them: the runtime entered it for its children before the clone).
    pub join: CloneFlags,
    /// Without a mount namespace of its own: the container's root.
    pub chroot: Option<PathBuf>,
    /// The pid namespace is among `join` (a rootless runtime cannot enter
    /// it for us): fork once into it; the child goes on.
    pub fork: bool,
    /// cgroup v1 as root: the cgroup directories this process moves itself
    /// into before it joins the namespaces (`cgroups::join_self`, as the
    /// init does); empty when the runtime moves it or it was born there.
    pub join_cgroups: Vec<PathBuf>,
    /// The clone put it in its cgroup2 directory (CLONE_INTO_CGROUP).
    pub born_in_cgroup: bool,
}

/// Runs the exec'd process's set-up and never returns.
pub fn run(args: ExecArgs, chan: Channel) -> ! {
    let err = match setup(&args, &chan) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    process::fail(err, &chan, |_| false)
}

fn setup(a: &ExecArgs, chan: &Channel) -> Result<Never> {
    use crate::trace::{init_mark, InitStage};
    crate::trace::init_begin();
    process::reset_process()?;
    match chan.recv_in_child()? {
        ToChild::Go(_) => {}
        m => return Err(Error::Init(format!("unexpected {m:?} from the runtime"))),
    }
    process::set_non_dumpable();
    // In the runtime's mount namespace still, where the host's cgroup
    // hierarchies are.
    crate::cgroups::join_self(&a.join_cgroups, a.born_in_cgroup)?;
    if !a.join.is_empty() {
        nix::sched::setns(a.init.as_fd(), a.join).ctx(|| "join the container's namespaces".into())?;
    }
    if a.fork {
        match crate::sys::clone_process(0).ctx(|| "fork into the pid namespace".into())? {
            crate::sys::Forked::Child => {}
            crate::sys::Forked::Parent { pid, .. } => {
                let _ = chan.send_to_parent(&crate::channel::ToParent::InitPid(pid.as_raw()));
                // SAFETY: _exit in a forked copy of the runtime.
                unsafe { libc::_exit(0) }
            }
        }
    }
    if let Some(root) = &a.chroot {
        nix::unistd::chdir(root).ctx(|| format!("chdir {}", root.display()))?;
        nix::unistd::chroot(".").ctx(|| format!("chroot {}", root.display()))?;
    }
    init_mark(InitStage::Namespaces);
    a.process.exec.set_attributes()?;
    init_mark(InitStage::Attributes);
    let console = process::open_terminal(&a.process)?;
    let proc = if process::needs_proc(&a.process) { Some(crate::procfs::Proc::new_private()?) } else { None };
    let (program, env) = process::prepare_exec(&a.process, chan, console, proc, &[])?;
    init_mark(InitStage::Process);
    process::launch(&a.process, chan, program, env, || Ok(()), || Ok(()))
}
