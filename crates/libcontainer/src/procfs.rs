//! Every read and write the runtime makes under `/proc`, through a procfs
//! handle that `pathrs` has verified (a private, detached procfs instance
//! where the kernel allows one, else a checked `/proc`) and resolved without
//! following symlinks or crossing mounts: a mount or symlink the container
//! planted in its `/proc` (a volume on `/proc/sys/net`, say) cannot redirect
//! a write to another file (CVE-2025-52881 class).

use std::io::{Read, Write};
use std::path::Path;

use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle, ProcfsHandleBuilder};

use crate::error::{Error, Result};

/// A verified procfs.
pub struct Proc(ProcfsHandle);

fn err(what: &str, e: pathrs::error::Error) -> Error {
    let io = match e.kind() {
        pathrs::error::ErrorKind::OsError(Some(n)) => std::io::Error::from_raw_os_error(n),
        _ => std::io::Error::other(e.to_string()),
    };
    Error::io(what.to_string(), io)
}

impl Proc {
    /// A new handle of this process's own: all of `/proc` (sysctls too), in
    /// the namespaces it is in now. Not cached, so an init never uses the
    /// runtime's.
    pub fn new_private() -> Result<Proc> {
        ProcfsHandleBuilder::new().unmasked().build().map(Proc).map_err(|e| err("open a private procfs", e))
    }

    /// The runtime's handle (process directories only; cached by pathrs).
    pub fn runtime() -> Result<Proc> {
        ProcfsHandle::new().map(Proc).map_err(|e| err("open procfs", e))
    }

    /// Writes `data` to `/proc/sys/<key with dots as slashes>`.
    pub fn write_sysctl(&self, key: &str, data: &str) -> Result<()> {
        self.write(ProcfsBase::ProcRoot, &format!("sys/{}", key.replace('.', "/")), data, "linux.sysctl")
    }

    /// Writes `data` to `/proc/<pid>/<file>`; an error names `field`.
    pub fn write_pid(&self, pid: i32, file: &str, data: &str, field: &str) -> Result<()> {
        self.write(ProcfsBase::ProcPid(pid as u32), file, data, field)
    }

    /// Writes `data` to `/proc/self/<file>`; an error names `field`.
    pub fn write_self(&self, file: &str, data: &str, field: &str) -> Result<()> {
        self.write(ProcfsBase::ProcSelf, file, data, field)
    }

    /// Reads `/proc/self/<file>`.
    pub fn read_self(&self, file: &str) -> Result<String> {
        let mut f = self.0.open(ProcfsBase::ProcSelf, file, OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC).map_err(|e| err(&format!("open /proc/self/{file}"), e))?;
        let mut s = String::new();
        f.read_to_string(&mut s).map_err(|e| Error::io(format!("read /proc/self/{file}"), e))?;
        Ok(s)
    }

    /// Opens through the verified handle and writes; an error reads
    /// "<field>: write /proc/...: <reason>".
    fn write(&self, base: ProcfsBase, sub: &str, data: &str, field: &str) -> Result<()> {
        let what = match base {
            ProcfsBase::ProcPid(p) => format!("{field}: write /proc/{p}/{sub}"),
            ProcfsBase::ProcSelf => format!("{field}: write /proc/self/{sub}"),
            _ => format!("{field}: write /proc/{sub}"),
        };
        let mut f = self.0.open(base, Path::new(sub), OpenFlags::O_WRONLY | OpenFlags::O_CLOEXEC).map_err(|e| err(&what, e))?;
        f.write_all(data.as_bytes()).map_err(|e| Error::io(what, e))
    }
}
