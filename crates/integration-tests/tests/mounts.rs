//! Mounts, masked/readonly paths, read-only root, devices.

use serde_json::json;
use skiff_integration_tests::*;
use std::fs;
use std::path::PathBuf;

/// Options of the mount at `target` in a /proc/mounts text: (type, options).
fn mount_entry(mounts: &str, target: &str) -> Option<(String, Vec<String>)> {
    mounts.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 4 && f[1] == target).then(|| (f[2].to_string(), f[3].split(',').map(String::from).collect()))
    })
}

#[test]
fn tmpfs_mount_with_options() {
    require_root!();
    let mut env = TestEnv::new("mnt-tmpfs");
    env.add_mount(json!({
        "destination": "/mnt/scratch", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "size=1m", "mode=700"]
    }));
    let out = env.run_sh_ok("cat /proc/mounts; echo ---; stat -c %a /mnt/scratch; echo hi > /mnt/scratch/f && cat /mnt/scratch/f");
    let (mounts, rest) = out.split_once("---\n").unwrap();
    let (ty, opts) = mount_entry(mounts, "/mnt/scratch").unwrap_or_else(|| panic!("no mount at /mnt/scratch:\n{mounts}"));
    assert_eq!(ty, "tmpfs");
    for o in ["nosuid", "nodev", "size=1024k", "mode=700"] {
        assert!(opts.iter().any(|x| x == o), "option {o} missing: {opts:?}");
    }
    assert_eq!(rest, "700\nhi\n");
}

#[test]
fn bind_mount_read_only() {
    require_root!();
    let mut env = TestEnv::new("mnt-bind-ro");
    let host = env.bind_dir("data", "/data", true);
    fs::write(host.join("file"), "from-host\n").unwrap();
    let out = env.run_sh("cat /data/file; touch /data/new; echo rc=$?");
    out.ok();
    assert!(out.stdout.starts_with("from-host\n"), "{}", out.describe());
    assert!(out.stdout.contains("rc=1"), "write to ro bind succeeded: {}", out.describe());
    assert!(out.stderr.contains("Read-only file system"), "{}", out.describe());
    assert!(!host.join("new").exists());
}

#[test]
fn bind_mount_read_write() {
    require_root!();
    let mut env = TestEnv::new("mnt-bind-rw");
    let host = env.bind_dir("data", "/data", false);
    env.run_sh_ok("echo from-container > /data/new");
    assert_eq!(fs::read_to_string(host.join("new")).unwrap(), "from-container\n");
}

#[test]
fn proc_and_sysfs_mounted() {
    require_root!();
    let mut env = TestEnv::new("mnt-proc-sys");
    let out = env.run_sh_ok("cat /proc/mounts");
    let (ty, _) = mount_entry(&out, "/proc").unwrap_or_else(|| panic!("no /proc:\n{out}"));
    assert_eq!(ty, "proc");
    let (ty, opts) = mount_entry(&out, "/sys").unwrap_or_else(|| panic!("no /sys:\n{out}"));
    assert_eq!(ty, "sysfs");
    assert!(opts.iter().any(|o| o == "ro"), "/sys should be ro: {opts:?}");
    let (ty, _) = mount_entry(&out, "/dev").unwrap_or_else(|| panic!("no /dev:\n{out}"));
    assert_eq!(ty, "tmpfs");
    let (ty, _) = mount_entry(&out, "/dev/pts").unwrap_or_else(|| panic!("no /dev/pts:\n{out}"));
    assert_eq!(ty, "devpts");
    // the container must not see the host's mounts
    assert!(!out.contains(" /sys/fs/cgroup/unified "), "host mounts visible:\n{out}");
}

#[test]
fn masked_paths() {
    require_root!();
    let mut env = TestEnv::new("mnt-masked");
    fs::create_dir_all(env.rootfs.join("secretdir")).unwrap();
    fs::write(env.rootfs.join("secretdir/s"), "x").unwrap();
    fs::write(env.rootfs.join("secretfile"), "top-secret").unwrap();
    let mp = env.config["linux"]["maskedPaths"].as_array_mut().unwrap();
    mp.push(json!("/secretdir"));
    mp.push(json!("/secretfile"));
    // /proc/kcore only exists with CONFIG_PROC_KCORE; check whichever of
    // the default masked proc files exist on this host.
    let files: Vec<&str> = ["/proc/kcore", "/proc/timer_list", "/proc/keys"]
        .into_iter()
        .filter(|f| std::path::Path::new(f).exists())
        .collect();
    assert!(!files.is_empty());
    let mut script = String::new();
    for f in &files {
        script.push_str(&format!("echo {f}=$(cat {f} | wc -c); "));
    }
    script.push_str("echo file=$(cat /secretfile | wc -c); echo dir=$(ls /secretdir | wc -l)");
    let out = env.run_sh_ok(&script);
    let mut want: String = files.iter().map(|f| format!("{f}=0\n")).collect();
    want.push_str("file=0\ndir=0\n");
    assert_eq!(out, want);
}

#[test]
fn readonly_paths() {
    require_root!();
    let mut env = TestEnv::new("mnt-ropaths");
    fs::create_dir_all(env.rootfs.join("rodir")).unwrap();
    env.config["root"]["readonly"] = json!(false);
    env.config["linux"]["readonlyPaths"].as_array_mut().unwrap().push(json!("/rodir"));
    let out = env.run_sh("touch /rodir/x; echo rc1=$?; echo 1 > /proc/sys/vm/drop_caches; echo rc2=$?; touch /rw; echo rc3=$?");
    out.ok();
    assert!(out.stdout.contains("rc1=1"), "{}", out.describe());
    assert!(out.stdout.contains("rc2=1"), "{}", out.describe());
    assert!(out.stdout.contains("rc3=0"), "{}", out.describe());
    assert_eq!(out.stderr.matches("Read-only file system").count(), 2, "{}", out.describe());
}

#[test]
fn root_readonly() {
    require_root!();
    let mut env = TestEnv::new("mnt-root-ro");
    env.config["root"]["readonly"] = json!(true);
    let out = env.run_sh("touch /newfile; echo rc=$?; touch /dev/shm/ok; echo rc2=$?");
    out.ok();
    assert!(out.stdout.contains("rc=1"), "{}", out.describe());
    assert!(out.stdout.contains("rc2=0"), "{}", out.describe());
    assert!(out.stderr.contains("Read-only file system"), "{}", out.describe());
    assert!(!env.rootfs.join("newfile").exists());

    env.config["root"]["readonly"] = json!(false);
    env.run_sh_ok("touch /newfile");
    assert!(env.rootfs.join("newfile").exists(), "writable root did not write through to the rootfs");
}

#[test]
fn default_and_configured_devices() {
    require_root!();
    let mut env = TestEnv::new("mnt-devices");
    // Nodes get their exact mode (whatever the umask) and owner, also in a
    // directory of their own, made for them.
    env.config["linux"]["devices"] = json!([{
        "path": "/dev/itzero", "type": "c", "major": 1, "minor": 5,
        "fileMode": 0o640, "uid": 0, "gid": 0
    }, {
        "path": "/dev/sub/owned", "type": "c", "major": 1, "minor": 3,
        "fileMode": 0o1602, "uid": 1234, "gid": 5678
    }, {
        "path": "/dev/sub/mine", "type": "c", "major": 1, "minor": 7,
        "fileMode": 0o666, "gid": 42
    }]);
    env.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}
    ]);
    let out = env.run_sh_ok(
        "for d in null zero full random urandom tty itzero sub/owned sub/mine; do echo $d $(stat -c '%F %t %T %a %u:%g' /dev/$d); done; \
         head -c 4 /dev/itzero | od -An -tx1; echo x > /dev/null && echo null-ok",
    );
    let want = [
        ("null", "1 3"),
        ("zero", "1 5"),
        ("full", "1 7"),
        ("random", "1 8"),
        ("urandom", "1 9"),
        ("tty", "5 0"),
        ("itzero", "1 5"),
        ("sub/owned", "1 3"),
        ("sub/mine", "1 7"),
    ];
    for (name, majmin) in want {
        let line = out.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or("");
        assert!(
            line.starts_with(&format!("{name} character special file {majmin} ")),
            "/dev/{name}: {line:?}\n{out}"
        );
    }
    let it = out.lines().find(|l| l.starts_with("itzero ")).unwrap();
    assert!(it.ends_with(" 640 0:0"), "fileMode not applied: {it}");
    let null = out.lines().find(|l| l.starts_with("null ")).unwrap();
    assert!(null.ends_with(" 666 0:0"), "a default device's mode or owner: {null}");
    let owned = out.lines().find(|l| l.starts_with("sub/owned ")).unwrap();
    assert!(owned.ends_with(" 1602 1234:5678"), "fileMode, uid or gid not applied: {owned}");
    let mine = out.lines().find(|l| l.starts_with("sub/mine ")).unwrap();
    assert!(mine.ends_with(" 666 0:42"), "gid without uid not applied: {mine}");
    assert!(out.contains(" 00 00 00 00"), "reading the configured device failed:\n{out}");
    assert!(out.contains("null-ok"));
}

/// Without a /dev mount the image's own /dev gets the nodes: what it
/// already has under a device's name (a file, a symlink) is replaced, and
/// in a set-group-ID /dev a node still gets the configured group.
#[test]
fn devices_replace_the_images_files_in_its_own_dev() {
    require_root!();
    let mut env = TestEnv::new("mnt-devices-image");
    env.config["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/dev");
    env.config["root"]["readonly"] = json!(false);
    let dev = env.rootfs.join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(dev.join("zero"), "a file of the image\n").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dev.join("full")).unwrap();
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    std::fs::set_permissions(&dev, std::fs::Permissions::from_mode(0o2755)).unwrap();
    std::os::unix::fs::chown(&dev, Some(0), Some(77)).unwrap();
    env.config["linux"]["devices"] = json!([{"path": "/dev/grp", "type": "c", "major": 1, "minor": 5, "fileMode": 0o644, "gid": 0}]);
    let out = env.run_sh_ok("for d in zero full null grp; do echo $d $(stat -c '%F %t %T %a %u:%g' /dev/$d); done");
    for (name, want) in [("zero", "character special file 1 5 666 0:0"), ("full", "character special file 1 7 666 0:0"), ("null", "character special file 1 3 666 0:0"), ("grp", "character special file 1 5 644 0:0")] {
        let line = out.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or("");
        assert_eq!(line, format!("{name} {want}"), "/dev/{name}\n{out}");
    }
    assert!(env.rootfs.join("etc/hostname").symlink_metadata().map_or(true, |m| !m.file_type().is_char_device()), "a node was made through the image's symlink");
}

#[test]
fn symlinked_mount_destination_stays_in_rootfs() {
    require_root!();
    let mut env = TestEnv::new("mnt-symlink");
    let host_dir = PathBuf::from(format!("/tmp/it-evil-{}", env.token));
    fs::create_dir_all(&host_dir).unwrap();
    fs::write(host_dir.join("marker"), "host").unwrap();
    {
        let h = host_dir.clone();
        env.on_cleanup(move || {
            let _ = nix::mount::umount2(&h, nix::mount::MntFlags::MNT_DETACH);
            let _ = fs::remove_dir_all(&h);
        });
    }
    std::os::unix::fs::symlink(&host_dir, env.rootfs.join("evil")).unwrap();
    env.add_mount(json!({
        "destination": "/evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]
    }));
    let inside = host_dir.to_string_lossy().into_owned();
    let out = env.run_sh(&format!(
        "echo pwned > /evil/pwned; ls -a /evil; grep ' {inside} ' /proc/mounts"
    ));
    // Either the runtime refuses the config, or the mount lands inside the
    // rootfs; in both cases the host directory must be untouched.
    let entries: Vec<String> = fs::read_dir(&host_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["marker"], "host dir {} was modified: {}", host_dir.display(), out.describe());
    assert_eq!(fs::read_to_string(host_dir.join("marker")).unwrap(), "host");
    assert!(mounts_under(&host_dir).is_empty(), "tmpfs mounted on the host at {}", host_dir.display());
    out.ok();
    assert!(out.stdout.contains("pwned"), "{}", out.describe());
    assert!(!out.stdout.contains("marker"), "container saw the host dir through the symlink: {}", out.describe());
    assert!(out.stdout.contains(&format!("tmpfs {inside} tmpfs")), "mount not at the in-rootfs target: {}", out.describe());
    // the tmpfs target was created inside the rootfs
    assert!(env.rootfs.join(inside.trim_start_matches('/')).is_dir());
}
