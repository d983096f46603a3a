//! `delete`: removes a container, killing it first where it must.

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
            return match store.remove_leftover(id)? {
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
