//! Per-case context (runs in the per-case child process) and the parent's
//! cleanup of whatever a case left behind.

use serde_json::{json, Value};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cases;

/// Upstream's default config (see runtime-tools-tests/upstream/README.md).
pub const UPSTREAM_DEFAULT: &str = include_str!("../upstream/default-config.json");
/// Upstream's default + `SetupPrivileged(true)`.
pub const UPSTREAM_PRIVILEGED: &str = include_str!("../upstream/privileged-config.json");
/// Upstream's default + linux_seccomp's generator calls.
pub const UPSTREAM_SECCOMP: &str = include_str!("../upstream/seccomp-config.json");

/// root.path of the bundle's config.json ("." unless a case changed it).
fn root_path_of(bundle: &Path) -> String {
    fs::read_to_string(bundle.join("config.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v.pointer("/root/path").and_then(|p| p.as_str()).map(|p| p.to_string()))
        .unwrap_or_else(|| ".".to_string())
}

/// One runtime CLI invocation's outcome.
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// A host-side check run while the container is `created` (gets its pid).
pub type Inspect<'a> = Option<&'a mut dyn FnMut(&mut Ctx, i32)>;

pub struct Bundle {
    pub dir: PathBuf,
}

impl Bundle {
    /// The rootfs: the bundle directory itself (root.path ".", as upstream).
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join(root_path_of(&self.dir))
    }
    /// What the container process wrote to stdout.
    pub fn output(&self) -> String {
        fs::read_to_string(self.dir.join("ctr.out")).unwrap_or_default()
    }
    pub fn errors(&self) -> String {
        fs::read_to_string(self.dir.join("ctr.err")).unwrap_or_default()
    }
    pub fn path(&self) -> String {
        self.dir.display().to_string()
    }
}

pub struct Ctx {
    pub name: &'static str,
    pub runtime: PathBuf,
    pub template: PathBuf,
    pub dir: PathBuf,
    pub root: PathBuf,
    pub cgprefix: String,
    n: usize,
    pub failed: usize,
    pub asserts: usize,
    pub skip: Option<String>,
}

pub fn run_case_child(name: &str) -> i32 {
    let Some(case) = cases::CASES.iter().find(|c| c.name == name) else {
        println!("RESULT fail unknown case {name}");
        return 1;
    };
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let dir = PathBuf::from(env("RTT_CASE_DIR"));
    let mut c = Ctx {
        name: case.name,
        runtime: PathBuf::from(env("RTT_RUNTIME")),
        template: PathBuf::from(env("RTT_TEMPLATE")),
        root: dir.join("root"),
        dir,
        cgprefix: env("RTT_CGPREFIX"),
        n: 0,
        failed: 0,
        asserts: 0,
        skip: None,
    };
    fs::create_dir_all(&c.root).unwrap();
    (case.run)(&mut c);
    let _ = std::io::stdout().flush();
    if let Some(s) = &c.skip {
        if c.failed == 0 {
            println!("RESULT skip {s}");
            return 0;
        }
    }
    if c.failed > 0 {
        println!("RESULT fail {} of {} assertions failed", c.failed, c.asserts);
    } else if c.asserts == 0 {
        println!("RESULT fail no assertion was made");
    } else {
        println!("RESULT pass");
    }
    0
}

fn wait_timeout(ch: &mut Child, t: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(s)) = ch.try_wait() {
            return Some(s);
        }
        if start.elapsed() > t {
            let _ = ch.kill();
            let _ = ch.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every runtime command gets `--root <case dir>/root` first. Upstream's
/// validation/util passes no global option at all (the runtime's default
/// state directory); the private --root is a deliberate departure that keeps
/// the suite's containers apart from the host's (and from other runs), and
/// lets cleanup find everything a case left. The command's own arguments are
/// in upstream's order: `create [--pid-file F] --bundle B ID`, `start ID`,
/// `state ID`, `kill ID SIG`, `delete [--force] ID`.
pub fn runtime_cmd(runtime: &Path, root: &Path, args: &[&str], stdout: Stdio, stderr: Stdio, t: Duration) -> (bool, bool) {
    let ch = Command::new(runtime)
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn();
    match ch {
        Ok(mut ch) => match wait_timeout(&mut ch, t) {
            Some(s) => (s.success(), false),
            None => (false, true),
        },
        Err(_) => (false, false),
    }
}

impl Ctx {
    // ---- assertions --------------------------------------------------------
    pub fn check(&mut self, cond: bool, what: &str) -> bool {
        self.asserts += 1;
        if cond {
            println!("ok - {what}");
        } else {
            self.failed += 1;
            println!("not ok - {what}");
        }
        cond
    }
    pub fn note(&self, s: &str) {
        for l in s.lines() {
            println!("# {l}");
        }
    }
    pub fn skip(&mut self, why: &str) {
        self.skip = Some(why.to_string());
    }

    // ---- bundles and ids ---------------------------------------------------
    pub fn new_id(&mut self) -> String {
        self.n += 1;
        let id = format!("rtt-{}-{}-{}", self.name.replace('_', "-"), std::process::id(), self.n);
        let mut f = fs::OpenOptions::new().create(true).append(true).open(self.dir.join("ids")).unwrap();
        writeln!(f, "{}", id).unwrap();
        id
    }

    /// Absolute cgroupsPath unique to this case.
    pub fn cgroups_path(&mut self) -> String {
        self.n += 1;
        format!("/{}-{}", self.cgprefix, self.n)
    }

    pub fn relative_cgroups_path(&mut self) -> String {
        self.n += 1;
        format!("{}-{}", self.cgprefix, self.n)
    }

    /// Record a helper process the parent must kill on cleanup.
    pub fn track_pid(&self, pid: u32) {
        let mut f = fs::OpenOptions::new().create(true).append(true).open(self.dir.join("pids")).unwrap();
        writeln!(f, "{pid}").unwrap();
    }

    /// The config every case starts from: upstream's default
    /// (validation/util's GetDefaultGenerator, `upstream/default-config.json`,
    /// made by upstream's own generator) plus the suite's plumbing only:
    /// `process.args` is our checker instead of upstream's `/runtimetest
    /// --path=/` (same job: verify the whole config from inside) and
    /// `linux.cgroupsPath` is unique per case (upstream sets none, or the
    /// fixed `/cgrouptest`), so leftovers can be found and removed.
    pub fn base_config(&mut self) -> Value {
        self.upstream_config(UPSTREAM_DEFAULT)
    }

    /// One of the upstream fixtures (see `upstream/README.md`) with the same plumbing.
    pub fn upstream_config(&mut self, fixture: &str) -> Value {
        let mut cfg: Value = serde_json::from_str(fixture).expect("upstream fixture is JSON");
        cfg["process"]["args"] = json!(["/rtt-checker", "check"]);
        cfg["linux"]["cgroupsPath"] = json!(self.cgroups_path());
        cfg
    }

    /// A fresh bundle with the given config. As upstream's, the bundle
    /// directory is the rootfs itself (`root.path` "."): the busybox tree
    /// with the checker in it, config.json next to /bin. The config is also
    /// copied to /rtt-config.json, which the checker reads (config.json
    /// itself may be rewritten by a case after create).
    pub fn bundle(&mut self, cfg: &Value) -> Bundle {
        self.n += 1;
        let dir = self.dir.join(format!("bundle-{}", self.n));
        let st = Command::new("cp").arg("-a").arg(&self.template).arg(&dir).status();
        assert!(matches!(st, Ok(s) if s.success()), "copying the rootfs template failed");
        let b = Bundle { dir };
        self.write_config(&b, cfg);
        fs::write(b.rootfs().join("rtt-config.json"), serde_json::to_vec_pretty(cfg).unwrap()).unwrap();
        b
    }

    /// Replace the bundle's config (config.json and the checker's copy):
    /// for cases whose config names paths inside the bundle (hooks).
    pub fn rewrite(&self, b: &Bundle, cfg: &Value) {
        self.write_config(b, cfg);
        fs::write(b.rootfs().join("rtt-config.json"), serde_json::to_vec_pretty(cfg).unwrap()).unwrap();
    }

    pub fn write_config(&self, b: &Bundle, cfg: &Value) {
        fs::write(b.dir.join("config.json"), serde_json::to_vec_pretty(cfg).unwrap()).unwrap();
    }

    // ---- runtime CLI -------------------------------------------------------
    pub fn rt(&self, args: &[&str]) -> Out {
        self.rt_in(&self.dir, args)
    }

    fn rt_in(&self, cwd: &Path, args: &[&str]) -> Out {
        let o = self.dir.join(format!("rt-{}.out", std::process::id()));
        let e = self.dir.join(format!("rt-{}.err", std::process::id()));
        let ch = Command::new(&self.runtime)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&o).unwrap())
            .stderr(fs::File::create(&e).unwrap())
            .spawn();
        let ok = match ch {
            Ok(mut ch) => match wait_timeout(&mut ch, Duration::from_secs(30)) {
                Some(s) => s.success(),
                None => {
                    println!("# runtime {args:?} timed out");
                    false
                }
            },
            Err(err) => {
                println!("# cannot run {}: {err}", self.runtime.display());
                false
            }
        };
        let out = Out { ok, stdout: fs::read_to_string(&o).unwrap_or_default(), stderr: fs::read_to_string(&e).unwrap_or_default() };
        if !out.stderr.trim().is_empty() {
            println!("# {} {}: stderr: {}", self.runtime.file_name().unwrap().to_string_lossy(), args.first().unwrap_or(&""),
                out.stderr.trim().replace('\n', " | "));
        }
        out
    }

    /// `create [--pid-file F] --bundle B ID` — upstream's order
    /// (validation/util Runtime.Create) — with the container's stdout/stderr
    /// going to files in the bundle, as upstream's do. An empty `id` is left
    /// out (upstream's "create without an ID").
    pub fn create_with(&self, b: &Bundle, id: &str, pid_file: Option<&str>) -> Out {
        let mut args = vec!["create"];
        if let Some(f) = pid_file {
            args.push("--pid-file");
            args.push(f);
        }
        let bp = b.path();
        args.push("--bundle");
        args.push(&bp);
        if !id.is_empty() {
            args.push(id);
        }
        let o = b.dir.join("ctr.out");
        let e = b.dir.join("ctr.err");
        let ch = Command::new(&self.runtime)
            .arg("--root")
            .arg(&self.root)
            .args(&args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(fs::OpenOptions::new().create(true).append(true).open(&o).unwrap())
            .stderr(fs::OpenOptions::new().create(true).append(true).open(&e).unwrap())
            .spawn();
        let ok = match ch {
            Ok(mut ch) => match wait_timeout(&mut ch, Duration::from_secs(30)) {
                Some(s) => s.success(),
                None => {
                    println!("# create timed out");
                    false
                }
            },
            Err(err) => {
                println!("# cannot run {}: {err}", self.runtime.display());
                false
            }
        };
        let err = b.errors();
        if !ok && !err.trim().is_empty() {
            println!("# create stderr: {}", err.trim().replace('\n', " | "));
        }
        Out { ok, stdout: String::new(), stderr: err }
    }

    pub fn create(&self, b: &Bundle, id: &str) -> Out {
        self.create_with(b, id, None)
    }
    pub fn start(&self, id: &str) -> Out {
        self.rt(&["start", id])
    }
    pub fn kill(&self, id: &str, sig: &str) -> Out {
        self.rt(&["kill", id, sig])
    }
    pub fn delete(&self, id: &str) -> Out {
        self.rt(&["delete", id])
    }
    pub fn delete_force(&self, id: &str) -> Out {
        self.rt(&["delete", "--force", id])
    }
    pub fn state(&self, id: &str) -> Option<Value> {
        let o = self.rt(&["state", id]);
        if !o.ok {
            return None;
        }
        serde_json::from_str(&o.stdout).ok()
    }
    pub fn status(&self, id: &str) -> Option<String> {
        self.state(id).and_then(|s| s.get("status").and_then(|v| v.as_str()).map(|s| s.to_string()))
    }
    pub fn pid(&self, id: &str) -> Option<i32> {
        self.state(id).and_then(|s| s.get("pid").and_then(|v| v.as_i64()).map(|p| p as i32))
    }
    /// Poll `state` until the status is `want` (false on timeout, or at once
    /// when the container no longer exists).
    pub fn wait_status(&self, id: &str, want: &str, secs: u64) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            match self.status(id) {
                Some(s) if s == want => return true,
                None => return false,
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Add the checker's own verdict lines (from the container's stdout) as assertions.
    pub fn collect_checker(&mut self, b: &Bundle) {
        let out = b.output();
        let mut done = false;
        for l in out.lines() {
            if l == "rtt-checker done" {
                done = true;
            } else if let Some(w) = l.strip_prefix("ok - ") {
                self.check(true, &format!("[inside] {w}"));
            } else if let Some(w) = l.strip_prefix("not ok - ") {
                self.check(false, &format!("[inside] {w}"));
            } else if let Some(w) = l.strip_prefix("skip - ") {
                println!("# [inside] skipped: {w}");
            } else {
                println!("# [container] {l}");
            }
        }
        let err = b.errors();
        if !done && !err.trim().is_empty() {
            println!("# [container stderr] {}", err.trim().replace('\n', " | "));
        }
        self.check(done, "the checker ran to completion inside the container");
    }

    /// The whole lifecycle with the checker as the container process:
    /// create → (inspect from the host while `created`) → start → wait for
    /// `stopped` → collect the checker's verdicts → delete.
    /// Returns false when the container could not be created.
    pub fn lifecycle(&mut self, cfg: &Value, inspect: Inspect) -> bool {
        let b = self.bundle(cfg);
        self.lifecycle_bundle(&b, inspect)
    }

    pub fn lifecycle_bundle(&mut self, b: &Bundle, inspect: Inspect) -> bool {
        let id = self.new_id();
        if !self.check(self.create(b, &id).ok, "create succeeds") {
            self.delete_force(&id);
            return false;
        }
        if let Some(f) = inspect {
            match self.pid(&id) {
                Some(pid) if pid > 0 => f(self, pid),
                _ => {
                    self.check(false, "state reports the container pid");
                }
            }
        }
        if self.check(self.start(&id).ok, "start succeeds") {
            self.check(self.wait_status(&id, "stopped", 30), "the container process exits");
        }
        self.collect_checker(b);
        if !self.delete(&id).ok {
            self.delete_force(&id);
        }
        true
    }
}

// ---- cleanup (in the parent) ----------------------------------------------

fn cgroup_roots() -> Vec<PathBuf> {
    let mi = crate::common::parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    mi.into_iter().filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2").map(|m| PathBuf::from(m.mount_point)).collect()
}

fn rm_cgroups(dir: &Path, prefix: &str, depth: u32, matched: bool) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let m = matched || name.starts_with(prefix);
        if m || depth < 4 {
            rm_cgroups(&e.path(), prefix, depth + 1, m);
        }
        if m {
            // kill leftovers, then remove (retry a little: exiting tasks linger)
            if let Ok(procs) = fs::read_to_string(e.path().join("cgroup.procs")) {
                for p in procs.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
            }
            for _ in 0..20 {
                if fs::remove_dir(e.path()).is_ok() || !e.path().exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Remove cgroups whose name starts with `prefix` from every hierarchy.
pub fn remove_cgroups(prefix: &str) {
    for r in cgroup_roots() {
        rm_cgroups(&r, prefix, 0, false);
    }
}

/// The host's /dev/null has been found owned by a user namespace's root
/// after test runs, cause unknown: name the case, and put it back.
pub fn check_dev_null(case: &str) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = fs::metadata("/dev/null") {
        if m.uid() != 0 || m.gid() != 0 {
            println!("# WARNING: the host's /dev/null is owned by {}:{} after case {case}: restored to 0:0", m.uid(), m.gid());
            let _ = std::os::unix::fs::chown("/dev/null", Some(0), Some(0));
        }
    }
}

pub fn cleanup_case(runtime: &Path, dir: &Path, cgprefix: &str) {
    let root = dir.join("root");
    for id in fs::read_to_string(dir.join("ids")).unwrap_or_default().lines() {
        let _ = runtime_cmd(runtime, &root, &["delete", "--force", id], Stdio::null(), Stdio::null(), Duration::from_secs(20));
    }
    for p in fs::read_to_string(dir.join("pids")).unwrap_or_default().lines() {
        if let Ok(p) = p.trim().parse::<i32>() {
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
    }
    remove_cgroups(cgprefix);
    // unmount anything left below the case directory, deepest first
    let prefix = format!("{}/", dir.display());
    for _ in 0..3 {
        let mut mps: Vec<String> = crate::common::parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|m| m.starts_with(&prefix) || m == dir.to_str().unwrap())
            .collect();
        if mps.is_empty() {
            break;
        }
        mps.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mps {
            let c = std::ffi::CString::new(m).unwrap();
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
    let still = crate::common::parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
        .into_iter()
        .any(|m| m.mount_point.starts_with(&prefix));
    if still {
        println!("# WARNING: mounts remain below {}, not removing it", dir.display());
    } else {
        let _ = fs::remove_dir_all(dir);
    }
}
