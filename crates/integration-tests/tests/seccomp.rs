//! `linux.seccomp` observed from inside the container (project issue 7):
//! the `-ENOSYS` answer for syscalls newer than a deny-by-default profile,
//! every action, the filter flags, `defaultErrnoRet` and each argument
//! operator. The container runs `seccomp-probe` (probe/seccomp-probe.c, a
//! static helper that makes raw syscalls and prints `ret=R errno=E`). Every
//! test also runs against runc (`SKIFF_BIN=/usr/sbin/runc`); where runc
//! 1.1.5 or crun 1.8.1 differ the README's table says so.
//!
//! Syscall numbers are x86_64's (the tests' host); the rules use a syscall
//! nothing else in the container makes, `getpriority(which, who)`, which
//! returns 20 (nice 0) for `(0, 0)` and has no side effect.

use serde_json::{json, Value};
use skiff_integration_tests::*;
use std::fs;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

const GETPRIORITY: i64 = libc::SYS_getpriority;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

fn probe_env(name: &str) -> TestEnv {
    let env = TestEnv::new(name);
    env.install_probe();
    env
}

/// Default ALLOW with one rule on getpriority.
fn one_rule(action: &str, extra: Value) -> Value {
    let mut rule = json!({"names": ["getpriority"], "action": action});
    for (k, v) in extra.as_object().into_iter().flatten() {
        rule[k] = v.clone();
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
}

/// `seccomp-probe sys getpriority 0 0`.
fn getpriority() -> String {
    format!("{PROBE} sys {GETPRIORITY} 0 0")
}

/// The lines the probe printed.
fn lines(out: &Output) -> Vec<&str> {
    out.stdout.lines().map(str::trim).filter(|l| !l.is_empty()).collect()
}

/// Runs `script` under `profile`; returns the output (checked to succeed).
#[track_caller]
fn run_with(env: &mut TestEnv, profile: Value, script: &str) -> Output {
    env.config["linux"]["seccomp"] = profile;
    let out = env.run_sh(script);
    out.ok();
    out
}

/// The seccomp profile of upstream runtime-tools' default config: default
/// SCMP_ACT_ERRNO, 310 names of which `statx` (332) is the largest on
/// x86_64; no `clone3` (435).
fn upstream_seccomp() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../runtime-tools-tests/upstream/default-config.json");
    let cfg: Value = serde_json::from_slice(&fs::read(p).expect("upstream fixture")).unwrap();
    cfg["linux"]["seccomp"].clone()
}

fn names_of(profile: &Value) -> Vec<String> {
    profile["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["names"].as_array().unwrap().iter())
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

/// The upstream profile with getpriority moved to its own SCMP_ACT_ERRNO
/// rule (named, below the largest, denied).
fn deny_profile() -> Value {
    let mut s = upstream_seccomp();
    for rule in s["syscalls"].as_array_mut().unwrap() {
        rule["names"].as_array_mut().unwrap().retain(|n| n != "getpriority");
    }
    s["syscalls"]
        .as_array_mut()
        .unwrap()
        .push(json!({"names": ["getpriority"], "action": "SCMP_ACT_ERRNO"}));
    let names = names_of(&s);
    for absent in ["clone3", "sysfs", "io_pgetevents"] {
        assert!(!names.iter().any(|n| n == absent), "the fixture names {absent}");
    }
    assert_eq!(s["defaultAction"], "SCMP_ACT_ERRNO");
    s
}

/// A deny-by-default profile without clone3: clone3 and any number above
/// the largest named one (statx, 332) fail with ENOSYS; a named but denied
/// syscall and an unnamed lower one fail with the default EPERM; allowed
/// ones work.
#[test]
fn enosys_for_syscalls_above_the_profile() {
    require_root!();
    let mut env = probe_env("seccomp-enosys");
    let calls = [
        format!("sys {} 0 0", libc::SYS_clone3),
        format!("sys {}", libc::SYS_statx + 1),
        "sys 1000".to_string(),
        format!("sys {GETPRIORITY} 0 0"),
        format!("sys {} 0 0 0", libc::SYS_sysfs),
        format!("sys {}", libc::SYS_getpid),
    ];
    let script: Vec<String> = calls.iter().map(|c| format!("{PROBE} {c}")).collect();
    let out = run_with(&mut env, deny_profile(), &script.join("; "));
    let enosys = format!("ret=-1 errno={}", libc::ENOSYS);
    let eperm = format!("ret=-1 errno={}", libc::EPERM);
    let want = [&enosys, &enosys, &enosys, &eperm, &eperm];
    let got = lines(&out);
    assert_eq!(got.len(), 6, "{}", out.describe());
    for (i, w) in want.iter().enumerate() {
        assert_eq!(got[i], w.as_str(), "{}: {}", calls[i], out.describe());
    }
    // getpid in the container's pid namespace: sh is 1, the probe above it.
    assert!(got[5].starts_with("ret=") && !got[5].starts_with("ret=-1"), "{}", out.describe());
}

/// Without `architectures` the filter still covers the native one, and so
/// does the stub.
#[test]
fn enosys_without_architectures() {
    require_root!();
    let mut env = probe_env("seccomp-enosys-noarch");
    let mut s = deny_profile();
    s.as_object_mut().unwrap().remove("architectures");
    let script = format!("{PROBE} sys {} 0 0; {PROBE} sys {} 0 0 0", libc::SYS_clone3, libc::SYS_sysfs);
    let out = run_with(&mut env, s, &script);
    assert_eq!(
        lines(&out),
        [format!("ret=-1 errno={}", libc::ENOSYS), format!("ret=-1 errno={}", libc::EPERM)],
        "{}",
        out.describe()
    );
}

/// `defaultErrnoRet` is the default's errno; the ENOSYS stub still answers
/// above the largest named syscall.
#[test]
fn default_errno_ret() {
    require_root!();
    let mut env = probe_env("seccomp-default-errno");
    let mut s = deny_profile();
    s["defaultErrnoRet"] = json!(libc::EDOM);
    let script = format!(
        "{PROBE} sys {} 0 0 0; {PROBE} sys {} 0 0",
        libc::SYS_sysfs,
        libc::SYS_clone3
    );
    let out = run_with(&mut env, s, &script);
    assert_eq!(
        lines(&out),
        [format!("ret=-1 errno={}", libc::EDOM), format!("ret=-1 errno={}", libc::ENOSYS)],
        "{}",
        out.describe()
    );
}

/// With SCMP_ACT_KILL_PROCESS as the default, an unnamed lower syscall
/// kills, a syscall above the profile gets ENOSYS (the stub applies to any
/// denying default).
#[test]
fn kill_default_still_enosys_above_the_profile() {
    require_root!();
    let mut env = probe_env("seccomp-kill-default");
    let mut s = deny_profile();
    s["defaultAction"] = json!("SCMP_ACT_KILL_PROCESS");
    let script = format!(
        "{PROBE} sys {} 0 0; {PROBE} sys {} 0 0 0; echo rc=$?",
        libc::SYS_clone3,
        libc::SYS_sysfs
    );
    let out = run_with(&mut env, s, &script);
    assert_eq!(
        lines(&out),
        [format!("ret=-1 errno={}", libc::ENOSYS), format!("rc={}", 128 + libc::SIGSYS)],
        "{}",
        out.describe()
    );
}

/// SCMP_ACT_ERRNO with errnoRet, and errnoRet 0 (the call "succeeds"
/// without running); without errnoRet: EPERM.
#[test]
fn errno_action_with_errno_ret() {
    require_root!();
    let mut env = probe_env("seccomp-errno");
    for (extra, want) in [
        (json!({"errnoRet": libc::EDOM}), format!("ret=-1 errno={}", libc::EDOM)),
        (json!({}), format!("ret=-1 errno={}", libc::EPERM)),
        (json!({"errnoRet": 0}), "ret=0 errno=0".to_string()),
    ] {
        let out = run_with(&mut env, one_rule("SCMP_ACT_ERRNO", extra.clone()), &getpriority());
        assert_eq!(lines(&out), [want.as_str()], "{extra}: {}", out.describe());
    }
}

/// SCMP_ACT_ALLOW and SCMP_ACT_LOG run the syscall (getpriority → 20).
#[test]
fn allow_and_log_run_the_syscall() {
    require_root!();
    let mut env = probe_env("seccomp-allow-log");
    for action in ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG"] {
        let mut s = one_rule(action, json!({}));
        s["defaultAction"] = json!("SCMP_ACT_ERRNO");
        // Under a deny default, the rest of the upstream list keeps sh alive.
        let upstream = deny_profile();
        let allowed = upstream["syscalls"].as_array().unwrap().iter();
        s["syscalls"]
            .as_array_mut()
            .unwrap()
            .extend(allowed.filter(|r| r["action"] == "SCMP_ACT_ALLOW").cloned());
        let out = run_with(&mut env, s, &getpriority());
        assert_eq!(lines(&out), ["ret=20 errno=0"], "{action}: {}", out.describe());
    }
}

/// SCMP_ACT_TRACE without a tracer: the kernel fails the call with ENOSYS.
#[test]
fn trace_without_tracer_is_enosys() {
    require_root!();
    let mut env = probe_env("seccomp-trace");
    let out = run_with(&mut env, one_rule("SCMP_ACT_TRACE", json!({"errnoRet": 7})), &getpriority());
    assert_eq!(lines(&out), [format!("ret=-1 errno={}", libc::ENOSYS)], "{}", out.describe());
}

/// SCMP_ACT_TRAP: SIGSYS with si_code SYS_SECCOMP (1), the syscall number
/// and the architecture; the process goes on.
#[test]
fn trap_sends_sigsys() {
    require_root!();
    let mut env = probe_env("seccomp-trap");
    let script = format!("{PROBE} trap {GETPRIORITY} 0 0; echo rc=$?");
    let out = run_with(&mut env, one_rule("SCMP_ACT_TRAP", json!({})), &script);
    let got = lines(&out);
    let want = format!("sigsys code=1 syscall={GETPRIORITY} errno=0 arch={AUDIT_ARCH_X86_64:#x}");
    assert_eq!(got.first().copied(), Some(want.as_str()), "{}", out.describe());
    assert_eq!(got.last().copied(), Some("rc=0"), "{}", out.describe());
}

/// The kill actions, with the call made in a second thread: KILL_THREAD
/// (and SCMP_ACT_KILL, its old name) ends that thread only, KILL_PROCESS the
/// whole process (SIGSYS); a single-threaded caller dies of SIGSYS either way.
#[test]
fn kill_thread_and_kill_process() {
    require_root!();
    let mut env = probe_env("seccomp-kill");
    let sigsys = format!("rc={}", 128 + libc::SIGSYS);
    let script = format!(
        "{PROBE} thread {GETPRIORITY} 0 0; echo rc=$?; {PROBE} sys {GETPRIORITY} 0 0; echo rc=$?"
    );
    for (action, threaded) in [
        ("SCMP_ACT_KILL", vec!["main-alive", "rc=0"]),
        ("SCMP_ACT_KILL_THREAD", vec!["main-alive", "rc=0"]),
        ("SCMP_ACT_KILL_PROCESS", vec![sigsys.as_str()]),
    ] {
        let out = run_with(&mut env, one_rule(action, json!({})), &script);
        let mut want = threaded.clone();
        want.push(&sigsys);
        assert_eq!(lines(&out), want, "{action}: {}", out.describe());
    }
}

/// The filter is installed once, in filter mode: `Seccomp: 2`,
/// `Seccomp_filters: 1` (the ENOSYS stub is part of the same program).
#[test]
fn proc_status_shows_one_filter() {
    require_root!();
    let mut env = probe_env("seccomp-status");
    let out = run_with(&mut env, deny_profile(), &format!("{PROBE} status"));
    assert_eq!(lines(&out), ["Seccomp:\t2", "Seccomp_filters:\t1"], "{}", out.describe());
}

/// Runs `script` with a notify rule on getpriority and an agent that
/// answers with `answer`; returns the output and what the agent saw.
fn run_with_agent(
    env: &mut TestEnv,
    flags: &[&str],
    script: &str,
    before: impl Fn(usize, &Notification) + Send + 'static,
    answer: impl Fn(usize) -> Answer + Send + 'static,
) -> (Output, Vec<Notification>) {
    let sock = env.dir.join("agent.sock");
    let _ = fs::remove_file(&sock);
    let rx = spawn_fd_receiver(UnixListener::bind(&sock).unwrap(), Duration::from_secs(20));
    let agent = spawn_notify_agent(rx, Duration::from_secs(20), before, answer);
    let mut s = one_rule("SCMP_ACT_NOTIFY", json!({}));
    s["listenerPath"] = json!(sock);
    s["flags"] = json!(flags);
    env.config["linux"]["seccomp"] = s;
    env.timeout = Duration::from_secs(20);
    let out = env.run_sh(script);
    let seen = agent.join().unwrap();
    let seen = seen.unwrap_or_else(|e| panic!("agent: {e}\n{}", out.describe()));
    (out, seen)
}

/// SCMP_ACT_NOTIFY: the agent on listenerPath gets the fd, sees the call
/// (pid, number, arguments, architecture) and answers it: first with an
/// errno, then with SECCOMP_USER_NOTIF_FLAG_CONTINUE (the real call runs).
#[test]
fn notify_agent_answers() {
    require_root!();
    let mut env = probe_env("seccomp-notify");
    let script = format!("{PROBE} sys {GETPRIORITY} 0 7; {PROBE} sys {GETPRIORITY} 0 0");
    let (out, seen) = run_with_agent(
        &mut env,
        &[],
        &script,
        |_, _| {},
        |n| if n == 0 { Answer::Errno(libc::EDOM) } else { Answer::Continue },
    );
    out.ok();
    assert_eq!(
        lines(&out),
        [format!("ret=-1 errno={}", libc::EDOM).as_str(), "ret=20 errno=0"],
        "{}",
        out.describe()
    );
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (n, who) in seen.iter().zip([7, 0]) {
        assert_eq!(n.nr as i64, GETPRIORITY, "{n:?}");
        assert_eq!(n.arch, AUDIT_ARCH_X86_64, "{n:?}");
        assert_eq!(&n.args[..2], &[0, who], "{n:?}");
        assert!(n.pid > 1 && n.still_valid, "{n:?}");
    }
}

/// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: once the agent has received the
/// notification, a non-fatal signal no longer interrupts the wait (the id
/// stays valid and the agent's answer arrives). Without the flag the same
/// signal cancels the notification and the call fails with EINTR.
#[test]
fn wait_killable_recv_flag() {
    require_root!();
    let signal_target = |_: usize, n: &Notification| {
        // SAFETY: kill with a pid the kernel reported for the waiting task.
        unsafe { libc::kill(n.pid as i32, libc::SIGUSR1) };
        std::thread::sleep(Duration::from_millis(300));
    };
    let script = format!("{PROBE} usr1 {GETPRIORITY} 0 0");
    let mut env = probe_env("seccomp-wait-killable");
    let (out, seen) = run_with_agent(
        &mut env,
        &["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        &script,
        signal_target,
        |_| Answer::Errno(libc::EDOM),
    );
    out.ok();
    assert_eq!(seen.len(), 1, "{seen:?}\n{}", out.describe());
    assert!(seen[0].still_valid, "the signal cancelled the notification: {seen:?}");
    assert_eq!(
        lines(&out),
        ["usr1".to_string(), format!("ret=-1 errno={}", libc::EDOM)],
        "{}",
        out.describe()
    );

    // The control: without the flag the signal interrupts the wait.
    let mut env = probe_env("seccomp-wait-interruptible");
    let (out, seen) = run_with_agent(&mut env, &[], &script, signal_target, |_| Answer::Errno(libc::EDOM));
    out.ok();
    assert!(!seen.is_empty() && !seen[0].still_valid, "{seen:?}");
    assert_eq!(
        lines(&out),
        ["usr1".to_string(), format!("ret=-1 errno={}", libc::EINTR)],
        "{}",
        out.describe()
    );
}

/// The kernel's audit records of seccomp actions for `pid` (from /dev/kmsg;
/// `None` when this kernel logs none at all, e.g. audit disabled).
fn audit_records(pid: i32, nr: i64) -> Option<Vec<String>> {
    let out = std::process::Command::new("dmesg").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.contains("type=1326") {
        return None;
    }
    let needle_pid = format!(" pid={pid} ");
    let needle_nr = format!(" syscall={nr} ");
    Some(
        text.lines()
            .filter(|l| l.contains("type=1326") && l.contains(&needle_pid) && l.contains(&needle_nr))
            .map(str::to_string)
            .collect(),
    )
}

/// Creates and starts a container running `args` under `profile`; returns
/// its host pid once it has exited.
fn run_detached(env: &mut TestEnv, profile: Value, args: &[&str]) -> i32 {
    env.config["linux"]["seccomp"] = profile;
    env.set_args(args);
    let id = env.new_id();
    env.create_id(&id, &[]).ok();
    let pid = env.state_id(&id)["pid"].as_i64().unwrap() as i32;
    env.start_id(&id).ok();
    env.wait_status_id(&id, "stopped", Duration::from_secs(10));
    pid
}

/// Runs the probe's getpriority under `profile` until the kernel's log has
/// an audit record of it: at most three tries, because the kernel
/// rate-limits the audit messages it prints (10 per 5 s) and other tests
/// log kills. `None`: this kernel logs no seccomp records at all.
fn logged_records(env: &mut TestEnv, profile: &Value) -> Option<(i32, Vec<String>)> {
    let nr = GETPRIORITY.to_string();
    let args = [PROBE, "sys", nr.as_str(), "0", "0"];
    let mut last = None;
    for attempt in 0..3 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(5));
        }
        let pid = run_detached(env, profile.clone(), &args);
        let mut records = None;
        wait_until(Duration::from_secs(2), || {
            records = audit_records(pid, GETPRIORITY);
            records.as_ref().is_some_and(|r| !r.is_empty())
        });
        last = Some((pid, records?));
        if last.as_ref().is_some_and(|(_, r)| !r.is_empty()) {
            break;
        }
    }
    last
}

/// SCMP_ACT_LOG is logged by the kernel; SECCOMP_FILTER_FLAG_LOG makes an
/// SCMP_ACT_ERRNO rule logged too, which it is not without the flag.
#[test]
fn log_action_and_log_flag_reach_the_audit_log() {
    require_root!();
    let mut env = probe_env("seccomp-log-flag");
    let Some((pid, records)) = logged_records(&mut env, &one_rule("SCMP_ACT_LOG", json!({}))) else {
        skip_message("SKIPPED seccomp::log_action_and_log_flag_reach_the_audit_log: the kernel logs no seccomp audit records here\n");
        return;
    };
    assert!(!records.is_empty(), "SCMP_ACT_LOG: no audit record for pid {pid}");

    let mut with_flag = one_rule("SCMP_ACT_ERRNO", json!({}));
    with_flag["flags"] = json!(["SECCOMP_FILTER_FLAG_LOG"]);
    let (pid, records) = logged_records(&mut env, &with_flag).expect("dmesg");
    assert!(!records.is_empty(), "SECCOMP_FILTER_FLAG_LOG: errno not logged for pid {pid}");

    let nr = GETPRIORITY.to_string();
    let args = [PROBE, "sys", nr.as_str(), "0", "0"];
    let pid = run_detached(&mut env, one_rule("SCMP_ACT_ERRNO", json!({})), &args);
    std::thread::sleep(Duration::from_secs(1));
    let records = audit_records(pid, GETPRIORITY).expect("dmesg");
    assert!(records.is_empty(), "errno logged without the flag: {records:?}");
}

/// SECCOMP_FILTER_FLAG_SPEC_ALLOW is accepted and the filter is in force
/// (whether the kernel would otherwise force the speculative store bypass
/// mitigation depends on the CPU and `spec_store_bypass_disable=`).
#[test]
fn spec_allow_flag_is_accepted() {
    require_root!();
    let mut env = probe_env("seccomp-spec-allow");
    let mut s = one_rule("SCMP_ACT_ERRNO", json!({"errnoRet": libc::EDOM}));
    s["flags"] = json!(["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]);
    let out = run_with(&mut env, s, &format!("{}; {PROBE} status", getpriority()));
    assert_eq!(
        lines(&out),
        [format!("ret=-1 errno={}", libc::EDOM).as_str(), "Seccomp:\t2", "Seccomp_filters:\t1"],
        "{}",
        out.describe()
    );
}

/// Each argument operator, on getpriority's second argument, against 99,
/// 100, 101 and 0x1_0000_0064 (the comparisons are 64-bit).
#[test]
fn argument_operators() {
    require_root!();
    let mut env = probe_env("seccomp-args");
    let values = ["99", "100", "101", "0x100000064"];
    let cases: [(&str, Value, [bool; 4]); 7] = [
        ("SCMP_CMP_NE", json!({"value": 100}), [true, false, true, true]),
        ("SCMP_CMP_LT", json!({"value": 100}), [true, false, false, false]),
        ("SCMP_CMP_LE", json!({"value": 100}), [true, true, false, false]),
        ("SCMP_CMP_EQ", json!({"value": 100}), [false, true, false, false]),
        ("SCMP_CMP_GE", json!({"value": 100}), [false, true, true, true]),
        ("SCMP_CMP_GT", json!({"value": 100}), [false, false, true, true]),
        // value is the mask, valueTwo what the masked argument must equal.
        ("SCMP_CMP_MASKED_EQ", json!({"value": 0xff, "valueTwo": 100}), [false, true, false, true]),
    ];
    let script: Vec<String> = values.iter().map(|v| format!("{PROBE} sys {GETPRIORITY} 0 {v}")).collect();
    let mut failures = Vec::new();
    for (op, arg, want) in cases {
        let mut a = arg.clone();
        a["index"] = json!(1);
        a["op"] = json!(op);
        let s = one_rule("SCMP_ACT_ERRNO", json!({"errnoRet": libc::EDOM, "args": [a]}));
        let out = run_with(&mut env, s, &script.join("; "));
        let got: Vec<bool> = lines(&out).iter().map(|l| l.ends_with(&format!("errno={}", libc::EDOM))).collect();
        if got != want {
            failures.push(format!("{op}: matched {got:?} for {values:?}, expected {want:?}\n{}", out.stdout));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Conditions on different arguments must all hold (AND); conditions that
/// repeat an argument index are alternatives (OR, as runc and Docker's
/// profiles have it).
#[test]
fn argument_conditions_and_or() {
    require_root!();
    let mut env = probe_env("seccomp-args-and-or");
    let edom = format!("errno={}", libc::EDOM);
    let matched = |out: &Output| -> Vec<bool> { lines(out).iter().map(|l| l.ends_with(&edom)).collect() };
    let calls = |pairs: &[(u32, u32)]| -> String {
        pairs.iter().map(|(w, v)| format!("{PROBE} sys {GETPRIORITY} {w} {v}")).collect::<Vec<_>>().join("; ")
    };

    let and = one_rule("SCMP_ACT_ERRNO", json!({"errnoRet": libc::EDOM, "args": [
        {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 100, "op": "SCMP_CMP_EQ"}]}));
    let out = run_with(&mut env, and, &calls(&[(0, 100), (1, 100), (0, 99)]));
    assert_eq!(matched(&out), [true, false, false], "AND: {}", out.describe());

    let or = one_rule("SCMP_ACT_ERRNO", json!({"errnoRet": libc::EDOM, "args": [
        {"index": 1, "value": 99, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 101, "op": "SCMP_CMP_EQ"}]}));
    let out = run_with(&mut env, or, &calls(&[(0, 99), (0, 100), (0, 101)]));
    assert_eq!(matched(&out), [true, false, true], "OR: {}", out.describe());
}
