//! `docker cp`: stat, archive and extract paths inside a container, running or stopped. The
//! file work runs on blocking threads that own the `RootfsAccess`, so a stopped container's
//! temporary mount and operation lock last exactly as long as the copy.

use std::io;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};

use super::{Container, Engine};
use crate::archive::copy::{self, ContainerFs, MountPoint, PathStat};
use crate::archive::extract::{self, ExtractRequest};
use crate::archive::{ChannelReader, ChannelWriter};
use crate::error::{Error, Kind, Result};

/// Maximum request body bytes read and dropped after the extractor stopped, so that the client
/// can finish sending (usually tar padding) and then read the reply. Past this limit the
/// connection is left to close.
const MAX_DRAINED_BODY: usize = 1 << 20;

/// Docker's 404 text for a path missing inside a container, with the reference as given.
fn file_not_found(path: &str, reference: &str) -> Error {
    Error::not_found(format!("Could not find the file {path} in container {reference}"))
}

/// Replaces a not-found error from a path lookup with Docker's message.
fn with_docker_message(err: Error, path: &str, reference: &str) -> Error {
    if err.kind == Kind::NotFound {
        file_not_found(path, reference)
    } else {
        err
    }
}

/// Lists the bind mounts of `container` that copies resolve: the hostname, hosts and
/// resolv.conf files that the start path writes to `<container dir>/etc` and mounts over /etc,
/// then the `Binds` of its host config. Mounts whose source is gone are left out.
fn mount_points(container: &Container) -> Vec<MountPoint> {
    let record = container.snapshot();
    let mut mounts = Vec::new();
    for file in ["hostname", "hosts", "resolv.conf"] {
        let source = container.dir.join("etc").join(file);
        if source.exists() {
            mounts.push(MountPoint { destination: format!("/etc/{file}"), source, read_only: false });
        }
    }
    for bind in record.host_config.binds.iter().flatten() {
        match super::create::parse_bind(bind) {
            Ok(bind) => mounts.push(MountPoint {
                destination: bind.destination,
                source: bind.source,
                read_only: bind.read_only,
            }),
            Err(err) => {
                let message = "the bind is invalid or its source is gone, so copies read the rootfs beneath it";
                tracing::debug!(container_id = %container.id, bind = %bind, error = %err, "{message}");
            }
        }
    }
    mounts
}

impl Engine {
    /// `HEAD /containers/{id}/archive`: the stat of `path`. `reference` is the container as
    /// the client named it, for Docker's not-found message.
    pub async fn stat_path(&self, container: &Container, reference: &str, path: &str) -> Result<PathStat> {
        let access = self.rootfs(container).await?;
        let fs = ContainerFs { root: access.path.clone(), mounts: mount_points(container) };
        let path_owned = path.to_string();
        let result = tokio::task::spawn_blocking(move || {
            let stat = copy::stat_path(&fs, &path_owned);
            drop(access);
            stat
        })
        .await
        .map_err(|err| Error::internal(format!("stat task failed: {err}")))?;
        result.map_err(|err| with_docker_message(err, path, reference))
    }

    /// `GET /containers/{id}/archive`: the stat of `path` and a receiver of tar chunks. The
    /// lookup finishes before this returns, so a missing path is still an error status. The
    /// tar is then written on a blocking thread that keeps the rootfs mounted until it is done.
    pub async fn archive_path(
        &self,
        container: &Container,
        reference: &str,
        path: &str,
    ) -> Result<(PathStat, mpsc::Receiver<Bytes>)> {
        let (stat, receiver) = self.stream_path(container, reference, path).await?;
        container.emit(&self.events, "archive-path", &[]);
        Ok((stat, receiver))
    }

    /// `POST /containers/{id}/copy`, removed from Docker's API in 1.24 and kept for old
    /// scripts: the same tar as `GET archive` of `resource`, without the stat.
    pub async fn copy_resource(
        &self,
        container: &Container,
        reference: &str,
        resource: &str,
    ) -> Result<mpsc::Receiver<Bytes>> {
        let (_, receiver) = self.stream_path(container, reference, resource).await?;
        container.emit(&self.events, "copy", &[]);
        Ok(receiver)
    }

    async fn stream_path(
        &self,
        container: &Container,
        reference: &str,
        path: &str,
    ) -> Result<(PathStat, mpsc::Receiver<Bytes>)> {
        let access = self.rootfs(container).await?;
        let fs = ContainerFs { root: access.path.clone(), mounts: mount_points(container) };
        let (stat_sender, stat_receiver) = oneshot::channel();
        let (sender, receiver) = mpsc::channel(8);
        let id = container.id.clone();
        let path_owned = path.to_string();
        std::thread::spawn(move || {
            let path = path_owned;
            let source = match copy::open_source(&fs, &path) {
                Ok(source) => source,
                Err(err) => {
                    drop(access);
                    let _ = stat_sender.send(Err(err));
                    return;
                }
            };
            if stat_sender.send(Ok(source.stat().clone())).is_err() {
                return;
            }
            if let Err(err) = source.write_tar(ChannelWriter::new(sender)) {
                tracing::warn!(container_id = %id, path = %path, error = %err, "copy from container ended early");
            }
            drop(access);
        });
        let stat = stat_receiver.await.map_err(|_| Error::internal("copy thread ended without a result"))?;
        let stat = stat.map_err(|err| with_docker_message(err, path, reference))?;
        Ok((stat, receiver))
    }

    /// `PUT /containers/{id}/archive`: extracts the tar in `body` into the directory `path`.
    /// The body is passed chunk by chunk to an extractor on a blocking thread and is never
    /// held whole in memory.
    pub async fn extract_to_dir<S, E>(
        &self,
        container: &Container,
        reference: &str,
        path: &str,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
        mut body: S,
    ) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let record = container.snapshot();
        let request = ExtractRequest {
            path: path.to_string(),
            no_overwrite_dir_non_dir,
            copy_uid_gid,
            readonly_rootfs: record.host_config.readonly_rootfs,
            user: record.config.user.clone(),
        };
        let access = self.rootfs(container).await?;
        let fs = ContainerFs { root: access.path.clone(), mounts: mount_points(container) };
        let (chunk_sender, chunk_receiver) = mpsc::channel::<io::Result<Bytes>>(8);
        let (done_sender, done_receiver) = oneshot::channel();
        std::thread::spawn(move || {
            let result = extract::extract_to_dir(&fs, &request, ChannelReader::new(chunk_receiver));
            drop(access);
            let _ = done_sender.send(result);
        });

        let mut drained = 0;
        let mut extractor_done = false;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => Ok(chunk),
                Err(err) => Err(io::Error::new(io::ErrorKind::Other, format!("reading the request body: {err}"))),
            };
            if extractor_done {
                drained += chunk.as_ref().map_or(0, Bytes::len);
                if drained > MAX_DRAINED_BODY || chunk.is_err() {
                    break;
                }
                continue;
            }
            let failed = chunk.is_err();
            if chunk_sender.send(chunk).await.is_err() {
                extractor_done = true;
            } else if failed {
                break;
            }
        }
        drop(chunk_sender);

        let result = done_receiver.await.map_err(|_| Error::internal("extraction thread ended without a result"))?;
        result.map_err(|err| with_docker_message(err, path, reference))?;
        container.emit(&self.events, "extract-to-dir", &[]);
        Ok(())
    }
}
