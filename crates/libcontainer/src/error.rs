//! The library's error type. Messages are lowercase, specific, and follow
//! runc's wording wherever callers (containerd, CRI-O, dockerd) match on it.

use std::io;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle's config.json could not be read.
    #[error("cannot read {path}: {}", strerror(source))]
    ConfigRead { path: PathBuf, source: io::Error },
    /// The config.json is not valid JSON or does not match the spec's schema;
    /// `field` is the JSON path of the offending value.
    #[error("invalid config.json: {field}: {reason}")]
    Config { field: String, reason: String },
    /// The process of an `exec` (its `--process` JSON or its flags) is
    /// invalid; `field` is the JSON path of the offending value.
    #[error("invalid process: {field}: {reason}")]
    Process { field: String, reason: String },
    /// The new resources of an `update` (its JSON or its flags) are
    /// invalid; `field` is the JSON path (or the flag) of the value.
    #[error("invalid resources: {field}: {reason}")]
    Resources { field: String, reason: String },
    #[error("invalid container id {0:?}: {1}")]
    InvalidId(String, &'static str),
    #[error("container with id exists: {0}")]
    Exists(String),
    #[error("container {0:?} does not exist")]
    NotExist(String),
    /// An operation that the container's current status does not allow.
    #[error("{0}")]
    BadState(String),
    #[error("container not running")]
    NotRunning,
    /// A system call or file operation failed; `what` says which and on what.
    #[error("{what}: {}", strerror(source))]
    Io { what: String, source: io::Error },
    /// The container's init reported a failure before exec.
    #[error("{0}")]
    Init(String),
    #[error("cgroup: {0}")]
    Cgroup(String),
    /// A pre-existing cgroup is frozen: the init would freeze in it.
    #[error("container's cgroup unexpectedly frozen ({})", .0.display())]
    CgroupFrozen(PathBuf),
    #[error("{0}")]
    Hook(String),
    #[error("seccomp: {0}")]
    Seccomp(String),
    /// CRIU is missing, refused or failed (its own reason included).
    #[error("{0}")]
    Criu(String),
    #[error("terminal: {0}")]
    Tty(String),
    /// A held SIGTERM, SIGINT or SIGHUP came while a command ran: what it
    /// made is undone.
    #[error("interrupted by {0}: the container was removed again")]
    Interrupted(String),
}

/// An OS error as runc prints it: "no such file or directory", without
/// Rust's " (os error 2)" suffix or capital letter.
pub fn strerror(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let s = nix::errno::Errno::from_raw(n).desc();
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => s.to_string(),
            }
        }
        None => e.to_string(),
    }
}

/// Rewrites every Rust io::Error rendering in `msg` ("No such file or
/// directory (os error 2)") the way runc prints it ("no such file or
/// directory"), for messages that embed an error from another crate.
pub fn runc_wording(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(" (os error ") {
        let tail = &rest[i + " (os error ".len()..];
        let Some(end) = tail.find(')') else { break };
        let Ok(n) = tail[..end].parse::<i32>() else {
            out.push_str(&rest[..i + 1]);
            rest = &rest[i + 1..];
            continue;
        };
        let desc = nix::errno::Errno::from_raw(n).desc();
        let head = &rest[..i];
        match head.strip_suffix(desc) {
            Some(h) => {
                out.push_str(h);
                out.push_str(&strerror(&io::Error::from_raw_os_error(n)));
            }
            None => out.push_str(head),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

impl Error {
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io { what: what.into(), source }
    }
    pub fn errno(what: impl Into<String>, errno: nix::errno::Errno) -> Self {
        Error::Io { what: what.into(), source: io::Error::from_raw_os_error(errno as i32) }
    }
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config { field: field.into(), reason: reason.into() }
    }
}

/// Adds "what was being done" to an `io::Result` or `nix::Result`.
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, io::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(what(), e))
    }
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::errno(what(), e))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn os_error_suffixes_become_runc_wording() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(super::runc_wording(&format!("open /x: {e}")), "open /x: no such file or directory");
        assert_eq!(super::runc_wording("plain message"), "plain message");
        let e13 = std::io::Error::from_raw_os_error(13);
        assert_eq!(super::runc_wording(&format!("a: {e}; b: {e13}")), "a: no such file or directory; b: permission denied");
    }
}
