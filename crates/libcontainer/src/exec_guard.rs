//! The container process's final exec, which never executes the runtime's
//! own binary (CVE-2019-5736 class; see docs/security.md, "the host binary").
//!
//! The init is a clone of the runtime, so until it execs, `/proc/self/exe`
//! inside the container is the host's skiff binary. Had the init exec'd that
//! (directly, or as the `#!` interpreter of a script), the new process would
//! be the host binary, dumpable, and a process of the container could open
//! `/proc/<pid>/exe` and later write to it. [`execute`] closes that:
//!
//! 1. it opens the program, fstats it and compares (st_dev, st_ino) with the
//!    runtime binary's, recorded once by [`record_runtime_binary`] before
//!    the clone: equal means refused;
//! 2. it executes *that descriptor* (`execveat(fd, "", AT_EMPTY_PATH)`), so
//!    nothing can be swapped in between check and exec;
//! 3. for a `#!` script it reads the interpreter line from the same
//!    descriptor, opens and checks the interpreter the same way (up to four
//!    levels, as the kernel), and executes the interpreter's descriptor
//!    itself with the argv the kernel would build
//!    (`interp [arg] script args[1..]`): binfmt_script, emulated, so the
//!    kernel never reads a shebang that could have changed since;
//! 4. for an ELF program it also refuses a `PT_INTERP` (program
//!    interpreter) that is the runtime binary (best effort: the kernel
//!    resolves that path again).
//!
//! The descriptor is close-on-exec, and for such a descriptor the kernel
//! refuses to run a script (ENOENT: the interpreter could not open
//! `/dev/fd/N`). So a file rewritten into a script after the check is not
//! run, and an execute-only (unreadable) file, whose header cannot be read,
//! is executed only if it is not a script.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::Error;

/// The kernel reads this many bytes of a file to look for `#!`.
const BINPRM_BUF_SIZE: usize = 256;
/// Levels of `#!` interpreters followed before giving up with ELOOP.
const MAX_INTERP_DEPTH: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

static RUNTIME_BINARY: OnceLock<Option<FileId>> = OnceLock::new();

fn stat_runtime_binary() -> Option<FileId> {
    nix::sys::stat::stat("/proc/self/exe").ok().map(|s| FileId { dev: s.st_dev, ino: s.st_ino })
}

/// Records the identity of the runtime binary (one stat of
/// `/proc/self/exe`). Called by the runtime before it clones the init, so
/// the init, a copy of the runtime's memory, knows it without needing a
/// /proc of its own.
pub fn record_runtime_binary() {
    RUNTIME_BINARY.get_or_init(stat_runtime_binary);
}

/// A file opened for execution.
struct Opened {
    fd: OwnedFd,
    id: FileId,
    /// The first bytes, or None when the file is not readable (execute-only).
    header: Option<Vec<u8>>,
}

/// A parsed `#!` line.
#[derive(Debug, PartialEq, Eq)]
struct Shebang {
    interp: CString,
    arg: Option<CString>,
}

/// The container's program, checked and opened: what [`Prepared::exec`]
/// executes. Made by [`prepare`] before the seccomp filter is loaded, so
/// that the only system call left after it is the exec itself.
pub struct Prepared {
    fd: OwnedFd,
    argv: Vec<CString>,
    shown: String,
    /// Execute-only: not read, so a script cannot be told apart.
    unreadable: bool,
}

/// Resolves `path` for execution as execve would, except that the runtime
/// binary is refused at any interpreter level. Fails with runc's "unable to
/// start container process: exec ..." error.
pub fn prepare(path: &CStr, args: &[CString]) -> Result<Prepared, Error> {
    let shown = path.to_string_lossy().into_owned();
    let fail = |detail: String| Error::Init(format!("unable to start container process: exec {shown}: {detail}"));
    let Some(runtime) = *RUNTIME_BINARY.get_or_init(stat_runtime_binary) else {
        return Err(fail("cannot identify the runtime binary (stat /proc/self/exe failed)".into()));
    };
    let mut name = path.to_owned();
    let mut argv = args.to_vec();
    for depth in 0..=MAX_INTERP_DEPTH {
        let via = |what: String| if depth == 0 { what } else { format!("interpreter {}: {what}", name.to_string_lossy()) };
        let file = open_for_exec(&name).map_err(|e| fail(via(errno_text(e))))?;
        if file.id == runtime {
            return Err(fail(via("refusing to execute the runtime binary".into())));
        }
        let script = match file.header.as_deref().map(parse_shebang) {
            Some(Ok(Some(s))) => s,
            Some(Ok(None)) => {
                if let Some(interp) = file.header.as_deref().and_then(|h| elf_interp(&file.fd, h)) {
                    if stat_id(&interp) == Some(runtime) {
                        let shown = interp.to_string_lossy();
                        return Err(fail(via(format!("refusing to execute the runtime binary (program interpreter {shown})"))));
                    }
                }
                return Ok(Prepared { fd: file.fd, argv, shown, unreadable: false });
            }
            Some(Err(e)) => return Err(fail(via(errno_text(e)))),
            None => return Ok(Prepared { fd: file.fd, argv, shown, unreadable: true }),
        };
        if depth == MAX_INTERP_DEPTH {
            return Err(fail(errno_text(Errno::ELOOP)));
        }
        check_executable(&file.fd).map_err(|e| fail(via(errno_text(e))))?;
        argv = script_argv(&script, &name, &argv);
        name = script.interp;
    }
    unreachable!("the loop returns at MAX_INTERP_DEPTH")
}

impl Prepared {
    /// The descriptor to keep open until the exec.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    /// Executes the checked descriptor; returns only on failure.
    pub fn exec(&self, env: &[CString]) -> Error {
        let e = exec_fd(&self.fd, &self.argv, env);
        let detail = match e {
            Errno::ENOENT if self.unreadable => "no such file or directory (or an unreadable script: refused, its interpreter cannot be checked)".into(),
            e => errno_text(e),
        };
        Error::Init(format!("unable to start container process: exec {}: {detail}", self.shown))
    }
}

/// [`prepare`] and [`Prepared::exec`] in one go.
pub fn execute(path: &CStr, args: &[CString], env: &[CString]) -> Error {
    match prepare(path, args) {
        Ok(p) => p.exec(env),
        Err(e) => e,
    }
}

fn errno_text(e: Errno) -> String {
    e.desc().to_lowercase()
}

/// Opens `name` (relative to the cwd, symlinks followed, as exec does) and
/// reads its header; an unreadable file is opened O_PATH instead.
fn open_for_exec(name: &CStr) -> Result<Opened, Errno> {
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let (raw, readable) = match nix::fcntl::open(name, flags, Mode::empty()) {
        Ok(fd) => (fd, true),
        Err(Errno::EACCES) => (nix::fcntl::open(name, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())?, false),
        Err(e) => return Err(e),
    };
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Errno::EACCES); // what execve says for anything else
    }
    let id = FileId { dev: st.st_dev, ino: st.st_ino };
    let header = if readable { Some(read_header(&fd)?) } else { None };
    Ok(Opened { fd, id, header })
}

fn read_header(fd: &OwnedFd) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; BINPRM_BUF_SIZE];
    let mut n = 0;
    while n < buf.len() {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(buf)
}

fn stat_id(path: &CStr) -> Option<FileId> {
    nix::sys::stat::stat(path).ok().map(|s| FileId { dev: s.st_dev, ino: s.st_ino })
}

/// The PT_INTERP path of an ELF file (32 or 64 bits, either byte order),
/// read from `fd`; None when there is none or it cannot be read. Best
/// effort: the kernel reads it again during the exec (docs/security.md).
fn elf_interp(fd: &OwnedFd, header: &[u8]) -> Option<CString> {
    if header.len() < 52 || !header.starts_with(b"\x7fELF") {
        return None;
    }
    let (wide, le) = (header[4] == 2, header[5] == 1);
    let num = |b: &[u8]| b.iter().enumerate().fold(0u64, |v, (i, &x)| v | u64::from(x) << (8 * if le { i } else { b.len() - 1 - i }));
    let (phoff, phentsize, phnum) = if wide {
        (num(header.get(0x20..0x28)?), num(&header[0x36..0x38]), num(&header[0x38..0x3a]))
    } else {
        (num(&header[0x1c..0x20]), num(&header[0x2a..0x2c]), num(&header[0x2c..0x2e]))
    };
    if phentsize < if wide { 56 } else { 32 } || phnum == 0 || phentsize * phnum > 65_536 {
        return None;
    }
    let mut ph = vec![0u8; (phentsize * phnum) as usize];
    if nix::sys::uio::pread(fd, &mut ph, phoff as libc::off_t).ok()? != ph.len() {
        return None;
    }
    let p = ph.chunks(phentsize as usize).find(|p| num(&p[0..4]) == 3)?; // PT_INTERP
    let (off, size) = if wide { (num(&p[8..16]), num(&p[32..40])) } else { (num(&p[4..8]), num(&p[16..20])) };
    if size == 0 || size > libc::PATH_MAX as u64 {
        return None;
    }
    let mut path = vec![0u8; size as usize];
    if nix::sys::uio::pread(fd, &mut path, off as libc::off_t).ok()? != path.len() || path.last() != Some(&0) {
        return None;
    }
    CString::from_vec_with_nul(path[..=path.iter().position(|&b| b == 0)?].to_vec()).ok()
}

/// A script must itself be executable by us (and not on a noexec mount):
/// the kernel checks that when it runs a script, and here it never does.
fn check_executable(fd: &OwnedFd) -> Result<(), Errno> {
    // SAFETY: faccessat2 on a live descriptor with an empty, nul-terminated path.
    let r = unsafe {
        libc::syscall(libc::SYS_faccessat2, fd.as_raw_fd(), c"".as_ptr(), libc::X_OK, libc::AT_EMPTY_PATH | libc::AT_EACCESS)
    };
    if r == 0 {
        return Ok(());
    }
    match Errno::last() {
        // Before Linux 5.8, or a seccomp profile that predates faccessat2
        // (older Docker profiles answer EPERM): fall back to the mode bits.
        Errno::ENOSYS | Errno::EPERM => {
            let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
            if st.st_mode & 0o111 == 0 {
                return Err(Errno::EACCES);
            }
            Ok(())
        }
        e => Err(e),
    }
}

/// Parses a `#!` line the way fs/binfmt_script.c does. `Ok(None)`: not a
/// script; `Err(ENOEXEC)`: a `#!` line the kernel would refuse.
fn parse_shebang(buf: &[u8]) -> Result<Option<Shebang>, Errno> {
    let buf = &buf[..buf.len().min(BINPRM_BUF_SIZE)];
    let Some(rest) = buf.strip_prefix(b"#!") else { return Ok(None) };
    let spacetab = |b: &u8| *b == b' ' || *b == b'\t';
    let line = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => &rest[..i],
        // The kernel's buffer ends with a NUL: without a newline the last
        // byte is lost, and an interpreter name that runs to the end of the
        // buffer is taken as truncated.
        None if buf.len() == BINPRM_BUF_SIZE => {
            let line = &rest[..rest.len() - 1];
            let start = line.iter().position(|b| !spacetab(b)).ok_or(Errno::ENOEXEC)?;
            if !line[start..].iter().any(|b| spacetab(b) || *b == 0) {
                return Err(Errno::ENOEXEC);
            }
            line
        }
        None => rest,
    };
    let line = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
    let end = line.iter().rposition(|b| !spacetab(b)).map_or(0, |i| i + 1);
    let line = &line[..end];
    let start = line.iter().position(|b| !spacetab(b)).ok_or(Errno::ENOEXEC)?;
    let line = &line[start..];
    let name_end = line.iter().position(spacetab).unwrap_or(line.len());
    let arg = &line[name_end..];
    let arg = &arg[arg.iter().position(|b| !spacetab(b)).unwrap_or(arg.len())..];
    // No NUL can be left in either part: the line was cut at the first one.
    let interp = CString::new(&line[..name_end]).map_err(|_| Errno::ENOEXEC)?;
    let arg = if arg.is_empty() { None } else { Some(CString::new(arg).map_err(|_| Errno::ENOEXEC)?) };
    Ok(Some(Shebang { interp, arg }))
}

/// The argv the kernel gives a script's interpreter: the interpreter, its
/// optional argument, the script's path, then the script's arguments.
fn script_argv(s: &Shebang, script: &CStr, argv: &[CString]) -> Vec<CString> {
    let mut v = Vec::with_capacity(argv.len() + 2);
    v.push(s.interp.clone());
    v.extend(s.arg.clone());
    v.push(script.to_owned());
    v.extend(argv.iter().skip(1).cloned());
    v
}

/// execveat(fd, "", AT_EMPTY_PATH); returns only on failure. A seccomp
/// profile that allows execve but not execveat gets execve of
/// /proc/self/fd/N: the same open file, found without a path walk.
fn exec_fd(fd: &OwnedFd, argv: &[CString], env: &[CString]) -> Errno {
    let mut argp: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argp.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: a live descriptor, an empty nul-terminated path and two
    // null-terminated arrays of pointers to live C strings.
    unsafe { libc::syscall(libc::SYS_execveat, fd.as_raw_fd(), c"".as_ptr(), argp.as_ptr(), envp.as_ptr(), libc::AT_EMPTY_PATH) };
    let e = Errno::last();
    if e != Errno::ENOSYS && e != Errno::EPERM {
        return e;
    }
    let Ok(proc_path) = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())) else { return e };
    // SAFETY: a nul-terminated path and the same two arrays as above.
    unsafe { libc::execve(proc_path.as_ptr(), argp.as_ptr(), envp.as_ptr()) };
    match Errno::last() {
        Errno::ENOENT => e, // no /proc in the container: report execveat's error
        e2 => e2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb(interp: &str, arg: Option<&str>) -> Option<Shebang> {
        Some(Shebang { interp: CString::new(interp).unwrap(), arg: arg.map(|a| CString::new(a).unwrap()) })
    }

    #[test]
    fn shebang_lines_parse_like_the_kernel() {
        assert_eq!(parse_shebang(b"\x7fELF\x02\x01"), Ok(None));
        assert_eq!(parse_shebang(b""), Ok(None));
        assert_eq!(parse_shebang(b"#!/bin/sh\necho"), Ok(sb("/bin/sh", None)));
        assert_eq!(parse_shebang(b"#!/bin/sh"), Ok(sb("/bin/sh", None)));
        assert_eq!(parse_shebang(b"#! \t/usr/bin/env  python3 -u \t\nx"), Ok(sb("/usr/bin/env", Some("python3 -u"))));
        assert_eq!(parse_shebang(b"#!/proc/self/exe --log\n"), Ok(sb("/proc/self/exe", Some("--log"))));
        assert_eq!(parse_shebang(b"#!relative/interp\n"), Ok(sb("relative/interp", None)));
        assert_eq!(parse_shebang(b"#!/bin/sh\0junk\n"), Ok(sb("/bin/sh", None)));
        assert_eq!(parse_shebang(b"#!\n"), Err(Errno::ENOEXEC));
        assert_eq!(parse_shebang(b"#!   \t\n"), Err(Errno::ENOEXEC));
    }

    #[test]
    fn long_shebang_lines_follow_the_kernel_buffer() {
        // interpreter name running to the end of the 256-byte buffer: truncated
        let mut long = b"#!/".to_vec();
        long.resize(300, b'a');
        assert_eq!(parse_shebang(&long[..BINPRM_BUF_SIZE]), Err(Errno::ENOEXEC));
        // a terminated name with a long argument: the argument is cut
        let mut ok = b"#!/bin/sh ".to_vec();
        ok.resize(300, b'b');
        let s = parse_shebang(&ok[..BINPRM_BUF_SIZE]).unwrap().unwrap();
        assert_eq!(s.interp.as_bytes(), b"/bin/sh");
        assert_eq!(s.arg.unwrap().as_bytes().len(), BINPRM_BUF_SIZE - 1 - 10);
    }

    #[test]
    fn script_argv_is_the_kernels() {
        let args = [CString::new("/x.sh").unwrap(), CString::new("a").unwrap(), CString::new("b").unwrap()];
        let v = script_argv(&sb("/bin/sh", Some("-e")).unwrap(), c"/x.sh", &args);
        let v: Vec<&[u8]> = v.iter().map(|c| c.as_bytes()).collect();
        assert_eq!(v, [&b"/bin/sh"[..], b"-e", b"/x.sh", b"a", b"b"]);
        let v = script_argv(&sb("/bin/sh", None).unwrap(), c"rel", &args[..1]);
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn runtime_binary_is_identified() {
        record_runtime_binary();
        let me = RUNTIME_BINARY.get().copied().flatten().expect("stat /proc/self/exe");
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let f = open_for_exec(&CString::new(exe.as_os_str().as_encoded_bytes()).unwrap()).unwrap();
        assert_eq!(f.id, me);
        assert!(f.header.unwrap().starts_with(b"\x7fELF"));
        assert_eq!(open_for_exec(c"/proc/self").err(), Some(Errno::EACCES), "directories are not executed");
    }

    #[test]
    fn pt_interp_is_read() {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let f = open_for_exec(&CString::new(exe.as_os_str().as_encoded_bytes()).unwrap()).unwrap();
        let interp = elf_interp(&f.fd, f.header.as_deref().unwrap());
        // The test binary is dynamically linked (cargo test): its loader exists.
        let interp = interp.expect("a PT_INTERP in the test binary");
        assert!(std::path::Path::new(interp.to_str().unwrap()).exists(), "{interp:?}");
        let sh = open_for_exec(c"/proc/self/exe").unwrap();
        assert!(elf_interp(&sh.fd, b"#!/bin/sh\n").is_none());
        assert!(elf_interp(&sh.fd, &[0x7f, b'E', b'L', b'F']).is_none());
    }

    /// What the guard adds before the exec: `cargo test -p libcontainer
    /// --release guard_cost -- --ignored --nocapture` (docs/benchmarks.md).
    #[test]
    #[ignore]
    fn guard_cost() {
        record_runtime_binary();
        let me = RUNTIME_BINARY.get().copied().flatten().unwrap();
        for path in [c"/bin/true", c"/bin/sh", c"/bin/true", c"/bin/sh", c"/bin/busybox"] {
            let n = 20_000;
            let t = std::time::Instant::now();
            for _ in 0..n {
                let f = open_for_exec(path).unwrap();
                assert_ne!(f.id, me);
                let h = f.header.as_deref().unwrap();
                if std::hint::black_box(parse_shebang(h).unwrap()).is_none() {
                    if let Some(i) = elf_interp(&f.fd, h) {
                        assert_ne!(stat_id(&i), Some(me));
                    }
                }
            }
            eprintln!("{path:?}: open + fstat + read + parse (+ PT_INTERP + stat): {:.2} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
    }
}
