//! `NOTIFY_SOCKET`: sd_notify from inside the container reaches the
//! caller's socket, as runc passes it on.
//!
//! - `create` (and `run`), when the runtime's environment has
//!   NOTIFY_SOCKET, makes `notify/` in the container's state directory,
//!   bind-mounts it read-only on [`DIR_IN_CONTAINER`] and gives the process
//!   `NOTIFY_SOCKET=`[`SOCKET_IN_CONTAINER`];
//! - `start` (and `run`) binds a datagram socket there before releasing the
//!   process, waits until the process sends a `READY=` line (or exits), and
//!   sends that line and `MAINPID=<host pid of the init>` to the caller's
//!   socket, which then watches the container's init as its main process.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};

use crate::error::{Context, Error, Result};

/// The directory in the state directory, and where it appears inside.
pub const DIR: &str = "notify";
pub const DIR_IN_CONTAINER: &str = "/run/notify";
pub const SOCKET_IN_CONTAINER: &str = "/run/notify/notify.sock";
const SOCKET: &str = "notify.sock";

/// The caller's socket, from the runtime's environment.
pub fn host_socket() -> Option<PathBuf> {
    std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty()).map(PathBuf::from)
}

/// The bind mount that shows the state's `notify/` inside the container.
pub fn mount(container_dir: &Path) -> oci_spec::runtime::Mount {
    let mut m = oci_spec::runtime::Mount::default();
    m.set_destination(PathBuf::from(DIR_IN_CONTAINER));
    m.set_typ(Some("bind".into()));
    m.set_source(Some(container_dir.join(DIR)));
    m.set_options(Some(["bind", "nosuid", "noexec", "nodev", "ro"].map(String::from).to_vec()));
    m
}

/// The socket skiff listens on while a container starts.
pub struct Listener {
    sock: OwnedFd,
    host: PathBuf,
}

impl Listener {
    /// Binds the container's socket, if it was created with one.
    pub fn bind(container_dir: &Path, host: &Path) -> Result<Option<Listener>> {
        let dir = container_dir.join(DIR);
        let dirfd = match nix::fcntl::open(&dir, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()) {
            // SAFETY: `open` just returned this descriptor.
            Ok(fd) => unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) },
            Err(nix::errno::Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(Error::errno(format!("open {}", dir.display()), e)),
        };
        // Through the directory's descriptor: the state path may be longer
        // than a socket address can hold.
        let path = format!("/proc/self/fd/{}/{SOCKET}", dirfd.as_raw_fd());
        let _ = std::fs::remove_file(&path);
        let sock = nix::sys::socket::socket(AddressFamily::Unix, SockType::Datagram, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None).ctx(|| "create the notify socket".into())?;
        let addr = UnixAddr::new(path.as_str()).ctx(|| format!("notify socket {path}"))?;
        nix::sys::socket::bind(sock.as_raw_fd(), &addr).ctx(|| format!("bind {}", dir.join(SOCKET).display()))?;
        // Any user of the container may notify.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777)).ctx(|| format!("chmod {}", dir.join(SOCKET).display()))?;
        Ok(Some(Listener { sock, host: host.to_path_buf() }))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Reads what has arrived; once a `READY=` line is among it, sends that
    /// line and `MAINPID=<pid>` on to the caller's socket and returns true.
    pub fn forward_ready(&self, pid: i32) -> Result<bool> {
        let mut buf = [0u8; 4096];
        loop {
            let n = match nix::sys::socket::recv(self.sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(nix::errno::Errno::EAGAIN) => return Ok(false),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::errno("read the notify socket", e)),
            };
            if let Some(line) = buf[..n].split(|&b| b == b'\n').find(|l| l.starts_with(b"READY=")) {
                let mut msg = line.to_vec();
                msg.extend_from_slice(format!("\nMAINPID={pid}\n").as_bytes());
                self.send_to_host(&msg)?;
                return Ok(true);
            }
        }
    }

    fn send_to_host(&self, msg: &[u8]) -> Result<()> {
        let s = nix::sys::socket::socket(AddressFamily::Unix, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None).ctx(|| "create a socket".into())?;
        // systemd's abstract sockets start with '@'.
        let host = self.host.to_string_lossy();
        let addr = match host.strip_prefix('@') {
            Some(name) => UnixAddr::new_abstract(name.as_bytes()),
            None => UnixAddr::new(&self.host),
        }
        .ctx(|| format!("NOTIFY_SOCKET {host}"))?;
        nix::sys::socket::sendto(s.as_raw_fd(), msg, &addr, MsgFlags::empty()).ctx(|| format!("send to NOTIFY_SOCKET {host}"))?;
        Ok(())
    }

    /// Waits until the process sends READY (passed on) or `pidfd`'s
    /// process exits.
    pub fn wait(&self, pidfd: BorrowedFd, pid: i32) -> Result<()> {
        loop {
            let mut fds = [libc::pollfd { fd: self.sock.as_raw_fd(), events: libc::POLLIN, revents: 0 }, libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
            // SAFETY: a valid array of two pollfds.
            if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(Error::io("poll the notify socket", std::io::Error::last_os_error()));
            }
            if fds[0].revents != 0 && self.forward_ready(pid)? {
                return Ok(());
            }
            if fds[1].revents != 0 {
                return Ok(());
            }
        }
    }
}
