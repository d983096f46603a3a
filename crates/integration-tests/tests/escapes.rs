//! The container boundary against malicious bundles (project issue 7):
//! mounts that would cover or land in /proc, images whose /proc, /sys,
//! /dev/console or /dev/null are symlinks, descriptors leaking into hooks and the container (CVE-2024-21626). Each
//! test builds its bundle, and checks that the attack is refused or
//! contained and that the host is untouched. The same tests run against
//! runc and crun (`SKIFF_BIN`); docs/security.md has the table.

use serde_json::json;
use skiff_integration_tests::*;
use std::fs;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";

fn core_pattern() -> String {
    fs::read_to_string(CORE_PATTERN).unwrap_or_default()
}

/// The failed create left nothing, and the host's core_pattern is as before.
#[track_caller]
fn refused(env: &TestEnv, out: &Output, words: &[&str], core: &str) {
    out.failed().stderr_mentions(words).short_error(3);
    env.rt(&["delete", "--force", &env.id]);
    env.assert_no_leftovers(&env.id);
    assert_eq!(core_pattern(), core, "the host's core_pattern changed");
}

/// `create` with a bind mount of a fresh directory `name` at `dest`, which
/// must be refused with `words`.
fn bind_is_refused(mut env: TestEnv, name: &str, dest: &str, words: &[&str]) {
    let vol = env.dir.join(name);
    fs::create_dir_all(&vol).unwrap();
    env.add_mount(json!({"destination": dest, "type": "bind", "source": vol, "options": ["rbind"]}));
    env.set_args(&["true"]);
    let core = core_pattern();
    let out = env.create();
    refused(&env, &out, words, &core);
}

/// The runtime run through `sh -c` with the given redirections first (the
/// descriptors a caller might leak to it), `run` of the primary container.
fn run_with_inherited(env: &TestEnv, redirections: &str) -> Output {
    env.write_config();
    let cmd = format!("exec {redirections}; exec {} --root {} run --bundle {} {}", runtime_bin().display(), env.root.display(), env.bundle.display(), env.id);
    let mut c = std::process::Command::new("sh");
    c.arg("-c").arg(cmd);
    env.run_cmd(c)
}

/// CVE-2019-19921 / CVE-2023-27561 class: a mount whose destination goes,
/// through a symlink of the image, onto /proc.
#[test]
fn mount_through_a_symlink_onto_proc_is_refused() {
    require_root!();
    let env = TestEnv::new("esc-proc-symlink-dest");
    std::os::unix::fs::symlink("/proc", env.rootfs.join("evil")).unwrap();
    bind_is_refused(env, "vol", "/evil", &["not of type proc"]);
}

/// The /proc check without a readlink, where no symlink was followed
/// (`safe_path::mkdir_all_lexical`): a destination spelt to reach /proc
/// (`.` components; `..` is refused outright), or going there through a
/// relative symlink of the image, is still refused.
#[test]
fn mount_onto_proc_spelt_otherwise_or_by_a_relative_link_is_refused() {
    require_root!();
    let env = TestEnv::new("esc-proc-dot");
    bind_is_refused(env, "vol", "/./proc/./sys/net", &["inside /proc"]);
    let env = TestEnv::new("esc-proc-dotdot");
    bind_is_refused(env, "vol", "/tmp/../proc/sys/net", &["must not contain ..", "inside /proc"]);
    let env = TestEnv::new("esc-proc-rel-link");
    fs::create_dir_all(env.rootfs.join("etc")).unwrap();
    std::os::unix::fs::symlink("../proc/sys", env.rootfs.join("etc/sys")).unwrap();
    bind_is_refused(env, "vol", "/etc/sys/net", &["inside /proc"]);
}

/// A mount inside /proc (a volume over /proc/sys/net, which would let it
/// redirect the runtime's sysctl writes: CVE-2025-52881 class) is refused;
/// the files lxcfs provides may still be covered.
#[test]
fn mount_inside_proc_is_refused_but_lxcfs_files_are_allowed() {
    require_root!();
    let mut env = TestEnv::new("esc-proc-inside");
    let vol = env.dir.join("net");
    fs::create_dir_all(&vol).unwrap();
    std::os::unix::fs::symlink(CORE_PATTERN, vol.join("x")).unwrap();
    env.add_mount(json!({"destination": "/proc/sys/net", "type": "bind", "source": vol, "options": ["rbind"]}));
    env.config["linux"]["sysctl"] = json!({"net.x": "|/bin/evil"});
    env.set_args(&["true"]);
    let core = core_pattern();
    let out = env.create();
    refused(&env, &out, &["inside /proc"], &core);

    let mut env = TestEnv::new("esc-proc-lxcfs");
    let up = env.dir.join("uptime");
    fs::write(&up, "42.00 42.00\n").unwrap();
    env.add_mount(json!({"destination": "/proc/uptime", "type": "bind", "source": up, "options": ["bind", "ro"]}));
    env.set_args(&["cat", "/proc/uptime"]);
    let out = env.run(&[]);
    out.ok();
    assert_eq!(out.stdout, "42.00 42.00\n");
}

/// CVE-2023-28642 class: an image whose /proc (or /sys) is a symlink.
#[test]
fn image_with_proc_or_sys_symlink_is_refused() {
    require_root!();
    for dir in ["proc", "sys"] {
        let mut env = TestEnv::new(&format!("esc-{dir}-link"));
        let p = env.rootfs.join(dir);
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(env.rootfs.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("/elsewhere", &p).unwrap();
        env.set_args(&["true"]);
        let core = core_pattern();
        let out = env.create();
        refused(&env, &out, &["ordinary directory"], &core);
        assert!(fs::read_dir(env.rootfs.join("elsewhere")).unwrap().next().is_none(), "something was mounted through the {dir} symlink");
    }
}

/// CVE-2025-52565: with a terminal, the image's /dev/console is a symlink to
/// core_pattern (no /dev tmpfs, so the image's /dev is used).
#[test]
fn console_symlink_is_not_followed() {
    require_root!();
    let mut env = TestEnv::new("esc-console-link");
    env.remove_mount("/dev");
    env.remove_mount("/dev/pts");
    env.remove_mount("/dev/shm");
    env.remove_mount("/dev/mqueue");
    env.add_mount(json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}));
    fs::create_dir_all(env.rootfs.join("dev")).unwrap();
    let _ = fs::remove_file(env.rootfs.join("dev/console"));
    std::os::unix::fs::symlink(CORE_PATTERN, env.rootfs.join("dev/console")).unwrap();
    env.config["process"]["terminal"] = json!(true);
    env.set_args(&["true"]);
    let sock = env.dir.join("console.sock");
    let _rx = spawn_fd_receiver(UnixListener::bind(&sock).unwrap(), Duration::from_secs(10));
    let core = core_pattern();
    let out = env.create_id(&env.id, &["--console-socket", sock.to_str().unwrap()]);
    if out.success() {
        // Contained (another runtime's answer): nothing may be mounted on
        // the container's core_pattern.
        let pid = env.state()["pid"].as_i64().unwrap();
        let mi = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        assert!(!mi.contains(" /proc/sys/kernel/core_pattern "), "the pty was mounted on core_pattern:\n{mi}");
        env.rt(&["delete", "--force", &env.id]).ok();
    } else {
        refused(&env, &out, &["console"], &core);
    }
    assert_eq!(core_pattern(), core);
}

/// CVE-2025-31133 class: the image's /dev/null is a symlink to
/// core_pattern; masked paths must still get the real null device.
#[test]
fn masked_paths_use_the_real_null_device() {
    require_root!();
    let mut env = TestEnv::new("esc-dev-null-link");
    env.remove_mount("/dev");
    env.remove_mount("/dev/pts");
    env.remove_mount("/dev/shm");
    env.remove_mount("/dev/mqueue");
    fs::create_dir_all(env.rootfs.join("dev")).unwrap();
    let _ = fs::remove_file(env.rootfs.join("dev/null"));
    std::os::unix::fs::symlink(CORE_PATTERN, env.rootfs.join("dev/null")).unwrap();
    env.set_sh("stat -c %t:%T /proc/keys");
    let core = core_pattern();
    let out = env.run(&[]);
    assert_eq!(core_pattern(), core, "the host's core_pattern changed");
    if out.success() {
        assert_eq!(out.stdout.lines().next(), Some("1:3"), "a masked path is not the null device: {}", out.describe());
    } else {
        out.failed().stderr_mentions(&["null"]);
    }
}

/// The runtime run with descriptor 7 open (a shell's redirection): no hook
/// and no container process gets it, nor any descriptor of the runtime's.
#[test]
fn descriptors_do_not_leak_into_hooks_or_the_container() {
    require_root!();
    let mut env = TestEnv::new("esc-fd-leak");
    let log = env.bind_dir("fdlog", "/fdlog", false);
    let d = log.to_string_lossy().into_owned();
    env.config["hooks"] = json!({
        "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", format!("ls /proc/self/fd > {d}/prestart")]}],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "ls /proc/self/fd > /fdlog/startContainer"]}]
    });
    env.set_sh("ls /proc/self/fd > /fdlog/process");
    run_with_inherited(&env, "7</etc/hostname 8</").ok();
    for f in ["prestart", "startContainer", "process"] {
        let fds: Vec<u32> = fs::read_to_string(log.join(f)).unwrap_or_default().split_whitespace().filter_map(|s| s.parse().ok()).collect();
        assert!(!fds.is_empty(), "{f}: no listing");
        // 0-2, and the one ls opened for /proc/self/fd.
        assert!(fds.iter().all(|&n| n <= 3), "{f} got descriptors {fds:?}");
    }
}

/// CVE-2024-21626: process.cwd through a descriptor the runtime inherited.
#[test]
fn cwd_through_a_leaked_descriptor_is_refused() {
    require_root!();
    let mut env = TestEnv::new("esc-cwd-fd");
    env.config["process"]["cwd"] = json!("/proc/self/fd/8");
    env.set_sh("ls > /dev/null; echo RAN");
    let out = run_with_inherited(&env, "8</");
    assert!(!out.stdout.contains("RAN"), "the process ran with a host cwd: {}", out.describe());
    out.failed();
    env.rt(&["delete", "--force", &env.id]);
    env.assert_no_leftovers(&env.id);
}

/// CVE-2024-21626, second form: the executable named through a descriptor
/// the runtime inherited (a host directory).
#[test]
fn executable_through_a_leaked_descriptor_is_refused() {
    require_root!();
    let mut env = TestEnv::new("esc-exe-fd");
    env.set_args(&["/proc/self/fd/8/bin/true"]);
    let out = run_with_inherited(&env, "8</");
    out.failed();
    assert!(Path::new("/bin/true").exists());
    env.rt(&["delete", "--force", &env.id]);
    env.assert_no_leftovers(&env.id);
}

/// CVE-2019-16884 class: something that is not a procfs mounted at /proc
/// (it would swallow the runtime's writes, e.g. the AppArmor attribute).
#[test]
fn a_fake_proc_is_refused() {
    require_root!();
    let mut env = TestEnv::new("esc-fake-proc");
    env.remove_mount("/proc");
    bind_is_refused(env, "fakeproc", "/proc", &["proc"]);
}

/// CVE-2022-29162: no inheritable capability the config does not ask for.
#[test]
fn no_inheritable_capabilities_by_default() {
    require_root!();
    let mut env = TestEnv::new("esc-cap-inh");
    env.set_sh("grep -E '^Cap(Inh|Amb)' /proc/self/status");
    if let Some(c) = env.config["process"]["capabilities"].as_object_mut() {
        c.remove("ambient");
        c.remove("inheritable");
    }
    let out = env.run(&[]);
    out.ok();
    assert!(out.stdout.contains("CapInh:\t0000000000000000") && out.stdout.contains("CapAmb:\t0000000000000000"), "{}", out.describe());
}

/// CVE-2016-9962: a process of the container (here another container that
/// shares the pid namespace) cannot reach the descriptors of an init that
/// waits for `start` (they include host ones).
#[test]
fn a_created_init_cannot_be_inspected_from_the_container() {
    require_root!();
    let mut env = TestEnv::new("esc-init-fds");
    let log = env.bind_dir("log", "/log", false);
    env.set_sh(
        "i=0; while [ ! -e /log/go ] && [ $i -lt 100 ]; do sleep 1; i=$((i+1)); done; \
         for d in /proc/[0-9]*; do p=${d#/proc/}; [ \"$p\" = \"$$\" ] && continue; c=$(cat $d/comm 2>/dev/null); \
         if readlink $d/fd/0 >/dev/null 2>&1; then echo \"$p $c open\"; else echo \"$p $c denied\"; fi; done > /log/scan; touch /log/done; sleep 30",
    );
    let a = env.id.clone();
    env.run_id(&a, &["-d"]).ok();
    let apid = env.state_id(&a)["pid"].as_i64().unwrap();
    let b = env.new_id();
    env.set_namespace("pid", Some(&format!("/proc/{apid}/ns/pid")));
    env.set_args(&["true"]);
    env.create_id(&b, &[]).ok();
    std::fs::write(log.join("go"), "").unwrap();
    assert!(wait_until(std::time::Duration::from_secs(20), || log.join("done").exists()), "the scan did not finish");
    let scan = std::fs::read_to_string(log.join("scan")).unwrap();
    let others: Vec<&str> = scan.lines().filter(|l| !["sh", "sleep", "cat", "ls"].contains(&l.split(' ').nth(1).unwrap_or(""))).collect();
    assert!(!others.is_empty(), "the created init was not seen from the other container:\n{scan}");
    assert!(others.iter().all(|l| l.ends_with(" denied")), "an init's descriptors were reachable:\n{scan}");
    env.rt(&["delete", "--force", &b]).ok();
    env.rt(&["delete", "--force", &a]).ok();
}

/// CVE-2021-30465 class: a mount destination whose path is swapped between
/// a directory and a symlink to a host directory while containers are
/// created: nothing is ever mounted or created outside the rootfs.
#[test]
fn racing_symlink_swaps_stay_in_the_rootfs() {
    require_root!();
    let mut env = TestEnv::new("esc-swap-race");
    let outside = env.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let vol = env.rootfs.join("vol");
    let (dir, link) = (env.rootfs.join("vol.dir"), env.rootfs.join("vol.link"));
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    std::fs::create_dir_all(&vol).unwrap();
    env.add_mount(json!({"destination": "/vol/sub", "type": "tmpfs", "source": "tmpfs"}));
    env.set_args(&["true"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let (v, d, l) = (vol.clone(), dir.clone(), link.clone());
    let flipper = std::thread::spawn(move || {
        let mut n = 0u32;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) && n < 2_000_000 {
            // vol <-> vol.dir / vol.link, atomically (renameat2 RENAME_EXCHANGE).
            let other = if n.is_multiple_of(2) { &l } else { &d };
            let a = std::ffi::CString::new(v.as_os_str().as_encoded_bytes()).unwrap();
            let b = std::ffi::CString::new(other.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: two valid C strings.
            unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) };
            n += 1;
        }
    });
    for _ in 0..15 {
        let id = env.new_id();
        let _ = env.run_id(&id, &[]);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().unwrap();
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none(), "something was created outside the rootfs");
    assert!(mounts_under(&outside).is_empty(), "something was mounted outside the rootfs");
}

/// CVE-2023-25809 class: in a user namespace, what the container sees at
/// /sys/fs/cgroup must not be writable (runc once bound the host's whole
/// hierarchy read-write there for rootless containers).
#[test]
fn cgroup_mount_in_a_user_namespace_is_not_writable() {
    require_root!();
    let mut env = TestEnv::new("esc-userns-cgroup");
    env.set_userns();
    env.add_mount(json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}));
    env.add_mount(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
    // The hierarchies (not the tmpfs that may hold them, the container's own).
    env.set_sh("for d in /sys/fs/cgroup /sys/fs/cgroup/*; do case $(stat -f -c %T $d) in cgroup*) mkdir $d/skiff-escape 2>/dev/null && echo WROTE $d;; esac; done; grep -c ' /sys/fs/cgroup' /proc/self/mountinfo");
    let out = env.run(&[]);
    out.ok();
    assert!(!out.stdout.contains("WROTE"), "a cgroup directory was writable: {}", out.describe());
    let n: usize = out.stdout.trim().lines().last().and_then(|l| l.parse().ok()).unwrap_or(0);
    assert!(n > 0, "no cgroup mount to check: {}", out.describe());
}

/// `--no-pivot` keeps the host's mounts under the moved root, in the
/// container's mount namespace. A fully visible procfs there (the host's
/// /proc) is what lets root of a user namespace mount a fresh, unmasked
/// procfs, and in a user namespace those copies are locked: they can be
/// neither detached nor usefully covered. So skiff refuses `--no-pivot`
/// with a user namespace and CAP_SYS_ADMIN (runc and crun run it, and the
/// container mounts a fresh procfs and sysfs); without CAP_SYS_ADMIN it runs.
#[test]
fn no_pivot_leaves_no_host_procfs_to_mount_again() {
    require_root!();
    let mut env = TestEnv::new("esc-no-pivot");
    env.set_userns();
    env.remove_mount("/proc");
    env.config["linux"]["maskedPaths"] = json!([]);
    env.config["linux"]["readonlyPaths"] = json!([]);
    env.set_sh("mkdir -p /tmp/p; mount -t proc proc /tmp/p 2>/dev/null && echo MOUNTED-PROC; mkdir -p /tmp/s; mount -t sysfs sysfs /tmp/s 2>/dev/null && echo MOUNTED-SYSFS; echo done");
    let out = env.run(&["--no-pivot"]);
    out.ok();
    assert!(out.stdout.contains("done") && !out.stdout.contains("MOUNTED"), "{}", out.describe());
    for set in ["bounding", "effective", "permitted"] {
        env.config["process"]["capabilities"][set].as_array_mut().unwrap().push(json!("CAP_SYS_ADMIN"));
    }
    let out = env.run(&["--no-pivot"]);
    assert!(!out.stdout.contains("MOUNTED"), "a procfs or sysfs could be mounted: {}", out.describe());
    out.failed().stderr_mentions(&["--no-pivot"]);
    env.assert_no_leftovers(&env.id);

    // Without a user namespace: the container's /proc keeps its read-only
    // paths ('h' only prints sysrq's help to the kernel log, should the
    // write go through).
    let mut env = TestEnv::new("esc-no-pivot-sysrq");
    env.config["root"]["readonly"] = json!(false);
    env.set_sh("(echo h > /proc/sysrq-trigger) 2>/dev/null && echo WROTE-SYSRQ; echo done");
    let out = env.run(&["--no-pivot"]);
    out.ok();
    assert!(out.stdout.contains("done") && !out.stdout.contains("WROTE-SYSRQ"), "/proc/sysrq-trigger was writable: {}", out.describe());
}

/// The host's /dev/null, passed as stdin, is never given to the container's
/// user — even when the container's own /dev/null is another device
/// (linux.devices may say so), which is how the host's /dev/null could end
/// up owned by a container's uid.
#[test]
fn stdio_device_of_the_host_is_not_chowned() {
    require_root!();
    let mut env = TestEnv::new("esc-stdio-chown");
    env.config["linux"]["devices"] = serde_json::json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 5, "fileMode": 438}]);
    // (masking binds the real /dev/null, so it needs one)
    env.config["linux"]["maskedPaths"] = serde_json::json!([]);
    env.config["process"]["user"] = serde_json::json!({"uid": 4242, "gid": 4242});
    env.set_args(&["true"]);
    let before = std::fs::metadata("/dev/null").unwrap();
    let out = env.run(&[]);
    let after = std::fs::metadata("/dev/null").unwrap();
    use std::os::unix::fs::MetadataExt;
    if after.uid() != before.uid() {
        // Put it back before failing.
        let _ = std::os::unix::fs::chown("/dev/null", Some(before.uid()), Some(before.gid()));
    }
    out.ok();
    assert_eq!(after.uid(), before.uid(), "the host's /dev/null was given to the container's user");
}

/// A /dev bound from a host directory is the config's: skiff makes no node
/// and no symlink in it (they would land in the host directory), as runc.
#[test]
fn no_device_nodes_are_made_in_a_bound_dev() {
    require_root!();
    let mut env = TestEnv::new("esc-dev-bind");
    let hostdev = env.dir.join("hostdev");
    std::fs::create_dir_all(&hostdev).unwrap();
    std::fs::write(hostdev.join("null"), "a file of the host\n").unwrap();
    env.remove_mount("/dev");
    env.remove_mount("/dev/pts");
    env.remove_mount("/dev/shm");
    env.remove_mount("/dev/mqueue");
    env.add_mount(serde_json::json!({"destination": "/dev", "type": "bind", "source": hostdev, "options": ["rbind"]}));
    env.config["linux"]["maskedPaths"] = serde_json::json!([]);
    env.set_args(&["true"]);
    env.run(&[]).ok();
    let names: Vec<String> = std::fs::read_dir(&hostdev).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["null".to_string()], "skiff made entries in the bound /dev");
    assert_eq!(std::fs::read_to_string(hostdev.join("null")).unwrap(), "a file of the host\n", "the host's file was replaced");
}
