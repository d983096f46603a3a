//! The freezer: `pause`/`resume` (v1 `freezer.state`, v2 `cgroup.freeze`)
//! and the paused status.

use super::*;

/// Freezes (or thaws) a v1 freezer cgroup; a freeze waits up to a second
/// for the kernel to report FROZEN.
pub(super) fn freeze_v1(d: &Path, frozen: bool) {
    let state = d.join("freezer.state");
    let _ = std::fs::write(&state, if frozen { "FROZEN" } else { "THAWED" });
    for _ in 0..if frozen { 500 } else { 0 } {
        if std::fs::read_to_string(&state).is_ok_and(|s| s.trim() == "FROZEN") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Freezes (`pause`) or thaws (`resume`) the container's cgroup and waits
/// until the kernel reports it: the v1 freezer, v2's `cgroup.freeze` (with
/// `cgroup.events`), or the systemd driver's manager.
pub fn set_frozen(c: &Owned, frozen: bool) -> Result<()> {
    let dirs: Vec<&PathBuf> = c.dirs.iter().filter(|d| below_root(d) && freezer_of(d)).collect();
    if dirs.is_empty() {
        let mgr = manager(c.path, c.systemd, c.id)?;
        use libcgroups::common::CgroupManager;
        let state = if frozen { libcgroups::common::FreezerState::Frozen } else { libcgroups::common::FreezerState::Thawed };
        return mgr.freeze(state).map_err(|e| Error::Cgroup(format!("freeze {}: {e}", c.path.display())));
    }
    for d in dirs {
        if d.join("freezer.state").exists() {
            freeze_v1(d, frozen);
            continue;
        }
        std::fs::write(d.join("cgroup.freeze"), if frozen { "1" } else { "0" }).map_err(|e| Error::Cgroup(format!("write {}: {}", d.join("cgroup.freeze").display(), crate::error::strerror(&e))))?;
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        for _ in 0..500 {
            if std::fs::read_to_string(d.join("cgroup.events")).is_ok_and(|e| e.lines().any(|l| l == want)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    Ok(())
}

/// Whether `d` is where the container is frozen: the v1 freezer hierarchy,
/// or on a pure v2 host the container's directory. On a hybrid host the
/// unified hierarchy's `cgroup.freeze` is left alone, as runc does: the v1
/// freezer holds the tasks, and a v2 freeze of them would never complete.
fn freezer_of(d: &Path) -> bool {
    if is_v2() {
        d.join("cgroup.freeze").exists()
    } else {
        hierarchy_has(d, "freezer") && d.join("freezer.state").exists()
    }
}

/// Thaws the container's cgroup (before `delete --force` of a paused one).
pub fn thaw(dirs: &[PathBuf]) {
    for d in dirs.iter().filter(|d| below_root(d) && freezer_of(d)) {
        if d.join("freezer.state").exists() {
            freeze_v1(d, false);
        } else if d.join("cgroup.freeze").exists() {
            let _ = std::fs::write(d.join("cgroup.freeze"), "0");
        }
    }
}

/// Whether the cgroup is frozen (`skiff pause`). Cheap: one file read, in
/// the freezer hierarchy (v1) or the container's directory (v2).
pub fn is_frozen(dirs: &[PathBuf]) -> bool {
    if is_v2() {
        return dirs.iter().any(|d| std::fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1"));
    }
    dirs.iter().filter(|d| hierarchy_has(d, "freezer")).any(|d| std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN"))
}
