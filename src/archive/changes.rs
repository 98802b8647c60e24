//! `GET /containers/{id}/changes`: what the container changed, read from its overlay upper
//! directory. A whiteout (character device 0:0) is a deletion, a path missing from every
//! lower layer is an addition, anything else in the upper directory is a modification. A
//! directory that exists below is in the upper directory only because something in it
//! changed, so it is reported as modified, as Docker reports the parents of changed files.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Context, Result};

/// Docker's change kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

/// Lists the changes in `upper` against `lowers` (top layer first), sorted by path.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let mut found = Vec::new();
    walk(upper, lowers, Path::new("/"), false, &mut found)?;
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

fn walk(upper: &Path, lowers: &[PathBuf], relative: &Path, parent_added: bool, found: &mut Vec<Change>) -> Result<()> {
    let dir = upper.join(relative.strip_prefix("/").unwrap_or(relative));
    let entries = std::fs::read_dir(&dir).context(format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.context(format!("reading {}", dir.display()))?;
        let path = relative.join(entry.file_name());
        let inner = path.strip_prefix("/").unwrap_or(&path).to_path_buf();
        let meta = entry.metadata().context(format!("reading {}", entry.path().display()))?;
        let text = path.display().to_string();
        if is_whiteout(&meta) {
            found.push(Change { path: text, kind: Kind::Deleted as u8 });
            continue;
        }
        let lower = if parent_added { None } else { lowers.iter().find_map(|l| std::fs::symlink_metadata(l.join(&inner)).ok()) };
        match lower {
            None => {
                found.push(Change { path: text, kind: Kind::Added as u8 });
                if meta.is_dir() {
                    walk(upper, lowers, &path, true, found)?;
                }
            }
            Some(below) => {
                found.push(Change { path: text.clone(), kind: Kind::Modified as u8 });
                if meta.is_dir() && below.is_dir() {
                    if is_opaque(&entry.path()) {
                        report_hidden(upper, lowers, &path, found)?;
                    }
                    walk(upper, lowers, &path, false, found)?;
                } else if meta.is_dir() {
                    // A file replaced by a directory: everything in it is new.
                    walk(upper, lowers, &path, true, found)?;
                }
            }
        }
    }
    Ok(())
}

/// For an opaque directory, the lower entries that the upper directory no longer has are
/// deletions.
fn report_hidden(upper: &Path, lowers: &[PathBuf], relative: &Path, found: &mut Vec<Change>) -> Result<()> {
    let inner = relative.strip_prefix("/").unwrap_or(relative);
    let mut names = std::collections::BTreeSet::new();
    for lower in lowers {
        if let Ok(entries) = std::fs::read_dir(lower.join(inner)) {
            for entry in entries.flatten() {
                names.insert(entry.file_name());
            }
        }
    }
    for name in names {
        if std::fs::symlink_metadata(upper.join(inner).join(&name)).is_err() {
            found.push(Change { path: relative.join(&name).display().to_string(), kind: Kind::Deleted as u8 });
        }
    }
    Ok(())
}

fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    let mut value = [0u8; 4];
    // SAFETY: both names are NUL-terminated and the buffer length is passed.
    let n = unsafe {
        libc::lgetxattr(c_path.as_ptr(), c"trusted.overlay.opaque".as_ptr(), value.as_mut_ptr().cast(), value.len())
    };
    n == 1 && value[0] == b'y'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_added_modified_and_deleted() {
        let root = tempfile::tempdir().unwrap();
        let lower = root.path().join("lower");
        let upper = root.path().join("upper");
        for dir in ["etc", "data/keep"] {
            std::fs::create_dir_all(lower.join(dir)).unwrap();
        }
        std::fs::write(lower.join("etc/a"), "a").unwrap();
        std::fs::write(lower.join("etc/b"), "b").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(upper.join("new/deep")).unwrap();
        std::fs::write(upper.join("etc/b"), "changed").unwrap();
        std::fs::write(upper.join("new/deep/file"), "x").unwrap();
        nix::sys::stat::mknod(&upper.join("etc/a"), nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0).unwrap();

        let found = changes(&upper, &[lower]).unwrap();
        let pairs: Vec<(&str, u8)> = found.iter().map(|c| (c.path.as_str(), c.kind)).collect();
        assert_eq!(
            pairs,
            vec![("/etc", 0), ("/etc/a", 2), ("/etc/b", 0), ("/new", 1), ("/new/deep", 1), ("/new/deep/file", 1)]
        );
    }
}
