//! `state`, `list` and `ps`: what the store says, with each container's
//! status, and the processes in its cgroup.

use crate::error::Result;
use crate::state::{self, State, Status, Store};

/// `state`: the runtime-spec state object.
pub fn state(store: &Store, id: &str) -> Result<state::OciState> {
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

/// `ps`: the host pids of every process in the container's cgroup.
pub fn pids(store: &Store, id: &str) -> Result<Vec<i32>> {
    let dir = store.peek(id)?;
    let st = dir.load()?;
    let mut pids: Vec<i32> = st.cgroup().pids()?.into_iter().map(|p| p.as_raw()).collect();
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}
