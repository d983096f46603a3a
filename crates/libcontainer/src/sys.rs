//! Raw system calls that `nix` does not wrap (clone3, pidfds, mount_setattr,
//! close_range, keyctl, ioprio_set, sched_setattr) and small /proc readers.
//!
//! Every `unsafe` block here is a single system call whose arguments are
//! plain integers or pointers to live, correctly laid out values.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// What `clone_process` returns in each process.
pub enum Forked {
    /// In the parent: the child's pid and a pidfd for it.
    Parent { pid: Pid, pidfd: OwnedFd },
    /// In the child.
    Child,
}

/// Creates a new process the way fork does (separate address space, same
/// stack contents), with `flags` (CLONE_NEW*, CLONE_PARENT...) and a pidfd.
/// Tries clone3 first and falls back to clone on kernels without it.
///
/// The caller must be single-threaded: the child starts with a copy of the
/// caller's memory, and no lock held by another thread could ever be released.
pub fn clone_process(flags: u64) -> io::Result<Forked> {
    clone_process_into(flags, None)
}

/// [`clone_process`] straight into the cgroup (v2) whose directory is
/// `cgroup` (CLONE_INTO_CGROUP). Fails, rather than falling back, where
/// the kernel cannot (no clone3, a cgroup that refuses the process): the
/// caller then clones without it and moves the child itself.
pub fn clone_process_into(flags: u64, cgroup: Option<BorrowedFd>) -> io::Result<Forked> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let mut pidfd: libc::c_int = -1;
    // SAFETY: clone_args is plain data; zeroed is a valid initial value.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags | libc::CLONE_PIDFD as u64;
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    args.pidfd = &mut pidfd as *mut libc::c_int as u64;
    // CLONE_PARENT takes the exit signal of the caller; anything else needs SIGCHLD.
    args.exit_signal = if flags & libc::CLONE_PARENT as u64 != 0 { 0 } else { libc::SIGCHLD as u64 };
    // SAFETY: clone3 without CLONE_VM behaves like fork: the child gets a copy
    // of the address space and resumes here with a return value of 0. `args`
    // and `pidfd` are valid for the duration of the call.
    let ret = unsafe {
        libc::syscall(libc::SYS_clone3, &mut args as *mut libc::clone_args, std::mem::size_of::<libc::clone_args>())
    };
    let ret = if ret == -1 && matches!(Errno::last(), Errno::ENOSYS) && cgroup.is_none() {
        // clone(2) takes the exit signal in the low byte of flags; CLONE_NEWTIME
        // shares that byte and so cannot be requested this way.
        if flags & libc::CLONE_NEWTIME as u64 != 0 {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "time namespaces need clone3"));
        }
        let f = (flags | libc::CLONE_PIDFD as u64) as libc::c_ulong | args.exit_signal as libc::c_ulong;
        // SAFETY: a fork-like clone (no CLONE_VM, no new stack); the kernel
        // stores the pidfd into `pidfd` (the parent_tid slot on x86_64).
        unsafe {
            libc::syscall(libc::SYS_clone, f, 0usize, &mut pidfd as *mut libc::c_int, 0usize, 0usize)
        }
    } else {
        ret
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: Pid::from_raw(pid as i32),
            // SAFETY: the kernel just handed us this descriptor.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// A pidfd for `pid` (which need not be our child).
pub fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: plain integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just handed us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `sig` to the process behind `pidfd`: no pid-reuse race.
pub fn pidfd_send_signal(pidfd: BorrowedFd, sig: i32) -> io::Result<()> {
    // SAFETY: plain integer arguments, a null siginfo.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, std::ptr::null::<u8>(), 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits until the process behind `pidfd` has exited (not necessarily been
/// reaped), or until `timeout_ms` passes (-1: forever). Returns true if it exited.
pub fn pidfd_wait_exit(pidfd: BorrowedFd, timeout_ms: i32) -> io::Result<bool> {
    pidfd_wait_exit_us(pidfd, if timeout_ms < 0 { -1 } else { i64::from(timeout_ms) * 1000 })
}

/// [`pidfd_wait_exit`] with a timeout in microseconds (-1: forever).
pub fn pidfd_wait_exit_us(pidfd: BorrowedFd, timeout_us: i64) -> io::Result<bool> {
    let mut pfd = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let ts = libc::timespec { tv_sec: timeout_us / 1_000_000, tv_nsec: (timeout_us % 1_000_000) * 1000 };
    let tsp: *const libc::timespec = if timeout_us < 0 { std::ptr::null() } else { &ts };
    loop {
        // SAFETY: one valid pollfd, a valid timespec or null (no timeout),
        // no signal mask.
        let r = unsafe { libc::ppoll(&mut pfd, 1, tsp, std::ptr::null()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(r > 0);
    }
}

/// mount_setattr(2) on `dirfd`+`path` with the given attribute changes.
pub fn mount_setattr(dirfd: RawFd, path: &std::ffi::CStr, flags: u32, set: u64, clr: u64, propagation: u64, userns_fd: u64) -> io::Result<()> {
    // SAFETY: mount_attr is plain data.
    let mut attr: libc::mount_attr = unsafe { std::mem::zeroed() };
    attr.attr_set = set;
    attr.attr_clr = clr;
    attr.propagation = propagation;
    attr.userns_fd = userns_fd;
    // SAFETY: valid C string and a valid, correctly sized mount_attr.
    let r = unsafe {
        libc::syscall(libc::SYS_mount_setattr, dirfd, path.as_ptr(), flags, &mut attr as *mut libc::mount_attr, std::mem::size_of::<libc::mount_attr>())
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Marks every descriptor from `first` up close-on-exec.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // Kernels before 5.11, or a seccomp filter of the host's that
        // refuses it: mark each open descriptor instead.
        Some(libc::ENOSYS | libc::EPERM | libc::EINVAL) => cloexec_each(first),
        _ => Err(e),
    }
}

fn cloexec_each(first: u32) -> io::Result<()> {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &i32| fd >= first as i32)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on a descriptor number; one closed meanwhile (the
        // directory's own) fails with EBADF, which is fine.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

#[cfg(test)]
mod close_tests {
    use std::os::fd::IntoRawFd;

    #[test]
    fn closes_all_but_the_kept() {
        // In a child, so the test harness's own descriptors are left alone.
        let a = std::fs::File::open("/dev/null").unwrap().into_raw_fd();
        let b = std::fs::File::open("/dev/null").unwrap().into_raw_fd();
        // SAFETY: the child makes only system calls (close_range does not
        // allocate) before _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = super::close_from_except(3, &[b]).is_ok()
                    // SAFETY: F_GETFD on descriptor numbers.
                    && unsafe { libc::fcntl(a, libc::F_GETFD) } < 0
                    && unsafe { libc::fcntl(b, libc::F_GETFD) } >= 0;
                // SAFETY: _exit in a forked child.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let st = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
        // SAFETY: closing the two descriptors this test opened.
        unsafe { libc::close(a) };
        unsafe { libc::close(b) };
    }
}

#[cfg(test)]
mod cloexec_tests {
    use std::os::fd::AsRawFd;

    #[test]
    fn each_descriptor_becomes_close_on_exec() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let fd = f.as_raw_fd();
        // SAFETY: clearing FD_CLOEXEC on our own descriptor.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        super::cloexec_each(fd as u32).unwrap();
        // SAFETY: F_GETFD on our own descriptor.
        assert_eq!(unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    }
}

/// Closes every descriptor from `first` up except those in `keep` (the
/// init's own channel and fifo, close-on-exec): nothing the caller passed
/// or the runtime opened (a directory of the host, CVE-2024-21626) is still
/// open when execve resolves the container's executable.
pub fn close_from_except(first: u32, keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep.iter().filter(|&&k| k >= first as RawFd).map(|&k| k as u32).collect();
    keep.sort_unstable();
    let mut lo = first;
    let mut ranges = Vec::with_capacity(keep.len() + 1);
    for k in keep {
        if k > lo {
            ranges.push((lo, k - 1));
        }
        lo = k + 1;
    }
    ranges.push((lo, u32::MAX));
    for (a, b) in ranges {
        // SAFETY: plain integer arguments.
        if unsafe { libc::syscall(libc::SYS_close_range, a, b, 0) } < 0 {
            return close_each(a, b);
        }
    }
    Ok(())
}

/// close_range refused (an old kernel, the host's seccomp filter): close
/// what /proc/self/fd lists in [a, b].
fn close_each(a: u32, b: u32) -> io::Result<()> {
    let fds: Vec<u32> = std::fs::read_dir("/proc/self/fd")?.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).filter(|fd| (a..=b).contains(fd)).collect();
    for fd in fds {
        // SAFETY: closing a descriptor number in the range we own; the
        // directory's own (already closed) fails with EBADF.
        unsafe { libc::close(fd as RawFd) };
    }
    Ok(())
}

/// Joins a new, named session keyring (what `--no-new-keyring` skips).
pub fn join_session_keyring(name: &std::ffi::CStr) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    // SAFETY: valid C string.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, class<<13 | level).
pub fn ioprio_set(class: i32, level: i32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: plain integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, (class << 13) | level) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// sched_setattr(0, attr, 0).
pub fn sched_setattr(attr: &libc::sched_attr) -> io::Result<()> {
    // SAFETY: a valid sched_attr whose size field the caller filled in.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *const libc::sched_attr, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// sched_setaffinity(2) of `pid` (0: the caller) to `cpus`.
pub fn set_affinity(pid: i32, cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        if c >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("cpu {c} is out of range")));
        }
        // SAFETY: `c` is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A CPU list such as `0-3,7` (the kernel's and the runtime-spec's format).
pub fn parse_cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if a > b {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.trim().parse().ok()?),
        }
    }
    Some(cpus)
}

/// The start time (field 22 of /proc/<pid>/stat, in clock ticks since boot)
/// and the state letter of `pid`; None if there is no such process.
pub fn proc_start_time(pid: i32) -> Option<(u64, char)> {
    let stat = read_proc_stat(pid)?;
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3; the start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state))
}

fn read_proc_stat(pid: i32) -> Option<String> {
    read_proc(format!("/proc/{pid}/stat")).ok()
}

/// The command name of `pid` (kept for a zombie too).
pub fn proc_comm(pid: i32) -> Option<String> {
    let stat = read_proc_stat(pid)?;
    let a = stat.find('(')?;
    let b = stat.rfind(')')?;
    Some(stat[a + 1..b].to_string())
}

/// open_tree(2): a detached copy (OPEN_TREE_CLONE) of the mount at `path`.
pub fn open_tree_clone(path: &std::ffi::CStr, recursive: bool) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: u32 = 1;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as u32 | if recursive { libc::AT_RECURSIVE as u32 } else { 0 };
    // SAFETY: a valid C string and integer flags.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just handed us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// move_mount(2) of the detached tree `from` onto the directory `to`.
/// A detached bind mount of what `fd` refers to (open_tree with
/// OPEN_TREE_CLONE and AT_EMPTY_PATH): a mount source no path names.
pub fn open_tree_of(fd: BorrowedFd) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: u32 = 1;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as u32 | libc::AT_EMPTY_PATH as u32;
    // SAFETY: a valid descriptor, an empty C string and integer flags.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just handed us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

pub fn move_mount_to(from: BorrowedFd, to: BorrowedFd) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: u32 = 4;
    const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
    // SAFETY: valid descriptors and C strings.
    let r = unsafe { libc::syscall(libc::SYS_move_mount, from.as_raw_fd(), c"".as_ptr(), to.as_raw_fd(), c"".as_ptr(), MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A user namespace with the given uid/gid maps, as a descriptor (for
/// idmapped mounts). Made by a short-lived child that only unshares; the
/// maps are written from here, then the child is killed and reaped.
pub fn userns_with_maps(uid_map: &str, gid_map: &str) -> io::Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    let (pid, pidfd) = match clone_process(libc::CLONE_NEWUSER as u64)? {
        Forked::Child => {
            // Wait until the parent is done with our namespace (it closes
            // the pipe's only other write end), then leave.
            drop(w);
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(r.as_raw_fd(), &mut b);
            // SAFETY: _exit in a forked child.
            unsafe { libc::_exit(0) }
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(r);
    let res = (|| {
        std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)?;
        std::fs::write(format!("/proc/{pid}/gid_map"), gid_map)?;
        let f = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
        Ok(OwnedFd::from(f))
    })();
    drop(w);
    let _ = pidfd_wait_exit(std::os::fd::AsFd::as_fd(&pidfd), 5000);
    let _ = nix::sys::wait::waitpid(pid, None);
    res
}

/// Memory a process no longer needs, given back to the kernel (the init,
/// before it waits for `start`; see docs/benchmarks.md, "Memory"): the free
/// memory of the heap (malloc_trim); the main stack below the caller's
/// frame, dead since the runtime's deeper calls returned; and the
/// page-table entries of the binary's own read-only mappings, from the ELF
/// header to the end of the code: clean page-cache pages, mapped again (64
/// KiB at a time) when next executed, so what has run so far stops counting
/// in the process's RSS.
#[inline(never)]
pub fn release_memory() {
    const PAGE: usize = 4096;
    // SAFETY: malloc_trim only returns free memory to the kernel (glibc;
    // musl's allocator unmaps what it frees itself).
    #[cfg(target_env = "gnu")]
    unsafe { libc::malloc_trim(0) };
    // Below this frame (and a page of margin): at most 1 MiB of stack the
    // runtime used before; a hole in the range (the guard gap below the
    // stack) makes madvise report ENOMEM after doing the rest.
    let here = 0u8;
    let sp = (std::ptr::addr_of!(here) as usize & !(PAGE - 1)) - PAGE;
    // SAFETY: nothing lives below the current frame; the pages read back as
    // zeros if ever touched again.
    unsafe { libc::madvise((sp - (1 << 20)) as *mut libc::c_void, 1 << 20, libc::MADV_DONTNEED) };
    extern "C" {
        // Defined by the linker (GNU ld and lld) for every ELF executable.
        static __ehdr_start: u8;
        static etext: u8;
    }
    let (start, end) = (std::ptr::addr_of!(__ehdr_start) as usize, std::ptr::addr_of!(etext) as usize);
    let (start, end) = (start & !(PAGE - 1), (end + PAGE - 1) & !(PAGE - 1));
    // SAFETY: the binary's own read-only, file-backed image (never written:
    // no private copy is lost); MADV_DONTNEED only drops the mappings of
    // pages that are faulted in again when used.
    unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
}

/// A /proc (or cgroup) file read whole, in reads of a page's size (procfs
/// reports a size of 0, so `read_to_string` stats the file, seeks, and
/// starts at 32 bytes with a read per doubling; /proc/PID/stat or a mount
/// table takes one read here, and one more to see the end).
pub fn read_proc(path: impl AsRef<std::path::Path>) -> io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(out).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
