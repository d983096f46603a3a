//! `events`: the container's statistics once (`--stats`) or every
//! interval, and an event whenever its cgroup runs out of memory, in runc's
//! envelope (`{"type":"stats","id":…,"data":{…}}`, `{"type":"oom","id":…}`).
//!
//! No threads and no async runtime: one `poll` on the init's pidfd (the
//! stream ends when the container stops) and the OOM watch's descriptor
//! ([`crate::cgroups::OomWatch`]), with the time to the next statistics as
//! its timeout.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cgroups::{self, OomWatch, Stats};
use crate::error::{Error, Result};
use crate::state::{State, Status, Store};

/// One line of `events`.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

fn not_running(id: &str) -> Error {
    // runc's wording.
    Error::BadState(format!("container with id {id} is not running"))
}

fn load_live(store: &Store, id: &str) -> Result<State> {
    let dir = store.peek(id)?;
    let st = dir.load()?;
    if st.status(&dir.path) == Status::Stopped {
        return Err(not_running(id));
    }
    Ok(st)
}

/// `events --stats`: the statistics of a created, running or paused container.
pub fn stats(store: &Store, id: &str) -> Result<Stats> {
    let st = load_live(store, id)?;
    cgroups::read_stats(&cgroups::dirs_of(&st.cgroup()))
}

/// `events`: calls `emit` with a stats event every `interval` (the first
/// after one interval, as runc) and an oom event whenever the container's
/// memory cgroup reports one, until the container stops (or `emit` returns
/// false: its reader is gone).
pub fn events(store: &Store, id: &str, interval: Duration, emit: &mut dyn FnMut(&Event) -> bool) -> Result<()> {
    if interval.is_zero() {
        return Err(Error::BadState("duration interval must be greater than 0".into()));
    }
    let st = load_live(store, id)?;
    let pidfd = super::init_pidfd(&st).ok_or_else(|| not_running(id))?;
    let dirs = cgroups::dirs_of(&st.cgroup());
    let mut oom = OomWatch::new(&dirs)?;
    let mut next = Instant::now() + interval;
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        let (exited, _) = wait_for(pidfd.as_fd(), oom.as_ref().map(|o| o.fd()), wait)?;
        let ooms = oom.as_mut().map_or(0, OomWatch::take);
        for _ in 0..ooms {
            if !emit(&Event { kind: "oom", id, data: None }) {
                return Ok(());
            }
        }
        if exited {
            return Ok(());
        }
        if Instant::now() >= next {
            next += interval;
            match cgroups::read_stats(&dirs) {
                Ok(s) => {
                    if !emit(&Event { kind: "stats", id, data: Some(s) }) {
                        return Ok(());
                    }
                }
                Err(e) => tracing::error!("{e}"),
            }
        }
    }
}

/// Polls the pidfd and the OOM descriptor for up to `timeout`; returns
/// (the init exited, the OOM descriptor is readable).
fn wait_for(pidfd: BorrowedFd, oom: Option<BorrowedFd>, timeout: Duration) -> Result<(bool, bool)> {
    let mut fds = vec![libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
    if let Some(o) = oom {
        fds.push(libc::pollfd { fd: o.as_raw_fd(), events: libc::POLLIN, revents: 0 });
    }
    let ts = libc::timespec { tv_sec: timeout.as_secs() as _, tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32) };
    loop {
        // SAFETY: `fds` is a valid array of `fds.len()` pollfds, `ts` a
        // valid timespec, no signal mask.
        let r = unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, &ts, std::ptr::null()) };
        if r >= 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(Error::io("poll the container's init and oom notifications", e));
        }
    }
    Ok((fds[0].revents != 0, fds.get(1).is_some_and(|f| f.revents != 0)))
}

/// A duration in Go's syntax (`time.ParseDuration`), as runc's
/// `--interval` takes it: `5s`, `1m30s`, `1.5h`, `300ms`, `10us`, `1µs`,
/// `100ns`; a sequence of decimal numbers each with a unit. A negative
/// duration is refused.
pub fn parse_go_duration(s: &str) -> Result<Duration> {
    let invalid = || Error::BadState(format!("invalid duration {s:?} (like 5s, 1m30s, 500ms)"));
    let (negative, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let d = go_magnitude(body).ok_or_else(invalid)?;
    if negative && !d.is_zero() {
        return Err(Error::BadState("duration interval must be greater than 0".into()));
    }
    Ok(d)
}

/// An unsigned Go duration; None when malformed.
fn go_magnitude(body: &str) -> Option<Duration> {
    if body == "0" {
        return Some(Duration::ZERO);
    }
    if body.is_empty() {
        return None;
    }
    let mut rest = body;
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(n);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let u = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(u);
        let nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num.parse::<f64>().ok()? * nanos;
        rest = tail;
    }
    if total > u64::MAX as f64 {
        return None;
    }
    Some(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (s, want) in [("5s", 5_000), ("1m30s", 90_000), ("1.5h", 5_400_000), ("300ms", 300), ("+2s", 2_000), ("0", 0), ("1s500ms", 1_500)] {
            assert_eq!(parse_go_duration(s).unwrap(), Duration::from_millis(want), "{s}");
        }
        assert_eq!(parse_go_duration("10us").unwrap(), Duration::from_micros(10));
        assert_eq!(parse_go_duration("1µs").unwrap(), Duration::from_micros(1));
        for s in ["", "5", "1x", "s", "1..5s", "5 s", "-"] {
            assert!(parse_go_duration(s).is_err(), "{s:?}");
        }
        assert!(parse_go_duration("-1s").unwrap_err().to_string().contains("greater than 0"));
    }

    #[test]
    fn envelope_is_runcs() {
        let e = Event { kind: "oom", id: "c1", data: None };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"type":"oom","id":"c1"}"#);
        let s = serde_json::to_value(Event { kind: "stats", id: "c1", data: Some(Stats::default()) }).unwrap();
        let keys: Vec<&String> = s["data"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces", "skiff"]);
    }
}
