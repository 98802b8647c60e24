//! Import of a root filesystem tar (`POST /images/create?fromSrc=-`) as a one-layer image.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{ImageRecord, ImageRunConfig, ImageStore};
use crate::error::{Context, Error, Result};

/// A reader that hashes everything read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Unpacks a (possibly gzip-compressed) layer tar into the store and returns its diff id and
/// the size of its files. Blocking: call it from a blocking thread.
pub fn unpack_layer(store: &ImageStore, tar_path: &Path) -> Result<(String, u64)> {
    let mut file = BufReader::new(File::open(tar_path).context("opening uploaded tar")?);
    let mut magic = [0u8; 2];
    let gzip = {
        use std::io::BufRead;
        let head = file.fill_buf().context("reading uploaded tar")?;
        magic.copy_from_slice(&head[..head.len().min(2)].iter().copied().chain([0, 0]).take(2).collect::<Vec<_>>());
        magic == [0x1f, 0x8b]
    };
    let source: Box<dyn Read> = if gzip { Box::new(flate2::read::GzDecoder::new(file)) } else { Box::new(file) };
    let mut hashing = HashingReader { inner: source, hasher: Sha256::new() };

    let staging = tempdir_in(&store.tmp_dir())?;
    let size = unpack_into(&mut hashing, &staging)?;
    // Hash any trailing bytes after the tar's end marker too, as they are part of the blob.
    io::copy(&mut hashing, &mut io::sink()).context("reading the rest of the tar")?;
    let diff_id = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
    let target = store.layer_dir(&diff_id);
    if target.exists() {
        let _ = std::fs::remove_dir_all(&staging);
    } else {
        std::fs::rename(&staging, &target).context(format!("moving layer to {}", target.display()))?;
    }
    Ok((diff_id, size))
}

fn tempdir_in(parent: &Path) -> Result<std::path::PathBuf> {
    let dir = parent.join(format!("layer-{}", hex::encode(rand::random::<[u8; 8]>())));
    std::fs::create_dir_all(&dir).context(format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Unpacks a tar stream into `dir`, turning whiteout entries into overlayfs whiteouts.
/// Entries with absolute paths or `..` components are rejected by the tar crate's
/// `unpack_in`, which never writes outside `dir`.
fn unpack_into(reader: &mut impl Read, dir: &Path) -> Result<u64> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    let mut size = 0u64;
    let invalid = |err: io::Error| Error::invalid(format!("invalid tar archive: {err}"));
    for entry in archive.entries().map_err(invalid)? {
        let mut entry = entry.map_err(invalid)?;
        let path = entry.path().map_err(invalid)?.into_owned();
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if file_name == ".wh..wh..opq" {
            let parent = dir.join(path.parent().unwrap_or(Path::new("")));
            std::fs::create_dir_all(&parent)?;
            set_opaque(&parent)?;
            continue;
        }
        if let Some(hidden) = file_name.strip_prefix(".wh.") {
            let target = dir.join(path.parent().unwrap_or(Path::new(""))).join(hidden);
            if target.starts_with(dir) && !hidden.contains('/') {
                make_whiteout(&target)?;
            }
            continue;
        }
        size += entry.header().size().unwrap_or(0);
        entry.unpack_in(dir).map_err(|err| Error::invalid(format!("unpacking {}: {err}", path.display())))?;
    }
    Ok(size)
}

fn make_whiteout(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_char_device() {
            return Ok(());
        }
        if meta.is_dir() { std::fs::remove_dir_all(path)? } else { std::fs::remove_file(path)? }
    }
    nix::sys::stat::mknod(path, nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0)
        .context(format!("creating whiteout {}", path.display()))
}

fn set_opaque(dir: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|e| Error::invalid(e.to_string()))?;
    // SAFETY: both strings are NUL-terminated and outlive the call.
    let rc = unsafe {
        libc::lsetxattr(path.as_ptr(), c"trusted.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0)
    };
    if rc != 0 {
        return Err(Error::internal(format!("marking {} opaque: {}", dir.display(), io::Error::last_os_error())));
    }
    Ok(())
}

/// Applies Dockerfile-style `changes` (`docker import --change`) to an image config.
/// Supported: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, STOPSIGNAL.
pub fn apply_changes(config: &mut ImageRunConfig, changes: &[String]) -> Result<()> {
    for change in changes {
        let change = change.trim();
        let (instruction, rest) = change.split_once(char::is_whitespace).unwrap_or((change, ""));
        let rest = rest.trim();
        let command = || -> Vec<String> {
            serde_json::from_str::<Vec<String>>(rest)
                .unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
        };
        match instruction.to_ascii_uppercase().as_str() {
            "CMD" => config.cmd = Some(command()),
            "ENTRYPOINT" => config.entrypoint = Some(command()),
            "WORKDIR" => config.working_dir = rest.to_string(),
            "USER" => config.user = rest.to_string(),
            "STOPSIGNAL" => config.stop_signal = Some(rest.to_string()),
            "ENV" => {
                let pair = match rest.split_once('=') {
                    Some((k, v)) => format!("{}={}", k.trim(), v.trim()),
                    None => match rest.split_once(char::is_whitespace) {
                        Some((k, v)) => format!("{k}={}", v.trim()),
                        None => return Err(Error::invalid(format!("ENV needs a value: {change}"))),
                    },
                };
                config.env.get_or_insert_with(Vec::new).push(pair);
            }
            "LABEL" => {
                let (k, v) = rest
                    .split_once('=')
                    .ok_or_else(|| Error::invalid(format!("LABEL needs key=value: {change}")))?;
                config.labels.get_or_insert_with(Default::default).insert(k.trim().into(), v.trim().trim_matches('"').into());
            }
            _ => {
                return Err(Error::invalid(format!("{} is not a valid change command", instruction.to_ascii_lowercase())));
            }
        }
    }
    Ok(())
}

/// Builds the record of a new one-layer image. The id is the digest of the record's JSON
/// without the id, so the same content and time give the same id.
pub fn new_record(diff_id: String, size: u64, comment: &str, config: ImageRunConfig) -> Result<ImageRecord> {
    let mut record = ImageRecord {
        id: String::new(),
        created: crate::store::logs::format_time(chrono::Utc::now()),
        comment: comment.to_string(),
        architecture: std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        os: "linux".into(),
        config,
        diff_ids: vec![diff_id],
        size,
    };
    let digest = Sha256::digest(serde_json::to_vec(&record)?);
    record.id = format!("sha256:{}", hex::encode(digest));
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_set_command_env_and_workdir() {
        let mut config = ImageRunConfig::default();
        let changes = ["CMD [\"sh\"]", "ENV A=1", "WORKDIR /srv", "ENTRYPOINT echo hi", "LABEL k=v"].map(String::from);
        apply_changes(&mut config, &changes).unwrap();
        assert_eq!(config.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(config.entrypoint, Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()]));
        assert_eq!(config.env, Some(vec!["A=1".to_string()]));
        assert_eq!(config.working_dir, "/srv");
        assert_eq!(config.labels.unwrap()["k"], "v");
    }

    #[test]
    fn unknown_change_is_invalid() {
        let err = apply_changes(&mut ImageRunConfig::default(), &["RUN true".into()]).unwrap_err();
        assert_eq!(err.message, "run is not a valid change command");
    }
}
