//! `delete`: removes a container, killing it first where it must.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{destroy, kill_and_wait};
use crate::error::{Error, Result};
use crate::state::{Status, Store};

/// `delete`: removes a stopped (or created) container; `force` kills a
/// running one first.
pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    let loaded = store.open(id).and_then(|dir| dir.load().map(|st| (dir, st)));
    let (dir, st) = match loaded {
        Ok(x) => x,
        // What a command killed half-way left without a readable state.
        Err(e) if force => {
            return match store.remove_leftover(id, kill_fifo_holders)? {
                true => {
                    tracing::warn!("removed the state directory of {id}, whose state was unreadable ({e})");
                    Ok(())
                }
                false => Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    match st.status(&dir.path) {
        Status::Stopped => {}
        // A created container is deleted like runc and crun do (containerd's
        // shim relies on it), though the spec's wording asks for stopped.
        Status::Created | Status::Creating => kill_and_wait(&st),
        s if force => {
            if s == Status::Paused {
                crate::cgroups::thaw(&st.cgroup_dirs);
            }
            kill_and_wait(&st)
        }
        s => return Err(Error::BadState(format!("cannot delete container {id} that is not stopped: {s}"))),
    }
    crate::fault::point("delete:killed");
    destroy(dir, &st)
}

/// In a state directory whose state is unreadable: the processes holding
/// its `exec.fifo` open — the init of a container created but not started,
/// which would otherwise wait for `start` forever — SIGKILLed and waited
/// for.
fn kill_fifo_holders(dir: &Path) {
    let Ok(fifo) = std::fs::metadata(dir.join(crate::state::EXEC_FIFO)) else { return };
    let holds = |pid: i32| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| std::fs::metadata(fd.path()).is_ok_and(|m| m.dev() == fifo.dev() && m.ino() == fifo.ino()))
        })
    };
    let Ok(procs) = std::fs::read_dir("/proc") else { return };
    for pid in procs.flatten().filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok())) {
        if pid == std::process::id() as i32 || !holds(pid) {
            continue;
        }
        // Checked again through the pidfd: the pid cannot be reused now.
        let Ok(fd) = crate::sys::pidfd_open(nix::unistd::Pid::from_raw(pid)) else { continue };
        if holds(pid) {
            tracing::warn!("killing process {pid}, the init of the container whose state was unreadable");
            let _ = crate::sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            let _ = crate::sys::pidfd_wait_exit(fd.as_fd(), 5000);
        }
    }
}
