//! Typed messages between the runtime (parent) and the container's init
//! (child), over a `SOCK_SEQPACKET` socket pair so each message arrives whole.
//!
//! The conversation during `create`:
//! ```text
//! parent                                  child (after clone)
//!   write uid/gid maps
//!   ── Go ───────────────────────────────▶  join namespaces, mount the rootfs
//!   create the cgroup, move the init        (in parallel)
//!   ── CgroupReady ──────────────────────▶  (awaited before a cgroup mount
//!   save the init's pid                      and before any hook)
//!   ◀──────────────────────── RunHooks ──   (before pivot_root)
//!   prestart + createRuntime hooks
//!   ── HooksDone ────────────────────────▶  createContainer hooks, pivot_root,
//!                                           console, user, capabilities...
//!   ◀─────────────── SeccompFd (+fd) ────   only with a seccomp listener
//!   ◀─────────────────────────── Ready ──   waits on exec.fifo for `start`
//!   write the state, pid file
//!   ── Created ──────────────────────────▶  (the channel closing before it:
//!                                            the runtime died; the init exits;
//!                                            `run` sends none: its byte in
//!                                            exec.fifo comes first)
//! ```
//! Any step may instead end with `Error(message)` from the child, or with
//! the socket closing because the child died.
//!
//! A seqpacket message must fit the socket buffer, and a receive buffer
//! shorter than the message truncates it: `Go`, whose state carries the
//! annotations (unbounded), is sent in pieces of at most [`MAX_PIECE`]
//! bytes (`GO_PART`... then `GO`), and a receive that would truncate fails.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{
    recv, recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};

use crate::error::{Error, Result};

/// Messages the parent sends.
#[derive(Debug, PartialEq, Eq)]
pub enum ToChild {
    /// Carries the container state (JSON) for the hooks the init runs.
    Go(Vec<u8>),
    HooksDone,
    /// The init is in its cgroup (sent while the init already mounts);
    /// `false` (cgroup v1) when its directories exist but the init is not
    /// yet in all of them: `CgroupDone` follows.
    CgroupReady(bool),
    CgroupDone,
    /// The state is saved: the container is created. An init that sees the
    /// channel close before this knows the runtime died half-way and exits
    /// instead of waiting for a `start` that will never come.
    Created,
}

/// Messages the child sends.
#[derive(Debug, PartialEq, Eq)]
pub enum ToParent {
    RunHooks,
    Ready,
    /// After the extra fork (see `namespaces::Plan::fork_after_unshare`):
    /// the host pid of the process that goes on as the container's init.
    InitPid(i32),
    /// A seccomp notify fd follows, attached to this message.
    SeccompFd,
    /// With `--debug`: how long the init's stages took (see `trace`).
    Stages(Vec<u8>),
    Error(String),
}

const GO: u8 = 1;
/// A piece of a `Go` state too large for one message; the last piece is `GO`.
const GO_PART: u8 = 6;
const HOOKS_DONE: u8 = 2;
const CGROUP_READY: u8 = 3;
const CGROUP_PARTLY_READY: u8 = 4;
const CGROUP_DONE: u8 = 5;
const CREATED: u8 = 7;
const RUN_HOOKS: u8 = 10;
const READY: u8 = 11;
const SECCOMP_FD: u8 = 12;
const ERROR: u8 = 13;
const INIT_PID: u8 = 14;
const STAGES: u8 = 15;

/// Largest payload of one message (well under the default socket buffer).
pub const MAX_PIECE: usize = 32 * 1024;
/// Receive buffer: one piece, its tag, and room to spare.
const RECV_BUF: usize = 65_536;

/// One end of the channel.
pub struct Channel {
    fd: OwnedFd,
}

/// Makes the two ends: (parent's, child's).
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|e| Error::errno("create the init channel", e))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn send_raw(&self, buf: &[u8]) -> Result<()> {
        loop {
            match send(self.fd.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::errno("send on the init channel", e)),
            }
        }
    }

    /// Waits for the next message and returns its length (0: the peer
    /// closed), so that it is received into a buffer of its size: a zeroed
    /// 64 KiB buffer per message cost 16 page faults on each side.
    fn next_len(&self) -> nix::Result<usize> {
        let mut b = [0u8; 1];
        loop {
            match recv(self.fd.as_raw_fd(), &mut b, MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return r,
            }
        }
    }

    /// A buffer for the next message (at least one byte, at most
    /// [`RECV_BUF`]: a longer message is refused when received).
    fn buf_for_next(&self) -> nix::Result<Vec<u8>> {
        Ok(vec![0u8; self.next_len()?.clamp(1, RECV_BUF)])
    }

    /// Receives one message into `buf`; Ok(0) means the peer closed. A
    /// message longer than `buf` is an error, not a silent truncation.
    fn recv_raw(&self, buf: &mut [u8]) -> Result<usize> {
        loop {
            // MSG_TRUNC: the length returned is the message's, even if longer.
            match recv(self.fd.as_raw_fd(), buf, MsgFlags::MSG_TRUNC) {
                Ok(n) if n > buf.len() => {
                    return Err(Error::Init(format!("init channel: a {n}-byte message exceeds the {}-byte buffer", buf.len())))
                }
                Ok(n) => return Ok(n),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::errno("receive on the init channel", e)),
            }
        }
    }

    pub fn send_to_child(&self, m: &ToChild) -> Result<()> {
        match m {
            ToChild::Go(state) => {
                let mut pieces = state.chunks(MAX_PIECE).peekable();
                let mut v = Vec::with_capacity(state.len().min(MAX_PIECE) + 1);
                if pieces.peek().is_none() {
                    return self.send_raw(&[GO]);
                }
                while let Some(p) = pieces.next() {
                    v.clear();
                    v.push(if pieces.peek().is_some() { GO_PART } else { GO });
                    v.extend_from_slice(p);
                    self.send_raw(&v)?;
                }
                Ok(())
            }
            ToChild::HooksDone => self.send_raw(&[HOOKS_DONE]),
            ToChild::CgroupReady(true) => self.send_raw(&[CGROUP_READY]),
            ToChild::CgroupReady(false) => self.send_raw(&[CGROUP_PARTLY_READY]),
            ToChild::CgroupDone => self.send_raw(&[CGROUP_DONE]),
            ToChild::Created => self.send_raw(&[CREATED]),
        }
    }

    /// In the child: waits for the next message. A closed channel means the
    /// parent gave up; the child has nothing left to do but exit.
    pub fn recv_in_child(&self) -> Result<ToChild> {
        let mut state = Vec::new();
        loop {
            let mut b = self.buf_for_next().map_err(|e| Error::errno("receive on the init channel", e))?;
            match self.recv_raw(&mut b)? {
                0 => return Err(Error::Init("the runtime went away".into())),
                n if b[0] == GO_PART => state.extend_from_slice(&b[1..n]),
                _ if !state.is_empty() && b[0] != GO => {
                    return Err(Error::Init(format!("unexpected message {} in the middle of the state", b[0])))
                }
                n => return Self::decode_to_child(&b[..n], state),
            }
        }
    }

    /// One whole message to the child; `state` holds the `GO_PART`s before it.
    fn decode_to_child(b: &[u8], mut state: Vec<u8>) -> Result<ToChild> {
        match b[0] {
            GO => {
                state.extend_from_slice(&b[1..]);
                Ok(ToChild::Go(state))
            }
            HOOKS_DONE => Ok(ToChild::HooksDone),
            CGROUP_READY => Ok(ToChild::CgroupReady(true)),
            CGROUP_PARTLY_READY => Ok(ToChild::CgroupReady(false)),
            CGROUP_DONE => Ok(ToChild::CgroupDone),
            CREATED => Ok(ToChild::Created),
            t => Err(Error::Init(format!("unexpected message {t} from the runtime"))),
        }
    }

    pub fn send_to_parent(&self, m: &ToParent) -> Result<()> {
        match m {
            ToParent::RunHooks => self.send_raw(&[RUN_HOOKS]),
            ToParent::Ready => self.send_raw(&[READY]),
            ToParent::SeccompFd => self.send_raw(&[SECCOMP_FD]),
            ToParent::InitPid(pid) => {
                let mut v = vec![INIT_PID];
                v.extend_from_slice(&pid.to_le_bytes());
                self.send_raw(&v)
            }
            ToParent::Stages(t) => {
                let mut v = Vec::with_capacity(t.len() + 1);
                v.push(STAGES);
                v.extend_from_slice(t);
                self.send_raw(&v)
            }
            ToParent::Error(msg) => {
                let mut v = Vec::with_capacity(msg.len() + 1);
                v.push(ERROR);
                v.extend_from_slice(&msg.as_bytes()[..msg.len().min(60_000)]);
                self.send_raw(&v)
            }
        }
    }

    /// Sends a file descriptor (the seccomp listener) to the parent,
    /// attached to a `SeccompFd` message.
    pub fn send_fd_to_parent(&self, fd: BorrowedFd) -> Result<()> {
        let fds = [fd.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let iov = [std::io::IoSlice::new(&[SECCOMP_FD])];
        sendmsg::<()>(self.fd.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
            .map(drop)
            .map_err(|e| Error::errno("send the seccomp fd to the runtime", e))
    }

    /// In the parent, without blocking: an error the child already sent.
    pub fn pending_error(&self) -> Option<String> {
        let mut buf = vec![0u8; RECV_BUF];
        for _ in 0..2 {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) if n > 0 && buf[0] == ERROR => return Some(String::from_utf8_lossy(&buf[1..n]).into_owned()),
                // See recv_in_parent: the reset is reported before queued messages.
                Err(nix::errno::Errno::ECONNRESET) => continue,
                _ => return None,
            }
        }
        None
    }

    /// In the parent: the next message, with the fd attached to it if any;
    /// None when the child closed its end (it exited or exec'd).
    pub fn recv_in_parent(&self) -> Result<Option<(ToParent, Option<OwnedFd>)>> {
        let mut cspace = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut reset = false;
        let mut buf: Vec<u8>;
        let (n, fd) = loop {
            buf = match self.buf_for_next() {
                Ok(b) => b,
                Err(nix::errno::Errno::ECONNRESET) if !reset => {
                    reset = true;
                    continue;
                }
                Err(e) => return Err(Error::errno("receive on the init channel", e)),
            };
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut cspace), MsgFlags::MSG_CMSG_CLOEXEC) {
                Ok(msg) if msg.flags.contains(MsgFlags::MSG_TRUNC) => {
                    return Err(Error::Init(format!("init channel: a message exceeds the {RECV_BUF}-byte buffer")))
                }
                Ok(msg) => {
                    let mut fd = None;
                    for c in msg.cmsgs().map_err(|e| Error::errno("receive on the init channel", e))? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for raw in fds {
                                // SAFETY: the kernel just installed this descriptor for us.
                                let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    break (msg.bytes, fd);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                // A child that exits with messages of ours unread resets the
                // connection, and the kernel reports that (once) before the
                // messages the child queued for us, such as its Error.
                Err(nix::errno::Errno::ECONNRESET) if !reset => reset = true,
                Err(e) => return Err(Error::errno("receive on the init channel", e)),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let m = match buf[0] {
            RUN_HOOKS => ToParent::RunHooks,
            READY => ToParent::Ready,
            SECCOMP_FD => ToParent::SeccompFd,
            INIT_PID if n == 5 => ToParent::InitPid(i32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]])),
            ERROR => ToParent::Error(String::from_utf8_lossy(&buf[1..n]).into_owned()),
            STAGES => ToParent::Stages(buf[1..n].to_vec()),
            t => return Err(Error::Init(format!("unexpected message {t} from the container init"))),
        };
        Ok(Some((m, fd)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_state_arrives_whole() {
        for len in [0, 1, MAX_PIECE - 1, MAX_PIECE, MAX_PIECE + 1, 300 * 1024 + 7] {
            let (parent, child) = pair().unwrap();
            let state: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sent = state.clone();
            let t = std::thread::spawn(move || {
                parent.send_to_child(&ToChild::Go(sent)).unwrap();
                parent.send_to_child(&ToChild::HooksDone).unwrap();
            });
            assert_eq!(child.recv_in_child().unwrap(), ToChild::Go(state), "len {len}");
            assert_eq!(child.recv_in_child().unwrap(), ToChild::HooksDone);
            t.join().unwrap();
        }
    }

    #[test]
    fn oversized_message_is_an_error_not_a_truncation() {
        let (parent, child) = pair().unwrap();
        let big = vec![GO; RECV_BUF + 10];
        parent.send_raw(&big).unwrap();
        let e = child.recv_in_child().unwrap_err().to_string();
        assert!(e.contains("exceeds"), "{e}");
    }

    #[test]
    fn error_of_a_child_that_left_messages_unread_is_received() {
        let (parent, child) = pair().unwrap();
        parent.send_to_child(&ToChild::CgroupReady(true)).unwrap();
        child.send_to_parent(&ToParent::Error("mount failed".into())).unwrap();
        drop(child); // with CgroupReady unread: the connection is reset
        let m = parent.recv_in_parent().unwrap().map(|(m, _)| m);
        assert_eq!(m, Some(ToParent::Error("mount failed".into())));
        assert_eq!(parent.recv_in_parent().unwrap().map(|(m, _)| m), None);
        let (parent, child) = pair().unwrap();
        parent.send_to_child(&ToChild::HooksDone).unwrap();
        child.send_to_parent(&ToParent::Error("late".into())).unwrap();
        drop(child);
        assert_eq!(parent.pending_error().as_deref(), Some("late"));
    }
}

