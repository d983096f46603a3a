//! rtt-checker — runs inside the container as its process (statically linked:
//! the busybox rootfs has no libc) and verifies from inside that the runtime
//! honoured the config. It reads the config the driver copied to
//! /rtt-config.json and prints one TAP-like line per assertion:
//!   ok - <what>            not ok - <what>: <detail>            skip - <what>: <why>
//! and finally `rtt-checker done`, so the driver can tell a crash from a pass.
//!
//! Usage: rtt-checker check [ASPECT...]   (no aspect: every aspect the config touches)
//!        rtt-checker sigwait              (print every signal received; exit on SIGTERM)
//!        rtt-checker echo WORDS...        (print the words, for lifecycle cases)

#[path = "../common.rs"]
mod common;

use serde_json::Value;
use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

struct Tap {
    failed: usize,
}

impl Tap {
    fn ok(&mut self, cond: bool, what: &str, detail: impl AsRef<str>) {
        if cond {
            println!("ok - {what}");
        } else {
            self.failed += 1;
            println!("not ok - {what}: {}", detail.as_ref());
        }
    }
    fn skip(&self, what: &str, why: &str) {
        println!("skip - {what}: {why}");
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn read(p: &str) -> Option<String> {
    fs::read_to_string(p).ok()
}

fn status_field(name: &str) -> Option<String> {
    let s = read("/proc/self/status")?;
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string()))
}

fn statvfs_ro(path: &str) -> Option<bool> {
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let c = cstr(path);
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_flag & libc::ST_RDONLY != 0)
}

fn uname() -> (String, String) {
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    unsafe { libc::uname(&mut u) };
    let f = |a: &[libc::c_char]| {
        let b: Vec<u8> = a.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    (f(&u.nodename), f(&u.domainname))
}

fn mountinfo() -> Vec<common::MountInfo> {
    common::parse_mountinfo(&read("/proc/self/mountinfo").unwrap_or_default())
}

fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    format!("/{}", parts.join("/"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(|s| s.as_str()) {
        Some("check") => check(&args[2..]),
        Some("sigwait") => sigwait(),
        Some("echo") => println!("{}", args[2..].join(" ")),
        _ => {
            eprintln!("usage: rtt-checker check [ASPECT...] | sigwait | echo WORDS");
            std::process::exit(2);
        }
    }
}

fn sigwait() {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        println!("ready");
        use std::io::Write;
        std::io::stdout().flush().ok();
        loop {
            let mut sig: libc::c_int = 0;
            if libc::sigwait(&set, &mut sig) != 0 {
                continue;
            }
            println!("signal {sig}");
            std::io::stdout().flush().ok();
            if sig == libc::SIGTERM {
                return;
            }
        }
    }
}

const ASPECTS: &[&str] = &[
    "args", "cwd", "env", "user", "nnp", "oom", "rlimits", "caps", "apparmor", "selinux",
    "iopriority", "scheduler", "root", "hostname", "domainname", "mounts", "masked",
    "readonly", "devices", "devaccess", "sysctl", "seccomp", "propagation", "idmap", "uidmap", "timens",
    "cgroup",
];

fn check(want: &[String]) {
    let cfg: Value = match read("/rtt-config.json").and_then(|s| serde_json::from_str(&s).ok()) {
        Some(v) => v,
        None => {
            println!("not ok - read /rtt-config.json");
            println!("rtt-checker done");
            return;
        }
    };
    let mut t = Tap { failed: 0 };
    for a in ASPECTS {
        if !want.is_empty() && !want.iter().any(|w| w == a) {
            continue;
        }
        match *a {
            "args" => check_args(&cfg, &mut t),
            "cwd" => check_cwd(&cfg, &mut t),
            "env" => check_env(&cfg, &mut t),
            "user" => check_user(&cfg, &mut t),
            "nnp" => check_nnp(&cfg, &mut t),
            "oom" => check_oom(&cfg, &mut t),
            "rlimits" => check_rlimits(&cfg, &mut t),
            "caps" => check_caps(&cfg, &mut t),
            "apparmor" => check_apparmor(&cfg, &mut t),
            "selinux" => check_selinux(&cfg, &mut t),
            "iopriority" => check_iopriority(&cfg, &mut t),
            "scheduler" => check_scheduler(&cfg, &mut t),
            "root" => check_root(&cfg, &mut t),
            "hostname" => check_hostname(&cfg, &mut t),
            "domainname" => check_domainname(&cfg, &mut t),
            "mounts" => check_mounts(&cfg, &mut t),
            "masked" => check_masked(&cfg, &mut t),
            "readonly" => check_readonly(&cfg, &mut t),
            "devices" => check_devices(&cfg, &mut t),
            "devaccess" => check_devaccess(&cfg, &mut t),
            "sysctl" => check_sysctl(&cfg, &mut t),
            "seccomp" => check_seccomp(&cfg, &mut t),
            "propagation" => check_propagation(&cfg, &mut t),
            "idmap" => check_idmap(&cfg, &mut t),
            "uidmap" => check_uidmap(&cfg, &mut t),
            "timens" => check_timens(&cfg, &mut t),
            "cgroup" => check_cgroup(&cfg, &mut t),
            _ => {}
        }
    }
    println!("rtt-checker done");
}

fn check_args(cfg: &Value, t: &mut Tap) {
    let Some(args) = cfg.pointer("/process/args").and_then(|v| v.as_array()) else { return };
    let want: Vec<&str> = args.iter().filter_map(|a| a.as_str()).collect();
    let got: Vec<String> = std::env::args().collect();
    t.ok(got == want, "process.args are the process argv", format!("got {got:?}, want {want:?}"));
}

fn check_cwd(cfg: &Value, t: &mut Tap) {
    let Some(cwd) = cfg.pointer("/process/cwd").and_then(|v| v.as_str()) else { return };
    let got = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
    t.ok(clean(&got) == clean(cwd), "process.cwd is the working directory", format!("got {got}, want {cwd}"));
}

fn check_env(cfg: &Value, t: &mut Tap) {
    let Some(env) = cfg.pointer("/process/env").and_then(|v| v.as_array()) else { return };
    for e in env.iter().filter_map(|e| e.as_str()) {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        let got = std::env::var(k).ok();
        t.ok(got.as_deref() == Some(v), &format!("process.env {k}"), format!("got {got:?}, want {v:?}"));
    }
}

fn check_user(cfg: &Value, t: &mut Tap) {
    let Some(user) = cfg.pointer("/process/user") else { return };
    let uid = unsafe { libc::getuid() } as u64;
    let gid = unsafe { libc::getgid() } as u64;
    let wuid = user.get("uid").and_then(|v| v.as_u64()).unwrap_or(0);
    let wgid = user.get("gid").and_then(|v| v.as_u64()).unwrap_or(0);
    t.ok(uid == wuid, "process.user.uid", format!("got {uid}, want {wuid}"));
    t.ok(gid == wgid, "process.user.gid", format!("got {gid}, want {wgid}"));
    let mut groups = vec![0 as libc::gid_t; 256];
    let n = unsafe { libc::getgroups(256, groups.as_mut_ptr()) };
    groups.truncate(n.max(0) as usize);
    if let Some(add) = user.get("additionalGids").and_then(|v| v.as_array()) {
        for g in add.iter().filter_map(|g| g.as_u64()) {
            t.ok(groups.contains(&(g as libc::gid_t)), &format!("process.user.additionalGids contains {g}"), format!("groups are {groups:?}"));
        }
    }
    if let Some(umask) = user.get("umask").and_then(|v| v.as_u64()) {
        let got = status_field("Umask").and_then(|s| u64::from_str_radix(&s, 8).ok());
        t.ok(got == Some(umask), "process.user.umask", format!("got {got:?}, want {umask:o}"));
    }
}

fn check_nnp(cfg: &Value, t: &mut Tap) {
    let want = cfg.pointer("/process/noNewPrivileges").and_then(|v| v.as_bool()).unwrap_or(false);
    if !want {
        return; // false means "do not ask for it"; the flag may still be inherited
    }
    let got = status_field("NoNewPrivs");
    t.ok(got.as_deref() == Some("1"), "process.noNewPrivileges", format!("NoNewPrivs: {got:?}"));
}

fn check_oom(cfg: &Value, t: &mut Tap) {
    let Some(want) = cfg.pointer("/process/oomScoreAdj").and_then(|v| v.as_i64()) else { return };
    let got = read("/proc/self/oom_score_adj").and_then(|s| s.trim().parse::<i64>().ok());
    t.ok(got == Some(want), "process.oomScoreAdj", format!("got {got:?}, want {want}"));
}

fn check_rlimits(cfg: &Value, t: &mut Tap) {
    let Some(rl) = cfg.pointer("/process/rlimits").and_then(|v| v.as_array()) else { return };
    for r in rl {
        let ty = r.get("type").and_then(|v| v.as_str()).unwrap_or("");
        let Some(num) = common::rlimit_num(ty) else {
            t.ok(false, &format!("rlimit {ty}"), "unknown rlimit type");
            continue;
        };
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        unsafe { libc::getrlimit(num as _, &mut lim) };
        let soft = r.get("soft").and_then(|v| v.as_u64()).unwrap_or(0);
        let hard = r.get("hard").and_then(|v| v.as_u64()).unwrap_or(0);
        t.ok(lim.rlim_cur == soft && lim.rlim_max == hard, &format!("process.rlimits {ty}"),
            format!("got soft {} hard {}, want soft {soft} hard {hard}", lim.rlim_cur, lim.rlim_max));
    }
}

fn check_caps(cfg: &Value, t: &mut Tap) {
    let Some(caps) = cfg.pointer("/process/capabilities") else { return };
    let last = read("/proc/sys/kernel/cap_last_cap").and_then(|s| s.trim().parse::<u32>().ok()).unwrap_or(40);
    let valid: u64 = if last >= 63 { u64::MAX } else { (1u64 << (last + 1)) - 1 };
    for (set, field) in [("bounding", "CapBnd"), ("effective", "CapEff"), ("permitted", "CapPrm"),
        ("inheritable", "CapInh"), ("ambient", "CapAmb")] {
        let mut want = 0u64;
        for n in caps.get(set).and_then(|v| v.as_array()).into_iter().flatten().filter_map(|v| v.as_str()) {
            if let Some(b) = common::cap_bit(n) {
                want |= 1 << b;
            }
        }
        want &= valid;
        let got = status_field(field).and_then(|s| u64::from_str_radix(&s, 16).ok());
        t.ok(got == Some(want), &format!("process.capabilities.{set}"),
            format!("{field} is {:x}, want {want:x}", got.unwrap_or(0)));
    }
}

fn lsm_current(which: &str) -> Option<String> {
    read(&format!("/proc/self/attr/{which}/current"))
        .or_else(|| read("/proc/self/attr/current"))
        .map(|s| s.trim_end_matches(['\n', '\0']).to_string())
}

fn check_apparmor(cfg: &Value, t: &mut Tap) {
    let Some(p) = cfg.pointer("/process/apparmorProfile").and_then(|v| v.as_str()) else { return };
    if read("/sys/module/apparmor/parameters/enabled").map(|s| s.trim() == "Y") != Some(true) {
        t.skip("process.apparmorProfile", "AppArmor is not enabled");
        return;
    }
    let got = lsm_current("apparmor").unwrap_or_default();
    t.ok(got == p || got.starts_with(&format!("{p} (")), "process.apparmorProfile", format!("got {got:?}, want {p:?}"));
}

fn check_selinux(cfg: &Value, t: &mut Tap) {
    let Some(l) = cfg.pointer("/process/selinuxLabel").and_then(|v| v.as_str()) else { return };
    if fs::metadata("/sys/fs/selinux/enforce").is_err() && fs::metadata("/proc/self/attr/selinux").is_err() {
        t.skip("process.selinuxLabel", "SELinux is not enabled");
        return;
    }
    let got = lsm_current("selinux").unwrap_or_default();
    t.ok(got == l, "process.selinuxLabel", format!("got {got:?}, want {l:?}"));
}

fn check_iopriority(cfg: &Value, t: &mut Tap) {
    let Some(io) = cfg.pointer("/process/ioPriority") else { return };
    let class = match io.get("class").and_then(|v| v.as_str()).unwrap_or("") {
        "IOPRIO_CLASS_RT" => 1,
        "IOPRIO_CLASS_BE" => 2,
        "IOPRIO_CLASS_IDLE" => 3,
        _ => 0,
    };
    let prio = io.get("priority").and_then(|v| v.as_i64()).unwrap_or(0);
    let v = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) };
    t.ok(v >= 0 && (v >> 13) == class && (v & 0x1fff) == prio, "process.ioPriority",
        format!("ioprio_get = {v} (class {}, data {}), want class {class} data {prio}", v >> 13, v & 0x1fff));
}

fn check_scheduler(cfg: &Value, t: &mut Tap) {
    let Some(s) = cfg.pointer("/process/scheduler") else { return };
    let want = match s.get("policy").and_then(|v| v.as_str()).unwrap_or("") {
        "SCHED_OTHER" => 0,
        "SCHED_FIFO" => 1,
        "SCHED_RR" => 2,
        "SCHED_BATCH" => 3,
        "SCHED_ISO" => 4,
        "SCHED_IDLE" => 5,
        "SCHED_DEADLINE" => 6,
        _ => -1,
    };
    let got = unsafe { libc::sched_getscheduler(0) } & !0x4000_0000;
    t.ok(got == want, "process.scheduler.policy", format!("got {got}, want {want}"));
    if let Some(nice) = s.get("nice").and_then(|v| v.as_i64()) {
        let got = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) } as i64;
        t.ok(got == nice, "process.scheduler.nice", format!("got {got}, want {nice}"));
    }
    if let Some(p) = s.get("priority").and_then(|v| v.as_i64()) {
        let mut sp = libc::sched_param { sched_priority: 0 };
        unsafe { libc::sched_getparam(0, &mut sp) };
        t.ok(sp.sched_priority as i64 == p, "process.scheduler.priority", format!("got {}, want {p}", sp.sched_priority));
    }
}

fn check_root(cfg: &Value, t: &mut Tap) {
    let want = cfg.pointer("/root/readonly").and_then(|v| v.as_bool()).unwrap_or(false);
    let got = statvfs_ro("/");
    t.ok(got == Some(want), &format!("root.readonly = {want}"), format!("statvfs(/) read-only: {got:?}"));
    if want {
        let c = cstr("/rtt-write-probe");
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644) };
        let e = errno();
        if fd >= 0 {
            unsafe { libc::close(fd) };
        }
        t.ok(fd < 0 && e == libc::EROFS, "writing to a read-only root fails with EROFS", format!("open returned {fd}, errno {e}"));
    }
}

fn check_hostname(cfg: &Value, t: &mut Tap) {
    let Some(h) = cfg.get("hostname").and_then(|v| v.as_str()) else { return };
    let got = uname().0;
    t.ok(got == h, "hostname", format!("got {got:?}, want {h:?}"));
}

fn check_domainname(cfg: &Value, t: &mut Tap) {
    let Some(h) = cfg.get("domainname").and_then(|v| v.as_str()) else { return };
    let got = uname().1;
    t.ok(got == h, "domainname", format!("got {got:?}, want {h:?}"));
}

fn check_mounts(cfg: &Value, t: &mut Tap) {
    let Some(mounts) = cfg.get("mounts").and_then(|v| v.as_array()) else { return };
    let mi = mountinfo();
    for m in mounts {
        let dest = clean(m.get("destination").and_then(|v| v.as_str()).unwrap_or(""));
        let ty = m.get("type").and_then(|v| v.as_str()).unwrap_or("");
        let opts: Vec<&str> = m.get("options").and_then(|v| v.as_array()).into_iter().flatten().filter_map(|o| o.as_str()).collect();
        let is_bind = ty == "bind" || opts.iter().any(|o| *o == "bind" || *o == "rbind");
        // the last entry for a mount point is the visible one
        let found = mi.iter().rev().find(|e| e.mount_point == dest);
        if ty == "cgroup" || ty == "cgroup2" {
            // v1: a tmpfs with one cgroup mount per controller below it; v2: cgroup2
            let ok = mi.iter().any(|e| (e.mount_point == dest || e.mount_point.starts_with(&format!("{dest}/")))
                && (e.fstype == "cgroup" || e.fstype == "cgroup2"));
            t.ok(ok, &format!("mount {dest} ({ty})"), "no cgroup filesystem mounted there");
            continue;
        }
        let Some(e) = found else {
            t.ok(false, &format!("mount {dest}"), "not in /proc/self/mountinfo");
            continue;
        };
        if !is_bind && !ty.is_empty() {
            t.ok(e.fstype == ty, &format!("mount {dest} type {ty}"), format!("fstype is {}", e.fstype));
        } else {
            t.ok(true, &format!("mount {dest} (bind)"), "");
        }
        let mo: Vec<&str> = e.mount_opts.split(',').collect();
        for flag in ["ro", "nosuid", "nodev", "noexec"] {
            if opts.contains(&flag) {
                t.ok(mo.contains(&flag), &format!("mount {dest} option {flag}"), format!("mount options {}", e.mount_opts));
            }
        }
        if opts.contains(&"rw") && !opts.contains(&"ro") {
            t.ok(mo.contains(&"rw"), &format!("mount {dest} option rw"), format!("mount options {}", e.mount_opts));
        }
    }
}

fn check_masked(cfg: &Value, t: &mut Tap) {
    let Some(paths) = cfg.pointer("/linux/maskedPaths").and_then(|v| v.as_array()) else { return };
    for p in paths.iter().filter_map(|p| p.as_str()) {
        let md = match fs::metadata(p) {
            Ok(m) => m,
            Err(_) => {
                t.ok(true, &format!("masked path {p} (absent)"), "");
                continue;
            }
        };
        if md.is_dir() {
            let n = fs::read_dir(p).map(|d| d.count()).unwrap_or(0);
            t.ok(n == 0, &format!("masked directory {p} is empty"), format!("{n} entries visible"));
        } else {
            let got = fs::read(p);
            let ok = match &got {
                Ok(b) => b.is_empty(),
                Err(e) => e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EPERM),
            };
            t.ok(ok, &format!("masked file {p} reads nothing"), format!("read: {:?}", got.map(|b| b.len())));
        }
    }
}

fn check_readonly(cfg: &Value, t: &mut Tap) {
    let Some(paths) = cfg.pointer("/linux/readonlyPaths").and_then(|v| v.as_array()) else { return };
    for p in paths.iter().filter_map(|p| p.as_str()) {
        if fs::symlink_metadata(p).is_err() {
            t.ok(true, &format!("readonly path {p} (absent)"), "");
            continue;
        }
        let ro = statvfs_ro(p);
        t.ok(ro == Some(true), &format!("readonly path {p} is read-only"), format!("statvfs read-only: {ro:?}"));
    }
}

fn check_devices(cfg: &Value, t: &mut Tap) {
    for d in cfg.pointer("/linux/devices").and_then(|v| v.as_array()).into_iter().flatten() {
        let path = d.get("path").and_then(|v| v.as_str()).unwrap_or("");
        let md = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                t.ok(false, &format!("device {path}"), format!("{e}"));
                continue;
            }
        };
        let ty = d.get("type").and_then(|v| v.as_str()).unwrap_or("");
        let ft = md.file_type();
        let type_ok = match ty {
            "c" | "u" => ft.is_char_device(),
            "b" => ft.is_block_device(),
            "p" => ft.is_fifo(),
            _ => false,
        };
        t.ok(type_ok, &format!("device {path} type {ty}"), format!("file type {ft:?}"));
        if ty != "p" {
            let rdev = md.rdev();
            let (ma, mi) = (libc::major(rdev) as i64, libc::minor(rdev) as i64);
            let wma = d.get("major").and_then(|v| v.as_i64()).unwrap_or(-1);
            let wmi = d.get("minor").and_then(|v| v.as_i64()).unwrap_or(-1);
            t.ok(ma == wma && mi == wmi, &format!("device {path} is {wma}:{wmi}"), format!("got {ma}:{mi}"));
        }
        if let Some(mode) = d.get("fileMode").and_then(|v| v.as_u64()) {
            t.ok(md.mode() as u64 & 0o777 == mode & 0o777, &format!("device {path} fileMode {mode:o}"), format!("got {:o}", md.mode() & 0o7777));
        }
        if let Some(uid) = d.get("uid").and_then(|v| v.as_u64()) {
            t.ok(md.uid() as u64 == uid, &format!("device {path} uid {uid}"), format!("got {}", md.uid()));
        }
        if let Some(gid) = d.get("gid").and_then(|v| v.as_u64()) {
            t.ok(md.gid() as u64 == gid, &format!("device {path} gid {gid}"), format!("got {}", md.gid()));
        }
    }
    // The default devices every Linux container has (config-linux.md "Default Devices").
    let has_dev = cfg.get("mounts").and_then(|v| v.as_array()).map(|m| {
        m.iter().any(|m| m.get("destination").and_then(|d| d.as_str()) == Some("/dev"))
    });
    if has_dev != Some(true) {
        return;
    }
    for (p, ma, mi) in [("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
        ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0)] {
        let ok = fs::metadata(p).map(|m| m.file_type().is_char_device()
            && libc::major(m.rdev()) == ma && libc::minor(m.rdev()) == mi).unwrap_or(false);
        t.ok(ok, &format!("default device {p} ({ma}:{mi})"), "missing or wrong");
    }
    t.ok(fs::symlink_metadata("/dev/ptmx").is_ok(), "default device /dev/ptmx", "missing");
    for (p, target) in [("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"), ("/dev/stderr", "/proc/self/fd/2")] {
        let got = fs::read_link(p).map(|l| l.display().to_string());
        t.ok(got.as_deref().ok() == Some(target), &format!("default symlink {p} -> {target}"), format!("got {got:?}"));
    }
}

fn check_sysctl(cfg: &Value, t: &mut Tap) {
    let Some(s) = cfg.pointer("/linux/sysctl").and_then(|v| v.as_object()) else { return };
    for (k, v) in s {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        let got = read(&path).map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "));
        let want = v.as_str().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ");
        t.ok(got.as_deref() == Some(want.as_str()), &format!("sysctl {k}"), format!("got {got:?}, want {want:?}"));
    }
}

fn try_syscall(name: &str) -> Option<(i64, i32)> {
    let r = unsafe {
        match name {
            "getcwd" => {
                let mut buf = [0u8; 256];
                libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len())
            }
            "mkdir" => libc::syscall(libc::SYS_mkdir, c"/tmp/rtt-seccomp-probe".as_ptr(), 0o755),
            "mkdirat" => libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, c"/tmp/rtt-seccomp-probe".as_ptr(), 0o755),
            "chroot" => libc::syscall(libc::SYS_chroot, c"/".as_ptr()),
            "sync" => libc::syscall(libc::SYS_sync),
            "getpriority" => libc::syscall(libc::SYS_getpriority, 0, 0),
            _ => return None,
        }
    };
    Some((r, if r < 0 { errno() } else { 0 }))
}

fn check_seccomp(cfg: &Value, t: &mut Tap) {
    let Some(sc) = cfg.pointer("/linux/seccomp") else { return };
    let mode = status_field("Seccomp");
    t.ok(mode.as_deref() == Some("2"), "a seccomp filter is installed", format!("Seccomp: {mode:?}"));
    for rule in sc.get("syscalls").and_then(|v| v.as_array()).into_iter().flatten() {
        let action = rule.get("action").and_then(|v| v.as_str()).unwrap_or("");
        if rule.get("args").and_then(|a| a.as_array()).map(|a| !a.is_empty()).unwrap_or(false) {
            continue;
        }
        let expect_errno = match action {
            "SCMP_ACT_ERRNO" => rule.get("errnoRet").and_then(|v| v.as_i64()).unwrap_or(libc::EPERM as i64) as i32,
            // seccomp_notify: the driver answers every notification with EXDEV
            "SCMP_ACT_NOTIFY" => libc::EXDEV,
            _ => continue,
        };
        for n in rule.get("names").and_then(|v| v.as_array()).into_iter().flatten().filter_map(|v| v.as_str()) {
            if let Some((r, e)) = try_syscall(n) {
                t.ok(r == -1 && e == expect_errno, &format!("seccomp {action} {n} fails with errno {expect_errno}"),
                    format!("returned {r}, errno {e}"));
            }
        }
    }
    let _ = fs::remove_dir("/tmp/rtt-seccomp-probe");
}

fn check_propagation(cfg: &Value, t: &mut Tap) {
    let Some(p) = cfg.pointer("/linux/rootfsPropagation").and_then(|v| v.as_str()) else { return };
    let mi = mountinfo();
    let Some(root) = mi.iter().rev().find(|e| e.mount_point == "/") else {
        t.ok(false, "rootfsPropagation", "no / in mountinfo");
        return;
    };
    let shared = root.optional.iter().any(|o| o.starts_with("shared:"));
    let slave = root.optional.iter().any(|o| o.starts_with("master:"));
    let unbindable = root.optional.iter().any(|o| o == "unbindable");
    let ok = match p.trim_start_matches('r') {
        "shared" => shared,
        // MS_SLAVE on a mount with no peers (the bundle on a private host
        // mount) leaves it private: no master is not an error then.
        "slave" => !shared && !unbindable,
        "private" => !shared && !slave && !unbindable,
        "unbindable" => unbindable,
        _ => false,
    };
    t.ok(ok, &format!("rootfsPropagation {p}"), format!("optional fields of /: {:?}", root.optional));
}

fn check_idmap(cfg: &Value, t: &mut Tap) {
    let Some(want) = cfg.pointer("/annotations/rtt.idmap.expect-uid").and_then(|v| v.as_str()) else { return };
    for m in cfg.get("mounts").and_then(|v| v.as_array()).into_iter().flatten() {
        if m.get("uidMappings").is_none() {
            continue;
        }
        let dest = m.get("destination").and_then(|v| v.as_str()).unwrap_or("");
        let f = format!("{dest}/owned-by-root");
        let got = fs::metadata(&f).map(|m| m.uid().to_string());
        t.ok(got.as_deref().ok() == Some(want), &format!("idmapped mount {dest}: on-disk uid 0 is seen as {want}"), format!("got {got:?}"));
    }
}

fn parse_map(s: &str) -> Vec<(u64, u64, u64)> {
    let mut v: Vec<(u64, u64, u64)> = s.lines().filter_map(|l| {
        let f: Vec<u64> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        (f.len() == 3).then(|| (f[0], f[1], f[2]))
    }).collect();
    v.sort();
    v
}

fn check_uidmap(cfg: &Value, t: &mut Tap) {
    let userns = cfg.pointer("/linux/namespaces").and_then(|v| v.as_array()).map(|a| {
        a.iter().any(|n| n.get("type").and_then(|t| t.as_str()) == Some("user") && n.get("path").is_none())
    });
    if userns != Some(true) {
        return;
    }
    for (key, file) in [("uidMappings", "/proc/self/uid_map"), ("gidMappings", "/proc/self/gid_map")] {
        let Some(m) = cfg.pointer(&format!("/linux/{key}")).and_then(|v| v.as_array()) else { continue };
        let mut want: Vec<(u64, u64, u64)> = m.iter().map(|e| (
            e.get("containerID").and_then(|v| v.as_u64()).unwrap_or(0),
            e.get("hostID").and_then(|v| v.as_u64()).unwrap_or(0),
            e.get("size").and_then(|v| v.as_u64()).unwrap_or(0))).collect();
        want.sort();
        let got = parse_map(&read(file).unwrap_or_default());
        t.ok(got == want, &format!("linux.{key}"), format!("{file} is {got:?}, want {want:?}"));
    }
}

fn check_timens(cfg: &Value, t: &mut Tap) {
    let Some(off) = cfg.pointer("/linux/timeOffsets").and_then(|v| v.as_object()) else { return };
    let got = read("/proc/self/timens_offsets").unwrap_or_default();
    for (clock, v) in off {
        let secs = v.get("secs").and_then(|v| v.as_i64()).unwrap_or(0);
        let ns = v.get("nanosecs").and_then(|v| v.as_i64()).unwrap_or(0);
        let line = got.lines().find(|l| l.split_whitespace().next() == Some(clock.as_str())).unwrap_or("");
        let f: Vec<i64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
        t.ok(f == [secs, ns], &format!("linux.timeOffsets.{clock}"), format!("timens_offsets line {line:?}, want {secs} {ns}"));
    }
}

/// Find a cgroup interface file of this process from inside the container.
fn cgroup_file(controller: &str, v1: &str, v2: &str) -> Option<String> {
    let own = read("/proc/self/cgroup").unwrap_or_default();
    let mut cands = Vec::new();
    for l in own.lines() {
        let f: Vec<&str> = l.splitn(3, ':').collect();
        if f.len() != 3 {
            continue;
        }
        if f[0] == "0" && f[1].is_empty() {
            for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                cands.push(format!("{base}{}/{v2}", f[2].trim_end_matches('/')));
                cands.push(format!("{base}/{v2}"));
            }
        } else if f[1].split(',').any(|c| c == controller) {
            let dir = format!("/sys/fs/cgroup/{}", f[1]);
            cands.push(format!("{dir}{}/{v1}", f[2].trim_end_matches('/')));
            cands.push(format!("{dir}/{v1}"));
            cands.push(format!("/sys/fs/cgroup/{controller}/{v1}"));
        }
    }
    cands.into_iter().find(|c| fs::metadata(c).is_ok())
}

fn check_cgroup(cfg: &Value, t: &mut Tap) {
    let Some(res) = cfg.pointer("/linux/resources") else { return };
    if fs::metadata("/sys/fs/cgroup").map(|m| m.is_dir()).unwrap_or(false)
        && fs::read_dir("/sys/fs/cgroup").map(|d| d.count()).unwrap_or(0) == 0 {
        return;
    }
    if let Some(limit) = res.pointer("/memory/limit").and_then(|v| v.as_i64()) {
        match cgroup_file("memory", "memory.limit_in_bytes", "memory.max") {
            Some(f) => {
                let got = read(&f).unwrap_or_default().trim().to_string();
                t.ok(got == limit.to_string(), "memory limit seen from inside", format!("{f} is {got}, want {limit}"));
            }
            None => t.skip("memory limit seen from inside", "no memory cgroup file visible"),
        }
    }
    if let Some(limit) = res.pointer("/pids/limit").and_then(|v| v.as_i64()) {
        match cgroup_file("pids", "pids.max", "pids.max") {
            Some(f) => {
                let got = read(&f).unwrap_or_default().trim().to_string();
                let want = if limit <= 0 { "max".to_string() } else { limit.to_string() };
                t.ok(got == want, "pids limit seen from inside", format!("{f} is {got}, want {want}"));
            }
            None => t.skip("pids limit seen from inside", "no pids cgroup file visible"),
        }
    }
    if let Some(q) = res.pointer("/cpu/quota").and_then(|v| v.as_i64()) {
        match cgroup_file("cpu", "cpu.cfs_quota_us", "cpu.max") {
            Some(f) => {
                let got = read(&f).unwrap_or_default();
                let first = got.split_whitespace().next().unwrap_or("").to_string();
                t.ok(first == q.to_string(), "cpu quota seen from inside", format!("{f} is {got:?}, want {q}"));
            }
            None => t.skip("cpu quota seen from inside", "no cpu cgroup file visible"),
        }
    }
}

/// Device cgroup enforcement as seen from inside. The driver describes the
/// expected outcome in the annotation `rtt.devaccess`:
/// `PATH:r|w:ok|EPERM,...`.
fn check_devaccess(cfg: &Value, t: &mut Tap) {
    let Some(spec) = cfg.pointer("/annotations/rtt.devaccess").and_then(|v| v.as_str()) else { return };
    for item in spec.split(',') {
        let f: Vec<&str> = item.split(':').collect();
        if f.len() != 3 {
            continue;
        }
        let flags = if f[1] == "w" { libc::O_WRONLY } else { libc::O_RDONLY };
        let c = cstr(f[0]);
        let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_NONBLOCK | libc::O_CLOEXEC) };
        let e = errno();
        if fd >= 0 {
            unsafe { libc::close(fd) };
        }
        let ok = match f[2] {
            // the device may not exist behind the node: only EPERM is a denial
            "ok" => fd >= 0 || (e != libc::EPERM && e != libc::EACCES),
            _ => fd < 0 && e == libc::EPERM,
        };
        t.ok(ok, &format!("open({}, {}) is {}", f[0], f[1], f[2]), format!("open returned {fd}, errno {e}"));
    }
}
