//! Loading and validating a bundle's `config.json`.
//!
//! Parsing reports the JSON path of a bad value (`linux.namespaces[2].type`);
//! validation then refuses combinations the kernel or the spec would reject
//! later, so that `create` fails before anything has been set up.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// A loaded, validated config with the paths resolved against the bundle.
pub struct Config {
    pub spec: Spec,
    /// Absolute bundle directory.
    pub bundle: PathBuf,
    /// Absolute root filesystem path.
    pub rootfs: PathBuf,
}

impl Config {
    /// Reads `<bundle>/config.json` and validates it.
    pub fn load(bundle: &Path) -> Result<Config> {
        let bundle = std::path::absolute(bundle).map_err(|e| Error::io(format!("resolve bundle {}", bundle.display()), e))?;
        let path = bundle.join("config.json");
        let data = std::fs::read(&path).map_err(|source| Error::ConfigRead { path: path.clone(), source })?;
        let spec = parse(&data)?;
        let root = spec.root().as_ref().ok_or_else(|| Error::config("root", "missing"))?;
        let rootfs = if root.path().is_absolute() { root.path().clone() } else { bundle.join(root.path()) };
        let cfg = Config { spec, bundle, rootfs };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        let spec = &self.spec;
        let v = spec.version();
        if !(v.starts_with("1.") || v == "1") {
            return Err(Error::config("ociVersion", format!("unsupported version {v:?}: skiff runs 1.x configs")));
        }
        match std::fs::metadata(&self.rootfs) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(Error::config("root.path", format!("{} is not a directory", self.rootfs.display()))),
            Err(e) => return Err(Error::config("root.path", format!("{}: {e}", self.rootfs.display()))),
        }
        let process = spec.process().as_ref().ok_or_else(|| Error::config("process", "missing"))?;
        if process.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(Error::config("process.args", "must contain at least one element"));
        }
        if !process.cwd().is_absolute() {
            return Err(Error::config("process.cwd", format!("{:?} is not an absolute path", process.cwd())));
        }
        if let Some(rl) = process.rlimits() {
            let mut seen = HashSet::new();
            for (i, r) in rl.iter().enumerate() {
                if !seen.insert(format!("{:?}", r.typ())) {
                    return Err(Error::config(format!("process.rlimits[{i}].type"), format!("{:?} given twice", r.typ())));
                }
                if r.soft() > r.hard() {
                    return Err(Error::config(format!("process.rlimits[{i}]"), "soft limit is greater than hard limit"));
                }
            }
        }
        let linux = spec.linux().as_ref().ok_or_else(|| Error::config("linux", "missing"))?;
        let mut kinds = HashSet::new();
        let nss = linux.namespaces().clone().unwrap_or_default();
        for (i, ns) in nss.iter().enumerate() {
            if !kinds.insert(ns.typ()) {
                return Err(Error::config(format!("linux.namespaces[{i}]"), format!("malformed spec file: duplicated ns {:?}", ns.typ().to_string())));
            }
            if let Some(p) = ns.path() {
                if !p.is_absolute() {
                    return Err(Error::config(format!("linux.namespaces[{i}].path"), format!("{} is not an absolute path", p.display())));
                }
                if let Err(e) = std::fs::metadata(p) {
                    return Err(Error::config(format!("linux.namespaces[{i}].path"), format!("{}: {e}", p.display())));
                }
            }
        }
        let new_ns = |t: LinuxNamespaceType| nss.iter().any(|n| n.typ() == t && n.path().is_none());
        let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if new_ns(LinuxNamespaceType::User) {
            if linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
                return Err(Error::config("linux.uidMappings", "a new user namespace needs uid mappings"));
            }
            if linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
                return Err(Error::config("linux.gidMappings", "a new user namespace needs gid mappings"));
            }
        } else if has_maps {
            return Err(Error::config("linux.uidMappings", "mappings given without a new user namespace"));
        }
        // A uts namespace of the container's own, new or joined by path (as runc).
        let uts = kinds.contains(&LinuxNamespaceType::Uts);
        if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !uts {
            return Err(Error::config("hostname", "unable to set hostname without a private uts namespace"));
        }
        if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !uts {
            return Err(Error::config("domainname", "unable to set domainname without a private uts namespace"));
        }
        if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) {
            if !new_ns(LinuxNamespaceType::Time) {
                return Err(Error::config("linux.timeOffsets", "time offsets need a new time namespace"));
            }
            for k in linux.time_offsets().as_ref().unwrap().keys() {
                if k != "monotonic" && k != "boottime" {
                    return Err(Error::config(format!("linux.timeOffsets.{k}"), "only monotonic and boottime clocks can be offset"));
                }
            }
        }
        if let Some(sysctl) = linux.sysctl() {
            for key in sysctl.keys() {
                check_sysctl(key, &new_ns)?;
            }
        }
        if let Some(mounts) = spec.mounts() {
            for (i, m) in mounts.iter().enumerate() {
                if m.destination().as_os_str().is_empty() {
                    return Err(Error::config(format!("mounts[{i}].destination"), "empty"));
                }
                if m.destination().components().any(|c| c == std::path::Component::ParentDir) {
                    return Err(Error::config(format!("mounts[{i}].destination"), "must not contain .."));
                }
            }
        }
        if let Some(p) = linux.rootfs_propagation() {
            if !p.is_empty() && crate::rootfs::propagation_flag(p).is_none() {
                return Err(Error::config("linux.rootfsPropagation", format!("unknown propagation {p:?}")));
            }
        }
        Ok(())
    }

    pub fn process(&self) -> &oci_spec::runtime::Process {
        self.spec.process().as_ref().expect("validated")
    }

    pub fn linux(&self) -> &oci_spec::runtime::Linux {
        self.spec.linux().as_ref().expect("validated")
    }
}

/// Parses config.json, naming the JSON path of the first bad value. (A
/// first pass without path tracking would be faster, but a second copy of
/// oci-spec's deserializer is ~300 KiB of code, which a static binary maps.)
pub fn parse(data: &[u8]) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." || path == "?" || path.is_empty() { "config.json".to_string() } else { path };
        Error::config(field, inner.to_string())
    })
}

/// A sysctl is only safe to set when its namespace is the container's own.
fn check_sysctl(key: &str, new_ns: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<()> {
    let field = format!("linux.sysctl.{key}");
    let ipc = key.starts_with("fs.mqueue.")
        || matches!(key, "kernel.msgmax" | "kernel.msgmnb" | "kernel.msgmni" | "kernel.sem" | "kernel.shmall" | "kernel.shmmax" | "kernel.shmmni" | "kernel.shm_rmid_forced");
    if ipc {
        if !new_ns(LinuxNamespaceType::Ipc) {
            return Err(Error::config(field, "needs a new ipc namespace"));
        }
        return Ok(());
    }
    if key.starts_with("net.") {
        if !new_ns(LinuxNamespaceType::Network) {
            return Err(Error::config(field, "needs a new network namespace"));
        }
        return Ok(());
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        if !new_ns(LinuxNamespaceType::Uts) {
            return Err(Error::config(field, "needs a new uts namespace"));
        }
        return Ok(());
    }
    Err(Error::config(field, "not a namespaced sysctl: refusing to change it for the host"))
}
