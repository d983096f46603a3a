//! Behaviours where skiff must do what runc does (project issue 6): the
//! init's order of operations under a deny-by-default seccomp profile and a
//! notify listener, `start` of an init that died, inherited namespaces,
//! hooks' environment and working directory, mounts, the terminal's owner,
//! the working directory, and the CLI's output. Each test also runs against
//! runc (`SKIFF_BIN=/usr/sbin/runc`); where runc 1.1.5 itself differs the
//! README's table says so.

use serde_json::{json, Value};
use skiff_integration_tests::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The seccomp profile of upstream runtime-tools' default config (its
/// generator's output, kept as a fixture by the conformance suite): default
/// SCMP_ACT_ERRNO, and neither `close_range` nor `clone3` allowed.
fn upstream_seccomp() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runtime-tools-tests/upstream/default-config.json");
    let cfg: Value = serde_json::from_slice(&fs::read(&p).expect("upstream default config fixture")).unwrap();
    let s = cfg["linux"]["seccomp"].clone();
    let names: Vec<&str> = s["syscalls"].as_array().unwrap().iter().flat_map(|r| r["names"].as_array().unwrap()).filter_map(|n| n.as_str()).collect();
    assert_eq!(s["defaultAction"], "SCMP_ACT_ERRNO");
    assert!(!names.contains(&"close_range") && !names.contains(&"clone3"), "the fixture is not the profile this test is about");
    s
}

fn run_upstream_profile(nnp: bool, terminal_free_hook: bool) {
    let mut env = TestEnv::new(if nnp { "seccomp-upstream-nnp" } else { "seccomp-upstream" });
    env.config["linux"]["seccomp"] = upstream_seccomp();
    env.config["process"]["noNewPrivileges"] = json!(nnp);
    env.config["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [2000]});
    if terminal_free_hook {
        // A startContainer hook runs under the filter too (fork + exec of
        // busybox are in the allow list).
        env.config["hooks"] = json!({"startContainer": [{"path": "/bin/true"}]});
    }
    env.set_sh("echo upstream-profile-ok; id -u");
    let out = env.run(&[]);
    out.ok();
    assert!(out.stdout.contains("upstream-profile-ok\n1000"), "{}", out.describe());
}

#[test]
fn upstream_deny_by_default_profile() {
    require_root!();
    run_upstream_profile(false, false);
}

#[test]
fn upstream_deny_by_default_profile_no_new_privileges_and_hook() {
    require_root!();
    run_upstream_profile(true, true);
}

/// With no_new_privs the final capability sets go in before the filter, as
/// runc and crun set them: a deny-by-default profile that allows neither
/// capget nor capset still starts the container, with the sets it asks for
/// (a non-root user, so that what the process ends up with after execve is
/// its ambient set, which only the runtime's capability change gives it).
#[test]
fn no_new_privileges_capabilities_set_before_the_filter() {
    require_root!();
    let mut env = TestEnv::new("seccomp-caps-first");
    let mut s = upstream_seccomp();
    for rule in s["syscalls"].as_array_mut().unwrap() {
        rule["names"].as_array_mut().unwrap().retain(|n| n != "capget" && n != "capset");
    }
    assert!(!names_of_rules(&s).iter().any(|n| n == "capset" || n == "capget"));
    env.config["linux"]["seccomp"] = s;
    env.config["process"]["noNewPrivileges"] = json!(true);
    env.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let kill = json!(["CAP_KILL"]);
    env.config["process"]["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": kill, "permitted": kill, "inheritable": kill, "ambient": kill});
    env.set_sh("grep -E '^Cap(Eff|Prm|Bnd|Amb)' /proc/self/status");
    let out = env.run(&[]);
    out.ok();
    // CAP_KILL is bit 5, CAP_CHOWN bit 0.
    for want in ["CapPrm:\t0000000000000020", "CapEff:\t0000000000000020", "CapBnd:\t0000000000000021", "CapAmb:\t0000000000000020"] {
        assert!(out.stdout.contains(want), "no {want:?}: {}", out.describe());
    }
}

fn names_of_rules(s: &Value) -> Vec<String> {
    s["syscalls"].as_array().unwrap().iter().flat_map(|r| r["names"].as_array().unwrap()).filter_map(|n| n.as_str().map(str::to_string)).collect()
}

/// A notify rule on openat, no_new_privs false: the listener fd must reach
/// the agent before the init makes any call the rule traps (it used to read
/// /proc/self/setgroups first and hang `create` forever).
#[test]
fn seccomp_notify_listener_fd_sent_first() {
    require_root!();
    let mut env = TestEnv::new("seccomp-notify-first");
    let sock = env.dir.join("agent.sock");
    let rx = spawn_fd_receiver(UnixListener::bind(&sock).unwrap(), Duration::from_secs(20));
    env.config["process"]["noNewPrivileges"] = json!(false);
    env.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [{"names": ["openat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    env.set_sh("echo notify-ok");
    env.timeout = Duration::from_secs(15);
    let out = env.create();
    let fd = rx.join().unwrap();
    out.ok();
    // Closing the listener makes trapped calls fail instead of waiting.
    drop(fd.expect("the agent got the listener fd"));
    env.start().ok();
    env.wait_status("stopped");
}

#[test]
fn seccomp_agent_unreachable_is_runc_wording() {
    require_root!();
    let mut env = TestEnv::new("seccomp-agent-missing");
    env.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": env.dir.join("nobody.sock"),
        "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    env.set_args(&["true"]);
    let out = env.create();
    out.failed().stderr_mentions(&["failed to connect with seccomp agent"]);
    assert!(!out.stderr.contains("(os error"), "Rust error suffix: {}", out.describe());
    env.rt(&["delete", "--force", &env.id]);
    env.assert_no_leftovers(&env.id);
}

/// `start` of a container whose init fails after the release (here its
/// startContainer hook) fails every time, with the init's error.
#[test]
fn start_fails_when_the_init_fails_before_exec() {
    require_root!();
    let mut env = TestEnv::new("start-init-fails");
    env.config["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-said-no >&2; exit 3"]}]});
    env.set_args(&["true"]);
    for _ in 0..5 {
        let id = env.new_id();
        env.create_id(&id, &[]).ok();
        let out = env.start_id(&id);
        out.failed().stderr_mentions(&["startContainer"]);
        env.rt(&["delete", "--force", &id]).ok();
    }
}

/// No mount namespace in the config: the container shares the runtime's
/// (as the spec says of any type not listed), and `delete` takes away every
/// mount the runtime made on the host, and only those.
#[test]
fn missing_namespaces_are_inherited_and_delete_removes_host_mounts() {
    require_root!();
    let mut env = TestEnv::new("no-mountns");
    env.remove_namespace("mount");
    env.remove_namespace("network");
    // runc refuses masked and read-only paths without a mount namespace;
    // without them it runs, which shows what it leaves behind.
    env.config["linux"]["maskedPaths"] = json!([]);
    env.config["linux"]["readonlyPaths"] = json!([]);
    let keep = env.dir.join("bundle/rootfs/mnt");
    fs::create_dir_all(&keep).unwrap();
    // A mount below the rootfs that the caller made (as containerd's rootfs
    // mount): it must survive `delete`.
    assert!(std::process::Command::new("mount").args(["-t", "tmpfs", "callers", keep.to_str().unwrap()]).status().unwrap().success());
    let k = keep.clone();
    env.on_cleanup(move || {
        let _ = std::process::Command::new("umount").arg("-l").arg(&k).status();
    });
    env.set_sh("readlink /proc/self/ns/mnt; readlink /proc/self/ns/net; test -e /proc/self/status && echo proc-ok");
    let out = env.run(&["--keep"]);
    out.ok();
    assert!(out.stdout.contains(&TestEnv::host_ns("mnt")), "not the host's mount namespace: {}", out.describe());
    assert!(out.stdout.contains(&TestEnv::host_ns("net")), "not the host's network namespace: {}", out.describe());
    assert!(out.stdout.contains("proc-ok"), "{}", out.describe());
    env.rt(&["delete", &env.id]).ok();
    let left: Vec<PathBuf> = env.mounts_under_dir().into_iter().filter(|m| m != &keep).collect();
    assert!(left.is_empty(), "mounts left on the host: {left:?}");
    assert!(env.mounts_under_dir().contains(&keep), "the caller's own mount was removed");
}

/// A hostname with a uts namespace joined by path (runc allows it).
#[test]
fn hostname_with_a_joined_uts_namespace() {
    require_root!();
    let mut env = TestEnv::new("uts-joined");
    let holder = std::process::Command::new("unshare").args(["--uts", "sleep", "60"]).spawn().unwrap();
    let pid = holder.id() as i32;
    env.on_cleanup(move || {
        let mut h = holder;
        let _ = h.kill();
        let _ = h.wait();
    });
    let ns = format!("/proc/{pid}/ns/uts");
    assert!(wait_until(Duration::from_secs(5), || fs::read_link(&ns).ok().map(|l| l.to_string_lossy().into_owned()) != Some(TestEnv::host_ns("uts"))));
    env.set_namespace("uts", Some(&ns));
    env.config["hostname"] = json!("joined-uts");
    env.set_args(&["hostname"]);
    let out = env.run(&[]);
    out.ok();
    assert_eq!(out.stdout.trim(), "joined-uts", "{}", out.describe());
}

#[test]
fn duplicated_namespace_is_refused_with_runc_wording() {
    require_root!();
    let mut env = TestEnv::new("dup-ns");
    env.config["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "pid"}));
    env.set_args(&["true"]);
    env.create().failed().stderr_mentions(&["duplicated ns"]);
    env.assert_no_leftovers(&env.id);
}

/// Hooks the init runs without `env` get the container process's
/// environment; hooks with `env` get exactly that.
#[test]
fn container_hooks_get_the_process_environment() {
    require_root!();
    let mut env = TestEnv::new("hook-env");
    let log = env.bind_dir("hooklog", "/hooklog", false);
    let d = log.to_string_lossy().into_owned();
    env.config["process"]["env"].as_array_mut().unwrap().push(json!("HOOK_SEES=process-env"));
    env.config["hooks"] = json!({
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "env > /hooklog/start-noenv"]},
                           {"path": "/bin/sh", "args": ["sh", "-c", "env > /hooklog/start-env"], "env": ["ONLY=this"]}],
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", format!("env > {d}/create-noenv")]}]
    });
    env.set_args(&["true"]);
    env.run(&[]).ok();
    for f in ["start-noenv", "create-noenv"] {
        let text = fs::read_to_string(log.join(f)).unwrap_or_default();
        assert!(text.contains("HOOK_SEES=process-env"), "{f}: {text}");
    }
    let text = fs::read_to_string(log.join("start-env")).unwrap_or_default();
    assert!(text.contains("ONLY=this") && !text.contains("HOOK_SEES"), "start-env: {text}");
}

/// A relative hook path: the runtime's hooks resolve it in the bundle (runc
/// runs in the bundle directory), createContainer hooks in the rootfs.
#[test]
fn relative_hook_paths_resolve_as_with_runc() {
    require_root!();
    let mut env = TestEnv::new("hook-relative");
    let log = env.dir.join("hooklog");
    fs::create_dir_all(&log).unwrap();
    let d = log.to_string_lossy().into_owned();
    env.config["hooks"] = json!({
        "prestart": [{"path": "rootfs/bin/sh", "args": ["sh", "-c", format!("pwd > {d}/prestart")]}],
        "createContainer": [{"path": "bin/sh", "args": ["sh", "-c", format!("pwd > {d}/createContainer")]}]
    });
    env.set_args(&["true"]);
    env.run(&[]).ok();
    let pre = fs::read_to_string(log.join("prestart")).unwrap_or_default();
    assert_eq!(Path::new(pre.trim()), env.bundle, "prestart hook's cwd");
    let cc = fs::read_to_string(log.join("createContainer")).unwrap_or_default();
    assert_eq!(Path::new(cc.trim()), env.rootfs, "createContainer hook's cwd");
}

/// A read-only /dev still gets /dev/pts, /dev/shm and the device nodes.
#[test]
fn read_only_dev_mount() {
    require_root!();
    let mut env = TestEnv::new("ro-dev");
    for m in env.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            m["options"].as_array_mut().unwrap().push(json!("ro"));
        }
    }
    env.set_sh("test -d /dev/pts && test -d /dev/shm && test -c /dev/null && echo nodes-ok; touch /dev/x 2>/dev/null || echo dev-ro");
    let out = env.run(&[]);
    out.ok();
    assert!(out.stdout.contains("nodes-ok") && out.stdout.contains("dev-ro"), "{}", out.describe());
}

/// The terminal belongs to process.user (uid; the group stays the devpts
/// `gid=5`), as runc leaves it.
#[test]
fn pty_is_owned_by_the_process_user() {
    require_root!();
    let mut env = TestEnv::new("pty-owner");
    env.config["process"]["terminal"] = json!(true);
    env.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    env.set_sh("stat -L -c 'owner=%u:%g' /proc/self/fd/0");
    let sock = env.dir.join("console.sock");
    let rx = spawn_fd_receiver(UnixListener::bind(&sock).unwrap(), Duration::from_secs(20));
    env.create_id(&env.id, &["--console-socket", sock.to_str().unwrap()]).ok();
    let master = rx.join().unwrap().expect("pty master");
    env.start().ok();
    let text = String::from_utf8_lossy(&read_fd_until_eof(&master, Duration::from_secs(10))).into_owned();
    assert!(text.contains("owner=1000:5"), "pty owner: {text:?}");
}

/// A cwd that only root may enter works for another user, as with runc
/// (the chdir is tried as root first).
#[test]
fn cwd_only_root_may_enter() {
    require_root!();
    let mut env = TestEnv::new("cwd-root-only");
    let dir = env.rootfs.join("private");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    env.config["process"]["cwd"] = json!("/private");
    env.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    env.set_args(&["true"]);
    env.run(&[]).ok();
}

#[test]
fn kill_with_signal_zero() {
    require_root!();
    let mut env = TestEnv::new("kill-zero");
    env.set_args(&["sleep", "30"]);
    env.create().ok();
    env.rt(&["kill", &env.id, "0"]).ok();
    env.start().ok();
    env.rt(&["kill", &env.id, "0"]).ok();
    env.rt(&["delete", "--force", &env.id]).ok();
}

/// `state` and `list --format json` print runc's keys in runc's order.
#[test]
fn state_and_list_key_order() {
    require_root!();
    let mut env = TestEnv::new("key-order");
    env.set_args(&["sleep", "30"]);
    env.config["annotations"] = json!({"org.example": "x"});
    env.create().ok();
    let order = ["\"ociVersion\":", "\"id\":", "\"pid\":", "\"status\":", "\"bundle\":", "\"rootfs\":", "\"created\":", "\"annotations\":", "\"owner\":"];
    let check = |text: &str, what: &str| {
        let text = text.replace(": ", ":");
        let pos: Vec<usize> = order.iter().map(|k| text.find(k).unwrap_or_else(|| panic!("{what}: no {k} in {text}"))).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{what}: keys not in runc's order: {text}");
    };
    check(&env.rt(&["state", &env.id]).ok().stdout, "state");
    check(&env.rt(&["list", "--format", "json"]).ok().stdout, "list");
    env.rt(&["delete", "--force", &env.id]).ok();
}

fn userns_env(name: &str) -> TestEnv {
    let mut env = TestEnv::new(name);
    env.set_userns();
    env
}

/// A bind source below a directory the user namespace's root may not
/// traverse is opened by the runtime before the namespace exists.
#[test]
fn userns_bind_source_outside_its_reach() {
    require_root!();
    let mut env = userns_env("userns-bind-private");
    let private = env.dir.join("private");
    fs::create_dir_all(private.join("data")).unwrap();
    fs::write(private.join("data/file"), "reachable").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    env.add_mount(json!({"destination": "/data", "type": "bind", "source": private.join("data"), "options": ["rbind", "ro"]}));
    env.set_args(&["cat", "/data/file"]);
    let out = env.run(&[]);
    out.ok();
    assert_eq!(out.stdout, "reachable", "{}", out.describe());
    assert_eq!(fs::metadata(&private).unwrap().uid(), 0);
}

/// A mount that fails inside a user namespace reports the init's own error.
#[test]
fn userns_mount_failure_reports_the_init_error() {
    require_root!();
    let mut env = userns_env("userns-mount-fails");
    // First, so that it fails while the runtime still talks to the init
    // (which then leaves a message unread: the runtime must still read
    // the init's own error).
    env.config["mounts"].as_array_mut().unwrap().insert(0, json!({"destination": "/bad", "type": "tmpfs", "source": "tmpfs", "options": ["size=not-a-size"]}));
    env.set_args(&["true"]);
    for _ in 0..5 {
        let id = env.new_id();
        let out = env.create_id(&id, &[]);
        out.failed().stderr_mentions(&["/bad"]);
        assert!(!out.stderr.contains("init channel"), "the init's error was lost: {}", out.describe());
        env.assert_no_leftovers(&id);
    }
}

/// `spec` writes runc's default: its namespaces, and its keys in its order.
#[test]
fn spec_is_runc_default() {
    require_root!();
    let env = TestEnv::new("spec-default");
    let dir = env.dir.join("spec");
    fs::create_dir_all(&dir).unwrap();
    let mut cmd = std::process::Command::new(runtime_bin());
    cmd.arg("spec").arg("--bundle").arg(&dir);
    env.run_cmd(cmd).ok();
    let text = fs::read_to_string(dir.join("config.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let ns: Vec<&str> = v["linux"]["namespaces"].as_array().unwrap().iter().filter_map(|n| n["type"].as_str()).collect();
    assert_eq!(ns, ["pid", "network", "ipc", "uts", "mount"]);
    let keys = ["\"ociVersion\"", "\"process\"", "\"root\"", "\"hostname\"", "\"mounts\"", "\"linux\""];
    let pos: Vec<usize> = keys.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "top-level keys not in runc's order:\n{text}");
}
