//! runtime-tools-tests — skiff's own OCI runtime conformance suite.
//!
//! For every case the driver builds a bundle in a fresh directory (busybox
//! rootfs from scripts/mk-rootfs.sh, the static `rtt-checker` copied in as
//! /rtt-checker, the case's config.json also copied in as /rtt-config.json),
//! drives the runtime under test through its runc-style command line and
//! reports TAP. Each case runs in a child process of the driver (the same
//! binary, `--run-case`) under a time limit; whatever happens, the parent then
//! force-deletes every container the case created, unmounts and removes its
//! directory and removes its cgroups.
//!
//! Usage: runtime-tools-tests [--filter SUBSTR|=NAME]... [--list] [--expected FILE]
//!                            [--record FILE] [--timeout SECS] [--verbose]
//! Environment: RUNTIME (runtime binary), RTT_CHECKER (static checker binary),
//!              RTT_MKROOTFS (rootfs script).

mod cases;
mod common;
mod ctx;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Res {
    Pass,
    Fail,
    Skip,
}

impl Res {
    fn word(self) -> &'static str {
        match self {
            Res::Pass => "pass",
            Res::Fail => "fail",
            Res::Skip => "skip",
        }
    }
}

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn find_runtime() -> PathBuf {
    if let Ok(r) = std::env::var("RUNTIME") {
        if !r.is_empty() {
            return PathBuf::from(r);
        }
    }
    if let Ok(exe) = std::env::current_exe() {
        let p = exe.with_file_name("skiff");
        if p.exists() {
            return p;
        }
    }
    workspace_dir().join("target/debug/skiff")
}

/// True when the ELF file has no PT_INTERP program header (static binary).
fn is_static_elf(p: &Path) -> bool {
    let Ok(b) = fs::read(p) else { return false };
    if b.len() < 64 || &b[0..4] != b"\x7fELF" || b[4] != 2 {
        return false;
    }
    let u64at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let u16at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap());
    let phoff = u64at(0x20) as usize;
    let phentsize = u16at(0x36) as usize;
    let phnum = u16at(0x38) as usize;
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > b.len() {
            return false;
        }
        if u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) == 3 {
            return false; // PT_INTERP
        }
    }
    true
}

fn find_checker() -> Result<PathBuf, String> {
    let mut cands = Vec::new();
    if let Ok(c) = std::env::var("RTT_CHECKER") {
        cands.push(PathBuf::from(c));
    }
    if let Ok(exe) = std::env::current_exe() {
        let dir = exe.parent().unwrap().to_path_buf();
        let profile = dir.file_name().map(|s| s.to_os_string()).unwrap_or_default();
        cands.push(dir.join("rtt-checker"));
        if let Some(tgt) = dir.parent() {
            cands.push(tgt.join("x86_64-unknown-linux-gnu").join(&profile).join("rtt-checker"));
            for p in ["debug", "release"] {
                cands.push(tgt.join("x86_64-unknown-linux-gnu").join(p).join("rtt-checker"));
            }
        }
    }
    for c in &cands {
        if c.exists() && is_static_elf(c) {
            return Ok(c.clone());
        }
    }
    Err(format!(
        "no statically linked rtt-checker found (looked at {cands:?}); build it with \
         RUSTFLAGS='-C target-feature=+crt-static' cargo build -p runtime-tools-tests --bin rtt-checker \
         --target x86_64-unknown-linux-gnu, or set RTT_CHECKER"
    ))
}

struct Opts {
    filters: Vec<String>,
    list: bool,
    expected: Option<PathBuf>,
    record: Option<PathBuf>,
    timeout: u64,
    verbose: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: runtime-tools-tests [--filter SUBSTR]... [--list] [--expected FILE] [--record FILE] \
         [--timeout SECS] [--verbose]\n  RUNTIME=/path/to/runtime selects the runtime under test"
    );
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(|s| s.as_str()) == Some("--run-case") {
        // internal: run one case in this (child) process
        let name = args.get(2).cloned().unwrap_or_default();
        std::process::exit(ctx::run_case_child(&name));
    }
    let mut o = Opts { filters: vec![], list: false, expected: None, record: None, timeout: 120, verbose: false };
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_str();
        let mut val = || {
            i += 1;
            args.get(i).cloned().unwrap_or_else(|| usage())
        };
        match a {
            "--filter" => o.filters.push(val()),
            "--list" => o.list = true,
            "--expected" => o.expected = Some(PathBuf::from(val())),
            "--record" => o.record = Some(PathBuf::from(val())),
            "--timeout" => o.timeout = val().parse().unwrap_or_else(|_| usage()),
            "--verbose" | "-v" => o.verbose = true,
            "-h" | "--help" => usage(),
            _ => {
                if let Some(f) = a.strip_prefix("--filter=") {
                    o.filters.push(f.to_string());
                } else {
                    usage()
                }
            }
        }
        i += 1;
    }
    let selected: Vec<&cases::Case> = cases::CASES
        .iter()
        // --filter SUBSTR, or --filter =NAME for exactly one case
        .filter(|c| o.filters.is_empty() || o.filters.iter().any(|f| match f.strip_prefix('=') {
            Some(exact) => c.name == exact,
            None => c.name.contains(f.as_str()),
        }))
        .collect();
    if o.list {
        for c in &selected {
            println!("{}", c.name);
        }
        return;
    }
    std::process::exit(run_all(&o, &selected));
}

fn read_expected(p: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for l in fs::read_to_string(p).unwrap_or_default().lines() {
        let l = l.split('#').next().unwrap_or("").trim();
        let mut f = l.split_whitespace();
        if let (Some(n), Some(r)) = (f.next(), f.next()) {
            m.insert(n.to_string(), r.to_string());
        }
    }
    m
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn run_all(o: &Opts, selected: &[&cases::Case]) -> i32 {
    // SIGINT/SIGTERM: stop the running case, clean it up, then exit
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let runtime = find_runtime();
    let checker = match find_checker() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("runtime-tools-tests: {e}");
            return 2;
        }
    };
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("runtime-tools-tests: must run as root");
        return 2;
    }
    let top = PathBuf::from(format!("/tmp/rtt-{}", std::process::id()));
    let template = top.join("rootfs-template");
    fs::create_dir_all(&top).unwrap();
    let mkrootfs = std::env::var("RTT_MKROOTFS").map(PathBuf::from).unwrap_or_else(|_| workspace_dir().join("scripts/mk-rootfs.sh"));
    let st = Command::new("sh").arg(&mkrootfs).arg(&template).status();
    if !matches!(st, Ok(s) if s.success()) {
        eprintln!("runtime-tools-tests: {} failed", mkrootfs.display());
        let _ = fs::remove_dir_all(&top);
        return 2;
    }
    fs::copy(&checker, template.join("rtt-checker")).unwrap();
    let expected = o.expected.as_ref().map(|p| read_expected(p));
    let exe = std::env::current_exe().unwrap();
    println!("# runtime under test: {}", runtime.display());
    println!("# checker: {}", checker.display());
    if !runtime.exists() {
        println!("# WARNING: {} does not exist; every case will fail", runtime.display());
    }
    println!("1..{}", selected.len());
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut regressions = Vec::new();
    let mut recorded = Vec::new();
    for (n, c) in selected.iter().enumerate() {
        let n = n + 1;
        let idx = cases::CASES.iter().position(|x| x.name == c.name).unwrap();
        let dir = top.join(c.name);
        fs::create_dir_all(&dir).unwrap();
        let log = dir.with_extension("log");
        let cgprefix = format!("rtt-{}-{}", std::process::id(), idx);
        let started = Instant::now();
        let child = Command::new(&exe)
            .arg("--run-case")
            .arg(c.name)
            .env("RTT_RUNTIME", &runtime)
            .env("RTT_TEMPLATE", &template)
            .env("RTT_CASE_DIR", &dir)
            .env("RTT_CGPREFIX", &cgprefix)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn();
        let mut timed_out = false;
        match child {
            Ok(mut ch) => loop {
                if let Ok(Some(_)) = ch.try_wait() {
                    break;
                }
                let stop = INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst);
                if stop || started.elapsed() > Duration::from_secs(o.timeout) {
                    timed_out = !stop;
                    unsafe { libc::kill(-(ch.id() as i32), libc::SIGKILL) };
                    let _ = ch.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            },
            Err(e) => eprintln!("spawn {}: {e}", exe.display()),
        }
        let out = fs::read_to_string(&log).unwrap_or_default();
        let mut res = Res::Fail;
        let mut reason = String::new();
        for l in out.lines() {
            if let Some(r) = l.strip_prefix("RESULT ") {
                let (w, why) = r.split_once(' ').unwrap_or((r, ""));
                res = match w {
                    "pass" => Res::Pass,
                    "skip" => Res::Skip,
                    _ => Res::Fail,
                };
                reason = why.to_string();
            }
        }
        if timed_out {
            res = Res::Fail;
            reason = format!("timed out after {}s", o.timeout);
        }
        ctx::cleanup_case(&runtime, &dir, &cgprefix);
        ctx::check_dev_null(c.name);
        let _ = fs::remove_file(&log);
        let secs = started.elapsed().as_secs_f32();
        match res {
            Res::Pass => {
                passed += 1;
                println!("ok {n} - {} # {secs:.1}s", c.name);
            }
            Res::Skip => {
                skipped += 1;
                println!("ok {n} - {} # SKIP {reason}", c.name);
            }
            Res::Fail => {
                failed += 1;
                println!("not ok {n} - {}{}", c.name, if reason.is_empty() { String::new() } else { format!(" # {reason}") });
            }
        }
        if o.verbose || res == Res::Fail {
            for l in out.lines().filter(|l| !l.starts_with("RESULT ")) {
                if o.verbose || l.contains("not ok") || l.contains("error") || l.contains("stderr") {
                    println!("#   {l}");
                }
            }
        }
        recorded.push(format!("{} {}", c.name, res.word()));
        if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            println!("# interrupted");
            let _ = fs::remove_dir_all(&template);
            let _ = fs::remove_dir(&top);
            return 130;
        }
        if let Some(exp) = &expected {
            if exp.get(c.name).map(|s| s.as_str()) == Some("pass") && res != Res::Pass {
                regressions.push(c.name);
            }
        }
    }
    let _ = fs::remove_dir_all(&template);
    let _ = fs::remove_dir(&top);
    if let Some(r) = &o.record {
        let body = format!(
            "# conformance expectations for {} (regenerate with --record)\n{}\n",
            runtime.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            recorded.join("\n")
        );
        if let Err(e) = fs::write(r, body) {
            eprintln!("write {}: {e}", r.display());
        }
    }
    if let Some(exp) = &expected {
        for (n, r) in exp {
            if r == "pass" && !selected.iter().any(|c| c.name == n) && o.filters.is_empty() {
                println!("# expected case {n} no longer exists");
            }
        }
        if regressions.is_empty() {
            println!("# no regressions against {}", o.expected.as_ref().unwrap().display());
        } else {
            println!("# REGRESSIONS (expected to pass): {}", regressions.join(" "));
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if expected.is_some() {
        if regressions.is_empty() { 0 } else { 1 }
    } else if failed > 0 {
        1
    } else {
        0
    }
}
