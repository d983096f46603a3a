//! `exec` (project issue 8): a new process in a running container, with
//! runc's flags, namespaces, cgroups, security settings, terminal, exit
//! codes and error wording. Every test runs against runc too (SKIFF_BIN).

use serde_json::json;
use skiff_integration_tests::*;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::time::Duration;

/// A running container whose init sleeps.
fn running(name: &str, tweak: impl FnOnce(&mut TestEnv)) -> TestEnv {
    let mut env = TestEnv::new(name);
    env.set_args(&["sleep", "300"]);
    tweak(&mut env);
    env.run(&["-d"]).ok();
    env
}

fn exec(env: &TestEnv, args: &[&str]) -> Output {
    let mut a = vec!["exec"];
    a.extend_from_slice(args);
    env.rt(&a)
}

fn init_pid(env: &TestEnv) -> i64 {
    env.state()["pid"].as_i64().expect("pid")
}

#[test]
fn output_exit_code_and_signal_pass_through() {
    require_root!();
    let env = running("exec-basic", |_| {});
    let out = exec(&env, &[&env.id, "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.code, 3, "{}", out.describe());
    assert_eq!(out.stdout, "out\n");
    assert!(out.stderr.contains("err"), "{}", out.describe());
    let out = exec(&env, &[&env.id, "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.code, 137, "{}", out.describe());
    // Flags and the command's own hyphenated arguments.
    let out = exec(&env, &["-e", "FOO=bar", "-e", "BAZ=qux", "--cwd=/tmp", &env.id, "sh", "-c", "echo $FOO $BAZ $HOME; pwd"]);
    assert_eq!(out.ok().stdout, "bar qux /root\n/tmp\n");
    let out = exec(&env, &["--user", "1000:1001", "--additional-gids=10", "--additional-gids", "20", &env.id, "id"]);
    assert_eq!(out.ok().stdout.trim(), "uid=1000 gid=1001 groups=10(wheel),20");
    let out = exec(&env, &["-u", "7", &env.id, "id", "-u"]);
    assert_eq!(out.ok().stdout.trim(), "7");
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

#[test]
fn exec_joins_every_namespace_of_the_container() {
    require_root!();
    let env = running("exec-ns", |env| {
        env.set_userns();
        env.set_namespace("cgroup", None);
        env.set_namespace("time", None);
        env.config["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 86400, "nanosecs": 0}});
    });
    let pid = init_pid(&env);
    let kinds = ["user", "mnt", "pid", "net", "ipc", "uts", "cgroup", "time"];
    let script: String = kinds.iter().map(|k| format!("readlink /proc/self/ns/{k}; ")).collect();
    let out = exec(&env, &[&env.id, "sh", "-c", &script]);
    let got: Vec<&str> = out.ok().stdout.lines().collect();
    for (k, line) in kinds.iter().zip(&got) {
        let want = std::fs::read_link(format!("/proc/{pid}/ns/{k}")).unwrap();
        assert_eq!(*line, want.to_string_lossy(), "{k} namespace differs from the init's");
        assert_ne!(*line, TestEnv::host_ns(k), "{k} namespace is the host's");
    }
    assert_eq!(got.len(), kinds.len(), "{}", out.describe());
    // The time namespace's offset is the container's (a day of uptime more).
    let up = |s: &str| s.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()).unwrap();
    let inside = up(&exec(&env, &[&env.id, "cat", "/proc/uptime"]).ok().stdout);
    let host = up(&std::fs::read_to_string("/proc/uptime").unwrap());
    assert!(inside - host > 86000.0, "uptime inside {inside}, host {host}");
    // Root of the user namespace is the mapped container root.
    assert_eq!(exec(&env, &[&env.id, "id", "-u"]).ok().stdout.trim(), "0");
    env.rt(&["delete", "--force", &env.id]).ok();
}

#[test]
fn exec_joins_every_cgroup_hierarchy() {
    require_root!();
    let env = running("exec-cgroup", |_| {});
    let pid = init_pid(&env);
    let out = exec(&env, &[&env.id, "cat", "/proc/self/cgroup"]);
    let inside = out.ok().stdout.clone();
    let init = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    // Without a cgroup namespace both read host paths: every hierarchy
    // (v1 ones and, on a hybrid host, the unified one) is the init's.
    assert_eq!(inside, init, "the exec'd process is not in every cgroup of the container");
    assert!(init.lines().all(|l| l.ends_with(&env.id) || l.contains(&format!("/{}", env.id))), "{init}");
    // It is listed by ps while it runs.
    let out = exec(&env, &["-d", &env.id, "sleep", "30"]);
    out.ok();
    let pids: Vec<i64> = serde_json::from_str(&env.rt(&["ps", "--format", "json", &env.id]).ok().stdout).unwrap();
    assert_eq!(pids.len(), 2, "{pids:?}");
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

#[test]
fn exec_gets_the_containers_security_settings() {
    require_root!();
    let env = running("exec-sec", |env| {
        env.config["process"]["noNewPrivileges"] = json!(true);
        env.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 333, "hard": 444}]);
        env.config["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]});
    });
    let pid = init_pid(&env);
    let status = |p: &str| -> Vec<String> {
        p.lines().filter(|l| l.starts_with("Cap") || l.starts_with("NoNewPrivs") || l.starts_with("Seccomp:")).map(str::to_string).collect()
    };
    let out = exec(&env, &[&env.id, "cat", "/proc/self/status"]);
    let mine = status(&out.ok().stdout);
    let init = status(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap());
    assert_eq!(mine, init, "capabilities, no_new_privs or seccomp differ from the init's");
    assert!(mine.iter().any(|l| l == "Seccomp:\t2") && mine.iter().any(|l| l == "NoNewPrivs:\t1"), "{mine:?}");
    assert_eq!(exec(&env, &[&env.id, "sh", "-c", "ulimit -n; ulimit -Hn"]).ok().stdout, "333\n444\n");
    // --cap adds to bounding, effective and permitted, never to inheritable
    // or ambient (CVE-2022-29162).
    let out = exec(&env, &["--cap", "CAP_SYS_ADMIN", &env.id, "grep", "^Cap", "/proc/self/status"]);
    let caps = out.ok().stdout.clone();
    let field = |n: &str| u64::from_str_radix(caps.lines().find(|l| l.starts_with(n)).unwrap().split('\t').nth(1).unwrap(), 16).unwrap();
    for n in ["CapBnd", "CapEff", "CapPrm"] {
        assert_ne!(field(n) & (1 << 21), 0, "{n} lacks CAP_SYS_ADMIN: {caps}");
    }
    assert_eq!(field("CapInh"), 0, "{caps}");
    assert_eq!(field("CapAmb"), 0, "{caps}");
    env.rt(&["delete", "--force", &env.id]).ok();
}

#[test]
fn process_json_replaces_the_command_line() {
    require_root!();
    let env = running("exec-json", |_| {});
    let p = env.dir.join("process.json");
    std::fs::write(&p, json!({"args": ["sh", "-c", "echo $X; id -u; pwd; ulimit -n"], "cwd": "/etc", "env": ["X=from-json", "PATH=/bin"], "user": {"uid": 5, "gid": 5}, "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 77, "hard": 77}]}).to_string()).unwrap();
    let out = exec(&env, &["--process", p.to_str().unwrap(), &env.id]);
    assert_eq!(out.ok().stdout, "from-json\n5\n/etc\n77\n");
    env.rt(&["delete", "--force", &env.id]).ok();
}

#[test]
fn detached_exec_is_a_child_of_the_caller_with_its_pid_file() {
    require_root!();
    let env = running("exec-detach", |_| {});
    let pidfile = env.dir.join("exec.pid");
    let pf = pidfile.to_string_lossy().into_owned();
    exec(&env, &["--detach", "--pid-file", &pf, &env.id, "sleep", "60"]).ok();
    let pid: i32 = std::fs::read_to_string(&pidfile).expect("pid file written before exec returned").trim().parse().unwrap();
    env.track_pid(pid);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: i32 = stat.rsplit_once(") ").unwrap().1.split(' ').nth(1).unwrap().parse().unwrap();
    assert_eq!(ppid, std::process::id() as i32, "the detached process is not a child of the caller");
    assert!(std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap().starts_with("sleep"));
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

#[test]
fn foreground_exec_forwards_signals() {
    require_root!();
    let env = running("exec-signal", |_| {});
    let mut cmd = env.command(&["exec", &env.id, "sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done"]);
    cmd.stdout(std::process::Stdio::piped()).stdin(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    let mut r = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut r, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("exec did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(42), "SIGTERM was not forwarded");
    env.rt(&["delete", "--force", &env.id]).ok();
}

#[test]
fn exec_with_a_terminal() {
    require_root!();
    let env = running("exec-tty", |env| {
        env.config["process"]["consoleSize"] = json!({"height": 21, "width": 77});
    });
    let sock = env.dir.join("exec-console.sock");
    let rx = spawn_fd_receiver(UnixListener::bind(&sock).unwrap(), Duration::from_secs(20));
    let s = sock.to_string_lossy().into_owned();
    let pidfile = env.dir.join("tty.pid");
    let out = exec(&env, &["-t", "-d", "--console-socket", &s, "--pid-file", pidfile.to_str().unwrap(), "-u", "1000", &env.id, "sh", "-c", "tty; stat -c %u $(tty); stty size; [ -t 0 ] && echo stdin-is-tty"]);
    out.ok();
    if let Ok(p) = std::fs::read_to_string(&pidfile) {
        env.track_pid(p.trim().parse().unwrap());
    }
    let master = rx.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&read_fd_until_eof(&master, Duration::from_secs(10))).into_owned();
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("\n1000\r\n") || text.contains("1000\r\n"), "the pty is not owned by process.user: {text:?}");
    assert!(text.contains("21 77"), "consoleSize not applied: {text:?}");
    assert!(text.contains("stdin-is-tty"), "{text:?}");
    let _ = master.as_raw_fd();
    // In the foreground with stdin not a terminal, skiff relays the pty itself.
    let out = exec(&env, &["-t", &env.id, "sh", "-c", "[ -t 0 ] && echo relayed"]);
    assert!(out.ok().stdout.contains("relayed"), "{}", out.describe());
    // A terminal when detached needs a console socket.
    exec(&env, &["-t", "-d", &env.id, "true"]).failed().stderr_mentions(&["console"]);
    env.rt(&["delete", "--force", &env.id]).ok();
}

/// runc's scenario: the container's user owns a cwd only it may enter;
/// exec as root still gets in.
#[test]
fn exec_as_another_user_without_access_to_the_cwd() {
    require_root!();
    let env = running("exec-cwd", |env| {
        std::os::unix::fs::chown(env.rootfs.join("root"), Some(42), None).unwrap();
        std::fs::set_permissions(env.rootfs.join("root"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        env.config["process"]["cwd"] = json!("/root");
        env.config["process"]["user"] = json!({"uid": 42, "gid": 42});
    });
    assert_eq!(exec(&env, &["--user", "0", &env.id, "pwd"]).ok().stdout, "/root\n");
    env.rt(&["delete", "--force", &env.id]).ok();
}

#[test]
fn exec_keeps_the_containers_personality() {
    require_root!();
    let env = running("exec-pers", |env| {
        env.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    });
    assert_eq!(exec(&env, &[&env.id, "uname", "-m"]).ok().stdout.trim(), "i686");
    env.rt(&["delete", "--force", &env.id]).ok();
}

#[test]
fn preserve_fds_and_sub_cgroups() {
    require_root!();
    let env = running("exec-fds", |_| {});
    let f = env.dir.join("passed");
    std::fs::write(&f, "through-fd-3\n").unwrap();
    let mut cmd = env.command(&["exec", "--preserve-fds", "1", &env.id, "sh", "-c", "cat <&3"]);
    let file = std::fs::File::open(&f).unwrap();
    let fd = file.as_raw_fd();
    // SAFETY: dup2 in the child before exec, onto fd 3.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            // (dup2 onto itself would keep close-on-exec)
            if (fd == 3 && libc::fcntl(3, libc::F_SETFD, 0) < 0) || (fd != 3 && libc::dup2(fd, 3) < 0) {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    assert_eq!(env.run_cmd(cmd).ok().stdout, "through-fd-3\n");
    // Without --preserve-fds nothing past stdio reaches the process.
    let out = exec(&env, &[&env.id, "ls", "/proc/self/fd"]);
    assert_eq!(out.ok().stdout.split_whitespace().filter(|f| f.parse::<u32>().is_ok_and(|n| n > 2)).count(), 1, "only ls's own directory fd: {}", out.stdout);
    // --cgroup: a sub-cgroup of the container's, in the pids hierarchy.
    // (cgroup v1 only: on v2 the container's cgroup holds its processes, so
    // a child cgroup with processes of its own would be an inner node.)
    if let Some(dir) = env.cgroup_dirs(&env.id).into_iter().find(|d| d.starts_with("/sys/fs/cgroup/pids/")) {
        std::fs::create_dir(dir.join("sub")).unwrap();
        let out = exec(&env, &["--cgroup", "pids:sub", &env.id, "cat", "/proc/self/cgroup"]);
        let text = out.ok().stdout.clone();
        assert!(text.lines().any(|l| l.contains(":pids:") && l.ends_with("/sub")), "{text}");
        assert!(text.lines().filter(|l| !l.contains(":pids:")).all(|l| !l.ends_with("/sub")), "{text}");
        exec(&env, &["--cgroup", "pids:missing", &env.id, "true"]).failed();
    }
    env.rt(&["delete", "--force", &env.id]).ok();
}

#[test]
fn exec_into_a_paused_stopped_or_missing_container_fails_as_runc() {
    require_root!();
    let env = running("exec-state", |_| {});
    env.rt(&["pause", &env.id]).ok();
    let out = exec(&env, &[&env.id, "true"]);
    out.failed().stderr_mentions(&["cannot exec in a paused container (use --ignore-paused to override)"]);
    assert_eq!(out.code, 255);
    env.rt(&["resume", &env.id]).ok();
    exec(&env, &["--ignore-paused", &env.id, "true"]).ok();
    env.rt(&["kill", &env.id, "KILL"]).ok();
    env.wait_status("stopped");
    let out = exec(&env, &[&env.id, "true"]);
    out.failed().stderr_mentions(&["cannot exec in a stopped container"]);
    assert_eq!(out.code, 255);
    let out = exec(&env, &["it-no-such-container", "true"]);
    out.failed().stderr_mentions(&["does not exist"]);
    assert_eq!(out.code, 255);
    env.rt(&["delete", "--force", &env.id]).ok();
}

#[test]
fn exec_into_a_created_container() {
    require_root!();
    let mut env = TestEnv::new("exec-created");
    env.set_args(&["sleep", "300"]);
    env.create().ok();
    assert_eq!(exec(&env, &[&env.id, "echo", "in-created"]).ok().stdout, "in-created\n");
    assert_eq!(env.status_id(&env.id).as_deref(), Some("created"));
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

#[test]
fn bad_input_is_refused_with_runcs_exit_code_and_nothing_is_left() {
    require_root!();
    let env = running("exec-bad", |_| {});
    let out = exec(&env, &[&env.id, "no-such-binary"]);
    out.failed().stderr_mentions(&["executable file not found in $path"]).short_error(2);
    assert_eq!(out.code, 255);
    let out = exec(&env, &[&env.id, "/no/such/file"]);
    out.failed().stderr_mentions(&["no such file or directory"]);
    assert_eq!(out.code, 255);
    let p = env.dir.join("bad.json");
    std::fs::write(&p, "{bad").unwrap();
    let out = exec(&env, &["--process", p.to_str().unwrap(), &env.id]);
    out.failed();
    assert_eq!(out.code, 255);
    std::fs::write(&p, json!({"args": [], "cwd": "/"}).to_string()).unwrap();
    exec(&env, &["--process", p.to_str().unwrap(), &env.id]).failed().stderr_mentions(&["args must not be empty", "args: must not be empty"]);
    std::fs::write(&p, json!({"args": ["true"], "cwd": "relative"}).to_string()).unwrap();
    exec(&env, &["--process", p.to_str().unwrap(), &env.id]).failed().stderr_mentions(&["absolute"]);
    exec(&env, &["--cap", "CAP_NO_SUCH", &env.id, "true"]).failed().stderr_mentions(&["unknown capability"]).stderr_mentions(&["cap_no_such"]);
    // Nothing of the failed execs is left: only the init is in the cgroup.
    let pids: Vec<i64> = serde_json::from_str(&env.rt(&["ps", "--format", "json", &env.id]).ok().stdout).unwrap();
    assert_eq!(pids, vec![init_pid(&env)]);
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

/// process.execCPUAffinity: the CPUs of the exec'd process once it is in
/// the container's cgroup (the container's setting unless the process JSON
/// has its own).
#[test]
fn exec_cpu_affinity() {
    require_root!();
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return skip_message("SKIPPED exec::exec_cpu_affinity: needs two CPUs\n");
    }
    let env = running("exec-affinity", |env| {
        env.config["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "1"});
    });
    let cpus = |out: &Output| out.stdout.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).map(|v| v.trim().to_string());
    let out = exec(&env, &[&env.id, "grep", "Cpus_allowed_list", "/proc/self/status"]);
    assert_eq!(cpus(out.ok()).as_deref(), Some("1"), "{}", out.describe());
    let p = env.dir.join("aff.json");
    std::fs::write(&p, json!({"args": ["grep", "Cpus_allowed_list", "/proc/self/status"], "cwd": "/", "execCPUAffinity": {"final": "0"}}).to_string()).unwrap();
    let out = exec(&env, &["--process", p.to_str().unwrap(), &env.id]);
    assert_eq!(cpus(out.ok()).as_deref(), Some("0"), "{}", out.describe());
    // The init is not affected (the spec: not applicable to it).
    let pid = init_pid(&env);
    let init = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(init.lines().any(|l| l.starts_with("Cpus_allowed_list:") && !l.ends_with("\t1")), "{init}");
    env.rt(&["delete", "--force", &env.id]).ok();
}
