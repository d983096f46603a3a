//! What CRIU must be told about the world outside the container: the bind
//! mounts whose sources are the host's (external mounts, by destination),
//! the namespaces the config gives by path (external, given back on
//! restore), and the stdio pipes the caller holds the other ends of.

use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Mount};
use rust_criu::rust_criu_protobuf::rpc;

use crate::config::Config;
use crate::error::{Context, Error, Result};

/// The file in the image directory naming the init's stdio at dump time.
pub(super) const DESCRIPTORS: &str = "descriptors.json";

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind") || m.options().iter().flatten().any(|o| o == "bind" || o == "rbind")
}

fn ext_mount(key: &str, val: &str) -> rpc::Ext_mount_map {
    let mut e = rpc::Ext_mount_map::new();
    e.set_key(key.to_string());
    e.set_val(val.to_string());
    e
}

/// Dump: each bind mount is external, named by its destination; each
/// masked file (a bind of /dev/null) is named `/dev/null`; each device
/// node by its path (bind-mounted ones are mounts).
pub(super) fn dump_ext_mounts(cfg: &Config, init: i32) -> Vec<rpc::Ext_mount_map> {
    let mut v: Vec<rpc::Ext_mount_map> = Vec::new();
    for m in cfg.spec.mounts().iter().flatten().filter(|m| is_bind(m)) {
        let d = m.destination().to_string_lossy();
        v.push(ext_mount(&d, &d));
    }
    for p in cfg.linux().masked_paths().iter().flatten() {
        let inside = format!("/proc/{init}/root/{}", p.trim_start_matches('/'));
        if std::fs::metadata(&inside).is_ok_and(|m| !m.is_dir()) {
            v.push(ext_mount(p, "/dev/null"));
        }
    }
    v.extend(device_mounts(cfg));
    v
}

/// Every device node of the container, the default ones included, by its
/// path (as runc lists them): the caller's stdio on the host's /dev/null is
/// then a file CRIU can name.
fn device_mounts(cfg: &Config) -> Vec<rpc::Ext_mount_map> {
    let devices = crate::devices::plan(cfg.linux()).unwrap_or_default();
    devices.iter().map(|d| d.path.to_string_lossy().into_owned()).map(|p| ext_mount(&p, &p)).collect()
}

/// Restore: the same names, mapped to the host's sources.
pub(super) fn restore_ext_mounts(cfg: &Config) -> Vec<rpc::Ext_mount_map> {
    let mut v: Vec<rpc::Ext_mount_map> = Vec::new();
    for m in cfg.spec.mounts().iter().flatten().filter(|m| is_bind(m)) {
        let src = m.source().clone().unwrap_or_default();
        let src = if src.is_relative() { cfg.bundle.join(src) } else { src };
        v.push(ext_mount(&m.destination().to_string_lossy(), &src.to_string_lossy()));
    }
    if cfg.linux().masked_paths().as_ref().is_some_and(|m| !m.is_empty()) {
        v.push(ext_mount("/dev/null", "/dev/null"));
    }
    v.extend(device_mounts(cfg));
    v
}

/// Without a cgroup namespace the container's cgroup mount is a bind of
/// its host cgroup directory (v2), or a tmpfs of binds, one per hierarchy
/// (v1): external mounts, named by where they are in the container. On
/// restore the names map to the new container's directories (`dirs`).
pub(super) fn cgroup_ext_mounts(cfg: &Config, dirs: &[PathBuf], restore: bool) -> Vec<rpc::Ext_mount_map> {
    let cgroupns = cfg.linux().namespaces().iter().flatten().any(|n| n.typ() == LinuxNamespaceType::Cgroup);
    let mut v = Vec::new();
    if cgroupns {
        return v;
    }
    for m in cfg.spec.mounts().iter().flatten().filter(|m| matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2"))) {
        let dest = m.destination();
        for d in dirs {
            let Ok(rel) = d.strip_prefix("/sys/fs/cgroup") else { continue };
            let key = if crate::cgroups::is_v2() {
                dest.to_path_buf()
            } else {
                match rel.components().next() {
                    Some(name) => dest.join(name),
                    None => continue,
                }
            };
            let key = key.to_string_lossy();
            v.push(ext_mount(&key, &if restore { d.to_string_lossy() } else { key.clone() }));
        }
    }
    v
}

/// CRIU's name for a namespace type, and the key of an external one
/// (`extRootNetNS`, as runc names them, so images move between runtimes).
fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Time => "time",
    }
}

fn ext_key(t: LinuxNamespaceType) -> String {
    let n = ns_name(t);
    format!("extRoot{}{}NS", n[..1].to_uppercase(), &n[1..])
}

fn by_path(cfg: &Config) -> impl Iterator<Item = (LinuxNamespaceType, PathBuf)> + '_ {
    cfg.linux().namespaces().iter().flatten().filter_map(|n| n.path().clone().map(|p| (n.typ(), p)))
}

/// Dump: a network or pid namespace given by path is external
/// (`net[INODE]:extRootNetNS`): CRIU leaves it alone and expects it back.
pub(super) fn dump_externals(cfg: &Config) -> Result<Vec<String>> {
    let mut v = Vec::new();
    for (t, p) in by_path(cfg) {
        if matches!(t, LinuxNamespaceType::Network | LinuxNamespaceType::Pid) {
            let ino = std::fs::metadata(&p).ctx(|| format!("stat {}", p.display()))?.ino();
            v.push(format!("{}[{ino}]:{}", ns_name(t), ext_key(t)));
        }
    }
    Ok(v)
}

/// Restore: the namespaces given by path. Network and pid ones are opened
/// and handed to CRIU as inherited descriptors under their keys; the
/// others are joined by CRIU (`join_ns`). A cgroup namespace by path is
/// refused: CRIU cannot join one.
pub(super) fn restore_namespaces(cfg: &Config, opts: &mut rpc::Criu_opts) -> Result<Vec<OwnedFd>> {
    let mut fds = Vec::new();
    for (t, p) in by_path(cfg) {
        match t {
            LinuxNamespaceType::Network | LinuxNamespaceType::Pid => {
                let fd = super::super::open_fd(&p, nix::fcntl::OFlag::O_RDONLY)
                    .map_err(|e| Error::Criu(format!("the {} namespace to restore into ({}) must exist: {e}", ns_name(t), p.display())))?;
                let mut i = rpc::Inherit_fd::new();
                i.set_key(ext_key(t));
                i.set_fd(std::os::fd::AsRawFd::as_raw_fd(&fd));
                opts.inherit_fd.push(i);
                fds.push(fd);
            }
            LinuxNamespaceType::Cgroup => return Err(Error::config("linux.namespaces", "criu cannot restore into a cgroup namespace given by path")),
            _ => {
                let mut j = rpc::Join_namespace::new();
                j.set_ns(ns_name(t).to_string());
                j.set_ns_file(p.to_string_lossy().into_owned());
                opts.join_ns.push(j);
            }
        }
    }
    Ok(fds)
}

/// Dump: what the init's stdio are (`pipe:[123]`, `/dev/null`...), for
/// restore to hand the new caller's pipes in their place.
pub(super) fn write_descriptors(init: i32, image_dir: &Path) -> Result<()> {
    let fds: Vec<String> = (0..3).map(|i| std::fs::read_link(format!("/proc/{init}/fd/{i}")).map(|l| l.to_string_lossy().into_owned()).unwrap_or_default()).collect();
    let path = image_dir.join(DESCRIPTORS);
    crate::state::write_atomic(&path, &serde_json::to_vec(&fds).expect("json"), 0o600)
}

/// Restore: the stdio the checkpointed init had on pipes are ours now
/// (the caller's pipes): `inherit` holds copies of our 0, 1, 2, and each
/// pipe key is given the copy of the same number.
pub(super) fn restore_descriptors(image_dir: &Path, inherit: &[OwnedFd], opts: &mut rpc::Criu_opts) -> Result<()> {
    let path = image_dir.join(DESCRIPTORS);
    let data = std::fs::read(&path).ctx(|| format!("open {}", path.display()))?;
    let fds: Vec<String> = serde_json::from_slice(&data).map_err(|e| Error::Criu(format!("{}: {e}", path.display())))?;
    for (key, fd) in fds.iter().zip(inherit) {
        if key.contains("pipe:") {
            let mut i = rpc::Inherit_fd::new();
            i.set_key(key.clone());
            i.set_fd(std::os::fd::AsRawFd::as_raw_fd(fd));
            opts.inherit_fd.push(i);
        }
    }
    Ok(())
}

/// Restore: the mount points CRIU will mount on, made in the rootfs as
/// `create` would (below a tmpfs they are not: CRIU restores the tmpfs with
/// its content). Resolved inside the rootfs: a symlink in the image cannot
/// make them on the host.
pub(super) fn make_mountpoints(cfg: &Config) -> Result<()> {
    let mounts = cfg.spec.mounts().clone().unwrap_or_default();
    let tmpfs: Vec<&Path> = mounts.iter().filter(|m| m.typ().as_deref() == Some("tmpfs")).map(|m| m.destination().as_path()).collect();
    let root = crate::safe_path::Root::open(&cfg.rootfs).ctx(|| format!("open {}", cfg.rootfs.display()))?;
    for m in &mounts {
        let d = m.destination();
        if tmpfs.iter().any(|t| d != *t && d.starts_with(t)) || m.typ().as_deref() == Some("cgroup") {
            continue;
        }
        let file = is_bind(m) && m.source().as_ref().is_some_and(|s| std::fs::metadata(if s.is_relative() { cfg.bundle.join(s) } else { s.clone() }).is_ok_and(|x| !x.is_dir()));
        root.mkdir_all(d, file, 0o755).ctx(|| format!("create mount point {} in the rootfs", d.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle with a bind mount, a masked file and a netns by path.
    fn bundle(tag: &str) -> (PathBuf, Config) {
        let dir = std::env::temp_dir().join(format!("skiff-criu-mounts-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let mut spec = serde_json::to_value(crate::spec::default_spec(false)).unwrap();
        spec["mounts"].as_array_mut().unwrap().push(serde_json::json!({"destination": "/data", "type": "bind", "source": "data", "options": ["rbind"]}));
        let ns = spec["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
        ns.push(serde_json::json!({"type": "network", "path": "/proc/self/ns/net"}));
        std::fs::write(dir.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
        let cfg = Config::load(&dir).unwrap();
        (dir, cfg)
    }

    fn pairs(v: &[rpc::Ext_mount_map]) -> Vec<(String, String)> {
        v.iter().map(|e| (e.key().to_string(), e.val().to_string())).collect()
    }

    #[test]
    fn binds_and_devices_are_named_by_destination_and_mapped_back_to_their_sources() {
        let (dir, cfg) = bundle("ext");
        let dump = pairs(&dump_ext_mounts(&cfg, std::process::id() as i32));
        assert!(dump.contains(&("/data".into(), "/data".into())), "{dump:?}");
        assert!(dump.contains(&("/dev/null".into(), "/dev/null".into())), "the default devices: {dump:?}");
        let restore = pairs(&restore_ext_mounts(&cfg));
        let src = dir.join("data").to_string_lossy().into_owned();
        assert!(restore.contains(&("/data".into(), src)), "{restore:?}");
        assert!(restore.contains(&("/dev/null".into(), "/dev/null".into())), "masked files: {restore:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_netns_by_path_is_external_under_runc_s_key_and_given_back() {
        let (dir, cfg) = bundle("ns");
        let ino = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        assert_eq!(dump_externals(&cfg).unwrap(), vec![format!("net[{ino}]:extRootNetNS")]);
        let mut opts = rpc::Criu_opts::new();
        let fds = restore_namespaces(&cfg, &mut opts).unwrap();
        assert_eq!(fds.len(), 1);
        assert_eq!((opts.inherit_fd[0].key(), opts.inherit_fd[0].fd()), ("extRootNetNS", std::os::fd::AsRawFd::as_raw_fd(&fds[0])));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
