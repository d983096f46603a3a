//! OCI hooks: run one hook with the container state on its stdin, bounded
//! by its `timeout`. Where and when each kind runs is decided by the
//! lifecycle ([`crate::container`], [`crate::init`]); this module only runs them.

use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// Runs `hooks` in order, stopping at the first failure. A hook without
/// `env` gets `default_env` (the container process's environment for the
/// hooks the init runs, as with runc) or else the runtime's own.
pub fn run_all(kind: &str, hooks: &[Hook], state_json: &[u8], default_env: Option<&[std::ffi::CString]>) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run(h, state_json, default_env, None, &mut |_| {}).map_err(|e| Error::Hook(format!("{kind} hook #{i} ({}): {e}", h.path().display())))?;
    }
    Ok(())
}

/// The runtime's hooks: [`run_all`] with the runtime's environment and
/// `dir` as the hooks' working directory, against which a relative hook
/// path resolves (runc runs the runtime's hooks in the bundle). Each hook
/// leads a process group of its own, whose number is given to `spawned`
/// as soon as it runs (so that `create` can record it: should the runtime
/// die during the hook, `delete` kills the group, the hook's children too).
pub fn run_all_in(kind: &str, hooks: &[Hook], state_json: &[u8], dir: &Path, spawned: &mut dyn FnMut(i32)) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run(h, state_json, None, Some(dir), spawned).map_err(|e| Error::Hook(format!("{kind} hook #{i} ({}): {e}", h.path().display())))?;
    }
    Ok(())
}

/// Runs every hook even when some fail (poststart, poststop); returns the
/// failures as warnings.
pub fn run_all_warn(kind: &str, hooks: &[Hook], state_json: &[u8]) -> Vec<String> {
    hooks
        .iter()
        .enumerate()
        .filter_map(|(i, h)| run(h, state_json, None, None, &mut |_| {}).err().map(|e| format!("{kind} hook #{i} ({}): {e}", h.path().display())))
        .collect()
}

/// Waits for the hook with its timeout (-1: none): on a pidfd, or, where the
/// seccomp filter refuses pidfd_open, by checking every few milliseconds.
fn wait_exit(child: &mut std::process::Child, timeout_ms: i32) -> std::result::Result<bool, String> {
    if let Ok(pidfd) = crate::sys::pidfd_open(nix::unistd::Pid::from_raw(child.id() as i32)) {
        return crate::sys::pidfd_wait_exit(pidfd.as_fd(), timeout_ms).map_err(|e| e.to_string());
    }
    let start = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return Ok(true),
            Ok(None) if timeout_ms >= 0 && start.elapsed().as_millis() >= timeout_ms as u128 => return Ok(false),
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(2)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// SIGKILLs the process group `pgid` led by a hook we started (our child,
/// not yet reaped: the number cannot have been reused).
fn kill_group(pgid: i32) {
    // SAFETY: plain integer arguments.
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
}

fn run(h: &Hook, state_json: &[u8], default_env: Option<&[std::ffi::CString]>, dir: Option<&Path>, spawned: &mut dyn FnMut(i32)) -> std::result::Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    // A relative path names a file relative to the working directory, never
    // a $PATH search (as Go's exec.Cmd with Path set).
    let path = match dir {
        _ if h.path().is_absolute() => h.path().to_path_buf(),
        Some(d) => d.join(h.path()),
        None => Path::new(".").join(h.path()),
    };
    // Checked before the hook runs: a refused hook is not left running.
    let timeout_ms = match h.timeout() {
        Some(t) if t > 0 => (t * 1000).min(i32::MAX as i64) as i32,
        Some(_) => return Err("timeout must be greater than zero".into()),
        None => -1,
    };
    let mut cmd = Command::new(&path);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    if let Some(a0) = args.first() {
        cmd.arg0(a0);
    }
    cmd.args(args.iter().skip(1));
    let env: Option<Vec<&str>> = match (h.env(), default_env) {
        (Some(env), _) => Some(env.iter().map(String::as_str).collect()),
        (None, Some(env)) => Some(env.iter().filter_map(|c| c.to_str().ok()).collect()),
        // No env: the runtime's own environment, as Go's exec gives runc's hooks.
        (None, None) => None,
    };
    if let Some(env) = env {
        cmd.env_clear().envs(env.into_iter().filter_map(|kv| kv.split_once('=')));
    }
    // Output goes to a memory file: no pipe to drain while we wait, and
    // it is shown if the hook fails.
    let out = nix::sys::memfd::memfd_create(c"skiff-hook", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC).map_err(|e| format!("memfd: {e}"))?;
    let mut out = std::fs::File::from(out);
    let out2 = out.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::piped()).stdout(Stdio::from(out2.try_clone().map_err(|e| e.to_string())?)).stderr(Stdio::from(out2));
    // A plain fork, not posix_spawn (pre_exec makes std fork): the
    // startContainer hooks run under the container's seccomp filter, and
    // profiles (upstream runtime-tools', Docker's older ones) refuse clone3
    // with EPERM, where glibc's posix_spawn gives up instead of falling back
    // to clone.
    // In the child, nothing but stdio crosses into the hook: no descriptor
    // the caller gave the runtime, none of the runtime's own.
    // SAFETY: only system calls (close_range, or fcntl over /proc/self/fd in
    // the copy of a single-threaded process) run between fork and exec.
    unsafe { cmd.pre_exec(|| crate::sys::cloexec_from(3)) };
    // Its own process group: what the hook leaves running can be killed
    // with it (on a timeout here, or by `delete` after a killed `create`).
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    spawned(child.id() as i32);
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin must not fail the hook.
        let _ = stdin.write_all(state_json);
    }
    let exited = wait_exit(&mut child, timeout_ms)?;
    if !exited {
        kill_group(child.id() as i32);
        let _ = child.wait();
        return Err(format!("timed out after {} s", h.timeout().unwrap_or(0)));
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let _ = out.rewind();
    let _ = Read::by_ref(&mut out).take(4096).read_to_string(&mut text);
    let text = text.trim().replace('\n', " ");
    Err(if text.is_empty() { status.to_string() } else { format!("{status}: {text}") })
}
