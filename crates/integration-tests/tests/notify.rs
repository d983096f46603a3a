//! NOTIFY_SOCKET and LISTEN_FDS (project issue 8), as runc passes them:
//! sd_notify from inside the container reaches the caller's socket with the
//! init's host pid as MAINPID, and socket-activated descriptors reach the
//! process with LISTEN_FDS/LISTEN_PID.

use skiff_integration_tests::*;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A host notify socket, and an env whose process sends READY=1 once it
/// has printed its NOTIFY_SOCKET.
fn notify_env(name: &str) -> (TestEnv, UnixDatagram) {
    let mut env = TestEnv::new(name);
    env.install_probe();
    env.bind_dir("log", "/log", false);
    env.set_sh(&format!("echo \"socket=$NOTIFY_SOCKET\" > /log/env; sleep 0.2; {PROBE} notify READY=1; sleep 60"));
    let sock = UnixDatagram::bind(env.dir.join("host-notify.sock")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    (env, sock)
}

/// What reached the host socket: every datagram until MAINPID came.
fn received(sock: &UnixDatagram) -> String {
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains("MAINPID=") {
        match sock.recv(&mut buf) {
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) => panic!("nothing more on the notify socket ({e}); got {text:?}"),
        }
        text.push('\n');
    }
    text
}

#[test]
fn notify_socket_reaches_the_caller_on_start() {
    require_root!();
    let (env, sock) = notify_env("notify-start");
    let host = env.dir.join("host-notify.sock");
    env.write_config();
    let b = env.bundle.to_string_lossy().into_owned();
    let mut cmd = env.command(&["create", "--bundle", &b, &env.id]);
    cmd.env("NOTIFY_SOCKET", &host);
    env.run_cmd(cmd).ok();
    let mut cmd = env.command(&["start", &env.id]);
    cmd.env("NOTIFY_SOCKET", &host);
    // start returns once READY has been passed on.
    env.run_cmd(cmd).ok();
    let got = received(&sock);
    let pid = env.state()["pid"].as_i64().unwrap();
    assert!(got.lines().any(|l| l == "READY=1"), "{got:?}");
    assert!(got.lines().any(|l| l == format!("MAINPID={pid}")), "MAINPID is not the init's host pid {pid}: {got:?}");
    let out = std::fs::read_to_string(env.dir.join("log/env")).unwrap();
    assert!(out.contains("socket=/run/notify/notify.sock"), "{out:?}");
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

#[test]
fn notify_socket_with_run_detached() {
    require_root!();
    let (env, sock) = notify_env("notify-run");
    run_detached_and_check(env, sock);
}

/// In a user namespace the socket's directory is bind-mounted like the
/// config's binds (opened before the namespace exists).
#[test]
fn notify_socket_in_a_user_namespace() {
    require_root!();
    let (mut env, sock) = notify_env("notify-userns");
    env.set_userns();
    run_detached_and_check(env, sock);
}

fn run_detached_and_check(env: TestEnv, sock: UnixDatagram) {
    env.write_config();
    let b = env.bundle.to_string_lossy().into_owned();
    let mut cmd = env.command(&["run", "-d", "--bundle", &b, &env.id]);
    cmd.env("NOTIFY_SOCKET", env.dir.join("host-notify.sock"));
    env.run_cmd(cmd).ok();
    let got = received(&sock);
    let pid = env.state()["pid"].as_i64().unwrap();
    assert!(got.lines().any(|l| l == "READY=1") && got.lines().any(|l| l == format!("MAINPID={pid}")), "{got:?}");
    env.rt(&["delete", "--force", &env.id]).ok();
    env.assert_no_leftovers(&env.id);
}

/// systemd's socket activation: fd 3.. with LISTEN_PID = the runtime's pid.
#[test]
fn listen_fds_reach_the_process() {
    require_root!();
    let mut env = TestEnv::new("listen-fds");
    env.set_sh("echo \"$LISTEN_FDS $LISTEN_PID\"; cat <&3; cat <&4");
    env.write_config();
    std::fs::write(env.dir.join("a"), "activated\n").unwrap();
    std::fs::write(env.dir.join("b"), "preserved\n").unwrap();
    let b = env.bundle.to_string_lossy().into_owned();
    // `exec` keeps the shell's pid, which LISTEN_PID names.
    let script = format!(
        "cd {dir}; LISTEN_PID=$$ LISTEN_FDS=1 exec {rt} --root {root} run --preserve-fds 1 --bundle {b} {id} 3<a 4<b",
        dir = env.dir.display(),
        rt = runtime_bin().display(),
        root = env.root.display(),
        id = env.id
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(script).env(MARKER_VAR, &env.marker);
    let out = env.run_cmd(cmd);
    assert_eq!(out.ok().stdout, "1 1\nactivated\npreserved\n", "{}", out.describe());
}
