//! `state` and `list`: what the store says, with each container's status.

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
