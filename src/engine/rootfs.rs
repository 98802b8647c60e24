//! Access to a container's files for export, copy and changes. A running container's rootfs
//! is already mounted. A stopped one is mounted for the duration of the access, with the
//! container's operation lock held so that a start cannot race the temporary mount.

use std::path::PathBuf;

use super::{Container, Engine};
use crate::error::{Context, Result};
use crate::image::overlay::{self, RootfsPaths};

/// A mounted container rootfs; a temporary mount is undone when this is dropped.
pub struct RootfsAccess {
    pub path: PathBuf,
    temporary: bool,
    _op: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for RootfsAccess {
    fn drop(&mut self) {
        if self.temporary {
            if let Err(err) = overlay::unmount(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %err, "unmounting a temporary rootfs mount");
            }
        }
    }
}

impl Engine {
    pub async fn rootfs(&self, container: &Container) -> Result<RootfsAccess> {
        let record = container.snapshot();
        let image = self.images.get(&record.image_id).context(format!("image {} of the container", record.image_id))?;
        let paths = RootfsPaths::new(&container.dir, &self.images.init_layer());
        let access = |temporary, op| RootfsAccess { path: paths.merged.clone(), temporary, _op: op };
        if container.is_running() {
            return Ok(access(false, None));
        }
        let guard = container.op.clone().lock_owned().await;
        if container.is_removed() {
            return Err(crate::error::Error::no_such_container(&container.id));
        }
        if container.is_running() {
            return Ok(access(false, None));
        }
        overlay::prepare(&paths)?;
        let was_mounted = overlay::is_mounted(&paths.merged);
        overlay::mount(&paths, &self.images.layer_dirs_top_first(&image))?;
        Ok(access(!was_mounted, Some(guard)))
    }
}

impl Engine {
    /// `GET /containers/{id}/changes`, from the upper directory; no mount is needed.
    pub async fn changes(&self, container: &Container) -> Result<Vec<crate::archive::changes::Change>> {
        let record = container.snapshot();
        let image = self.images.get(&record.image_id).context(format!("image {} of the container", record.image_id))?;
        let paths = RootfsPaths::new(&container.dir, &self.images.init_layer());
        let mut lowers = vec![paths.init.clone()];
        lowers.extend(self.images.layer_dirs_top_first(&image));
        if !paths.upper.exists() {
            return Ok(Vec::new());
        }
        tokio::task::spawn_blocking(move || crate::archive::changes::changes(&paths.upper, &lowers))
            .await
            .map_err(|err| crate::error::Error::internal(format!("changes task failed: {err}")))?
    }

    /// `GET /containers/{id}/export`: a receiver of tar chunks, written on a blocking thread
    /// that keeps the rootfs mounted until it is done.
    pub async fn export(&self, container: &Container) -> Result<tokio::sync::mpsc::Receiver<bytes::Bytes>> {
        let access = self.rootfs(container).await?;
        let (sender, receiver) = tokio::sync::mpsc::channel(8);
        let id = container.id.clone();
        std::thread::spawn(move || {
            let mut writer = crate::archive::ChannelWriter::new(sender);
            if let Err(err) = crate::archive::export::write_tar(&access.path, &mut writer) {
                tracing::warn!(container_id = %id, error = %err, "export ended early");
            }
            // Undo a temporary mount before the last chunk goes out, so that a client that
            // has read the whole tar finds no mount left.
            drop(access);
            let _ = std::io::Write::flush(&mut writer);
        });
        container.emit(&self.events, "export", &[]);
        Ok(receiver)
    }
}
