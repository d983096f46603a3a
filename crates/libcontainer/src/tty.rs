//! Terminals: the container's console pty and the runtime's relay.
//!
//! # Container side (`process.terminal: true`)
//!
//! These run in the container init between clone and exec, after the
//! container's `/dev/pts` (a `newinstance,ptmxmode=0666` devpts) is mounted
//! and the root is pivoted, so `/dev/ptmx` is the container's own. They make
//! only the allocations of building the pty path.
//!
//! 1. [`open_console`] opens `/dev/ptmx`, unlocks the pty, opens the peer
//!    (with `TIOCGPTPEER` where the kernel has it, which cannot be fooled by
//!    a path swapped under us; by path otherwise) and applies
//!    `process.consoleSize`.
//! 2. The rootfs code bind-mounts [`Pty::name`] onto `/dev/console`.
//! 3. [`send_master`] hands the master to the `--console-socket` listener
//!    (or to `skiff run`) with the pty name as payload, which is what
//!    containerd and conmon expect; the init then drops its master.
//! 4. [`make_controlling`] starts a session, makes the slave the controlling
//!    terminal and puts it on fds 0, 1 and 2.
//!
//! # Runtime side (`skiff run` in the foreground with a terminal)
//!
//! [`RawMode`] puts the user's terminal in raw mode for the duration of the
//! run, [`copy_winsize`] propagates `SIGWINCH` size changes to the master,
//! and [`Relay`] copies stdin → master and master → stdout without threads.
//! `skiff` ignores `SIGPIPE` (as every Rust program does), so a closed
//! stdout shows up as `EPIPE`.
//!
//! ## Relay contract
//!
//! The relay works on its own duplicates of the descriptors, so it borrows
//! nothing; the caller runs one `poll(2)` loop that also watches its own
//! descriptors (pidfd, signalfd, ...):
//!
//! 1. [`Relay::new`] (stdin/stdout ↔ master) or [`Relay::with_fds`]
//!    switches the descriptors to `O_NONBLOCK`; the original flags come back
//!    when the relay is dropped. The user's stdin/stdout usually share one
//!    open file description with stderr, so stderr is non-blocking too while
//!    the relay lives: a log write may fail with `EAGAIN` rather than stall.
//! 2. Before each `poll`, append every `(fd, events)` of
//!    [`Relay::poll_set`] (or the typed [`Relay::interest`]). The set changes
//!    as buffers fill and drain, so rebuild it every iteration; it may be
//!    empty.
//! 3. After `poll`, call [`Relay::on_ready`] with the `fd` and `revents` of
//!    each of those entries whose `revents` is not zero. It never blocks.
//!    An error it returns is informational: the failing side has already
//!    been retired, so the loop may log it and go on.
//! 4. [`RelayState::Done`] means the container side of the terminal is gone
//!    (`EIO`/EOF on the master: every slave descriptor was closed) and all
//!    output read from it was written; `poll_set` is empty from then on.
//! 5. When the container's init has exited (pidfd readable), call
//!    [`Relay::drain`] (or [`Relay::finish`] with a chosen timeout) to copy
//!    what is still buffered in the pty to stdout.
//! 6. Resize: on `SIGWINCH`, `copy_winsize(stdin, master)`.
//!
//! End of file on stdin stops reading it (the container keeps running);
//! `EPIPE` on stdout makes the relay discard further output but keep
//! draining the master, so the container never blocks on a full pty.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use nix::sys::termios::{self, SetArg, Termios};
use tracing::{debug, warn};

use crate::socket;

/// Errors from setting up the container's terminal.
#[derive(Debug, thiserror::Error)]
pub enum TtyError {
    /// Opening the pty multiplexer failed.
    #[error("opening {path}: {errno}")]
    OpenPtmx { path: PathBuf, errno: Errno },
    /// `TIOCSPTLCK` failed.
    #[error("unlocking the pty (TIOCSPTLCK): {0}")]
    Unlock(Errno),
    /// `TIOCGPTN` failed.
    #[error("getting the pty number (TIOCGPTN): {0}")]
    PtyNumber(Errno),
    /// Opening the slave side failed.
    #[error("opening the pty slave {path}: {errno}")]
    OpenSlave { path: PathBuf, errno: Errno },
    /// `TIOCSWINSZ` failed.
    #[error("setting the console size to {rows}x{cols}: {errno}")]
    WindowSize { rows: u16, cols: u16, errno: Errno },
    /// Sending the master over the console socket failed.
    #[error("sending the pty master to the console socket: {0}")]
    SendMaster(#[source] io::Error),
    /// `setsid` failed.
    #[error("starting a new session (setsid): {0}")]
    Setsid(Errno),
    /// `TIOCSCTTY` failed.
    #[error("making the pty the controlling terminal (TIOCSCTTY): {0}")]
    SetControlling(Errno),
    /// `dup2` onto a standard descriptor failed.
    #[error("duplicating the pty slave onto fd {fd}: {errno}")]
    Dup { fd: RawFd, errno: Errno },
}

/// A freshly opened pseudo-terminal.
#[derive(Debug)]
pub struct Pty {
    /// The master side, to be sent to the console socket.
    pub master: OwnedFd,
    /// The slave side, the container process's terminal.
    pub slave: OwnedFd,
    /// The slave's path (`/dev/pts/N`), for the `/dev/console` bind mount
    /// and as the payload sent with the master.
    pub name: PathBuf,
}

/// Opens a new pty on `/dev/ptmx`; `size` is `(rows, cols)`, i.e. the OCI
/// `consoleSize` `(height, width)`.
pub fn open_console(size: Option<(u16, u16)>) -> Result<Pty, TtyError> {
    open_console_at(Path::new("/dev/ptmx"), size)
}

/// [`open_console`] with an explicit multiplexer path (e.g. `/dev/pts/ptmx`).
/// The slave name is always reported under `/dev/pts/`.
pub fn open_console_at(ptmx: &Path, size: Option<(u16, u16)>) -> Result<Pty, TtyError> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let raw = nix::fcntl::open(ptmx, flags, Mode::empty()).map_err(|errno| TtyError::OpenPtmx {
        path: ptmx.to_path_buf(),
        errno,
    })?;
    // SAFETY: `open` just returned this descriptor; nothing else owns it.
    let master = unsafe { OwnedFd::from_raw_fd(raw) };

    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the valid pointer we pass.
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })
        .map_err(TtyError::Unlock)?;

    let mut number: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int to the valid pointer we pass.
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut number) })
        .map_err(TtyError::PtyNumber)?;
    let name = PathBuf::from(format!("/dev/pts/{number}"));

    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new
    // descriptor for the peer of this master.
    let peer = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            (libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) as libc::c_ulong,
        )
    };
    let slave = if peer >= 0 {
        // SAFETY: the ioctl returned a new descriptor that we now own.
        unsafe { OwnedFd::from_raw_fd(peer) }
    } else {
        // Kernels before 4.13 lack TIOCGPTPEER: open the slave by name.
        let raw =
            nix::fcntl::open(&name, flags, Mode::empty()).map_err(|errno| TtyError::OpenSlave {
                path: name.clone(),
                errno,
            })?;
        // SAFETY: `open` just returned this descriptor; nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(raw) }
    };

    if let Some((rows, cols)) = size {
        set_winsize(master.as_fd(), rows, cols).map_err(|e| TtyError::WindowSize {
            rows,
            cols,
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EINVAL)),
        })?;
    }
    Ok(Pty {
        master,
        slave,
        name,
    })
}

/// Sends the pty master over the console socket, with the pty name as the
/// message payload.
pub fn send_master(console_socket: BorrowedFd<'_>, pty: &Pty) -> Result<(), TtyError> {
    socket::send_fd(
        console_socket,
        pty.master.as_fd(),
        pty.name.as_os_str().as_encoded_bytes(),
    )
    .map_err(TtyError::SendMaster)
}

/// Makes `slave` the controlling terminal of a new session and installs it
/// as stdin, stdout and stderr. The descriptor is closed afterwards unless
/// it already was one of 0, 1 or 2.
pub fn make_controlling(slave: OwnedFd) -> Result<(), TtyError> {
    match nix::unistd::setsid() {
        Ok(_) => {}
        // Already a session leader (e.g. the init called setsid itself).
        Err(Errno::EPERM) if nix::unistd::getsid(None) == Ok(nix::unistd::getpid()) => {}
        Err(errno) => return Err(TtyError::Setsid(errno)),
    }
    // SAFETY: TIOCSCTTY takes an int argument by value (0: do not steal the
    // terminal from another session).
    Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0 as libc::c_int) })
        .map_err(TtyError::SetControlling)?;

    let raw = slave.as_raw_fd();
    for target in 0..=2 {
        if raw == target {
            // dup2 onto itself is a no-op that would keep O_CLOEXEC.
            fcntl(raw, FcntlArg::F_SETFD(FdFlag::empty()))
                .map_err(|errno| TtyError::Dup { fd: target, errno })?;
        } else {
            loop {
                match nix::unistd::dup2(raw, target) {
                    Ok(_) => break,
                    Err(Errno::EINTR | Errno::EBUSY) => continue,
                    Err(errno) => return Err(TtyError::Dup { fd: target, errno }),
                }
            }
        }
    }
    if raw <= 2 {
        // It is one of the standard descriptors now: keep it open.
        let _ = slave.into_raw_fd();
    }
    Ok(())
}

/// Reads a terminal's window size as `(rows, cols)`.
pub fn get_winsize(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    // SAFETY: an all-zero winsize is a valid value of this plain C struct.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize to the valid pointer we pass.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
    Ok((ws.ws_row, ws.ws_col))
}

/// Sets a terminal's window size.
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the valid pointer we pass.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) })?;
    Ok(())
}

/// Copies the window size of terminal `from` (the user's) to `to` (the pty
/// master); call it at start and on every `SIGWINCH`. Fails with `ENOTTY`
/// when `from` is not a terminal.
pub fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let (rows, cols) = get_winsize(from)?;
    set_winsize(to, rows, cols)
}

/// Raw mode on a terminal for the lifetime of the guard.
///
/// The guard keeps its own duplicate of the descriptor (terminal modes
/// belong to the terminal, not to a descriptor), so it borrows nothing.
/// When the descriptor is not a terminal the guard does nothing.
pub struct RawMode {
    fd: Option<OwnedFd>,
    saved: Option<Termios>,
}

impl RawMode {
    /// Puts `fd` in raw mode if it is a terminal; any failure is logged and
    /// yields an inactive guard (a run without raw mode still works).
    pub fn new(fd: BorrowedFd<'_>) -> RawMode {
        RawMode::enable(fd).unwrap_or_else(|e| {
            debug!(error = %e, "cannot put the terminal in raw mode");
            RawMode {
                fd: None,
                saved: None,
            }
        })
    }

    /// Puts `fd` in raw mode if it is a terminal, reporting failures.
    pub fn enable(fd: BorrowedFd<'_>) -> io::Result<RawMode> {
        let saved = match termios::tcgetattr(fd) {
            Ok(t) => t,
            Err(Errno::ENOTTY | Errno::EINVAL) => {
                return Ok(RawMode {
                    fd: None,
                    saved: None,
                })
            }
            Err(e) => return Err(e.into()),
        };
        let fd = fd.try_clone_to_owned()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&fd, SetArg::TCSANOW, &raw)?;
        Ok(RawMode {
            fd: Some(fd),
            saved: Some(saved),
        })
    }

    /// [`RawMode::new`] on the process's stdin.
    pub fn stdin() -> RawMode {
        RawMode::new(io::stdin().as_fd())
    }

    /// Whether the terminal was switched (false for a non-terminal).
    pub fn is_active(&self) -> bool {
        self.saved.is_some()
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let (Some(fd), Some(saved)) = (&self.fd, &self.saved) {
            if let Err(e) = termios::tcsetattr(fd, SetArg::TCSANOW, saved) {
                debug!(error = %e, "restoring the terminal mode failed");
            }
        }
    }
}

/// Whether the relay still has work to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayState {
    /// Keep polling [`Relay::poll_set`].
    Running,
    /// The container side of the terminal is closed and its output flushed.
    Done,
}

const RELAY_BUF: usize = 16 * 1024;

/// How long [`Relay::drain`] waits for the pty to report its end.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// A fixed-size byte queue: filled by one read, emptied by writes.
struct Buffer {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Buffer {
    fn new() -> Buffer {
        Buffer {
            data: vec![0u8; RELAY_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn pending(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

/// One relay endpoint: our duplicate of the caller's descriptor and its
/// original status flags, restored on drop.
struct End {
    fd: OwnedFd,
    flags: OFlag,
}

impl End {
    fn new(fd: BorrowedFd<'_>) -> io::Result<End> {
        let fd = fd.try_clone_to_owned()?;
        let flags = OFlag::from_bits_retain(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        Ok(End { fd, flags })
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for End {
    fn drop(&mut self) {
        let _ = fcntl(self.fd.as_raw_fd(), FcntlArg::F_SETFL(self.flags));
    }
}

/// The relay's descriptors. Field order is drop order: the output's flags
/// are restored before the input's, which matters when both share one open
/// file description (the input's saved flags are the caller's originals).
struct Ends {
    output: End,
    master: End,
    input: Option<End>,
}

/// Thread-less stdin → master and master → stdout copier; see the module
/// documentation for the polling contract.
pub struct Relay {
    /// `None` for an inert relay (set-up failed).
    ends: Option<Ends>,
    input_open: bool,
    output_broken: bool,
    master_closed: bool,
    to_master: Buffer,
    to_output: Buffer,
}

impl Relay {
    /// A relay between the process's stdin/stdout and the pty `master`.
    ///
    /// A closed stdin is tolerated (nothing is forwarded). If the relay
    /// cannot be set up (no descriptor left, ...), a warning is logged and
    /// the relay is inert: [`Relay::poll_set`] is empty and its state is
    /// [`RelayState::Done`]; the container runs without its terminal being
    /// shown. Use [`Relay::with_fds`] to handle that error instead.
    pub fn new(master: BorrowedFd<'_>) -> Relay {
        let stdin = io::stdin();
        let stdout = io::stdout();
        let input = fcntl(libc::STDIN_FILENO, FcntlArg::F_GETFD)
            .is_ok()
            .then(|| stdin.as_fd());
        Relay::with_fds(input, master, stdout.as_fd()).unwrap_or_else(|e| {
            warn!(error = %e, "cannot relay the container terminal");
            Relay::from_ends(None)
        })
    }

    /// A relay between `input` (`None`: forward nothing), the pty `master`
    /// and `output`. The relay works on duplicates of the descriptors and
    /// borrows nothing, but it switches the shared open file descriptions to
    /// `O_NONBLOCK` until it is dropped.
    pub fn with_fds(
        input: Option<BorrowedFd<'_>>,
        master: BorrowedFd<'_>,
        output: BorrowedFd<'_>,
    ) -> io::Result<Relay> {
        // Input first, so that its saved flags are the caller's originals
        // even when output shares its open file description.
        let input = input.map(End::new).transpose()?;
        let master = End::new(master)?;
        let output = End::new(output)?;
        Ok(Relay::from_ends(Some(Ends {
            output,
            master,
            input,
        })))
    }

    fn from_ends(ends: Option<Ends>) -> Relay {
        Relay {
            input_open: ends.as_ref().is_some_and(|e| e.input.is_some()),
            master_closed: ends.is_none(),
            ends,
            output_broken: false,
            to_master: Buffer::new(),
            to_output: Buffer::new(),
        }
    }

    /// The pty master (e.g. for [`copy_winsize`] on `SIGWINCH`); `None` for
    /// an inert relay.
    pub fn master(&self) -> Option<BorrowedFd<'_>> {
        self.ends.as_ref().map(|e| e.master.fd.as_fd())
    }

    /// Descriptors to poll now and the events to poll them for.
    pub fn interest(&self) -> impl Iterator<Item = (BorrowedFd<'_>, PollFlags)> {
        let mut out: [Option<(BorrowedFd<'_>, PollFlags)>; 3] = [None, None, None];
        let Some(ends) = &self.ends else {
            return out.into_iter().flatten();
        };
        if let (Some(input), true) = (&ends.input, self.input_open) {
            if self.to_master.is_empty() && !self.master_closed {
                out[0] = Some((input.fd.as_fd(), PollFlags::POLLIN));
            }
        }
        let mut master_events = PollFlags::empty();
        if !self.master_closed {
            if self.to_output.is_empty() {
                master_events |= PollFlags::POLLIN;
            }
            if !self.to_master.is_empty() {
                master_events |= PollFlags::POLLOUT;
            }
        }
        if !master_events.is_empty() {
            out[1] = Some((ends.master.fd.as_fd(), master_events));
        }
        if !self.to_output.is_empty() {
            out[2] = Some((ends.output.fd.as_fd(), PollFlags::POLLOUT));
        }
        out.into_iter().flatten()
    }

    /// [`Relay::interest`] as `(fd, events)` for a `libc::pollfd` array.
    pub fn poll_set(&self) -> Vec<(RawFd, i16)> {
        self.interest()
            .map(|(fd, events)| (fd.as_raw_fd(), events.bits()))
            .collect()
    }

    /// Handles the `revents` that `poll` reported for `fd` (one of the
    /// descriptors of [`Relay::poll_set`]; others are ignored). Never
    /// blocks. An unexpected I/O error is returned once, after the relay has
    /// stopped using the failing side (input: no longer read; output: further
    /// data discarded; master: treated as closed), so ignoring it cannot make
    /// the caller's loop spin.
    pub fn on_ready(&mut self, fd: RawFd, revents: i16) -> io::Result<RelayState> {
        let revents = PollFlags::from_bits_truncate(revents);
        let readable = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        let writable = PollFlags::POLLOUT | PollFlags::POLLHUP | PollFlags::POLLERR;
        let Some(ends) = &self.ends else {
            return Ok(self.state());
        };
        let (is_input, is_master, is_output) = (
            ends.input.as_ref().is_some_and(|i| i.raw() == fd),
            ends.master.raw() == fd,
            ends.output.raw() == fd,
        );
        let mut result = Ok(());
        if self.input_open && is_input && revents.intersects(readable) {
            result = result.and(self.read_input());
        }
        if is_master {
            if revents.intersects(writable) && !self.to_master.is_empty() {
                result = result.and(self.write_master());
            }
            if revents.intersects(readable) && self.to_output.is_empty() {
                result = result.and(self.read_master());
            }
        }
        if is_output && revents.intersects(writable) {
            result = result.and(self.write_output());
        }
        result.map(|()| self.state())
    }

    /// The current state (see [`RelayState`]).
    pub fn state(&self) -> RelayState {
        if self.master_closed && self.to_output.is_empty() {
            RelayState::Done
        } else {
            RelayState::Running
        }
    }

    /// Stops forwarding input (e.g. once the container has exited).
    pub fn close_input(&mut self) {
        self.input_open = false;
        self.to_master.clear();
    }

    /// Polls the relay's own descriptors once, for at most `timeout`, and
    /// handles what is ready.
    pub fn poll_once(&mut self, timeout: Duration) -> io::Result<RelayState> {
        let ready: Vec<(RawFd, i16)> = {
            let mut fds: Vec<PollFd<'_>> = self
                .interest()
                .map(|(fd, events)| PollFd::new(fd, events))
                .collect();
            if fds.is_empty() {
                return Ok(self.state());
            }
            let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
            match nix::poll::poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => return Ok(self.state()),
                Err(e) => return Err(e.into()),
            }
            fds.iter()
                .filter_map(|p| {
                    let revents = p.revents().filter(|r| !r.is_empty())?;
                    Some((p.as_fd().as_raw_fd(), revents.bits()))
                })
                .collect()
        };
        let mut result = Ok(());
        for (fd, revents) in ready {
            result = result.and(self.on_ready(fd, revents).map(drop));
        }
        result.map(|()| self.state())
    }

    /// After the container's init exited: stops reading input and copies
    /// what the pty still holds to the output, until the master reports the
    /// end or `timeout` elapses.
    pub fn finish(&mut self, timeout: Duration) -> io::Result<RelayState> {
        self.close_input();
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            if self.state() == RelayState::Done || now >= deadline {
                return Ok(self.state());
            }
            self.poll_once(deadline - now)?;
        }
    }

    /// [`Relay::finish`] with [`DRAIN_TIMEOUT`]; errors are logged.
    pub fn drain(&mut self) -> RelayState {
        self.finish(DRAIN_TIMEOUT).unwrap_or_else(|e| {
            debug!(error = %e, "draining the terminal failed");
            self.state()
        })
    }

    fn read_input(&mut self) -> io::Result<()> {
        let Some(input) = self.ends.as_ref().and_then(|e| e.input.as_ref()) else {
            return Ok(());
        };
        if !self.input_open || !self.to_master.is_empty() {
            return Ok(());
        }
        match read_retry(input.fd.as_fd(), &mut self.to_master.data) {
            // EIO: the user's terminal hung up.
            Ok(0) | Err(Errno::EIO) => {
                debug!("end of terminal input, no longer forwarding stdin");
                self.input_open = false;
            }
            Ok(n) => {
                self.to_master.end = n;
                return self.write_master();
            }
            Err(Errno::EAGAIN) => {}
            Err(e) => {
                self.input_open = false;
                return Err(e.into());
            }
        }
        Ok(())
    }

    fn write_master(&mut self) -> io::Result<()> {
        let Some(ends) = &self.ends else {
            return Ok(());
        };
        while !self.to_master.is_empty() {
            match write_retry(ends.master.fd.as_fd(), self.to_master.pending()) {
                Ok(n) => self.to_master.consume(n),
                Err(Errno::EAGAIN) => break,
                Err(e) => {
                    // EIO: the container side is gone; the read side will
                    // report it too. Input written from now on is dropped.
                    self.to_master.clear();
                    if e != Errno::EIO {
                        return Err(e.into());
                    }
                }
            }
        }
        Ok(())
    }

    fn read_master(&mut self) -> io::Result<()> {
        let (false, Some(ends)) = (self.master_closed, &self.ends) else {
            return Ok(());
        };
        match read_retry(ends.master.fd.as_fd(), &mut self.to_output.data) {
            Ok(n) if n > 0 => {
                self.to_output.end = n;
                self.write_output()
            }
            Err(Errno::EAGAIN) => Ok(()),
            // 0 / EIO: every slave descriptor has been closed.
            other => {
                self.master_closed = true;
                self.to_master.clear();
                match other {
                    Err(e) if e != Errno::EIO => Err(e.into()),
                    _ => Ok(()),
                }
            }
        }
    }

    fn write_output(&mut self) -> io::Result<()> {
        let Some(ends) = &self.ends else {
            return Ok(());
        };
        while !self.to_output.is_empty() {
            if self.output_broken {
                self.to_output.clear();
                break;
            }
            match write_retry(ends.output.fd.as_fd(), self.to_output.pending()) {
                Ok(n) => self.to_output.consume(n),
                Err(Errno::EAGAIN) => break,
                Err(e) => {
                    debug!(error = %e, "terminal output failed, discarding container output");
                    self.output_broken = true;
                    self.to_output.clear();
                    if e != Errno::EPIPE {
                        return Err(e.into());
                    }
                }
            }
        }
        Ok(())
    }
}

fn read_retry(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match nix::unistd::read(fd.as_raw_fd(), buf) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

fn write_retry(fd: BorrowedFd<'_>, buf: &[u8]) -> Result<usize, Errno> {
    loop {
        match nix::unistd::write(fd, buf) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

    fn raw_slave(pty: &Pty) {
        let mut t = termios::tcgetattr(pty.slave.as_fd()).unwrap();
        termios::cfmakeraw(&mut t);
        termios::tcsetattr(pty.slave.as_fd(), SetArg::TCSANOW, &t).unwrap();
    }

    /// Reads from a (blocking) fd until `want` bytes arrived.
    fn read_exact_fd(fd: BorrowedFd<'_>, want: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        while out.len() < want {
            let n = read_retry(fd, &mut buf).unwrap();
            assert!(n > 0, "unexpected eof");
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    #[test]
    fn opens_console_with_size() {
        let pty = open_console(Some((33, 101))).unwrap();
        assert!(pty.name.starts_with("/dev/pts/"), "{:?}", pty.name);
        assert!(pty.name.exists());
        assert!(nix::unistd::isatty(pty.slave.as_raw_fd()).unwrap());
        assert_eq!(get_winsize(pty.slave.as_fd()).unwrap(), (33, 101));
        assert_eq!(get_winsize(pty.master.as_fd()).unwrap(), (33, 101));
        // The slave really is the peer named by `name`.
        let by_name = std::fs::metadata(&pty.name).unwrap();
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat writes a stat into the valid buffer we pass.
        assert_eq!(
            unsafe { libc::fstat(pty.slave.as_raw_fd(), st.as_mut_ptr()) },
            0
        );
        // SAFETY: fstat succeeded, so the buffer is initialized.
        let st = unsafe { st.assume_init() };
        use std::os::unix::fs::MetadataExt;
        assert_eq!(by_name.rdev(), st.st_rdev);
    }

    #[test]
    fn missing_ptmx_is_an_error_naming_the_path() {
        let err = open_console_at(Path::new("/nonexistent/ptmx"), None).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ptmx"), "{err}");
    }

    #[test]
    fn master_travels_over_console_socket() {
        let pty = open_console(None).unwrap();
        raw_slave(&pty);
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        send_master(a.as_fd(), &pty).unwrap();

        let mut buf = [0u8; 128];
        let (master, n) = socket::recv_fd(b.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], pty.name.as_os_str().as_encoded_bytes());

        // The init drops its copy; the received master still works.
        let Pty {
            master: original,
            slave,
            ..
        } = pty;
        drop(original);
        write_retry(slave.as_fd(), b"from the container").unwrap();
        assert_eq!(read_exact_fd(master.as_fd(), 18), b"from the container");
        write_retry(master.as_fd(), b"to it").unwrap();
        assert_eq!(read_exact_fd(slave.as_fd(), 5), b"to it");
    }

    #[test]
    fn window_size_set_get_and_copy() {
        let a = open_console(None).unwrap();
        let b = open_console(Some((1, 1))).unwrap();
        set_winsize(a.master.as_fd(), 50, 132).unwrap();
        assert_eq!(get_winsize(a.slave.as_fd()).unwrap(), (50, 132));
        copy_winsize(a.slave.as_fd(), b.master.as_fd()).unwrap();
        assert_eq!(get_winsize(b.slave.as_fd()).unwrap(), (50, 132));

        let (r, _w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let err = copy_winsize(r.as_fd(), b.master.as_fd()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTTY));
    }

    #[test]
    fn raw_mode_is_restored() {
        let pty = open_console(None).unwrap();
        let before = termios::tcgetattr(pty.slave.as_fd()).unwrap();
        assert!(before.local_flags.contains(termios::LocalFlags::ICANON));
        {
            let guard = RawMode::enable(pty.slave.as_fd()).unwrap();
            assert!(guard.is_active());
            let during = termios::tcgetattr(pty.slave.as_fd()).unwrap();
            assert!(!during.local_flags.contains(termios::LocalFlags::ICANON));
            assert!(!during.local_flags.contains(termios::LocalFlags::ECHO));
        }
        let after = termios::tcgetattr(pty.slave.as_fd()).unwrap();
        assert_eq!(after.local_flags, before.local_flags);
        assert_eq!(after.input_flags, before.input_flags);
        assert_eq!(after.output_flags, before.output_flags);

        let (r, _w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        assert!(!RawMode::enable(r.as_fd()).unwrap().is_active());
        assert!(!RawMode::new(r.as_fd()).is_active());
    }

    #[test]
    fn make_controlling_installs_the_terminal() {
        let pty = open_console(None).unwrap();
        let Pty { master, slave, .. } = pty;
        // SAFETY: the child only makes syscalls and `_exit`s.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let code = if make_controlling(slave).is_err() {
                    1
                } else if termios::tcgetsid(
                    // SAFETY: fd 0 was just installed by make_controlling.
                    unsafe { BorrowedFd::borrow_raw(0) },
                ) != Ok(nix::unistd::getpid())
                {
                    2
                } else if !(0..=2).all(|fd| nix::unistd::isatty(fd) == Ok(true)) {
                    3
                } else if fcntl(0, FcntlArg::F_GETFD) != Ok(0) {
                    4
                } else {
                    0
                };
                // SAFETY: leaving the forked child without running the
                // harness's destructors.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(slave);
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
                drop(master);
            }
        }
    }

    fn pump_until(relay: &mut Relay, mut done: impl FnMut(&Relay) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done(relay) {
            assert!(Instant::now() < deadline, "relay made no progress");
            relay.poll_once(Duration::from_millis(50)).unwrap();
        }
    }

    #[test]
    fn relay_round_trip() {
        let pty = open_console(None).unwrap();
        raw_slave(&pty);
        let Pty { master, slave, .. } = pty;
        let (in_r, in_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let mut relay = Relay::with_fds(Some(in_r.as_fd()), master.as_fd(), out_w.as_fd()).unwrap();
        assert_eq!(relay.state(), RelayState::Running);
        let flags = OFlag::from_bits_truncate(fcntl(in_r.as_raw_fd(), FcntlArg::F_GETFL).unwrap());
        assert!(flags.contains(OFlag::O_NONBLOCK));

        // stdin -> master -> container.
        write_retry(in_w.as_fd(), b"typed by the user").unwrap();
        relay.poll_once(Duration::from_secs(1)).unwrap();
        assert_eq!(read_exact_fd(slave.as_fd(), 17), b"typed by the user");

        // container -> master -> stdout, larger than one buffer.
        let big: Vec<u8> = (0..40_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let writer = {
            let slave = slave.try_clone().unwrap();
            let big = big.clone();
            std::thread::spawn(move || {
                let mut rest = &big[..];
                while !rest.is_empty() {
                    let n = write_retry(slave.as_fd(), rest).unwrap();
                    rest = &rest[n..];
                }
            })
        };
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        nix::fcntl::fcntl(out_r.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        pump_until(&mut relay, |_| {
            while let Ok(n) = read_retry(out_r.as_fd(), &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            got.len() >= big.len()
        });
        writer.join().unwrap();
        assert_eq!(got, big);

        // EOF on stdin: input is no longer polled, output still flows.
        drop(in_w);
        pump_until(&mut relay, relay_input_closed);
        write_retry(slave.as_fd(), b"bye").unwrap();
        let mut tail = Vec::new();
        pump_until(&mut relay, |_| {
            if let Ok(n) = read_retry(out_r.as_fd(), &mut buf) {
                tail.extend_from_slice(&buf[..n]);
            }
            tail.len() >= 3
        });
        assert_eq!(tail, b"bye");

        // The container side closes: pending output is flushed, then Done.
        write_retry(slave.as_fd(), b"last words").unwrap();
        drop(slave);
        assert_eq!(
            relay.finish(Duration::from_secs(5)).unwrap(),
            RelayState::Done
        );
        assert_eq!(relay.interest().count(), 0);
        let mut last = Vec::new();
        while let Ok(n) = read_retry(out_r.as_fd(), &mut buf) {
            if n == 0 {
                break;
            }
            last.extend_from_slice(&buf[..n]);
        }
        assert_eq!(last, b"last words");

        // Dropping the relay restores the original (blocking) flags.
        drop(relay);
        let flags =
            OFlag::from_bits_truncate(fcntl(master.as_raw_fd(), FcntlArg::F_GETFL).unwrap());
        assert!(!flags.contains(OFlag::O_NONBLOCK));
        let flags = OFlag::from_bits_truncate(fcntl(in_r.as_raw_fd(), FcntlArg::F_GETFL).unwrap());
        assert!(!flags.contains(OFlag::O_NONBLOCK));
    }

    fn relay_input_closed(relay: &Relay) -> bool {
        let input = relay.ends.as_ref().unwrap().input.as_ref().unwrap().raw();
        !relay.input_open && relay.poll_set().iter().all(|&(fd, _)| fd != input)
    }

    #[test]
    fn relay_survives_closed_output() {
        let pty = open_console(None).unwrap();
        raw_slave(&pty);
        let Pty { master, slave, .. } = pty;
        let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        drop(out_r);
        // Rust programs (the test harness included) ignore SIGPIPE, so the
        // write reports EPIPE.
        let mut relay = Relay::with_fds(None, master.as_fd(), out_w.as_fd()).unwrap();
        write_retry(slave.as_fd(), b"nobody reads this").unwrap();
        drop(slave);
        assert_eq!(
            relay.finish(Duration::from_secs(5)).unwrap(),
            RelayState::Done
        );
    }

    #[test]
    fn relay_restores_flags_of_a_shared_description() {
        let pty = open_console(None).unwrap();
        let (a, _b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        // stdin and stdout are usually the same terminal description.
        let relay = Relay::with_fds(Some(a.as_fd()), pty.master.as_fd(), a.as_fd()).unwrap();
        assert_eq!(relay.poll_set().len(), 2);
        drop(relay);
        let flags = OFlag::from_bits_truncate(fcntl(a.as_raw_fd(), FcntlArg::F_GETFL).unwrap());
        assert!(!flags.contains(OFlag::O_NONBLOCK));
    }

    #[test]
    fn on_ready_ignores_foreign_fds() {
        let pty = open_console(None).unwrap();
        let (_r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let mut relay = Relay::with_fds(None, pty.master.as_fd(), w.as_fd()).unwrap();
        let state = relay
            .on_ready(w.as_raw_fd() + 1000, PollFlags::POLLIN.bits())
            .unwrap();
        assert_eq!(state, RelayState::Running);
    }

    #[test]
    fn inert_relay_is_done() {
        let mut relay = Relay::from_ends(None);
        assert_eq!(relay.state(), RelayState::Done);
        assert!(relay.poll_set().is_empty());
        assert!(relay.master().is_none());
        assert_eq!(
            relay.on_ready(0, PollFlags::POLLIN.bits()).unwrap(),
            RelayState::Done
        );
        assert_eq!(relay.drain(), RelayState::Done);
    }
}
