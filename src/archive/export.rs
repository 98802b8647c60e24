//! `GET /containers/{id}/export`: the container's root filesystem as a tar stream, written on
//! a blocking thread and never held in memory whole.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{Context, Error, Result};

/// Writes a tar of `root` to `out`, with paths relative to the root (`bin/sh`), sorted per
/// directory. Symbolic links are stored as links and never followed.
pub fn write_tar(root: &Path, out: impl Write) -> Result<()> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    append_dir(&mut builder, root, Path::new(""))?;
    builder.into_inner().context("finishing the tar stream")?.flush().context("flushing the tar stream")?;
    Ok(())
}

fn append_dir<W: Write>(builder: &mut tar::Builder<W>, root: &Path, relative: &Path) -> Result<()> {
    let dir = root.join(relative);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .context(format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = relative.join(entry.file_name());
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).context(format!("reading {}", path.display()))?;
        builder
            .append_path_with_name(&path, &name)
            .map_err(|err| Error::internal(format!("adding {} to the tar stream: {err}", name.display())))?;
        if meta.is_dir() {
            append_dir(builder, root, &name)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_lists_files_links_and_dirs_without_following_links() {
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
        assert_eq!(names, vec![("etc".into(), false), ("etc/motd".into(), false), ("shadow-link".into(), true)]);
    }
}
