//! Tar entries written from descriptors: the objects of a `docker cp` source are opened
//! without following links, and a directory is walked with only a bounded number of
//! descriptors open.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::OFlag;
use nix::sys::stat::FileStat;

use super::resolve;

/// An object opened for archiving, with the stat of the opened inode.
struct Opened {
    stat: FileStat,
    /// A readable descriptor for regular files and directories.
    fd: Option<OwnedFd>,
    link_target: Option<OsString>,
}

/// Opens the entry `name` of `dir`, or `dir` itself, without following a final link. A file
/// is pinned with O_PATH and checked to be regular before it is opened for reading, so a
/// device node swapped in by the container is never opened.
fn open_entry(dir: BorrowedFd, name: Option<&OsStr>) -> io::Result<Opened> {
    let stat = match name {
        Some(name) => resolve::stat_child(dir, name)?,
        None => resolve::stat_fd(dir)?,
    };
    let pinned = |flags: OFlag| match name {
        Some(name) => resolve::open_child(dir, name, flags),
        None => dir.try_clone_to_owned(),
    };
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFREG => {
            let path_fd = pinned(OFlag::O_PATH)?;
            let stat = resolve::stat_fd(path_fd.as_fd())?;
            if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
                return Err(io::Error::new(io::ErrorKind::Other, "file changed type while being archived"));
            }
            let fd = resolve::reopen(path_fd.as_fd(), OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
            Ok(Opened { stat, fd: Some(fd), link_target: None })
        }
        libc::S_IFDIR => {
            let fd = match name {
                Some(name) => resolve::open_child(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?,
                None => resolve::reopen(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?,
            };
            let stat = resolve::stat_fd(fd.as_fd())?;
            Ok(Opened { stat, fd: Some(fd), link_target: None })
        }
        libc::S_IFLNK => {
            let name = name.ok_or_else(|| io::Error::new(io::ErrorKind::Other, "unnamed symbolic link"))?;
            let link_target = resolve::readlink_child(dir, name)?;
            Ok(Opened { stat, fd: None, link_target: Some(link_target) })
        }
        _ => Ok(Opened { stat, fd: None, link_target: None }),
    }
}

/// A tar builder and the inodes it already wrote, so that later hard links to them are stored
/// as links.
pub struct TarStream<W: Write> {
    pub builder: tar::Builder<W>,
    hardlinks: HashMap<(u64, u64), Vec<u8>>,
    /// Name the entries directly under the top without a prefix (`bin/`, not `/bin/`).
    bare_top_names: bool,
}

impl<W: Write> TarStream<W> {
    pub fn new(out: W) -> Self {
        TarStream { builder: tar::Builder::new(out), hardlinks: HashMap::new(), bare_top_names: false }
    }

    /// Appends everything below `top` with names relative to it (`bin/`, `bin/sh`), as
    /// `docker export` writes them.
    pub fn append_contents(&mut self, top: OwnedFd) -> io::Result<()> {
        self.bare_top_names = true;
        let result = self.append_tree(top, b"");
        self.bare_top_names = false;
        result
    }

    /// Appends one object under `archive_name` and returns its directory descriptor when it
    /// is a directory. Objects that cannot be opened are skipped, and only write errors fail.
    pub fn append(
        &mut self,
        dir: BorrowedFd,
        name: Option<&OsStr>,
        archive_name: &[u8],
    ) -> io::Result<Option<OwnedFd>> {
        let opened = match open_entry(dir, name) {
            Ok(opened) => opened,
            Err(err) => {
                log_left_out(archive_name, &err, "opening the entry failed, so the copy leaves it out");
                return Ok(None);
            }
        };
        let stat = &opened.stat;
        match stat.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                let mut header = new_header(stat, tar::EntryType::Directory, 0);
                let name = [archive_name, b"/"].concat();
                append_named(&mut self.builder, &mut header, &name, None, io::empty())?;
                return Ok(opened.fd);
            }
            libc::S_IFREG => {
                let key = (stat.st_dev, stat.st_ino);
                if stat.st_nlink > 1 {
                    if let Some(first) = self.hardlinks.get(&key) {
                        let mut header = new_header(stat, tar::EntryType::Link, 0);
                        let first = first.clone();
                        append_named(&mut self.builder, &mut header, archive_name, Some(&first), io::empty())?;
                        return Ok(None);
                    }
                    self.hardlinks.insert(key, archive_name.to_vec());
                }
                let size = stat.st_size.max(0) as u64;
                let mut header = new_header(stat, tar::EntryType::Regular, size);
                let file = File::from(opened.fd.expect("regular files are opened"));
                // A file that shrinks while being read is padded with zeros, and one that
                // grows is cut, so the entry always matches the size in its header.
                let data = file.take(size).chain(io::repeat(0)).take(size);
                append_named(&mut self.builder, &mut header, archive_name, None, data)?;
            }
            libc::S_IFLNK => {
                let mut header = new_header(stat, tar::EntryType::Symlink, 0);
                let target = opened.link_target.unwrap_or_default();
                append_named(&mut self.builder, &mut header, archive_name, Some(target.as_bytes()), io::empty())?;
            }
            kind @ (libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO) => {
                let entry_type = match kind {
                    libc::S_IFCHR => tar::EntryType::Char,
                    libc::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut header = new_header(stat, entry_type, 0);
                if kind != libc::S_IFIFO {
                    header.set_device_major(libc::major(stat.st_rdev))?;
                    header.set_device_minor(libc::minor(stat.st_rdev))?;
                }
                append_named(&mut self.builder, &mut header, archive_name, None, io::empty())?;
            }
            // Sockets cannot be stored in a tar, and Go's archive/tar rejects them too.
            _ => tracing::debug!(entry = %String::from_utf8_lossy(archive_name), "skipping a socket in a copy"),
        }
        Ok(None)
    }

    /// Appends everything below the directory `top`, depth first in name order. Only the
    /// directory being listed stays open: a parent is reopened by its path below `top`, with
    /// no symbolic link allowed, when the walk comes back to it.
    pub fn append_tree(&mut self, top: OwnedFd, top_name: &[u8]) -> io::Result<()> {
        struct Frame {
            relative: Vec<u8>,
            archive_name: Vec<u8>,
            names: Vec<OsString>,
            next: usize,
            dir: Option<OwnedFd>,
        }
        let names = match resolve::list_dir(top.as_fd()) {
            Ok(names) => names,
            Err(err) => {
                log_left_out(top_name, &err, "listing the directory failed, so the copy leaves its entries out");
                return Ok(());
            }
        };
        let mut stack = vec![Frame {
            relative: Vec::new(),
            archive_name: top_name.to_vec(),
            names,
            next: 0,
            dir: top.try_clone().ok(),
        }];
        while let Some(frame) = stack.last_mut() {
            let Some(name) = frame.names.get(frame.next).cloned() else {
                stack.pop();
                continue;
            };
            frame.next += 1;
            if frame.dir.is_none() {
                match resolve::open_beneath(top.as_fd(), &frame.relative, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
                    Ok(dir) => frame.dir = Some(dir),
                    Err(err) => {
                        let message = "reopening the directory failed, so the copy leaves its remaining entries out";
                        log_left_out(&frame.archive_name, &err, message);
                        frame.next = frame.names.len();
                        continue;
                    }
                }
            }
            let archive_name = if frame.archive_name.is_empty() && self.bare_top_names {
                name.as_bytes().to_vec()
            } else {
                [&frame.archive_name[..], b"/", name.as_bytes()].concat()
            };
            let relative = if frame.relative.is_empty() {
                name.as_bytes().to_vec()
            } else {
                [&frame.relative[..], b"/", name.as_bytes()].concat()
            };
            let dir = frame.dir.as_ref().expect("the frame's directory is open").as_fd();
            let Some(child) = self.append(dir, Some(&name), &archive_name)? else { continue };
            let names = match resolve::list_dir(child.as_fd()) {
                Ok(names) => names,
                Err(err) => {
                    log_left_out(
                        &archive_name,
                        &err,
                        "listing the directory failed, so the copy leaves its entries out",
                    );
                    continue;
                }
            };
            frame.dir = None;
            stack.push(Frame { relative, archive_name, names, next: 0, dir: Some(child) });
        }
        Ok(())
    }
}

/// Logs an entry that a copy leaves out. Entries of a running container can vanish at any
/// time, so this is routine and logged at debug level.
fn log_left_out(entry: &[u8], err: &io::Error, message: &str) {
    tracing::debug!(entry = %String::from_utf8_lossy(entry), error = %err, "{message}");
}

fn new_header(stat: &FileStat, entry_type: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(stat.st_mode & 0o7777);
    header.set_uid(u64::from(stat.st_uid));
    header.set_gid(u64::from(stat.st_gid));
    header.set_mtime(stat.st_mtime.max(0) as u64);
    header.set_size(size);
    header
}

/// Appends an entry with raw name bytes, because the tar crate's path setters reject the
/// absolute names Docker uses for a copy of `/`. Names and link targets longer than the
/// 100-byte header fields go in GNU long-name records.
fn append_named<W: Write>(
    builder: &mut tar::Builder<W>,
    header: &mut tar::Header,
    name: &[u8],
    link_target: Option<&[u8]>,
    data: impl Read,
) -> io::Result<()> {
    if name.len() > 100 {
        append_long_name(builder, tar::EntryType::GNULongName, name)?;
    }
    fill_field(&mut header.as_old_mut().name, name);
    if let Some(target) = link_target {
        if target.len() > 100 {
            append_long_name(builder, tar::EntryType::GNULongLink, target)?;
        }
        fill_field(&mut header.as_old_mut().linkname, target);
    }
    header.set_cksum();
    builder.append(header, data)
}

fn append_long_name<W: Write>(builder: &mut tar::Builder<W>, kind: tar::EntryType, value: &[u8]) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    fill_field(&mut header.as_old_mut().name, b"././@LongLink");
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(value.len() as u64 + 1);
    header.set_cksum();
    builder.append(&header, value.chain(&[0u8][..]))
}

/// Copies as much of `value` as fits into a fixed header field, zero-filling the rest.
fn fill_field(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let length = value.len().min(field.len());
    field[..length].copy_from_slice(&value[..length]);
}
