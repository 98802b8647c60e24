//! Path resolution confined to a directory with openat2(2), and the *at(2) helpers that work
//! on the descriptors it returns. Client paths and symbolic links inside a container are
//! resolved by the kernel as if the confining directory were `/`, so neither `..` chains nor
//! absolute link targets can reach the host.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode};

/// openat2(2) returns EAGAIN when a concurrent rename could have made a confined lookup
/// unsafe. The lookup is retried this many times before the error is returned.
const EAGAIN_RETRIES: usize = 16;

/// The kernel's `struct open_how` (linux/openat2.h); libc marks its copy non-exhaustive.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// The symbolic-link limit of moby's `FollowSymlinkInScope`, which `follow_in_scope` mirrors.
const MAX_LINKS: usize = 255;

/// Converts a path to a C string, rejecting interior NUL bytes.
pub fn c_path(path: &[u8]) -> io::Result<CString> {
    CString::new(path).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Opens `path` relative to `dir` with openat2(2), O_CLOEXEC added to `flags`. An empty path
/// opens `dir` itself.
pub fn openat2(dir: BorrowedFd, path: &[u8], flags: OFlag, resolve: u64) -> io::Result<OwnedFd> {
    let path = c_path(if path.is_empty() { b"." } else { path })?;
    let how = OpenHow { flags: (flags | OFlag::O_CLOEXEC).bits() as u64, mode: 0, resolve };
    for _ in 0..EAGAIN_RETRIES {
        // SAFETY: `path` is a NUL-terminated string and `how` an initialised struct with the
        // kernel's open_how layout. Both outlive the call, and the size passed is the struct's size.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel returned a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EAGAIN) {
            return Err(err);
        }
    }
    Err(io::Error::from_raw_os_error(libc::EAGAIN))
}

/// Opens `path` inside `root` as if `root` were `/`: `..` stops at the root and absolute
/// symbolic links start from it. The final component is followed unless `flags` has O_NOFOLLOW.
pub fn open_in_root(root: BorrowedFd, path: &[u8], flags: OFlag) -> io::Result<OwnedFd> {
    openat2(root, path, flags, libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS)
}

/// Opens `path` below `dir` without following any symbolic link, for re-opening directories
/// that a walk already found.
pub fn open_beneath(dir: BorrowedFd, path: &[u8], flags: OFlag) -> io::Result<OwnedFd> {
    openat2(dir, path, flags, libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS)
}

/// Opens a trusted host directory, such as the mounted rootfs, as an O_PATH descriptor.
pub fn open_host_path(path: &Path) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())?;
    // SAFETY: `open` returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the single component `name` in `dir` without following it if it is a symbolic link.
pub fn open_child(dir: BorrowedFd, name: &OsStr, flags: OFlag) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    // SAFETY: `openat` returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reopens an O_PATH descriptor for I/O through its /proc/self/fd magic link, which names the
/// exact inode, so no path lookup happens.
pub fn reopen(fd: BorrowedFd, flags: OFlag) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let fd = nix::fcntl::open(path.as_str(), flags | OFlag::O_CLOEXEC | OFlag::O_NOCTTY, Mode::empty())?;
    // SAFETY: `open` returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a regular file inside `root` for reading. The file is pinned with O_PATH and checked
/// before it is opened, so a device node or FIFO planted in the container is never opened.
pub fn open_regular_in_root(root: BorrowedFd, path: &[u8]) -> io::Result<std::fs::File> {
    let pinned = open_in_root(root, path, OFlag::O_PATH)?;
    if stat_fd(pinned.as_fd())?.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(std::fs::File::from(reopen(pinned.as_fd(), OFlag::O_RDONLY)?))
}

/// Sets the permission bits of the inode behind an O_PATH descriptor. fchmod(2) rejects O_PATH
/// descriptors and fchmodat(2) follows symbolic links, so the /proc magic link is used.
pub fn chmod_fd(fd: BorrowedFd, mode: u32) -> io::Result<()> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    nix::sys::stat::fchmodat(
        None,
        path.as_str(),
        Mode::from_bits_truncate(mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )?;
    Ok(())
}

pub fn stat_fd(fd: BorrowedFd) -> io::Result<FileStat> {
    Ok(nix::sys::stat::fstat(fd.as_raw_fd())?)
}

/// lstat(2) of the single component `name` in `dir`.
pub fn stat_child(dir: BorrowedFd, name: &OsStr) -> io::Result<FileStat> {
    Ok(nix::sys::stat::fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)?)
}

pub fn readlink_child(dir: BorrowedFd, name: &OsStr) -> io::Result<OsString> {
    Ok(nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name)?)
}

/// Lists the names in a directory, sorted bytewise like Go's WalkDir. The directory is read
/// through its /proc/self/fd magic link, which names the exact inode.
pub fn list_dir(dir: BorrowedFd) -> io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))? {
        names.push(entry?.file_name());
    }
    names.sort();
    Ok(names)
}

pub fn is_dir(stat: &FileStat) -> bool {
    stat.st_mode & libc::S_IFMT == libc::S_IFDIR
}

pub fn is_symlink(stat: &FileStat) -> bool {
    stat.st_mode & libc::S_IFMT == libc::S_IFLNK
}

/// Cleans `path` as an absolute path the way Go's `filepath.Join("/", path)` does: `.` and
/// empty components go, `..` removes the previous component and stops at the root.
pub fn clean(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut cleaned = Vec::with_capacity(path.len() + 1);
    for part in &parts {
        cleaned.push(b'/');
        cleaned.extend_from_slice(part);
    }
    if cleaned.is_empty() {
        cleaned.push(b'/');
    }
    cleaned
}

/// Returns the last element of `path` like Go's `filepath.Base`: trailing slashes are ignored,
/// `/` stays `/`, and `/etc/.` gives `.`.
pub fn base_name(path: &[u8]) -> Vec<u8> {
    let trimmed = match path.iter().rposition(|b| *b != b'/') {
        Some(last) => &path[..=last],
        None if path.is_empty() => return b".".to_vec(),
        None => return b"/".to_vec(),
    };
    match trimmed.iter().rposition(|b| *b == b'/') {
        Some(slash) => trimmed[slash + 1..].to_vec(),
        None => trimmed.to_vec(),
    }
}

/// Splits a cleaned absolute path into its components.
pub fn components(cleaned: &[u8]) -> Vec<&[u8]> {
    cleaned.split(|b| *b == b'/').filter(|part| !part.is_empty()).collect()
}

/// Resolves every symbolic link of `path` inside `root` and returns the absolute path it ends
/// at, as moby's `FollowSymlinkInScope` does for the `linkTarget` of a path stat. Missing
/// components are kept as they are, so a dangling link still gives its destination.
pub fn follow_in_scope(root: BorrowedFd, path: &[u8]) -> io::Result<Vec<u8>> {
    let mut pending: Vec<Vec<u8>> = components(&clean(path)).into_iter().rev().map(<[u8]>::to_vec).collect();
    let mut resolved: Vec<Vec<u8>> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == b"." {
            continue;
        }
        if part == b".." {
            resolved.pop();
            continue;
        }
        // `resolved` contains no symbolic links, so opening it in the root follows none.
        let target = open_in_root(root, &resolved.join(&b'/'), OFlag::O_PATH | OFlag::O_DIRECTORY)
            .and_then(|parent| readlink_child(parent.as_fd(), OsStr::from_bytes(&part)));
        let Ok(target) = target else {
            resolved.push(part);
            continue;
        };
        links += 1;
        if links > MAX_LINKS {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        let target = target.into_vec();
        if target.starts_with(b"/") {
            resolved.clear();
        }
        pending.extend(components(&target).into_iter().rev().map(<[u8]>::to_vec));
    }
    let mut result = Vec::new();
    for part in &resolved {
        result.push(b'/');
        result.extend_from_slice(part);
    }
    if result.is_empty() {
        result.push(b'/');
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// Creates a root with hostile links and a canary file outside it.
    fn hostile_root() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        let canary = base.path().join("canary");
        std::fs::write(&canary, "host secret").unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        symlink(&canary, root.join("abs-link")).unwrap();
        symlink("../../../../../../canary", root.join("dotdot-link")).unwrap();
        symlink("/", root.join("slash-link")).unwrap();
        symlink("missing/target", root.join("dangling")).unwrap();
        symlink("/etc", root.join("etc-link")).unwrap();
        (base, root, canary)
    }

    fn read_in_root(root: &Path, path: &str) -> io::Result<String> {
        let root_fd = open_host_path(root)?;
        let fd = open_in_root(root_fd.as_fd(), path.as_bytes(), OFlag::O_RDONLY)?;
        let mut text = String::new();
        io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text)?;
        Ok(text)
    }

    #[test]
    fn clean_matches_go_join() {
        let cases: [(&str, &str); 8] = [
            ("", "/"),
            ("/", "/"),
            ("etc/hostname", "/etc/hostname"),
            ("/etc/", "/etc"),
            ("/etc/.", "/etc"),
            ("/../../etc/shadow", "/etc/shadow"),
            ("a/b/../../../c", "/c"),
            ("//a//./b/", "/a/b"),
        ];
        for (input, expected) in cases {
            assert_eq!(clean(input.as_bytes()), expected.as_bytes(), "clean({input:?})");
        }
    }

    #[test]
    fn base_name_matches_go_base() {
        let cases: [(&str, &str); 6] =
            [("/etc/hostname", "hostname"), ("/etc/", "etc"), ("/etc/.", "."), ("/", "/"), ("//", "/"), ("", ".")];
        for (input, expected) in cases {
            assert_eq!(base_name(input.as_bytes()), expected.as_bytes(), "base_name({input:?})");
        }
    }

    #[test]
    fn absolute_link_to_host_file_stays_in_root() {
        let (_base, root, canary) = hostile_root();
        let err = read_in_root(&root, "abs-link").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(std::fs::read_to_string(&canary).unwrap(), "host secret");
    }

    #[test]
    fn dotdot_chains_stop_at_root() {
        let (_base, root, _canary) = hostile_root();
        assert_eq!(read_in_root(&root, "dotdot-link").unwrap_err().raw_os_error(), Some(libc::ENOENT));
        assert_eq!(read_in_root(&root, "../../../canary").unwrap_err().raw_os_error(), Some(libc::ENOENT));
        assert!(read_in_root(&root, "../../../etc/passwd").unwrap().starts_with("root:"));
        assert!(read_in_root(&root, "slash-link/etc/passwd").unwrap().starts_with("root:"));
        assert!(read_in_root(&root, "etc-link/../etc-link/passwd").unwrap().starts_with("root:"));
    }

    #[test]
    fn open_beneath_rejects_links() {
        let (_base, root, _canary) = hostile_root();
        let root_fd = open_host_path(&root).unwrap();
        let err = open_beneath(root_fd.as_fd(), b"etc-link", OFlag::O_PATH).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
        assert!(open_beneath(root_fd.as_fd(), b"../root", OFlag::O_PATH).is_err());
        assert!(open_beneath(root_fd.as_fd(), b"etc", OFlag::O_PATH).is_ok());
    }

    #[test]
    fn follow_in_scope_resolves_inside_root() {
        let (_base, root, canary) = hostile_root();
        let root_fd = open_host_path(&root).unwrap();
        let follow =
            |path: &str| String::from_utf8(follow_in_scope(root_fd.as_fd(), path.as_bytes()).unwrap()).unwrap();
        assert_eq!(follow("/abs-link"), canary.display().to_string());
        assert_eq!(follow("/dotdot-link"), "/canary");
        assert_eq!(follow("/slash-link"), "/");
        assert_eq!(follow("/etc-link/passwd"), "/etc/passwd");
        assert_eq!(follow("/dangling"), "/missing/target");
        assert_eq!(follow("/etc/../etc-link"), "/etc");
    }

    #[test]
    fn follow_in_scope_stops_on_loops() {
        let base = tempfile::tempdir().unwrap();
        symlink("b", base.path().join("a")).unwrap();
        symlink("a", base.path().join("b")).unwrap();
        let root_fd = open_host_path(base.path()).unwrap();
        let err = follow_in_scope(root_fd.as_fd(), b"/a").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
    }
}
