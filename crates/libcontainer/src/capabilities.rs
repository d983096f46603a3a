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
        let held = caps::read(None, CapSet::Permitted).unwrap_or_default();
        caps::set(None, CapSet::Effective, &held).map_err(|e| Error::Init(format!("set effective capabilities: {e}")))
    }

    /// Sets inheritable, effective, permitted and ambient, after the user
    /// change and [`CapPlan::raise_effective`].
    pub fn apply(&self) -> Result<()> {
        let set = |s: CapSet, v: &CapsHashSet, name: &str| caps::set(None, s, v).map_err(|e| Error::Init(format!("set {name} capabilities: {e}")));
        if !self.effective.is_subset(&self.permitted) {
            return Err(Error::Init("process.capabilities: effective capabilities must also be permitted".into()));
        }
        // Effective is still the full permitted set ([`CapPlan::raise_effective`]
        // ran after the user change): set inheritable, then narrow effective
        // before permitted, since the kernel keeps effective a subset of
        // permitted.
        set(CapSet::Inheritable, &self.inheritable, "inheritable")?;
        set(CapSet::Effective, &self.effective, "effective")?;
        set(CapSet::Permitted, &self.permitted, "permitted")?;
        if !self.ambient.is_empty() {
            for cap in &self.ambient {
                // Ambient needs the capability in permitted and inheritable; runc skips others.
                if self.permitted.contains(cap) && self.inheritable.contains(cap) {
                    caps::raise(None, CapSet::Ambient, *cap).map_err(|e| Error::Init(format!("raise ambient {cap}: {e}")))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bisection_finds_what_probing_every_capability_finds() {
        assert_eq!(super::kernel_supported(), caps::runtime::thread_all_supported());
    }
}
