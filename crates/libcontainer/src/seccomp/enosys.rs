//! The `-ENOSYS` stub put in front of libseccomp's program.
//!
//! A deny-by-default profile written for one kernel makes every syscall it
//! does not name fail with the default errno (usually `EPERM`), including
//! syscalls that are newer than the profile. Programs, glibc first, probe a
//! new syscall and fall back to an older one only on `ENOSYS` (`clone3` →
//! `clone`, `faccessat2` → `faccessat`, `close_range` → a loop of `close`),
//! and treat `EPERM` as a real failure. runc therefore prepends a stub to
//! the filter ("patchbpf"), and so does skiff, with the same rules:
//!
//! * For every architecture in the filter (the native one and each listed
//!   in `architectures`), a syscall whose number is greater than the largest
//!   number the profile names for that architecture (among the names the
//!   installed libseccomp knows there) returns `-ENOSYS`; every other call
//!   goes on to libseccomp's program. Holes below that number are not
//!   handled (the profile's own rules or default action apply there).
//! * On x86_64 the x32 ABI shares the audit architecture and sets bit 30 of
//!   the syscall number: x86_64 and x32 calls are told apart by that bit and
//!   each has its own limit (or none, when the filter has no x32 rules: x32
//!   calls then meet libseccomp's bad-architecture action).
//! * On s390/s390x, syscall 0 is the multiplexer the kernel leaves unknown
//!   large numbers on: it returns `-ENOSYS` too.
//! * An architecture for which the profile names no syscall gets no stub.
//!
//! The stub is only added when the default action denies: not for
//! `SCMP_ACT_ALLOW`, `SCMP_ACT_LOG` or `SCMP_ACT_TRACE` (a tracer is expected
//! to handle unknown syscalls itself), nor when the default is already
//! `SCMP_ACT_ERRNO` with `ENOSYS`. See [`applies`].

use libseccomp::{ScmpAction, ScmpArch, ScmpSyscall};

/// `SECCOMP_RET_ERRNO | ENOSYS`.
pub(super) const RET_ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

/// Bit 30 of the syscall number marks an x32 call (`__X32_SYSCALL_BIT`).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// <linux/audit.h>: AUDIT_ARCH_* = EM_* | flags.
const AUDIT_64BIT: u32 = 0x8000_0000;
const AUDIT_LE: u32 = 0x4000_0000;
const AUDIT_MIPS64_N32: u32 = 0x2000_0000;

// struct seccomp_data offsets.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// True when the stub must be added for this default action.
pub(super) fn applies(default_action: ScmpAction) -> bool {
    !matches!(
        default_action,
        ScmpAction::Allow | ScmpAction::Log | ScmpAction::Trace(_)
    ) && default_action != ScmpAction::Errno(libc::ENOSYS)
}

/// The kernel's `AUDIT_ARCH_*` value for a libseccomp architecture (what
/// `seccomp_data.arch` holds). x32 reports x86_64's.
pub(super) fn audit_arch(arch: ScmpArch) -> Option<u32> {
    const EM_386: u32 = 3;
    const EM_68K: u32 = 4;
    const EM_MIPS: u32 = 8;
    const EM_PARISC: u32 = 15;
    const EM_PPC: u32 = 20;
    const EM_PPC64: u32 = 21;
    const EM_S390: u32 = 22;
    const EM_ARM: u32 = 40;
    const EM_SH: u32 = 42;
    const EM_X86_64: u32 = 62;
    const EM_AARCH64: u32 = 183;
    const EM_RISCV: u32 = 243;
    const EM_LOONGARCH: u32 = 258;
    Some(match arch {
        ScmpArch::Native => return audit_arch(ScmpArch::native()),
        ScmpArch::X86 => EM_386 | AUDIT_LE,
        ScmpArch::X8664 | ScmpArch::X32 => EM_X86_64 | AUDIT_64BIT | AUDIT_LE,
        ScmpArch::Arm => EM_ARM | AUDIT_LE,
        ScmpArch::Aarch64 => EM_AARCH64 | AUDIT_64BIT | AUDIT_LE,
        ScmpArch::Loongarch64 => EM_LOONGARCH | AUDIT_64BIT | AUDIT_LE,
        ScmpArch::M68k => EM_68K,
        ScmpArch::Mips => EM_MIPS,
        ScmpArch::Mips64 => EM_MIPS | AUDIT_64BIT,
        ScmpArch::Mips64N32 => EM_MIPS | AUDIT_64BIT | AUDIT_MIPS64_N32,
        ScmpArch::Mipsel => EM_MIPS | AUDIT_LE,
        ScmpArch::Mipsel64 => EM_MIPS | AUDIT_64BIT | AUDIT_LE,
        ScmpArch::Mipsel64N32 => EM_MIPS | AUDIT_64BIT | AUDIT_LE | AUDIT_MIPS64_N32,
        ScmpArch::Ppc => EM_PPC,
        ScmpArch::Ppc64 => EM_PPC64 | AUDIT_64BIT,
        ScmpArch::Ppc64Le => EM_PPC64 | AUDIT_64BIT | AUDIT_LE,
        ScmpArch::S390 => EM_S390,
        ScmpArch::S390X => EM_S390 | AUDIT_64BIT,
        ScmpArch::Parisc => EM_PARISC,
        ScmpArch::Parisc64 => EM_PARISC | AUDIT_64BIT,
        ScmpArch::Riscv64 => EM_RISCV | AUDIT_64BIT | AUDIT_LE,
        ScmpArch::Sh => EM_SH | AUDIT_LE,
        ScmpArch::Sheb => EM_SH,
        _ => return None,
    })
}

/// What the stub checks for one audit architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ArchLimit {
    /// `seccomp_data.arch` value.
    pub audit: u32,
    /// Largest syscall number named for the architecture (for x86_64: for
    /// the x86_64 ABI, x32 calls excluded).
    pub max: Option<u32>,
    /// x86_64 only: largest x32 syscall number named (bit 30 included).
    pub x32_max: Option<u32>,
    /// s390/s390x: syscall 0 returns ENOSYS as well.
    pub s390: bool,
}

/// Largest syscall number, for `arch`, among `names` libseccomp knows there.
fn largest_syscall<'a>(names: impl Iterator<Item = &'a str>, arch: ScmpArch) -> Option<u32> {
    names
        .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
        .map(i32::from)
        .filter(|nr| *nr >= 0) // negative: libseccomp's pseudo syscalls
        .max()
        .map(|nr| nr as u32)
}

/// Per audit architecture limits for the filter's architectures (`arches`,
/// the native one included) and every syscall name of the profile.
/// Architectures libseccomp cannot map are left to the filter.
pub(super) fn limits<'a>(
    arches: &[ScmpArch],
    names: impl Iterator<Item = &'a str> + Clone,
) -> Vec<ArchLimit> {
    let mut out: Vec<ArchLimit> = Vec::new();
    for &arch in arches {
        let arch = if arch == ScmpArch::Native {
            ScmpArch::native()
        } else {
            arch
        };
        let Some(audit) = audit_arch(arch) else {
            continue;
        };
        let max = largest_syscall(names.clone(), arch);
        let i = match out.iter().position(|l| l.audit == audit) {
            Some(i) => i,
            None => {
                out.push(ArchLimit {
                    audit,
                    max: None,
                    x32_max: None,
                    s390: matches!(arch, ScmpArch::S390 | ScmpArch::S390X),
                });
                out.len() - 1
            }
        };
        if arch == ScmpArch::X32 {
            out[i].x32_max = max;
        } else {
            out[i].max = max;
        }
    }
    out.retain(|l| l.max.is_some() || l.x32_max.is_some());
    out
}

/// The stub for `limits`: empty when there is nothing to check. Its last
/// jumps land just past its end, where libseccomp's program starts.
/// `None` when a conditional jump would not fit in 8 bits (about 60
/// architectures; libseccomp knows 24).
pub(super) fn stub(limits: &[ArchLimit]) -> Option<Vec<libc::sock_filter>> {
    if limits.is_empty() {
        return Some(Vec::new());
    }
    let mut a = Asm::default();
    let filter = a.label();
    let enosys = a.label();
    let sections: Vec<usize> = limits.iter().map(|_| a.label()).collect();

    a.stmt(LD_W_ABS, DATA_ARCH);
    for (l, &section) in limits.iter().zip(&sections) {
        a.jump(JEQ_K, l.audit, To::L(section), To::Next);
    }
    a.ja(filter);
    for (l, &section) in limits.iter().zip(&sections) {
        a.bind(section);
        a.stmt(LD_W_ABS, DATA_NR);
        if l.s390 {
            a.jump(JEQ_K, 0, To::L(enosys), To::Next);
        }
        let is_x86_64 = l.audit == audit_arch(ScmpArch::X8664).unwrap_or_default();
        if !is_x86_64 {
            limit_check(&mut a, l.max, enosys, filter);
            continue;
        }
        let x32 = a.label();
        a.jump(JSET_K, X32_SYSCALL_BIT, To::L(x32), To::Next);
        limit_check(&mut a, l.max, enosys, filter);
        a.bind(x32);
        limit_check(&mut a, l.x32_max, enosys, filter);
    }
    a.bind(enosys);
    a.stmt(RET_K, RET_ENOSYS);
    a.bind(filter);
    a.finish()
}

/// `nr > max` → ENOSYS, otherwise the filter (the whole filter without a
/// limit).
fn limit_check(a: &mut Asm, max: Option<u32>, enosys: usize, filter: usize) {
    if let Some(max) = max {
        a.jump(JGT_K, max, To::L(enosys), To::Next);
    }
    a.ja(filter);
}

#[derive(Clone, Copy)]
enum To {
    Next,
    L(usize),
}

/// A minimal assembler: forward jumps to labels, resolved at the end.
#[derive(Default)]
struct Asm {
    insns: Vec<libc::sock_filter>,
    labels: Vec<Option<usize>>,
    /// (instruction, jt, jf) for conditional jumps, (instruction, k) for `ja`.
    cond: Vec<(usize, To, To)>,
    uncond: Vec<(usize, usize)>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.insns.len());
    }

    fn push(&mut self, code: u16, k: u32) {
        self.insns.push(libc::sock_filter {
            code,
            jt: 0,
            jf: 0,
            k,
        });
    }

    fn stmt(&mut self, code: u16, k: u32) {
        self.push(code, k);
    }

    fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.cond.push((self.insns.len(), jt, jf));
        self.push(code, k);
    }

    fn ja(&mut self, label: usize) {
        self.uncond.push((self.insns.len(), label));
        self.push(JA, 0);
    }

    /// Offset from the instruction after `at` to `to` (forward only).
    fn offset(&self, at: usize, to: To) -> Option<usize> {
        match to {
            To::Next => Some(0),
            To::L(l) => self.labels[l]?.checked_sub(at + 1),
        }
    }

    fn finish(mut self) -> Option<Vec<libc::sock_filter>> {
        for &(at, jt, jf) in &self.cond {
            let jt = u8::try_from(self.offset(at, jt)?).ok()?;
            let jf = u8::try_from(self.offset(at, jf)?).ok()?;
            self.insns[at].jt = jt;
            self.insns[at].jf = jf;
        }
        for &(at, l) in &self.uncond {
            self.insns[at].k = u32::try_from(self.offset(at, To::L(l))?).ok()?;
        }
        Some(self.insns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::{compile, compile_cached, load, Filter};
    use libseccomp::ScmpFilterContext;
    use oci_spec::runtime::LinuxSeccomp;

    const AUDIT_X86_64: u32 = 0xc000_003e;
    const AUDIT_I386: u32 = 0x4000_0003;
    const AUDIT_AARCH64: u32 = 0xc000_00b7;
    const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const RET_EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;

    /// A classic BPF interpreter for seccomp programs (what libseccomp
    /// emits and the stub uses), run on `seccomp_data { nr, arch, ip: 0, args }`.
    fn run(prog: &[libc::sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = Vec::with_capacity(64);
        data.extend_from_slice(&nr.to_ne_bytes());
        data.extend_from_slice(&arch.to_ne_bytes());
        data.extend_from_slice(&0u64.to_ne_bytes());
        for a in args {
            data.extend_from_slice(&a.to_ne_bytes());
        }
        let (mut a, mut x, mut mem, mut pc) = (0u32, 0u32, [0u32; 16], 0usize);
        loop {
            let i = prog
                .get(pc)
                .unwrap_or_else(|| panic!("fell off the program at {pc}"));
            pc += 1;
            let k = i.k;
            let jump = |cond: bool| usize::from(if cond { i.jt } else { i.jf });
            match i.code {
                0x20 => {
                    let off = k as usize;
                    a = u32::from_ne_bytes(data[off..off + 4].try_into().unwrap());
                }
                0x60 => a = mem[k as usize],
                0x61 => x = mem[k as usize],
                0x02 => mem[k as usize] = a,
                0x03 => mem[k as usize] = x,
                0x04 => a = a.wrapping_add(k),
                0x14 => a = a.wrapping_sub(k),
                0x44 => a |= k,
                0x54 => a &= k,
                0x07 => x = a,
                0x87 => a = x,
                0x05 => pc += k as usize,
                0x15 => pc += jump(a == k),
                0x25 => pc += jump(a > k),
                0x35 => pc += jump(a >= k),
                0x45 => pc += jump(a & k != 0),
                0x1d => pc += jump(a == x),
                0x2d => pc += jump(a > x),
                0x3d => pc += jump(a >= x),
                0x4d => pc += jump(a & x != 0),
                0x06 => return k,
                0x16 => return a,
                other => panic!("opcode {other:#x} at {} not interpreted", pc - 1),
            }
        }
    }

    fn nr(name: &str, arch: ScmpArch) -> u32 {
        i32::from(ScmpSyscall::from_name_by_arch(name, arch).unwrap()) as u32
    }

    fn profile(json: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(json).unwrap()
    }

    /// Deny by default (EPERM), three x86 architectures, a few allowed
    /// syscalls topped by pidfd_open (434), one explicit EACCES rule.
    fn deny_profile(default: &str, arches: &[&str]) -> LinuxSeccomp {
        profile(serde_json::json!({
            "defaultAction": default,
            "architectures": arches,
            "syscalls": [
                {"names": ["read", "write", "getpid", "exit_group", "pidfd_open"],
                 "action": "SCMP_ACT_ALLOW"},
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES},
                {"names": ["no_such_syscall_anywhere"], "action": "SCMP_ACT_ALLOW"}
            ]
        }))
    }

    #[test]
    fn audit_arch_matches_libseccomp() {
        let mut checked = 0;
        for arch in [
            ScmpArch::X86,
            ScmpArch::X8664,
            ScmpArch::X32,
            ScmpArch::Arm,
            ScmpArch::Aarch64,
            ScmpArch::Mips,
            ScmpArch::Mips64,
            ScmpArch::Mips64N32,
            ScmpArch::Mipsel,
            ScmpArch::Mipsel64,
            ScmpArch::Mipsel64N32,
            ScmpArch::Ppc,
            ScmpArch::Ppc64,
            ScmpArch::Ppc64Le,
            ScmpArch::S390,
            ScmpArch::S390X,
            ScmpArch::Parisc,
            ScmpArch::Parisc64,
            ScmpArch::Riscv64,
            ScmpArch::Loongarch64,
            ScmpArch::M68k,
            ScmpArch::Sh,
            ScmpArch::Sheb,
        ] {
            let mut ctx = ScmpFilterContext::new(ScmpAction::Allow).unwrap();
            ctx.remove_arch(ScmpArch::native()).unwrap();
            if ctx.add_arch(arch).is_err() {
                continue; // newer than this libseccomp
            }
            ctx.add_rule(
                ScmpAction::Errno(1),
                ScmpSyscall::from_name("read").unwrap(),
            )
            .unwrap();
            let f = crate::seccomp::export(&ctx).unwrap();
            let f = Filter::from_insn_bytes(&f, 0, false);
            let want = audit_arch(arch).unwrap();
            // Programs for big-endian architectures are exported in their
            // byte order.
            let (code, k) = if want & AUDIT_LE == 0 {
                (JEQ_K.swap_bytes(), want.swap_bytes())
            } else {
                (JEQ_K, want)
            };
            assert!(
                f.insns.iter().any(|i| i.code == code && i.k == k),
                "{arch:?}: no jeq {want:#x} in libseccomp's program {:x?}",
                f.insns.iter().map(|i| (i.code, i.k)).collect::<Vec<_>>()
            );
            checked += 1;
        }
        assert!(
            checked >= 18,
            "only {checked} architectures known to libseccomp"
        );
        assert_eq!(audit_arch(ScmpArch::Native), audit_arch(ScmpArch::native()));
    }

    #[test]
    fn applies_only_to_denying_defaults() {
        assert!(applies(ScmpAction::Errno(libc::EPERM)));
        assert!(applies(ScmpAction::Errno(0)));
        assert!(applies(ScmpAction::KillThread));
        assert!(applies(ScmpAction::KillProcess));
        assert!(applies(ScmpAction::Trap));
        assert!(!applies(ScmpAction::Errno(libc::ENOSYS)));
        assert!(!applies(ScmpAction::Allow));
        assert!(!applies(ScmpAction::Log));
        assert!(!applies(ScmpAction::Trace(1)));
    }

    #[test]
    fn x86_family_limits() {
        let f = compile(&deny_profile(
            "SCMP_ACT_ERRNO",
            &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        ))
        .unwrap();
        let p = &f.insns;
        let x64 = |n: &str| nr(n, ScmpArch::X8664);
        let max64 = x64("pidfd_open");
        assert_eq!(max64, 434);
        // x86_64: above the largest named number → ENOSYS; at it → the rule;
        // unnamed below → the default; named with an errno → its errno.
        assert_eq!(run(p, x64("clone3"), AUDIT_X86_64, [0; 6]), RET_ENOSYS);
        assert_eq!(run(p, 1000, AUDIT_X86_64, [0; 6]), RET_ENOSYS);
        assert_eq!(run(p, u32::MAX, AUDIT_X86_64, [0; 6]), RET_ENOSYS);
        assert_eq!(run(p, max64, AUDIT_X86_64, [0; 6]), RET_ALLOW);
        assert_eq!(run(p, max64 + 1, AUDIT_X86_64, [0; 6]), RET_ENOSYS);
        assert_eq!(run(p, x64("getpid"), AUDIT_X86_64, [0; 6]), RET_ALLOW);
        assert_eq!(run(p, x64("getpriority"), AUDIT_X86_64, [0; 6]), RET_EPERM);
        assert_eq!(
            run(p, x64("getppid"), AUDIT_X86_64, [0; 6]),
            libc::SECCOMP_RET_ERRNO | libc::EACCES as u32
        );
        // i386 has its own numbers (pidfd_open is 434 there too, getpid 20).
        let x86 = |n: &str| nr(n, ScmpArch::X86);
        assert_eq!(run(p, x86("getpid"), AUDIT_I386, [0; 6]), RET_ALLOW);
        assert_eq!(run(p, x86("clone3"), AUDIT_I386, [0; 6]), RET_ENOSYS);
        assert_eq!(run(p, x86("getpriority"), AUDIT_I386, [0; 6]), RET_EPERM);
        // x32: bit 30 set, its own limit.
        let x32 = |n: &str| nr(n, ScmpArch::X32);
        assert_eq!(x32("getpid") & X32_SYSCALL_BIT, X32_SYSCALL_BIT);
        assert_eq!(run(p, x32("getpid"), AUDIT_X86_64, [0; 6]), RET_ALLOW);
        assert_eq!(run(p, x32("clone3"), AUDIT_X86_64, [0; 6]), RET_ENOSYS);
        assert_eq!(run(p, x32("getpriority"), AUDIT_X86_64, [0; 6]), RET_EPERM);
        // An architecture outside the filter meets the bad-arch action.
        let other = run(p, 1000, AUDIT_AARCH64, [0; 6]);
        assert!(other != RET_ENOSYS && other != RET_ALLOW, "{other:#x}");
    }

    #[test]
    fn x32_calls_without_x32_in_the_filter_are_not_enosys() {
        let f = compile(&deny_profile("SCMP_ACT_ERRNO", &["SCMP_ARCH_X86_64"])).unwrap();
        let x32_clone3 = nr("clone3", ScmpArch::X32);
        let got = run(&f.insns, x32_clone3, AUDIT_X86_64, [0; 6]);
        assert!(got != RET_ENOSYS && got != RET_ALLOW, "{got:#x}");
        assert_eq!(run(&f.insns, 435, AUDIT_X86_64, [0; 6]), RET_ENOSYS);
        // No architectures listed: the native one still gets its stub.
        let f = compile(&deny_profile("SCMP_ACT_ERRNO", &[])).unwrap();
        assert_eq!(run(&f.insns, 435, AUDIT_X86_64, [0; 6]), RET_ENOSYS);
    }

    #[test]
    fn other_denying_defaults_get_the_stub() {
        for (default, plain) in [
            ("SCMP_ACT_KILL_PROCESS", libc::SECCOMP_RET_KILL_PROCESS),
            ("SCMP_ACT_KILL", libc::SECCOMP_RET_KILL_THREAD),
            ("SCMP_ACT_TRAP", libc::SECCOMP_RET_TRAP),
        ] {
            let f = compile(&deny_profile(default, &["SCMP_ARCH_X86_64"])).unwrap();
            assert_eq!(
                run(&f.insns, 435, AUDIT_X86_64, [0; 6]),
                RET_ENOSYS,
                "{default}"
            );
            assert_eq!(run(&f.insns, 140, AUDIT_X86_64, [0; 6]), plain, "{default}");
        }
    }

    #[test]
    fn permissive_or_enosys_defaults_are_left_alone() {
        let mut base = deny_profile("SCMP_ACT_ERRNO", &["SCMP_ARCH_X86_64"]);
        let patched = compile(&base).unwrap();
        base.set_default_errno_ret(Some(libc::ENOSYS as u32));
        let enosys = compile(&base).unwrap();
        // Same libseccomp program, minus the stub.
        let limits = limits(&[ScmpArch::native()], ["pidfd_open"].into_iter());
        assert_eq!(
            patched.insns.len() - enosys.insns.len(),
            stub(&limits).unwrap().len()
        );
        assert_eq!(
            run(
                &enosys.insns,
                x86_64_nr("getpriority"),
                AUDIT_X86_64,
                [0; 6]
            ),
            RET_ENOSYS
        );
        for default in ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"] {
            let f = compile(&profile(serde_json::json!({
                "defaultAction": default,
                "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]
            })))
            .unwrap();
            let got = run(&f.insns, 435, AUDIT_X86_64, [0; 6]);
            assert_ne!(got, RET_ENOSYS, "{default}");
            assert_eq!(
                run(&f.insns, 110, AUDIT_X86_64, [0; 6]),
                RET_EPERM,
                "{default}"
            );
        }
    }

    fn x86_64_nr(name: &str) -> u32 {
        nr(name, ScmpArch::X8664)
    }

    #[test]
    fn notify_rules_and_flags_keep_working_with_the_stub() {
        let f = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "listenerPath": "/run/agent.sock",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [
                {"names": ["getpid", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}
            ]
        })))
        .unwrap();
        assert!(f.needs_listener);
        assert_eq!(
            f.flags,
            (libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) as u32
        );
        let mkdirat = x86_64_nr("mkdirat");
        assert_eq!(
            run(&f.insns, mkdirat, AUDIT_X86_64, [0; 6]),
            libc::SECCOMP_RET_USER_NOTIF
        );
        assert_eq!(run(&f.insns, mkdirat + 1, AUDIT_X86_64, [0; 6]), RET_ENOSYS);
        assert_eq!(run(&f.insns, mkdirat - 1, AUDIT_X86_64, [0; 6]), RET_EPERM);
    }

    #[test]
    fn no_named_syscalls_means_no_stub() {
        let f = compile(&profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO"}),
        ))
        .unwrap();
        assert_eq!(run(&f.insns, 435, AUDIT_X86_64, [0; 6]), RET_EPERM);
        assert!(limits(&[ScmpArch::native()], ["no_such_syscall"].into_iter()).is_empty());
        assert_eq!(stub(&[]), Some(Vec::new()));
    }

    /// The stub followed by a sentinel "filter" that allows everything.
    fn stub_then_allow(limits: &[ArchLimit]) -> Vec<libc::sock_filter> {
        let mut p = stub(limits).expect("stub fits");
        p.push(libc::sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: RET_ALLOW,
        });
        p
    }

    #[test]
    fn s390_multiplexer_and_many_architectures() {
        let s390x = audit_arch(ScmpArch::S390X).unwrap();
        let p = stub_then_allow(&[ArchLimit {
            audit: s390x,
            max: Some(300),
            x32_max: None,
            s390: true,
        }]);
        assert_eq!(run(&p, 0, s390x, [0; 6]), RET_ENOSYS);
        assert_eq!(run(&p, 301, s390x, [0; 6]), RET_ENOSYS);
        assert_eq!(run(&p, 300, s390x, [0; 6]), RET_ALLOW);
        assert_eq!(run(&p, 0, AUDIT_AARCH64, [0; 6]), RET_ALLOW);

        // Every architecture there is (and more): the jumps still resolve.
        let many: Vec<ArchLimit> = (0..30u32)
            .map(|i| ArchLimit {
                audit: 0x1000 + i,
                max: Some(100 + i),
                x32_max: None,
                s390: false,
            })
            .collect();
        let p = stub_then_allow(&many);
        for l in &many {
            assert_eq!(run(&p, l.max.unwrap(), l.audit, [0; 6]), RET_ALLOW);
            assert_eq!(run(&p, l.max.unwrap() + 1, l.audit, [0; 6]), RET_ENOSYS);
        }
        // Far too many for 8-bit conditional jumps: refused, not mis-assembled.
        let too_many: Vec<ArchLimit> = (0..200u32)
            .map(|i| ArchLimit {
                audit: 0x1000 + i,
                max: Some(1),
                x32_max: None,
                s390: false,
            })
            .collect();
        assert!(stub(&too_many).is_none());
    }

    #[test]
    fn cached_program_keeps_the_stub() {
        let dir = std::env::temp_dir().join(format!("skiff-enosys-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let seccomp = deny_profile("SCMP_ACT_ERRNO", &["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]);
        let fresh = compile(&seccomp).unwrap();
        let miss = compile_cached(&seccomp, &dir).unwrap();
        let hit = compile_cached(&seccomp, &dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(miss, fresh);
        assert_eq!(hit, fresh);
        assert_eq!(run(&hit.insns, 435, AUDIT_X86_64, [0; 6]), RET_ENOSYS);
    }

    /// The real kernel, in a forked child: clone3 (above every named number)
    /// fails with ENOSYS, an unnamed lower syscall with EPERM, a named one
    /// with its rule's errno, allowed ones work.
    #[test]
    fn kernel_returns_enosys_above_the_named_syscalls() {
        let f = compile(&deny_profile(
            "SCMP_ACT_ERRNO",
            &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        ))
        .unwrap();
        let code = crate::seccomp::tests::in_child(|| {
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0
                || load(&f).is_err()
            {
                return 10;
            }
            let call = |nr: libc::c_long| {
                // SAFETY: raw syscalls with null/zero arguments; the filter
                // decides before the kernel reads any of them.
                let r = unsafe { libc::syscall(nr, 0, 0, 0) };
                (
                    r,
                    std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
                )
            };
            let checks = [
                (call(libc::SYS_clone3), (-1, libc::ENOSYS)),
                (call(1000), (-1, libc::ENOSYS)),
                (call(libc::SYS_getpriority), (-1, libc::EPERM)),
                (call(libc::SYS_getppid), (-1, libc::EACCES)),
            ];
            for (i, (got, want)) in checks.iter().enumerate() {
                if got != want {
                    return 20 + i as i32;
                }
            }
            // SAFETY: getpid has no preconditions.
            if unsafe { libc::syscall(libc::SYS_getpid) } <= 0 {
                return 30;
            }
            0
        });
        assert_eq!(code, 0);
    }
}
