//! `pause` and `resume`: the container's cgroup frozen and thawed (the v1
//! freezer, v2's `cgroup.freeze`); `state` then reports `paused`.

use crate::error::{Error, Result};
use crate::state::{Status, Store};

/// `pause`: freezes a created or running container.
pub fn pause(store: &Store, id: &str) -> Result<()> {
    let dir = store.open(id)?;
    let st = dir.load()?;
    match st.status(&dir.path) {
        Status::Running | Status::Created => crate::cgroups::set_frozen(&st.cgroup(), true),
        // runc's wording, for a paused one too.
        _ => Err(Error::NotRunning),
    }
}

/// `resume`: thaws a paused container.
pub fn resume(store: &Store, id: &str) -> Result<()> {
    let dir = store.open(id)?;
    let st = dir.load()?;
    match st.status(&dir.path) {
        Status::Paused => crate::cgroups::set_frozen(&st.cgroup(), false),
        // runc's wording, for a stopped one too.
        _ => Err(Error::BadState("container not paused".into())),
    }
}
