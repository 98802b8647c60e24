//! Start, stop, kill, restart, wait and remove, and the watcher that turns a monitor's exit
//! notice into the container's exited state.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use super::state::Status;
use super::{Container, Engine};
use crate::error::{Context, Error, Kind, Result};
use crate::image::overlay::{self, RootfsPaths};
use crate::monitor::protocol::{self, from_monitor, to_monitor, ExitRecord, StartFailed, Started, Subscription};
use crate::monitor::MonitorConfig;
use crate::runtime::bundle::{self, BundleSpec};

/// The condition a `wait` request waits for (its `condition` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(Error::invalid(format!("invalid condition: \"{other}\""))),
        }
    }
}

impl Engine {
    pub async fn start(self: &Arc<Self>, container: &Arc<Container>) -> Result<()> {
        let _op = container.op.lock().await;
        let result = self.start_locked(container).await;
        let engine = self.clone();
        tokio::spawn(async move { engine.refill_spare().await });
        result
    }

    async fn start_locked(self: &Arc<Self>, container: &Arc<Container>) -> Result<()> {
        if container.is_removed() {
            return Err(Error::no_such_container(&container.id));
        }
        let record = container.snapshot();
        record.state.check_start(&container.id)?;
        let monitor_config = match self.prepare_start(container).await {
            Ok(config) => config,
            Err(err) => {
                let exit_code = crate::runtime::classify(&err.message).1;
                container.update(|r| r.state.set_start_failed(exit_code, &err.message, Utc::now()))?;
                return Err(err);
            }
        };
        self.launch_monitor(&container.dir.join("monitor.json")).await?;

        // Pending attachers subscribe before the process exists, so they miss no output.
        let pending: Vec<_> = container.pending_attach.lock().unwrap().drain(..).collect();
        for attacher in pending {
            match subscribe(&monitor_config.socket, attacher.subscription).await {
                Ok(stream) => {
                    let _ = attacher.sender.send(stream);
                }
                Err(err) => tracing::warn!(container_id = %container.id, error = %err, "could not connect a pending attach"),
            }
        }

        let mut control = subscribe(&monitor_config.socket, Subscription::default()).await?;
        control.write_all(&protocol::encode(to_monitor::START, b"")).await.context("sending start to monitor")?;
        loop {
            let frame = protocol::read_frame_async(&mut control).await.context("reading from monitor")?;
            match frame {
                Some((from_monitor::STARTED, payload)) => {
                    let started: Started = serde_json::from_slice(&payload)?;
                    *container.pidfd.lock().unwrap() = crate::runtime::signal::pidfd_open(started.pid);
                    container.update(|r| r.state.set_running(started.pid, started.start_time, Utc::now()))?;
                    tracing::info!(container_id = %container.id, pid = started.pid, "started container");
                    container.emit(&self.events, "start", &[]);
                    let engine = self.clone();
                    let watched = container.clone();
                    tokio::spawn(async move { engine.watch(watched, control).await });
                    return Ok(());
                }
                Some((from_monitor::START_FAILED, payload)) => {
                    let failed: StartFailed = serde_json::from_slice(&payload)?;
                    let (kind, exit_code) = crate::runtime::classify(&failed.message);
                    let kind = if kind == Kind::InvalidArgument { kind } else { Kind::Internal };
                    container.update(|r| r.state.set_start_failed(exit_code, &failed.message, Utc::now()))?;
                    return Err(Error::new(kind, failed.message));
                }
                Some(_) => continue,
                None => {
                    let log = std::fs::read_to_string(container.dir.join("monitor.log")).unwrap_or_default();
                    let message = format!("monitor exited before the container started: {}", log.trim());
                    container.update(|r| r.state.set_start_failed(128, &message, Utc::now()))?;
                    return Err(Error::internal(message));
                }
            }
        }
    }

    /// Mounts the rootfs and writes the bundle, the /etc files and the monitor config.
    async fn prepare_start(&self, container: &Container) -> Result<MonitorConfig> {
        let record = container.snapshot();
        let image = self.images.get(&record.image_id).context(format!("image {} of the container", record.image_id))?;
        let rootfs = RootfsPaths::new(&container.dir, &self.images.init_layer());
        overlay::prepare(&rootfs)?;
        overlay::mount(&rootfs, &self.images.layer_dirs_top_first(&image))?;
        let result = self.write_bundle(container, &rootfs.merged);
        if result.is_err() {
            let _ = overlay::unmount(&rootfs.merged);
        }
        result
    }

    fn write_bundle(&self, container: &Container, merged: &std::path::Path) -> Result<MonitorConfig> {
        let record = container.snapshot();
        let config = &record.config;
        let host = &record.host_config;
        let host_network = host.network_mode == "host";
        let hostname = if host_network {
            nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
        } else {
            config.hostname.clone()
        };

        let etc = container.dir.join("etc");
        std::fs::create_dir_all(&etc).context("creating etc files")?;
        std::fs::write(etc.join("hostname"), format!("{hostname}\n")).context("writing hostname")?;
        let hosts = if host_network {
            std::fs::read_to_string("/etc/hosts").unwrap_or_default()
        } else {
            format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.1.1\t{hostname}\n"
            )
        };
        std::fs::write(etc.join("hosts"), hosts).context("writing hosts")?;
        std::fs::write(etc.join("resolv.conf"), std::fs::read("/etc/resolv.conf").unwrap_or_default())
            .context("writing resolv.conf")?;

        let passwd = crate::archive::read_container_file(&merged, "/etc/passwd");
        let group = crate::archive::read_container_file(&merged, "/etc/group");
        let user = crate::runtime::user::resolve(&config.user, &passwd, &group)?;

        // An entry without '=' is not passed on: Docker starts such a container without it,
        // while runc would reject it.
        let mut env: Vec<String> = config.env.clone().unwrap_or_default().into_iter().filter(|e| e.contains('=')).collect();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        }
        if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
            env.insert(1.min(env.len()), format!("HOSTNAME={hostname}"));
        }
        let mut binds: Vec<_> = ["hostname", "hosts", "resolv.conf"]
            .iter()
            .map(|file| bundle::BindMount {
                source: etc.join(file),
                destination: format!("/etc/{file}"),
                read_only: false,
            })
            .collect();
        for bind in host.binds.iter().flatten() {
            binds.push(super::create::parse_bind(bind)?);
        }
        let mut args = vec![record.path.clone()];
        args.extend(record.args.iter().cloned());
        let spec = BundleSpec {
            args,
            env,
            cwd: if config.working_dir.is_empty() { "/".into() } else { config.working_dir.clone() },
            user,
            hostname,
            tty: config.tty,
            rootfs: merged.to_path_buf(),
            readonly_rootfs: host.readonly_rootfs,
            binds,
            host_network,
            cgroups_path: format!("/{}/{}", self.settings.cgroup_parent, container.id),
            memory: host.memory,
            nano_cpus: host.nano_cpus,
            pids_limit: host.pids_limit.unwrap_or(0),
            nofile_limit: self.nofile_limit,
        };
        let bundle_dir = container.dir.join("bundle");
        std::fs::create_dir_all(&bundle_dir).context("creating bundle directory")?;
        bundle::write(&bundle_dir, &bundle::generate(&spec)?)?;
        let _ = std::fs::remove_file(bundle_dir.join("runc.log"));

        let monitor_config = MonitorConfig {
            container_id: container.id.clone(),
            bundle: bundle_dir,
            runc_binary: self.runc.binary.clone(),
            runc_root: self.runc.root.clone(),
            socket: self.paths.monitor_socket(&container.id),
            log_path: Some(container.log_path()),
            exec_process: None,
            log_max_size: self.settings.log_max_size,
            log_max_files: self.settings.log_max_files,
            exit_path: container.dir.join("exit.json"),
            open_stdin: config.open_stdin,
            rootfs_mount: Some(merged.to_path_buf()),
        };
        let _ = std::fs::remove_file(&monitor_config.exit_path);
        crate::store::write_regenerated(&container.dir.join("monitor.json"), &serde_json::to_vec(&monitor_config)?)?;
        Ok(monitor_config)
    }

    /// Follows a running container's monitor connection until the exit notice.
    pub(super) async fn watch(self: Arc<Self>, container: Arc<Container>, mut control: UnixStream) {
        let mut record: Option<ExitRecord> = None;
        while let Ok(Some((kind, payload))) = protocol::read_frame_async(&mut control).await {
            if kind == from_monitor::EXITED {
                record = serde_json::from_slice(&payload).ok();
                break;
            }
        }
        let record = record.or_else(|| crate::store::read_json(&container.dir.join("exit.json")).ok());
        self.handle_exit(&container, record).await;
    }

    /// Records an exit. Without an exit record the monitor died: the container is killed and
    /// reported with 137, as containerd does for a lost shim.
    pub(super) async fn handle_exit(self: &Arc<Self>, container: &Arc<Container>, record: Option<ExitRecord>) {
        let (exit_code, finished_at, oom) = match record {
            Some(r) => {
                let at = DateTime::parse_from_rfc3339(&r.finished_at).map(|t| t.with_timezone(&Utc)).unwrap_or_else(|_| Utc::now());
                (r.exit_code, at, r.oom_killed)
            }
            None => {
                tracing::warn!(container_id = %container.id, "monitor is gone without an exit record; killing the container");
                if let Err(err) = self.runc.delete_force(&self.runc_log(container), &container.id).await {
                    tracing::error!(container_id = %container.id, error = %err, "deleting orphaned runc container");
                }
                let _ = overlay::unmount(&container.dir.join("merged"));
                (137, Utc::now(), false)
            }
        };
        container.pidfd.lock().unwrap().take();
        container.exits.fetch_add(1, Ordering::SeqCst);
        if let Err(err) = container.update(|r| r.state.set_exited(exit_code, finished_at, oom)) {
            tracing::error!(container_id = %container.id, error = %err, "recording exit");
        }
        tracing::info!(container_id = %container.id, exit_code, "container exited");
        container.emit(&self.events, "die", &[("exitCode", exit_code.to_string())]);
        if container.snapshot().host_config.auto_remove {
            let engine = self.clone();
            let container = container.clone();
            tokio::spawn(async move {
                if let Err(err) = engine.remove(&container, false).await {
                    if err.kind != Kind::NotFound {
                        tracing::error!(container_id = %container.id, error = %err, "auto-remove failed");
                    }
                }
            });
        }
    }

    /// Sends a signal to the container's init process. `reference` names the container in
    /// the error, as the client named it.
    pub fn kill(&self, container: &Container, reference: &str, signal: i32) -> Result<()> {
        let record = container.snapshot();
        record.state.check_kill(reference, &container.id)?;
        let mut pidfd = container.pidfd.lock().unwrap();
        if pidfd.is_none() {
            // After a daemon restart: reopen, checking that the pid is still the same process.
            if crate::runtime::signal::start_time(record.state.pid) == Some(record.state.pid_start_time) {
                *pidfd = crate::runtime::signal::pidfd_open(record.state.pid);
            }
        }
        let Some(fd) = pidfd.as_ref() else {
            // The process is gone and the watcher is about to record its exit.
            return Err(super::state::not_running(reference, &container.id));
        };
        let sent = crate::runtime::signal::send(fd, signal);
        drop(pidfd);
        container.emit(&self.events, "kill", &[("signal", signal.to_string())]);
        match sent {
            Ok(()) => Ok(()),
            // The process is exiting; the watcher will record it.
            Err(err) if err.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            Err(err) => Err(Error::internal(format!("sending signal {signal} to container {}: {err}", container.id))),
        }
    }

    /// Sends a signal; a SIGKILL to a paused container also thaws it, because a frozen process
    /// cannot die (Docker does the same).
    pub async fn kill_and_thaw(&self, container: &Container, reference: &str, signal: i32) -> Result<()> {
        self.kill(container, reference, signal)?;
        if signal == libc::SIGKILL && container.snapshot().state.status == Status::Paused {
            self.runc.resume(&self.runc_log(container), &container.id).await?;
            // The process may already have died and been recorded as exited.
            container.update(|r| {
                if r.state.status == Status::Paused {
                    r.state.status = Status::Running
                }
            })?;
        }
        Ok(())
    }

    /// Sends a signal for `POST /containers/{id}/kill`. Like Docker, a SIGKILL returns once the
    /// process has exited (waiting at most 10 s), so a following inspect reports it stopped.
    /// Other signals return at once.
    pub async fn kill_and_wait(&self, container: &Container, reference: &str, signal: i32) -> Result<()> {
        let exits = container.exits.load(Ordering::SeqCst);
        self.kill_and_thaw(container, reference, signal).await?;
        if signal == libc::SIGKILL {
            self.wait_exits(container, exits, Some(Duration::from_secs(10))).await;
        }
        Ok(())
    }

    /// Waits until the container has exited at least `after` times; false on timeout.
    async fn wait_exits(&self, container: &Container, after: u64, timeout: Option<Duration>) -> bool {
        let mut changes = container.changes.subscribe();
        let done = async {
            loop {
                if container.exits.load(Ordering::SeqCst) > after || !container.is_running() {
                    return;
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        };
        match timeout {
            Some(limit) => tokio::time::timeout(limit, done).await.is_ok(),
            None => {
                done.await;
                true
            }
        }
    }

    /// Stops a container: the stop signal, `timeout` seconds, then SIGKILL. None for the
    /// timeout means the container's StopTimeout or 10 s; a negative one waits forever.
    pub async fn stop(&self, container: &Container, signal: Option<i32>, timeout: Option<i64>) -> Result<()> {
        let _op = container.op.lock().await;
        self.stop_locked(container, signal, timeout).await
    }

    async fn stop_locked(&self, container: &Container, signal: Option<i32>, timeout: Option<i64>) -> Result<()> {
        let record = container.snapshot();
        if !record.state.status.is_running() {
            return Err(Error::not_modified());
        }
        let signal = match signal {
            Some(signal) => signal,
            None => match record.config.stop_signal.as_deref().filter(|s| !s.is_empty()) {
                Some(name) => crate::runtime::signal::parse(name)?,
                None => libc::SIGTERM,
            },
        };
        let seconds = timeout.or(record.config.stop_timeout).unwrap_or(10);
        let exits = container.exits.load(Ordering::SeqCst);
        if let Err(err) = self.kill(container, &container.id, signal) {
            if err.kind != Kind::Conflict {
                return Err(err);
            }
        }
        let limit = (seconds >= 0).then(|| Duration::from_secs(seconds as u64));
        if self.wait_exits(container, exits, limit).await {
            container.emit(&self.events, "stop", &[]);
            return Ok(());
        }
        tracing::info!(container_id = %container.id, seconds, "container did not stop in time, sending SIGKILL");
        self.kill_and_thaw(container, &container.id, libc::SIGKILL)
            .await
            .or_else(|err| if err.kind == Kind::Conflict { Ok(()) } else { Err(err) })?;
        if self.wait_exits(container, exits, Some(Duration::from_secs(30))).await {
            container.emit(&self.events, "stop", &[]);
            Ok(())
        } else {
            Err(Error::internal(format!("container {} did not exit 30 s after SIGKILL", container.id)))
        }
    }

    pub async fn restart(self: &Arc<Self>, container: &Arc<Container>, signal: Option<i32>, timeout: Option<i64>) -> Result<()> {
        let _op = container.op.lock().await;
        match self.stop_locked(container, signal, timeout).await {
            Ok(()) => {}
            Err(err) if err.kind == Kind::NotModified => {}
            Err(err) => return Err(err),
        }
        let result = self.start_locked(container).await;
        if result.is_ok() {
            container.emit(&self.events, "restart", &[]);
        }
        let engine = self.clone();
        tokio::spawn(async move { engine.refill_spare().await });
        result
    }

    /// Waits for `condition` and returns the exit code then current.
    pub async fn wait(&self, container: &Arc<Container>, condition: WaitCondition) -> i64 {
        let exits_at_start = container.exits.load(Ordering::SeqCst);
        let mut changes = container.changes.subscribe();
        loop {
            let done = match condition {
                WaitCondition::NotRunning => !container.is_running(),
                WaitCondition::NextExit => container.exits.load(Ordering::SeqCst) > exits_at_start,
                WaitCondition::Removed => container.is_removed(),
            };
            if done {
                return container.snapshot().state.exit_code;
            }
            if changes.changed().await.is_err() {
                return container.snapshot().state.exit_code;
            }
        }
    }

    /// Removes a container, killing it first when `force` is set.
    pub async fn remove(&self, container: &Container, force: bool) -> Result<()> {
        let _op = container.op.lock().await;
        if container.is_removed() {
            return Err(Error::no_such_container(&container.id));
        }
        let record = container.snapshot();
        record.state.check_remove(&record.name, force)?;
        if record.state.status.is_running() {
            let exits = container.exits.load(Ordering::SeqCst);
            // A conflict means the process has just ended; its exit is recorded below.
            self.kill_and_thaw(container, &container.id, libc::SIGKILL)
                .await
                .or_else(|err| if err.kind == Kind::Conflict { Ok(()) } else { Err(err) })?;
            if !self.wait_exits(container, exits, Some(Duration::from_secs(30))).await {
                return Err(Error::internal(format!("container {} did not exit after SIGKILL", container.id)));
            }
        }
        overlay::unmount(&container.dir.join("merged"))?;
        // Renaming is one syscall; deleting the files one by one costs milliseconds on a
        // journaling filesystem, so that happens after the reply.
        let trash = self.paths.trash().join(&container.id);
        match std::fs::rename(&container.dir, &trash) {
            Ok(()) => {
                tokio::task::spawn_blocking(move || {
                    if let Err(err) = std::fs::remove_dir_all(&trash) {
                        tracing::warn!(path = %trash.display(), error = %err, "emptying trash");
                    }
                });
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(Error::internal(format!("removing {}: {err}", container.dir.display()))),
        }
        self.forget(&container.id);
        self.execs.forget_container(&container.id);
        container.emit(&self.events, "destroy", &[]);
        container.removed.store(true, Ordering::SeqCst);
        container.changes.send_modify(|generation| *generation += 1);
        tracing::info!(container_id = %container.id, "removed container");
        Ok(())
    }
}

/// Connects to a monitor socket and subscribes; returns once the subscription is in place.
pub async fn subscribe(socket: &PathBuf, subscription: Subscription) -> Result<UnixStream> {
    let mut stream = UnixStream::connect(socket).await.context(format!("connecting to monitor {}", socket.display()))?;
    let payload = serde_json::to_vec(&subscription)?;
    stream.write_all(&protocol::encode(to_monitor::SUBSCRIBE, &payload)).await.context("subscribing to monitor")?;
    match protocol::read_frame_async(&mut stream).await.context("reading from monitor")? {
        Some((from_monitor::SUBSCRIBED, _)) => Ok(stream),
        Some((kind, _)) => Err(Error::internal(format!("monitor sent frame {kind} before the subscription ack"))),
        None => Err(Error::internal("monitor closed the connection before acknowledging")),
    }
}
