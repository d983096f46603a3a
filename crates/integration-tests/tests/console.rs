//! `terminal: true` with `--console-socket`: the runtime sends the pty
//! master over the socket with SCM_RIGHTS.

use serde_json::json;
use skiff_integration_tests::*;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::time::Duration;

fn console_env(name: &str, script: &str) -> (TestEnv, String, std::thread::JoinHandle<Result<OwnedFd, String>>) {
    let mut env = TestEnv::new(name);
    env.config["process"]["terminal"] = json!(true);
    env.config["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    env.set_sh(script);
    let sock = env.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).expect("bind console socket");
    let rx = spawn_fd_receiver(listener, Duration::from_secs(20));
    (env, sock.to_string_lossy().into_owned(), rx)
}

fn check_is_pty_master(fd: &OwnedFd) {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd))).unwrap();
    let l = link.to_string_lossy();
    assert!(l.contains("ptmx"), "received fd is not a pty master: {l}");
}

#[test]
fn console_socket_create_start() {
    require_root!();
    let (env, sock, rx) = console_env("console", "echo hello-from-tty; tty; stty size");
    env.create_id(&env.id, &["--console-socket", &sock]).ok();
    let master = rx.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    check_is_pty_master(&master);
    env.start().ok();
    let data = read_fd_until_eof(&master, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&data);
    assert!(text.contains("hello-from-tty\r\n"), "pty output: {text:?}");
    assert!(text.contains("/dev/pts/"), "stdin is not a pty inside: {text:?}");
    assert!(text.contains("33 111"), "consoleSize not applied: {text:?}");
    env.wait_status("stopped");
}

#[test]
fn console_socket_run_detached() {
    require_root!();
    let (env, sock, rx) = console_env("console-d", "echo detached-tty; tty");
    let out = env.run(&["-d", "--console-socket", &sock]);
    out.ok();
    let master = rx.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
    check_is_pty_master(&master);
    let data = read_fd_until_eof(&master, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&data);
    assert!(text.contains("detached-tty\r\n"), "pty output: {text:?}");
    assert!(text.contains("/dev/pts/"), "{text:?}");
}

#[test]
fn terminal_without_console_socket_is_refused_for_create() {
    require_root!();
    let mut env = TestEnv::new("console-missing");
    env.config["process"]["terminal"] = json!(true);
    env.set_args(&["true"]);
    let out = env.create();
    out.failed();
    env.assert_no_leftovers(&env.id);
}
