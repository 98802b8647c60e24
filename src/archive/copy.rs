//! The read side of `docker cp`: the stat of a path inside a container (`HEAD archive`) and a
//! tar of it (`GET archive`, legacy `POST copy`). Every lookup goes through `resolve`, so it
//! stays inside the container root or the bind mount the path falls in.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use base64::Engine as _;
use nix::fcntl::OFlag;
use nix::sys::stat::FileStat;
use serde::Serialize;

use super::resolve::{self, components, is_dir, is_symlink};
use super::tar_writer::TarStream;
use crate::error::{Error, Result};

/// Go `os.FileMode` type bits, which Docker puts in the stat's `mode` above the permissions.
const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_DEVICE: u32 = 1 << 26;
const GO_MODE_NAMED_PIPE: u32 = 1 << 25;
const GO_MODE_SOCKET: u32 = 1 << 24;
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_CHAR_DEVICE: u32 = 1 << 21;
const GO_MODE_STICKY: u32 = 1 << 20;

/// Docker's `ContainerPathStat`, sent as base64 JSON in `X-Docker-Container-Path-Stat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// A Go `os.FileMode`: permission bits plus Go's type and special bits.
    pub mode: u32,
    /// RFC 3339 in UTC, with nanoseconds when they are not zero, as Go marshals a time.
    pub mtime: String,
    /// For a symbolic link, where it ends up once every link is resolved inside the container.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// Returns the value of the `X-Docker-Container-Path-Stat` header: padded standard base64.
    pub fn header_value(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    fn new(name: &[u8], stat: &FileStat, link_target: Vec<u8>) -> Self {
        PathStat {
            name: String::from_utf8_lossy(name).into_owned(),
            size: stat.st_size,
            mode: go_file_mode(stat.st_mode),
            mtime: go_time(stat.st_mtime, stat.st_mtime_nsec),
            link_target: String::from_utf8_lossy(&link_target).into_owned(),
        }
    }
}

/// Converts a stat(2) `st_mode` to a Go `os.FileMode`, as Go's `os.Lstat` does.
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut mode = st_mode & 0o777;
    mode |= match st_mode & libc::S_IFMT {
        libc::S_IFDIR => GO_MODE_DIR,
        libc::S_IFLNK => GO_MODE_SYMLINK,
        libc::S_IFBLK => GO_MODE_DEVICE,
        libc::S_IFCHR => GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
        libc::S_IFIFO => GO_MODE_NAMED_PIPE,
        libc::S_IFSOCK => GO_MODE_SOCKET,
        _ => 0,
    };
    if st_mode & libc::S_ISUID != 0 {
        mode |= GO_MODE_SETUID;
    }
    if st_mode & libc::S_ISGID != 0 {
        mode |= GO_MODE_SETGID;
    }
    if st_mode & libc::S_ISVTX != 0 {
        mode |= GO_MODE_STICKY;
    }
    mode
}

/// Formats a Unix time like Go's `time.RFC3339Nano` in UTC: `2025-01-01T00:00:00Z`, or with
/// a fraction that has its trailing zeros removed.
pub fn go_time(seconds: i64, nanoseconds: i64) -> String {
    let time = chrono::DateTime::from_timestamp(seconds, nanoseconds.clamp(0, 999_999_999) as u32)
        .unwrap_or(chrono::DateTime::UNIX_EPOCH);
    let mut text = time.format("%Y-%m-%dT%H:%M:%S").to_string();
    if nanoseconds > 0 {
        let fraction = format!("{:09}", nanoseconds.min(999_999_999));
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// A bind mount as seen from the host: files under `destination` in the container are the
/// files under `source`.
#[derive(Debug, Clone)]
pub struct MountPoint {
    pub destination: String,
    pub source: PathBuf,
    pub read_only: bool,
}

/// A container's files as the copy endpoints read them: the mounted rootfs, and the bind
/// mounts that runc adds only inside the container's mount namespace.
#[derive(Debug, Clone)]
pub struct ContainerFs {
    pub root: PathBuf,
    pub mounts: Vec<MountPoint>,
}

/// The confining directory a cleaned container path falls in, and the path inside it.
pub struct Scope {
    pub root: OwnedFd,
    pub relative: Vec<u8>,
    /// The bind mount, when the path is inside one.
    pub mount: Option<MountPoint>,
}

impl ContainerFs {
    /// Picks the innermost bind mount whose destination contains `cleaned`, or the rootfs.
    /// NOTE: the match is on the path as written, so a path that reaches a mount through a
    /// symbolic link, or a walk of a directory above a mount, reads the rootfs beneath it.
    pub fn scope(&self, cleaned: &[u8]) -> io::Result<Scope> {
        let mut best: Option<(&MountPoint, usize)> = None;
        for mount in &self.mounts {
            let destination = resolve::clean(mount.destination.as_bytes());
            let inside = cleaned == destination.as_slice()
                || (cleaned.starts_with(&destination) && cleaned.get(destination.len()) == Some(&b'/'));
            if destination != b"/" && inside && best.map_or(true, |(_, len)| destination.len() > len) {
                best = Some((mount, destination.len()));
            }
        }
        match best {
            Some((mount, len)) => Ok(Scope {
                root: resolve::open_host_path(&mount.source)?,
                relative: trim_leading_slashes(&cleaned[len..]).to_vec(),
                mount: Some(mount.clone()),
            }),
            None => Ok(Scope {
                root: resolve::open_host_path(&self.root)?,
                relative: trim_leading_slashes(cleaned).to_vec(),
                mount: None,
            }),
        }
    }
}

fn trim_leading_slashes(path: &[u8]) -> &[u8] {
    let start = path.iter().position(|b| *b != b'/').unwrap_or(path.len());
    &path[start..]
}

/// A client path read the way Docker reads it (`filepath.Join("/", path)` plus the trailing
/// `/` or `/.` that `PreserveTrailingDotOrSeparator` keeps).
#[derive(Debug, PartialEq, Eq)]
pub struct RequestPath {
    pub cleaned: Vec<u8>,
    /// The name of the top entry of the archive: the base name, `.` for `dir/.`, `/` for root.
    pub rebase: Vec<u8>,
    /// A trailing `/` or `/.` makes a final symbolic link count as the directory it points to.
    pub follow_final: bool,
}

impl RequestPath {
    pub fn parse(path: &str) -> Self {
        let original = path.as_bytes();
        let cleaned = resolve::clean(original);
        let names_current_dir = resolve::base_name(original) == b".";
        let rebase = if names_current_dir { b".".to_vec() } else { resolve::base_name(&cleaned) };
        let follow_final = original.ends_with(b"/") || names_current_dir || cleaned == b"/";
        RequestPath { cleaned, rebase, follow_final }
    }
}

/// The object a request path names: the entry `name` in the directory `dir`, or `dir`
/// itself when `name` is None (a scope root, or a path whose final link was followed).
struct Target {
    dir: OwnedFd,
    name: Option<OsString>,
    stat: FileStat,
}

fn locate(scope: &Scope, follow_final: bool) -> io::Result<Target> {
    let parts = components(&scope.relative);
    if parts.is_empty() || follow_final {
        let dir = if parts.is_empty() {
            scope.root.try_clone()?
        } else {
            resolve::open_in_root(scope.root.as_fd(), &scope.relative, OFlag::O_PATH)?
        };
        let stat = resolve::stat_fd(dir.as_fd())?;
        if follow_final && !is_dir(&stat) {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        return Ok(Target { dir, name: None, stat });
    }
    let (last, parent) = parts.split_last().expect("parts is not empty");
    let dir = resolve::open_in_root(scope.root.as_fd(), &parent.join(&b'/'), OFlag::O_PATH | OFlag::O_DIRECTORY)?;
    let name = OsStr::from_bytes(last).to_os_string();
    let stat = resolve::stat_child(dir.as_fd(), &name)?;
    Ok(Target { dir, name: Some(name), stat })
}

/// Maps a failed lookup of the client's `path` to an API error. Not-found errors keep the
/// NotFound kind so that the engine can give Docker's message with the container reference.
pub fn lookup_error(err: io::Error, path: &str) -> Error {
    match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => Error::not_found(format!("no such file or directory: {path}")),
        Some(libc::ELOOP) => Error::invalid(format!("too many levels of symbolic links in {path}")),
        Some(libc::ENAMETOOLONG) => Error::invalid(format!("file name too long: {path}")),
        _ if err.kind() == io::ErrorKind::InvalidInput => Error::invalid(format!("invalid path {path:?}: {err}")),
        _ => Error::internal(format!("looking up {path} in the container: {err}")),
    }
}

fn stat_of(scope: &Scope, request: &RequestPath, target: &Target) -> io::Result<PathStat> {
    let mut link_target = Vec::new();
    if is_symlink(&target.stat) {
        let inside = resolve::follow_in_scope(scope.root.as_fd(), &scope.relative)?;
        link_target = match &scope.mount {
            Some(mount) if inside == b"/" => resolve::clean(mount.destination.as_bytes()),
            Some(mount) => [resolve::clean(mount.destination.as_bytes()), inside].concat(),
            None => inside,
        };
    }
    Ok(PathStat::new(&request.rebase, &target.stat, link_target))
}

/// `HEAD /containers/{id}/archive`: the stat of `path`. Locating opens O_PATH descriptors only,
/// so no file content is read.
pub fn stat_path(fs: &ContainerFs, path: &str) -> Result<PathStat> {
    Ok(open_source(fs, path)?.stat)
}

/// A located path, ready to be written as a tar.
pub struct Source {
    target: Target,
    stat: PathStat,
    rebase: Vec<u8>,
}

/// Looks up `path` for `GET /containers/{id}/archive`. The stat is known before any byte of
/// the tar is written, so lookup errors can still become an error status.
pub fn open_source(fs: &ContainerFs, path: &str) -> Result<Source> {
    let request = RequestPath::parse(path);
    let scope = fs.scope(&request.cleaned).map_err(|err| lookup_error(err, path))?;
    let target = locate(&scope, request.follow_final).map_err(|err| lookup_error(err, path))?;
    let stat = stat_of(&scope, &request, &target).map_err(|err| lookup_error(err, path))?;
    Ok(Source { target, stat, rebase: request.rebase })
}

impl Source {
    pub fn stat(&self) -> &PathStat {
        &self.stat
    }

    /// Writes the tar: one entry for a file or link, or the directory and everything below
    /// it, named from the request's base name as Docker names them (`etc/hosts`, `./hosts`
    /// for `/etc/.`, `/bin/sh` for `/`). Entries that vanish or cannot be read meanwhile are
    /// skipped, and a failed write ends the stream with an error.
    pub fn write_tar(self, out: impl Write) -> Result<()> {
        let mut stream = TarStream::new(out);
        self.write_entries(&mut stream).map_err(|err| Error::internal(format!("writing the tar stream: {err}")))?;
        let mut out =
            stream.builder.into_inner().map_err(|err| Error::internal(format!("finishing the tar stream: {err}")))?;
        out.flush().map_err(|err| Error::internal(format!("flushing the tar stream: {err}")))
    }

    fn write_entries<W: Write>(&self, stream: &mut TarStream<W>) -> io::Result<()> {
        // Docker names the entries of a copy of `/` `/`, `/bin`, ..., so the prefix is empty.
        let top_name: &[u8] = if self.rebase == b"/" { b"" } else { &self.rebase };
        if let Some(dir) = stream.append(self.target.dir.as_fd(), self.target.name.as_deref(), top_name)? {
            stream.append_tree(dir, top_name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
