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
    for _ in 0..3 {
        let b_id = env.new_id();
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
        wait_until(Duration::from_secs(15), || report.join("result").exists());
    }
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
