//! `update`: new limits for a live container's cgroup, from a
//! LinuxResources JSON (`--resources FILE|-`) or from runc's flags.
//!
//! As with runc, a zero (or empty) value means "leave unchanged" — Docker,
//! Podman and containerd send every field — and the new values are merged
//! onto the ones the container has (recorded in its state at `create` and
//! by each `update`), then applied through the same code `create` uses
//! ([`crate::cgroups::apply`]: libcgroups' v1, v2 or systemd manager). The
//! fields runc's update changes are the ones changed here: memory limit,
//! reservation and swap; CPU shares, quota, period, burst, realtime
//! runtime and period, cpus, mems and idle; the block I/O weight; the pids
//! limit; `unified` (v2). Anything else in the JSON is ignored with a
//! warning, as runc ignores it silently.
//!
//! Values are checked before anything is written; should the kernel still
//! refuse one, the previous values are written back and the error names the
//! field. The merged values are saved only once applied.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::error::{Error, Result};
use crate::state::{Status, Store};

/// runc's `update` flags, as given (parsed here, so that the messages are
/// the library's).
#[derive(Debug, Default, Clone)]
pub struct UpdateFlags {
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub memory_reservation: Option<String>,
    pub kernel_memory: Option<String>,
    pub kernel_memory_tcp: Option<String>,
    pub cpu_shares: Option<String>,
    pub cpu_period: Option<String>,
    pub cpu_quota: Option<String>,
    pub cpu_burst: Option<String>,
    pub cpu_rt_period: Option<String>,
    pub cpu_rt_runtime: Option<String>,
    pub cpu_idle: Option<String>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<String>,
    pub blkio_weight: Option<String>,
    pub l3_cache_schema: Option<String>,
    pub mem_bw_schema: Option<String>,
}

impl UpdateFlags {
    /// The resource flags given, by name (for the warning when
    /// `--resources` makes them ignored).
    pub fn given(&self) -> Vec<&'static str> {
        let all = [
            ("--memory", &self.memory),
            ("--memory-swap", &self.memory_swap),
            ("--memory-reservation", &self.memory_reservation),
            ("--kernel-memory", &self.kernel_memory),
            ("--kernel-memory-tcp", &self.kernel_memory_tcp),
            ("--cpu-share", &self.cpu_shares),
            ("--cpu-period", &self.cpu_period),
            ("--cpu-quota", &self.cpu_quota),
            ("--cpu-burst", &self.cpu_burst),
            ("--cpu-rt-period", &self.cpu_rt_period),
            ("--cpu-rt-runtime", &self.cpu_rt_runtime),
            ("--cpu-idle", &self.cpu_idle),
            ("--cpuset-cpus", &self.cpuset_cpus),
            ("--cpuset-mems", &self.cpuset_mems),
            ("--pids-limit", &self.pids_limit),
            ("--blkio-weight", &self.blkio_weight),
        ];
        all.into_iter().filter(|(_, v)| v.is_some()).map(|(n, _)| n).collect()
    }
}

/// Where the new values come from: the flags, or a LinuxResources JSON
/// (then the resource flags are ignored, as with runc; the Intel RDT ones
/// still count).
pub enum UpdateSource<'a> {
    Flags,
    Json(&'a [u8]),
}

fn bad(field: &str, reason: impl Into<String>) -> Error {
    Error::Resources { field: field.into(), reason: reason.into() }
}

/// A size as runc (docker/go-units' RAMInBytes) takes it: bytes, or a
/// number with a binary unit `k m g t p` (`10m`, `1.5G`, `512KiB`); `-1`
/// means unlimited.
pub fn parse_size(flag: &str, s: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    let invalid = || bad(flag, format!("invalid size {s:?} (bytes, or a number with k, m, g, t or p; -1 for unlimited)"));
    let t = s.trim_end_matches(['b', 'B']);
    let t = t.strip_suffix(['i', 'I']).filter(|_| t.len() < s.len()).unwrap_or(t);
    let (num, shift) = match t.chars().last().map(|c| c.to_ascii_lowercase()) {
        Some('k') => (&t[..t.len() - 1], 10),
        Some('m') => (&t[..t.len() - 1], 20),
        Some('g') => (&t[..t.len() - 1], 30),
        Some('t') => (&t[..t.len() - 1], 40),
        Some('p') => (&t[..t.len() - 1], 50),
        _ => (t, 0),
    };
    let num = num.strip_suffix(' ').unwrap_or(num);
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') || num.starts_with('.') {
        return Err(invalid());
    }
    let v: f64 = num.parse().map_err(|_| invalid())?;
    let bytes = v * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes as i64)
}

fn int<T: std::str::FromStr>(flag: &str, s: &str) -> Result<T> {
    s.trim().parse().map_err(|_| bad(flag, format!("invalid number {s:?}")))
}

/// The LinuxResources the flags ask for (absent or zero: unchanged).
pub fn resources_from_flags(f: &UpdateFlags) -> Result<LinuxResources> {
    let mut mem = LinuxMemory::default();
    let size = |flag: &str, v: &Option<String>| v.as_deref().map(|s| parse_size(flag, s)).transpose();
    mem.set_limit(size("--memory", &f.memory)?).set_swap(size("--memory-swap", &f.memory_swap)?).set_reservation(size("--memory-reservation", &f.memory_reservation)?);
    for (flag, v) in [("--kernel-memory", &f.kernel_memory), ("--kernel-memory-tcp", &f.kernel_memory_tcp)] {
        if v.is_some() {
            tracing::warn!("{flag} is ignored: kernel memory limits are obsolete (as with runc)");
        }
    }
    let mut cpu = LinuxCpu::default();
    let num = |flag: &str, v: &Option<String>| v.as_deref().map(|s| int::<u64>(flag, s)).transpose();
    let signed = |flag: &str, v: &Option<String>| v.as_deref().map(|s| int::<i64>(flag, s)).transpose();
    cpu.set_shares(num("--cpu-share", &f.cpu_shares)?).set_period(num("--cpu-period", &f.cpu_period)?).set_burst(num("--cpu-burst", &f.cpu_burst)?);
    cpu.set_realtime_period(num("--cpu-rt-period", &f.cpu_rt_period)?);
    cpu.set_quota(signed("--cpu-quota", &f.cpu_quota)?).set_realtime_runtime(signed("--cpu-rt-runtime", &f.cpu_rt_runtime)?).set_idle(signed("--cpu-idle", &f.cpu_idle)?);
    cpu.set_cpus(f.cpuset_cpus.clone()).set_mems(f.cpuset_mems.clone());
    let mut res = LinuxResources::default();
    res.set_memory(Some(mem)).set_cpu(Some(cpu));
    if let Some(p) = signed("--pids-limit", &f.pids_limit)? {
        let mut pids = LinuxPids::default();
        pids.set_limit(p);
        res.set_pids(Some(pids));
    }
    if let Some(w) = f.blkio_weight.as_deref().map(|s| int::<u16>("--blkio-weight", s)).transpose()? {
        let mut io = LinuxBlockIo::default();
        io.set_weight(Some(w));
        res.set_block_io(Some(io));
    }
    Ok(res)
}

/// A LinuxResources JSON; a malformed one is refused with the JSON path of
/// the offending value.
pub fn resources_from_json(data: &[u8]) -> Result<LinuxResources> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("resources", "empty input: expected a LinuxResources JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        bad(if path == "." { "resources" } else { path.as_str() }, e.into_inner().to_string())
    })
}

/// Intel RDT (`--l3-cache-schema`, `--mem-bw-schema`): skiff manages no
/// resctrl group, so both are refused, saying whether the host has the
/// feature at all.
fn check_rdt(f: &UpdateFlags) -> Result<()> {
    let resctrl = std::path::Path::new("/sys/fs/resctrl/info");
    for (flag, v, info, what) in [("--l3-cache-schema", &f.l3_cache_schema, "L3", "l3 cache allocation (cat)"), ("--mem-bw-schema", &f.mem_bw_schema, "MB", "memory bandwidth allocation (mba)")] {
        if v.as_deref().is_some_and(|s| !s.is_empty()) {
            if !resctrl.join(info).exists() {
                return Err(bad(flag, format!("intel rdt {what} is not enabled on this host (no /sys/fs/resctrl/info/{info})")));
            }
            return Err(bad(flag, "intel rdt is not supported by skiff (linux.intelRdt is not implemented)"));
        }
    }
    Ok(())
}

/// `update`: applies the new values to the container's cgroup and records
/// them in its state.
pub fn update(store: &Store, id: &str, source: UpdateSource, flags: &UpdateFlags) -> Result<()> {
    let changes = match source {
        UpdateSource::Json(data) => {
            let given = flags.given();
            if !given.is_empty() {
                tracing::warn!("{} ignored: the values of --resources are used (as with runc)", given.join(", "));
            }
            resources_from_json(data)?
        }
        UpdateSource::Flags => resources_from_flags(flags)?,
    };
    check_rdt(flags)?;
    let dir = store.open(id)?;
    let mut st = dir.load()?;
    match st.status(&dir.path) {
        Status::Created | Status::Running | Status::Paused => {}
        _ => return Err(Error::NotRunning),
    }
    warn_ignored(&changes);
    let old = st.applied_resources()?;
    let old_or_default = old.clone().unwrap_or_default();
    let merged = merge(&old_or_default, &changes);
    validate(&merged)?;
    if merged == old_or_default {
        return Ok(());
    }
    if old.as_ref().is_none_or(|o| o.devices().is_none()) && (st.systemd_cgroup || crate::cgroups::is_v2()) {
        // libcgroups rewrites the v2 device program from the rules it is
        // given: without the container's own, they would be lost.
        return Err(Error::BadState("the container was created by an older skiff that did not record its resources: update is not possible on cgroup v2".into()));
    }
    apply_or_restore(&st, &merged, &old_or_default, &changed_fields(&old_or_default, &merged))?;
    st.set_applied_resources(&merged);
    dir.save(&st)
}

/// Applies `new`; on failure writes `old` back and names the field.
fn apply_or_restore(st: &crate::state::State, new: &LinuxResources, old: &LinuxResources, changed: &[&'static str]) -> Result<()> {
    let mut mgr = crate::cgroups::Lazy::new(&st.cgroup_path, st.systemd_cgroup, &st.id);
    let v1 = crate::cgroups::v1_by_hand(st.systemd_cgroup);
    // On v1 the device rules are left alone (as runc's update does):
    // rewriting them would deny every device for a moment.
    let strip = |r: &LinuxResources| {
        let mut r = r.clone();
        if v1 {
            r.set_devices(None);
        }
        r
    };
    let Err(e) = crate::cgroups::apply(&mut mgr, Some(&strip(new)), &st.cgroup_path, &st.cgroup_dirs) else { return Ok(()) };
    if let Err(back) = crate::cgroups::apply(&mut mgr, Some(&strip(old)), &st.cgroup_path, &st.cgroup_dirs) {
        tracing::warn!("restoring the previous limits failed too: {back}");
    }
    let msg = crate::error::runc_wording(&e.to_string());
    let field = field_of(&msg).map(|f| vec![f]).unwrap_or_else(|| changed.to_vec());
    Err(Error::Cgroup(format!("cannot apply {}: {} (nothing was changed)", field.join(", "), msg.strip_prefix("cgroup: ").unwrap_or(&msg))))
}

/// The field behind a cgroup file named in an error message.
fn field_of(msg: &str) -> Option<&'static str> {
    const FILES: &[(&str, &str)] = &[
        ("memory.memsw.limit_in_bytes", "memory.swap"),
        ("memory.swap.max", "memory.swap"),
        ("swap memory", "memory.swap"),
        ("memory.soft_limit_in_bytes", "memory.reservation"),
        ("memory.low", "memory.reservation"),
        ("memory.limit_in_bytes", "memory.limit"),
        ("memory.max", "memory.limit"),
        ("memory limit", "memory.limit"),
        ("cpu.cfs_burst_us", "cpu.burst"),
        ("cpu.max.burst", "cpu.burst"),
        ("cpu.cfs_quota_us", "cpu.quota"),
        ("cpu.cfs_period_us", "cpu.period"),
        ("cpu.max", "cpu.quota"),
        ("cpu.rt_runtime_us", "cpu.realtimeRuntime"),
        ("cpu.rt_period_us", "cpu.realtimePeriod"),
        ("cpu.shares", "cpu.shares"),
        ("cpu.weight", "cpu.shares"),
        ("cpu.idle", "cpu.idle"),
        ("cpuset.cpus", "cpu.cpus"),
        ("cpuset.mems", "cpu.mems"),
        ("pids.max", "pids.limit"),
        ("weight", "blockIO.weight"),
    ];
    FILES.iter().find(|(f, _)| msg.contains(f)).map(|(_, field)| *field)
}

/// What of `changes` runc's update ignores (and so does this one).
fn warn_ignored(c: &LinuxResources) {
    let mut ignored = Vec::new();
    if let Some(m) = c.memory() {
        for (name, set) in [("memory.kernel", m.kernel().is_some_and(|v| v != 0)), ("memory.kernelTCP", m.kernel_tcp().is_some_and(|v| v != 0)), ("memory.swappiness", m.swappiness().is_some()), ("memory.disableOOMKiller", m.disable_oom_killer() == Some(true))] {
            if set {
                ignored.push(name);
            }
        }
    }
    if c.block_io().as_ref().is_some_and(|b| b.weight_device().is_some() || b.throttle_read_bps_device().is_some() || b.throttle_write_bps_device().is_some() || b.leaf_weight().is_some()) {
        ignored.push("blockIO (but weight)");
    }
    for (name, set) in [("devices", c.devices().as_ref().is_some_and(|d| !d.is_empty())), ("hugepageLimits", c.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())), ("network", c.network().is_some()), ("rdma", c.rdma().is_some())] {
        if set {
            ignored.push(name);
        }
    }
    if !ignored.is_empty() {
        tracing::warn!("update does not change {} (as with runc): ignored", ignored.join(", "));
    }
}

/// `new`'s non-zero values over `old`'s.
pub fn merge(old: &LinuxResources, new: &LinuxResources) -> LinuxResources {
    let mut out = old.clone();
    if let Some(n) = new.memory() {
        let mut m = old.memory().unwrap_or_default();
        let nz = |v: Option<i64>, o: Option<i64>| v.filter(|v| *v != 0).or(o);
        let limit = nz(n.limit(), m.limit());
        // runc: an unlimited memory without a swap value is unlimited swap too.
        let swap = if n.limit() == Some(-1) && n.swap().is_none_or(|s| s == 0) { Some(-1) } else { nz(n.swap(), m.swap()) };
        let reservation = nz(n.reservation(), m.reservation());
        m.set_limit(limit).set_swap(swap).set_reservation(reservation);
        out.set_memory(Some(m));
    }
    if let Some(n) = new.cpu() {
        let o = old.cpu().clone().unwrap_or_default();
        let u = |v: Option<u64>, o: Option<u64>| v.filter(|v| *v != 0).or(o);
        let i = |v: Option<i64>, o: Option<i64>| v.filter(|v| *v != 0).or(o);
        let s = |v: &Option<String>, o: &Option<String>| v.clone().filter(|v| !v.is_empty()).or(o.clone());
        let mut c = o.clone();
        c.set_shares(u(n.shares(), o.shares())).set_period(u(n.period(), o.period())).set_burst(u(n.burst(), o.burst())).set_realtime_period(u(n.realtime_period(), o.realtime_period()));
        c.set_quota(i(n.quota(), o.quota())).set_realtime_runtime(i(n.realtime_runtime(), o.realtime_runtime())).set_idle(i(n.idle(), o.idle()));
        c.set_cpus(s(n.cpus(), o.cpus())).set_mems(s(n.mems(), o.mems()));
        out.set_cpu(Some(c));
    }
    if let Some(p) = new.pids().filter(|p| p.limit() != 0) {
        out.set_pids(Some(p));
    }
    if let Some(w) = new.block_io().as_ref().and_then(|b| b.weight()).filter(|w| *w != 0) {
        let mut io = old.block_io().clone().unwrap_or_default();
        io.set_weight(Some(w));
        out.set_block_io(Some(io));
    }
    if let Some(u) = new.unified().as_ref().filter(|u| !u.is_empty()) {
        let mut all = old.unified().clone().unwrap_or_default();
        all.extend(u.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.clone(), v.clone())));
        out.set_unified(Some(all));
    }
    out
}

/// Refuses what no host could apply, naming the field, before anything is
/// written.
pub fn validate(r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        for (f, v) in [("memory.limit", m.limit()), ("memory.swap", m.swap()), ("memory.reservation", m.reservation())] {
            if v.is_some_and(|v| v < -1) {
                return Err(bad(f, format!("{} is not a size: give -1 (unlimited) or a number of bytes", v.unwrap_or(0))));
            }
        }
        if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
            if l > 0 && s > 0 && s < l {
                return Err(bad("memory.swap", format!("{s} is below memory.limit ({l}): it is the limit of memory plus swap")));
            }
        }
    }
    if let Some(c) = r.cpu() {
        validate_cpu(c)?;
    }
    if r.pids().is_some_and(|p| p.limit() < -1) {
        return Err(bad("pids.limit", "must be -1 (unlimited) or a positive number"));
    }
    // (0 means "not set", as Docker and Podman send it — also in what
    // create recorded.)
    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()).filter(|w| *w != 0 && !(10..=1000).contains(w)) {
        return Err(bad("blockIO.weight", format!("{w} is out of range: 10 to 1000")));
    }
    crate::cgroups::check_unified(Some(r)).map_err(|_| bad("unified", "cannot be used on a cgroup v1 host"))
}

fn validate_cpu(c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares().filter(|s| *s != 0 && !(2..=262_144).contains(s)) {
        return Err(bad("cpu.shares", format!("{s} is out of range: 2 to 262144")));
    }
    if let Some(p) = c.period().filter(|p| *p != 0 && !(1000..=1_000_000).contains(p)) {
        return Err(bad("cpu.period", format!("{p} is out of range: 1000 to 1000000 microseconds")));
    }
    match c.quota() {
        Some(q) if q < -1 => return Err(bad("cpu.quota", format!("{q}: give -1 (unlimited) or at least 1000 microseconds"))),
        Some(q) if q > 0 && q < 1000 => return Err(bad("cpu.quota", format!("{q} is below the kernel's minimum of 1000 microseconds"))),
        _ => {}
    }
    if c.realtime_runtime().is_some_and(|r| r < -1) {
        return Err(bad("cpu.realtimeRuntime", "must be -1 (unlimited) or a number of microseconds"));
    }
    for (f, v) in [("cpu.cpus", c.cpus()), ("cpu.mems", c.mems())] {
        if let Some(v) = v.as_deref().filter(|v| !is_cpu_list(v)) {
            return Err(bad(f, format!("{v:?} is not a list like 0-3,5")));
        }
    }
    Ok(())
}

fn is_cpu_list(s: &str) -> bool {
    s.split(',').all(|part| {
        let mut ends = part.splitn(2, '-');
        ends.all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The fields whose value differs (for an error that cannot say which).
fn changed_fields(old: &LinuxResources, new: &LinuxResources) -> Vec<&'static str> {
    let (om, nm) = (old.memory().unwrap_or_default(), new.memory().unwrap_or_default());
    let (oc, nc) = (old.cpu().clone().unwrap_or_default(), new.cpu().clone().unwrap_or_default());
    let pairs = [
        ("memory.limit", om.limit() != nm.limit()),
        ("memory.swap", om.swap() != nm.swap()),
        ("memory.reservation", om.reservation() != nm.reservation()),
        ("cpu.shares", oc.shares() != nc.shares()),
        ("cpu.quota", oc.quota() != nc.quota()),
        ("cpu.period", oc.period() != nc.period()),
        ("cpu.burst", oc.burst() != nc.burst()),
        ("cpu.realtimeRuntime", oc.realtime_runtime() != nc.realtime_runtime()),
        ("cpu.realtimePeriod", oc.realtime_period() != nc.realtime_period()),
        ("cpu.cpus", oc.cpus() != nc.cpus()),
        ("cpu.mems", oc.mems() != nc.mems()),
        ("cpu.idle", oc.idle() != nc.idle()),
        ("pids.limit", old.pids() != new.pids()),
        ("blockIO.weight", old.block_io().as_ref().and_then(|b| b.weight()) != new.block_io().as_ref().and_then(|b| b.weight())),
        ("unified", old.unified() != new.unified()),
    ];
    pairs.into_iter().filter(|(_, c)| *c).map(|(f, _)| f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_runc_reads_them() {
        for (s, want) in [("100", 100), ("10m", 10 << 20), ("10M", 10 << 20), ("10MB", 10 << 20), ("10MiB", 10 << 20), ("1.5g", 3 << 29), ("2k", 2048), ("7b", 7), ("-1", -1)] {
            assert_eq!(parse_size("--memory", s).unwrap(), want, "{s}");
        }
        for s in ["", "-5", "10x", "m", "1..5m", ".5m", "10 m m", "99999999999p"] {
            assert!(parse_size("--memory", s).is_err(), "{s:?}");
        }
    }

    fn res(json: &str) -> LinuxResources {
        resources_from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn zeros_leave_values_unchanged_and_updates_merge() {
        let old = res(r#"{"memory":{"limit":1000000},"cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0"},"pids":{"limit":10}}"#);
        let zeros = res(r#"{"memory":{"limit":0,"reservation":0,"swap":0},"cpu":{"shares":0,"quota":0,"period":0,"cpus":"","mems":""},"pids":{"limit":0},"blockIO":{"weight":0}}"#);
        assert_eq!(merge(&old, &zeros), old);
        let m = merge(&old, &res(r#"{"cpu":{"quota":20000}}"#));
        let m = merge(&m, &res(r#"{"memory":{"limit":2000000}}"#));
        assert_eq!(m.cpu().as_ref().unwrap().quota(), Some(20000));
        assert_eq!(m.cpu().as_ref().unwrap().shares(), Some(512));
        assert_eq!(m.memory().unwrap().limit(), Some(2000000));
        assert_eq!(m.pids().unwrap().limit(), 10);
    }

    #[test]
    fn unlimited_memory_means_unlimited_swap() {
        let old = res(r#"{"memory":{"limit":1000000,"swap":1000000}}"#);
        let m = merge(&old, &res(r#"{"memory":{"limit":-1}}"#));
        assert_eq!((m.memory().unwrap().limit(), m.memory().unwrap().swap()), (Some(-1), Some(-1)));
    }

    #[test]
    fn bad_values_name_their_field() {
        let e = resources_from_json(br#"{"memory":{"limit":"x"}}"#).unwrap_err().to_string();
        assert!(e.contains("memory.limit"), "{e}");
        assert!(resources_from_json(b"{\"memory\":").unwrap_err().to_string().contains("invalid resources"));
        for (json, field) in [
            (r#"{"memory":{"limit":-5}}"#, "memory.limit"),
            (r#"{"memory":{"limit":2000,"swap":1000}}"#, "memory.swap"),
            (r#"{"cpu":{"quota":-7}}"#, "cpu.quota"),
            (r#"{"cpu":{"shares":1}}"#, "cpu.shares"),
            (r#"{"cpu":{"cpus":"0-x"}}"#, "cpu.cpus"),
            (r#"{"pids":{"limit":-2}}"#, "pids.limit"),
            (r#"{"blockIO":{"weight":5}}"#, "blockIO.weight"),
        ] {
            let e = validate(&res(json)).unwrap_err().to_string();
            assert!(e.contains(field), "{json}: {e}");
        }
        assert_eq!(field_of("failed to write 1 to /sys/fs/cgroup/x/memory.max: device or resource busy"), Some("memory.limit"));
        assert_eq!(field_of("failed to write 5 to /sys/fs/cgroup/x/cpu.max.burst: invalid argument"), Some("cpu.burst"));
    }

    #[test]
    fn flags_become_resources() {
        let f = UpdateFlags { memory: Some("64m".into()), cpu_quota: Some("-1".into()), pids_limit: Some("20".into()), ..Default::default() };
        let r = resources_from_flags(&f).unwrap();
        assert_eq!(r.memory().unwrap().limit(), Some(64 << 20));
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(-1));
        assert_eq!(r.pids().unwrap().limit(), 20);
        let e = resources_from_flags(&UpdateFlags { cpu_shares: Some("abc".into()), ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("--cpu-share"), "{e}");
    }
}
