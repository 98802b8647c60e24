//! Rebuilds the container index from the state directory when the daemon starts.
//!
//! For each container that was running, an exit file means it exited while the daemon was
//! down, so its code is recorded. A live monitor means it still runs, so the daemon
//! reconnects. Neither means the monitor died, so the container is killed and recorded
//! with 137.

use std::sync::Arc;

use super::{read_record, Container, Engine};
use crate::error::Result;
use crate::monitor::protocol::{ExitRecord, Subscription};

impl Engine {
    pub async fn restore(self: &Arc<Self>) -> Result<()> {
        let entries = match std::fs::read_dir(self.paths.containers()) {
            Ok(entries) => entries,
            Err(_) => return Ok(()),
        };
        for entry in entries.flatten() {
            let dir = entry.path();
            let record = match read_record(&dir) {
                Ok(record) => record,
                Err(err) => {
                    tracing::warn!(path = %dir.display(), error = %err, "skipping unreadable container directory");
                    continue;
                }
            };
            let running = record.state.status.is_running();
            let container = Container::new(dir.clone(), record);
            self.insert(container.clone());
            if !running {
                continue;
            }
            let exit_path = dir.join("exit.json");
            if let Ok(exit) = crate::store::read_json::<ExitRecord>(&exit_path) {
                tracing::info!(container_id = %container.id, exit_code = exit.exit_code, "container exited while the daemon was down");
                self.handle_exit(&container, Some(exit)).await;
                continue;
            }
            let socket = self.paths.monitor_socket(&container.id);
            match super::lifecycle::subscribe(&socket, Subscription::default()).await {
                Ok(control) => {
                    tracing::info!(container_id = %container.id, "reconnected to running container");
                    let engine = self.clone();
                    tokio::spawn(async move { engine.watch(container, control).await });
                }
                Err(_) => {
                    // The monitor may have written the exit file just now.
                    let exit = crate::store::read_json::<ExitRecord>(&exit_path).ok();
                    self.handle_exit(&container, exit).await;
                }
            }
        }
        Ok(())
    }
}
