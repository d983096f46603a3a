//! A container's statistics read from its cgroup files, in the shape and
//! with the field names of runc's `events` (`types/events.go`, runc
//! 1.1): the same sources per controller on cgroup v1 and v2, the same
//! units (nanoseconds of CPU time, bytes), and the same omissions (Go's
//! `omitempty`: a zero number or an empty list is left out).
//!
//! Beyond runc, under the key `skiff` (never one of runc's): the pressure
//! stall information of the container's cgroup (`cpu.pressure`,
//! `memory.pressure`, `io.pressure`, from the v2 hierarchy, also on a
//! hybrid host) and the CPU controller's `cpu.stat` as the kernel names its
//! fields (`nr_periods`, `nr_throttled`, `throttled_usec` on v2,
//! `throttled_time` on v1, ...).

use std::collections::BTreeMap;

use serde::Serialize;

use super::*;

fn zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    /// runc fills these only for the interfaces it configured itself
    /// (never, for an OCI bundle): always null.
    pub network_interfaces: Option<Vec<()>>,
    /// skiff's additions (see the module documentation).
    pub skiff: Extra,
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Blkio {
    #[serde(rename = "ioServiceBytesRecursive", skip_serializing_if = "Vec::is_empty")]
    pub service_bytes: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub serviced: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub queued: Vec<BlkioEntry>,
    #[serde(rename = "ioServiceTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub service_time: Vec<BlkioEntry>,
    #[serde(rename = "ioWaitTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub wait_time: Vec<BlkioEntry>,
    #[serde(rename = "ioMergedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<BlkioEntry>,
    #[serde(rename = "ioTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub time: Vec<BlkioEntry>,
    #[serde(rename = "sectorsRecursive", skip_serializing_if = "Vec::is_empty")]
    pub sectors: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// skiff does not manage Intel RDT: always `{}`, as runc prints it without.
#[derive(Debug, Default, Serialize)]
pub struct IntelRdt {}

/// What skiff reports beyond runc.
#[derive(Debug, Default, Serialize)]
pub struct Extra {
    /// `cpu`, `memory`, `io`: the cgroup's pressure files, where they exist.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pressure: BTreeMap<&'static str, Pressure>,
    /// The CPU controller's `cpu.stat`, the kernel's names and units.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub cpu_stat: BTreeMap<String, u64>,
}

/// One pressure file: its `some` and `full` lines.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Pressure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub some: Option<PressureLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full: Option<PressureLine>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct PressureLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Microseconds of stall in total.
    pub total: u64,
}

/// The container's directories by controller: on a v2 host the one
/// directory, on v1 the hierarchy that has the controller, and `unified`
/// the v2 directory (a hybrid host's `unified` hierarchy).
pub(super) struct Dirs<'a> {
    dirs: &'a [PathBuf],
    v2: bool,
}

impl<'a> Dirs<'a> {
    pub(super) fn new(dirs: &'a [PathBuf]) -> Self {
        Dirs { dirs, v2: is_v2() }
    }

    pub(super) fn get(&self, ctrl: &str) -> Option<&'a Path> {
        if self.v2 {
            return self.dirs.first().map(PathBuf::as_path);
        }
        self.dirs.iter().find(|d| hierarchy_has(d, ctrl)).map(PathBuf::as_path)
    }

    fn unified(&self) -> Option<&'a Path> {
        if self.v2 {
            return self.dirs.first().map(PathBuf::as_path);
        }
        super::unified_dir(self.dirs).map(PathBuf::as_path)
    }
}

/// The container's directory in each hierarchy, for any driver (the
/// systemd driver records none: they are derived from its unit).
pub fn dirs_of(c: &Owned) -> Vec<PathBuf> {
    if !c.dirs.is_empty() {
        return c.dirs.to_vec();
    }
    container_dirs(c.path, c.systemd).into_iter().map(|(_, d)| d).collect()
}

/// Reads every statistic of the container's cgroup. A file that is absent
/// (a controller not enabled, an older kernel) leaves its fields zero.
pub fn read(dirs: &[PathBuf]) -> Result<Stats> {
    let d = Dirs::new(dirs);
    let mut s = Stats::default();
    // Read once: runc's throttling figures and the raw ones agree.
    let cpu_dir = if d.v2 { d.get("") } else { d.get("cpu") };
    if let Some(text) = cpu_dir.and_then(|c| read_string(&c.join("cpu.stat"))) {
        s.skiff.cpu_stat = flat_keyed(&text);
    }
    if d.v2 {
        let dir = d.get("").ok_or_else(|| Error::Cgroup("the container has no cgroup directory".into()))?;
        if !dir.exists() {
            return Err(Error::Cgroup(format!("{}: the container's cgroup is gone", dir.display())));
        }
        v2::read(dir, &mut s);
    } else {
        v1::read(&d, &mut s);
    }
    if let Some(u) = d.unified() {
        for (key, file) in [("cpu", "cpu.pressure"), ("memory", "memory.pressure"), ("io", "io.pressure")] {
            if let Some(p) = read_string(&u.join(file)).map(|t| parse_pressure(&t)) {
                s.skiff.pressure.insert(key, p);
            }
        }
    }
    Ok(s)
}

pub(super) fn read_string(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// A single number; `max` (no limit) is u64::MAX, as runc reads it.
pub(super) fn read_u64(p: &Path) -> u64 {
    match read_string(p) {
        Some(t) if t.trim() == "max" => u64::MAX,
        Some(t) => t.trim().parse().unwrap_or(0),
        None => 0,
    }
}

/// `key value` lines.
pub(super) fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// `some avg10=0.00 avg60=0.00 avg300=0.00 total=0` (and `full ...`).
pub fn parse_pressure(text: &str) -> Pressure {
    let mut p = Pressure::default();
    for l in text.lines() {
        let mut words = l.split_whitespace();
        let kind = words.next();
        let mut line = PressureLine::default();
        for w in words {
            match w.split_once('=') {
                Some(("avg10", v)) => line.avg10 = v.parse().unwrap_or(0.0),
                Some(("avg60", v)) => line.avg60 = v.parse().unwrap_or(0.0),
                Some(("avg300", v)) => line.avg300 = v.parse().unwrap_or(0.0),
                Some(("total", v)) => line.total = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        match kind {
            Some("some") => p.some = Some(line),
            Some("full") => p.full = Some(line),
            _ => {}
        }
    }
    p
}

/// A cpuset list (`0-3,8`) as the numbers in it.
pub(super) fn parse_list(text: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u16>().ok()),
        }
    }
    out
}

/// The host's huge page sizes as runc names them (`2MB`, `1GB`).
pub(super) fn hugepage_sizes() -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") else { return out };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(kb) = name.strip_prefix("hugepages-").and_then(|n| n.strip_suffix("kB")).and_then(|n| n.parse::<u64>().ok()) else { continue };
        let (n, unit) = match kb {
            k if k >= 1 << 30 && k % (1 << 30) == 0 => (k >> 30, "TB"),
            k if k >= 1 << 20 && k % (1 << 20) == 0 => (k >> 20, "GB"),
            k if k >= 1 << 10 && k % (1 << 10) == 0 => (k >> 10, "MB"),
            k => (k, "KB"),
        };
        out.push(format!("{n}{unit}"));
    }
    out.sort();
    out
}

mod v1 {
    use super::*;

    pub(super) fn read(d: &Dirs, s: &mut Stats) {
        if let Some(dir) = d.get("cpuacct") {
            cpuacct(dir, &mut s.cpu.usage);
        }
        let g = |k: &str| s.skiff.cpu_stat.get(k).copied().unwrap_or(0);
        s.cpu.throttling = Throttling { periods: g("nr_periods"), throttled_periods: g("nr_throttled"), throttled_time: g("throttled_time") };
        if let Some(dir) = d.get("cpuset") {
            cpuset(dir, &mut s.cpuset);
        }
        if let Some(dir) = d.get("memory") {
            memory(dir, &mut s.memory);
        }
        if let Some(dir) = d.get("pids") {
            s.pids.current = read_u64(&dir.join("pids.current"));
            // runc reports no limit ("max") as 0.
            s.pids.limit = match read_u64(&dir.join("pids.max")) {
                u64::MAX => 0,
                n => n,
            };
        }
        if let Some(dir) = d.get("blkio") {
            blkio(dir, &mut s.blkio);
        }
        if let Some(dir) = d.get("hugetlb") {
            for size in hugepage_sizes() {
                let f = |n: &str| dir.join(format!("hugetlb.{size}.{n}"));
                let h = Hugetlb { usage: read_u64(&f("usage_in_bytes")), max: read_u64(&f("max_usage_in_bytes")), failcnt: read_u64(&f("failcnt")) };
                s.hugetlb.insert(size, h);
            }
        }
    }

    fn cpuacct(dir: &Path, u: &mut CpuUsage) {
        u.total = read_u64(&dir.join("cpuacct.usage"));
        u.percpu = read_string(&dir.join("cpuacct.usage_percpu")).unwrap_or_default().split_whitespace().filter_map(|n| n.parse().ok()).collect();
        // "cpu user system" then one line per CPU, in nanoseconds.
        for l in read_string(&dir.join("cpuacct.usage_all")).unwrap_or_default().lines().skip(1) {
            let f: Vec<u64> = l.split_whitespace().filter_map(|n| n.parse().ok()).collect();
            if let [_, user, system] = f[..] {
                u.percpu_user.push(user);
                u.percpu_kernel.push(system);
            }
        }
        // cpuacct.stat is in clock ticks.
        // SAFETY: sysconf has no memory-safety preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let st = flat_keyed(&read_string(&dir.join("cpuacct.stat")).unwrap_or_default());
        u.user = st.get("user").copied().unwrap_or(0) * (1_000_000_000 / hz);
        u.kernel = st.get("system").copied().unwrap_or(0) * (1_000_000_000 / hz);
    }

    fn cpuset(dir: &Path, c: &mut CpuSet) {
        let n = |f: &str| read_u64(&dir.join(format!("cpuset.{f}")));
        c.cpus = parse_list(&read_string(&dir.join("cpuset.cpus")).unwrap_or_default());
        c.mems = parse_list(&read_string(&dir.join("cpuset.mems")).unwrap_or_default());
        c.cpu_exclusive = n("cpu_exclusive");
        c.mem_hardwall = n("mem_hardwall");
        c.mem_exclusive = n("mem_exclusive");
        c.memory_migrate = n("memory_migrate");
        c.memory_spread_page = n("memory_spread_page");
        c.memory_spread_slab = n("memory_spread_slab");
        c.memory_pressure = n("memory_pressure");
        c.sched_load_balance = n("sched_load_balance");
        c.sched_relax_domain_level = read_string(&dir.join("cpuset.sched_relax_domain_level")).and_then(|t| t.trim().parse().ok()).unwrap_or(0);
    }

    fn memory(dir: &Path, m: &mut Memory) {
        m.raw = flat_keyed(&read_string(&dir.join("memory.stat")).unwrap_or_default());
        m.cache = m.raw.get("cache").copied().unwrap_or(0);
        let entry = |prefix: &str| {
            let f = |n: &str| read_u64(&dir.join(format!("{prefix}.{n}")));
            MemoryEntry { limit: f("limit_in_bytes"), usage: f("usage_in_bytes"), max: f("max_usage_in_bytes"), failcnt: f("failcnt") }
        };
        m.usage = entry("memory");
        m.swap = entry("memory.memsw");
        m.kernel = entry("memory.kmem");
        m.kernel_tcp = entry("memory.kmem.tcp");
    }

    /// CFQ's statistics, else BFQ's, else the throttling ones, as runc
    /// picks them.
    fn blkio(dir: &Path, b: &mut Blkio) {
        let read = |f: &str| parse_blkio(&read_string(&dir.join(f)).unwrap_or_default());
        if !read("blkio.io_serviced_recursive").is_empty() {
            b.sectors = read("blkio.sectors_recursive");
            b.service_bytes = read("blkio.io_service_bytes_recursive");
            b.serviced = read("blkio.io_serviced_recursive");
            b.queued = read("blkio.io_queued_recursive");
            b.service_time = read("blkio.io_service_time_recursive");
            b.wait_time = read("blkio.io_wait_time_recursive");
            b.merged = read("blkio.io_merged_recursive");
            b.time = read("blkio.time_recursive");
        } else if !read("blkio.bfq.io_serviced_recursive").is_empty() {
            b.service_bytes = read("blkio.bfq.io_service_bytes_recursive");
            b.serviced = read("blkio.bfq.io_serviced_recursive");
        } else {
            b.service_bytes = read("blkio.throttle.io_service_bytes_recursive");
            b.serviced = read("blkio.throttle.io_serviced_recursive");
        }
    }

    /// `8:0 Read 4096` (or `8:0 4096`) lines; the `Total` line is skipped.
    pub(super) fn parse_blkio(text: &str) -> Vec<BlkioEntry> {
        let mut out = Vec::new();
        for l in text.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, op, v) = match f[..] {
                [dev, op, v] => (dev, op, v),
                [dev, v] if dev.contains(':') => (dev, "", v),
                _ => continue,
            };
            let Some((ma, mi)) = dev.split_once(':') else { continue };
            let (Ok(major), Ok(minor), Ok(value)) = (ma.parse(), mi.parse(), v.parse()) else { continue };
            out.push(BlkioEntry { major, minor, op: op.to_string(), value });
        }
        out
    }
}

mod v2 {
    use super::*;

    pub(super) fn read(dir: &Path, s: &mut Stats) {
        let g = |k: &str| s.skiff.cpu_stat.get(k).copied().unwrap_or(0);
        s.cpu.usage.total = g("usage_usec") * 1000;
        s.cpu.usage.user = g("user_usec") * 1000;
        s.cpu.usage.kernel = g("system_usec") * 1000;
        s.cpu.throttling = Throttling { periods: g("nr_periods"), throttled_periods: g("nr_throttled"), throttled_time: g("throttled_usec") * 1000 };
        memory(dir, &mut s.memory);
        s.pids.current = read_u64(&dir.join("pids.current"));
        s.pids.limit = read_u64(&dir.join("pids.max"));
        io(dir, &mut s.blkio);
        for size in hugepage_sizes() {
            let usage = read_u64(&dir.join(format!("hugetlb.{size}.current")));
            let events = flat_keyed(&read_string(&dir.join(format!("hugetlb.{size}.events"))).unwrap_or_default());
            if dir.join(format!("hugetlb.{size}.current")).exists() {
                s.hugetlb.insert(size, Hugetlb { usage, max: 0, failcnt: events.get("max").copied().unwrap_or(0) });
            }
        }
    }

    /// As runc: `swap` is memory + swap (v1's meaning), its limit too
    /// unless unlimited.
    fn memory(dir: &Path, m: &mut Memory) {
        m.raw = flat_keyed(&read_string(&dir.join("memory.stat")).unwrap_or_default());
        m.cache = m.raw.get("file").copied().unwrap_or(0);
        m.usage = MemoryEntry { limit: read_u64(&dir.join("memory.max")), usage: read_u64(&dir.join("memory.current")), ..Default::default() };
        if dir.join("memory.swap.current").exists() {
            let limit = read_u64(&dir.join("memory.swap.max"));
            m.swap.usage = read_u64(&dir.join("memory.swap.current")) + m.usage.usage;
            m.swap.limit = if limit == u64::MAX { limit } else { limit.saturating_add(m.usage.limit) };
        }
    }

    /// `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0` lines.
    pub(super) fn io(dir: &Path, b: &mut Blkio) {
        for l in read_string(&dir.join("io.stat")).unwrap_or_default().lines() {
            let mut words = l.split_whitespace();
            let Some((ma, mi)) = words.next().and_then(|d| d.split_once(':')) else { continue };
            let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else { continue };
            for w in words {
                let Some((k, v)) = w.split_once('=') else { continue };
                let Ok(value) = v.parse() else { continue };
                let (list, op) = match k {
                    "rbytes" => (&mut b.service_bytes, "Read"),
                    "wbytes" => (&mut b.service_bytes, "Write"),
                    "rios" => (&mut b.serviced, "Read"),
                    "wios" => (&mut b.serviced, "Write"),
                    _ => continue,
                };
                list.push(BlkioEntry { major, minor, op: op.into(), value });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_lines() {
        let p = parse_pressure("some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n");
        assert_eq!(p.some, Some(PressureLine { avg10: 1.5, avg60: 0.25, avg300: 0.0, total: 1234 }));
        assert_eq!(p.full.map(|f| f.total), Some(7));
        assert_eq!(parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").full, None);
    }

    #[test]
    fn lists_and_blkio_lines() {
        assert_eq!(parse_list("0-2,5\n"), vec![0, 1, 2, 5]);
        assert!(parse_list("\n").is_empty());
        let e = v1::parse_blkio("8:0 Read 4096\n8:0 Write 0\n8:16 512\nTotal 4096\n");
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].major, e[0].minor, e[0].op.as_str(), e[0].value), (8, 0, "Read", 4096));
        assert_eq!((e[2].minor, e[2].op.as_str(), e[2].value), (16, "", 512));
    }

    #[test]
    fn runc_omissions() {
        let v = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(v["cpu"]["usage"], serde_json::json!({"kernel": 0, "user": 0}));
        assert_eq!(v["cpu"]["throttling"], serde_json::json!({}));
        assert_eq!(v["pids"], serde_json::json!({}));
        assert_eq!(v["memory"]["kernelTCP"], serde_json::json!({"limit": 0, "failcnt": 0}));
        assert!(v["network_interfaces"].is_null());
        assert_eq!(v["skiff"], serde_json::json!({}));
    }
}
