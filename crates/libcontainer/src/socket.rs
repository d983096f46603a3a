//! Passing file descriptors over `AF_UNIX` sockets (`SCM_RIGHTS`).
//!
//! Used for the console socket (the container init sends its pty master to
//! whoever listens on `--console-socket`), for handing the pty master from
//! the init to `skiff run` itself, and for the seccomp user-notification
//! agent named by the OCI `linux.seccomp.listenerPath`.
//!
//! Every message carries exactly one descriptor and a non-empty payload: a
//! stream socket cannot carry ancillary data without at least one byte of
//! regular data, and receivers such as containerd read the payload (the pty
//! name, the container process state) together with the descriptor.
//!
//! The helpers retry on `EINTR`, never raise `SIGPIPE` (`MSG_NOSIGNAL`) and
//! receive descriptors with `MSG_CMSG_CLOEXEC`, so a received descriptor
//! never leaks into a child that `exec`s before the caller decides to.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::socket::{
    recvmsg, send, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr,
};
use oci_spec::runtime::{ContainerProcessState, State, SECCOMP_FD_NAME};

/// Descriptors we make room for when receiving, so that a peer sending too
/// many is detected (and the extra descriptors closed) rather than
/// truncated.
const RECV_FD_SLOTS: usize = 8;

/// Sends `fd` over the connected socket `sock` along with `payload`.
///
/// The descriptor travels with the first `sendmsg`; on a stream socket any
/// part of the payload the kernel did not take at once is sent afterwards
/// with plain `send` calls, as the runtime-spec allows.
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>, payload: &[u8]) -> io::Result<()> {
    if payload.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the payload sent with a file descriptor must not be empty",
        ));
    }
    let fds = [fd.as_raw_fd()];
    let cmsgs = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(payload)];
    let sent = loop {
        match sendmsg::<UnixAddr>(sock.as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => break n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    send_all(sock, &payload[sent..])
}

fn send_all(sock: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match send(sock.as_raw_fd(), data, MsgFlags::MSG_NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Receives one message carrying exactly one descriptor from `sock`.
///
/// The payload is stored at the start of `buf`; the returned `usize` is its
/// length. The descriptor is `O_CLOEXEC`. On a datagram or seqpacket socket
/// a payload larger than `buf` is an error; on a stream socket the rest
/// simply stays queued for the next read. A message without a descriptor,
/// with several, or whose control data was truncated is an error (any
/// descriptors that did arrive are closed).
pub fn recv_fd(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(OwnedFd, usize)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg_buf = nix::cmsg_space!([RawFd; RECV_FD_SLOTS]);
    let msg = loop {
        match recvmsg::<UnixAddr>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_buf),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => break m,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };

    let mut fds: Vec<OwnedFd> = Vec::new();
    let cmsgs = msg.cmsgs().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "control data truncated: the peer sent too many file descriptors",
        )
    })?;
    for cmsg in cmsgs {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            for raw_fd in raw {
                // SAFETY: SCM_RIGHTS descriptors are freshly installed in our
                // table by the kernel and owned by nobody else.
                fds.push(unsafe { OwnedFd::from_raw_fd(raw_fd) });
            }
        }
    }

    let bytes = msg.bytes;
    if msg.flags.contains(MsgFlags::MSG_TRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "message payload larger than the {}-byte buffer",
                buf_len(&iov)
            ),
        ));
    }
    match fds.len() {
        1 => Ok((fds.pop().expect("one descriptor"), bytes)),
        0 if bytes == 0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "peer closed the socket before sending a file descriptor",
        )),
        0 => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message carried no file descriptor",
        )),
        n => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected one file descriptor, received {n}"),
        )),
    }
}

fn buf_len(iov: &[IoSliceMut<'_>]) -> usize {
    iov.iter().map(|s| s.len()).sum()
}

/// Serializes the runtime-spec "container process state" sent to a seccomp
/// agent: `fds` is `["seccompFd"]`, `metadata` is the profile's
/// `listenerMetadata`, `pid` the container process as seen by the runtime.
pub fn seccomp_process_state(
    state: &State,
    pid: i32,
    metadata: Option<&str>,
) -> serde_json::Result<Vec<u8>> {
    let mut process_state = ContainerProcessState::default();
    process_state.set_version(state.version().clone());
    process_state.set_fds(vec![SECCOMP_FD_NAME.to_string()]);
    process_state.set_pid(pid);
    process_state.set_metadata(metadata.map(str::to_string));
    process_state.set_state(state.clone());
    serde_json::to_vec(&process_state)
}

/// Hands a seccomp notify fd to the agent listening on `listener_path`.
///
/// Per the runtime-spec: one new `SOCK_STREAM` connection per container
/// process, the fd sent with `SCM_RIGHTS` in the first message together with
/// the container process state JSON (see [`seccomp_process_state`]), then
/// the connection is closed.
pub fn send_seccomp_notify(listener_path: &Path, notify_fd: BorrowedFd<'_>, state_json: &[u8]) -> crate::Result<()> {
    // runc's wording (callers and its tests match on it), without Rust's
    // "(os error N)" suffix.
    let p = listener_path.display();
    let stream = UnixStream::connect(listener_path).map_err(|e| {
        crate::Error::Init(format!("failed to connect with seccomp agent specified in the seccomp profile: dial unix {p}: connect: {}", crate::error::strerror(&e)))
    })?;
    let sent = send_fd(stream.as_fd(), notify_fd, state_json).and_then(|_| match stream.shutdown(Shutdown::Both) {
        // Closing is what tells the agent the message is complete; a peer
        // that already went away is not an error at this point.
        Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
        _ => Ok(()),
    });
    sent.map_err(|e| crate::Error::Init(format!("cannot send seccomp fd to {p}: {}", crate::error::strerror(&e))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    use std::fs::File;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::unix::net::UnixListener;

    fn pair(ty: SockType) -> (OwnedFd, OwnedFd) {
        socketpair(AddressFamily::Unix, ty, None, SockFlag::SOCK_CLOEXEC).unwrap()
    }

    fn memfd_with(content: &[u8]) -> File {
        let fd = nix::sys::memfd::memfd_create(
            c"skiff-socket-test",
            nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
        )
        .unwrap();
        let mut f = File::from(fd);
        f.write_all(content).unwrap();
        f
    }

    fn is_cloexec(fd: BorrowedFd<'_>) -> bool {
        let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
        nix::fcntl::FdFlag::from_bits_truncate(flags).contains(nix::fcntl::FdFlag::FD_CLOEXEC)
    }

    #[test]
    fn fd_and_payload_round_trip() {
        for ty in [SockType::Stream, SockType::SeqPacket, SockType::Datagram] {
            let (a, b) = pair(ty);
            let file = memfd_with(b"hello through the socket");
            send_fd(a.as_fd(), file.as_fd(), b"/dev/pts/7").unwrap();

            let mut buf = [0u8; 64];
            let (fd, n) = recv_fd(b.as_fd(), &mut buf).unwrap();
            assert_eq!(&buf[..n], b"/dev/pts/7");
            assert!(is_cloexec(fd.as_fd()));
            assert_ne!(fd.as_raw_fd(), file.as_raw_fd());

            // Same open file description: reads the same content.
            let mut got = String::new();
            let mut received = File::from(fd);
            received.seek(SeekFrom::Start(0)).unwrap();
            received.read_to_string(&mut got).unwrap();
            assert_eq!(got, "hello through the socket");
        }
    }

    #[test]
    fn empty_payload_is_refused() {
        let (a, _b) = pair(SockType::Stream);
        let file = memfd_with(b"x");
        let err = send_fd(a.as_fd(), file.as_fd(), b"").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn message_without_fd_is_an_error() {
        let (a, b) = pair(SockType::SeqPacket);
        send(a.as_raw_fd(), b"no fd here", MsgFlags::empty()).unwrap();
        let mut buf = [0u8; 64];
        let err = recv_fd(b.as_fd(), &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn closed_peer_is_eof() {
        let (a, b) = pair(SockType::Stream);
        drop(a);
        let mut buf = [0u8; 64];
        let err = recv_fd(b.as_fd(), &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn several_fds_are_refused_and_closed() {
        let (a, b) = pair(SockType::SeqPacket);
        let f1 = memfd_with(b"1");
        let f2 = memfd_with(b"2");
        let fds = [f1.as_raw_fd(), f2.as_raw_fd()];
        let iov = [IoSlice::new(b"x")];
        sendmsg::<UnixAddr>(
            a.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let mut buf = [0u8; 8];
        let err = recv_fd(b.as_fd(), &mut buf).unwrap_err();
        assert!(err.to_string().contains("received 2"), "{err}");
    }

    #[test]
    fn truncated_datagram_is_an_error() {
        let (a, b) = pair(SockType::SeqPacket);
        let file = memfd_with(b"x");
        send_fd(
            a.as_fd(),
            file.as_fd(),
            b"a payload longer than eight bytes",
        )
        .unwrap();
        let mut buf = [0u8; 8];
        let err = recv_fd(b.as_fd(), &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn large_stream_payload_arrives_whole() {
        let (a, b) = pair(SockType::Stream);
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let file = memfd_with(b"x");
        let expected = payload.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            let (_fd, n) = recv_fd(b.as_fd(), &mut buf).unwrap();
            let mut all = buf[..n].to_vec();
            let mut stream = UnixStream::from(b);
            stream.read_to_end(&mut all).unwrap();
            all
        });
        send_fd(a.as_fd(), file.as_fd(), &payload).unwrap();
        drop(a);
        assert_eq!(reader.join().unwrap(), expected);
    }

    #[test]
    fn seccomp_agent_receives_fd_and_state() {
        let dir = std::env::temp_dir().join(format!("skiff-socket-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();

        let mut state = State::default();
        state.set_version("1.2.0".into());
        state.set_id("c1".into());
        state.set_pid(Some(4242));
        let json = seccomp_process_state(&state, 4242, Some("meta")).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["fds"], serde_json::json!(["seccompFd"]));
        assert_eq!(value["pid"], 4242);
        assert_eq!(value["metadata"], "meta");
        assert_eq!(value["ociVersion"], "1.2.0");
        assert_eq!(value["state"]["id"], "c1");

        let agent = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let (fd, n) = recv_fd(conn.as_fd(), &mut buf).unwrap();
            let mut all = buf[..n].to_vec();
            // The runtime closes the connection after one state.
            (&conn).read_to_end(&mut all).unwrap();
            (fd, all)
        });
        let notify = memfd_with(b"pretend seccomp fd");
        send_seccomp_notify(&path, notify.as_fd(), &json).unwrap();
        let (fd, got) = agent.join().unwrap();
        assert_eq!(got, json);
        let mut content = String::new();
        let mut f = File::from(fd);
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_string(&mut content).unwrap();
        assert_eq!(content, "pretend seccomp fd");

        // No listener: the error names the path.
        std::fs::remove_file(&path).unwrap();
        let err = send_seccomp_notify(&path, notify.as_fd(), &json).unwrap_err();
        assert!(err.to_string().contains("agent.sock"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
