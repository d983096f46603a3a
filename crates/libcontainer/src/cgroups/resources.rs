//! `linux.resources` written to the container's cgroup: through libcgroups,
//! plus what it leaves out or gets wrong, written here: v1 device rules and
//! per-device block I/O weights, swap on a v2 host without it, controllers
//! off the manager's path, and (see [`ByHand`]) the pids limit, huge pages,
//! net_cls/net_prio, rdma, v1 CFS burst and real-time values. What the host
//! cannot apply at all was refused before the container was created
//! (`check.rs`).

use std::collections::HashMap;

use oci_spec::runtime::{LinuxHugepageLimit, LinuxNetwork, LinuxRdma};

use super::*;

pub use super::check::check_unified;

/// Applies `linux.resources`. On cgroup v1 the device rules and the
/// per-device block I/O weights are written here (libcgroups writes every
/// rule as given, and no weight_device at all); the rest through libcgroups
/// and [`ByHand`].
pub fn apply(mgr: &mut super::Lazy, resources: Option<&LinuxResources>, path: &Path, dirs: &[PathBuf]) -> Result<()> {
    let Some(resources) = resources else { return Ok(()) };
    let v1 = !dirs.is_empty() && !is_v2();
    let mut res = resources.clone();
    // (The systemd driver has no directories here: all goes to libcgroups.)
    let by_hand = if dirs.is_empty() { ByHand::default() } else { ByHand::take(&mut res, v1) };
    // No device rules (`update` on v1): the cgroup's are left as they are.
    let rules = if v1 && res.devices().is_some() { Some(crate::devices::CgroupV1Rules::from_rules(res.devices().as_deref().unwrap_or(&[]))?) } else { None };
    if v1 {
        res.set_devices(None);
        apply_off_path(&mut res, path, dirs)?;
    }
    check_before_update(&res, dirs)?;
    let opt = ControllerOpt { resources: &res, disable_oom_killer: res.memory().as_ref().and_then(|m| m.disable_oom_killer()).unwrap_or(false), oom_score_adj: None, freezer_state: None };
    // On v1, with nothing left for libcgroups to write, no manager is built.
    let nothing_left = v1 && res == LinuxResources::default();
    match if nothing_left { Ok(()) } else { mgr.get()?.apply(&opt) } {
        Ok(()) => {}
        // libcgroups loads the v2 device program last but for `unified`; an
        // unprivileged user cannot load one (its devices are binds of the
        // host's nodes anyway; `unified` is refused rootless by create).
        Err(libcgroups::common::AnyManagerError::V2(libcgroups::v2::manager::V2ManagerError::DevicesController(e))) if !nix::unistd::geteuid().is_root() => {
            tracing::debug!("rootless: no device program ({e})");
        }
        Err(e) => return Err(Error::Cgroup(format!("apply linux.resources to {}: {e}", path.display()))),
    }
    if !v1 {
        v2_no_swap(&res, dirs)?;
    }
    by_hand.write(dirs, v1)?;
    if let Some(rules) = rules {
        for d in dirs.iter().filter(|d| is_devices(d)) {
            write_device_rules(d, &rules.writes())?;
        }
        if res.block_io().is_some() {
            if let Some(d) = dirs.iter().find(|d| d.join("blkio.throttle.read_bps_device").exists()) {
                write_blkio_weights(d, &res)?;
            }
        }
    }
    Ok(())
}

/// Writes v1 device rules in order, each file opened once (the kernel takes
/// one rule per write(2)): ~20 rules cost two opens, not twenty.
fn write_device_rules(d: &Path, writes: &[(&'static str, String)]) -> Result<()> {
    use std::io::Write;
    let mut open: Option<(&str, std::fs::File)> = None;
    for (file, line) in writes {
        let err = |e: std::io::Error| Error::Cgroup(format!("linux.resources.devices: write {line:?} to {}: {}", d.join(file).display(), crate::error::strerror(&e)));
        if open.as_ref().is_none_or(|(f, _)| f != file) {
            open = Some((file, std::fs::OpenOptions::new().write(true).open(d.join(file)).map_err(err)?));
        }
        let f = &mut open.as_mut().expect("opened above").1;
        f.write_all(line.as_bytes()).map_err(err)?;
    }
    Ok(())
}

/// The container's directory that holds controller `ctrl`.
fn ctrl_dir<'a>(dirs: &'a [PathBuf], ctrl: &str, field: &str) -> Result<&'a PathBuf> {
    let d = if is_v2() { dirs.first() } else { dirs.iter().find(|d| hierarchy_has(d, ctrl)) };
    d.ok_or_else(|| Error::Cgroup(format!("{field}: the container has no {ctrl} cgroup")))
}

fn write_file(d: &Path, file: &str, v: &str, field: &str) -> Result<()> {
    super::write_cg(&d.join(file), v).map_err(|e| Error::Cgroup(format!("{field}: write {v:?} to {}: {}", d.join(file).display(), crate::error::strerror(&e))))
}

/// What libcgroups 0.7 skips or writes wrongly, taken out of what it is
/// given and written here: `pids.limit` 0 (a real limit: it writes "max" on
/// v1 and 1 on v2), huge page limits of -1 on v2, every network priority
/// but the first (it writes them in one line) and a classID without
/// net_prio, rdma (it has no rdma controller), on v1 a CFS burst given
/// alone, the real-time period before the runtime (it writes the runtime
/// first), `useHierarchy`, and on v2 the per-device weights after the
/// default one.
#[derive(Default)]
struct ByHand {
    pids: Option<i64>,
    hugepages: Vec<LinuxHugepageLimit>,
    network: Option<LinuxNetwork>,
    rdma: HashMap<String, LinuxRdma>,
    /// v2: after the default weight, which would reset them.
    weight_device: Vec<oci_spec::runtime::LinuxWeightDevice>,
    burst: Option<u64>,
    rt_period: Option<u64>,
    rt_runtime: Option<i64>,
    use_hierarchy: Option<bool>,
}

impl ByHand {
    fn take(res: &mut LinuxResources, v1: bool) -> ByHand {
        let mut h = ByHand { pids: res.pids().map(|p| p.limit()), hugepages: res.hugepage_limits().clone().unwrap_or_default(), network: res.network().clone(), rdma: res.rdma().clone().unwrap_or_default(), ..Default::default() };
        res.set_pids(None).set_hugepage_limits(None).set_network(None).set_rdma(None);
        if let (false, Some(mut b)) = (v1, res.block_io().clone()) {
            h.weight_device = b.weight_device().clone().unwrap_or_default();
            b.set_weight_device(None);
            res.set_block_io(Some(b));
        }
        if let Some(mut c) = res.cpu().clone() {
            if v1 {
                (h.burst, h.rt_period, h.rt_runtime) = (c.burst(), c.realtime_period().filter(|v| *v != 0), c.realtime_runtime().filter(|v| *v != 0));
                c.set_burst(None).set_realtime_period(None).set_realtime_runtime(None);
            }
            // An empty list is "not set" (as runc): never an empty cpuset.
            let cpus = c.cpus().clone().filter(|v| !v.trim().is_empty());
            let mems = c.mems().clone().filter(|v| !v.trim().is_empty());
            c.set_cpus(cpus).set_mems(mems);
            res.set_cpu(Some(c));
        }
        if let Some(mut m) = *res.memory() {
            if v1 {
                h.use_hierarchy = m.use_hierarchy();
            }
            m.set_use_hierarchy(None);
            res.set_memory(Some(m));
        }
        h
    }

    fn write(&self, dirs: &[PathBuf], v1: bool) -> Result<()> {
        if let Some(l) = self.pids {
            let f = "linux.resources.pids.limit";
            write_file(ctrl_dir(dirs, "pids", f)?, "pids.max", &if l < 0 { "max".to_string() } else { l.to_string() }, f)?;
        }
        for (i, h) in self.hugepages.iter().enumerate() {
            let f = format!("linux.resources.hugepageLimits[{i}].limit");
            let d = ctrl_dir(dirs, "hugetlb", &f)?;
            let (suffix, v) = if v1 { ("limit_in_bytes", h.limit().to_string()) } else { ("max", if h.limit() < 0 { "max".into() } else { h.limit().to_string() }) };
            write_file(d, &format!("hugetlb.{}.{suffix}", h.page_size()), &v, &f)?;
            let rsvd = format!("hugetlb.{}.rsvd.{suffix}", h.page_size());
            if d.join(&rsvd).exists() {
                write_file(d, &rsvd, &v, &f)?;
            }
        }
        if let Some(n) = &self.network {
            self.write_network(dirs, n)?;
        }
        for (dev, l) in &self.rdma {
            let f = format!("linux.resources.rdma.{dev}");
            let mut v = dev.clone();
            for (k, n) in [("hca_handle", l.hca_handles()), ("hca_object", l.hca_objects())] {
                if let Some(n) = n {
                    v.push_str(&format!(" {k}={n}"));
                }
            }
            write_file(ctrl_dir(dirs, "rdma", &f)?, "rdma.max", &v, &f)?;
        }
        self.write_v1_cpu(dirs)?;
        for (i, wd) in self.weight_device.iter().enumerate() {
            let f = format!("linux.resources.blockIO.weightDevice[{i}].weight");
            if let Some(w) = wd.weight().filter(|w| *w != 0) {
                write_file(ctrl_dir(dirs, "io", &f)?, "io.bfq.weight", &format!("{}:{} {w}", wd.major(), wd.minor()), &f)?;
            }
        }
        if let Some(u) = self.use_hierarchy {
            let f = "linux.resources.memory.useHierarchy";
            write_file(ctrl_dir(dirs, "memory", f)?, "memory.use_hierarchy", if u { "1" } else { "0" }, f)?;
        }
        Ok(())
    }

    fn write_network(&self, dirs: &[PathBuf], n: &LinuxNetwork) -> Result<()> {
        if let Some(id) = n.class_id() {
            let f = "linux.resources.network.classID";
            write_file(ctrl_dir(dirs, "net_cls", f)?, "net_cls.classid", &id.to_string(), f)?;
        }
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            let f = format!("linux.resources.network.priorities[{i}]");
            // One interface per write: the kernel reads a single line.
            write_file(ctrl_dir(dirs, "net_prio", &f)?, "net_prio.ifpriomap", &format!("{} {}", p.name(), p.priority()), &f)?;
        }
        Ok(())
    }

    fn write_v1_cpu(&self, dirs: &[PathBuf]) -> Result<()> {
        let files = [
            ("cpu.cfs_burst_us", self.burst.map(|v| v.to_string()), "linux.resources.cpu.burst"),
            ("cpu.rt_period_us", self.rt_period.map(|v| v.to_string()), "linux.resources.cpu.realtimePeriod"),
            ("cpu.rt_runtime_us", self.rt_runtime.map(|v| v.to_string()), "linux.resources.cpu.realtimeRuntime"),
        ];
        for (file, v, f) in files {
            if let Some(v) = v {
                write_file(ctrl_dir(dirs, "cpu", f)?, file, &v, f)?;
            }
        }
        Ok(())
    }
}

/// `memory.checkBeforeUpdate`: a limit below what the cgroup already uses
/// is refused rather than left to the OOM killer (only a cgroup that
/// existed before the container can be using anything at create).
fn check_before_update(res: &LinuxResources, dirs: &[PathBuf]) -> Result<()> {
    let Some(m) = res.memory() else { return Ok(()) };
    let Some(limit) = m.limit().filter(|l| *l > 0 && m.check_before_update() == Some(true)) else { return Ok(()) };
    let f = "linux.resources.memory.checkBeforeUpdate";
    let Ok(d) = ctrl_dir(dirs, "memory", f) else { return Ok(()) };
    let file = if is_v2() { "memory.current" } else { "memory.usage_in_bytes" };
    let used: i64 = std::fs::read_to_string(d.join(file)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    if used > limit {
        return Err(Error::Cgroup(format!("{f}: the cgroup already uses {used} bytes, more than linux.resources.memory.limit ({limit})")));
    }
    Ok(())
}

/// On cgroup v2 `memory.swap` equal to `memory.limit` means no swap at all
/// (`memory.swap.max` 0, as runc writes it); libcgroups takes the 0 it
/// computes for "leave unchanged" and writes nothing.
pub(super) fn v2_no_swap(res: &LinuxResources, dirs: &[PathBuf]) -> Result<()> {
    let Some(m) = res.memory() else { return Ok(()) };
    match (m.limit(), m.swap()) {
        (Some(l), Some(s)) if l > 0 && s == l => {}
        _ => return Ok(()),
    }
    for d in dirs.iter().filter(|d| d.join("memory.swap.max").exists()) {
        std::fs::write(d.join("memory.swap.max"), "0").map_err(|e| Error::Cgroup(format!("linux.resources.memory.swap: write \"0\" to {}: {}", d.join("memory.swap.max").display(), crate::error::strerror(&e))))?;
    }
    Ok(())
}

/// `blockIO.weightDevice` (and leaf weights) on cgroup v1, as runc writes
/// them: to `blkio.weight_device` where the (CFQ) `blkio.weight` exists,
/// else to BFQ's `blkio.bfq.weight_device`.
pub(super) fn write_blkio_weights(d: &Path, res: &LinuxResources) -> Result<()> {
    let Some(io) = res.block_io() else { return Ok(()) };
    let file = if d.join("blkio.weight").exists() { "blkio.weight_device" } else { "blkio.bfq.weight_device" };
    let write = |f: &str, v: String, field: &str| std::fs::write(d.join(f), &v).map_err(|e| Error::Cgroup(format!("{field}: write {v:?} to {}: {}", d.join(f).display(), crate::error::strerror(&e))));
    if let Some(w) = io.leaf_weight().filter(|w| *w != 0) {
        write("blkio.leaf_weight", w.to_string(), "linux.resources.blockIO.leafWeight")?;
    }
    for (i, wd) in io.weight_device().iter().flatten().enumerate() {
        if let Some(w) = wd.weight().filter(|w| *w != 0) {
            write(file, format!("{}:{} {w}", wd.major(), wd.minor()), &format!("linux.resources.blockIO.weightDevice[{i}].weight"))?;
        }
        if let Some(w) = wd.leaf_weight().filter(|w| *w != 0) {
            write("blkio.leaf_weight_device", format!("{}:{} {w}", wd.major(), wd.minor()), &format!("linux.resources.blockIO.weightDevice[{i}].leafWeight"))?;
        }
    }
    Ok(())
}

/// The v1 hierarchies (controller name, directory) whose directory is not
/// at the manager's path: with a relative cgroupsPath, where the runtime's
/// own cgroups differ between hierarchies (runc places the container below
/// each of them).
pub(super) fn off_path(path: &Path, dirs: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for d in dirs {
        let Ok(r) = d.strip_prefix(ROOT) else { continue };
        let mut c = r.components();
        let Some(h) = c.next().and_then(|h| h.as_os_str().to_str()) else { continue };
        if Path::new("/").join(c.as_path()) != path {
            out.extend(h.split(',').map(|n| (n.to_string(), d.clone())));
        }
    }
    out
}

/// libcgroups' v1 manager puts the container at one path in every
/// hierarchy. The limits of a hierarchy at another path ([`off_path`]) are
/// taken out of what it applies and written here: memory, pids, cpu and
/// cpuset; any other is refused rather than misplaced.
pub(super) fn apply_off_path(res: &mut LinuxResources, path: &Path, dirs: &[PathBuf]) -> Result<()> {
    for (name, d) in off_path(path, dirs) {
        let w = |f: &str, v: String| std::fs::write(d.join(f), &v).map_err(|e| Error::Cgroup(format!("linux.resources: write {v:?} to {}: {}", d.join(f).display(), crate::error::strerror(&e))));
        match name.as_str() {
            "memory" => {
                let Some(m) = *res.memory() else { continue };
                let files = [
                    ("memory.limit_in_bytes", m.limit()),
                    ("memory.memsw.limit_in_bytes", m.swap()),
                    ("memory.soft_limit_in_bytes", m.reservation()),
                    ("memory.kmem.limit_in_bytes", m.kernel()),
                    ("memory.kmem.tcp.limit_in_bytes", m.kernel_tcp()),
                ];
                for (f, v) in files {
                    if let Some(v) = v.filter(|v| *v != 0) {
                        w(f, v.to_string())?;
                    }
                }
                if let Some(v) = m.swappiness() {
                    w("memory.swappiness", v.to_string())?;
                }
                if m.disable_oom_killer() == Some(true) {
                    w("memory.oom_control", "1".into())?;
                }
                res.set_memory(None);
            }
            "pids" => {
                if let Some(p) = *res.pids() {
                    w("pids.max", if p.limit() > 0 { p.limit().to_string() } else { "max".into() })?;
                    res.set_pids(None);
                }
            }
            "cpu" | "cpuset" => {
                let Some(mut c) = res.cpu().clone() else { continue };
                if name == "cpu" {
                    let shares = c.shares().map(|v| ("cpu.shares", v.to_string()));
                    let rest = [("cpu.cfs_period_us", c.period().map(|v| v.to_string())), ("cpu.cfs_quota_us", c.quota().map(|v| v.to_string())), ("cpu.rt_period_us", c.realtime_period().map(|v| v.to_string())), ("cpu.rt_runtime_us", c.realtime_runtime().map(|v| v.to_string()))];
                    for (f, v) in shares.into_iter().chain(rest.into_iter().filter_map(|(f, v)| v.map(|v| (f, v)))) {
                        w(f, v)?;
                    }
                    c.set_shares(None).set_period(None).set_quota(None).set_realtime_period(None).set_realtime_runtime(None);
                } else {
                    for (f, v) in [("cpuset.cpus", c.cpus().clone()), ("cpuset.mems", c.mems().clone())] {
                        if let Some(v) = v.filter(|v| !v.is_empty()) {
                            w(f, v)?;
                        }
                    }
                    c.set_cpus(None).set_mems(None);
                }
                res.set_cpu(Some(c));
            }
            n => {
                let set = match n {
                    "blkio" => res.block_io().is_some(),
                    "hugetlb" => res.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
                    "net_cls" | "net_prio" => res.network().is_some(),
                    _ => false,
                };
                if set {
                    return Err(Error::Cgroup(format!("linux.resources: cannot apply the {n} limits: the runtime's own {n} cgroup is not at the same path as its devices cgroup; give linux.cgroupsPath as an absolute path")));
                }
            }
        }
    }
    Ok(())
}

/// `linux.resources` with the device rules every container needs appended
/// (as runc does): mknod of anything, the standard character devices, ptys,
/// and the devices of `linux.devices`.
pub fn with_device_rules(res: Option<&LinuxResources>, devices: &[crate::devices::Device]) -> LinuxResources {
    let mut res = res.cloned().unwrap_or_default();
    let mut rules = res.devices().clone().unwrap_or_default();
    let rule = |t: &str, major: i64, minor: i64, access: &str| {
        let mut v = serde_json::json!({"allow": true, "type": t, "access": access});
        if major >= 0 {
            v["major"] = major.into();
        }
        if minor >= 0 {
            v["minor"] = minor.into();
        }
        serde_json::from_value::<oci_spec::runtime::LinuxDeviceCgroup>(v).expect("valid rule")
    };
    rules.push(rule("c", -1, -1, "m"));
    rules.push(rule("b", -1, -1, "m"));
    for (ma, mi) in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (10, 200)] {
        rules.push(rule("c", ma, mi, "rwm"));
    }
    rules.push(rule("c", 136, -1, "rwm"));
    for d in devices {
        let t = match d.kind {
            libc::S_IFBLK => "b",
            libc::S_IFIFO => continue,
            _ => "c",
        };
        rules.push(rule(t, d.major as i64, d.minor as i64, "rwm"));
    }
    res.set_devices(Some(rules));
    res
}
