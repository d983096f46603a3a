//! The five capability sets of `process.capabilities`.
//!
//! The sets are converted in the runtime before the clone; the init then
//! drops the bounding set before changing user (that needs CAP_SETPCAP) and
//! sets the other four after.

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

use crate::error::{Error, Result};

#[derive(Default, Clone, Debug)]
pub struct CapPlan {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
    /// Capabilities the running kernel knows (others are ignored).
    pub supported: CapsHashSet,
}

fn convert(field: &str, set: &Option<oci_spec::runtime::Capabilities>, supported: &CapsHashSet) -> Result<CapsHashSet> {
    let mut out = CapsHashSet::new();
    for c in set.iter().flatten() {
        let name = serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let cap = Capability::from_str(&name).map_err(|_| Error::config(format!("process.capabilities.{field}"), format!("unknown capability {name:?}")))?;
        if supported.contains(&cap) {
            out.insert(cap);
        }
    }
    Ok(out)
}

/// The capabilities the running kernel knows: those numbered up to the
/// last one `PR_CAPBSET_READ` accepts, found by bisection (6 calls rather
/// than one per capability, and no /proc).
fn kernel_supported() -> CapsHashSet {
    // SAFETY: PR_CAPBSET_READ only reads; an unknown number is EINVAL.
    let known = |n: u64| unsafe { libc::prctl(libc::PR_CAPBSET_READ, n, 0, 0, 0) } >= 0;
    let (mut lo, mut hi) = (0u64, 64u64); // known(lo) (CAP_CHOWN), !known(hi)
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if known(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    caps::all().into_iter().filter(|c| u64::from(c.index()) <= lo).collect()
}

impl CapPlan {
    pub fn new(c: Option<&LinuxCapabilities>) -> Result<CapPlan> {
        let supported = kernel_supported();
        let Some(c) = c else {
            // No capabilities object: the process gets none.
            return Ok(CapPlan { supported, ..Default::default() });
        };
        let plan = CapPlan {
            bounding: convert("bounding", c.bounding(), &supported)?,
            effective: convert("effective", c.effective(), &supported)?,
            permitted: convert("permitted", c.permitted(), &supported)?,
            inheritable: convert("inheritable", c.inheritable(), &supported)?,
            ambient: convert("ambient", c.ambient(), &supported)?,
            supported,
        };
        Ok(plan)
    }

    /// Drops every capability not in the bounding set (before the user change).
    pub fn drop_bounding(&self) -> Result<()> {
        for cap in &self.supported {
            if !self.bounding.contains(cap) {
                caps::drop(None, CapSet::Bounding, *cap).map_err(|e| Error::Init(format!("drop {cap} from the bounding set: {e}")))?;
            }
        }
        Ok(())
    }

    /// Makes every permitted capability effective again after a uid change
    /// (which clears the effective set), until [`CapPlan::apply`].
    pub fn raise_effective(&self) -> Result<()> {
        let (_, permitted, inheritable) = capget().map_err(|e| Error::Init(format!("read capabilities: {e}")))?;
        capset(permitted, permitted, inheritable).map_err(|e| Error::Init(format!("set effective capabilities: {e}")))
    }

    /// Sets inheritable, effective and permitted (one `capset`, as the
    /// kernel checks each new set against the current ones) and raises the
    /// ambient set, after the user change and [`CapPlan::raise_effective`].
    pub fn apply(&self) -> Result<()> {
        if !self.effective.is_subset(&self.permitted) {
            return Err(Error::Init("process.capabilities: effective capabilities must also be permitted".into()));
        }
        let mask = |v: &CapsHashSet| v.iter().fold(0u64, |m, c| m | c.bitmask());
        capset(mask(&self.effective), mask(&self.permitted), mask(&self.inheritable)).map_err(|e| Error::Init(format!("set capabilities: {e}")))?;
        for cap in &self.ambient {
            // Ambient needs the capability in permitted and inheritable; runc skips others.
            if self.permitted.contains(cap) && self.inheritable.contains(cap) {
                caps::raise(None, CapSet::Ambient, *cap).map_err(|e| Error::Init(format!("raise ambient {cap}: {e}")))?;
            }
        }
        Ok(())
    }
}

/// The header and the two data words of capget(2)/capset(2), version 3
/// (64-bit sets).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// This thread's (effective, permitted, inheritable) sets as bit masks.
fn capget() -> std::io::Result<(u64, u64, u64)> {
    let mut h = CapHeader { version: CAP_V3, pid: 0 };
    let mut d = [CapData::default(); 2];
    // SAFETY: a version-3 header and the two data words it asks for.
    if unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | u64::from(hi) << 32;
    Ok((join(d[0].effective, d[1].effective), join(d[0].permitted, d[1].permitted), join(d[0].inheritable, d[1].inheritable)))
}

/// Sets this thread's effective, permitted and inheritable sets at once.
fn capset(effective: u64, permitted: u64, inheritable: u64) -> std::io::Result<()> {
    let mut h = CapHeader { version: CAP_V3, pid: 0 };
    let word = |i: u32| CapData { effective: (effective >> i) as u32, permitted: (permitted >> i) as u32, inheritable: (inheritable >> i) as u32 };
    let d = [word(0), word(32)];
    // SAFETY: a version-3 header and the two data words it reads.
    if unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn bisection_finds_what_probing_every_capability_finds() {
        assert_eq!(super::kernel_supported(), caps::runtime::thread_all_supported());
    }

    #[test]
    fn capget_reads_what_the_caps_crate_reads_and_capset_keeps_it() {
        let mask = |s: caps::CapSet| caps::read(None, s).unwrap().iter().fold(0u64, |m, c| m | c.bitmask());
        let want = (mask(caps::CapSet::Effective), mask(caps::CapSet::Permitted), mask(caps::CapSet::Inheritable));
        assert_eq!(super::capget().unwrap(), want);
        // Setting the sets the thread already has is always allowed.
        super::capset(want.0, want.1, want.2).unwrap();
        assert_eq!(super::capget().unwrap(), want);
    }
}
