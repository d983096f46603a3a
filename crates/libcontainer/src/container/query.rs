//! `state`, `list` and `ps`: what the store says, with each container's
//! status, and the processes in its cgroup.

use crate::error::{Error, Result};
use crate::state::{self, State, Status, Store};

/// `state`: the runtime-spec state object.
pub fn state(store: &Store, id: &str) -> Result<state::OciState> {
    let dir = store.peek(id)?;
    let st = dir.load()?;
    Ok(st.to_oci(st.status(&dir.path)))
}

/// `list`: every container with its status.
pub fn list(store: &Store) -> Result<Vec<(State, Status)>> {
    Ok(loaded(store)?.into_iter().map(|(st, path)| {
        let s = st.status(&path);
        (st, s)
    }).collect())
}

/// `list -q`: the ids of the containers `list` shows (their status, which
/// reads /proc and the freezer, is not needed).
pub fn list_ids(store: &Store) -> Result<Vec<String>> {
    Ok(loaded(store)?.into_iter().map(|(st, _)| st.id).collect())
}

/// Every container whose state can be read, with its directory.
fn loaded(store: &Store) -> Result<Vec<(State, std::path::PathBuf)>> {
    let mut out = Vec::new();
    for id in store.list()? {
        // A directory without a state yet is a create under way; one whose
        // state cannot be read is skipped with a warning, as runc does.
        let Ok(dir) = store.peek(&id) else { continue };
        match dir.load() {
            Ok(st) => out.push((st, dir.path.clone())),
            Err(Error::NotExist(_)) => {}
            Err(e) => tracing::warn!("skipping container {id}: {e}"),
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
