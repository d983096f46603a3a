//! `delete`: removes a container, killing it first where it must.

use super::{destroy, kill_and_wait};
use crate::error::{Error, Result};
use crate::state::{Status, Store};

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
                crate::cgroups::thaw(&st.cgroup_dirs);
            }
            kill_and_wait(&st)
        }
        s => return Err(Error::BadState(format!("cannot delete container {id} that is not stopped: {s}"))),
    }
    destroy(dir, &st)
}
