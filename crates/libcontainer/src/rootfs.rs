//! The container's root filesystem: the `mounts` of config.json, devices,
//! pivot_root, masked and read-only paths.
//!
//! Runs in the init, inside its new mount namespace. [`prepare`] runs
//! before pivot_root (host paths are still visible, so bind sources resolve
//! on the host); [`pivot`] switches root; [`finish`] applies what must be
//! done from inside (masking, read-only remounts). Every destination is
//! resolved with [`crate::safe_path::Root`], so nothing outside the rootfs
//! is ever touched through a symlink in the image.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Mount;

use crate::error::{Context, Error, Result};
use crate::safe_path::{fd_path, Root};

/// Everything the rootfs set-up needs, computed by the runtime before clone.
pub struct RootfsPlan {
    pub rootfs: PathBuf,
    pub bundle: PathBuf,
    pub mounts: Vec<Mount>,
    pub propagation: Option<MsFlags>,
    pub readonly: bool,
    pub no_pivot: bool,
    pub devices: Vec<crate::devices::Device>,
    pub masked: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub in_userns: bool,
    /// Devices are bind-mounted from the host rather than made with mknod:
    /// in a new user namespace, and also when the runtime itself runs in
    /// one (rootless Podman's, with no user namespace in the config), where
    /// mknod is refused just the same (as runc).
    pub bind_devices: bool,
    pub new_cgroupns: bool,
    /// False when the container shares the runtime's mount namespace (no
    /// `mount` entry in linux.namespaces): the mounts land on the host, the
    /// root is entered with chroot, and `delete` removes them.
    pub new_mountns: bool,
    /// linux.mountLabel where the host has SELinux ([`crate::lsm::mount_label`]):
    /// the context of the mounts runc labels.
    pub mount_label: Option<String>,
    /// For `cgroup` mounts: (hierarchy name, container's host dir).
    pub cgroup_dirs: Vec<(String, PathBuf)>,
    /// For idmapped mounts, by index in `mounts`: the detached, id-mapped
    /// copy of the source, made by the runtime before the clone (in the
    /// host's user namespace, which owns the mapping namespace); the init
    /// only attaches it.
    pub idmap_trees: Vec<Option<OwnedFd>>,
    /// For bind mounts into a new user namespace, by index in `mounts`: a
    /// detached copy of the source made by the runtime before the clone,
    /// since the namespace's root may not be allowed to reach it (runc too
    /// opens these sources with the host's credentials).
    pub bind_sources: Vec<Option<OwnedFd>>,
}

/// Detached copies (open_tree) of the bind mounts' sources, made with the
/// runtime's own credentials (see [`RootfsPlan::bind_sources`]); the init
/// attaches them as it does idmapped ones.
pub fn open_bind_sources(mounts: &[Mount], bundle: &Path) -> Result<Vec<Option<OwnedFd>>> {
    let mut out = Vec::with_capacity(mounts.len());
    for (i, m) in mounts.iter().enumerate() {
        let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
        let bind = opts.flags.contains(MsFlags::MS_BIND) || m.typ().as_deref() == Some("bind");
        match m.source() {
            Some(src) if bind && !opts.idmap => {
                let src = if src.is_absolute() { src.clone() } else { bundle.join(src) };
                let csrc = CString::new(src.as_os_str().as_encoded_bytes()).map_err(|_| Error::config(format!("mounts[{i}].source"), "contains a NUL byte"))?;
                let tree = crate::sys::open_tree_clone(&csrc, opts.flags.contains(MsFlags::MS_REC)).ctx(|| format!("mounts[{i}]: bind source {}", src.display()))?;
                out.push(Some(tree));
            }
            _ => out.push(None),
        }
    }
    Ok(out)
}

/// Detached id-mapped copies of the sources of `idmap`/`ridmap` mounts.
pub fn idmapped_trees(mounts: &[Mount], bundle: &Path) -> Result<Vec<Option<OwnedFd>>> {
    let mut out = Vec::with_capacity(mounts.len());
    for (i, m) in mounts.iter().enumerate() {
        if !parse_options(m.options().as_deref().unwrap_or(&[])).idmap {
            out.push(None);
            continue;
        }
        let (u, g) = (crate::namespaces::id_map_text(m.uid_mappings()), crate::namespaces::id_map_text(m.gid_mappings()));
        if u.is_empty() || g.is_empty() {
            return Err(Error::config(format!("mounts[{i}]"), "an idmapped mount needs uidMappings and gidMappings"));
        }
        if !nix::unistd::geteuid().is_root() {
            // The kernel idmaps a mount only for a caller with CAP_SYS_ADMIN
            // over the filesystem's own user namespace: for a filesystem of
            // the host, never an unprivileged user.
            return Err(Error::config(format!("mounts[{i}]"), "an idmapped mount of a host filesystem needs privileges an unprivileged (rootless) user does not have: the kernel requires CAP_SYS_ADMIN in the filesystem's user namespace"));
        }
        let userns = crate::sys::userns_with_maps(&u, &g).ctx(|| format!("mounts[{i}]: create the id-mapping user namespace"))?;
        let src = m.source().as_ref().ok_or_else(|| Error::config(format!("mounts[{i}].source"), "missing"))?;
        let src = if src.is_absolute() { src.clone() } else { bundle.join(src) };
        let csrc = CString::new(src.as_os_str().as_encoded_bytes()).map_err(|_| Error::config(format!("mounts[{i}].source"), "contains a NUL byte"))?;
        let opts = m.options().clone().unwrap_or_default();
        let rec = opts.iter().any(|o| o == "rbind");
        let tree = crate::sys::open_tree_clone(&csrc, rec).ctx(|| format!("mounts[{i}]: open_tree {}", src.display()))?;
        let all = opts.iter().any(|o| o == "ridmap");
        let flags = (libc::AT_EMPTY_PATH | if all { libc::AT_RECURSIVE } else { 0 }) as u32;
        crate::sys::mount_setattr(tree.as_raw_fd(), &CString::default(), flags, libc::MOUNT_ATTR_IDMAP, 0, 0, userns.as_raw_fd() as u64)
            .ctx(|| format!("mounts[{i}]: idmap {}", src.display()))?;
        out.push(Some(tree));
    }
    Ok(out)
}

/// Parsed mount options.
#[derive(Debug)]
pub struct MountOptions {
    pub flags: MsFlags,
    pub clear: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub rec_set: u64,
    pub rec_clr: u64,
    pub data: Vec<String>,
    pub idmap: bool,
}

pub fn propagation_flag(s: &str) -> Option<MsFlags> {
    Some(match s {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

/// Parses one mount's options the way mount(8) and runc read them; anything
/// unknown is filesystem data (`mode=755`, `size=64m`).
pub fn parse_options(opts: &[String]) -> MountOptions {
    let mut o = MountOptions { flags: MsFlags::empty(), clear: MsFlags::empty(), propagation: vec![], rec_set: 0, rec_clr: 0, data: vec![], idmap: false };
    for opt in opts {
        let (set, clr) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "nosymfollow" => (MS_NOSYMFOLLOW, MsFlags::empty()),
            "symfollow" => (MsFlags::empty(), MS_NOSYMFOLLOW),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "idmap" | "ridmap" => {
                o.idmap = true;
                continue;
            }
            "tmpcopyup" => continue,
            s => {
                if let Some(p) = propagation_flag(s) {
                    o.propagation.push(p);
                } else if let Some((set, clr)) = recursive_attr(s) {
                    o.rec_set |= set;
                    o.rec_clr |= clr;
                } else {
                    o.data.push(s.to_string());
                }
                continue;
            }
        };
        o.flags = (o.flags - clr) | set;
        o.clear |= clr;
    }
    o
}

/// The `r*` options: mount_setattr(AT_RECURSIVE) attributes (set, clear).
fn recursive_attr(s: &str) -> Option<(u64, u64)> {
    const RDONLY: u64 = 0x1;
    const NOSUID: u64 = 0x2;
    const NODEV: u64 = 0x4;
    const NOEXEC: u64 = 0x8;
    const ATIME: u64 = 0x70;
    const RELATIME: u64 = 0x0;
    const NOATIME: u64 = 0x10;
    const STRICTATIME: u64 = 0x20;
    const NODIRATIME: u64 = 0x80;
    const NOSYMFOLLOW: u64 = 0x200000;
    Some(match s {
        "rro" => (RDONLY, 0),
        "rrw" => (0, RDONLY),
        "rnosuid" => (NOSUID, 0),
        "rsuid" => (0, NOSUID),
        "rnodev" => (NODEV, 0),
        "rdev" => (0, NODEV),
        "rnoexec" => (NOEXEC, 0),
        "rexec" => (0, NOEXEC),
        "rnodiratime" => (NODIRATIME, 0),
        "rdiratime" => (0, NODIRATIME),
        "rrelatime" => (RELATIME, ATIME),
        "rnorelatime" => (0, ATIME),
        "rnoatime" => (NOATIME, ATIME),
        "ratime" => (0, NOATIME),
        "rstrictatime" => (STRICTATIME, ATIME),
        "rnostrictatime" => (0, STRICTATIME),
        "rnosymfollow" => (NOSYMFOLLOW, 0),
        "rsymfollow" => (0, NOSYMFOLLOW),
        _ => return None,
    })
}

fn do_mount(src: Option<&str>, target: &OwnedFd, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> nix::Result<()> {
    let t = fd_path(target.as_raw_fd());
    mount(src, t.as_c_str(), fstype, flags, data)
}

/// `flags` with the locked flags of the mount at `fd` added ([`locked_flags`]);
/// when `flags` has all three already, there is nothing to look up.
fn with_locked_flags(fd: &OwnedFd, flags: MsFlags) -> MsFlags {
    let all = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if flags.contains(all) {
        flags
    } else {
        flags | locked_flags(fd)
    }
}

/// Mount flags that must survive a bind remount (the kernel refuses to
/// clear "locked" flags inside a user namespace).
fn locked_flags(fd: &OwnedFd) -> MsFlags {
    let mut f = MsFlags::empty();
    if let Ok(st) = nix::sys::statvfs::fstatvfs(fd) {
        use nix::sys::statvfs::FsFlags;
        let fl = st.flags();
        if fl.contains(FsFlags::ST_NOSUID) {
            f |= MsFlags::MS_NOSUID;
        }
        if fl.contains(FsFlags::ST_NODEV) {
            f |= MsFlags::MS_NODEV;
        }
        if fl.contains(FsFlags::ST_NOEXEC) {
            f |= MsFlags::MS_NOEXEC;
        }
    }
    f
}

/// Before pivot_root: propagation, the rootfs bind mount, every mount in
/// config.json, devices and /dev symlinks.
/// `cgroup_ready` is called before a cgroup mount: it returns once the init
/// is in its cgroup (the runtime sets that up meanwhile).
pub fn prepare(plan: &RootfsPlan, cgroup_ready: &mut dyn FnMut() -> Result<()>) -> Result<()> {
    // Keep our mounts from propagating to the host. A shared or unbindable
    // root (rootfsPropagation) is set after pivot_root, which refuses both.
    // (In the host's mount namespace, the host's propagation is left alone.)
    let root_prop = match plan.propagation {
        Some(p) if p.intersects(MsFlags::MS_SLAVE | MsFlags::MS_PRIVATE) => p,
        _ => MsFlags::MS_SLAVE,
    };
    if plan.new_mountns {
        mount(None::<&str>, "/", None::<&str>, root_prop | MsFlags::MS_REC, None::<&str>).ctx(|| "set propagation of /".into())?;
    }
    // pivot_root needs the new root to be a mount point whose parent is not
    // shared; a read-only root is a remount of this bind in any case.
    mount(Some(&plan.rootfs), &plan.rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .ctx(|| format!("bind mount the rootfs {}", plan.rootfs.display()))?;
    if plan.new_mountns {
        make_parent_private(&plan.rootfs)?;
    }

    let root = Root::open(&plan.rootfs).ctx(|| format!("open rootfs {}", plan.rootfs.display()))?;
    let mut dev_ro = false;
    for (i, m) in plan.mounts.iter().enumerate() {
        if matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")) {
            cgroup_ready()?;
        }
        let tree = plan.idmap_trees.get(i).and_then(|u| u.as_ref()).or_else(|| plan.bind_sources.get(i).and_then(|u| u.as_ref()));
        mount_one(&root, plan, m, tree).map_err(|e| match e {
            Error::Io { what, source } => Error::Io { what: format!("mounts[{i}] ({}): {what}", m.destination().display()), source },
            Error::Config { field, reason } if field == "mounts" => Error::config(format!("mounts[{i}]"), reason),
            e => e,
        })?;
        if m.destination() == Path::new("/dev") && parse_options(m.options().as_deref().unwrap_or(&[])).flags.contains(MsFlags::MS_RDONLY) {
            dev_ro = true;
        }
    }
    let has_devpts = plan.mounts.iter().any(|m| m.destination() == Path::new("/dev/pts"));
    verify_proc(plan)?;
    // A /dev bound from elsewhere (the host's, say) is the config's own: no
    // node or symlink is made in it, as with runc — they would land in the
    // bound directory itself.
    let dev_bound = plan.mounts.iter().any(|m| clean(m.destination()) == Path::new("/dev") && is_bind(m));
    if !dev_bound {
        crate::devices::create_all(&root, &plan.devices, plan.bind_devices)?;
        crate::devices::symlinks(&root, has_devpts)?;
    }
    if dev_ro {
        let fd = root.resolve(Path::new("/dev")).ctx(|| "open /dev".into())?;
        do_mount(None, &fd, None, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | locked_flags(&fd), None).ctx(|| "remount /dev read-only".into())?;
    }
    Ok(())
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind") || parse_options(m.options().as_deref().unwrap_or(&[])).flags.contains(MsFlags::MS_BIND)
}

/// `p` without `.` components, repeated or trailing slashes.
fn clean(p: &Path) -> PathBuf {
    p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect()
}

/// One line of /proc/self/mountinfo.
struct MountEntry {
    id: u64,
    /// Unescaped.
    mount_point: PathBuf,
    fstype: String,
}

/// Our mount namespace's mounts, from /proc/self/mountinfo.
fn mount_table() -> std::io::Result<Vec<MountEntry>> {
    let info = crate::sys::read_proc("/proc/self/mountinfo")?;
    Ok(info
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mut f = pre.split(' ');
            let id = f.next()?.parse().ok()?;
            let mount_point = PathBuf::from(unescape_mountinfo(f.nth(3)?));
            Some(MountEntry { id, mount_point, fstype: post.split(' ').next()?.to_string() })
        })
        .collect())
}

/// The mounts at or below `dir` in our mount namespace: (mount id, mount
/// point).
pub fn mounts_under(dir: &Path) -> Vec<(u64, PathBuf)> {
    mount_table().unwrap_or_default().into_iter().filter(|m| m.mount_point.starts_with(dir)).map(|m| (m.id, m.mount_point)).collect()
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches `mounts`, deepest first (so that a parent is not detached
/// under its children), calling `refused` for each the kernel refuses,
/// before going on to the next.
fn detach_deepest_first(mut mounts: Vec<PathBuf>, mut refused: impl FnMut(&Path, nix::errno::Errno) -> Result<()>) -> Result<()> {
    mounts.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for mp in mounts {
        if let Err(e) = umount2(&mp, MntFlags::MNT_DETACH) {
            refused(&mp, e)?;
        }
    }
    Ok(())
}

/// For a container that shared the host's mount namespace: detaches every
/// mount below its rootfs that was not there before `create` (`before`).
pub fn unmount_new(rootfs: &Path, before: &[u64]) {
    for _ in 0..4 {
        let new: Vec<PathBuf> = mounts_under(rootfs).into_iter().filter(|(id, _)| !before.contains(id)).map(|(_, mp)| mp).collect();
        if new.is_empty() {
            return;
        }
        let _ = detach_deepest_first(new, |mp, e| {
            tracing::warn!("unmount {}: {e}", mp.display());
            Ok(())
        });
    }
}

/// Makes the mount holding `path`'s parent private, as pivot_root requires.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let parent = rootfs.parent().unwrap_or(Path::new("/"));
    let target = match mount_root_of(parent) {
        Some(t) => t,
        None => {
            let table = mount_table().ctx(|| "read /proc/self/mountinfo".into())?;
            table.iter().map(|m| m.mount_point.as_path()).filter(|mp| parent.starts_with(mp)).max_by_key(|mp| mp.as_os_str().len()).unwrap_or(Path::new("/")).to_path_buf()
        }
    };
    mount(None::<&str>, &target, None::<&str>, MsFlags::MS_PRIVATE, None::<&str>).ctx(|| format!("make {} private", target.display()))
}

/// The root of the mount that holds `dir`: `dir` resolved, then its
/// ancestors until statx reports a mount root — a few system calls, where
/// the mount table of a busy host can be thousands of lines. None when the
/// kernel does not report mount roots (before 5.8).
fn mount_root_of(dir: &Path) -> Option<PathBuf> {
    let mut p = std::fs::canonicalize(dir).ok()?;
    loop {
        let c = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str())).ok()?;
        let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
        // SAFETY: a valid C string and a statx buffer to fill.
        if unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), libc::AT_SYMLINK_NOFOLLOW, 0, stx.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: statx succeeded and filled the buffer.
        let stx = unsafe { stx.assume_init() };
        if stx.stx_attributes_mask & libc::STATX_ATTR_MOUNT_ROOT as u64 == 0 {
            return None;
        }
        if stx.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0 || !p.pop() {
            return Some(p);
        }
    }
}

/// One entry of `mounts`; `tree` is a detached copy of a bind mount's source
/// made by the runtime (idmapped, or for a user namespace), attached as is.
fn mount_one(root: &Root, plan: &RootfsPlan, m: &Mount, tree: Option<&OwnedFd>) -> Result<()> {
    let dest = m.destination();
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let bind = opts.flags.contains(MsFlags::MS_BIND) || typ == "bind";
    if matches!(typ, "proc" | "sysfs") {
        ordinary_directory(root, dest, typ)?;
    }
    if opts.idmap && !bind {
        return Err(Error::config("mounts.options", format!("idmap on {}: only bind mounts can be idmapped", dest.display())));
    }
    let data = opts.data.join(",");
    let data = if data.is_empty() { None } else { Some(data.as_str()) };

    if bind {
        let src = m.source().as_ref().ok_or_else(|| Error::config("mounts.source", format!("bind mount on {} has no source", dest.display())))?;
        let src = if src.is_absolute() { src.clone() } else { plan.bundle.join(src) };
        let is_dir = match tree {
            Some(fd) => nix::sys::stat::fstat(fd.as_raw_fd()).map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR).ctx(|| format!("bind source {}", src.display()))?,
            None => std::fs::metadata(&src).ctx(|| format!("bind source {}", src.display()))?.is_dir(),
        };
        let (target, lexical) = root.mkdir_all_lexical(dest, !is_dir, 0o755).ctx(|| "create mount point".into())?;
        check_proc_destination(plan, dest, (&target, lexical), typ, bind, is_procfs_path(&src))?;
        let rec = opts.flags & MsFlags::MS_REC;
        if let Some(tree) = tree {
            crate::sys::move_mount_to(std::os::fd::AsFd::as_fd(tree), std::os::fd::AsFd::as_fd(&target)).ctx(|| format!("attach {}", src.display()))?;
        } else {
            do_mount(Some(src.to_str().unwrap_or_default()), &target, None, MsFlags::MS_BIND | rec, None).ctx(|| format!("bind {}", src.display()))?;
        }
        let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        let userns_rec_ro = plan.in_userns && rec.contains(MsFlags::MS_REC) && opts.flags.contains(MsFlags::MS_RDONLY);
        if extra.is_empty() && !userns_rec_ro {
            return mount_attributes(root, dest, &opts, None);
        }
        // The remounts act on the new mount: resolve the destination again.
        let target = root.resolve(dest).ctx(|| "reopen mount point".into())?;
        if !extra.is_empty() {
            let fl = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra;
            if let Err(e) = do_mount(None, &target, None, fl, data) {
                // Inside a user namespace the source's locked flags must be kept.
                do_mount(None, &target, None, fl | locked_flags(&target), data).map_err(|_| Error::errno("remount the bind mount", e))?;
            }
        }
        if userns_rec_ro {
            // The read-only remount covers the top mount only: in a user
            // namespace the submounts of a read-only rbind (the host's cgroup
            // hierarchies under a bound /sys, CVE-2023-25809) are made
            // read-only too, so that unmounting what covers them exposes
            // nothing writable.
            crate::sys::mount_setattr(target.as_raw_fd(), &CString::default(), (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as u32, libc::MOUNT_ATTR_RDONLY, 0, 0, 0)
                .ctx(|| format!("make {} read-only below", dest.display()))?;
        }
        mount_attributes(root, dest, &opts, Some(target))
    } else {
        let (target, lexical) = root.mkdir_all_lexical(dest, false, 0o755).ctx(|| "create mount point".into())?;
        check_proc_destination(plan, dest, (&target, lexical), typ, false, false)?;
        let mut flags = opts.flags - MsFlags::MS_REMOUNT;
        if dest == Path::new("/dev") {
            // A read-only /dev is made so by `prepare` once the mounts, nodes
            // and symlinks below it exist.
            flags -= MsFlags::MS_RDONLY;
        }
        match typ {
            "cgroup" | "cgroup2" => mount_cgroup(root, plan, dest, &target, flags)?,
            _ => {
                let src = m.source().as_ref().and_then(|s| s.to_str()).unwrap_or(typ);
                let labelled = crate::lsm::label_mount_data(typ, data, plan.mount_label.as_deref());
                if let Err(e) = do_mount(Some(src), &target, Some(typ), flags, labelled.as_deref()) {
                    mount_fallback(typ, &target, flags, e)?;
                }
            }
        }
        mount_attributes(root, dest, &opts, None)
    }
}

/// A mount's propagation and recursive attributes, set on the new mount
/// (`target`, or `dest` resolved again: the descriptor from before the
/// mount names what is under it). Nothing to set: nothing opened.
fn mount_attributes(root: &Root, dest: &Path, opts: &MountOptions, target: Option<OwnedFd>) -> Result<()> {
    if opts.propagation.is_empty() && opts.rec_set == 0 && opts.rec_clr == 0 {
        return Ok(());
    }
    let target = match target {
        Some(t) => t,
        None => root.resolve(dest).ctx(|| "reopen mount point".into())?,
    };
    for p in &opts.propagation {
        do_mount(None, &target, None, *p, None).ctx(|| "set mount propagation".into())?;
    }
    if opts.rec_set != 0 || opts.rec_clr != 0 {
        let empty = CString::default();
        crate::sys::mount_setattr(target.as_raw_fd(), &empty, (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as u32, opts.rec_set, opts.rec_clr, 0, 0)
            .ctx(|| "set recursive mount attributes".into())?;
    }
    Ok(())
}

/// proc and sysfs go on a directory of the image, never through a symlink
/// (runc refuses the same way).
fn ordinary_directory(root: &Root, dest: &Path, typ: &str) -> Result<()> {
    match root.open_at(dest, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW) {
        Ok(fd) => {
            let st = nix::sys::stat::fstat(fd.as_raw_fd()).ctx(|| format!("stat {}", dest.display()))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                return Err(Error::config("mounts", format!("filesystem {typ:?} must be mounted on ordinary directory ({} is not one)", dest.display())));
            }
            Ok(())
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        // A symlink on the way to the destination (ELOOP does not occur:
        // only the last component is not followed).
        Err(e) => Err(Error::io(format!("open {}", dest.display()), e)),
    }
}

/// The files below /proc a bind mount may cover (what lxcfs provides).
const PROC_FILES_ALLOWED: &[&str] =
    &["cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg", "slabinfo", "net/dev", "sys/kernel/ns_last_pid"];

/// Where the destination really is, once resolved inside the rootfs
/// (symlinks of the image followed): a mount there must not cover the
/// container's procfs nor land inside it, except for a fresh proc mount (or
/// a bind of a procfs) on /proc itself and the files lxcfs emulates.
/// `lexical`: no symlink was followed to `target`, so `dest` (cleaned in
/// the root) is where it is, and the kernel need not be asked (readlink).
fn check_proc_destination(plan: &RootfsPlan, dest: &Path, (target, lexical): (&OwnedFd, bool), typ: &str, bind: bool, src_is_procfs: bool) -> Result<()> {
    let real = if lexical {
        plan.rootfs.join(crate::safe_path::in_root(dest))
    } else {
        std::fs::read_link(format!("/proc/self/fd/{}", target.as_raw_fd())).ctx(|| format!("resolve {}", dest.display()))?
    };
    let Ok(rel) = real.strip_prefix(&plan.rootfs) else { return Ok(()) };
    let Ok(inside) = rel.strip_prefix("proc") else { return Ok(()) };
    if inside.as_os_str().is_empty() {
        if (!bind && typ == "proc") || (bind && src_is_procfs) {
            return Ok(());
        }
        return Err(Error::config("mounts", format!("{:?} cannot be mounted because it is not of type proc", dest.display().to_string())));
    }
    if PROC_FILES_ALLOWED.iter().any(|f| inside == Path::new(f)) {
        return Ok(());
    }
    Err(Error::config("mounts", format!("{:?} cannot be mounted because it is inside /proc", dest.display().to_string())))
}

fn is_procfs_path(p: &Path) -> bool {
    nix::sys::statfs::statfs(p).is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

/// After the mounts: what is at /proc, if config.json mounts one, really is
/// a procfs (whatever the image or a volume did).
pub fn verify_proc(plan: &RootfsPlan) -> Result<()> {
    if !plan.mounts.iter().any(|m| m.destination() == Path::new("/proc")) {
        return Ok(());
    }
    if !is_procfs_path(&plan.rootfs.join("proc")) {
        return Err(Error::config("mounts", "/proc is not a procfs mount"));
    }
    Ok(())
}

/// sysfs and mqueue cannot be mounted in some user-namespace set-ups;
/// bind the host's instead, as runc does.
fn mount_fallback(typ: &str, target: &OwnedFd, flags: MsFlags, e: nix::errno::Errno) -> Result<()> {
    let host = match (typ, e) {
        ("sysfs", nix::errno::Errno::EPERM) => "/sys",
        ("mqueue", nix::errno::Errno::EPERM) => "/dev/mqueue",
        _ => return Err(Error::errno(format!("mount {typ}"), e)),
    };
    do_mount(Some(host), target, None, MsFlags::MS_BIND | MsFlags::MS_REC, None).ctx(|| format!("bind {host}"))?;
    let extra = flags & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    if !extra.is_empty() {
        let _ = do_mount(None, target, None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra | locked_flags(target), None);
    }
    Ok(())
}

/// A `cgroup` mount: the container's own cgroup directories, read-only if asked.
fn mount_cgroup(root: &Root, plan: &RootfsPlan, dest: &Path, target: &OwnedFd, flags: MsFlags) -> Result<()> {
    let base = flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let ro = flags.contains(MsFlags::MS_RDONLY);
    if crate::cgroups::is_v2() {
        if plan.new_cgroupns {
            match do_mount(Some("cgroup2"), target, Some("cgroup2"), flags, None) {
                // The host's cgroup2 is already there (under a bound /sys): the
                // kernel refuses the same filesystem twice on one mount point,
                // and that copy is locked in a user namespace. A tmpfs between
                // the two covers it; the namespace's own goes on top.
                Err(nix::errno::Errno::EBUSY) => {
                    do_mount(Some("tmpfs"), target, Some("tmpfs"), base, Some("mode=755")).ctx(|| format!("cover the host's cgroup2 at {}", dest.display()))?;
                    let t = root.resolve(dest).ctx(|| "reopen cgroup mount".into())?;
                    do_mount(Some("cgroup2"), &t, Some("cgroup2"), flags, None).ctx(|| "mount cgroup2".into())?;
                }
                r => r.ctx(|| "mount cgroup2".into())?,
            }
        } else if let Some((_, dir)) = plan.cgroup_dirs.iter().find(|(n, _)| n.is_empty()) {
            do_mount(dir.to_str(), target, None, MsFlags::MS_BIND | MsFlags::MS_REC, None).ctx(|| format!("bind {}", dir.display()))?;
            if ro {
                // The remount acts on the new mount: resolve the destination again.
                let t = root.resolve(dest).ctx(|| "reopen cgroup mount".into())?;
                do_mount(None, &t, None, with_locked_flags(&t, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base), None).ctx(|| "remount cgroup read-only".into())?;
            }
        }
        return Ok(());
    }
    // cgroup v1: a tmpfs holding one bind mount per hierarchy. The tmpfs
    // is new and ours, in our own mount namespace, with no process of the
    // container yet: its entries are made relative to it and named through
    // its descriptor (`/proc/self/fd/N/NAME`), with no symlink to follow
    // (only those made here, never opened); each name is looked up at the
    // mount, so the remount finds the bind on top.
    do_mount(Some("tmpfs"), target, Some("tmpfs"), base, Some("mode=755")).ctx(|| "mount tmpfs for cgroups".into())?;
    let tmpfs = root.resolve(dest).ctx(|| "open cgroup mount".into())?;
    let in_tmpfs = |name: &str| CString::new(format!("/proc/self/fd/{}/{name}", tmpfs.as_raw_fd())).map_err(|_| Error::config("mounts", format!("hierarchy name {name:?} holds a nul")));
    for (name, dir) in plan.cgroup_dirs.iter().filter(|(n, _)| !n.is_empty()) {
        let sub = dest.join(name);
        nix::sys::stat::mkdirat(Some(tmpfs.as_raw_fd()), name.as_str(), Mode::from_bits_truncate(0o755)).ctx(|| format!("create {}", sub.display()))?;
        let at = in_tmpfs(name)?;
        match mount(dir.to_str(), at.as_c_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>) {
            // A hierarchy without the container's directory has no entry
            // (the target was just made: ENOENT is the source).
            Err(nix::errno::Errno::ENOENT) => {
                nix::unistd::unlinkat(Some(tmpfs.as_raw_fd()), name.as_str(), nix::unistd::UnlinkatFlags::RemoveDir).ctx(|| format!("remove {}", sub.display()))?;
                continue;
            }
            r => r.ctx(|| format!("bind {}", dir.display()))?,
        }
        let fl = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | base | if ro { MsFlags::MS_RDONLY } else { MsFlags::empty() };
        let fl = if fl.contains(MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC) {
            fl
        } else {
            // The bind mount's locked flags, through a descriptor of it.
            let fd = nix::fcntl::openat(Some(tmpfs.as_raw_fd()), name.as_str(), nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC, Mode::empty()).ctx(|| format!("open {}", sub.display()))?;
            // SAFETY: `openat` just returned this descriptor.
            with_locked_flags(&unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }, fl)
        };
        mount(None::<&str>, at.as_c_str(), None::<&str>, fl, None::<&str>).ctx(|| format!("remount {}", sub.display()))?;
        // cpu,cpuacct is also reachable as cpu and cpuacct.
        if name.contains(',') {
            for part in name.split(',') {
                let _ = nix::unistd::symlinkat(name.as_str(), Some(tmpfs.as_raw_fd()), part);
            }
        }
    }
    if ro {
        do_mount(None, &tmpfs, None, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | base, None).ctx(|| "remount cgroup tmpfs read-only".into())?;
    }
    Ok(())
}

/// Switches the root to the rootfs: pivot_root, or with `--no-pivot` a move
/// mount and chroot (for ramdisk roots where pivot_root is impossible).
pub fn pivot(rootfs: &Path, no_pivot: bool, new_mountns: bool) -> Result<()> {
    if !new_mountns {
        // The host's mount namespace: neither pivot_root nor a move of the
        // host's mounts, only a chroot (as runc does).
        nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
        nix::unistd::chroot(".").ctx(|| "chroot".into())?;
        nix::unistd::chdir("/").ctx(|| "chdir /".into())?;
        return Ok(());
    }
    if no_pivot {
        mask_host_proc_sys(rootfs)?;
        nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
        mount(Some(rootfs), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).ctx(|| "move the rootfs onto /".into())?;
        nix::unistd::chroot(".").ctx(|| "chroot".into())?;
        nix::unistd::chdir("/").ctx(|| "chdir /".into())?;
        return Ok(());
    }
    let old = nix::fcntl::open("/", nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC, Mode::empty()).ctx(|| "open /".into())?;
    nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
    nix::unistd::pivot_root(".", ".").ctx(|| "pivot_root".into())?;
    // The old root is now stacked under the new one at "."; detach it.
    nix::unistd::fchdir(old).ctx(|| "fchdir to the old root".into())?;
    let _ = nix::unistd::close(old);
    mount(None::<&str>, ".", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>).ctx(|| "make the old root a slave".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach the old root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())?;
    Ok(())
}

/// Before a `--no-pivot` chroot: the host's procfs and sysfs mounts stay in
/// the container's mount namespace, where they would let it mount a fresh,
/// unmasked procfs (the kernel allows that when a full one is visible).
/// Detach them, or cover them with an empty tmpfs where that is refused.
fn mask_host_proc_sys(rootfs: &Path) -> Result<()> {
    let table = mount_table().ctx(|| "read /proc/self/mountinfo".into())?;
    let host = table.into_iter().filter(|m| matches!(m.fstype.as_str(), "proc" | "sysfs") && !m.mount_point.starts_with(rootfs)).map(|m| m.mount_point).collect();
    detach_deepest_first(host, |mp, _| mount(Some("tmpfs"), mp, Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0k")).ctx(|| format!("--no-pivot: mask the host's {}", mp.display())))
}

/// After pivot_root: masked paths, read-only paths, a read-only root.
/// The root is the container's now, so plain paths cannot reach the host.
pub fn finish(plan: &RootfsPlan) -> Result<()> {
    let root = Root::open(Path::new("/")).ctx(|| "open /".into())?;
    reopen_dev_null(&root);
    let mut null = None;
    for p in &plan.masked {
        // Resolved inside the root: a symlink of the image cannot send the
        // mask elsewhere.
        let target = match root.resolve(Path::new(p)) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(Error::io(format!("linux.maskedPaths: {p}"), e)),
        };
        let st = nix::sys::stat::fstat(target.as_raw_fd()).ctx(|| format!("linux.maskedPaths: stat {p}"))?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            do_mount(Some("tmpfs"), &target, Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0k")).ctx(|| format!("linux.maskedPaths: mask {p}"))?;
        } else {
            if null.is_none() {
                null = Some(dev_null(&root)?);
            }
            let tree = crate::sys::open_tree_of(std::os::fd::AsFd::as_fd(null.as_ref().expect("set above"))).ctx(|| "linux.maskedPaths: clone /dev/null".into())?;
            crate::sys::move_mount_to(std::os::fd::AsFd::as_fd(&tree), std::os::fd::AsFd::as_fd(&target)).ctx(|| format!("linux.maskedPaths: mask {p}"))?;
        }
    }
    for p in &plan.readonly_paths {
        match std::fs::metadata(p) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("linux.readonlyPaths: {p}"), e)),
        }
        mount(Some(p.as_str()), p.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>).ctx(|| format!("linux.readonlyPaths: bind {p}"))?;
        let locked = locked_flags_path(p);
        mount(None::<&str>, p.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC | locked, None::<&str>)
            .ctx(|| format!("linux.readonlyPaths: remount {p} read-only"))?;
    }
    if let Some(p) = plan.propagation {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>).ctx(|| "linux.rootfsPropagation".into())?;
    }
    if plan.readonly {
        let locked = locked_flags_path("/");
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked, None::<&str>)
            .ctx(|| "root.readonly: remount / read-only".into())?;
    }
    Ok(())
}

fn locked_flags_path(p: &str) -> MsFlags {
    match nix::fcntl::open(p, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC, Mode::empty()) {
        // SAFETY: `open` just returned this descriptor.
        Ok(fd) => locked_flags(&unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }),
        Err(_) => MsFlags::empty(),
    }
}

/// Stdio on the null device (the caller's /dev/null, on a mount of the
/// host's) is reopened on the container's /dev/null, as runc does: the
/// container then holds no file of the host's mounts, which CRIU could not
/// name when it dumps the container.
fn reopen_dev_null(root: &Root) {
    let is_null = |fd: i32| nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == libc::makedev(1, 3));
    if !(0..3).any(is_null) || dev_null(root).is_err() {
        return;
    }
    let Ok(null) = root.open_at(Path::new("/dev/null"), nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOFOLLOW) else { return };
    for fd in (0..3).filter(|fd| is_null(*fd)) {
        let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
    }
}

/// The container's /dev/null, checked to be the null device (char 1:3)
/// and not a symlink or a file the image put there (CVE-2025-31133 class).
fn dev_null(root: &Root) -> Result<OwnedFd> {
    let fd = root.open_at(Path::new("/dev/null"), nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW).ctx(|| "linux.maskedPaths: open /dev/null".into())?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).ctx(|| "linux.maskedPaths: stat /dev/null".into())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        return Err(Error::config("linux.maskedPaths", "/dev/null is not the null device (char 1:3)"));
    }
    Ok(fd)
}

/// Bind-mounts the console's pty slave (by its descriptor) on /dev/console
/// (after pivot_root, before masked and read-only paths). /dev/console must
/// be a file or device of the container's, never a symlink: the target is
/// resolved without following one (CVE-2025-52565).
pub fn mount_console(slave: &OwnedFd) -> Result<()> {
    let root = Root::open(Path::new("/")).ctx(|| "open /".into())?;
    let dev = root.mkdir_all(Path::new("/dev"), false, 0o755).ctx(|| "create /dev".into())?;
    let target = match nix::fcntl::openat(Some(dev.as_raw_fd()), "console", nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => {
            let fd = nix::fcntl::openat(Some(dev.as_raw_fd()), "console", nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_EXCL | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC, Mode::from_bits_truncate(0o600))
                .ctx(|| "create /dev/console".into())?;
            let _ = nix::unistd::close(fd);
            nix::fcntl::openat(Some(dev.as_raw_fd()), "console", nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC, Mode::empty()).ctx(|| "open /dev/console".into())?
        }
        Err(e) => return Err(Error::errno("open /dev/console", e)),
    };
    // SAFETY: `openat` just returned this descriptor.
    let target = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(target) };
    let st = nix::sys::stat::fstat(target.as_raw_fd()).ctx(|| "stat /dev/console".into())?;
    if !matches!(st.st_mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFCHR) {
        return Err(Error::Tty("/dev/console exists and is not a file or a device (a symlink?): refusing to mount the console on it".into()));
    }
    let tree = crate::sys::open_tree_of(std::os::fd::AsFd::as_fd(slave)).ctx(|| "clone the pty slave".into())?;
    crate::sys::move_mount_to(std::os::fd::AsFd::as_fd(&tree), std::os::fd::AsFd::as_fd(&target)).ctx(|| "bind the console on /dev/console".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[&str]) -> MountOptions {
        parse_options(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_data_and_recursive_attributes() {
        let o = opts(&["rbind", "ro", "nosuid", "mode=755", "size=64k", "rprivate", "rnoexec"]);
        assert!(o.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID));
        assert_eq!(o.data, vec!["mode=755", "size=64k"]);
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(o.rec_set, 0x8);
        assert!(!o.idmap);
    }

    #[test]
    fn later_options_win() {
        let o = opts(&["ro", "rw", "noexec", "exec"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(!o.flags.contains(MsFlags::MS_NOEXEC));
        assert!(opts(&["idmap"]).idmap);
    }

    #[test]
    fn propagation_names() {
        assert_eq!(propagation_flag("rslave"), Some(MsFlags::MS_SLAVE | MsFlags::MS_REC));
        assert_eq!(propagation_flag("shared"), Some(MsFlags::MS_SHARED));
        assert_eq!(propagation_flag("bogus"), None);
    }
}
