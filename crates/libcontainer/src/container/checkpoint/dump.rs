//! `checkpoint`: CRIU dumps the container's process tree into the image
//! directory (or, with `--pre-dump`, only its memory, tracking what changes
//! after). Without `--leave-running` the processes are gone afterwards and
//! the container is removed, as runc does (its state, cgroup and poststop
//! hooks), so that the same id can be restored.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

use rust_criu::rust_criu_protobuf::rpc;

use super::{criu, mounts, CriuOptions};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::state::{State, Status, Store};

/// `checkpoint`'s own options.
pub struct CheckpointOptions<'a> {
    pub common: CriuOptions<'a>,
    /// `--parent-path`: the previous (pre-)dump, relative to the image path.
    pub parent_path: Option<&'a Path>,
    pub leave_running: bool,
    pub pre_dump: bool,
    /// `--status-fd`: written a `\0` once lazy pages can be served.
    pub status_fd: Option<RawFd>,
    /// `--page-server ADDRESS:PORT`.
    pub page_server: Option<(String, i32)>,
}

/// `checkpoint`.
pub fn checkpoint(store: &Store, id: &str, o: &CheckpointOptions) -> Result<()> {
    super::require_root("checkpoint")?;
    let dir = store.open(id)?;
    let st = dir.load()?;
    match st.status(&dir.path) {
        Status::Running | Status::Paused => {}
        s => return Err(Error::BadState(format!("container cannot be checkpointed in {s} state"))),
    }
    let cfg = Config::load(&st.bundle)?;
    let image = o.common.image_path;
    super::make_dir(image)?;
    let work = o.common.work_path.map(Path::to_path_buf).unwrap_or_else(|| dir.path.join("criu.work"));
    super::make_dir(&work)?;
    if let Some(p) = o.parent_path {
        if !image.join(p).is_dir() {
            return Err(Error::Criu(format!("invalid --parent-path {}: no such directory relative to the image path {}", p.display(), image.display())));
        }
    }
    let status_fd = o.status_fd.map(check_status_fd).transpose()?;
    let image_fd = super::open_dir(image)?;
    let work_fd = super::open_dir(&work)?;

    let mut opts = super::base_opts(&o.common, &cfg, if o.pre_dump { "pre-dump.log" } else { "dump.log" });
    opts.set_images_dir_fd(image_fd.as_raw_fd());
    opts.set_work_dir_fd(work_fd.as_raw_fd());
    opts.set_root(cfg.rootfs.to_string_lossy().into_owned());
    opts.set_pid(st.pid);
    opts.set_leave_running(o.leave_running || o.pre_dump);
    opts.external = mounts::dump_externals(&cfg)?;
    if let Some(d) = freezer_dir(&st) {
        opts.set_freeze_cgroup(d.to_string_lossy().into_owned());
    }
    if let Some((addr, port)) = &o.page_server {
        let mut ps = rpc::Criu_page_server_info::new();
        ps.set_address(addr.clone());
        ps.set_port(*port);
        opts.ps = protobuf::MessageField::some(ps);
    }
    if let Some(p) = o.parent_path {
        opts.set_parent_img(p.to_string_lossy().into_owned());
    }
    if o.parent_path.is_some() || o.pre_dump {
        opts.set_track_mem(true);
    }
    if !o.pre_dump {
        opts.ext_mnt = mounts::dump_ext_mounts(&cfg, st.pid);
        opts.ext_mnt.extend(mounts::cgroup_ext_mounts(&cfg, st.member_dirs(), false));
        mounts::write_descriptors(st.pid, image)?;
    }
    let kind = if o.pre_dump { rpc::Criu_req_type::PRE_DUMP } else { rpc::Criu_req_type::DUMP };
    let log = work.join(opts.log_file());
    let req = criu::Request { kind, opts, log, stderr: work.join("criu.err") };
    let mut status_fd = status_fd;
    let mut notify = |script: &str, _pid: i32, _fd| {
        if script == "status-ready" {
            if let Some(fd) = status_fd.take() {
                ready(fd);
            }
        }
        Ok(())
    };
    criu::call(o.common.criu, req, &[image_fd.as_fd(), work_fd.as_fd()], &mut |_, _| Ok(()), &mut notify)?;
    if o.leave_running || o.pre_dump {
        return Ok(());
    }
    // CRIU killed the processes; what is left goes, as runc destroys it.
    super::super::kill_and_wait(&st);
    super::super::destroy(dir, &st)
}

/// The directory CRIU freezes the container with: its v2 cgroup, or its
/// directory in the v1 freezer hierarchy.
fn freezer_dir(st: &State) -> Option<PathBuf> {
    let dirs = st.member_dirs();
    if crate::cgroups::is_v2() {
        return dirs.first().cloned();
    }
    dirs.iter().find(|d| crate::cgroups::hierarchy_has(d, "freezer")).cloned()
}

/// `--status-fd` must be an open descriptor, open for writing.
fn check_status_fd(fd: RawFd) -> Result<RawFd> {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).map_err(|e| Error::Criu(format!("invalid --status-fd {fd}: {}", e.desc().to_lowercase())))?;
    if flags & (libc::O_WRONLY | libc::O_RDWR) == 0 {
        return Err(Error::Criu(format!("invalid --status-fd {fd}: not open for writing")));
    }
    Ok(fd)
}

/// Tells the caller, on `--status-fd`, that the lazy pages can be served:
/// one `\0`, then the descriptor is closed.
fn ready(fd: RawFd) {
    // SAFETY: the caller passed us this open descriptor (checked by
    // check_status_fd) to write to once and close; nothing else uses it.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    if let Err(e) = nix::unistd::write(fd, &[0]) {
        tracing::warn!("write to --status-fd: {}", e.desc().to_lowercase());
    }
    let _ = nix::unistd::close(fd.as_raw_fd());
}
