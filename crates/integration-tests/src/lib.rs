//! Shared helpers for the end-to-end tests in `tests/`.
//!
//! The tests drive a runtime binary through runc's CLI contract. The binary
//! comes from `SKIFF_BIN` (default `<workspace>/target/debug/skiff`), so the
//! same tests can be pointed at runc or crun to check that they encode the
//! reference behaviour.
//!
//! Every test builds a [`TestEnv`]: a private directory under
//! `/tmp/skiff-it/` holding a bundle (busybox rootfs + config.json) and a
//! private `--root` state directory. Dropping the env (also on panic) runs
//! `delete --force` for every container id it handed out, kills leftover
//! processes, unmounts anything under its directory, removes the cgroup
//! directories of its containers and finally removes the directory.
//!
//! Environment knobs:
//! * `SKIFF_BIN` — runtime binary under test.
//! * `SKIFF_IT_KEEP=1` — keep test directories (for debugging).
//! * `SKIFF_IT_TIMEOUT` — default per-command timeout in seconds (30).

use serde_json::{json, Value};
use std::cell::RefCell;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Base directory for all test directories.
pub const BASE_DIR: &str = "/tmp/skiff-it";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// True when running with euid 0.
pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Skip the current test (loudly) when not running as root. The message is
/// written straight to fd 2 so libtest's output capture does not hide it.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            $crate::skip_message(&format!(
                "SKIPPED {}:{}: end-to-end runtime tests need root (euid is {}); run them as root\n",
                file!(),
                line!(),
                unsafe { ::libc::geteuid() }
            ));
            return;
        }
    };
}

/// Print `msg` to the real stderr, bypassing the test harness capture.
pub fn skip_message(msg: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(msg.as_bytes());
}

/// The runtime binary under test.
pub fn runtime_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SKIFF_BIN") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/skiff")
}

/// File name of the runtime binary (`skiff`, `runc`, `crun`).
pub fn runtime_name() -> String {
    runtime_bin()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// True when the binary under test is runc (used to note known deviations).
pub fn is_runc() -> bool {
    runtime_name() == "runc"
}

/// Default timeout for one runtime command.
pub fn default_timeout() -> Duration {
    let secs = std::env::var("SKIFF_IT_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

fn check_bin() {
    let bin = runtime_bin();
    if !bin.exists() {
        panic!(
            "runtime binary {} does not exist: build it (cargo build -p skiff) or set SKIFF_BIN",
            bin.display()
        );
    }
}

// ---------------------------------------------------------------------------
// running commands

/// Result of one command run with a timeout.
#[derive(Debug, Clone)]
pub struct Output {
    pub cmdline: String,
    /// Exit code, or 128+signal when killed by a signal.
    pub code: i32,
    pub signaled: bool,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == 0 && !self.timed_out
    }

    /// Human-readable description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "`{}` -> code {}{}{} in {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            self.code,
            if self.signaled { " (signal)" } else { "" },
            if self.timed_out { " (TIMED OUT, killed)" } else { "" },
            self.elapsed,
            self.stdout,
            self.stderr
        )
    }

    /// Panic unless the command succeeded.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(self.success(), "command failed:\n{}", self.describe());
        self
    }

    /// Panic unless the command failed cleanly: non-zero exit (not a
    /// timeout, not a crash by signal) and a non-empty error on stderr.
    #[track_caller]
    pub fn failed(&self) -> &Self {
        assert!(!self.timed_out, "command timed out:\n{}", self.describe());
        assert!(
            self.code != 0,
            "command unexpectedly succeeded:\n{}",
            self.describe()
        );
        assert!(
            !self.signaled,
            "runtime died by a signal instead of failing cleanly:\n{}",
            self.describe()
        );
        assert!(
            !self.stderr.trim().is_empty(),
            "command failed without an error message on stderr:\n{}",
            self.describe()
        );
        self
    }

    /// Panic unless stderr (case-insensitively) contains one of `needles`.
    #[track_caller]
    pub fn stderr_mentions(&self, needles: &[&str]) -> &Self {
        let e = self.stderr.to_lowercase();
        assert!(
            needles.iter().any(|n| e.contains(&n.to_lowercase())),
            "stderr does not mention any of {:?}:\n{}",
            needles,
            self.describe()
        );
        self
    }

    /// Panic unless the error is "one-line-ish": at most `max` non-empty lines.
    #[track_caller]
    pub fn short_error(&self, max: usize) -> &Self {
        let n = self.stderr.lines().filter(|l| !l.trim().is_empty()).count();
        assert!(
            n <= max,
            "error output is {} lines (max {}):\n{}",
            n,
            max,
            self.describe()
        );
        self
    }
}

/// Run `cmd` with stdin from /dev/null and stdout/stderr captured into files
/// in `io_dir` (files, not pipes: a detached container inherits the
/// runtime's stdio and would keep a pipe open forever). The process is put in
/// its own process group, which is SIGKILLed on timeout.
pub fn run_with_timeout(cmd: Command, timeout: Duration, io_dir: &Path) -> Output {
    match try_run_with_timeout(cmd, timeout, io_dir) {
        Ok(o) => o,
        Err(e) => panic!("{e}"),
    }
}

/// Non-panicking [`run_with_timeout`] (used from Drop).
pub fn try_run_with_timeout(mut cmd: Command, timeout: Duration, io_dir: &Path) -> std::io::Result<Output> {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    fs::create_dir_all(io_dir)?;
    let out_path = io_dir.join(format!("cmd-{n}.out"));
    let err_path = io_dir.join(format!("cmd-{n}.err"));
    let out = fs::File::create(&out_path)?;
    let err = fs::File::create(&err_path)?;
    let cmdline = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0);
    let start = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Err(std::io::Error::new(e.kind(), format!("cannot spawn `{cmdline}`: {e}"))),
    };
    let pid = child.id() as i32;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::new(e.kind(), format!("wait for `{cmdline}`: {e}"))),
        }
        if start.elapsed() > timeout {
            timed_out = true;
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let (code, signaled) = match (status.code(), status.signal()) {
        (Some(c), _) => (c, false),
        (None, Some(s)) => (128 + s, true),
        _ => (-1, false),
    };
    let stdout = String::from_utf8_lossy(&fs::read(&out_path).unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&fs::read(&err_path).unwrap_or_default()).into_owned();
    let _ = fs::remove_file(&out_path);
    let _ = fs::remove_file(&err_path);
    Ok(Output {
        cmdline,
        code,
        signaled,
        timed_out,
        stdout,
        stderr,
        elapsed,
    })
}

/// Poll `f` every 20 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// rootfs cache

extern "C" fn remove_cache_dir() {
    if std::env::var_os("SKIFF_IT_KEEP").is_some() {
        return;
    }
    let _ = fs::remove_dir_all(cache_dir());
}

fn cache_dir() -> PathBuf {
    PathBuf::from(format!("{BASE_DIR}/cache-{}", std::process::id()))
}

/// Path of this test process's cached busybox rootfs (built once with
/// scripts/mk-rootfs.sh, removed at process exit).
pub fn cached_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir = cache_dir().join("rootfs");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(cache_dir()).expect("create cache dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mk-rootfs.sh");
        let out = Command::new("sh")
            .arg(&script)
            .arg(&dir)
            .output()
            .expect("run mk-rootfs.sh");
        assert!(
            out.status.success(),
            "mk-rootfs.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        unsafe {
            libc::atexit(remove_cache_dir);
        }
        dir
    })
}

// ---------------------------------------------------------------------------
// default config (equal to `runc spec`, with terminal off)

/// The default config.json: the same as `runc spec` produces, except
/// `process.terminal` is false and args is `["sh"]`.
pub fn default_config() -> Value {
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

// ---------------------------------------------------------------------------
// the per-test environment

/// One test's private world: bundle, state root, container ids, cleanup.
pub struct TestEnv {
    pub name: String,
    /// Unique token `<name>-<pid>-<n>`, also the primary container id (with `it-` prefix).
    pub token: String,
    pub dir: PathBuf,
    /// Private `--root` for the runtime.
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The config written by [`TestEnv::write_config`]; mutate freely.
    pub config: Value,
    /// Primary container id.
    pub id: String,
    /// Per-command timeout.
    pub timeout: Duration,
    /// Value of the marker env var given to the runtime and the container
    /// process; used to find leftover processes.
    pub marker: String,
    ids: RefCell<Vec<String>>,
    pids: RefCell<Vec<i32>>,
    cleanups: RefCell<Vec<Box<dyn FnOnce()>>>,
}

/// Name of the marker environment variable.
pub const MARKER_VAR: &str = "SKIFF_IT_MARK";

impl TestEnv {
    /// New environment with a copy of the cached busybox rootfs and the
    /// default config.
    pub fn new(name: &str) -> TestEnv {
        check_bin();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let short: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(24).collect();
        let token = format!("{short}-{}-{n}", std::process::id());
        let dir = PathBuf::from(BASE_DIR).join(&token);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create test dir");
        let bundle = dir.join("bundle");
        fs::create_dir_all(&bundle).expect("create bundle dir");
        let rootfs = bundle.join("rootfs");
        let src = cached_rootfs();
        let out = Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(src)
            .arg(&rootfs)
            .output()
            .expect("cp rootfs");
        assert!(out.status.success(), "copy rootfs: {}", String::from_utf8_lossy(&out.stderr));
        let id = format!("it-{token}");
        TestEnv {
            name: name.to_string(),
            marker: token.clone(),
            token,
            root: dir.join("state"),
            dir,
            bundle,
            rootfs,
            config: default_config(),
            id: id.clone(),
            timeout: default_timeout(),
            ids: RefCell::new(vec![id]),
            pids: RefCell::new(Vec::new()),
            cleanups: RefCell::new(Vec::new()),
        }
    }

    /// A further unique container id (cleaned up on drop like the primary one).
    pub fn new_id(&self) -> String {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("it-{}-x{n}", self.token);
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// Register an id chosen by the test so that drop force-deletes it.
    pub fn track_id(&self, id: &str) {
        self.ids.borrow_mut().push(id.to_string());
    }

    /// Register a host pid belonging to a container (killed/reaped on drop).
    pub fn track_pid(&self, pid: i32) {
        if pid > 0 && !self.pids.borrow().contains(&pid) {
            self.pids.borrow_mut().push(pid);
        }
    }

    /// Run `f` on drop (after the containers are deleted).
    pub fn on_cleanup(&self, f: impl FnOnce() + 'static) {
        self.cleanups.borrow_mut().push(Box::new(f));
    }

    /// The cgroupsPath written for container `id`.
    pub fn cgroup_path(&self, id: &str) -> String {
        format!("/{id}")
    }

    // -- config mutation -------------------------------------------------

    /// Set process.args.
    pub fn set_args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = json!(args);
    }

    /// Set process.args to `sh -c script`.
    pub fn set_sh(&mut self, script: &str) {
        self.set_args(&["sh", "-c", script]);
    }

    /// Append a mount to the config.
    pub fn add_mount(&mut self, m: Value) {
        self.config["mounts"].as_array_mut().expect("mounts array").push(m);
    }

    /// Create host dir `<dir>/<name>` and bind-mount it (rw unless `ro`)
    /// into the container at `dest`. Returns the host path.
    pub fn bind_dir(&mut self, name: &str, dest: &str, ro: bool) -> PathBuf {
        let host = self.dir.join(name);
        fs::create_dir_all(&host).expect("create bind source");
        fs::set_permissions(&host, fs::Permissions::from_mode(0o777)).unwrap();
        let mut opts = vec!["rbind"];
        if ro {
            opts.push("ro");
        }
        self.add_mount(json!({
            "destination": dest, "type": "bind", "source": host, "options": opts
        }));
        host
    }

    /// Remove namespace `ty` from linux.namespaces.
    pub fn remove_namespace(&mut self, ty: &str) {
        if let Some(a) = self.config["linux"]["namespaces"].as_array_mut() {
            a.retain(|n| n["type"] != ty);
        }
    }

    /// Add (or replace) namespace `ty`, optionally joining `path`.
    pub fn set_namespace(&mut self, ty: &str, path: Option<&str>) {
        self.remove_namespace(ty);
        let mut ns = json!({"type": ty});
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        self.config["linux"]["namespaces"].as_array_mut().unwrap().push(ns);
    }

    /// A new user namespace mapping 0-65535 to host 100000-165535, the
    /// rootfs owned by the mapped root, and no mounts the mapped root may
    /// not make (sysfs, cgroup).
    pub fn set_userns(&mut self) {
        self.set_namespace("user", None);
        self.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        self.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        self.remove_mount("/sys/fs/cgroup");
        self.remove_mount("/sys");
        self.config["root"]["readonly"] = json!(false);
        let out = Command::new("chown").args(["-R", "100000:100000"]).arg(&self.rootfs).output().expect("chown");
        assert!(out.status.success(), "chown rootfs: {}", String::from_utf8_lossy(&out.stderr));
        for d in [&self.dir, &self.bundle] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    /// Remove the mount with destination `dest`.
    pub fn remove_mount(&mut self, dest: &str) {
        if let Some(a) = self.config["mounts"].as_array_mut() {
            a.retain(|m| m["destination"] != dest);
        }
    }

    /// Write config.json for container `id` (sets cgroupsPath and adds the
    /// marker env var to the process).
    pub fn write_config_for(&self, id: &str) {
        let mut c = self.config.clone();
        if c["linux"].is_object() && c["linux"].get("cgroupsPath").is_none() {
            c["linux"]["cgroupsPath"] = json!(self.cgroup_path(id));
        }
        if let Some(env) = c["process"]["env"].as_array_mut() {
            env.push(json!(format!("{MARKER_VAR}={}", self.marker)));
        }
        let text = serde_json::to_string_pretty(&c).unwrap();
        fs::write(self.bundle.join("config.json"), text).expect("write config.json");
    }

    /// Write config.json for the primary container.
    pub fn write_config(&self) {
        self.write_config_for(&self.id);
    }

    // -- running the runtime ---------------------------------------------

    /// A Command for the runtime with `--root <private root>` and the marker.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(runtime_bin());
        cmd.arg("--root").arg(&self.root);
        cmd.args(args);
        cmd.current_dir(&self.dir);
        cmd.env(MARKER_VAR, &self.marker);
        cmd
    }

    /// Run the runtime with the private root and the default timeout.
    pub fn rt(&self, args: &[&str]) -> Output {
        self.rt_timeout(args, self.timeout)
    }

    pub fn rt_timeout(&self, args: &[&str], timeout: Duration) -> Output {
        run_with_timeout(self.command(args), timeout, &self.dir.join("io"))
    }

    /// Run an arbitrary Command with the default timeout.
    pub fn run_cmd(&self, cmd: Command) -> Output {
        run_with_timeout(cmd, self.timeout, &self.dir.join("io"))
    }

    fn bundle_str(&self) -> String {
        self.bundle.to_string_lossy().into_owned()
    }

    /// Write the config and `create --bundle B ID` (result not checked).
    pub fn create_id(&self, id: &str, extra: &[&str]) -> Output {
        self.write_config_for(id);
        let b = self.bundle_str();
        let mut args = vec!["create", "--bundle", b.as_str()];
        args.extend_from_slice(extra);
        args.push(id);
        let out = self.rt(&args);
        if out.success() {
            if let Some(pid) = self.try_state_id(id).and_then(|s| s["pid"].as_i64()) {
                self.track_pid(pid as i32);
            }
        }
        out
    }

    /// Create the primary container.
    pub fn create(&self) -> Output {
        self.create_id(&self.id, &[])
    }

    pub fn start_id(&self, id: &str) -> Output {
        self.rt(&["start", id])
    }

    pub fn start(&self) -> Output {
        self.start_id(&self.id)
    }

    /// `run --bundle B [extra] ID` for the primary container.
    pub fn run(&self, extra: &[&str]) -> Output {
        self.run_id(&self.id, extra)
    }

    pub fn run_id(&self, id: &str, extra: &[&str]) -> Output {
        self.write_config_for(id);
        let b = self.bundle_str();
        let mut args = vec!["run", "--bundle", b.as_str()];
        args.extend_from_slice(extra);
        args.push(id);
        self.rt(&args)
    }

    /// Run the primary container with `sh -c script` in the foreground and
    /// return the result (not checked).
    pub fn run_sh(&mut self, script: &str) -> Output {
        self.set_sh(script);
        self.run(&[])
    }

    /// Like [`TestEnv::run_sh`] but asserts success and returns stdout.
    #[track_caller]
    pub fn run_sh_ok(&mut self, script: &str) -> String {
        let out = self.run_sh(script);
        out.ok();
        out.stdout
    }

    pub fn state_out(&self, id: &str) -> Output {
        self.rt(&["state", id])
    }

    /// Parsed `state ID`, or None when the command fails.
    pub fn try_state_id(&self, id: &str) -> Option<Value> {
        let out = self.state_out(id);
        if !out.success() {
            return None;
        }
        let v: Value = serde_json::from_str(&out.stdout).ok()?;
        if let Some(pid) = v["pid"].as_i64() {
            self.track_pid(pid as i32);
        }
        Some(v)
    }

    /// Parsed `state ID`; panics when it fails or is not JSON.
    #[track_caller]
    pub fn state_id(&self, id: &str) -> Value {
        let out = self.state_out(id);
        out.ok();
        let v: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state output is not JSON ({e}):\n{}", out.describe()));
        if let Some(pid) = v["pid"].as_i64() {
            self.track_pid(pid as i32);
        }
        v
    }

    #[track_caller]
    pub fn state(&self) -> Value {
        self.state_id(&self.id)
    }

    /// Current status string of container `id` (reaping its init first if it
    /// is our child and has exited).
    pub fn status_id(&self, id: &str) -> Option<String> {
        self.reap_tracked();
        self.try_state_id(id)
            .and_then(|s| s["status"].as_str().map(String::from))
    }

    /// Wait until `state ID` reports `status`; panics on timeout.
    #[track_caller]
    pub fn wait_status_id(&self, id: &str, status: &str, timeout: Duration) {
        let mut last = None;
        let ok = wait_until(timeout, || {
            last = self.status_id(id);
            last.as_deref() == Some(status)
        });
        assert!(
            ok,
            "container {id} did not reach status {status:?} within {timeout:?} (last: {last:?})"
        );
    }

    #[track_caller]
    pub fn wait_status(&self, status: &str) {
        self.wait_status_id(&self.id, status, Duration::from_secs(10));
    }

    /// waitpid(WNOHANG) on tracked pids that are our children. A pid is
    /// forgotten once reaped or once known not to be our child, so we never
    /// wait on a pid that could have been reused by another test's child.
    pub fn reap_tracked(&self) {
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        use nix::unistd::Pid;
        self.pids.borrow_mut().retain(|&pid| {
            match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => true,
                Ok(_) => false,
                Err(_) => false, // ECHILD: not our child
            }
        });
    }

    // -- inspection ------------------------------------------------------

    /// Pids of live processes carrying our marker in their environment.
    pub fn marked_processes(&self) -> Vec<i32> {
        let needle = format!("{MARKER_VAR}={}", self.marker);
        let me = std::process::id() as i32;
        let mut v = Vec::new();
        for pid in proc_pids() {
            if pid == me {
                continue;
            }
            if let Ok(env) = fs::read(format!("/proc/{pid}/environ")) {
                if env.split(|b| *b == 0).any(|e| e == needle.as_bytes()) && !is_zombie(pid) {
                    v.push(pid);
                }
            }
        }
        v
    }

    /// Pids of processes in the cgroup of container `id` (any hierarchy).
    pub fn cgroup_processes(&self, id: &str) -> Vec<i32> {
        let cg = self.cgroup_path(id);
        let mut v = Vec::new();
        for pid in proc_pids() {
            if let Ok(text) = fs::read_to_string(format!("/proc/{pid}/cgroup")) {
                if text.lines().any(|l| l.splitn(3, ':').nth(2) == Some(cg.as_str())) && !is_zombie(pid) {
                    v.push(pid);
                }
            }
        }
        v
    }

    /// Existing cgroup directories for container `id` under /sys/fs/cgroup.
    pub fn cgroup_dirs(&self, id: &str) -> Vec<PathBuf> {
        let cg = self.cgroup_path(id);
        cgroup_dirs_for(&cg)
    }

    /// Mount points (host mount namespace) under this env's directory.
    pub fn mounts_under_dir(&self) -> Vec<PathBuf> {
        mounts_under(&self.dir)
    }

    /// Assert that container `id` left nothing behind: no state dir, no
    /// process, no mount, no cgroup dir.
    #[track_caller]
    pub fn assert_no_leftovers(&self, id: &str) {
        let st = self.root.join(id);
        assert!(!st.exists(), "state dir {} left behind", st.display());
        let mut procs = Vec::new();
        let gone = wait_until(Duration::from_secs(2), || {
            procs = self.marked_processes();
            procs.extend(self.cgroup_processes(id));
            procs.is_empty()
        });
        assert!(gone, "processes left behind: {}", describe_pids(&procs));
        let m = self.mounts_under_dir();
        assert!(m.is_empty(), "mounts left behind: {m:?}");
        let d = self.cgroup_dirs(id);
        assert!(d.is_empty(), "cgroup dirs left behind: {d:?}");
    }

    /// Host namespace inode of `/proc/self/ns/<kind>` of the test process.
    pub fn host_ns(kind: &str) -> String {
        fs::read_link(format!("/proc/self/ns/{kind}"))
            .expect("readlink ns")
            .to_string_lossy()
            .into_owned()
    }
}

/// The host's /dev/null has twice been found owned by 100000:100000 (a user
/// namespace's root) after test runs, cause unknown: say which test was
/// running when it changed (and when), and put it back.
fn check_dev_null(test: &str, when: &str) {
    if let Ok(m) = fs::metadata("/dev/null") {
        if m.uid() != 0 || m.gid() != 0 {
            skip_message(&format!("WARNING: the host's /dev/null is owned by {}:{} at the end of test {test} ({when}): restored to 0:0\n", m.uid(), m.gid()));
            let _ = std::os::unix::fs::chown("/dev/null", Some(0), Some(0));
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        check_dev_null(&self.name, "before its cleanup");
        let ids = self.ids.borrow().clone();
        // Learn the init pids first, so that an init that is our own child
        // (and now a zombie) gets reaped.
        for id in &ids {
            if let Ok(o) = try_run_with_timeout(self.command(&["state", id]), Duration::from_secs(10), &self.dir.join("io")) {
                if let Some(pid) = serde_json::from_str::<Value>(&o.stdout).ok().and_then(|v| v["pid"].as_i64()) {
                    self.track_pid(pid as i32);
                }
            }
        }
        self.reap_tracked();
        for id in &ids {
            let _ = try_run_with_timeout(
                self.command(&["delete", "--force", id]),
                Duration::from_secs(15),
                &self.dir.join("io"),
            );
        }
        // Kill whatever is left: processes with our marker or in our cgroups.
        for _ in 0..50 {
            let mut left = self.marked_processes();
            for id in &ids {
                left.extend(self.cgroup_processes(id));
            }
            if left.is_empty() {
                break;
            }
            for pid in left {
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            self.reap_tracked();
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in self.pids.borrow().iter() {
            // reap our own children that are dead
            let _ = nix::sys::wait::waitpid(
                nix::unistd::Pid::from_raw(*pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
        }
        // Unmount anything under our directory (deepest first).
        let mut m = mounts_under(&self.dir);
        m.sort();
        for p in m.iter().rev() {
            let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
        }
        // Remove cgroup dirs (children first).
        for id in &ids {
            for d in self.cgroup_dirs(id) {
                remove_cgroup_tree(&d);
            }
        }
        for f in self.cleanups.borrow_mut().drain(..).rev() {
            f();
        }
        if std::env::var_os("SKIFF_IT_KEEP").is_none() {
            if let Err(e) = fs::remove_dir_all(&self.dir) {
                if self.dir.exists() {
                    eprintln!("warning: cannot remove {}: {e}", self.dir.display());
                }
            }
        }
        check_dev_null(&self.name, "after its cleanup");
    }
}

fn remove_cgroup_tree(d: &Path) {
    // Only ever rmdir inside a cgroup filesystem.
    let on_cgroupfs = nix::sys::statfs::statfs(d)
        .map(|s| {
            let t = s.filesystem_type();
            t == nix::sys::statfs::CGROUP_SUPER_MAGIC || t == nix::sys::statfs::CGROUP2_SUPER_MAGIC
        })
        .unwrap_or(false);
    if !d.starts_with("/sys/fs/cgroup") || !on_cgroupfs
        || !d.components().any(|c| c.as_os_str().to_string_lossy().starts_with("it-"))
    {
        return;
    }
    if let Ok(rd) = fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    for _ in 0..25 {
        if fs::remove_dir(d).is_ok() || !d.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// All existing directories `/sys/fs/cgroup/<hierarchy>/<cg>` (v1) and
/// `/sys/fs/cgroup/<cg>` (v2 / unified).
pub fn cgroup_dirs_for(cg: &str) -> Vec<PathBuf> {
    let rel = cg.trim_start_matches('/');
    let mut v = Vec::new();
    // Never look outside the cgroup trees: refuse empty paths and any `..`
    // or `.` component (ids like `..` are used by the negative tests).
    if rel.is_empty() || rel.split('/').any(|c| c.is_empty() || c == ".." || c == ".") {
        return v;
    }
    let base = Path::new("/sys/fs/cgroup");
    let direct = base.join(rel);
    if direct.is_dir() {
        v.push(direct);
    }
    if let Ok(rd) = fs::read_dir(base) {
        for e in rd.flatten() {
            let p = e.path().join(rel);
            if p.is_dir() {
                v.push(p);
            }
        }
    }
    v
}

/// Mount points in the test process's mount namespace at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v = Vec::new();
    for line in text.lines() {
        if let Some(mp) = line.split(' ').nth(4) {
            let mp = unescape_mount(mp);
            let p = PathBuf::from(&mp);
            if p.starts_with(dir) {
                v.push(p);
            }
        }
    }
    v
}

fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

fn proc_pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

fn is_zombie(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z') || rest.trim_start().starts_with('X'))
            .unwrap_or(true),
        Err(_) => true,
    }
}

/// True when `pid` exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

fn describe_pids(pids: &[i32]) -> String {
    pids.iter()
        .map(|p| {
            let cmd = fs::read(format!("/proc/{p}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            format!("{p}({})", cmd.trim())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------
// misc helpers

/// Check `s` is an RFC 3339 timestamp (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`).
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(|c| c.is_ascii_digit()));
    if b.len() < 20 || !digits(0..4) || b[4] != b'-' || !digits(5..7) || b[7] != b'-' || !digits(8..10) {
        return false;
    }
    if !(b[10] == b'T' || b[10] == b't') || !digits(11..13) || b[13] != b':' || !digits(14..16) || b[16] != b':' || !digits(17..19) {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == st {
            return false;
        }
    }
    let rest = &s[i..];
    if rest == "Z" || rest == "z" {
        return true;
    }
    let rb = rest.as_bytes();
    rb.len() == 6
        && (rb[0] == b'+' || rb[0] == b'-')
        && rb[1].is_ascii_digit()
        && rb[2].is_ascii_digit()
        && rb[3] == b':'
        && rb[4].is_ascii_digit()
        && rb[5].is_ascii_digit()
}

/// Read a hex capability mask line (e.g. `CapEff`) out of a /proc/PID/status text.
pub fn cap_mask(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == field).then(|| u64::from_str_radix(v.trim(), 16).ok())?
    })
}

/// Receive one file descriptor sent with SCM_RIGHTS over a unix socket.
/// Accepts one connection on `listener` (within `timeout`) and receives one
/// fd over it (a console socket, a seccomp agent's socket).
pub fn spawn_fd_receiver(listener: std::os::unix::net::UnixListener, timeout: Duration) -> std::thread::JoinHandle<Result<OwnedFd, String>> {
    std::thread::spawn(move || {
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if start.elapsed() > timeout {
                        return Err("nobody connected to the socket".into());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        stream.set_nonblocking(false).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        recv_fd(&stream).map_err(|e| format!("recvmsg: {e}"))
    })
}

pub fn recv_fd(sock: &impl AsRawFd) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(std::io::Error::from)?;
    let mut fds = Vec::new();
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(v) = c {
            fds.extend(v);
        }
    }
    let mut it = fds.into_iter();
    let first = it.next().ok_or_else(|| std::io::Error::other("no fd received with SCM_RIGHTS"))?;
    for extra in it {
        unsafe { libc::close(extra) };
    }
    Ok(unsafe { OwnedFd::from_raw_fd(first) })
}

/// Read from `fd` until EOF/EIO or `timeout`; returns what was read.
pub fn read_fd_until_eof(fd: &OwnedFd, timeout: Duration) -> Vec<u8> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let start = Instant::now();
    let mut data = Vec::new();
    let mut file = fs::File::from(fd.try_clone().expect("dup fd"));
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        let ms = left.as_millis().min(1000) as u16;
        let mut pfd = [PollFd::new(std::os::fd::AsFd::as_fd(&file), PollFlags::POLLIN)];
        match poll(&mut pfd, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let mut buf = [0u8; 4096];
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break, // EIO once the slave side is closed
        }
    }
    data
}

/// `stat` of a path: (mode, is_char_dev, rdev major, rdev minor).
pub fn stat_dev(p: &Path) -> Option<(u32, bool, u64, u64)> {
    let m = fs::metadata(p).ok()?;
    let rdev = m.rdev();
    Some((
        m.mode(),
        m.file_type().is_char_device(),
        libc::major(rdev) as u64,
        libc::minor(rdev) as u64,
    ))
}

// ---------------------------------------------------------------------------
// seccomp: the in-container probe and a notify agent

/// Host path of `seccomp-probe` (probe/seccomp-probe.c, built statically by
/// build.rs): makes raw syscalls inside a container and prints the result.
pub fn seccomp_probe() -> &'static Path {
    Path::new(env!("SKIFF_SECCOMP_PROBE"))
}

/// Path of the probe inside the container after [`TestEnv::install_probe`].
pub const PROBE: &str = "/seccomp-probe";

impl TestEnv {
    /// Copy the seccomp probe into this test's rootfs as [`PROBE`].
    pub fn install_probe(&self) {
        let dest = self.rootfs.join(PROBE.trim_start_matches('/'));
        fs::copy(seccomp_probe(), &dest).expect("copy seccomp-probe into the rootfs");
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// One user notification as the agent saw it.
#[derive(Debug, Clone)]
pub struct Notification {
    pub pid: u32,
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
    /// `SECCOMP_IOCTL_NOTIF_ID_VALID` after the answer callback's `before`
    /// step (true: the target was still waiting).
    pub still_valid: bool,
}

/// What the agent answers to a notification.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// Fail the syscall with this errno.
    Errno(i32),
    /// Return this value without running the syscall.
    Value(i64),
    /// Run the syscall (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`).
    Continue,
}

/// A seccomp agent: takes the listener fd from `fd_rx` (see
/// [`spawn_fd_receiver`]), then answers notifications until every filter
/// user is gone (POLLHUP) or `timeout`. For the n-th notification (from 0)
/// it calls `before(n, &notification)` (e.g. to signal the target), then
/// checks the id is still valid and sends `answer(n)`.
pub fn spawn_notify_agent(
    fd_rx: std::thread::JoinHandle<Result<OwnedFd, String>>,
    timeout: Duration,
    before: impl Fn(usize, &Notification) + Send + 'static,
    answer: impl Fn(usize) -> Answer + Send + 'static,
) -> std::thread::JoinHandle<Result<Vec<Notification>, String>> {
    std::thread::spawn(move || {
        let fd = fd_rx.join().map_err(|_| "fd receiver panicked".to_string())??;
        let start = Instant::now();
        let mut seen = Vec::new();
        while start.elapsed() < timeout {
            let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, 100) };
            if n <= 0 {
                continue;
            }
            if pfd.revents & libc::POLLIN == 0 {
                break; // POLLHUP: the filter has no users any more
            }
            if let Some(n) = receive_notification(&fd, seen.len(), &before, &answer)? {
                seen.push(n);
            }
        }
        Ok(seen)
    })
}

fn receive_notification(
    fd: &OwnedFd,
    index: usize,
    before: &impl Fn(usize, &Notification),
    answer: &impl Fn(usize) -> Answer,
) -> Result<Option<Notification>, String> {
    // SAFETY: seccomp_notif is plain data; the kernel wants it zeroed.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl fills `req`, which is the size it expects.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::EINTR) => Ok(None), // the target went away
            _ => Err(format!("SECCOMP_IOCTL_NOTIF_RECV: {e}")),
        };
    }
    let mut n = Notification {
        pid: req.pid,
        nr: req.data.nr,
        arch: req.data.arch,
        args: req.data.args,
        still_valid: false,
    };
    before(index, &n);
    // SAFETY: ID_VALID reads one u64.
    n.still_valid = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) } == 0;
    let mut resp = libc::seccomp_notif_resp { id: req.id, val: 0, error: 0, flags: 0 };
    match answer(index) {
        Answer::Errno(e) => resp.error = -e,
        Answer::Value(v) => resp.val = v,
        Answer::Continue => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    }
    // SAFETY: the ioctl reads `resp`. ENOENT: the target is no longer waiting.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOENT) {
            return Err(format!("SECCOMP_IOCTL_NOTIF_SEND: {e}"));
        }
    }
    Ok(Some(n))
}
