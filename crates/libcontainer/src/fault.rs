//! Fault injection for the reliability tests: in a debug build, the
//! environment variable `SKIFF_FAULT=<step>` makes skiff SIGKILL itself
//! when it reaches the named step (`create:reserved`, `create:cloned`,
//! `create:cgroup`, `create:ready`, `create:saved`, `start:released`,
//! `exec:cloned`, `delete:killed`), as a timeout or the OOM killer would.
//! Release builds compile the points to nothing.

/// A named step; see the module's documentation.
#[inline]
pub fn point(step: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("SKIFF_FAULT").is_some_and(|v| v == step) {
        // SAFETY: raise is async-signal-safe and takes a plain integer.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}
