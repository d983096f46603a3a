//! Seccomp: translating the OCI `linux.seccomp` section into a BPF program,
//! caching the compiled program on disk, and installing it.
//!
//! The work is split in two halves that run in different processes:
//!
//! * **Compilation** ([`compile`], [`compile_cached`]) runs in the runtime,
//!   before the container's init is cloned. It turns the OCI profile into a
//!   [`Filter`]: the raw `sock_filter` array produced by libseccomp (with
//!   the `-ENOSYS` stub described below in front of it), the
//!   `SECCOMP_FILTER_FLAG_*` bits to pass to `seccomp(2)` and whether a
//!   user-notification listener is needed (`SCMP_ACT_NOTIFY`).
//! * **Loading** ([`load`]) runs in the container init, single-threaded,
//!   right before `execve`. It performs no allocation and no logging: it
//!   builds a `sock_fprog` on the stack and calls `seccomp(2)` directly. The
//!   caller is responsible for `PR_SET_NO_NEW_PRIVS` (libseccomp's own NNP
//!   handling is switched off when compiling), and for handing the returned
//!   notify fd to the seccomp agent (see `socket::send_seccomp_notify`).
//!
//! # Translation rules
//!
//! * Syscall names that libseccomp does not know are skipped with a debug
//!   log: published profiles list syscalls newer than the installed library.
//! * Rules whose action equals the default action are skipped (libseccomp
//!   rejects them and they would be no-ops anyway).
//! * `errnoRet`/`defaultErrnoRet` default to `EPERM` and are only accepted
//!   with `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE`, as the runtime-spec requires.
//! * When the arguments of a rule repeat an argument index, each argument
//!   becomes its own rule (logical OR, the convention of Docker profiles);
//!   otherwise all arguments form one rule (logical AND).
//! * For `SCMP_CMP_MASKED_EQ`, `value` is the mask and `valueTwo` the value
//!   the masked argument is compared with.
//! * `SCMP_ACT_NOTIFY` may not be the default action nor be used for
//!   `write` (the init still writes to its sync pipe after loading the
//!   filter and would block forever without an agent).
//! * `SECCOMP_FILTER_FLAG_TSYNC` is dropped when a listener is needed (the
//!   kernel refuses the combination without `TSYNC_ESRCH`, and the init is
//!   single-threaded), and `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` is dropped
//!   when no listener is needed (the kernel refuses it then).
//!
//! # Syscalls the profile does not know: `-ENOSYS`
//!
//! As runc does, when the default action denies (anything but
//! `SCMP_ACT_ALLOW`, `SCMP_ACT_LOG`, `SCMP_ACT_TRACE` and
//! `SCMP_ACT_ERRNO` with `ENOSYS`), a short stub goes in front of
//! libseccomp's program: for each architecture of the filter (the native one
//! and the listed ones; x86_64 and x32 told apart by bit 30 of the syscall
//! number), a syscall numbered above the largest number the profile names
//! there returns `ENOSYS` instead of the default action, so that programs
//! fall back from syscalls newer than the profile (glibc: `clone3` →
//! `clone`). Lower numbers the profile does not name keep the default
//! action. Notify rules and the `flags` are unaffected: the stub only ever
//! returns `ERRNO(ENOSYS)` or falls through. Details in the `enosys`
//! submodule.
//!
//! Unknown action, operator, architecture or flag *names* never reach this
//! module: `oci-spec` rejects them while parsing `config.json`. What this
//! module rejects, naming the offending field, are values that parse but
//! cannot be honoured (an architecture or action the installed libseccomp
//! or the kernel does not support, an argument index above 5, an errno out
//! of range, ...).
//!
//! # Cache
//!
//! Compiling a Docker-sized profile costs tens of milliseconds, most of it
//! inside libseccomp; reading back a compiled program costs well under one.
//! [`compile_cached`] keys entries by the SHA-256 of the canonical JSON of
//! the profile (with `listenerPath`/`listenerMetadata` removed, they do not
//! affect the program), the libseccomp version and API level, the native
//! architecture and [`CACHE_FORMAT_VERSION`]. An entry is the file
//! `<cache_dir>/<hex key>.bpf`:
//!
//! ```text
//! offset size
//!      0    8  magic "SKFBPF" 0x00 0x01
//!      8    4  SECCOMP_FILTER_FLAG_* bits (u32, little endian)
//!     12    4  1 if a notify listener is needed, else 0 (u32, little endian)
//!     16    4  number of instructions (u32, little endian)
//!     20    4  reserved, zero
//!     24    8  first 8 bytes of SHA-256 over the instructions
//!     32  8*n  struct sock_filter[n], native byte order
//! ```
//!
//! The directory must be a real directory owned by the effective uid with no
//! group/world permissions (it is created `0700` when missing); otherwise the
//! cache is bypassed with a warning. An entry is trusted only when it is a
//! regular file owned by the effective uid, not group/world writable, a
//! multiple of 8 bytes long, holds 1..=`BPF_MAXINSNS` instructions and its
//! header and checksum are consistent. Anything else is ignored and
//! rewritten. Entries are written to a temporary file and renamed into
//! place, so readers never see a partial entry.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use nix::errno::Errno;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

mod enosys;

/// Version of the on-disk cache entry format; part of the cache key.
/// 2: programs carry the `-ENOSYS` stub (version 1 entries are not it).
pub const CACHE_FORMAT_VERSION: u32 = 2;

/// Largest program the kernel accepts (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = libc::BPF_MAXINSNS as usize;

const INSN_SIZE: usize = std::mem::size_of::<libc::sock_filter>();
const MAGIC: [u8; 8] = *b"SKFBPF\x00\x01";
const HEADER_LEN: usize = 32;
const CHECKSUM_LEN: usize = 8;

/// Flags accepted in a [`Filter`] (the ones the OCI `flags` list can set).
const KNOWN_FLAGS: u32 = (libc::SECCOMP_FILTER_FLAG_TSYNC
    | libc::SECCOMP_FILTER_FLAG_LOG
    | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
    | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) as u32;

/// Errors from compiling, caching or loading a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// `SCMP_ACT_NOTIFY` as `defaultAction`.
    #[error("defaultAction: SCMP_ACT_NOTIFY cannot be used as the default action")]
    NotifyAsDefault,
    /// `SCMP_ACT_NOTIFY` on the `write` syscall.
    #[error("{field}: SCMP_ACT_NOTIFY cannot be used for the write syscall")]
    NotifyOnWrite { field: String },
    /// `listenerMetadata` without `listenerPath`.
    #[error("listenerMetadata is set but listenerPath is not")]
    MetadataWithoutListener,
    /// An errno given for an action that does not return one.
    #[error("{field} is set but action {action} does not take an errno")]
    ErrnoNotSupported { field: String, action: String },
    /// An errno / trace value that does not fit the 16-bit action data.
    #[error("{field}: value {value} is out of range (at most 65535)")]
    ErrnoOutOfRange { field: String, value: u32 },
    /// An argument index outside `0..=5`.
    #[error("{field}: argument index {index} is out of range (at most 5)")]
    ArgIndexOutOfRange { field: String, index: usize },
    /// An action libseccomp or the kernel does not support.
    #[error("{field}: action {action} is not supported by libseccomp or the kernel: {source}")]
    UnsupportedAction {
        field: String,
        action: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// An architecture libseccomp does not support.
    #[error("{field}: architecture {arch} is not supported by libseccomp: {source}")]
    UnsupportedArch {
        field: String,
        arch: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// libseccomp refused a rule.
    #[error("{field}: adding a rule for syscall {syscall} failed: {source}")]
    Rule {
        field: String,
        syscall: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// Setting a libseccomp filter attribute failed.
    #[error("setting libseccomp filter attribute {attr} failed: {source}")]
    Attribute {
        attr: &'static str,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// `seccomp_export_bpf` failed.
    #[error("exporting the bpf program from libseccomp failed: {0}")]
    Export(#[source] libseccomp::error::SeccompError),
    /// I/O on the memfd used to collect libseccomp's export.
    #[error("reading the bpf program exported by libseccomp failed: {0}")]
    ExportIo(#[source] io::Error),
    /// libseccomp produced something that is not a whole number of insns.
    #[error("libseccomp exported {0} bytes, not a whole number of bpf instructions")]
    ExportSize(usize),
    /// The `-ENOSYS` stub has a conditional jump longer than BPF allows.
    #[error("architectures: cannot build the -ENOSYS stub for {0} architectures (a jump is out of range)")]
    EnosysStub(usize),
    /// A program that is empty or longer than the kernel accepts.
    #[error("bpf program has {0} instructions, expected 1 to 4096")]
    ProgramLength(usize),
    /// Serializing the profile for the cache key failed.
    #[error("serializing the seccomp profile for the cache key failed: {0}")]
    CacheKey(#[source] serde_json::Error),
    /// `seccomp_version()` failed.
    #[error("querying the libseccomp version failed: {0}")]
    Version(#[source] libseccomp::error::SeccompError),
    /// The `seccomp(2)` syscall failed.
    #[error("seccomp(SECCOMP_SET_MODE_FILTER) failed: {0}")]
    Load(Errno),
}

/// A compiled seccomp program, ready for [`load`].
#[derive(Clone)]
pub struct Filter {
    /// The BPF program: the `-ENOSYS` stub (when it applies) followed by
    /// libseccomp's program.
    pub insns: Vec<libc::sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` bits from the OCI `flags` list (after the
    /// adjustments described in the module documentation). `load` adds
    /// `SECCOMP_FILTER_FLAG_NEW_LISTENER` itself when `needs_listener`.
    pub flags: u32,
    /// The program contains `SCMP_ACT_NOTIFY` rules: `load` must request a
    /// listener and the caller must pass the returned fd to the agent.
    pub needs_listener: bool,
}

impl Filter {
    /// The program as raw bytes (native byte order, 8 bytes per insn).
    pub fn insn_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.insns.len() * INSN_SIZE);
        for insn in &self.insns {
            out.extend_from_slice(&insn.code.to_ne_bytes());
            out.push(insn.jt);
            out.push(insn.jf);
            out.extend_from_slice(&insn.k.to_ne_bytes());
        }
        out
    }

    fn from_insn_bytes(bytes: &[u8], flags: u32, needs_listener: bool) -> Filter {
        let insns = bytes
            .chunks_exact(INSN_SIZE)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Filter {
            insns,
            flags,
            needs_listener,
        }
    }
}

impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        self.flags == other.flags
            && self.needs_listener == other.needs_listener
            && self.insns.len() == other.insns.len()
            && self
                .insns
                .iter()
                .zip(&other.insns)
                .all(|(a, b)| a.code == b.code && a.jt == b.jt && a.jf == b.jf && a.k == b.k)
    }
}

impl Eq for Filter {}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("insns", &self.insns.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("needs_listener", &self.needs_listener)
            .finish()
    }
}

/// Compiles an OCI seccomp profile to a BPF program with libseccomp, with
/// the `-ENOSYS` stub in front when the default action denies (see the
/// module documentation).
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    if seccomp.listener_metadata().is_some() && seccomp.listener_path().is_none() {
        return Err(SeccompError::MetadataWithoutListener);
    }
    let default_action = to_scmp_action(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        "defaultErrnoRet",
    )?;
    if default_action == ScmpAction::Notify {
        return Err(SeccompError::NotifyAsDefault);
    }
    let (mut ctx, arches) = new_context(seccomp, default_action)?;
    let needs_listener = add_rules(&mut ctx, seccomp, default_action)?;
    let flags = filter_flags(seccomp, needs_listener);

    let bytes = export(&ctx)?;
    let mut filter = Filter::from_insn_bytes(&bytes, flags, needs_listener);
    let libseccomp_len = filter.insns.len();
    if enosys::applies(default_action) {
        let names = seccomp
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|r| r.names().iter().map(String::as_str));
        let limits = enosys::limits(&arches, names);
        let stub = enosys::stub(&limits).ok_or(SeccompError::EnosysStub(limits.len()))?;
        filter.insns.splice(0..0, stub);
    }
    if filter.insns.len() > MAX_INSNS {
        return Err(SeccompError::ProgramLength(filter.insns.len()));
    }
    debug!(
        insns = filter.insns.len(),
        enosys_stub = filter.insns.len() - libseccomp_len,
        "compiled seccomp profile"
    );
    Ok(filter)
}

/// A libseccomp context for the default action and the architectures of
/// the profile; also returns the filter's architectures (native first).
fn new_context(
    seccomp: &LinuxSeccomp,
    default_action: ScmpAction,
) -> Result<(ScmpFilterContext, Vec<ScmpArch>), SeccompError> {
    // seccomp_init() fails on an action the kernel does not support.
    let mut ctx = ScmpFilterContext::new(default_action).map_err(|source| {
        SeccompError::UnsupportedAction {
            field: "defaultAction".into(),
            action: seccomp.default_action().to_string(),
            source,
        }
    })?;

    // The caller sets PR_SET_NO_NEW_PRIVS itself (or not, per the spec's
    // noNewPrivileges); libseccomp must not do it behind its back.
    ctx.set_ctl_nnp(false)
        .map_err(|source| SeccompError::Attribute {
            attr: "SCMP_FLTATR_CTL_NNP",
            source,
        })?;
    // Let rules name the -1 "syscall" (used by tracers to skip a call), and
    // have libseccomp report raw kernel errors. Both only exist at higher API
    // levels; the program is valid without them.
    if let Err(e) = ctx.set_api_tskip(true) {
        debug!(error = %e, "libseccomp does not support SCMP_FLTATR_API_TSKIP");
    }
    if let Err(e) = ctx.set_api_sysrawrc(true) {
        debug!(error = %e, "libseccomp does not support SCMP_FLTATR_API_SYSRAWRC");
    }

    let mut arches = vec![ScmpArch::native()];
    for (i, arch) in seccomp.architectures().iter().flatten().enumerate() {
        let scmp = match to_scmp_arch(*arch) {
            ScmpArch::Native => ScmpArch::native(),
            other => other,
        };
        if !ctx.is_arch_present(scmp).unwrap_or(false) {
            ctx.add_arch(scmp)
                .map_err(|source| SeccompError::UnsupportedArch {
                    field: format!("architectures[{i}]"),
                    arch: arch.to_string(),
                    source,
                })?;
        }
        if !arches.contains(&scmp) {
            arches.push(scmp);
        }
    }
    Ok((ctx, arches))
}

/// Adds the profile's rules; returns whether one of them is a notify rule.
fn add_rules(
    ctx: &mut ScmpFilterContext,
    seccomp: &LinuxSeccomp,
    default_action: ScmpAction,
) -> Result<bool, SeccompError> {
    let mut needs_listener = false;
    let (mut added, mut skipped) = (0usize, 0usize);
    for (i, rule) in seccomp.syscalls().iter().flatten().enumerate() {
        let field = format!("syscalls[{i}].errnoRet");
        let action = to_scmp_action(rule.action(), rule.errno_ret(), &field)?;
        if action == ScmpAction::Notify && rule.names().iter().any(|n| n == "write") {
            return Err(SeccompError::NotifyOnWrite {
                field: format!("syscalls[{i}].names"),
            });
        }
        if action == default_action {
            debug!(rule = i, "seccomp rule has the default action, skipping");
            continue;
        }
        let args = rule.args().as_deref().unwrap_or(&[]);
        let conditions = to_conditions(args, i)?;
        let one_rule_per_arg = has_repeated_index(args);

        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                debug!(syscall = %name, "syscall unknown to libseccomp, skipping");
                skipped += 1;
                continue;
            };
            let result = if conditions.is_empty() {
                ctx.add_rule(action, syscall).map(|_| ())
            } else if one_rule_per_arg {
                conditions.iter().try_for_each(|c| {
                    ctx.add_rule_conditional(action, syscall, std::slice::from_ref(c))
                        .map(|_| ())
                })
            } else {
                ctx.add_rule_conditional(action, syscall, &conditions)
                    .map(|_| ())
            };
            result.map_err(|source| rule_error(rule.action(), action, i, name, source))?;
            added += 1;
            needs_listener |= action == ScmpAction::Notify;
        }
    }
    debug!(
        rules = added,
        skipped_syscalls = skipped,
        "added seccomp rules"
    );
    Ok(needs_listener)
}

fn rule_error(
    oci_action: LinuxSeccompAction,
    action: ScmpAction,
    i: usize,
    name: &str,
    source: libseccomp::error::SeccompError,
) -> SeccompError {
    if action == ScmpAction::Notify {
        SeccompError::UnsupportedAction {
            field: format!("syscalls[{i}].action"),
            action: oci_action.to_string(),
            source,
        }
    } else {
        SeccompError::Rule {
            field: format!("syscalls[{i}]"),
            syscall: name.to_string(),
            source,
        }
    }
}

/// The `SECCOMP_FILTER_FLAG_*` bits of the OCI `flags` list, adjusted as
/// the module documentation says.
fn filter_flags(seccomp: &LinuxSeccomp, needs_listener: bool) -> u32 {
    let mut flags = 0u32;
    for flag in seccomp.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        } as u32;
    }
    if needs_listener && flags & libc::SECCOMP_FILTER_FLAG_TSYNC as u32 != 0 {
        debug!("dropping SECCOMP_FILTER_FLAG_TSYNC: a notify listener is requested");
        flags &= !(libc::SECCOMP_FILTER_FLAG_TSYNC as u32);
    }
    if !needs_listener && flags & libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32 != 0 {
        debug!("dropping SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: no notify listener");
        flags &= !(libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32);
    }
    flags
}

/// Like [`compile`], but reuses a program compiled earlier for the same
/// profile from `cache_dir` (see the module documentation for the format and
/// the trust rules). Cache problems are never fatal: they are logged and the
/// profile is compiled.
pub fn compile_cached(seccomp: &LinuxSeccomp, cache_dir: &Path) -> Result<Filter, SeccompError> {
    compile_cached_how(seccomp, cache_dir).map(|(f, _)| f)
}

/// Where [`compile_cached_how`]'s filter came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cached {
    Hit,
    /// Compiled and written to the cache.
    Miss,
    /// Compiled; the cache could not be used.
    Bypassed,
}

impl Cached {
    pub fn as_str(self) -> &'static str {
        match self {
            Cached::Hit => "cache hit",
            Cached::Miss => "compiled, cached",
            Cached::Bypassed => "compiled",
        }
    }
}

/// [`compile_cached`], saying whether the cache had the filter.
pub fn compile_cached_how(seccomp: &LinuxSeccomp, cache_dir: &Path) -> Result<(Filter, Cached), SeccompError> {
    let key = cache_key(seccomp)?;
    if let Err(e) = prepare_cache_dir(cache_dir) {
        warn!(dir = %cache_dir.display(), error = %e, "seccomp cache unusable, compiling");
        return compile(seccomp).map(|f| (f, Cached::Bypassed));
    }
    let path = cache_dir.join(format!("{key}.bpf"));
    match read_entry(&path) {
        Ok(Some(filter)) => {
            debug!(path = %path.display(), "seccomp cache hit");
            return Ok((filter, Cached::Hit));
        }
        Ok(None) => debug!(path = %path.display(), "seccomp cache miss"),
        Err(reason) => {
            debug!(path = %path.display(), %reason, "ignoring seccomp cache entry, rewriting it")
        }
    }
    let filter = compile(seccomp)?;
    if let Err(e) = write_entry(cache_dir, &path, &key, &filter) {
        warn!(path = %path.display(), error = %e, "could not write seccomp cache entry");
        return Ok((filter, Cached::Bypassed));
    }
    Ok((filter, Cached::Miss))
}

/// Installs `filter` on the calling thread with `seccomp(2)`.
///
/// Returns the user-notification fd when `filter.needs_listener`. Meant for
/// the container init between clone and exec: it neither allocates nor logs.
/// The caller must have set `PR_SET_NO_NEW_PRIVS` or hold `CAP_SYS_ADMIN`.
pub fn load(filter: &Filter) -> Result<Option<OwnedFd>, SeccompError> {
    let len = filter.insns.len();
    if len == 0 || len > MAX_INSNS {
        return Err(SeccompError::ProgramLength(len));
    }
    let mut flags = filter.flags as libc::c_ulong;
    if filter.needs_listener {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    }
    let prog = libc::sock_fprog {
        len: len as libc::c_ushort,
        // The kernel only reads the program; the pointer is mutable only
        // because of the C declaration.
        filter: filter.insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points to `len` initialized sock_filter structs owned by
    // `filter`, which outlives the call; the kernel copies the program before
    // returning and does not keep the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(SeccompError::Load(Errno::last()));
    }
    if filter.needs_listener {
        // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns a
        // new file descriptor (opened O_CLOEXEC) that nobody else owns.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }))
    } else {
        Ok(None)
    }
}

fn to_scmp_action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    errno_field: &str,
) -> Result<ScmpAction, SeccompError> {
    let data = |default: u32| -> Result<u16, SeccompError> {
        let value = errno_ret.unwrap_or(default);
        u16::try_from(value).map_err(|_| SeccompError::ErrnoOutOfRange {
            field: errno_field.to_string(),
            value,
        })
    };
    let takes_errno = matches!(
        action,
        LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace
    );
    if errno_ret.is_some() && !takes_errno {
        return Err(SeccompError::ErrnoNotSupported {
            field: errno_field.to_string(),
            action: action.to_string(),
        });
    }
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(data(libc::EPERM as u32)?)),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(data(libc::EPERM as u32)?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    })
}

/// The OCI architectures the linked libseccomp can filter, for `features`.
pub fn supported_archs() -> Vec<Arch> {
    use Arch::*;
    let all = [
        ScmpArchX86, ScmpArchX86_64, ScmpArchX32, ScmpArchArm, ScmpArchAarch64, ScmpArchMips, ScmpArchMips64, ScmpArchMips64n32,
        ScmpArchMipsel, ScmpArchMipsel64, ScmpArchMipsel64n32, ScmpArchPpc, ScmpArchPpc64, ScmpArchPpc64le, ScmpArchS390,
        ScmpArchS390x, ScmpArchParisc, ScmpArchParisc64, ScmpArchRiscv64, ScmpArchLoongarch64, ScmpArchM68k, ScmpArchSh, ScmpArchSheb,
    ];
    let Ok(mut ctx) = ScmpFilterContext::new(ScmpAction::Allow) else { return Vec::new() };
    all.into_iter().filter(|a| ctx.add_arch(to_scmp_arch(*a)).is_ok()).collect()
}

fn to_scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

fn to_conditions(
    args: &[LinuxSeccompArg],
    rule: usize,
) -> Result<Vec<ScmpArgCompare>, SeccompError> {
    args.iter()
        .enumerate()
        .map(|(j, arg)| {
            let index = arg.index();
            if index > 5 {
                return Err(SeccompError::ArgIndexOutOfRange {
                    field: format!("syscalls[{rule}].args[{j}].index"),
                    index,
                });
            }
            let op = match arg.op() {
                LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
                LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
                LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
                LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
                LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
                LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
                LinuxSeccompOperator::ScmpCmpMaskedEq => {
                    return Ok(ScmpArgCompare::new(
                        index as u32,
                        ScmpCompareOp::MaskedEqual(arg.value()),
                        arg.value_two().unwrap_or(0),
                    ));
                }
            };
            Ok(ScmpArgCompare::new(index as u32, op, arg.value()))
        })
        .collect()
}

fn has_repeated_index(args: &[LinuxSeccompArg]) -> bool {
    let mut seen = 0u64;
    for arg in args {
        let bit = 1u64 << (arg.index() % 64);
        if seen & bit != 0 {
            return true;
        }
        seen |= bit;
    }
    false
}

/// Collects libseccomp's BPF export through a memfd.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>, SeccompError> {
    let fd = nix::sys::memfd::memfd_create(
        c"skiff-seccomp-bpf",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .map_err(|e| SeccompError::ExportIo(e.into()))?;
    let mut file = File::from(fd);
    ctx.export_bpf(&file).map_err(SeccompError::Export)?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(SeccompError::ExportIo)?;
    if !bytes.len().is_multiple_of(INSN_SIZE) {
        return Err(SeccompError::ExportSize(bytes.len()));
    }
    let n = bytes.len() / INSN_SIZE;
    if n == 0 || n > MAX_INSNS {
        return Err(SeccompError::ProgramLength(n));
    }
    Ok(bytes)
}

/// The version of the libseccomp library in use, as `major.minor.micro`.
pub fn library_version() -> Result<String, SeccompError> {
    let v = libseccomp::ScmpVersion::current().map_err(SeccompError::Version)?;
    Ok(format!("{}.{}.{}", v.major, v.minor, v.micro))
}

/// Hex SHA-256 cache key of a profile (see the module documentation).
pub fn cache_key(seccomp: &LinuxSeccomp) -> Result<String, SeccompError> {
    let mut canonical = seccomp.clone();
    canonical.set_listener_path(None);
    canonical.set_listener_metadata(None);
    let json = serde_json::to_vec(&canonical).map_err(SeccompError::CacheKey)?;

    let version = library_version().unwrap_or_default();
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(b"skiff seccomp bpf cache");
    field(&CACHE_FORMAT_VERSION.to_le_bytes());
    field(version.as_bytes());
    field(&libseccomp::get_api().to_le_bytes());
    field(format!("{:?}", ScmpArch::native()).as_bytes());
    field(&json);
    Ok(to_hex(&h.finalize()))
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Creates the cache directory (0700) if needed and checks it is private.
fn prepare_cache_dir(dir: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
            fs::symlink_metadata(dir)?
        }
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_dir() {
        return Err(io::Error::other("cache path is not a directory"));
    }
    if meta.uid() != euid() {
        return Err(io::Error::other(format!(
            "cache directory is owned by uid {}, not {}",
            meta.uid(),
            euid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(io::Error::other(format!(
            "cache directory mode {:o} grants group/other access",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Reads and validates a cache entry. `Ok(None)` means no entry; `Err`
/// carries the reason an existing entry is not trusted.
fn read_entry(path: &Path) -> Result<Option<Filter>, String> {
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("open failed: {e}")),
    };
    let meta = file.metadata().map_err(|e| format!("fstat failed: {e}"))?;
    if !meta.file_type().is_file() {
        return Err("not a regular file".into());
    }
    if meta.uid() != euid() {
        return Err(format!("owned by uid {}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "mode {:o} is group/world writable",
            meta.mode() & 0o7777
        ));
    }
    let len = meta.len() as usize;
    if !len.is_multiple_of(INSN_SIZE) {
        return Err(format!("size {len} is not a multiple of {INSN_SIZE}"));
    }
    if !(HEADER_LEN + INSN_SIZE..=HEADER_LEN + MAX_INSNS * INSN_SIZE).contains(&len) {
        return Err(format!("size {len} is out of range"));
    }
    let mut data = Vec::with_capacity(len);
    (&mut file)
        .take(len as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("read failed: {e}"))?;
    if data.len() != len {
        return Err("file changed size while reading".into());
    }
    parse_entry(&data).map(Some)
}

fn parse_entry(data: &[u8]) -> Result<Filter, String> {
    let (header, body) = data.split_at(HEADER_LEN);
    let u32_at = |off: usize| u32::from_le_bytes(header[off..off + 4].try_into().unwrap());
    if header[..8] != MAGIC {
        return Err("bad magic".into());
    }
    let flags = u32_at(8);
    let needs_listener = match u32_at(12) {
        0 => false,
        1 => true,
        other => return Err(format!("bad listener field {other}")),
    };
    let count = u32_at(16) as usize;
    if flags & !KNOWN_FLAGS != 0 || u32_at(20) != 0 {
        return Err("unknown flags in header".into());
    }
    if count * INSN_SIZE != body.len() {
        return Err(format!(
            "header says {count} instructions, file holds {}",
            body.len() / INSN_SIZE
        ));
    }
    if header[24..32] != Sha256::digest(body)[..CHECKSUM_LEN] {
        return Err("checksum mismatch".into());
    }
    Ok(Filter::from_insn_bytes(body, flags, needs_listener))
}

fn encode_entry(filter: &Filter) -> Vec<u8> {
    let body = filter.insn_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&filter.flags.to_le_bytes());
    out.extend_from_slice(&u32::from(filter.needs_listener).to_le_bytes());
    out.extend_from_slice(&(filter.insns.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&body)[..CHECKSUM_LEN]);
    out.extend_from_slice(&body);
    out
}

/// Writes an entry atomically: a private temporary file renamed into place.
fn write_entry(dir: &Path, path: &Path, key: &str, filter: &Filter) -> io::Result<()> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp: PathBuf = dir.join(format!(".{key}.{}.{nanos}.tmp", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        file.write_all(&encode_entry(filter))?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).expect("test profile parses")
    }

    fn deny_mkdir() -> LinuxSeccomp {
        profile(
            r#"{
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
                "syscalls": [
                    {"names": ["mkdir", "mkdirat", "no_such_syscall_in_any_table"],
                     "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
                ]
            }"#,
        )
    }

    /// A fresh private directory under the system temp dir.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let path = std::env::temp_dir().join(format!(
                "skiff-seccomp-{tag}-{}-{nanos}",
                std::process::id()
            ));
            DirBuilder::new().mode(0o700).create(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }

    /// Forks; the child runs `f` and exits with its return value.
    /// `f` must be async-signal-safe enough for a forked child.
    pub(super) fn in_child(f: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child only runs `f` (which does syscalls on memory
        // prepared by the parent) and `_exit`s; it never returns into the
        // test harness.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let code = f();
                // SAFETY: terminating the forked child without running
                // atexit handlers or unwinding into the harness.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                match nix::sys::wait::waitpid(child, None).unwrap() {
                    nix::sys::wait::WaitStatus::Exited(_, code) => code,
                    other => panic!("child did not exit normally: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn reports_library_version() {
        let v = library_version().unwrap();
        assert_eq!(v.split('.').count(), 3, "{v}");
        assert!(v.split('.').all(|p| p.parse::<u32>().is_ok()), "{v}");
    }

    #[test]
    fn compiles_small_profile() {
        let filter = compile(&deny_mkdir()).unwrap();
        assert!(!filter.insns.is_empty() && filter.insns.len() <= MAX_INSNS);
        assert_eq!(filter.flags, 0);
        assert!(!filter.needs_listener);
        // A program ends with a return (BPF_RET = 0x06 class).
        assert_eq!(filter.insns.last().unwrap().code & 0x07, 0x06);
    }

    #[test]
    fn flags_are_translated() {
        let filter = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                          "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#,
        ))
        .unwrap();
        // WAIT_KILLABLE_RECV is dropped: there is no listener.
        assert_eq!(
            filter.flags,
            (libc::SECCOMP_FILTER_FLAG_LOG
                | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
                | libc::SECCOMP_FILTER_FLAG_TSYNC) as u32
        );

        let filter = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "listenerPath": "/run/agent.sock",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        ))
        .unwrap();
        assert!(filter.needs_listener);
        // TSYNC is dropped: a listener is requested.
        assert_eq!(
            filter.flags,
            libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32
        );
    }

    #[test]
    fn args_and_masked_eq_compile() {
        let filter = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                "syscalls": [
                  {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                  {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                            {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                  {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                             "op": "SCMP_CMP_MASKED_EQ"}]},
                  {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"},
                            {"index": 1, "value": 3, "op": "SCMP_CMP_LE"}]},
                  {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
                ]}"#,
        ))
        .unwrap();
        assert!(filter.insns.len() > 10);
    }

    #[test]
    fn rejects_invalid_values_naming_the_field() {
        let err = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}"#,
        ))
        .unwrap_err();
        assert!(matches!(err, SeccompError::NotifyAsDefault));
        assert!(err.to_string().contains("defaultAction"));

        let err = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}"#,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("syscalls[0].errnoRet"), "{err}");

        let err = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1}"#,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("defaultErrnoRet"), "{err}");

        let err = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}"#,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("syscalls[0].errnoRet"), "{err}");

        let err = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                             {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                              "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
        ))
        .unwrap_err();
        assert!(
            err.to_string().contains("syscalls[1].args[0].index"),
            "{err}"
        );

        let err = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
                "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("syscalls[0].names"), "{err}");

        // Architectures this libseccomp does not know (loongarch64 arrived in
        // libseccomp 2.6).
        let old_lib = libseccomp::ScmpVersion::current().is_ok_and(|v| (v.major, v.minor) < (2, 6));
        let result = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_LOONGARCH64"]}"#,
        ));
        if old_lib {
            let err = result.unwrap_err();
            assert!(err.to_string().contains("architectures[1]"), "{err}");
        }

        let err = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}"#,
        ))
        .unwrap_err();
        assert!(matches!(err, SeccompError::MetadataWithoutListener));
    }

    #[test]
    fn unknown_action_names_are_rejected_when_parsing() {
        // Unknown names are stopped by oci-spec's typed enums before they can
        // reach compile(); the error names the offending value.
        for json in [
            r#"{"defaultAction": "SCMP_ACT_BOGUS"}"#,
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]}"#,
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_BOGUS"]}"#,
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                              "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_BOGUS"}]}]}"#,
        ] {
            let err = serde_json::from_str::<LinuxSeccomp>(json).unwrap_err();
            assert!(err.to_string().contains("BOGUS"), "{err}");
        }
    }

    #[test]
    fn cache_hit_returns_identical_program() {
        let dir = TempDir::new("hit");
        let cache = dir.0.join("cache");
        let seccomp = deny_mkdir();
        let fresh = compile(&seccomp).unwrap();

        let first = compile_cached(&seccomp, &cache).unwrap();
        assert_eq!(first, fresh);
        let meta = fs::symlink_metadata(&cache).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o777, 0o700);
        assert_eq!(meta.uid(), euid());

        let files = entries(&cache);
        assert_eq!(files.len(), 1, "{files:?}");
        let entry = &files[0];
        assert_eq!(
            entry.file_name().unwrap().to_str().unwrap(),
            format!("{}.bpf", cache_key(&seccomp).unwrap())
        );
        let meta = fs::metadata(entry).unwrap();
        assert_eq!(
            meta.len() as usize,
            HEADER_LEN + fresh.insns.len() * INSN_SIZE
        );
        assert_eq!(meta.mode() & 0o777, 0o600);

        // Served from the file: identical, and the file is not rewritten.
        let mtime = meta.modified().unwrap();
        let second = compile_cached(&seccomp, &cache).unwrap();
        assert_eq!(second, fresh);
        assert_eq!(second.insn_bytes(), fresh.insn_bytes());
        assert_eq!(fs::metadata(entry).unwrap().modified().unwrap(), mtime);

        // The listener path does not change the key; a different profile does.
        let mut with_listener = seccomp.clone();
        with_listener.set_listener_path(Some("/run/agent.sock".into()));
        assert_eq!(
            cache_key(&with_listener).unwrap(),
            cache_key(&seccomp).unwrap()
        );
        let mut other = seccomp.clone();
        other.set_default_action(LinuxSeccompAction::ScmpActLog);
        assert_ne!(cache_key(&other).unwrap(), cache_key(&seccomp).unwrap());
    }

    #[test]
    fn corrupt_or_untrusted_entries_are_ignored_and_rewritten() {
        let dir = TempDir::new("corrupt");
        let seccomp = deny_mkdir();
        let good = compile_cached(&seccomp, &dir.0).unwrap();
        let entry = dir.0.join(format!("{}.bpf", cache_key(&seccomp).unwrap()));
        let valid = fs::read(&entry).unwrap();

        let mut flipped = valid.clone();
        *flipped.last_mut().unwrap() ^= 0xff;
        let mut bad_count = valid.clone();
        bad_count[16] = bad_count[16].wrapping_add(1);
        let mut bad_magic = valid.clone();
        bad_magic[0] = b'X';
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("short", valid[..valid.len() - 3].to_vec()),
            ("header only", valid[..HEADER_LEN].to_vec()),
            ("empty", Vec::new()),
            ("flipped insn", flipped),
            ("bad count", bad_count),
            ("bad magic", bad_magic),
            (
                "too long",
                vec![0u8; HEADER_LEN + (MAX_INSNS + 1) * INSN_SIZE],
            ),
        ];
        for (what, bytes) in cases {
            fs::write(&entry, &bytes).unwrap();
            assert!(read_entry(&entry).is_err(), "{what} accepted");
            let got = compile_cached(&seccomp, &dir.0).unwrap();
            assert_eq!(got, good, "{what}");
            assert_eq!(fs::read(&entry).unwrap(), valid, "{what} not rewritten");
        }

        // Group/world writable: untrusted even though the content is valid.
        fs::set_permissions(&entry, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(read_entry(&entry).unwrap_err().contains("writable"));
        assert_eq!(compile_cached(&seccomp, &dir.0).unwrap(), good);
        assert_eq!(fs::metadata(&entry).unwrap().mode() & 0o777, 0o600);

        // Owned by someone else.
        nix::unistd::chown(&entry, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        assert!(read_entry(&entry).unwrap_err().contains("owned by"));
        assert_eq!(compile_cached(&seccomp, &dir.0).unwrap(), good);
        assert_eq!(fs::metadata(&entry).unwrap().uid(), euid());

        // A symlink is not followed.
        fs::remove_file(&entry).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &entry).unwrap();
        assert!(read_entry(&entry).is_err());
        assert_eq!(compile_cached(&seccomp, &dir.0).unwrap(), good);
        assert!(fs::symlink_metadata(&entry).unwrap().is_file());

        // No temporary files are left behind.
        assert_eq!(entries(&dir.0).len(), 1);
    }

    #[test]
    fn unsafe_cache_dir_is_bypassed() {
        let dir = TempDir::new("baddir");
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o777)).unwrap();
        let seccomp = deny_mkdir();
        let got = compile_cached(&seccomp, &dir.0).unwrap();
        assert_eq!(got, compile(&seccomp).unwrap());
        assert!(
            entries(&dir.0).is_empty(),
            "wrote into a world-writable dir"
        );

        let file = dir.0.join("not-a-dir");
        fs::write(&file, b"x").unwrap();
        assert!(compile_cached(&seccomp, &file).is_ok());
    }

    #[test]
    fn loaded_filter_denies_mkdir_with_eperm() {
        let filter = compile(&deny_mkdir()).unwrap();
        let target =
            std::env::temp_dir().join(format!("skiff-seccomp-mkdir-{}", std::process::id()));
        let target = std::ffi::CString::new(target.into_os_string().into_encoded_bytes()).unwrap();
        let code = in_child(|| {
            if load(&filter).is_err() {
                return 10;
            }
            // SAFETY: plain syscalls on a NUL-terminated path.
            let (r1, e1, r2, e2) = unsafe {
                let r1 = libc::syscall(libc::SYS_mkdir, target.as_ptr(), 0o700);
                let e1 = *libc::__errno_location();
                let r2 = libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, target.as_ptr(), 0o700);
                let e2 = *libc::__errno_location();
                (r1, e1, r2, e2)
            };
            if r1 != -1 || e1 != libc::EPERM {
                return 11;
            }
            if r2 != -1 || e2 != libc::EPERM {
                return 12;
            }
            // Other syscalls still work.
            // SAFETY: getpid has no preconditions.
            if unsafe { libc::getpid() } <= 0 {
                return 13;
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn notify_filter_returns_a_listener() {
        let filter = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        ))
        .unwrap();
        assert!(filter.needs_listener);
        let code = in_child(|| match load(&filter) {
            Ok(Some(fd)) if fd.as_raw_fd() > 2 => 0,
            Ok(_) => 20,
            Err(_) => 21,
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn load_rejects_empty_program() {
        let filter = Filter {
            insns: Vec::new(),
            flags: 0,
            needs_listener: false,
        };
        assert!(matches!(load(&filter), Err(SeccompError::ProgramLength(0))));
    }

    /// A Docker-sized profile: every syscall libseccomp knows for the native
    /// architecture is allowed (~350 names), default errno EPERM, three
    /// architectures, plus the conditional rules typical of such profiles.
    fn docker_sized_profile() -> LinuxSeccomp {
        let excluded = [
            "personality",
            "clone",
            "socket",
            "mount",
            "umount2",
            "ptrace",
            "bpf",
        ];
        let mut names = Vec::new();
        for nr in 0..1024 {
            if let Ok(name) = ScmpSyscall::from(nr).get_name() {
                if !excluded.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
        let syscalls = serde_json::json!([
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 131072, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 131080, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]},
        ]);
        let json = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": syscalls,
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn docker_sized_profile_cache_is_faster() {
        let seccomp = match std::env::var_os("SKIFF_SECCOMP_PROFILE") {
            Some(path) => serde_json::from_slice(&fs::read(path).unwrap()).unwrap(),
            None => docker_sized_profile(),
        };
        let dir = TempDir::new("bench");

        let t = Instant::now();
        let compiled = compile(&seccomp).unwrap();
        let compile_time = t.elapsed();

        let miss = compile_cached(&seccomp, &dir.0).unwrap();
        assert_eq!(miss, compiled);

        let rounds = 20u32;
        let t = Instant::now();
        for _ in 0..rounds {
            assert_eq!(compile_cached(&seccomp, &dir.0).unwrap(), compiled);
        }
        let hit_time = t.elapsed() / rounds;
        eprintln!(
            "docker-sized profile: {} syscalls, {} insns; compile {:?}, cached load {:?}",
            seccomp
                .syscalls()
                .as_ref()
                .map_or(0, |s| s.iter().map(|r| r.names().len()).sum::<usize>()),
            compiled.insns.len(),
            compile_time,
            hit_time
        );
        assert!(hit_time < compile_time, "cache hit slower than compiling");

        // And the big program really loads and lets a process run.
        let code = in_child(|| {
            // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) has no memory preconditions.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            match load(&compiled) {
                // SAFETY: getppid has no preconditions.
                Ok(None) if unsafe { libc::getppid() } > 0 => 0,
                _ => 30,
            }
        });
        assert_eq!(code, 0);
    }
}
