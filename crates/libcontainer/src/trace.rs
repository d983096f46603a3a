//! The startup trace of `--debug`: one log line per stage of `create`,
//! `run`, `start` and `exec`, with how long the stage took, so that a slow
//! start shows where its time goes (in the `--log` file too, as JSON lines).
//!
//! ```text
//! level=debug msg="trace create: config load 0.142 ms"
//! level=debug msg="trace create: seccomp (cache hit) 0.031 ms"
//! level=debug msg="trace init: mounts 0.611 ms"
//! ```
//!
//! Off (the default), a stopwatch holds no time and each mark is one load
//! of a flag: no clock read, no formatting, no allocation.
//!
//! The runtime's stages are timed with [`Stages`]. The init's stages (from
//! the clone to Ready, in the cloned process) are timed with [`init_mark`]
//! into a fixed table of that process's own copy of the runtime's memory,
//! and sent to the runtime in one message ([`init_report`]) before Ready;
//! durations only, so a time namespace's clock offset does not matter.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

static ON: AtomicBool = AtomicBool::new(false);

/// Turns the trace on (`--debug`).
pub fn enable() {
    ON.store(true, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// A stopwatch over the stages of one command.
pub struct Stages {
    command: &'static str,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Stages {
    /// Starts timing `command` (the first stage is measured from here).
    pub fn start(command: &'static str) -> Stages {
        let now = enabled().then(Instant::now);
        Stages { command, first: now, last: now }
    }

    /// The stage that ends now.
    pub fn mark(&mut self, stage: &str) {
        if let Some(last) = self.last {
            let now = Instant::now();
            log(self.command, stage, (now - last).as_nanos() as u64);
            self.last = Some(now);
        }
    }

    /// As [`Stages::mark`], with a detail (`seccomp (cache hit)`).
    pub fn mark_with(&mut self, stage: &str, detail: &str) {
        if self.last.is_some() {
            self.mark(&format!("{stage} ({detail})"));
        }
    }

    /// The init's stages, as [`init_report`] sent them; the time they took
    /// is part of the runtime stage that waited for them.
    pub fn init_stages(&self, report: &[u8]) {
        if self.last.is_none() {
            return;
        }
        for (i, c) in report.chunks_exact(8).enumerate().take(INIT_STAGES.len()) {
            let ns = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            if ns > 0 {
                log("init", INIT_STAGES[i], ns);
            }
        }
    }

    /// The whole command, from [`Stages::start`].
    pub fn total(&self) {
        if let Some(first) = self.first {
            log(self.command, "total", first.elapsed().as_nanos() as u64);
        }
    }
}

fn log(command: &str, stage: &str, ns: u64) {
    tracing::debug!("trace {command}: {stage} {}.{:03} ms", ns / 1_000_000, (ns / 1_000) % 1_000);
}

/// The init's stages, in order.
#[derive(Clone, Copy)]
pub enum InitStage {
    /// From the clone: the id maps awaited, namespaces given by path joined.
    Namespaces,
    /// Hostname, domainname, keyring, process attributes.
    Attributes,
    /// The root filesystem's mounts and devices (before pivot_root).
    Mounts,
    /// Waiting for the runtime to finish the cgroup.
    CgroupWait,
    /// prestart/createRuntime (run by the runtime) and createContainer hooks.
    Hooks,
    /// pivot_root (or chroot) and the old root detached.
    PivotRoot,
    /// The console, sysctls, masked and read-only paths.
    Finish,
    /// rlimits, bounding set, user, cwd, the executable, descriptors closed.
    Process,
}

const INIT_STAGES: [&str; 8] = [
    "namespaces and id maps",
    "attributes",
    "mounts",
    "cgroup wait",
    "hooks",
    "pivot_root",
    "console, sysctls, masked and read-only paths",
    "process (rlimits, user, capabilities, cwd, fds)",
];

/// Per stage of the init: nanoseconds; [`INIT_LAST`]: the clock at the end
/// of the previous one. Only the init's own copy is ever written.
static INIT_NS: [AtomicU64; INIT_STAGES.len()] = [const { AtomicU64::new(0) }; INIT_STAGES.len()];
static INIT_LAST: AtomicU64 = AtomicU64::new(0);

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to fill; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// In the init, right after the clone: the first stage starts.
pub fn init_begin() {
    if enabled() {
        INIT_LAST.store(monotonic_ns(), Ordering::Relaxed);
    }
}

/// In the init: `stage` ends now (the time since the previous mark is
/// added to it, so a stage may be marked more than once).
pub fn init_mark(stage: InitStage) {
    if enabled() {
        let now = monotonic_ns();
        let last = INIT_LAST.swap(now, Ordering::Relaxed);
        INIT_NS[stage as usize].fetch_add(now.saturating_sub(last), Ordering::Relaxed);
    }
}

/// In the init, before Ready: the table, for the runtime's trace; None when
/// the trace is off (nothing is sent).
pub fn init_report() -> Option<[u8; 8 * INIT_STAGES.len()]> {
    if !enabled() {
        return None;
    }
    let mut out = [0u8; 8 * INIT_STAGES.len()];
    for (i, slot) in INIT_NS.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&slot.load(Ordering::Relaxed).to_le_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_records_nothing() {
        // The flag is process-wide: this test only reads it while off.
        if enabled() {
            return;
        }
        let mut s = Stages::start("test");
        assert!(s.first.is_none() && s.last.is_none());
        s.mark("stage");
        assert!(s.last.is_none());
        init_begin();
        init_mark(InitStage::Mounts);
        assert!(init_report().is_none());
        assert_eq!(INIT_NS[InitStage::Mounts as usize].load(Ordering::Relaxed), 0);
    }
}
