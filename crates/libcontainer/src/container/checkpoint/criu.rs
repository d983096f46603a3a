//! The conversation with CRIU over its RPC interface, as runc holds it:
//! `criu swrk FD` is started with one end of a `SOCK_SEQPACKET` pair, gets
//! one request (a protobuf `criu_req`, the types of rust-criu), and answers
//! with notifications (each acknowledged) and finally the response.
//!
//! rust-criu's own client is not used: it has no pre-dump request, no
//! `track_mem`, `cg_root`, `join_ns`, `config_file` or `lsm_*` setters,
//! drops the restore response (the restored pid) and takes a notify
//! callback as a plain `fn` (no context, so no hooks). Its generated RPC
//! types are used as they are.

use std::fs::File;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{self, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use protobuf::Message;
use rust_criu::rust_criu_protobuf::rpc;

use crate::error::{Context, Error, Result};

/// A request to send: its type and options, and where CRIU logs (to quote
/// its last errors when it fails).
pub(super) struct Request {
    pub kind: rpc::Criu_req_type,
    pub opts: rpc::Criu_opts,
    /// CRIU's log (`log_file` in the work directory).
    pub log: PathBuf,
    /// Where CRIU's own stderr goes (what it says before it reads the
    /// request, e.g. a kernel it cannot work with).
    pub stderr: PathBuf,
}

/// CRIU's log and its stderr.
struct Logs {
    log: PathBuf,
    stderr: PathBuf,
}

/// What CRIU tells along the way: a notify script name, the pid it names
/// (when it names one) and the descriptor that came with it.
pub(super) type Notify<'a> = dyn FnMut(&str, i32, Option<OwnedFd>) -> Result<()> + 'a;

/// Runs `criu swrk` at `criu`, lets `started` act on its pid (restore puts
/// it in the container's cgroup before the request), sends the request
/// and serves its notifications until the response. `inherit` are
/// descriptors CRIU gets under the same numbers (the request names them).
pub(super) fn call(criu: &Path, req: Request, inherit: &[BorrowedFd], started: &mut dyn FnMut(i32, &mut rpc::Criu_opts) -> Result<()>, notify: &mut Notify) -> Result<rpc::Criu_resp> {
    let (ours, theirs) = socket::socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).ctx(|| "create the criu socket pair".into())?;
    for fd in inherit.iter().copied().chain([std::os::fd::AsFd::as_fd(&theirs)]) {
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty())).ctx(|| "pass a descriptor to criu".into())?;
    }
    let Request { kind, opts, log, stderr: err_path } = req;
    let logs = Logs { log, stderr: err_path };
    let stderr = File::create(&logs.stderr).ctx(|| format!("create {}", logs.stderr.display()))?;
    let mut child = Command::new(criu)
        .arg("swrk")
        .arg(theirs.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| Error::Criu(format!("checkpoint/restore needs criu: cannot run {}: {}", criu.display(), crate::error::strerror(&e))))?;
    drop(theirs);
    for fd in inherit {
        let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    }
    let result = (|| {
        let mut opts = opts;
        started(child.id() as i32, &mut opts)?;
        let mut msg = rpc::Criu_req::new();
        msg.set_type(kind);
        msg.opts = protobuf::MessageField::some(opts);
        send(&ours, &msg)?;
        converse(&ours, kind, &logs, notify)
    })();
    // Closing our end ends CRIU (a pre-dump's CRIU waits for more requests).
    drop(ours);
    let status = child.wait().ctx(|| "wait for criu".into())?;
    let resp = result?;
    if !status.success() && kind != rpc::Criu_req_type::PRE_DUMP {
        return Err(Error::Criu(format!("criu failed: {status}{}", tail(&logs))));
    }
    Ok(resp)
}

/// Reads responses until the final one, acknowledging each notification.
fn converse(sock: &OwnedFd, kind: rpc::Criu_req_type, logs: &Logs, notify: &mut Notify) -> Result<rpc::Criu_resp> {
    loop {
        let Some((resp, fd)) = recv(sock)? else {
            return Err(Error::Criu(format!("criu failed: type {kind:?}: criu exited without an answer{}", tail(logs))));
        };
        if !resp.success() {
            let msg = Some(resp.cr_errmsg()).filter(|m| !m.is_empty()).map(|m| format!(": {m}")).unwrap_or_default();
            return Err(Error::Criu(format!("criu failed: type {kind:?} errno {}{msg}{}", resp.cr_errno(), tail(logs))));
        }
        if resp.type_() != rpc::Criu_req_type::NOTIFY {
            return Ok(resp);
        }
        let script = resp.notify.script().to_string();
        tracing::debug!(script, "criu notify");
        let r = notify(&script, resp.notify.pid(), fd);
        let mut ack = rpc::Criu_req::new();
        ack.set_type(rpc::Criu_req_type::NOTIFY);
        ack.set_notify_success(r.is_ok());
        send(sock, &ack)?;
        r?;
    }
}

fn send(sock: &OwnedFd, msg: &rpc::Criu_req) -> Result<()> {
    let data = msg.write_to_bytes().map_err(|e| Error::Criu(format!("encode the criu request: {e}")))?;
    socket::send(sock.as_raw_fd(), &data, MsgFlags::MSG_NOSIGNAL).ctx(|| "send the criu request".into())?;
    Ok(())
}

/// One response (None when CRIU closed the socket), with the descriptor
/// sent with it (the orphan pty master).
fn recv(sock: &OwnedFd) -> Result<Option<(rpc::Criu_resp, Option<OwnedFd>)>> {
    // The datagram's size first (MSG_TRUNC returns it), then the datagram.
    let len = socket::recv(sock.as_raw_fd(), &mut [], MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC).ctx(|| "read from criu".into())?;
    if len == 0 {
        return Ok(None);
    }
    let mut buf = vec![0u8; len];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let m = socket::recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).ctx(|| "read from criu".into())?;
    let mut fd = None;
    for c in m.cmsgs().map_err(|e| Error::errno("read from criu", e))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for (i, raw) in fds.into_iter().enumerate() {
                // SAFETY: the kernel just installed this descriptor for us.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                if i == 0 {
                    fd = Some(owned);
                }
            }
        }
    }
    let n = m.bytes;
    let resp = rpc::Criu_resp::parse_from_bytes(&buf[..n]).map_err(|e| Error::Criu(format!("decode criu's answer: {e}")))?;
    Ok(Some((resp, fd)))
}

/// The reason CRIU gave: the last errors of its log (or of its stderr, when
/// it failed before it opened the log), and where the log is.
fn tail(req: &Logs) -> String {
    let lines = |p: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut errors: Vec<&str> = all.iter().copied().filter(|l| l.contains("Error (")).collect();
        errors.dedup();
        let pick = if errors.is_empty() { &all } else { &errors };
        // Without CRIU's timestamps: "(00.011891) Error (criu/vdso.c:613): ...".
        let bare = |l: &str| l.trim().strip_prefix('(').and_then(|r| r.split_once(") ")).map_or(l.trim(), |(_, rest)| rest).to_string();
        pick.iter().rev().take(3).rev().map(|l| bare(l)).collect()
    };
    let mut found = lines(&req.log);
    let mut src = &req.log;
    if found.is_empty() {
        found = lines(&req.stderr);
        src = &req.stderr;
    }
    if found.is_empty() {
        return format!(" (log file: {})", req.log.display());
    }
    format!(": {} (log file: {})", found.join("; "), src.display())
}

/// Whether CRIU is there and `criu check` passes on this kernel.
pub fn works(criu: &Path) -> bool {
    Command::new(criu).arg("check").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}
