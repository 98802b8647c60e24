//! Launching monitor processes. Executing the berth binary takes a few milliseconds, so the
//! daemon keeps one spare monitor that has already forked away and waits on its stdin for the
//! path of a config. A start hands it the path, and the next spare starts in the background.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};

use super::Engine;
use crate::error::{Context, Error, Result};

/// A spare monitor: its stdin takes the config path, its stdout reports `ready`.
pub struct SpareMonitor {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Engine {
    /// Starts a monitor for the config file `config` and waits until its socket is listening.
    /// The monitor writes its own errors to monitor.log beside the config.
    pub(super) async fn launch_monitor(self: &Arc<Self>, config: &Path) -> Result<()> {
        let spare = self.spare_monitor.lock().await.take();
        let monitor = match spare {
            Some(monitor) => monitor,
            None => self.spawn_spare().await?,
        };
        match hand_config(monitor, config).await {
            Ok(()) => Ok(()),
            Err(first) => {
                // The spare may have died since it was started; try once with a fresh one.
                tracing::debug!(config = %config.display(), error = %first, "spare monitor failed, starting another");
                let fresh = self.spawn_spare().await?;
                hand_config(fresh, config).await.map_err(|err| {
                    let log = std::fs::read_to_string(config.with_file_name("monitor.log")).unwrap_or_default();
                    err.context(format!("monitor failed to start ({})", log.trim()))
                })
            }
        }
    }

    /// Starts a new spare monitor if there is none. Called after a start has finished, so the
    /// new process does not compete with runc for the CPU while the container starts.
    pub(super) async fn refill_spare(&self) {
        if self.spare_monitor.lock().await.is_some() {
            return;
        }
        match self.spawn_spare().await {
            Ok(monitor) => {
                let mut slot = self.spare_monitor.lock().await;
                if slot.is_none() {
                    *slot = Some(monitor);
                }
                // Otherwise the new spare is dropped: its stdin closes and it exits.
            }
            Err(err) => tracing::warn!(error = %err, "could not start a spare monitor"),
        }
    }

    /// Executes `berth monitor --spare-for ROOT` in a new session. The first process forks and
    /// exits at once; the forked one keeps the pipes.
    async fn spawn_spare(&self) -> Result<SpareMonitor> {
        // /proc/self/exe still names the running binary after a rebuild replaced the file.
        // argv[0] keeps the path for ps and for tools that look for monitors by it.
        let exe = std::env::current_exe().context("locating the berth binary")?;
        let mut command = tokio::process::Command::new("/proc/self/exe");
        command
            .arg0(exe.as_os_str().to_string_lossy().trim_end_matches(" (deleted)"))
            .arg("monitor")
            .arg("--spare-for")
            .arg(&self.paths.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let mut child = command.spawn().context("starting a monitor")?;
        let stdin = child.stdin.take().ok_or_else(|| Error::internal("monitor has no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| Error::internal("monitor has no stdout"))?;
        let _ = child.wait().await;
        Ok(SpareMonitor { stdin, stdout: BufReader::new(stdout) })
    }
}

async fn hand_config(mut monitor: SpareMonitor, config: &std::path::Path) -> Result<()> {
    let line = format!("{}\n", config.display());
    monitor.stdin.write_all(line.as_bytes()).await.context("sending config to monitor")?;
    let mut reply = String::new();
    monitor.stdout.read_line(&mut reply).await.context("reading from monitor")?;
    if reply.trim() != "ready" {
        return Err(Error::internal("monitor exited before it was ready"));
    }
    Ok(())
}
