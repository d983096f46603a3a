//! Path resolution confined to the container's root filesystem.
//!
//! Every path taken from config.json (a mount destination, a device, a
//! masked path) is resolved with `openat2(RESOLVE_IN_ROOT)` against a file
//! descriptor of the rootfs, so a symlink in the image — absolute or full of
//! `..` — is followed as if the rootfs were `/` and can never lead to the
//! host. Operations then act on the resolved descriptor (`/proc/self/fd/N`
//! for mount(2), `*at` calls otherwise), never on a path that could be
//! swapped in between.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};

/// An open root filesystem.
pub struct Root {
    fd: OwnedFd,
}

fn io_err(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// The `/proc/self/fd/N` path that stands for `fd` in mount(2) and friends.
pub fn fd_path(fd: RawFd) -> CString {
    CString::new(format!("/proc/self/fd/{fd}")).expect("no nul")
}

/// `p` as a path relative to the root, cleaned as [`Root`] resolves it
/// (`..` clamped at the root): where it is when no symlink is on the way.
pub fn in_root(p: &Path) -> PathBuf {
    components(p).iter().collect()
}

/// The normal components of `p`, dropping `/` and `.` (`..` is clamped at the
/// root, as the kernel does when resolving inside it).
fn components(p: &Path) -> Vec<&OsStr> {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

impl Root {
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(io_err)?;
        // SAFETY: `open` just returned this descriptor.
        Ok(Root { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// Opens `p` (a path inside the root) with `flags`, resolving every
    /// symlink inside the root.
    pub fn open_at(&self, p: &Path, flags: OFlag) -> io::Result<OwnedFd> {
        self.openat2(p, flags, ResolveFlag::RESOLVE_NO_MAGICLINKS).map_err(io_err)
    }

    /// `p` opened below the root with `openat2(RESOLVE_IN_ROOT | resolve)`.
    fn openat2(&self, p: &Path, flags: OFlag, resolve: ResolveFlag) -> nix::Result<OwnedFd> {
        let rel = in_root(p);
        let rel = if rel.as_os_str().is_empty() { PathBuf::from(".") } else { rel };
        let how = OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(ResolveFlag::RESOLVE_IN_ROOT | resolve);
        let fd = openat2(self.fd.as_raw_fd(), rel.as_path(), how)?;
        // SAFETY: `openat2` just returned this descriptor.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// An O_PATH descriptor for `p` inside the root.
    pub fn resolve(&self, p: &Path) -> io::Result<OwnedFd> {
        self.open_at(p, OFlag::O_PATH)
    }

    /// As [`Root::resolve`], and whether no symlink was followed on the way
    /// (then `p`, cleaned, is where the descriptor really is, with no
    /// readlink to ask). Tried without symlinks first; a symlink on the way
    /// (ELOOP) costs a second lookup. ENOENT needs none: the missing
    /// component comes before any symlink, so a lookup that follows them
    /// stops there too.
    fn resolve_lexical(&self, p: &Path) -> io::Result<(OwnedFd, bool)> {
        match self.openat2(p, OFlag::O_PATH, ResolveFlag::RESOLVE_NO_SYMLINKS) {
            Ok(fd) => Ok((fd, true)),
            Err(e @ nix::errno::Errno::ENOENT) => Err(io_err(e)),
            Err(_) => self.resolve(p).map(|fd| (fd, false)),
        }
    }

    /// Creates `p` inside the root if it does not exist — every missing
    /// parent as a directory, the last as a directory or an empty file — and
    /// returns an O_PATH descriptor for it. A symlink on the way is followed
    /// inside the root, and what it points to is created there.
    ///
    /// The whole path is tried first (it usually exists), then its prefixes
    /// from the longest down, so the common cases cost one or two lookups.
    pub fn mkdir_all(&self, p: &Path, last_is_file: bool, mode: u32) -> io::Result<OwnedFd> {
        self.mkdir_all_lexical(p, last_is_file, mode).map(|(fd, _)| fd)
    }

    /// As [`Root::mkdir_all`], and whether no symlink was followed on the
    /// way: then `p`, cleaned, is where the descriptor is.
    pub fn mkdir_all_lexical(&self, p: &Path, last_is_file: bool, mode: u32) -> io::Result<(OwnedFd, bool)> {
        let mut want: PathBuf = components(p).iter().collect();
        let mut lexical = true;
        for _ in 0..40 {
            let comps: Vec<&OsStr> = components(&want);
            let prefix = |k: usize| -> PathBuf { comps[..k].iter().collect() };
            let lookup = |k: usize| match self.resolve_lexical(&prefix(k)) {
                Ok(found) => Ok(Some(found)),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
                Err(e) => Err(e),
            };
            if let Some((fd, l)) = lookup(comps.len())? {
                return Ok((fd, lexical && l));
            }
            // The deepest prefix that exists (the root always does).
            let mut k = comps.len() - 1;
            let (mut dir, l) = loop {
                match lookup(k)? {
                    Some(found) => break found,
                    None => k -= 1,
                }
            };
            lexical &= l;
            match self.create_from(&comps, k, &mut dir, &mut lexical, (last_is_file, mode))? {
                Created::Done => return Ok((dir, lexical)),
                Created::Symlink(next) => {
                    lexical = false;
                    want = components(&next).iter().collect();
                }
            }
        }
        Err(io::Error::from_raw_os_error(libc::ELOOP))
    }

    /// Creates `comps[k..]` below `dir` (the descriptor of `comps[..k]`),
    /// leaving `dir` on the last one; or stops at a dangling symlink and
    /// returns the path to create instead, its target resolved in the root.
    fn create_from(&self, comps: &[&OsStr], k: usize, dir: &mut OwnedFd, lexical: &mut bool, (last_is_file, mode): (bool, u32)) -> io::Result<Created> {
        for i in k..comps.len() {
            let c = comps[i];
            let last = i + 1 == comps.len();
            let name = CString::new(c.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            let r = if last && last_is_file {
                // SAFETY: valid dirfd and C string; O_EXCL never follows a symlink.
                let f = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW, mode & 0o666) };
                if f >= 0 {
                    // SAFETY: `openat` just returned this descriptor.
                    drop(unsafe { OwnedFd::from_raw_fd(f) });
                    0
                } else {
                    -1
                }
            } else {
                // SAFETY: valid dirfd and C string; mkdirat never follows a symlink.
                unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) }
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(e);
                }
                // Something is there already (neither call follows a
                // symlink): a dangling symlink, whose target is created
                // instead, resolved inside the root; or what raced in.
                if let Some(next) = dangling_target(dir, comps, i)? {
                    return Ok(Created::Symlink(next));
                }
            }
            // Looked up again in the root: what was made (or raced in) is
            // resolved like any other path.
            let (fd, l) = self.resolve_lexical(&comps[..=i].iter().collect::<PathBuf>())?;
            *dir = fd;
            *lexical &= l;
        }
        Ok(Created::Done)
    }
}

enum Created {
    Done,
    Symlink(PathBuf),
}

/// When `comps[i]` (in `dir`, the descriptor of `comps[..i]`) is a symlink:
/// the path to create instead, its target taken inside the root, with the
/// components after it.
fn dangling_target(dir: &OwnedFd, comps: &[&OsStr], i: usize) -> io::Result<Option<PathBuf>> {
    let c = comps[i];
    match fstatat(Some(dir.as_raw_fd()), c, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK => {}
        _ => return Ok(None),
    }
    let target = PathBuf::from(nix::fcntl::readlinkat(Some(dir.as_raw_fd()), c).map_err(io_err)?);
    let parent: PathBuf = comps[..i].iter().collect();
    let mut next = if target.is_absolute() { PathBuf::from("/") } else { Path::new("/").join(&parent) };
    next.push(target);
    for rest in &comps[i + 1..] {
        next.push(rest);
    }
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn lexical_only_when_no_symlink_was_followed() {
        let base = std::env::temp_dir().join(format!("skiff-safe-path-lex-{}", std::process::id()));
        let root = base.join("root");
        fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/a", root.join("link")).unwrap();
        let r = Root::open(&root).unwrap();
        // existing, created below an existing directory, through a symlink (existing and created)
        assert!(r.mkdir_all_lexical(Path::new("/a/b"), false, 0o755).unwrap().1);
        assert!(r.mkdir_all_lexical(Path::new("/a/../a/c/d"), false, 0o755).unwrap().1);
        assert!(!r.mkdir_all_lexical(Path::new("/link/b"), false, 0o755).unwrap().1);
        assert!(!r.mkdir_all_lexical(Path::new("/link/e"), false, 0o755).unwrap().1);
        assert!(root.join("a/c/d").is_dir() && root.join("a/e").is_dir());
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn symlinks_are_followed_inside_the_root() {
        let base = std::env::temp_dir().join(format!("skiff-safe-path-{}", std::process::id()));
        let root = base.join("root");
        let outside = base.join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        // An absolute link to the host's "outside" dir, and one climbing out with "..".
        std::os::unix::fs::symlink(&outside, root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../outside", root.join("up")).unwrap();
        let r = Root::open(&root).unwrap();
        r.mkdir_all(Path::new("/abs/x"), false, 0o755).unwrap();
        r.mkdir_all(Path::new("/up/y"), true, 0o644).unwrap();
        assert!(fs::read_dir(&outside).unwrap().next().is_none(), "nothing created outside the root");
        assert!(root.join(outside.strip_prefix("/").unwrap()).join("x").is_dir(), "created inside, where the link points");
        assert!(root.join("outside/y").is_file());
        let _ = fs::remove_dir_all(&base);
    }
}
