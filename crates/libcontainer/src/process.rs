//! The container process's own attributes: user and groups, rlimits,
//! oom_score_adj (written by the runtime), personality, I/O priority, scheduler, umask, and finding
//! and executing `process.args[0]`.
//!
//! [`ExecPlan::new`] converts everything in the runtime before the clone
//! (C strings, numeric constants), so the init only makes system calls.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{IOPriorityClass, LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy, Process};

use crate::error::{Error, Result};

/// setrlimit's resource number: an enum in glibc, an `int` in musl.
#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

pub struct ExecPlan {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    pub has_home: bool,
    pub path_env: String,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub rlimits: Vec<(Resource, u64, u64)>,
    pub oom_score_adj: Option<i32>,
    pub no_new_privileges: bool,
    pub personality: Option<u64>,
    pub ioprio: Option<(i32, i32)>,
    pub sched: Option<libc::sched_attr>,
}

fn cstr(field: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::config(field, "contains a NUL byte"))
}

impl ExecPlan {
    pub fn new(p: &Process, personality: Option<&oci_spec::runtime::LinuxPersonality>) -> Result<ExecPlan> {
        let args = p.args().iter().flatten().map(|a| cstr("process.args", a)).collect::<Result<Vec<_>>>()?;
        let env_strs: Vec<String> = p.env().clone().unwrap_or_default();
        let env = env_strs.iter().map(|e| cstr("process.env", e)).collect::<Result<Vec<_>>>()?;
        let path_env = env_strs.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").to_string();
        let mut rlimits = Vec::new();
        for (i, r) in p.rlimits().iter().flatten().enumerate() {
            let name = serde_json::to_value(r.typ()).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            let res = rlimit_resource(&name).ok_or_else(|| Error::config(format!("process.rlimits[{i}].type"), format!("unknown rlimit {name:?}")))?;
            rlimits.push((res, r.soft(), r.hard()));
        }
        let personality = personality.map(|pers| match pers.domain() {
                LinuxPersonalityDomain::PerLinux => 0x0000u64,
                LinuxPersonalityDomain::PerLinux32 => 0x0008u64,
            });
        let ioprio = p.io_priority().as_ref().map(|io| {
            let class = match io.class() {
                IOPriorityClass::IoprioClassRt => 1,
                IOPriorityClass::IoprioClassBe => 2,
                IOPriorityClass::IoprioClassIdle => 3,
            };
            (class, io.priority() as i32)
        });
        if let Some((_, level)) = ioprio {
            if !(0..=7).contains(&level) {
                return Err(Error::config("process.ioPriority.priority", "must be between 0 and 7"));
            }
        }
        let sched = p.scheduler().as_ref().map(|s| {
            // SAFETY: sched_attr is plain data.
            let mut a: libc::sched_attr = unsafe { std::mem::zeroed() };
            a.size = std::mem::size_of::<libc::sched_attr>() as u32;
            a.sched_policy = match s.policy() {
                LinuxSchedulerPolicy::SchedOther => 0,
                LinuxSchedulerPolicy::SchedFifo => 1,
                LinuxSchedulerPolicy::SchedRr => 2,
                LinuxSchedulerPolicy::SchedBatch => 3,
                LinuxSchedulerPolicy::SchedIso => 4,
                LinuxSchedulerPolicy::SchedIdle => 5,
                LinuxSchedulerPolicy::SchedDeadline => 6,
            };
            a.sched_nice = s.nice().unwrap_or(0);
            a.sched_priority = s.priority().unwrap_or(0) as u32;
            for f in s.flags().iter().flatten() {
                a.sched_flags |= match f {
                    LinuxSchedulerFlag::SchedResetOnFork => 0x01,
                    LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
                    LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
                    LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
                    LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
                    LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
                    LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
                };
            }
            a.sched_runtime = s.runtime().unwrap_or(0);
            a.sched_deadline = s.deadline().unwrap_or(0);
            a.sched_period = s.period().unwrap_or(0);
            a
        });
        Ok(ExecPlan {
            args,
            has_home: env_strs.iter().any(|e| e.starts_with("HOME=")),
            env,
            path_env,
            cwd: p.cwd().clone(),
            uid: p.user().uid(),
            gid: p.user().gid(),
            additional_gids: p.user().additional_gids().clone().unwrap_or_default(),
            umask: p.user().umask(),
            rlimits,
            oom_score_adj: p.oom_score_adj(),
            no_new_privileges: p.no_new_privileges().unwrap_or(false),
            personality,
            ioprio,
            sched,
        })
    }

    /// Adds `KEY=VALUE` entries the runtime sets, replacing the process's
    /// own entries for those keys.
    pub fn add_env(&mut self, extra: &[String]) -> Result<()> {
        for e in extra {
            let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
            self.env.retain(|c| c.to_bytes().split(|&b| b == b'=').next() != Some(key.as_bytes()));
            self.env.push(cstr("process.env", e)?);
        }
        Ok(())
    }

    /// Resource limits; run before capabilities are dropped (raising a hard
    /// limit needs CAP_SYS_RESOURCE).
    pub fn set_rlimits(&self) -> Result<()> {
        for &(res, soft, hard) in &self.rlimits {
            let lim = libc::rlimit { rlim_cur: soft, rlim_max: hard };
            // SAFETY: a valid rlimit for a resource number from the table.
            if unsafe { libc::setrlimit(res, &lim) } < 0 {
                return Err(Error::io(format!("setrlimit {}", rlimit_name(res)), std::io::Error::last_os_error()));
            }
        }
        Ok(())
    }

    /// Personality, I/O priority and scheduler.
    pub fn set_attributes(&self) -> Result<()> {
        if let Some(p) = self.personality {
            // SAFETY: plain integer argument.
            if unsafe { libc::personality(p as libc::c_ulong) } < 0 {
                return Err(Error::io("linux.personality", std::io::Error::last_os_error()));
            }
        }
        if let Some((class, level)) = self.ioprio {
            crate::sys::ioprio_set(class, level).map_err(|e| Error::io("process.ioPriority", e))?;
        }
        if let Some(attr) = &self.sched {
            crate::sys::sched_setattr(attr).map_err(|e| Error::io("process.scheduler", e))?;
        }
        Ok(())
    }

    /// Changes to the configured uid, gid and supplementary groups, keeping
    /// capabilities across the uid change so they can then be set exactly.
    pub fn switch_user(&self, setgroups_allowed: bool) -> Result<()> {
        // SAFETY: plain integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } < 0 {
            return Err(Error::io("prctl(PR_SET_KEEPCAPS)", std::io::Error::last_os_error()));
        }
        if setgroups_allowed {
            let groups: Vec<Gid> = self.additional_gids.iter().map(|g| Gid::from_raw(*g)).collect();
            nix::unistd::setgroups(&groups).map_err(|e| Error::errno("setgroups (process.user.additionalGids)", e))?;
        } else if !self.additional_gids.is_empty() {
            return Err(Error::Init("process.user.additionalGids: setgroups is denied in this user namespace".into()));
        }
        self.fix_stdio_owner();
        let g = Gid::from_raw(self.gid);
        nix::unistd::setresgid(g, g, g).map_err(|e| Error::errno(format!("setgid {}", self.gid), e))?;
        let u = Uid::from_raw(self.uid);
        nix::unistd::setresuid(u, u, u).map_err(|e| Error::errno(format!("setuid {}", self.uid), e))?;
        // SAFETY: plain integer arguments.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
        if let Some(m) = self.umask {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(m));
        } else {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        }
        Ok(())
    }

    /// Gives the container user its stdio (a pty made by root, a pipe): the
    /// owner uid changes, the group stays (a devpts `gid=` option), as with
    /// runc. Device nodes other than a pty (the host's /dev/null passed as
    /// stdin, say) are never changed: they are the host's, whatever the
    /// container's /dev holds.
    fn fix_stdio_owner(&self) {
        for fd in 0..3 {
            let Ok(st) = nix::sys::stat::fstat(fd) else { continue };
            let kind = st.st_mode & libc::S_IFMT;
            let pty = kind == libc::S_IFCHR && (136..=143).contains(&libc::major(st.st_rdev));
            if st.st_uid == self.uid || kind == libc::S_IFBLK || (kind == libc::S_IFCHR && !pty) {
                continue;
            }
            // SAFETY: fchown on a descriptor number we do not own is harmless.
            unsafe { libc::fchown(fd, self.uid, st.st_gid) };
        }
    }

    /// Finds args[0] inside the container the way runc (Go's exec.LookPath)
    /// does, with the same error wording callers match on.
    pub fn find_executable(&self) -> Result<CString> {
        let arg0 = self.args[0].to_str().unwrap_or_default();
        let fail = |detail: String| Error::Init(format!("unable to start container process: exec: {arg0:?}: {detail}"));
        if arg0.contains('/') {
            return match check_exec(Path::new(arg0)) {
                Ok(()) => Ok(self.args[0].clone()),
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(fail("permission denied".into())),
                Err(e) => Err(fail(format!("stat {arg0}: {}", strip_os(&e)))),
            };
        }
        for dir in self.path_env.split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let cand = Path::new(dir).join(arg0);
            if check_exec(&cand).is_ok() {
                return CString::new(cand.as_os_str().as_bytes()).map_err(|_| fail("invalid path".into()));
            }
        }
        Err(fail("executable file not found in $PATH".into()))
    }

    /// HOME from the container's /etc/passwd when process.env has none.
    pub fn home_env(&self) -> Option<CString> {
        if self.has_home {
            return None;
        }
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let home = passwd
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse() == Ok(self.uid)).then(|| f[5].to_string())
            })
            .unwrap_or_else(|| "/".into());
        CString::new(format!("HOME={home}")).ok()
    }
}

fn strip_os(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s,
    }
}

fn check_exec(p: &Path) -> std::io::Result<()> {
    let m = std::fs::metadata(p)?;
    if m.is_dir() || m.permissions().mode() & 0o111 == 0 {
        return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
    }
    Ok(())
}

const RLIMITS: &[(&str, Resource)] = &[
    ("RLIMIT_CPU", libc::RLIMIT_CPU),
    ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
    ("RLIMIT_DATA", libc::RLIMIT_DATA),
    ("RLIMIT_STACK", libc::RLIMIT_STACK),
    ("RLIMIT_CORE", libc::RLIMIT_CORE),
    ("RLIMIT_RSS", libc::RLIMIT_RSS),
    ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
    ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
    ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
    ("RLIMIT_AS", libc::RLIMIT_AS),
    ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
    ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
    ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
    ("RLIMIT_NICE", libc::RLIMIT_NICE),
    ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
    ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
];

fn rlimit_resource(name: &str) -> Option<Resource> {
    RLIMITS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

fn rlimit_name(res: Resource) -> &'static str {
    RLIMITS.iter().find(|(_, r)| *r == res).map(|(n, _)| *n).unwrap_or("rlimit")
}

/// oom_score_adj of the init, written by the runtime: the init is not
/// dumpable, so inside a user namespace its own /proc files are not its.
pub fn set_oom_score_adj(pid: nix::unistd::Pid, adj: Option<i32>) -> Result<()> {
    if let Some(adj) = adj {
        crate::procfs::Proc::runtime()?.write_pid(pid.as_raw(), "oom_score_adj", &adj.to_string(), "process.oomScoreAdj")?;
    }
    Ok(())
}
