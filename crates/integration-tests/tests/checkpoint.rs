//! `checkpoint` and `restore` with CRIU (project issue 13). CRIU 3.17 does
//! not work on this host's kernel (`criu check` fails on its vDSO): the
//! tests that need it say SKIPPED there and really run in the VM
//! (`scripts/vm-test.sh --strict checkpoint`, Debian's 6.1 kernel). The
//! error tests run everywhere. Every test runs against runc too
//! (`SKIFF_BIN=/usr/sbin/runc scripts/vm-test.sh checkpoint`).

use serde_json::json;
use skiff_integration_tests::*;
use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

/// CRIU commands are slow under the VM's emulation (a dump takes seconds).
const CRIU_TIMEOUT: Duration = Duration::from_secs(120);

fn criu_works() -> bool {
    std::process::Command::new("criu").arg("check").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Skips the test where CRIU cannot work (this host's kernel).
macro_rules! require_criu {
    () => {
        require_root!();
        if !criu_works() {
            skip_message(&format!("SKIPPED {}:{}: `criu check` fails on this kernel (the tests run in the VM: scripts/vm-test.sh --strict checkpoint)\n", file!(), line!()));
            return;
        }
    };
}

/// A container appending a count to `/data/log` (a bind mount of the
/// test's directory: an external mount for CRIU) every 0.1 s, its stdio on
/// the container's own /dev/null. Returns the env and the host path of
/// the log.
fn counter(name: &str) -> (TestEnv, PathBuf) {
    let mut env = TestEnv::new(name);
    env.timeout = CRIU_TIMEOUT;
    let data = env.bind_dir("data", "/data", false);
    env.set_sh("exec </dev/null >/dev/null 2>&1; i=0; while :; do i=$((i+1)); echo $i >> /data/log; sleep 0.1; done");
    (env, data.join("log"))
}

/// The counts logged so far.
fn counts(p: &Path) -> Vec<u64> {
    numbers(&fs::read(p).unwrap_or_default())
}

fn count(p: &Path) -> u64 {
    counts(p).last().copied().unwrap_or(0)
}

/// Waits until the log has `n` more counts than `since`; returns them.
#[track_caller]
fn wait_counts(p: &Path, since: usize, n: usize) -> Vec<u64> {
    let ok = wait_until(Duration::from_secs(60), || counts(p).len() >= since + n);
    let all = counts(p);
    assert!(ok, "the counter did not count {n} more after {since} (log: {all:?})");
    all[since..].to_vec()
}

/// The counter no longer moves (the process is gone or frozen).
#[track_caller]
fn assert_stopped(p: &Path) {
    let a = counts(p).len();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(counts(p).len(), a, "the counter still moves");
}

/// The restored counter went on from the checkpoint: its first count
/// follows one the container had reached when the dump started (`from`)
/// and no later than the last it reached before it ended (`to`).
#[track_caller]
fn assert_continues(resumed: &[u64], from: u64, to: u64) {
    let first = resumed[0];
    assert!(first > from && first <= to + 1, "the restored counter starts at {first}: not from the checkpoint (between {from} and {to}): {resumed:?}");
    assert!(resumed.windows(2).all(|w| w[1] == w[0] + 1), "not one count after the other: {resumed:?}");
}

fn dir(env: &TestEnv, name: &str) -> String {
    env.dir.join(name).to_string_lossy().into_owned()
}

/// After a checkpoint without --leave-running the container is gone, as
/// with runc: no state, no process, no cgroup; `delete --force` succeeds.
#[track_caller]
fn assert_checkpointed_away(env: &TestEnv, id: &str) {
    env.state_out(id).failed().stderr_mentions(&["does not exist", "not exist"]);
    env.rt(&["delete", "--force", id]).ok();
    env.assert_no_leftovers(id);
}

fn bundle(env: &TestEnv) -> String {
    env.bundle.to_string_lossy().into_owned()
}

/// `restore --detach` of `id` from `image` (written config for `id`).
fn restore(env: &TestEnv, id: &str, image: &str, extra: &[&str]) -> Output {
    env.write_config_for(id);
    let b = bundle(env);
    let mut args = vec!["restore", "--detach", "--bundle", b.as_str(), "--image-path", image];
    args.extend_from_slice(extra);
    args.push(id);
    let out = env.rt(&args);
    if out.success() {
        env.try_state_id(id);
    }
    out
}

/// A child of ours (the runtime) with its stdio on pipes, as the shim runs
/// runc; returns the child and the read end of its stdout.
fn spawn_piped(env: &TestEnv, args: &[&str]) -> (Child, OwnedFd) {
    let mut cmd = env.command(args);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn the runtime");
    let out: OwnedFd = child.stdout.take().expect("stdout").into();
    (child, out)
}

/// Waits for the runtime started by [`spawn_piped`] (its stdio stays open
/// in the container), failing with its stderr.
#[track_caller]
fn wait_piped(child: &mut Child) {
    let mut status = None;
    let ok = wait_until(CRIU_TIMEOUT, || {
        status = child.try_wait().expect("wait");
        status.is_some()
    });
    assert!(ok, "the runtime did not exit");
    if !status.unwrap().success() {
        // (The container may hold the pipe: read what is there, not to EOF.)
        let err = child.stderr.take().map(|e| read_fd_until_eof(&OwnedFd::from(e), Duration::from_secs(2))).unwrap_or_default();
        panic!("the runtime failed ({:?}): {}", status, String::from_utf8_lossy(&err));
    }
}

fn numbers(data: &[u8]) -> Vec<u64> {
    String::from_utf8_lossy(data).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// The shim's way: the container's stdio are the caller's pipes; after a
/// checkpoint the restored container writes to the *new* caller's pipes
/// (the image names the old ones), continues counting from where it was,
/// and is a child of the caller (a subreaper) once the runtime has exited.
/// go-runc's argument shapes, `-no-subreaper` with one dash included.
#[test]
fn counter_restored_on_the_callers_pipes_continues_counting() {
    require_criu!();
    let mut env = TestEnv::new("cr-pipes");
    env.timeout = CRIU_TIMEOUT;
    env.set_sh("i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done");
    env.config["root"]["readonly"] = json!(false);
    env.write_config();
    // SAFETY: plain integer arguments; the test process becomes the
    // subreaper the restored container is reparented to, like the shim.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let b = bundle(&env);
    let (mut run, out1) = spawn_piped(&env, &["run", "-d", "--bundle", &b, &env.id]);
    wait_piped(&mut run);
    let before = numbers(&read_fd_until_eof(&out1, Duration::from_secs(2)));
    assert!(before.len() >= 3, "the container did not count on its stdout: {before:?}");
    let (image, work) = (dir(&env, "image"), dir(&env, "work"));
    env.rt(&["checkpoint", "--image-path", &image, "--work-path", &work, &env.id]).ok();
    // The writer is gone: the pipe ends.
    let rest = numbers(&read_fd_until_eof(&out1, Duration::from_secs(10)));
    let last = *rest.last().or(before.last()).unwrap();
    assert_checkpointed_away(&env, &env.id);
    assert!(Path::new(&image).join("descriptors.json").exists() || is_runc());

    env.write_config();
    let pid_file = dir(&env, "restored.pid");
    let (mut rst, out2) = spawn_piped(&env, &["restore", "--detach", "--pid-file", &pid_file, "--bundle", &b, "--image-path", &image, "--work-path", &dir(&env, "work2"), "-no-subreaper", &env.id]);
    wait_piped(&mut rst);
    let st = env.state();
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert_eq!(fs::read_to_string(&pid_file).unwrap().trim(), pid.to_string(), "the pid file names the restored init");
    let after = numbers(&read_fd_until_eof(&out2, Duration::from_secs(3)));
    assert!(after.len() >= 3, "the restored container does not write to the new caller's stdout: {after:?}");
    assert!(after[0] >= last && after[0] <= last + 3, "the counter did not continue from {last}: {after:?}");
    assert!(after.windows(2).all(|w| w[1] == w[0] + 1), "not one count after the other: {after:?}");
    let ppid = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap().rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse::<i32>().unwrap();
    assert_eq!(ppid, std::process::id() as i32, "the restored init is not a child of the caller's subreaper");
    // The restored container is a container like another.
    env.rt(&["exec", &env.id, "true"]).ok();
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

/// `--leave-running`: the container goes on as it was; its image restores
/// into a new id (another cgroup, another state) once it is deleted.
#[test]
fn leave_running_then_restore_into_a_new_id() {
    require_criu!();
    let (env, log) = counter("cr-leave");
    env.run(&["-d"]).ok();
    let pid = env.state()["pid"].clone();
    wait_counts(&log, 0, 5);
    let from = count(&log);
    let image = dir(&env, "image");
    env.rt(&["checkpoint", "--leave-running", "--image-path", &image, &env.id]).ok();
    let to = count(&log);
    let st = env.state();
    assert_eq!((st["status"].as_str(), &st["pid"]), (Some("running"), &pid), "--leave-running changed the container");
    wait_counts(&log, counts(&log).len(), 3);
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
    assert_stopped(&log);
    let seen = counts(&log).len();

    let new = env.new_id();
    restore(&env, &new, &image, &[]).ok();
    assert_eq!(env.state_id(&new)["status"], "running");
    assert!(env.try_state_id(&env.id).is_none(), "the old id came back");
    assert_continues(&wait_counts(&log, seen, 3), from, to);
    let pid = env.state_id(&new)["pid"].as_i64().unwrap();
    assert!(env.cgroup_processes(&new).contains(&(pid as i32)), "the restored init is not in the new id's cgroup");
    assert!(env.cgroup_dirs(&env.id).is_empty(), "the restore made the old id's cgroup again");
    env.rt(&["delete", "--force", &new]).ok();
    env.assert_no_leftovers(&new);
}

/// `--pre-dump` leaves the container running and tracks its memory; the
/// final dump with `--parent-path` builds on it, and restores.
#[test]
fn pre_dump_then_dump_with_parent_path() {
    require_criu!();
    let (env, log) = counter("cr-predump");
    env.run(&["-d"]).ok();
    wait_counts(&log, 0, 5);
    let (pre, fin) = (dir(&env, "pre"), dir(&env, "final"));
    env.rt(&["checkpoint", "--pre-dump", "--image-path", &pre, &env.id]).ok();
    assert_eq!(env.state()["status"], "running", "--pre-dump stopped the container");
    wait_counts(&log, counts(&log).len(), 3);
    assert!(fs::read_dir(&pre).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("pages-")), "the pre-dump wrote no memory pages");
    let from = count(&log);
    env.rt(&["checkpoint", "--image-path", &fin, "--parent-path", "../pre", &env.id]).ok();
    let to = count(&log);
    assert!(fs::symlink_metadata(Path::new(&fin).join("parent")).is_ok(), "the dump does not name its parent images");
    assert_checkpointed_away(&env, &env.id);
    let seen = counts(&log).len();
    restore(&env, &env.id, &fin, &[]).ok();
    assert_continues(&wait_counts(&log, seen, 3), from, to);
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
    // A parent path that is not there is refused before CRIU runs.
    env.run(&["-d"]).ok();
    env.rt(&["checkpoint", "--image-path", &dir(&env, "x"), "--parent-path", "../nothing", &env.id]).failed();
    assert_eq!(env.state()["status"], "running");
}

/// `restore` without `--detach` waits for the container, like `run`, and
/// exits with its exit code; the container is removed afterwards.
#[test]
fn restore_in_the_foreground_exits_with_the_container() {
    require_criu!();
    let (mut env, log) = counter("cr-fg");
    env.set_sh("exec </dev/null >/dev/null 2>&1; i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo $i >> /data/log; sleep 0.1; done; exit 7");
    env.run(&["-d"]).ok();
    wait_counts(&log, 0, 5);
    let from = count(&log);
    let image = dir(&env, "image");
    env.rt(&["checkpoint", "--image-path", &image, &env.id]).ok();
    let to = count(&log);
    assert_checkpointed_away(&env, &env.id);
    let seen = counts(&log).len();
    env.write_config();
    let b = bundle(&env);
    let out = env.rt(&["restore", "--bundle", &b, "--image-path", &image, &env.id]);
    assert_eq!(out.code, 7, "restore did not exit with the container's code:\n{}", out.describe());
    let after = counts(&log)[seen..].to_vec();
    assert_continues(&after, from, to);
    assert_eq!(after.last(), Some(&60), "the restored container did not count to its end: {after:?}");
    env.assert_no_leftovers(&env.id);
}

/// The other CRIU flags callers pass reach CRIU and work together:
/// `--file-locks`, `--ext-unix-sk`, `--auto-dedup`, `--manage-cgroups-mode
/// full` on the dump; `--empty-ns network` (a new, empty network namespace),
/// `--file-locks`, `--manage-cgroups-mode full` on the restore.
#[test]
fn the_other_criu_flags_are_taken() {
    require_criu!();
    let (env, log) = counter("cr-flags");
    env.run(&["-d"]).ok();
    wait_counts(&log, 0, 5);
    let from = count(&log);
    let image = dir(&env, "image");
    env.rt(&["checkpoint", "--file-locks", "--ext-unix-sk", "--auto-dedup", "--manage-cgroups-mode", "full", "--image-path", &image, &env.id]).ok();
    let to = count(&log);
    assert_checkpointed_away(&env, &env.id);
    let seen = counts(&log).len();
    restore(&env, &env.id, &image, &["--empty-ns", "network", "--file-locks", "--manage-cgroups-mode", "full"]).ok();
    assert_continues(&wait_counts(&log, seen, 3), from, to);
    let pid = env.state()["pid"].as_i64().unwrap();
    // (Namespace inode numbers are reused: only "not the host's" can be told.)
    assert_ne!(fs::read_link(format!("/proc/{pid}/ns/net")).unwrap().to_string_lossy(), TestEnv::host_ns("net"), "--empty-ns network: the host's network namespace");
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

/// A free TCP port on the loopback (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether something listens on `port` (from /proc/net/tcp, without
/// connecting: a page server serves one connection only).
fn listening(port: u16) -> bool {
    let hex = format!(":{port:04X} ");
    fs::read_to_string("/proc/net/tcp").unwrap_or_default().lines().any(|l| l.split_whitespace().nth(1).is_some_and(|a| format!("{a} ").ends_with(&hex)) && l.split_whitespace().nth(3) == Some("0A"))
}

/// A `criu` helper process of the test's (page server, lazy-pages daemon),
/// killed at clean-up.
fn criu_helper(env: &TestEnv, args: &[&str], log: &str) -> u32 {
    let err = fs::File::create(env.dir.join(log)).unwrap();
    let child = std::process::Command::new("criu").args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(err).spawn().expect("spawn criu");
    let pid = child.id();
    env.on_cleanup(move || {
        // SAFETY: a plain kill of our own child.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let mut child = child;
        let _ = child.wait();
    });
    pid
}

/// `--page-server ADDRESS:PORT`: the memory pages go to a CRIU page server
/// (`criu page-server`, the receiving side of a migration), the rest of
/// the images to `--image-path`; the two together restore.
#[test]
fn pages_sent_to_a_page_server_restore() {
    require_criu!();
    let (env, log) = counter("cr-pagesrv");
    env.run(&["-d"]).ok();
    wait_counts(&log, 0, 5);
    let (image, pages) = (dir(&env, "image"), dir(&env, "pages"));
    fs::create_dir_all(&pages).unwrap();
    let port = free_port();
    criu_helper(&env, &["page-server", "--images-dir", &pages, "--address", "127.0.0.1", "--port", &port.to_string()], "page-server.log");
    assert!(wait_until(Duration::from_secs(30), || listening(port)), "the page server does not listen");
    let from = count(&log);
    env.rt(&["checkpoint", "--image-path", &image, "--page-server", &format!("127.0.0.1:{port}"), &env.id]).ok();
    let to = count(&log);
    let names = |d: &str| -> Vec<String> { fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect() };
    assert!(names(&pages).iter().any(|n| n.starts_with("pages-")), "the page server got no pages: {:?}", names(&pages));
    assert!(!names(&image).iter().any(|n| n.starts_with("pages-")), "pages were written locally: {:?}", names(&image));
    assert_checkpointed_away(&env, &env.id);
    for n in names(&image) {
        let src = Path::new(&image).join(&n);
        if src.is_file() {
            fs::copy(&src, Path::new(&pages).join(&n)).unwrap();
        }
    }
    let seen = counts(&log).len();
    restore(&env, &env.id, &pages, &[]).ok();
    assert_continues(&wait_counts(&log, seen, 3), from, to);
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

/// `--lazy-pages` with `--status-fd` and `--page-server` (post-copy
/// migration): the dump leaves the memory behind and serves it; once the
/// status fd says so, `criu lazy-pages` fetches it for a `restore
/// --lazy-pages`, and the container counts on.
#[test]
fn lazy_pages_restore_fetches_memory_from_the_dump() {
    require_criu!();
    let uffd = std::process::Command::new("criu").args(["check", "--feature", "uffd-noncoop"]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !uffd {
        skip_message(&format!("SKIPPED {}: the kernel has no non-cooperative userfaultfd for lazy pages\n", file!()));
        return;
    }
    let (env, log) = counter("cr-lazy");
    env.run(&["-d"]).ok();
    wait_counts(&log, 0, 5);
    let image = dir(&env, "image");
    let port = free_port();
    let (rd, wr) = nix::unistd::pipe().unwrap();
    let from = count(&log);
    // The dump goes on serving pages until they are fetched: run it aside,
    // the status fd its descriptor 3.
    let mut cmd = env.command(&["checkpoint", "--image-path", &image, "--lazy-pages", "--page-server", &format!("127.0.0.1:{port}"), "--status-fd", "3", &env.id]);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(fs::File::create(env.dir.join("dump.err")).unwrap());
    let wr_raw = std::os::fd::AsRawFd::as_raw_fd(&wr);
    // SAFETY: between fork and exec only dup2, async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || if libc::dup2(wr_raw, 3) < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
    }
    let mut dump = cmd.spawn().expect("spawn checkpoint");
    drop(wr);
    let ready = read_fd_until_eof(&rd, CRIU_TIMEOUT);
    assert_eq!(ready, [0u8], "--status-fd did not report the lazy pages ready (dump stderr: {})", fs::read_to_string(env.dir.join("dump.err")).unwrap_or_default());
    let to = count(&log);
    // The daemon and the restore meet on lazy-pages.socket in the work
    // directory: the image directory for both.
    criu_helper(&env, &["lazy-pages", "--page-server", "--address", "127.0.0.1", "--port", &port.to_string(), "--images-dir", &image, "--work-dir", &image], "lazy-pages.log");
    let sock = Path::new(&image).join("lazy-pages.socket");
    assert!(wait_until(Duration::from_secs(30), || sock.exists()), "criu lazy-pages did not start: {}", fs::read_to_string(env.dir.join("lazy-pages.log")).unwrap_or_default());
    let seen = counts(&log).len();
    // (Under a new id: the dump, still serving, removes the old one when
    // it is done, as on the source host of a migration.)
    let new = env.new_id();
    restore(&env, &new, &image, &["--lazy-pages", "--work-path", &image]).ok();
    assert_continues(&wait_counts(&log, seen, 3), from, to);
    let ok = wait_until(CRIU_TIMEOUT, || dump.try_wait().ok().flatten().is_some());
    assert!(ok, "the lazy dump did not finish once its pages were fetched");
    assert!(dump.wait().unwrap().success(), "the lazy dump failed: {}", fs::read_to_string(env.dir.join("dump.err")).unwrap_or_default());
    env.state_out(&env.id).failed().stderr_mentions(&["does not exist", "not exist"]);
    env.rt(&["delete", "--force", &new]).ok();
    env.assert_no_leftovers(&new);
    env.assert_no_leftovers(&env.id);
}

/// A network namespace given by path (as CNI callers give it) is dumped as
/// external and the restored container is put back in that namespace.
#[test]
fn a_network_namespace_by_path_is_given_back() {
    require_criu!();
    let (mut env, log) = counter("cr-netns");
    let name = format!("skiff-it-{}", env.token);
    let ok = std::process::Command::new("ip").args(["netns", "add", &name]).status().is_ok_and(|s| s.success());
    assert!(ok, "ip netns add {name}");
    let n = name.clone();
    env.on_cleanup(move || {
        let _ = std::process::Command::new("ip").args(["netns", "del", &n]).status();
    });
    let path = format!("/run/netns/{name}");
    env.set_namespace("network", Some(&path));
    env.run(&["-d"]).ok();
    wait_counts(&log, 0, 5);
    let image = dir(&env, "image");
    env.rt(&["checkpoint", "--image-path", &image, &env.id]).ok();
    assert_checkpointed_away(&env, &env.id);
    restore(&env, &env.id, &image, &[]).ok();
    let pid = env.state()["pid"].as_i64().unwrap();
    let inode = |p: &str| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
    assert_eq!(inode(&format!("/proc/{pid}/ns/net")), inode(&path), "the restored container is not in {path}");
    wait_counts(&log, counts(&log).len(), 3);
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

/// An established TCP connection inside the container (busybox nc: a
/// listener and a client sending a count) survives with
/// `--tcp-established`; without the flag CRIU refuses and nothing changes.
#[test]
fn tcp_connection_survives_with_tcp_established() {
    require_criu!();
    let (mut env, _) = counter("cr-tcp");
    let got = env.dir.join("data/got");
    env.config["process"]["capabilities"]["bounding"].as_array_mut().unwrap().push(json!("CAP_NET_ADMIN"));
    env.config["process"]["capabilities"]["effective"].as_array_mut().unwrap().push(json!("CAP_NET_ADMIN"));
    env.config["process"]["capabilities"]["permitted"].as_array_mut().unwrap().push(json!("CAP_NET_ADMIN"));
    env.set_sh("exec </dev/null >/dev/null 2>&1; ip link set lo up; sleep 100000 | nc -l -p 5000 > /data/got & sleep 1; i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done | nc 127.0.0.1 5000");
    env.run(&["-d"]).ok();
    let lines = |p: &Path| fs::read_to_string(p).unwrap_or_default().lines().count();
    assert!(wait_until(Duration::from_secs(60), || lines(&got) >= 5), "no data over the connection: {:?}", fs::read_to_string(&got));
    let image = dir(&env, "image");
    let refused = env.rt(&["checkpoint", "--image-path", &image, &env.id]);
    refused.failed();
    if !is_runc() {
        refused.stderr_mentions(&["tcp", "criu failed"]);
    }
    assert_eq!(env.state()["status"], "running", "a refused checkpoint changed the container");
    env.rt(&["checkpoint", "--tcp-established", "--image-path", &image, &env.id]).ok();
    assert_checkpointed_away(&env, &env.id);
    let n = lines(&got);
    restore(&env, &env.id, &image, &["--tcp-established"]).ok();
    assert!(wait_until(Duration::from_secs(30), || lines(&got) >= n + 5), "the connection did not survive: {n} lines, then {}", lines(&got));
    let text = fs::read_to_string(&got).unwrap();
    let v: Vec<u64> = text.lines().filter_map(|l| l.parse().ok()).collect();
    assert!(v.windows(2).all(|w| w[1] == w[0] + 1), "the stream has a gap or a restart: {v:?}");
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

/// A terminal container (its pty master with the caller, through the
/// console socket), checkpointed and restored with `--shell-job` (what
/// go-runc sends for AllowTerminal): restored with
/// `--console-socket`, the new master reaches the new socket and the shell
/// answers on it.
#[test]
fn terminal_container_restored_with_a_console_socket() {
    require_criu!();
    let mut env = TestEnv::new("cr-tty");
    env.timeout = CRIU_TIMEOUT;
    env.config["process"]["terminal"] = json!(true);
    env.set_sh("while read l; do echo \"got $l\"; done");
    let listen = |name: &str| {
        let sock = env.dir.join(name);
        (UnixListener::bind(&sock).expect("bind console socket"), sock.to_string_lossy().into_owned())
    };
    let (l1, s1) = listen("c1.sock");
    let rx = spawn_fd_receiver(l1, CRIU_TIMEOUT);
    env.run(&["-d", "--console-socket", &s1]).ok();
    let m1 = rx.join().unwrap().expect("the first pty master");
    let ask = |m: &OwnedFd, word: &str| -> String {
        let mut f = fs::File::from(m.try_clone().unwrap());
        f.write_all(format!("{word}\n").as_bytes()).unwrap();
        let mut seen = Vec::new();
        wait_until(Duration::from_secs(20), || {
            seen.extend(read_fd_until_eof(m, Duration::from_millis(300)));
            String::from_utf8_lossy(&seen).contains(&format!("got {word}"))
        });
        String::from_utf8_lossy(&seen).into_owned()
    };
    assert!(ask(&m1, "one").contains("got one"), "the shell does not answer on its pty");
    let image = dir(&env, "image");
    env.rt(&["checkpoint", "--shell-job", "--image-path", &image, &env.id]).ok();
    drop(m1);
    assert_checkpointed_away(&env, &env.id);
    let (l2, s2) = listen("c2.sock");
    let rx = spawn_fd_receiver(l2, CRIU_TIMEOUT);
    restore(&env, &env.id, &image, &["--shell-job", "--console-socket", &s2]).ok();
    let m2 = rx.join().unwrap().expect("a pty master on the new console socket");
    let seen = ask(&m2, "two");
    assert!(seen.contains("got two"), "the restored shell does not answer on the new pty: {seen:?}");
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

/// CRIU missing (`--criu /nonexistent`) or refusing: a clear error naming
/// the reason, and nothing changed — the container still runs, a failed
/// restore leaves no state, cgroup or mount. On this host CRIU refuses the
/// kernel (its vDSO): the error says so. Runs everywhere.
#[test]
fn criu_missing_or_refusing_changes_nothing() {
    require_root!();
    let mut env = TestEnv::new("cr-errors");
    env.timeout = CRIU_TIMEOUT;
    env.set_args(&["sleep", "300"]);
    env.run(&["-d"]).ok();
    let before = env.state();
    let image = dir(&env, "image");
    let out = env.rt(&["--criu", "/nonexistent/criu", "checkpoint", "--image-path", &image, &env.id]);
    out.failed().short_error(3);
    if !is_runc() {
        out.stderr_mentions(&["/nonexistent/criu"]).stderr_mentions(&["criu"]);
    }
    assert_eq!(env.state(), before, "a checkpoint without criu changed the container");
    if !criu_works() {
        let out = env.rt(&["checkpoint", "--image-path", &image, &env.id]);
        out.failed();
        if !is_runc() {
            // CRIU's own reason (here: the kernel's vDSO) is in the error.
            out.stderr_mentions(&["criu failed"]).stderr_mentions(&["vdso", "kerndat", "Error ("]);
        }
        assert_eq!(env.state(), before, "a refused checkpoint changed the container");
    }
    // A restore that cannot happen leaves nothing: CRIU missing, or CRIU
    // refusing (an empty image directory, or this host's kernel).
    let new = env.new_id();
    env.write_config_for(&new);
    fs::create_dir_all(&image).unwrap();
    let b = bundle(&env);
    let out = env.rt(&["--criu", "/nonexistent/criu", "restore", "-d", "--bundle", &b, "--image-path", &image, &new]);
    out.failed();
    if !is_runc() {
        out.stderr_mentions(&["/nonexistent/criu"]);
    }
    assert_nothing_of(&env, &new);
    // (descriptors.json as a checkpoint writes it: CRIU itself must refuse.)
    fs::write(Path::new(&image).join("descriptors.json"), r#"["/dev/null","/dev/null","/dev/null"]"#).unwrap();
    let out = env.rt(&["restore", "-d", "--bundle", &b, "--image-path", &image, &new]);
    out.failed();
    assert_nothing_of(&env, &new);
    assert_eq!(env.state(), before);
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

/// Podman decides that a runtime can checkpoint from `checkpoint --help`
/// exiting 0; `restore --help` too. Flags runc's callers pass are known.
#[test]
fn help_exits_zero_and_lists_the_flags() {
    let env = TestEnv::new("cr-help");
    let out = env.rt(&["checkpoint", "--help"]);
    out.ok();
    for f in ["--image-path", "--work-path", "--parent-path", "--leave-running", "--tcp-established", "--ext-unix-sk", "--shell-job", "--file-locks", "--pre-dump", "--manage-cgroups-mode", "--empty-ns", "--auto-dedup", "--lazy-pages", "--status-fd", "--page-server"] {
        assert!(out.stdout.contains(f), "checkpoint --help does not list {f}");
    }
    let out = env.rt(&["restore", "--help"]);
    out.ok();
    for f in ["--image-path", "--work-path", "--bundle", "--detach", "--pid-file", "--console-socket", "--no-subreaper", "--no-pivot", "--tcp-established", "--manage-cgroups-mode", "--lazy-pages"] {
        assert!(out.stdout.contains(f), "restore --help does not list {f}");
    }
    if !is_runc() {
        // Bad values are refused by name, before anything is done.
        env.rt(&["checkpoint", "--manage-cgroups-mode", "odd", "x"]).failed().stderr_mentions(&["--manage-cgroups-mode"]);
        env.rt(&["checkpoint", "--page-server", "nohost", "x"]).failed().stderr_mentions(&["--page-server"]);
        env.rt(&["checkpoint", "--status-fd", "1", "x"]).failed().stderr_mentions(&["--lazy-pages"]);
        env.rt(&["restore", "--empty-ns", "pid", "x"]).failed().stderr_mentions(&["--empty-ns"]);
    }
}

/// Nothing of container `id` is left: no state directory, no cgroup
/// directory, no mount below the test's directory (the test's other
/// container may still run).
#[track_caller]
fn assert_nothing_of(env: &TestEnv, id: &str) {
    assert!(!env.root.join(id).exists(), "state dir of {id} left behind");
    assert!(env.try_state_id(id).is_none(), "{id} exists");
    let d = env.cgroup_dirs(id);
    assert!(d.is_empty(), "cgroup dirs left behind: {d:?}");
    let m = env.mounts_under_dir();
    assert!(m.is_empty(), "mounts left behind: {m:?}");
}
