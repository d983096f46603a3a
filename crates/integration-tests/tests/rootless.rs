//! Rootless (project issue 10): an unprivileged user, created by the test
//! with subordinate id ranges, runs containers with skiff — state in
//! `$XDG_RUNTIME_DIR/skiff`, `spec --rootless`, its own ids mapped directly
//! and more through newuidmap/newgidmap, no cgroup unless delegated (limits
//! then refused), `exec`, and the course's rootless web server reached on
//! 127.0.0.1 through slirp4netns.

use serde_json::{json, Value};
use skiff_integration_tests::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const USER: &str = "skiff-rl";

/// The test user (created once) and its first subordinate uid and gid.
fn user() -> Option<(u32, u32, u32, u32)> {
    if Command::new("id").arg(USER).output().map(|o| !o.status.success()).unwrap_or(true) {
        let ok = Command::new("useradd").args(["-m", "-s", "/bin/sh", USER]).status().is_ok_and(|s| s.success());
        if !ok && Command::new("id").arg(USER).output().map(|o| !o.status.success()).unwrap_or(true) {
            return None;
        }
    }
    let id = |flag: &str| -> u32 { String::from_utf8_lossy(&Command::new("id").args([flag, USER]).output().unwrap().stdout).trim().parse().unwrap() };
    let (uid, gid) = (id("-u"), id("-g"));
    let sub = |file: &str, key: u32| -> u32 {
        let text = fs::read_to_string(file).unwrap_or_default();
        if let Some(start) = text.lines().find_map(|l| l.strip_prefix(&format!("{USER}:")).and_then(|r| r.split(':').next()).and_then(|s| s.parse().ok())) {
            return start;
        }
        // No range yet (useradd without SUB_UID_COUNT): give one.
        let start = 200_000 + key * 65_536;
        let mut f = fs::OpenOptions::new().append(true).create(true).open(file).unwrap();
        std::io::Write::write_all(&mut f, format!("{USER}:{start}:65536\n").as_bytes()).unwrap();
        start
    };
    Some((uid, gid, sub("/etc/subuid", uid), sub("/etc/subgid", uid)))
}

/// A rootless environment: the bundle readable by the user, a runtime dir
/// of its own, the runtime run as the user.
struct Rootless {
    env: TestEnv,
    uid: u32,
    gid: u32,
    subuid: u32,
    subgid: u32,
    xdg: PathBuf,
}

impl Rootless {
    fn new(name: &str) -> Option<Rootless> {
        let (uid, gid, subuid, subgid) = user()?;
        let env = TestEnv::new(name);
        let xdg = env.dir.join("xdg");
        fs::create_dir_all(&xdg).unwrap();
        std::os::unix::fs::chown(&xdg, Some(uid), Some(gid)).unwrap();
        fs::set_permissions(&xdg, fs::Permissions::from_mode(0o700)).unwrap();
        for d in [&env.dir, &env.bundle] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        }
        // The user's image, as a rootless user's images are.
        let chown = Command::new("chown").args(["-R", "-h", &format!("{uid}:{gid}")]).arg(&env.bundle).status().unwrap();
        assert!(chown.success(), "chown the bundle");
        // The user's runtime state dir; the test's own --root stays unused.
        let r = Rootless { env, uid, gid, subuid, subgid, xdg };
        let dir = r.env.dir.clone();
        r.env.on_cleanup(move || {
            // Containers the user left: their inits die with their user
            // namespace's pid 1; the state goes with the test dir.
            let _ = Command::new("pkill").args(["-KILL", "-f", &dir.to_string_lossy()]).status();
        });
        Some(r)
    }

    /// The runtime as the user, in the bundle, with no `--root`.
    fn rt(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(runtime_bin());
        cmd.args(args).current_dir(&self.env.bundle).env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").env("HOME", &self.env.dir).env("XDG_RUNTIME_DIR", &self.xdg).env(MARKER_VAR, &self.env.marker);
        cmd.uid(self.uid).gid(self.gid);
        self.env.run_cmd(cmd)
    }

    /// `spec --rootless` as the user, with `f` applied.
    fn spec(&self, f: impl FnOnce(&mut Value)) {
        let _ = fs::remove_file(self.env.bundle.join("config.json"));
        self.rt(&["spec", "--rootless"]).ok();
        let p = self.env.bundle.join("config.json");
        let mut c: Value = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
        c["root"]["path"] = json!(self.env.rootfs);
        c["process"]["terminal"] = json!(false);
        c["process"]["env"].as_array_mut().unwrap().push(json!(format!("{MARKER_VAR}={}", self.env.marker)));
        f(&mut c);
        fs::write(&p, serde_json::to_string_pretty(&c).unwrap()).unwrap();
    }

    /// The runtime as root of a user namespace of the user's own, made with
    /// newuidmap/newgidmap (setgroups allowed), as rootless Podman runs it:
    /// the user is 0 there, its subordinate ids 1 to 65536.
    fn rt_in_users_ns(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("unshare");
        cmd.args(["--map-user=0", "--map-group=0", &format!("--map-users={},1,65536", self.subuid), &format!("--map-groups={},1,65536", self.subgid), "--setgroups", "allow", "--"]);
        cmd.arg(runtime_bin()).args(args).current_dir(&self.env.bundle).env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").env("HOME", &self.env.dir).env("XDG_RUNTIME_DIR", &self.xdg).env(MARKER_VAR, &self.env.marker);
        cmd.uid(self.uid).gid(self.gid);
        self.env.run_cmd(cmd)
    }

    fn delete(&self, id: &str) {
        let _ = self.rt(&["delete", "--force", id]);
    }
}

macro_rules! rootless_env {
    ($name:expr) => {{
        require_root!();
        match Rootless::new($name) {
            Some(r) => r,
            None => return skip_message("SKIPPED rootless: cannot create the test user\n"),
        }
    }};
}

#[test]
fn rootless_lifecycle_exec_and_state_dir() {
    let r = rootless_env!("rl-life");
    r.spec(|c| c["process"]["args"] = json!(["sleep", "300"]));
    let id = r.env.id.clone();
    r.rt(&["create", &id]).ok();
    assert!(r.xdg.join("skiff").join(&id).join("state.json").exists(), "state not in $XDG_RUNTIME_DIR/skiff");
    let st: Value = serde_json::from_str(&r.rt(&["state", &id]).ok().stdout).unwrap();
    assert_eq!(st["status"], "created");
    r.rt(&["start", &id]).ok();
    let out = r.rt(&["exec", &id, "sh", "-c", "id -u; cat /proc/self/uid_map; echo $$"]);
    let lines: Vec<String> = out.ok().stdout.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(lines[0], "0");
    assert_eq!(lines[1], format!("0 {} 1", r.uid), "the user is root inside, nothing else mapped");
    assert_ne!(lines[2], "1", "exec is not the init");
    assert_eq!(r.rt(&["exec", &id, "sh", "-c", "exit 9"]).code, 9);
    let pid = st["pid"].as_i64().unwrap();
    let owner = fs::metadata(format!("/proc/{pid}")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&owner), r.uid, "the init does not run as the user on the host");
    r.rt(&["kill", &id, "KILL"]).ok();
    assert!(wait_until(Duration::from_secs(10), || serde_json::from_str::<Value>(&r.rt(&["state", &id]).stdout).is_ok_and(|s| s["status"] == "stopped")));
    r.rt(&["delete", &id]).ok();
    assert!(!r.xdg.join("skiff").join(&id).exists());
}

/// Several ranges through newuidmap/newgidmap: files written inside belong
/// on the host to the mapped ids.
#[test]
fn rootless_subordinate_ids_map_file_owners() {
    let r = rootless_env!("rl-subid");
    let data = r.env.dir.join("data");
    fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(r.uid), Some(r.gid)).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o777)).unwrap();
    let (uid, gid, su, sg) = (r.uid, r.gid, r.subuid, r.subgid);
    r.spec(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}, {"containerID": 1, "hostID": su, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}, {"containerID": 1, "hostID": sg, "size": 65536}]);
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rw"]}));
        c["process"]["args"] = json!(["sh", "-c", "touch /data/by-root; cat /proc/self/uid_map"]);
    });
    let id = r.env.id.clone();
    let out = r.rt(&["run", &id]);
    assert!(out.ok().stdout.contains(&format!("{su}")), "{}", out.describe());
    r.spec(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}, {"containerID": 1, "hostID": su, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}, {"containerID": 1, "hostID": sg, "size": 65536}]);
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rw"]}));
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["args"] = json!(["touch", "/data/by-1000"]);
    });
    r.rt(&["run", &r.env.new_id()]).ok();
    let owner = |f: &str| {
        let m = fs::metadata(data.join(f)).unwrap();
        (std::os::unix::fs::MetadataExt::uid(&m), std::os::unix::fs::MetadataExt::gid(&m))
    };
    assert_eq!(owner("by-root"), (uid, gid));
    assert_eq!(owner("by-1000"), (su + 999, sg + 999));
    // A range the user was not given is refused, with the helper's reason.
    r.spec(|c| c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}, {"containerID": 1, "hostID": 1, "size": 10}]));
    r.rt(&["run", &r.env.new_id()]).failed().stderr_mentions(&["newuidmap"]).short_error(3);
}

#[test]
fn rootless_limits_without_delegation_are_refused() {
    let r = rootless_env!("rl-limits");
    if Path::new("/run/systemd/system").exists() {
        return skip_message("SKIPPED rootless_limits_without_delegation_are_refused: systemd may have delegated a cgroup\n");
    }
    r.spec(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
        c["process"]["args"] = json!(["true"]);
    });
    let id = r.env.id.clone();
    r.rt(&["run", &id]).failed().stderr_mentions(&["not delegated"]).short_error(2);
    assert!(!r.xdg.join("skiff").join(&id).exists(), "state left behind");
    // Without limits the same container runs (without a cgroup).
    r.spec(|c| c["process"]["args"] = json!(["true"]));
    r.rt(&["run", &id]).ok();
}

/// The course's exercise: an unprivileged user serves a page with busybox
/// httpd from a rootless container with its own network namespace, reached
/// on 127.0.0.1 through slirp4netns' port forwarding.
#[test]
fn rootless_web_server_on_loopback() {
    let r = rootless_env!("rl-httpd");
    if Command::new("slirp4netns").arg("--version").output().is_err() {
        return skip_message("SKIPPED rootless_web_server_on_loopback: no slirp4netns\n");
    }
    if fs::metadata("/dev/net/tun").map(|m| m.permissions().mode() & 0o006 != 0o006).unwrap_or(true) {
        return skip_message("SKIPPED rootless_web_server_on_loopback: /dev/net/tun is not open to users (scripts/bootstrap.sh makes it 0666, as Debian's udev does)\n");
    }
    let www = r.env.dir.join("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("index.html"), "hello from a rootless skiff container\n").unwrap();
    r.spec(|c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "network"}));
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/www", "type": "bind", "source": www, "options": ["rbind", "ro"]}));
        c["process"]["args"] = json!(["httpd", "-f", "-p", "80", "-h", "/www"]);
    });
    let id = r.env.id.clone();
    r.rt(&["run", "-d", &id]).ok();
    let st: Value = serde_json::from_str(&r.rt(&["state", &id]).ok().stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap().to_string();
    let api = r.xdg.join("slirp.sock");
    let mut slirp = Command::new("slirp4netns");
    slirp.args(["--configure", "--mtu=65520", "--disable-host-loopback", "--api-socket"]).arg(&api).args([pid.as_str(), "tap0"]);
    let log = fs::File::create(r.env.dir.join("slirp.log")).unwrap();
    slirp.uid(r.uid).gid(r.gid).stdout(std::process::Stdio::null()).stderr(log);
    let mut child = slirp.spawn().expect("slirp4netns");
    let port = 20000 + (std::process::id() % 20000) as u16;
    let fetched = (|| -> Result<String, String> {
        if !wait_until(Duration::from_secs(10), || api.exists()) {
            return Err(format!("slirp4netns' API socket did not appear: {}", fs::read_to_string(r.env.dir.join("slirp.log")).unwrap_or_default()));
        }
        let mut s = std::os::unix::net::UnixStream::connect(&api).map_err(|e| e.to_string())?;
        let req = json!({"execute": "add_hostfwd", "arguments": {"proto": "tcp", "host_addr": "127.0.0.1", "host_port": port, "guest_port": 80}});
        std::io::Write::write_all(&mut s, req.to_string().as_bytes()).map_err(|e| e.to_string())?;
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut s, &mut answer).map_err(|e| e.to_string())?;
        if !answer.contains("return") {
            return Err(format!("add_hostfwd: {answer}"));
        }
        let mut last = String::new();
        for _ in 0..50 {
            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Ok(mut t) => {
                    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let _ = std::io::Write::write_all(&mut t, b"GET /index.html HTTP/1.0\r\n\r\n");
                    let mut body = String::new();
                    let _ = std::io::Read::read_to_string(&mut t, &mut body);
                    if body.contains("200") {
                        return Ok(body);
                    }
                    last = body;
                }
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!("no page: {last}"))
    })();
    let _ = child.kill();
    let _ = child.wait();
    r.delete(&id);
    let body = fetched.unwrap_or_else(|e| panic!("{e}"));
    assert!(body.contains("hello from a rootless skiff container"), "{body}");
}

/// With a cgroup systemd delegated to the user (a `Delegate=yes` unit of
/// the user's manager), the limits apply — in the VM, where systemd is
/// PID 1 (`just vm-tests`); SKIPPED elsewhere.
#[test]
fn rootless_limits_apply_in_a_delegated_cgroup() {
    let r = rootless_env!("rl-delegated");
    let systemd = fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd") && Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !systemd {
        return skip_message("SKIPPED rootless_limits_apply_in_a_delegated_cgroup: needs systemd as PID 1 on cgroup v2\n");
    }
    let unit = format!("user@{}.service", r.uid);
    Command::new("loginctl").args(["enable-linger", USER]).status().unwrap();
    assert!(wait_until(Duration::from_secs(60), || Command::new("systemctl").args(["is-active", "--quiet", &unit]).status().is_ok_and(|s| s.success())), "{unit} did not start");
    let id = r.env.id.clone();
    r.spec(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("rl-{id}"));
        c["linux"]["resources"] = json!({"memory": {"limit": 33554432}, "pids": {"limit": 20}});
        c["process"]["args"] = json!(["sh", "-c", "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"]);
        c["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "cgroup");
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "cgroup"}));
    });
    let mut cmd = Command::new("systemd-run");
    cmd.args(["--user", "-M", &format!("{USER}@"), "--wait", "--pipe", "--quiet", "-p", "Delegate=yes", "--working-directory"]).arg(&r.env.bundle);
    cmd.arg("--").arg(runtime_bin()).args(["run", &id]);
    let out = r.env.run_cmd(cmd);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first().copied(), Some("0::/"), "not in a cgroup namespace of its own cgroup: {}", out.describe());
    assert!(lines.contains(&"33554432") && lines.contains(&"20"), "the limits are not applied: {}", out.describe());
    let _ = Command::new("loginctl").args(["disable-linger", USER]).status();
}

/// Rootless Podman's way (e2e/parts/podman-rootless.sh): the runtime runs
/// as root of the user's user namespace and the config asks for none. mknod
/// is refused there as in a new one, so the devices are the host's, bound
/// (skiff made them with mknod: "create device /dev/null: operation not
/// permitted"); the host's /dev/null is left as it was.
#[test]
fn rootless_runtime_already_in_a_user_namespace() {
    let r = rootless_env!("rl-in-userns");
    r.spec(|c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "user" && n["type"] != "cgroup");
        c["linux"].as_object_mut().unwrap().remove("uidMappings");
        c["linux"].as_object_mut().unwrap().remove("gidMappings");
        c["process"]["user"] = json!({"uid": 65534, "gid": 65534});
        c["process"]["args"] = json!(["sh", "-c", "for d in null zero full random urandom tty; do stat -c \"$d %t:%T %a\" /dev/$d; done; echo x > /dev/null && echo null-ok; id -u; grep -c . /proc/self/uid_map"]);
    });
    let meta = |p: &str| fs::metadata(p).map(|m| (std::os::unix::fs::MetadataExt::mode(&m), std::os::unix::fs::MetadataExt::uid(&m), std::os::unix::fs::MetadataExt::gid(&m))).unwrap();
    let before = meta("/dev/null");
    let out = r.rt_in_users_ns(&["run", &r.env.id]);
    assert_eq!(meta("/dev/null"), before, "the host's /dev/null changed");
    let text = out.ok().stdout.clone();
    for want in ["null 1:3 666", "zero 1:5 666", "full 1:7 666", "random 1:8 666", "urandom 1:9 666", "tty 5:0 666", "null-ok", "65534", "2"] {
        assert!(text.lines().any(|l| l.trim() == want), "no line {want:?}: {}", out.describe());
    }
    assert!(!r.xdg.join("skiff").join(&r.env.id).exists(), "state left behind");
}

/// An idmapped mount of a host filesystem is something the kernel refuses
/// an unprivileged user: refused up front, with the reason, nothing left.
#[test]
fn rootless_idmapped_host_mount_is_refused_with_the_reason() {
    let r = rootless_env!("rl-idmap");
    let src = r.env.dir.join("idsrc");
    fs::create_dir_all(&src).unwrap();
    let uid = r.uid;
    r.spec(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/id", "type": "bind", "source": src, "options": ["bind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": uid, "size": 1}], "gidMappings": [{"containerID": 0, "hostID": uid, "size": 1}]}));
        c["process"]["args"] = json!(["true"]);
    });
    let id = r.env.id.clone();
    r.rt(&["run", &id]).failed().stderr_mentions(&["idmapped mount"]).stderr_mentions(&["cap_sys_admin"]).short_error(2);
    assert!(!r.xdg.join("skiff").join(&id).exists(), "state left behind");
}

/// CVE-2023-25809, rootless: the rootless spec binds the host's /sys
/// read-only; the host's cgroup hierarchies mounted below it must be
/// read-only too (not only the top of the bind), so that nothing writable
/// of the host's cgroupfs is reachable under whatever covers them.
#[test]
fn rootless_sys_bind_is_read_only_below() {
    let r = rootless_env!("rl-sys-ro");
    r.spec(|c| c["process"]["args"] = json!(["cat", "/proc/self/mountinfo"]));
    let out = r.rt(&["run", &r.env.id]);
    let text = out.ok().stdout.clone();
    let below: Vec<&str> = text.lines().filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with("/sys/"))).collect();
    assert!(below.iter().any(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with("/sys/fs/cgroup/"))), "no host cgroup mount under the bound /sys:\n{text}");
    for l in &below {
        let opts = l.split(' ').nth(5).unwrap_or("");
        assert!(opts.split(',').any(|o| o == "ro"), "writable mount under the bound /sys: {l}");
    }
}
