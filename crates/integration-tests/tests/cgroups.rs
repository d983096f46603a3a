//! cgroup handling as runc does it, and `linux.cgroupsPath` confined to the
//! cgroup hierarchies: a path cannot leave them, the hierarchy root is
//! refused, and a cgroup the runtime did not create is never removed nor
//! killed wholesale. Every test checks that the host is left as it was.

use serde_json::json;
use skiff_integration_tests::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

const ROOT: &str = "/sys/fs/cgroup";

fn is_v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

fn hybrid_unified() -> bool {
    Path::new(ROOT).join("unified/cgroup.procs").exists()
}

/// The roots of every cgroup hierarchy (the v2 root alone on a v2 host).
fn hierarchies() -> Vec<PathBuf> {
    if is_v2() {
        return vec![PathBuf::from(ROOT)];
    }
    let mut v: Vec<PathBuf> = fs::read_dir(ROOT).unwrap().flatten().map(|e| e.path()).filter(|p| p.join("cgroup.procs").exists()).collect();
    v.sort();
    v
}

/// Creates `<hierarchy>/<rel>` in every hierarchy (cpuset filled in), and
/// registers their removal (rmdir only) on cleanup.
fn make_cgroup(env: &TestEnv, rel: &str) -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = hierarchies().iter().map(|h| h.join(rel)).collect();
    for d in &dirs {
        fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if is_v2() || !fs::read_to_string(d.join(f)).is_ok_and(|v| v.trim().is_empty()) {
                continue;
            }
            let pv = fs::read_to_string(d.parent().unwrap().join(f)).unwrap();
            fs::write(d.join(f), pv.trim()).unwrap();
        }
    }
    let c = dirs.clone();
    env.on_cleanup(move || {
        for d in &c {
            let _ = fs::write(d.join("freezer.state"), "THAWED");
            let _ = fs::write(d.join("cgroup.freeze"), "0");
        }
        for d in &c {
            // Only this test's processes can be in a cgroup it made.
            for p in fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default().lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            for _ in 0..250 {
                if fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    dirs
}

/// A `sleep` on the host standing for "someone else's process", moved into
/// `dirs` when given; killed on cleanup.
fn sentinel(env: &TestEnv, dirs: &[PathBuf]) -> i32 {
    let child: Child = Command::new("sleep").arg("1000").spawn().expect("spawn sleep");
    let pid = child.id() as i32;
    for d in dirs {
        fs::write(d.join("cgroup.procs"), pid.to_string()).unwrap_or_else(|e| panic!("move sentinel into {}: {e}", d.display()));
    }
    let cell = std::sync::Mutex::new(Some(child));
    env.on_cleanup(move || {
        if let Some(mut c) = cell.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    });
    pid
}

/// The `/proc/self/cgroup` of the container, as (hierarchy, path) pairs.
fn parse_cgroup(text: &str) -> Vec<(String, String)> {
    text.lines().filter_map(|l| {
        let mut f = l.splitn(3, ':');
        let _ = f.next()?;
        Some((f.next()?.to_string(), f.next()?.to_string()))
    }).collect()
}

#[test]
fn joins_the_unified_hierarchy_on_a_hybrid_host() {
    require_root!();
    if is_v2() || !hybrid_unified() {
        skip_message("SKIPPED joins_the_unified_hierarchy_on_a_hybrid_host: not a hybrid host\n");
        return;
    }
    let mut env = TestEnv::new("cg-unified");
    let out = env.run_sh_ok("cat /proc/self/cgroup");
    let cg = parse_cgroup(&out);
    let want = env.cgroup_path(&env.id);
    assert!(cg.iter().any(|(h, p)| h.is_empty() && *p == want), "not in the unified cgroup {want}:\n{out}");
    env.assert_no_leftovers(&env.id);
}

#[test]
fn default_cgroup_path_is_below_the_runtimes_own_cgroup() {
    require_root!();
    let mut env = TestEnv::new("cg-default");
    env.config["linux"]["cgroupsPath"] = json!("");
    let out = env.run_sh_ok("cat /proc/self/cgroup");
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let id = env.id.clone();
    for (h, p) in parse_cgroup(&out) {
        let mine = parse_cgroup(&own).into_iter().find(|(oh, _)| *oh == h).map(|(_, p)| p).unwrap_or_default();
        let base = if h.is_empty() && !is_v2() {
            // runc joins the hybrid unified hierarchy below its root
            "/".to_string()
        } else if h.is_empty() {
            // pure v2: below the parent of the runtime's own cgroup
            Path::new(&mine).parent().unwrap_or(Path::new("/")).to_string_lossy().into_owned()
        } else {
            mine
        };
        let want = Path::new(&base).join(&id);
        assert_eq!(Path::new(&p), want, "hierarchy {h:?}: cgroup {p}, expected {} (the runtime's own {base} + id):\n{out}", want.display());
    }
    // Every v1 directory of the container is gone after the run.
    for h in hierarchies() {
        for line in parse_cgroup(&own) {
            let d = h.join(line.1.trim_start_matches('/')).join(&id);
            assert!(!d.exists(), "{} left behind", d.display());
        }
    }
}

#[test]
fn unified_resources_are_refused_on_cgroup_v1() {
    require_root!();
    if is_v2() {
        skip_message("SKIPPED unified_resources_are_refused_on_cgroup_v1: cgroup v2 host\n");
        return;
    }
    let env = {
        let mut e = TestEnv::new("cg-unified-v1");
        e.config["linux"]["resources"]["unified"] = json!({"pids.max": "10"});
        e
    };
    env.create().failed().short_error(5).stderr_mentions(&["linux.resources.unified"]);
    env.assert_no_leftovers(&env.id);
}

/// A loop device on a file of the test dir, using the BFQ scheduler; None
/// when the host cannot provide one.
fn bfq_loop_device(env: &TestEnv) -> Option<(String, u64, u64)> {
    let img = env.dir.join("disk.img");
    fs::write(&img, vec![0u8; 1 << 20]).ok()?;
    let out = Command::new("losetup").args(["--find", "--show"]).arg(&img).output().ok()?;
    let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || dev.is_empty() {
        return None;
    }
    let d = dev.clone();
    env.on_cleanup(move || {
        let _ = Command::new("losetup").args(["-d", &d]).status();
    });
    let name = dev.trim_start_matches("/dev/");
    fs::write(format!("/sys/block/{name}/queue/scheduler"), "bfq").ok()?;
    let (ma, mi) = stat_dev(Path::new(&dev)).map(|(_, _, a, b)| (a, b))?;
    Some((dev, ma, mi))
}

#[test]
fn blkio_weight_device_is_written() {
    require_root!();
    if is_v2() {
        skip_message("SKIPPED blkio_weight_device_is_written: cgroup v2 host\n");
        return;
    }
    let mut env = TestEnv::new("cg-bfq");
    let Some((_dev, ma, mi)) = bfq_loop_device(&env) else {
        skip_message("SKIPPED blkio_weight_device_is_written: no loop device with the bfq scheduler\n");
        return;
    };
    env.config["linux"]["resources"]["blockIO"] = json!({"weightDevice": [{"major": ma, "minor": mi, "weight": 444}]});
    let out = env.run_sh_ok("cat /sys/fs/cgroup/blkio/blkio.bfq.weight_device 2>/dev/null || cat /sys/fs/cgroup/blkio/blkio.weight_device");
    assert!(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == [format!("{ma}:{mi}").as_str(), "444"]), "no {ma}:{mi} 444 in the weight_device file:\n{out}");
    env.assert_no_leftovers(&env.id);
}

#[test]
fn non_empty_existing_cgroup_gets_runcs_warning() {
    require_root!();
    let env = TestEnv::new("cg-nonempty");
    let rel = env.cgroup_path(&env.id);
    let dirs = make_cgroup(&env, rel.trim_start_matches('/'));
    let other = sentinel(&env, &dirs);
    let out = env.create();
    out.ok();
    out.stderr_mentions(&["container's cgroup is not empty: 1 process(es) found"]);
    env.rt(&["delete", "--force", &env.id]).ok();
    assert!(pid_alive(other), "delete killed a process that was in the cgroup before the container");
    for d in &dirs {
        assert!(d.exists(), "delete removed the pre-existing cgroup {}", d.display());
    }
}

#[test]
fn frozen_existing_cgroup_is_refused() {
    require_root!();
    let env = TestEnv::new("cg-frozen");
    let rel = env.cgroup_path(&env.id);
    let dirs = make_cgroup(&env, rel.trim_start_matches('/'));
    let frozen: Vec<&PathBuf> = dirs.iter().filter(|d| d.join("freezer.state").exists() || d.join("cgroup.freeze").exists()).collect();
    for d in &frozen {
        if d.join("freezer.state").exists() {
            fs::write(d.join("freezer.state"), "FROZEN").unwrap();
        } else {
            fs::write(d.join("cgroup.freeze"), "1").unwrap();
        }
    }
    assert!(!frozen.is_empty(), "no freezer on this host");
    // Before the fix, create hung here forever (the init froze): bounded.
    env.write_config();
    let out = env.rt_timeout(&["create", "--bundle", env.bundle.to_str().unwrap(), &env.id], Duration::from_secs(15));
    out.failed().short_error(5).stderr_mentions(&["container's cgroup unexpectedly frozen"]);
    for d in &dirs {
        assert!(d.exists(), "the failed create removed the pre-existing cgroup {}", d.display());
    }
    assert!(!env.root.join(&env.id).exists(), "state left behind");
}

#[test]
fn device_deny_rule_covered_by_deny_all_is_not_written() {
    require_root!();
    if is_v2() {
        skip_message("SKIPPED device_deny_rule_covered_by_deny_all_is_not_written: cgroup v2 host\n");
        return;
    }
    let mut env = TestEnv::new("cg-devdeny");
    env.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwm"}
    ]);
    let out = env.run_sh_ok("cat /sys/fs/cgroup/devices/devices.list; echo x > /dev/null && echo null-ok");
    assert!(out.contains("null-ok"), "/dev/null not writable:\n{out}");
    assert!(out.lines().any(|l| l.trim() == "c 1:3 rwm"), "default allow rule missing:\n{out}");
    assert!(!out.contains("a *:* rwm"), "devices cgroup not in deny-all mode:\n{out}");
    assert!(!out.contains("c 1:11"), "rule for 1:11 present:\n{out}");
    env.assert_no_leftovers(&env.id);
}

// ---------------------------------------------------------------------------
// issue 7: linux.cgroupsPath confinement

#[test]
fn cgroups_path_cannot_leave_the_hierarchy() {
    require_root!();
    let mut env = TestEnv::new("cg-escape");
    // Relative to /sys/fs/cgroup/<hierarchy>, four ".." reach "/": without
    // cleaning, this creates <test dir>/evil/cgroup.procs on the host.
    let evil = env.dir.join("evil");
    let path = format!("../../../..{}", evil.display());
    env.config["linux"]["cgroupsPath"] = json!(path);
    let host_tree: Vec<PathBuf> = hierarchies().iter().map(|h| h.join(evil.strip_prefix("/").unwrap())).collect();
    {
        let roots: Vec<PathBuf> = hierarchies().iter().map(|h| h.join("tmp")).collect();
        env.on_cleanup(move || {
            // rmdir the cgroup tree "tmp/skiff-it/<token>/evil" (empty dirs only)
            for (r, leaf) in roots.iter().zip(host_tree.iter()) {
                let mut d = leaf.clone();
                while d.starts_with(r) {
                    let _ = fs::remove_dir(&d);
                    if !d.pop() {
                        break;
                    }
                }
            }
        });
    }
    let out = env.run_sh("cat /proc/self/cgroup");
    assert!(!evil.exists(), "cgroupsPath {path:?} created {} on the host", evil.display());
    out.ok();
    let suffix = evil.to_string_lossy().into_owned();
    assert!(parse_cgroup(&out.stdout).iter().any(|(_, p)| p.ends_with(&suffix)), "container not in a cgroup named {suffix}:\n{}", out.stdout);
    for h in hierarchies() {
        let d = h.join(evil.strip_prefix("/").unwrap());
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn cgroups_path_at_the_hierarchy_root_is_refused() {
    require_root!();
    if is_runc() {
        // Observed with runc 1.1.5: it accepts "/", joins every hierarchy
        // root, fails, and its cleanup then tries to rmdir each hierarchy
        // root and the runtime's own memory cgroup (EBUSY saved them).
        skip_message("SKIPPED cgroups_path_at_the_hierarchy_root_is_refused: runc accepts \"/\" and its cleanup removes hierarchy roots; not run against it\n");
        return;
    }
    for (i, path) in ["/", "/..", "/../.."].iter().enumerate() {
        let mut env = TestEnv::new(&format!("cg-root{i}"));
        // No pid namespace: a cleanup that swept the root cgroup would kill
        // the host (as it did before the fix, in a v2 VM).
        env.remove_namespace("pid");
        let other = sentinel(&env, &[]);
        env.config["linux"]["cgroupsPath"] = json!(path);
        let out = env.create();
        out.failed().short_error(5).stderr_mentions(&["linux.cgroupsPath"]);
        assert!(pid_alive(other), "cgroupsPath {path:?}: a host process was killed");
        assert!(!env.root.join(&env.id).exists(), "cgroupsPath {path:?}: state left behind");
    }
}

#[test]
fn shared_existing_cgroup_is_neither_killed_nor_removed() {
    require_root!();
    let mut env = TestEnv::new("cg-shared");
    let shared = format!("it-{}-shared", env.token);
    let dirs = make_cgroup(&env, &shared);
    let other = sentinel(&env, &dirs);
    // No pid namespace: kill --all and delete must sweep the cgroup, and
    // must not take the process that was there before with them.
    env.remove_namespace("pid");
    env.config["linux"]["cgroupsPath"] = json!(format!("/{shared}"));
    let out = env.bind_dir("out", "/out", false);
    env.set_sh("sleep 1000 & echo $! > /out/child; wait");
    env.create().ok();
    env.start().ok();
    // (the shell creates the file before it writes the pid into it)
    let read_child = || fs::read_to_string(out.join("child")).ok().and_then(|s| s.trim().parse::<i32>().ok());
    assert!(wait_until(Duration::from_secs(10), || read_child().is_some()), "container did not start");
    let child = read_child().unwrap();
    env.rt(&["kill", "--all", &env.id, "KILL"]).ok();
    env.wait_status("stopped");
    assert!(pid_alive(other), "kill --all killed a process that was in the cgroup before the container");
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(child)), "kill --all left the container's process {child} alive");
    env.rt(&["delete", "--force", &env.id]).ok();
    assert!(pid_alive(other), "delete killed a process that was in the cgroup before the container");
    for d in &dirs {
        assert!(d.exists(), "delete removed the pre-existing cgroup {}", d.display());
    }
}

#[test]
fn relative_cgroups_path_with_limits_is_below_the_runtimes_own_cgroup() {
    require_root!();
    if is_v2() {
        skip_message("SKIPPED relative_cgroups_path_with_limits_is_below_the_runtimes_own_cgroup: cgroup v2 host\n");
        return;
    }
    let mut env = TestEnv::new("cg-relative");
    let rel = format!("it-{}-rel", env.token);
    env.config["linux"]["cgroupsPath"] = json!(rel);
    env.config["linux"]["resources"]["memory"] = json!({"limit": 52428800});
    env.config["linux"]["resources"]["pids"] = json!({"limit": 77});
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let mine = |h: &str| parse_cgroup(&own).into_iter().find(|(oh, _)| oh == h).map(|(_, p)| p).unwrap_or_default();
    let out = env.run_sh_ok("cat /proc/self/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max");
    for (h, p) in parse_cgroup(&out) {
        if h.is_empty() {
            continue;
        }
        let want = Path::new(&mine(&h)).join(&rel);
        assert_eq!(Path::new(&p), want, "hierarchy {h}: cgroup {p}, expected the runtime's own + {rel}:\n{out}");
    }
    assert!(out.lines().any(|l| l.trim() == "52428800"), "memory limit not applied:\n{out}");
    assert!(out.lines().any(|l| l.trim() == "77"), "pids limit not applied:\n{out}");
    for h in hierarchies() {
        for (_, p) in parse_cgroup(&own) {
            let d = h.join(p.trim_start_matches('/')).join(&rel);
            assert!(!d.exists(), "{} left behind", d.display());
        }
    }
}

/// cgroup v2: a nested path gets every controller turned on along it (the
/// limits apply in the leaf), the init is cloned straight into the leaf
/// (CLONE_INTO_CGROUP), and `delete` removes the directories skiff made.
#[test]
fn nested_cgroups_path_on_v2_gets_its_limits_and_the_init_is_born_in_it() {
    require_root!();
    if !is_v2() {
        skip_message("SKIPPED nested_cgroups_path_on_v2_gets_its_limits_and_the_init_is_born_in_it: not a cgroup v2 host\n");
        return;
    }
    let mut env = TestEnv::new("cg-nested-v2");
    let top = format!("it-{}-top", env.token);
    env.config["linux"]["cgroupsPath"] = json!(format!("/{top}/a/b"));
    env.config["linux"]["resources"] = json!({"memory": {"limit": 52428800}, "pids": {"limit": 77}, "cpu": {"quota": 50000, "period": 100000}});
    env.set_args(&["sleep", "300"]);
    env.write_config();
    let b = env.bundle.to_string_lossy().into_owned();
    let out = env.rt(&["--debug", "run", "-d", "--bundle", &b, &env.id]);
    out.ok();
    let leaf = Path::new(ROOT).join(&top).join("a/b");
    let read = |f: &str| fs::read_to_string(leaf.join(f)).unwrap_or_else(|e| panic!("{}: {e}", leaf.join(f).display())).trim().to_string();
    assert_eq!(read("memory.max"), "52428800");
    assert_eq!(read("pids.max"), "77");
    assert_eq!(read("cpu.max"), "50000 100000");
    let pid = env.state()["pid"].as_i64().unwrap();
    assert_eq!(fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap().trim(), format!("0::/{top}/a/b"));
    if !is_runc() {
        assert!(out.stderr.contains("init cloned into its cgroup"), "the init was moved after the clone:\n{}", out.stderr);
    }
    env.rt(&["delete", "--force", &env.id]).ok();
    assert!(!Path::new(ROOT).join(&top).exists(), "{top} left behind");
}
