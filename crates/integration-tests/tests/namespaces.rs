//! Every namespace kind, seen from inside the container.

use serde_json::json;
use skiff_integration_tests::*;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

const KINDS: [&str; 7] = ["pid", "mnt", "uts", "ipc", "net", "cgroup", "user"];

/// Map kind -> `kind:[inode]` as seen by the container process.
fn inner_ns(env: &mut TestEnv) -> HashMap<String, String> {
    let script = KINDS
        .iter()
        .map(|k| format!("echo {k} $(readlink /proc/self/ns/{k})"))
        .collect::<Vec<_>>()
        .join("; ");
    let out = env.run_sh_ok(&script);
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn configured_namespaces_are_new_and_others_shared() {
    require_root!();
    let mut env = TestEnv::new("ns-all");
    // default config: pid, network, ipc, uts, mount — plus cgroup
    env.set_namespace("cgroup", None);
    let inner = inner_ns(&mut env);
    for k in ["pid", "mnt", "uts", "ipc", "net", "cgroup"] {
        let host = TestEnv::host_ns(k);
        assert!(inner.get(k).is_some_and(|v| v.starts_with(&format!("{k}:["))), "no {k} ns inside: {inner:?}");
        assert_ne!(inner[k], host, "{k} namespace is not a new one");
    }
    // user namespace not requested: shared with the host
    assert_eq!(inner["user"], TestEnv::host_ns("user"), "user ns unshared although not configured");
}

#[test]
fn unconfigured_namespaces_are_shared() {
    require_root!();
    let mut env = TestEnv::new("ns-shared");
    env.remove_namespace("network");
    env.remove_namespace("ipc");
    env.remove_namespace("uts");
    env.config.as_object_mut().unwrap().remove("hostname");
    let inner = inner_ns(&mut env);
    for k in ["net", "ipc", "uts", "cgroup", "user"] {
        assert_eq!(inner[k], TestEnv::host_ns(k), "{k} namespace should be the host's");
    }
    assert_ne!(inner["mnt"], TestEnv::host_ns("mnt"));
    assert_ne!(inner["pid"], TestEnv::host_ns("pid"));
}

#[test]
fn pid_namespace_init_is_pid_1() {
    require_root!();
    let mut env = TestEnv::new("ns-pid");
    let out = env.run_sh_ok("echo $$; ls /proc | grep -E '^[0-9]+$' | wc -l");
    let mut l = out.lines();
    assert_eq!(l.next(), Some("1"), "init is not pid 1: {out}");
    let n: usize = l.next().unwrap_or("0").trim().parse().unwrap_or(0);
    // sh, ls, grep, wc
    assert!(n <= 5, "container /proc shows {n} processes — not a private pid namespace");
}

#[test]
fn uts_namespace_hostname() {
    require_root!();
    let mut env = TestEnv::new("ns-uts");
    env.config["hostname"] = json!("skiff-host");
    let out = env.run_sh_ok("hostname; cat /proc/sys/kernel/hostname");
    assert_eq!(out, "skiff-host\nskiff-host\n");
    // host unchanged
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "skiff-host");
}

#[test]
fn uts_namespace_domainname() {
    require_root!();
    // NOTE: runc 1.1.5 ignores `domainname` (support came in runc 1.2); this
    // test encodes the requirement and fails on runc 1.1.
    let mut env = TestEnv::new("ns-domain");
    env.config["hostname"] = json!("skiff-host");
    env.config["domainname"] = json!("skiff.example");
    let out = env.run_sh_ok("cat /proc/sys/kernel/domainname");
    assert_eq!(out, "skiff.example\n");
    let host = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    assert_ne!(host.trim(), "skiff.example");
}

#[test]
fn net_namespace_has_only_loopback() {
    require_root!();
    let mut env = TestEnv::new("ns-net");
    let out = env.run_sh_ok("ls /sys/class/net");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["lo"], "interfaces: {out}");
}

#[test]
fn cgroup_namespace_root() {
    require_root!();
    let mut env = TestEnv::new("ns-cgroup");
    env.set_namespace("cgroup", None);
    let out = env.run_sh_ok("cat /proc/self/cgroup");
    for l in out.lines() {
        let path = l.splitn(3, ':').nth(2).unwrap_or("?");
        assert_eq!(path, "/", "cgroup ns root not at the container cgroup: {out}");
    }
}

#[test]
fn user_namespace_mappings() {
    require_root!();
    let mut env = TestEnv::new("ns-user");
    env.set_namespace("user", None);
    env.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    env.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    // a cgroup v1 mount is not allowed in a fresh user namespace
    env.remove_mount("/sys/fs/cgroup");
    let out = env.run_sh_ok("cat /proc/self/uid_map; cat /proc/self/gid_map; id -u; readlink /proc/self/ns/user");
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["0", "100000", "65536"], "uid_map: {out}");
    assert_eq!(lines[1], ["0", "200000", "65536"], "gid_map: {out}");
    assert_eq!(lines[2], ["0"], "uid inside: {out}");
    assert_ne!(lines[3][0], TestEnv::host_ns("user"));
}

/// oomScoreAdj inside a user namespace: the init is not dumpable (its /proc
/// files belong to the host's root), so the runtime must write it.
#[test]
fn user_namespace_oom_score_adj() {
    require_root!();
    let mut env = TestEnv::new("ns-user-oom");
    env.set_namespace("user", None);
    env.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    env.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    env.config["process"]["oomScoreAdj"] = json!(321);
    env.remove_mount("/sys/fs/cgroup");
    let out = env.run_sh_ok("cat /proc/self/oom_score_adj");
    assert_eq!(out.trim(), "321");
}

#[test]
fn time_namespace_offsets() {
    require_root!();
    // NOTE: runc 1.1.5 does not support the time namespace (added in runc
    // 1.2); this test encodes the requirement and fails on runc 1.1.
    let mut env = TestEnv::new("ns-time");
    env.set_namespace("time", None);
    env.config["linux"]["timeOffsets"] = json!({
        "monotonic": {"secs": 86400, "nanosecs": 0},
        "boottime": {"secs": 172800, "nanosecs": 0}
    });
    let out = env.run_sh_ok("cat /proc/self/timens_offsets; readlink /proc/self/ns/time; cut -d. -f1 /proc/uptime");
    let mut mono = None;
    let mut boot = None;
    for l in out.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.first() {
            Some(&"monotonic") => mono = Some((f[1].to_string(), f[2].to_string())),
            Some(&"boottime") => boot = Some((f[1].to_string(), f[2].to_string())),
            _ => {}
        }
    }
    assert_eq!(mono, Some(("86400".into(), "0".into())), "{out}");
    assert_eq!(boot, Some(("172800".into(), "0".into())), "{out}");
    assert!(out.contains("time:["));
    assert!(!out.contains(&TestEnv::host_ns("time")), "time ns is the host's: {out}");
    let uptime: u64 = out.lines().last().unwrap().trim().parse().unwrap();
    let host_up: f64 = std::fs::read_to_string("/proc/uptime").unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(uptime as f64 >= host_up + 172800.0 - 60.0, "uptime inside {uptime} not offset (host {host_up})");
}

#[test]
fn join_existing_net_namespace_by_path() {
    require_root!();
    let mut env = TestEnv::new("ns-join");
    let name = format!("it-{}", env.token);
    let out = env.run_cmd({
        let mut c = Command::new("ip");
        c.args(["netns", "add", &name]);
        c
    });
    out.ok();
    let n2 = name.clone();
    env.on_cleanup(move || {
        let _ = Command::new("ip").args(["netns", "del", &n2]).status();
    });
    let path = format!("/run/netns/{name}");
    let ino = std::fs::metadata(&path).unwrap().ino();
    env.set_namespace("network", Some(&path));
    let out = env.run_sh_ok("readlink /proc/self/ns/net");
    assert_eq!(out.trim(), format!("net:[{ino}]"), "container did not join {path}");
}

/// A `sleep` in namespaces of its own (made by `unshare ARGS`), killed and
/// reaped on drop; `path` is its /proc/<pid>/ns/<ns> file, `target` that
/// namespace's identity (`uts:[4026…]`).
struct NsHolder {
    child: std::process::Child,
    path: String,
    target: String,
}

impl NsHolder {
    fn spawn(unshare_args: &[&str], script: &str, ns: &str) -> NsHolder {
        let child = Command::new("unshare").args(unshare_args).args(["sh", "-c", script]).spawn().expect("spawn unshare");
        let pid = child.id();
        let path = format!("/proc/{pid}/ns/{ns}");
        let link = |p: &str| std::fs::read_link(p).map(|l| l.to_string_lossy().into_owned()).ok();
        let up = wait_until(std::time::Duration::from_secs(5), || {
            link(&path).is_some_and(|l| l != TestEnv::host_ns(ns))
                && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
        });
        let target = link(&path).unwrap_or_default();
        let holder = NsHolder { child, path, target };
        assert!(up, "unshare sleeper did not come up");
        holder
    }
}

impl Drop for NsHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn join_existing_uts_namespace_of_process() {
    require_root!();
    let mut env = TestEnv::new("ns-join-uts");
    // a sleeper in its own uts namespace with a distinctive hostname
    let holder = NsHolder::spawn(&["--uts"], "hostname joined-uts && exec sleep 1000", "uts");
    env.set_namespace("uts", Some(&holder.path));
    env.config.as_object_mut().unwrap().remove("hostname");
    let out = env.run_sh("readlink /proc/self/ns/uts; hostname");
    let target = holder.target.clone();
    drop(holder);
    out.ok();
    assert_eq!(out.stdout, format!("{target}\njoined-uts\n"));
}

/// A user namespace joined by path together with a new pid namespace: the
/// new namespaces are unshared after the setns (so they belong to the joined
/// user namespace) and the init is forked once more to be pid 1.
#[test]
fn join_user_namespace_with_new_pid_namespace() {
    require_root!();
    let mut env = TestEnv::new("ns-join-user-pid");
    let holder = NsHolder::spawn(&["--user", "--map-root-user"], "exec sleep 1000", "user");
    env.set_namespace("user", Some(&holder.path));
    // Only uid/gid 0 exist in the joined namespace: no gid=5 for devpts.
    for m in env.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev/pts" {
            let opts: Vec<serde_json::Value> = m["options"].as_array().unwrap().iter().filter(|o| *o != "gid=5").cloned().collect();
            m["options"] = serde_json::Value::Array(opts);
        }
    }
    let out = env.run_sh("echo $$; readlink /proc/self/ns/user");
    let target = holder.target.clone();
    drop(holder);
    out.ok();
    assert_eq!(out.stdout, format!("1\n{target}\n"));
}

/// The new network, mount, uts and ipc namespaces of a container with a
/// new user namespace are owned by that user namespace, not by the host's:
/// otherwise root in the container could not configure its own network or
/// hostname, and a host capability would rule them. (Holds for however the
/// runtime makes them: in the clone, or unshared by the init after it.)
#[test]
fn new_namespaces_are_owned_by_the_new_user_namespace() {
    require_root!();
    let mut env = TestEnv::new("ns-owner");
    env.set_userns();
    env.set_args(&["/bin/true"]);
    env.create().ok();
    let pid = env.state()["pid"].as_i64().expect("pid in state");
    let ino = |p: &str| std::fs::metadata(p).unwrap_or_else(|e| panic!("{p}: {e}")).ino();
    let user = ino(&format!("/proc/{pid}/ns/user"));
    assert_ne!(user, ino("/proc/self/ns/user"), "no new user namespace");
    for k in ["net", "mnt", "uts", "ipc"] {
        let path = format!("/proc/{pid}/ns/{k}");
        assert_ne!(ino(&path), ino(&format!("/proc/self/ns/{k}")), "{k} namespace is not a new one");
        let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: NS_GET_USERNS on an open namespace file returns a new fd.
        let owner = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&ns), 0xb701) };
        assert!(owner >= 0, "NS_GET_USERNS on {path}: {}", std::io::Error::last_os_error());
        // SAFETY: the fd was just returned to us and is owned by nothing else.
        let owner = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(owner) };
        assert_eq!(owner.metadata().unwrap().ino(), user, "the {k} namespace is not owned by the container's user namespace");
    }
    env.rt(&["delete", "-f", &env.id]).ok();
}
