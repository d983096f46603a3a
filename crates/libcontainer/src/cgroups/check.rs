//! `linux.resources` checked against the spec's ranges and against this
//! host before anything is created: a value the host cannot apply (a
//! controller it lacks, a file its kernel no longer has, a device that does
//! not exist) is an error naming the field, never a silent skip.
//!
//! Zero stays "not set" where runc and libcgroups read it so (shares,
//! quota, period, the real-time values, the block I/O weights, the memory
//! limits): that is the Go zero value callers send for "no limit".

use std::collections::HashMap;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork, LinuxRdma};

use super::*;

/// What this host's cgroups offer, read once per check.
struct Host {
    v2: bool,
    /// v2: the root's `cgroup.controllers`; v1: the mounted controllers
    /// with their hierarchy's root directory.
    controllers: Vec<(String, PathBuf)>,
    kernel: (u32, u32),
}

impl Host {
    fn probe() -> Host {
        let v2 = is_v2();
        let controllers = if v2 {
            let s = std::fs::read_to_string(Path::new(ROOT).join("cgroup.controllers")).unwrap_or_default();
            s.split_whitespace().map(|c| (c.to_string(), PathBuf::from(ROOT))).collect()
        } else {
            v1_hierarchies(&crate::sys::read_proc("/proc/self/mountinfo").unwrap_or_default())
        };
        Host { v2, controllers, kernel: kernel_version() }
    }

    fn root(&self, ctrl: &str) -> Option<&Path> {
        self.controllers.iter().find(|(c, _)| c == ctrl).map(|(_, p)| p.as_path())
    }

    /// The controller must exist here; `field` names what needs it.
    fn need(&self, ctrl: &str, field: &str) -> Result<&Path> {
        self.root(ctrl).ok_or_else(|| {
            let version = if self.v2 { "cgroup v2" } else { "this host (cgroup v1)" };
            Error::config(field, format!("the {ctrl} controller is not available on {version}"))
        })
    }

    /// A v1 interface file, looked up in its hierarchy's root.
    fn v1_file(&self, ctrl: &str, file: &str, field: &str, lacking: &str) -> Result<()> {
        let root = self.need(ctrl, field)?;
        if root.join(file).exists() {
            Ok(())
        } else {
            Err(Error::config(field, format!("{lacking} (no {file} in {})", root.display())))
        }
    }

    fn kernel_at_least(&self, major: u32, minor: u32) -> bool {
        self.kernel >= (major, minor)
    }
}

/// Whether this host's cgroups have controller `ctrl` (v2: in the root's
/// `cgroup.controllers`; v1: a mounted hierarchy).
pub fn has_controller(ctrl: &str) -> bool {
    Host::probe().root(ctrl).is_some()
}

/// (controller, hierarchy root) of every mounted cgroup v1 hierarchy.
fn v1_hierarchies(mountinfo: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let mut f = post.split(' ');
        if f.next() != Some("cgroup") {
            continue;
        }
        let opts = f.nth(1).unwrap_or("");
        let Some(mnt) = pre.split(' ').nth(4) else { continue };
        let not_a_controller = |o: &str| matches!(o, "rw" | "ro" | "xattr" | "noprefix" | "clone_children" | "cpuset_v2_mode" | "favordynmods") || o.contains('=');
        for o in opts.split(',').filter(|o| !not_a_controller(o)) {
            out.push((o.to_string(), PathBuf::from(mnt)));
        }
    }
    out
}

fn kernel_version() -> (u32, u32) {
    let r = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    let mut n = r.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse().ok());
    (n.next().unwrap_or(0), n.next().unwrap_or(0))
}

/// Checks `linux.resources` for this host, before the container exists.
pub fn check(res: Option<&LinuxResources>) -> Result<()> {
    let Some(res) = res else { return Ok(()) };
    check_unified(Some(res))?;
    check_devices(res)?;
    // Device rules (every container has them) need nothing of the host.
    if !super::requests_limits(Some(res)) {
        return Ok(());
    }
    let host = Host::probe();
    if let Some(m) = res.memory() {
        check_memory(&host, m)?;
    }
    if let Some(c) = res.cpu() {
        check_cpu(&host, c)?;
    }
    if res.pids().is_some() {
        host.need("pids", "linux.resources.pids")?;
    }
    if let Some(b) = res.block_io() {
        check_block_io(&host, b)?;
    }
    check_hugepages(&host, res)?;
    if let Some(n) = res.network() {
        check_network(&host, n)?;
    }
    if let Some(r) = res.rdma() {
        check_rdma(&host, r)?;
    }
    if host.v2 {
        check_unified_keys(&host, res.unified().as_ref())?;
    }
    Ok(())
}

/// `linux.resources.unified` needs cgroup v2 (runc refuses it on v1 too).
pub fn check_unified(res: Option<&LinuxResources>) -> Result<()> {
    if res.and_then(|r| r.unified().as_ref()).is_some_and(|u| !u.is_empty()) && !is_v2() {
        return Err(Error::config("linux.resources.unified", "cannot be used on a cgroup v1 host"));
    }
    Ok(())
}

fn bytes(v: Option<i64>, field: &str) -> Result<()> {
    match v {
        Some(n) if n < -1 => Err(Error::config(field, format!("{n} is neither -1 (unlimited) nor a number of bytes"))),
        _ => Ok(()),
    }
}

fn check_memory(host: &Host, m: &LinuxMemory) -> Result<()> {
    let f = |k: &str| format!("linux.resources.memory.{k}");
    host.need("memory", "linux.resources.memory")?;
    for (k, v) in [("limit", m.limit()), ("reservation", m.reservation()), ("swap", m.swap()), ("kernel", m.kernel()), ("kernelTCP", m.kernel_tcp())] {
        bytes(v, &f(k))?;
    }
    let (limit, swap) = (m.limit().unwrap_or(0), m.swap().unwrap_or(0));
    if swap > 0 && limit > 0 && swap < limit {
        return Err(Error::config(f("swap"), format!("{swap} is below linux.resources.memory.limit ({limit}): swap is the limit of memory plus swap")));
    }
    if swap != 0 && host.v2 && limit == 0 {
        return Err(Error::config(f("swap"), "needs linux.resources.memory.limit on cgroup v2 (memory.swap.max is the swap beyond memory.max)"));
    }
    if swap != 0 && !host.v2 {
        host.v1_file("memory", "memory.memsw.limit_in_bytes", &f("swap"), "swap accounting is off in this kernel")?;
    }
    // The runtime-spec deprecates `kernel` and lets runtimes ignore it; the
    // kernel itself does since 5.16. As runc: written where the file is
    // (v1), with a warning that it has no effect; on v2 there is no file.
    if m.kernel().is_some_and(|k| k > 0) {
        if host.v2 {
            tracing::warn!("{}: ignored: cgroup v2 has no separate kernel memory limit (memory.max includes it)", f("kernel"));
        } else if host.kernel_at_least(5, 16) {
            tracing::warn!("{}: has no effect: Linux 5.16 and later ignore kernel memory limits (memory.kmem.limit_in_bytes)", f("kernel"));
        }
    }
    if m.kernel_tcp().is_some_and(|k| k > 0) {
        if host.v2 {
            // As runc (and as the OCI suite's memory cases expect): ignored.
            tracing::warn!("{}: ignored: cgroup v2 has no separate kernel TCP memory limit (memory.max includes it)", f("kernelTCP"));
        } else {
            host.v1_file("memory", "memory.kmem.tcp.limit_in_bytes", &f("kernelTCP"), "this kernel has no kernel TCP memory limit")?;
        }
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::config(f("swappiness"), format!("{s} is out of range (0-100)")));
        }
        if host.v2 {
            // As runc and crun, and as the OCI suite's memory cases expect.
            tracing::warn!("{}: ignored: cgroup v2 has no per-cgroup swappiness", f("swappiness"));
        }
    }
    if m.disable_oom_killer() == Some(true) && host.v2 {
        // As runc and crun, and as the OCI suite's memory cases expect.
        tracing::warn!("{}: ignored: cgroup v2 cannot disable the OOM killer (no memory.oom_control)", f("disableOOMKiller"));
    }
    if m.use_hierarchy() == Some(false) && (host.v2 || host.kernel_at_least(5, 11)) {
        return Err(Error::config(f("useHierarchy"), "false is not supported: memory accounting is always hierarchical on cgroup v2 and on Linux 5.11 and later"));
    }
    Ok(())
}

fn check_cpu(host: &Host, c: &LinuxCpu) -> Result<()> {
    let f = |k: &str| format!("linux.resources.cpu.{k}");
    let nz = |v: Option<u64>| v.filter(|v| *v != 0);
    if c.shares().is_some() || c.quota().is_some() || c.period().is_some() || c.burst().is_some() || c.idle().is_some() || c.realtime_period().is_some() || c.realtime_runtime().is_some() {
        host.need("cpu", "linux.resources.cpu")?;
    }
    if let Some(s) = nz(c.shares()).filter(|s| !(2..=262_144).contains(s)) {
        return Err(Error::config(f("shares"), format!("{s} is out of range (2-262144)")));
    }
    if let Some(q) = c.quota().filter(|q| *q < -1 || (1..1000).contains(q)) {
        return Err(Error::config(f("quota"), format!("{q} is neither -1 (unlimited) nor at least 1000 microseconds")));
    }
    if let Some(p) = nz(c.period()).filter(|p| !(1000..=1_000_000).contains(p)) {
        return Err(Error::config(f("period"), format!("{p} is out of range (1000-1000000 microseconds)")));
    }
    if let Some(b) = c.burst() {
        if host.v2 && !host.kernel_at_least(5, 14) {
            return Err(Error::config(f("burst"), "this kernel has no cpu.max.burst (Linux 5.14)"));
        }
        if !host.v2 {
            host.v1_file("cpu", "cpu.cfs_burst_us", &f("burst"), "this kernel has no CFS burst")?;
        }
        if let Some(q) = c.quota().filter(|q| *q > 0 && b > *q as u64) {
            return Err(Error::config(f("burst"), format!("{b} is above linux.resources.cpu.quota ({q})")));
        }
    }
    if let Some(i) = c.idle() {
        if !(0..=1).contains(&i) {
            return Err(Error::config(f("idle"), format!("{i} is neither 0 nor 1")));
        }
        if host.v2 && !host.kernel_at_least(5, 15) {
            return Err(Error::config(f("idle"), "this kernel has no cpu.idle (Linux 5.15)"));
        }
        if !host.v2 {
            host.v1_file("cpu", "cpu.idle", &f("idle"), "this kernel has no cpu.idle")?;
        }
    }
    check_realtime(host, c)?;
    for (k, v, online) in [("cpus", c.cpus(), "/sys/devices/system/cpu/online"), ("mems", c.mems(), "/sys/devices/system/node/online")] {
        if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
            host.need("cpuset", &f(k))?;
            let want = parse_list(v).map_err(|e| Error::config(f(k), format!("{v:?}: {e}")))?;
            let have = std::fs::read_to_string(online).ok().and_then(|s| parse_list(s.trim()).ok());
            if let Some(missing) = have.and_then(|h| want.iter().find(|n| !h.contains(n)).copied()) {
                return Err(Error::config(f(k), format!("{v:?}: {} {missing} is not online on this host", if k == "cpus" { "cpu" } else { "memory node" })));
            }
        }
    }
    Ok(())
}

fn check_realtime(host: &Host, c: &LinuxCpu) -> Result<()> {
    let f = |k: &str| format!("linux.resources.cpu.{k}");
    let runtime = c.realtime_runtime().filter(|v| *v != 0);
    let period = c.realtime_period().filter(|v| *v != 0);
    for (k, set) in [("realtimeRuntime", runtime.is_some()), ("realtimePeriod", period.is_some())] {
        if set && host.v2 {
            return Err(Error::config(f(k), "cgroup v2 has no real-time group scheduling (cpu.rt_runtime_us)"));
        }
        if set {
            host.v1_file("cpu", "cpu.rt_runtime_us", &f(k), "this kernel has no real-time group scheduling (CONFIG_RT_GROUP_SCHED)")?;
        }
    }
    if let Some(r) = runtime.filter(|r| *r < -1) {
        return Err(Error::config(f("realtimeRuntime"), format!("{r} is neither -1 (unlimited) nor a number of microseconds")));
    }
    if let (Some(r), Some(p)) = (runtime, period) {
        if r > 0 && r as u64 > p {
            return Err(Error::config(f("realtimeRuntime"), format!("{r} is above linux.resources.cpu.realtimePeriod ({p})")));
        }
    }
    Ok(())
}

/// A cpu or memory node list (`0-3,5`), as the kernel reads it.
pub(super) fn parse_list(s: &str) -> std::result::Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let num = |t: &str| t.trim().parse::<u32>().map_err(|_| format!("{part:?} is not a number or a range (N or N-M)"));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("range {part:?} is reversed"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    Ok(out)
}

/// A block device `major:minor` that exists on this host.
fn block_device(major: i64, minor: i64, field: &str) -> Result<()> {
    if major < 0 || minor < 0 {
        return Err(Error::config(field, format!("{major}:{minor} is not a device number (major and minor are at least 0)")));
    }
    if !Path::new(&format!("/sys/dev/block/{major}:{minor}")).exists() {
        return Err(Error::config(field, format!("no block device {major}:{minor} on this host")));
    }
    Ok(())
}

/// Whether block device `major:minor` (or the disk of a partition) is
/// scheduled by BFQ.
fn uses_bfq(major: i64, minor: i64) -> bool {
    let dev = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    [dev.join("queue/scheduler"), dev.join("../queue/scheduler")].iter().find_map(|p| std::fs::read_to_string(p).ok()).is_some_and(|s| s.contains("[bfq]"))
}

fn weight(w: Option<u16>, field: &str) -> Result<()> {
    match w {
        Some(w) if w != 0 && !(10..=1000).contains(&w) => Err(Error::config(field, format!("{w} is out of range (10-1000)"))),
        _ => Ok(()),
    }
}

fn check_block_io(host: &Host, b: &LinuxBlockIo) -> Result<()> {
    let f = |k: &str| format!("linux.resources.blockIO.{k}");
    host.need(if host.v2 { "io" } else { "blkio" }, "linux.resources.blockIO")?;
    weight(b.weight(), &f("weight"))?;
    weight(b.leaf_weight(), &f("leafWeight"))?;
    let leaf = |field: String| -> Result<()> {
        if host.v2 {
            return Err(Error::config(field, "cgroup v2 has no leaf weights"));
        }
        host.v1_file("blkio", "blkio.leaf_weight", &field, "leaf weights need the CFQ I/O scheduler, which this kernel does not have")
    };
    if b.leaf_weight().is_some_and(|w| w != 0) {
        leaf(f("leafWeight"))?;
    }
    for (i, wd) in b.weight_device().iter().flatten().enumerate() {
        let field = f(&format!("weightDevice[{i}]"));
        block_device(wd.major(), wd.minor(), &field)?;
        if wd.weight().is_some_and(|w| w != 0) && !uses_bfq(wd.major(), wd.minor()) {
            // The kernel takes a per-device weight for another scheduler and ignores it.
            return Err(Error::config(format!("{field}.weight"), format!("device {}:{} does not use the bfq I/O scheduler, the only one with per-device weights", wd.major(), wd.minor())));
        }
        weight(wd.weight(), &format!("{field}.weight"))?;
        weight(wd.leaf_weight(), &format!("{field}.leafWeight"))?;
        if wd.leaf_weight().is_some_and(|w| w != 0) {
            leaf(format!("{field}.leafWeight"))?;
        }
    }
    let lists = [("throttleReadBpsDevice", b.throttle_read_bps_device()), ("throttleWriteBpsDevice", b.throttle_write_bps_device()), ("throttleReadIOPSDevice", b.throttle_read_iops_device()), ("throttleWriteIOPSDevice", b.throttle_write_iops_device())];
    for (k, list) in lists {
        for (i, t) in list.iter().flatten().enumerate() {
            block_device(t.major(), t.minor(), &f(&format!("{k}[{i}]")))?;
        }
    }
    Ok(())
}

/// The huge page sizes of this host as cgroup files name them (`2MB`, `1GB`).
pub(super) fn hugepage_sizes() -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/sys/kernel/mm/hugepages").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(kb) = name.strip_prefix("hugepages-").and_then(|s| s.strip_suffix("kB")).and_then(|s| s.parse::<u64>().ok()) else { continue };
        v.push(match kb {
            kb if kb >= 1 << 20 && kb % (1 << 20) == 0 => format!("{}GB", kb >> 20),
            kb if kb >= 1 << 10 && kb % (1 << 10) == 0 => format!("{}MB", kb >> 10),
            kb => format!("{kb}KB"),
        });
    }
    v.sort();
    v
}

fn check_hugepages(host: &Host, res: &LinuxResources) -> Result<()> {
    let limits = res.hugepage_limits().as_deref().unwrap_or(&[]);
    if limits.is_empty() {
        return Ok(());
    }
    host.need("hugetlb", "linux.resources.hugepageLimits")?;
    let sizes = hugepage_sizes();
    for (i, h) in limits.iter().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}]");
        if !sizes.iter().any(|s| s == h.page_size()) {
            return Err(Error::config(format!("{field}.pageSize"), format!("{:?} is not a huge page size of this host (it has: {})", h.page_size(), sizes.join(", "))));
        }
        bytes(Some(h.limit()), &format!("{field}.limit"))?;
    }
    Ok(())
}

fn check_network(host: &Host, n: &LinuxNetwork) -> Result<()> {
    let f = |k: &str| format!("linux.resources.network.{k}");
    if n.class_id().is_some() {
        if host.v2 {
            return Err(Error::config(f("classID"), "the net_cls controller is not available on cgroup v2"));
        }
        host.need("net_cls", &f("classID"))?;
    }
    let prios = n.priorities().as_deref().unwrap_or(&[]);
    if !prios.is_empty() {
        if host.v2 {
            return Err(Error::config(f("priorities"), "the net_prio controller is not available on cgroup v2"));
        }
        host.need("net_prio", &f("priorities"))?;
    }
    for (i, p) in prios.iter().enumerate() {
        let name = p.name();
        if name.is_empty() || name.contains('/') || name == "." || name == ".." || !Path::new("/sys/class/net").join(name).exists() {
            return Err(Error::config(f(&format!("priorities[{i}].name")), format!("no network interface {name:?} in the runtime's network namespace")));
        }
    }
    Ok(())
}

fn check_rdma(host: &Host, r: &HashMap<String, LinuxRdma>) -> Result<()> {
    for (dev, l) in r {
        let field = format!("linux.resources.rdma.{dev}");
        host.need("rdma", &field)?;
        if l.hca_handles().is_none() && l.hca_objects().is_none() {
            return Err(Error::config(field, "needs hcaHandles or hcaObjects"));
        }
        if dev.is_empty() || dev.contains('/') || dev.contains(char::is_whitespace) || dev == "." || dev == ".." || !Path::new("/sys/class/infiniband").join(dev).exists() {
            return Err(Error::config(field, format!("no RDMA device {dev:?} on this host")));
        }
    }
    Ok(())
}

fn check_devices(res: &LinuxResources) -> Result<()> {
    let rules = res.devices().as_deref().unwrap_or(&[]);
    for (i, r) in rules.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        if let Some(a) = r.access().as_deref() {
            if let Some(c) = a.chars().find(|c| !matches!(c, 'r' | 'w' | 'm')) {
                return Err(Error::config(format!("{field}.access"), format!("{a:?}: {c:?} is not one of r, w, m")));
            }
        }
        for (k, v) in [("major", r.major()), ("minor", r.minor())] {
            if let Some(n) = v.filter(|n| *n < -1) {
                return Err(Error::config(format!("{field}.{k}"), format!("{n} is neither a device number nor -1 (any)")));
            }
        }
    }
    // Also refuses the types a rule cannot have (the same fold as v1's).
    crate::devices::CgroupV1Rules::from_rules(rules).map(|_| ())
}

/// `unified` keys name an interface file of a controller this host has.
fn check_unified_keys(host: &Host, unified: Option<&HashMap<String, String>>) -> Result<()> {
    for key in unified.into_iter().flat_map(|u| u.keys()) {
        let field = format!("linux.resources.unified.{key}");
        let Some((ctrl, _)) = key.split_once('.').filter(|(c, f)| !c.is_empty() && !f.is_empty() && !key.contains('/')) else {
            return Err(Error::config(field, "is not a cgroup interface file name (<controller>.<file>)"));
        };
        if ctrl != "cgroup" && host.root(ctrl).is_none() {
            return Err(Error::config(field, format!("the {ctrl} controller is not available on this host")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(parse_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_list("3").unwrap(), vec![3]);
        for bad in ["0-", "", "a", "2-1", "1,,2", "-1"] {
            assert!(parse_list(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hierarchies_from_mountinfo() {
        let mi = "30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu\n\
                  31 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio\n\
                  32 25 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
                  33 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        let h = v1_hierarchies(mi);
        let names: Vec<&str> = h.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(names, ["cpu", "net_cls", "net_prio"]);
        assert_eq!(h[1].1, PathBuf::from("/sys/fs/cgroup/net_cls,net_prio"));
    }
}
