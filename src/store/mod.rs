//! On-disk records. Every state file is written atomically (temp file, fsync, rename) so that a
//! crash leaves either the old or the new version, never half a file.

pub mod logs;

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Context, Result};

/// Writes `bytes` to `path` through a temporary file in the same directory, then renames it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).context(format!("creating {}", tmp.display()))?;
    file.write_all(bytes).context(format!("writing {}", tmp.display()))?;
    file.sync_all().context(format!("syncing {}", tmp.display()))?;
    fs::rename(&tmp, path).context(format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Writes a file that every container start generates again (bundle config, monitor config):
/// a crash can leave it torn, but nothing reads it before the next start rewrites it, so it
/// skips the fsync and rename of `write_atomic`.
pub fn write_regenerated(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).context(format!("writing {}", path.display()))
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)?;
    write_atomic(path, &bytes)
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).context(format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).context(format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!dir.path().join("state.tmp").exists());
    }
}
