//! A container's root filesystem: an overlay of the image layers, the init layer shared by all
//! containers and the container's own upper directory, with a copy of the layers where
//! overlayfs is unavailable.

use std::path::{Path, PathBuf};

use crate::error::{Context, Error, Result};

/// Paths inside a container directory.
pub struct RootfsPaths {
    pub init: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
}

impl RootfsPaths {
    pub fn new(container_dir: &Path, init_layer: &Path) -> Self {
        RootfsPaths {
            init: init_layer.to_path_buf(),
            upper: container_dir.join("upper"),
            work: container_dir.join("work"),
            merged: container_dir.join("merged"),
        }
    }
}

/// Creates the init layer: the mount points and files the daemon bind-mounts or runc creates,
/// so that they exist in a lower layer and do not show up as container changes. Its content
/// is the same for every container, so one copy serves them all.
pub fn create_init_layer(dir: &Path) -> Result<()> {
    for sub in ["dev", "proc", "sys", "etc", "dev/pts", "dev/shm"] {
        std::fs::create_dir_all(dir.join(sub)).context("creating init layer")?;
    }
    for file in ["etc/hostname", "etc/hosts", "etc/resolv.conf", ".dockerenv", "dev/console"] {
        std::fs::write(dir.join(file), b"").context("creating init layer")?;
    }
    // Docker's init layer links /etc/mtab to the kernel's mount table.
    let mtab = dir.join("etc/mtab");
    if std::fs::symlink_metadata(&mtab).is_err() {
        std::os::unix::fs::symlink("/proc/mounts", &mtab).context("creating init layer")?;
    }
    Ok(())
}

/// Creates the container's upper, work and mount directories.
pub fn prepare(paths: &RootfsPaths) -> Result<()> {
    for dir in [&paths.upper, &paths.work, &paths.merged] {
        std::fs::create_dir_all(dir).context(format!("creating {}", dir.display()))?;
    }
    Ok(())
}

/// Mounts the overlay at `paths.merged`. Falls back to copying the layers into `merged` when
/// overlayfs refuses the mount (for example on a filesystem that cannot be an upper layer).
pub fn mount(paths: &RootfsPaths, layers_top_first: &[PathBuf]) -> Result<()> {
    if is_mounted(&paths.merged) {
        return Ok(());
    }
    let mut lower = paths.init.display().to_string();
    for layer in layers_top_first {
        lower.push(':');
        lower.push_str(&layer.display().to_string());
    }
    // redirect_dir, index and metacopy off keep the upper directory a plain tree of changes.
    let options = format!(
        "lowerdir={lower},upperdir={},workdir={},redirect_dir=off,index=off,metacopy=off",
        paths.upper.display(),
        paths.work.display()
    );
    if options.len() >= 4000 {
        return Err(Error::internal(format!(
            "overlay mount options are {} bytes, over the one-page limit of mount(2)",
            options.len()
        )));
    }
    match nix::mount::mount(Some("overlay"), &paths.merged, Some("overlay"), nix::mount::MsFlags::empty(), Some(options.as_str())) {
        Ok(()) => Ok(()),
        Err(err) => {
            tracing::warn!(error = %err, merged = %paths.merged.display(), "overlay mount failed, copying the layers instead");
            copy_fallback(paths, layers_top_first)
        }
    }
}

/// Copies the layers (bottom first) and the init layer into `merged` once; later starts reuse it.
fn copy_fallback(paths: &RootfsPaths, layers_top_first: &[PathBuf]) -> Result<()> {
    let marker = paths.merged.join(".berth-copied");
    if marker.exists() {
        return Ok(());
    }
    for layer in layers_top_first.iter().rev().chain(std::iter::once(&paths.init)) {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", layer.display()))
            .arg(&paths.merged)
            .status()
            .context("running cp")?;
        if !status.success() {
            return Err(Error::internal(format!("copying layer {} failed: {status}", layer.display())));
        }
    }
    std::fs::write(marker, b"").context("marking copied rootfs")
}

pub fn is_mounted(path: &Path) -> bool {
    let target = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|info| info.lines().any(|line| line.split(' ').nth(4) == Some(target.as_str())))
        .unwrap_or(false)
}

pub fn unmount(path: &Path) -> Result<()> {
    if is_mounted(path) {
        nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH).context(format!("unmounting {}", path.display()))?;
    }
    Ok(())
}
