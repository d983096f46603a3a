//! `kill`: signals to a container's init or to its whole cgroup.

use std::os::fd::AsFd;

use super::{cgroup_scope, init_pidfd};
use crate::error::{Error, Result};
use crate::state::{State, Status, Store};
use crate::sys;

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
        st.cgroup().signal_all(sig, cgroup_scope(&st))?;
        return Ok(());
    }
    if status == Status::Stopped {
        return Err(Error::NotRunning);
    }
    let fd = init_pidfd(&st).ok_or(Error::NotRunning)?;
    sys::pidfd_send_signal(fd.as_fd(), sig).map_err(|e| if e.raw_os_error() == Some(libc::ESRCH) { Error::NotRunning } else { Error::io("kill", e) })?;
    // A frozen task acts on SIGKILL only once thawed (the v1 freezer): as
    // runc, a SIGKILLed paused container is thawed, so that it dies. Other
    // signals wait for `resume`.
    if sig == libc::SIGKILL && status == Status::Paused {
        crate::cgroups::thaw(st.member_dirs());
    }
    Ok(())
}

fn cgroup_has_pids(st: &State) -> bool {
    st.cgroup().pids().is_ok_and(|p| !p.is_empty())
}
