//! `checkpoint` and `restore`: a running container saved to a CRIU image
//! and brought back from one, through CRIU's RPC interface (`criu swrk`),
//! as runc does it, so that containerd, Podman and Kubernetes can drive
//! skiff as they drive runc.
//!
//! - `criu.rs`: the RPC conversation (request, notifications, response);
//! - `mounts.rs`: what CRIU is told about the outside world (external bind
//!   mounts, namespaces given by path, the caller's stdio pipes);
//! - `dump.rs`: [`checkpoint`] (dump and pre-dump);
//! - `restore.rs`: [`restore`], which makes the container (state, cgroup,
//!   rootfs mount point) and has CRIU bring its processes back as our
//!   children (`rst_sibling`), hence the caller's once we exit.

mod criu;
mod dump;
mod mounts;
mod restore;

use std::path::Path;

use rust_criu::rust_criu_protobuf::rpc;

pub use criu::works as criu_works;
pub use dump::{checkpoint, CheckpointOptions};
pub use restore::{restore, RestoreOptions};

use crate::config::Config;
use crate::error::{Error, Result};

/// How CRIU treats the container's cgroups (`--manage-cgroups-mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupsMode {
    /// Restore the properties of cgroups CRIU creates (CRIU's default).
    Soft,
    /// Restore every property.
    Full,
    /// Fail when the cgroup tree differs.
    Strict,
    /// Leave cgroups alone (skiff still puts the restored container in its own).
    Ignore,
}

impl CgroupsMode {
    pub fn parse(s: &str) -> Result<CgroupsMode> {
        match s {
            "soft" => Ok(CgroupsMode::Soft),
            "full" => Ok(CgroupsMode::Full),
            "strict" => Ok(CgroupsMode::Strict),
            "ignore" => Ok(CgroupsMode::Ignore),
            _ => Err(Error::Criu(format!("invalid --manage-cgroups-mode {s:?}: expected soft, full, strict or ignore"))),
        }
    }

    fn rpc(self) -> rpc::Criu_cg_mode {
        match self {
            CgroupsMode::Soft => rpc::Criu_cg_mode::SOFT,
            CgroupsMode::Full => rpc::Criu_cg_mode::FULL,
            CgroupsMode::Strict => rpc::Criu_cg_mode::STRICT,
            CgroupsMode::Ignore => rpc::Criu_cg_mode::IGNORE,
        }
    }
}

/// `--empty-ns`: namespaces CRIU creates empty instead of restoring
/// (CRIU can only do that for the network namespace).
pub fn parse_empty_ns(names: &[String]) -> Result<u32> {
    let mut mask = 0;
    for n in names.iter().flat_map(|s| s.split(',')).filter(|s| !s.is_empty()) {
        match n {
            "network" | "net" => mask |= libc::CLONE_NEWNET as u32,
            _ => return Err(Error::Criu(format!("invalid --empty-ns {n:?}: criu can only create an empty network namespace"))),
        }
    }
    Ok(mask)
}

/// `--page-server ADDRESS:PORT`.
pub fn parse_page_server(s: &str) -> Result<(String, i32)> {
    let bad = || Error::Criu(format!("invalid --page-server {s:?}: expected ADDRESS:PORT"));
    let (addr, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: i32 = port.parse().ok().filter(|p| (1..=65535).contains(p)).ok_or_else(bad)?;
    if addr.is_empty() {
        return Err(bad());
    }
    Ok((addr.trim_start_matches('[').trim_end_matches(']').to_string(), port))
}

/// What `checkpoint` and `restore` share.
pub struct CriuOptions<'a> {
    /// The CRIU binary (`--criu`, default `criu` in $PATH).
    pub criu: &'a Path,
    /// The image directory (`--image-path`).
    pub image_path: &'a Path,
    /// CRIU's work directory (`--work-path`), for its logs; default
    /// `criu.work` in the container's state directory, as runc's.
    pub work_path: Option<&'a Path>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<CgroupsMode>,
    /// CLONE_NEW* bits of `--empty-ns`.
    pub empty_ns: u32,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
}

/// The options every request carries, from the flags and the config.
fn base_opts(o: &CriuOptions, cfg: &Config, log_file: &str) -> rpc::Criu_opts {
    let mut r = rpc::Criu_opts::new();
    r.set_log_level(4);
    r.set_log_file(log_file.to_string());
    r.set_manage_cgroups(true);
    r.set_notify_scripts(true);
    r.set_orphan_pts_master(true);
    r.set_shell_job(o.shell_job);
    r.set_tcp_established(o.tcp_established);
    r.set_ext_unix_sk(o.ext_unix_sk);
    r.set_file_locks(o.file_locks);
    r.set_auto_dedup(o.auto_dedup);
    r.set_lazy_pages(o.lazy_pages);
    if o.empty_ns != 0 {
        r.set_empty_ns(o.empty_ns);
    }
    if let Some(m) = o.manage_cgroups_mode {
        r.set_manage_cgroups_mode(m.rpc());
    }
    // A CRIU configuration file: the one the annotation names (none when
    // it is empty), else skiff's (CRIU ignores a missing one).
    match cfg.spec.annotations().as_ref().and_then(|a| a.get("org.criu.config")) {
        Some(f) if f.is_empty() => {}
        Some(f) => r.set_config_file(f.clone()),
        None => r.set_config_file("/etc/criu/skiff.conf".into()),
    }
    r
}

/// Makes `p` a directory (0700) if it is not one yet.
fn make_dir(p: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).recursive(true).create(p) {
        Ok(()) => Ok(()),
        Err(e) => Err(Error::io(format!("create {}", p.display()), e)),
    }
}

/// Opens a directory for CRIU (which gets it by number).
fn open_dir(p: &Path) -> Result<std::os::fd::OwnedFd> {
    super::open_fd(p, nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY)
}

/// CRIU needs root (its restore and most of its dump are privileged).
fn require_root(what: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::Criu(format!("{what} needs root: criu cannot run unprivileged here")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values_are_parsed_or_refused_by_name() {
        assert_eq!(CgroupsMode::parse("full").unwrap(), CgroupsMode::Full);
        assert!(CgroupsMode::parse("weird").unwrap_err().to_string().contains("--manage-cgroups-mode"));
        assert_eq!(parse_empty_ns(&["network".into()]).unwrap(), libc::CLONE_NEWNET as u32);
        assert!(parse_empty_ns(&["pid".into()]).unwrap_err().to_string().contains("--empty-ns"));
        assert_eq!(parse_page_server("10.0.0.1:27").unwrap(), ("10.0.0.1".to_string(), 27));
        assert_eq!(parse_page_server("[::1]:27").unwrap(), ("::1".to_string(), 27));
        assert!(parse_page_server("host").is_err() && parse_page_server(":1").is_err() && parse_page_server("a:0").is_err());
    }
}
