//! Attaching to a container's stdio. A running container's monitor is connected at once; an
//! attach to a container that is not running waits in `pending_attach` and is connected by
//! the next start before the process runs, so `docker run` receives all output.

use tokio::net::UnixStream;
use tokio::sync::oneshot;

use super::{Container, Engine};
use crate::error::Result;
use crate::monitor::protocol::Subscription;

pub struct PendingAttach {
    pub subscription: Subscription,
    pub sender: oneshot::Sender<UnixStream>,
}

pub enum AttachTarget {
    Connected(UnixStream),
    /// Resolves when the container starts; dropped (an error) if it is removed first.
    Pending(oneshot::Receiver<UnixStream>),
}

impl Engine {
    pub async fn attach(&self, container: &Container, subscription: Subscription) -> Result<AttachTarget> {
        // Holding the operation lock orders this attach strictly before or after a start.
        let _op = container.op.lock().await;
        if container.is_running() {
            let socket = self.paths.monitor_socket(&container.id);
            return Ok(AttachTarget::Connected(super::lifecycle::subscribe(&socket, subscription).await?));
        }
        let (sender, receiver) = oneshot::channel();
        container.pending_attach.lock().unwrap().push(PendingAttach { subscription, sender });
        Ok(AttachTarget::Pending(receiver))
    }

    /// Config flags the attach stream depends on: (tty, stdin_once, open_stdin).
    pub fn stdio_flags(&self, container: &Container) -> (bool, bool, bool) {
        let record = container.snapshot();
        (record.config.tty, record.config.stdin_once, record.config.open_stdin)
    }
}
