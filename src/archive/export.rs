//! `GET /containers/{id}/export`: the container's root filesystem as a tar stream, written on
//! a blocking thread and never held in memory whole.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;

use crate::error::{Context, Error, Result};

/// Writes a tar of `root` to `out`, with paths relative to the root (`bin/`, `bin/sh`) in
/// name order. The walk works on file descriptors and never follows a symbolic link, so a
/// link that the running container swaps in cannot make it read a host file.
pub fn write_tar(root: &Path, out: impl Write) -> Result<()> {
    let top = super::resolve::open_host_path(root).context(format!("opening {}", root.display()))?;
    let top = super::resolve::reopen(top.as_fd(), nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY)
        .context(format!("opening {}", root.display()))?;
    let mut stream = super::tar_writer::TarStream::new(out);
    stream
        .append_contents(top)
        .map_err(|err| Error::internal(format!("writing the tar stream of {}: {err}", root.display())))?;
    stream.builder.into_inner().context("finishing the tar stream")?.flush().context("flushing the tar stream")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_keeps_links_unfollowed() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/motd"), "hi").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", root.path().join("shadow-link")).unwrap();
        let mut tar_bytes = Vec::new();
        write_tar(root.path(), &mut tar_bytes).unwrap();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let kind = entry.header().entry_type();
            names.push((entry.path().unwrap().display().to_string(), kind.is_symlink()));
            if kind.is_symlink() {
                assert_eq!(entry.link_name().unwrap().unwrap().display().to_string(), "/etc/shadow");
                assert_eq!(entry.header().size().unwrap(), 0);
            }
        }
        assert_eq!(names, vec![("etc/".into(), false), ("etc/motd".into(), false), ("shadow-link".into(), true)]);
    }
}
