//! The write side of `docker cp`: `PUT /containers/{id}/archive` extracts a tar into a
//! directory of the container. Each entry's parent is opened with RESOLVE_IN_ROOT from the
//! extraction directory, and the entry itself is created relative to that descriptor without
//! following a final symbolic link: an existing link is replaced, never written through. So no
//! entry name, link in the archive or link already in the container leads outside the
//! extraction directory.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use super::copy::{lookup_error, ContainerFs};
use super::resolve::{self, is_dir};
use crate::error::{Error, Result};

/// Maximum depth of the tree removed when a directory is replaced with a file. The removal
/// recurses and keeps one descriptor open per level.
const MAX_REMOVE_DEPTH: usize = 1024;

/// Largest /etc/passwd or /etc/group read to resolve the container user for `copyUIDGID`.
const MAX_ACCOUNT_FILE: u64 = 4 << 20;

/// The request of `PUT /containers/{id}/archive`, with the container facts it depends on.
#[derive(Debug, Clone)]
pub struct ExtractRequest {
    /// The extraction directory as the client gave it.
    pub path: String,
    pub no_overwrite_dir_non_dir: bool,
    /// Chown every entry to the container's `User` instead of the ids in the archive.
    pub copy_uid_gid: bool,
    pub readonly_rootfs: bool,
    /// The container's `Config.User`.
    pub user: String,
}

/// Checks the extraction directory, then extracts `input` (a tar, optionally gzip-compressed)
/// into it. The checks come in Docker's order: missing directory (NotFound), not a directory,
/// read-only volume or rootfs.
pub fn extract_to_dir(fs: &ContainerFs, request: &ExtractRequest, input: impl Read) -> Result<()> {
    let path = &request.path;
    let cleaned = resolve::clean(path.as_bytes());
    let scope = fs.scope(&cleaned).map_err(|err| lookup_error(err, path))?;
    // Like Docker, a final symbolic link is followed, so a link to a directory can be the target.
    let destination = if scope.relative.is_empty() {
        scope.root.try_clone()
    } else {
        resolve::open_in_root(scope.root.as_fd(), &scope.relative, OFlag::O_PATH)
    }
    .map_err(|err| lookup_error(err, path))?;
    let stat = resolve::stat_fd(destination.as_fd()).map_err(|err| lookup_error(err, path))?;
    if !is_dir(&stat) {
        return Err(Error::invalid("extraction point is not a directory"));
    }
    match &scope.mount {
        Some(mount) if mount.read_only => return Err(Error::invalid("mounted volume is marked read-only")),
        None if request.readonly_rootfs => return Err(Error::invalid("container rootfs is marked read-only")),
        _ => {}
    }
    let owner =
        if request.copy_uid_gid && !request.user.is_empty() { Some(container_user(fs, &request.user)?) } else { None };
    let options = ExtractOptions { no_overwrite_dir_non_dir: request.no_overwrite_dir_non_dir, owner };
    extract(destination.as_fd(), input, &options)
}

/// Resolves the container's `User` against its own /etc/passwd and /etc/group, as Docker
/// does for `copyUIDGID`.
fn container_user(fs: &ContainerFs, user: &str) -> Result<(u32, u32)> {
    let root =
        resolve::open_host_path(&fs.root).map_err(|err| Error::internal(format!("opening the rootfs: {err}")))?;
    let read = |path: &[u8]| -> String {
        let mut text = String::new();
        if let Ok(file) = resolve::open_regular_in_root(root.as_fd(), path) {
            let _ = file.take(MAX_ACCOUNT_FILE).read_to_string(&mut text);
        }
        text
    };
    let resolved = crate::runtime::user::resolve(user, &read(b"etc/passwd"), &read(b"etc/group"))?;
    Ok((resolved.uid, resolved.gid))
}

/// Options of `extract`: the overwrite rule and the owner of new entries.
pub struct ExtractOptions {
    /// Reject replacing a directory with a non-directory and the other way round.
    pub no_overwrite_dir_non_dir: bool,
    /// Owner for every entry in place of the uid and gid stored in the archive.
    pub owner: Option<(u32, u32)>,
}

/// Extracts a tar read from `input` into the directory `destination` (any descriptor of it,
/// O_PATH is enough). Directory times are set last, so that creating their entries does not
/// change them again.
pub fn extract(destination: BorrowedFd, input: impl Read, options: &ExtractOptions) -> Result<()> {
    // NOTE: only gzip is detected. Docker also decompresses bzip2, xz and zstd archives.
    let mut reader = io::BufReader::with_capacity(64 * 1024, input);
    let head = reader.fill_buf().map_err(|err| Error::invalid(format!("reading the archive: {err}")))?;
    let input: Box<dyn Read> =
        if head.starts_with(&[0x1f, 0x8b]) { Box::new(flate2::read::GzDecoder::new(reader)) } else { Box::new(reader) };
    let mut archive = tar::Archive::new(input);
    let mut directories: Vec<(Vec<Vec<u8>>, u64)> = Vec::new();
    let entries = archive.entries().map_err(|err| Error::invalid(format!("invalid tar archive: {err}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|err| Error::invalid(format!("invalid tar archive: {err}")))?;
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            continue;
        }
        let raw_name = entry.path_bytes().into_owned();
        let display = String::from_utf8_lossy(&raw_name).into_owned();
        let parts = entry_components(&raw_name).ok_or_else(|| {
            Error::invalid(format!("invalid tar entry {display:?}: it points outside the extraction directory"))
        })?;
        if parts.is_empty() {
            // The extraction directory itself (`.` or `./`): it exists, so like Docker keep it.
            if kind != tar::EntryType::Directory && options.no_overwrite_dir_non_dir {
                return Err(Error::invalid(format!("cannot overwrite directory \".\" with non-directory {display:?}")));
            }
            continue;
        }
        extract_entry(destination, &parts, &mut entry, options, &display)?;
        if kind == tar::EntryType::Directory {
            directories.push((parts, entry.header().mtime().unwrap_or(0)));
        }
    }
    for (parts, mtime) in directories {
        let (name, parent) = parts.split_last().expect("directory entries have a name");
        let result = resolve::open_in_root(destination, &parent.join(&b'/'), OFlag::O_PATH | OFlag::O_DIRECTORY)
            .and_then(|parent| set_times_nofollow(parent.as_fd(), OsStr::from_bytes(name), mtime));
        match result {
            Err(err) if err.raw_os_error() != Some(libc::ENOENT) => {
                let name = String::from_utf8_lossy(&parts.join(&b'/')).into_owned();
                return Err(Error::internal(format!("setting the times of {name}: {err}")));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Splits an entry name into components relative to the extraction directory. A leading `/`
/// is dropped (Docker joins the name onto the directory), `.` and empty components go, and
/// `..` removes the previous component. Returns None when `..` would climb out.
pub fn entry_components(name: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for part in name.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            other => parts.push(other.to_vec()),
        }
    }
    Some(parts)
}

fn extract_entry<R: Read>(
    destination: BorrowedFd,
    parts: &[Vec<u8>],
    entry: &mut tar::Entry<R>,
    options: &ExtractOptions,
    display: &str,
) -> Result<()> {
    let failed = |err: io::Error| Error::internal(format!("extracting {display}: {err}"));
    let (name, parent_parts) = parts.split_last().expect("entry has a name");
    let name = OsStr::from_bytes(name);
    let parent = open_parent(destination, parent_parts).map_err(|err| match err.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP) => {
            Error::invalid(format!("extracting {display}: its parent is not a directory and cannot be created: {err}"))
        }
        _ => failed(err),
    })?;
    let parent = parent.as_fd();
    let header = entry.header().clone();
    let kind = header.entry_type();
    let is_dir_entry = kind == tar::EntryType::Directory;

    let existing = match resolve::stat_child(parent, name) {
        Ok(stat) => Some(stat),
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => None,
        Err(err) => return Err(failed(err)),
    };
    if let Some(existing) = &existing {
        if options.no_overwrite_dir_non_dir && is_dir(existing) && !is_dir_entry {
            return Err(Error::invalid(format!("cannot overwrite directory {display:?} with non-directory")));
        }
        if options.no_overwrite_dir_non_dir && !is_dir(existing) && is_dir_entry {
            return Err(Error::invalid(format!("cannot overwrite non-directory {display:?} with directory")));
        }
        if !(is_dir(existing) && is_dir_entry) {
            remove_all(parent, name, 0).map_err(failed)?;
        }
    }

    let (uid, gid) = match options.owner {
        Some(owner) => owner,
        None => (header.uid().unwrap_or(0) as u32, header.gid().unwrap_or(0) as u32),
    };
    let mode = header.mode().unwrap_or(0o644) & 0o7777;
    let mtime = header.mtime().unwrap_or(0);
    match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            let fd =
                resolve::open_child(parent, name, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL).map_err(failed)?;
            let mut file = File::from(fd);
            io::copy(entry, &mut file)
                .map_err(|err| Error::invalid(format!("reading {display} from the archive: {err}")))?;
            set_owner_and_mode(file.as_fd(), uid, gid, mode).map_err(failed)?;
            let time = TimeSpec::new(mtime as i64, 0);
            nix::sys::stat::futimens(file.as_raw_fd(), &time, &time).map_err(|err| failed(err.into()))?;
        }
        tar::EntryType::Directory => {
            if !existing.as_ref().is_some_and(is_dir) {
                nix::sys::stat::mkdirat(Some(parent.as_raw_fd()), name, Mode::from_bits_truncate(0o700))
                    .map_err(|err| failed(err.into()))?;
            }
            let dir = resolve::open_child(parent, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(failed)?;
            set_owner_and_mode(dir.as_fd(), uid, gid, mode).map_err(failed)?;
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| Error::invalid(format!("symbolic link {display:?} has no target")))?
                .into_owned();
            nix::unistd::symlinkat(OsStr::from_bytes(&target), Some(parent.as_raw_fd()), name)
                .map_err(|err| failed(err.into()))?;
            chown_nofollow(parent, name, uid, gid).map_err(failed)?;
            set_times_nofollow(parent, name, mtime).map_err(failed)?;
        }
        tar::EntryType::Link => {
            // A hard link shares its target's inode, which already has its owner, mode and times.
            let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
            link_entry(destination, parent, name, &target, display)?;
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let file_type = match kind {
                tar::EntryType::Char => SFlag::S_IFCHR,
                tar::EntryType::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            let device = libc::makedev(major, minor);
            nix::sys::stat::mknodat(Some(parent.as_raw_fd()), name, file_type, Mode::from_bits_truncate(0o600), device)
                .map_err(|err| failed(err.into()))?;
            chown_nofollow(parent, name, uid, gid).map_err(failed)?;
            let node = resolve::open_child(parent, name, OFlag::O_PATH).map_err(failed)?;
            if resolve::stat_fd(node.as_fd()).map_err(failed)?.st_mode & libc::S_IFMT != file_type.bits() {
                return Err(failed(io::Error::new(
                    io::ErrorKind::Other,
                    "the node changed type while being extracted",
                )));
            }
            resolve::chmod_fd(node.as_fd(), mode).map_err(failed)?;
            set_times_nofollow(parent, name, mtime).map_err(failed)?;
        }
        other => return Err(Error::invalid(format!("unsupported tar entry type {other:?} for {display:?}"))),
    }
    Ok(())
}

/// Creates a hard link to an entry already extracted. The target name is relative to the
/// extraction directory, like Docker's, and is resolved inside it.
fn link_entry(destination: BorrowedFd, parent: BorrowedFd, name: &OsStr, target: &[u8], display: &str) -> Result<()> {
    let target_display = String::from_utf8_lossy(target);
    let outside = || {
        Error::invalid(format!(
            "invalid hard link {display:?} -> {target_display:?}: it points outside the extraction directory"
        ))
    };
    let parts = entry_components(target).ok_or_else(outside)?;
    let (target_name, target_parent) = parts.split_last().ok_or_else(|| {
        Error::invalid(format!("invalid hard link {display:?} -> {target_display:?}: the target is not a file"))
    })?;
    let linked = resolve::open_in_root(destination, &target_parent.join(&b'/'), OFlag::O_PATH | OFlag::O_DIRECTORY)
        .and_then(|target_dir| {
            nix::unistd::linkat(
                Some(target_dir.as_raw_fd()),
                OsStr::from_bytes(target_name),
                Some(parent.as_raw_fd()),
                name,
                nix::fcntl::AtFlags::empty(),
            )
            .map_err(io::Error::from)
        });
    match linked {
        Ok(()) => Ok(()),
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
            Err(Error::invalid(format!("invalid hard link {display:?}: its target {target_display:?} does not exist")))
        }
        Err(err) if err.raw_os_error() == Some(libc::EPERM) => Err(Error::invalid(format!(
            "invalid hard link {display:?}: its target {target_display:?} is a directory or cannot be linked"
        ))),
        Err(err) => Err(Error::internal(format!("extracting hard link {display} -> {target_display}: {err}"))),
    }
}

/// Opens the directory `parts` inside `destination`, creating missing directories (mode 0755)
/// one level at a time, each under a parent that was itself resolved inside `destination`.
fn open_parent(destination: BorrowedFd, parts: &[Vec<u8>]) -> io::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    match resolve::open_in_root(destination, &parts.join(&b'/'), flags) {
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {}
        other => return other,
    }
    let mut current = destination.try_clone_to_owned()?;
    for depth in 1..=parts.len() {
        let prefix = parts[..depth].join(&b'/');
        match resolve::open_in_root(destination, &prefix, flags) {
            Ok(dir) => current = dir,
            Err(err) if err.raw_os_error() == Some(libc::ENOENT) => {
                let name = OsStr::from_bytes(&parts[depth - 1]);
                match nix::sys::stat::mkdirat(Some(current.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) => {
                        let created = resolve::open_child(current.as_fd(), name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
                        nix::sys::stat::fchmod(created.as_raw_fd(), Mode::from_bits_truncate(0o755))?;
                    }
                    // Another entry or process created it meanwhile, or it is a dangling link,
                    // which the open below reports.
                    Err(nix::errno::Errno::EEXIST) => {}
                    Err(err) => return Err(err.into()),
                }
                current = resolve::open_in_root(destination, &prefix, flags)?;
            }
            Err(err) => return Err(err),
        }
    }
    Ok(current)
}

/// Removes `name` from `parent`, recursively when it is a directory, without following links.
fn remove_all(parent: BorrowedFd, name: &OsStr, depth: usize) -> io::Result<()> {
    match nix::unistd::unlinkat(Some(parent.as_raw_fd()), name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(nix::errno::Errno::EISDIR) => {}
        Err(err) => return Err(err.into()),
    }
    if depth >= MAX_REMOVE_DEPTH {
        return Err(io::Error::new(
            io::ErrorKind::Other,
            format!("directory tree deeper than {MAX_REMOVE_DEPTH} levels"),
        ));
    }
    let dir = resolve::open_child(parent, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
    for child in resolve::list_dir(dir.as_fd())? {
        remove_all(dir.as_fd(), &child, depth + 1)?;
    }
    nix::unistd::unlinkat(Some(parent.as_raw_fd()), name, nix::unistd::UnlinkatFlags::RemoveDir)?;
    Ok(())
}

/// Sets owner, then mode, on an open file or directory; chown clears set-id bits, so the
/// mode comes second.
fn set_owner_and_mode(fd: BorrowedFd, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
    nix::unistd::fchown(fd.as_raw_fd(), Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode))?;
    Ok(())
}

fn chown_nofollow(parent: BorrowedFd, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    nix::unistd::fchownat(
        Some(parent.as_raw_fd()),
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Sets access and modification time to `mtime` (Unix seconds) on `name` itself, never on
/// what a symbolic link points to.
fn set_times_nofollow(parent: BorrowedFd, name: &OsStr, mtime: u64) -> io::Result<()> {
    let time = TimeSpec::new(mtime as i64, 0);
    nix::sys::stat::utimensat(
        Some(parent.as_raw_fd()),
        name,
        &time,
        &time,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
