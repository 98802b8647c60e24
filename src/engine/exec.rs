//! Exec: a process started in a running container with `runc exec`, under a monitor of its
//! own (so its exit code survives like a container's), with the same socket protocol.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use super::state::Status;
use super::{Container, Engine};
use crate::error::{Context, Error, Result};
use crate::monitor::protocol::{self, from_monitor, to_monitor, ExitRecord, StartFailed, Started, Subscription};
use crate::monitor::MonitorConfig;

/// The body of `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecConfig {
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub attach_stdin: bool,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub attach_stdout: bool,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub attach_stderr: bool,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub tty: bool,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub privileged: bool,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub user: String,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub working_dir: String,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    pub detach_keys: String,
}

#[derive(Debug, Clone, Default)]
pub struct ExecState {
    pub started: bool,
    pub running: bool,
    pub pid: i32,
    pub exit_code: Option<i64>,
}

pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    state: Mutex<ExecState>,
}

impl Exec {
    pub fn state(&self) -> ExecState {
        self.state.lock().unwrap().clone()
    }

    /// Records the process state that a monitor frame reports. Returns the text to show the
    /// client for a start failure.
    pub fn record_frame(&self, kind: u8, payload: &[u8]) -> Option<String> {
        let mut state = self.state.lock().unwrap();
        match kind {
            from_monitor::STARTED => {
                if let Ok(started) = serde_json::from_slice::<Started>(payload) {
                    state.pid = started.pid;
                    state.running = true;
                }
                None
            }
            from_monitor::START_FAILED => {
                let failed: StartFailed = serde_json::from_slice(payload).ok()?;
                state.running = false;
                state.exit_code = Some(crate::runtime::classify(&failed.message).1);
                Some(format!("OCI runtime exec failed: {}\r\n", failed.message))
            }
            from_monitor::EXITED => {
                if let Ok(record) = serde_json::from_slice::<ExitRecord>(payload) {
                    state.running = false;
                    if record.start_error.is_none() {
                        state.exit_code = Some(record.exit_code);
                    }
                }
                None
            }
            _ => None,
        }
    }
}

/// The exec instances of the daemon, by id.
#[derive(Default)]
pub struct ExecTable {
    execs: Mutex<HashMap<String, Arc<Exec>>>,
}

impl ExecTable {
    pub fn get(&self, id: &str) -> Result<Arc<Exec>> {
        self.execs
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("No such exec instance: {id}")))
    }

    pub fn of_container(&self, container_id: &str) -> Vec<String> {
        self.execs.lock().unwrap().values().filter(|e| e.container_id == container_id).map(|e| e.id.clone()).collect()
    }

    pub fn forget_container(&self, container_id: &str) {
        self.execs.lock().unwrap().retain(|_, e| e.container_id != container_id);
    }
}

impl Engine {
    pub fn exec_create(&self, container: &Container, config: ExecConfig) -> Result<String> {
        let state = container.snapshot().state;
        if state.status == Status::Paused {
            return Err(Error::conflict(format!("Container {} is paused, unpause the container before exec", container.id)));
        }
        if !state.status.is_running() {
            return Err(Error::conflict(format!("Container {} is not running", container.id)));
        }
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(Error::invalid("No exec command specified"));
        }
        if config.tty {
            return Err(Error::not_implemented("exec with Tty is not supported yet: berth runs exec processes without a terminal; run docker exec without -t"));
        }
        if config.privileged {
            return Err(Error::not_implemented("privileged exec is not supported yet"));
        }
        let id = hex::encode(rand::random::<[u8; 32]>());
        let exec = Arc::new(Exec { id: id.clone(), container_id: container.id.clone(), config, state: Mutex::new(ExecState::default()) });
        self.execs.execs.lock().unwrap().insert(id.clone(), exec);
        container.emit(&self.events, &format!("exec_create: {}", self.exec_command(&id)), &[("execID", id.clone())]);
        Ok(id)
    }

    fn exec_command(&self, id: &str) -> String {
        self.execs.get(id).map(|e| e.config.cmd.clone().unwrap_or_default().join(" ")).unwrap_or_default()
    }

    /// Starts an exec and returns its monitor connection, subscribed to the streams the exec
    /// attaches. The STARTED, START_FAILED and EXITED frames arrive on it too: pass each to
    /// `Exec::record_frame`.
    pub async fn exec_start(self: &Arc<Self>, exec: &Arc<Exec>) -> Result<UnixStream> {
        {
            let mut state = exec.state.lock().unwrap();
            if state.started {
                return Err(Error::conflict(format!("Error: Exec command {} is already running", exec.id)));
            }
            state.started = true;
            // Docker reports an exec as running from its start until its exit.
            state.running = true;
        }
        let container = self.resolve(&exec.container_id)?;
        let status = container.snapshot().state.status;
        if status == Status::Paused {
            return Err(Error::conflict(format!("Container {} is paused, unpause the container before exec", container.id)));
        }
        if !status.is_running() {
            return Err(Error::conflict(format!("Container {} is not running", container.id)));
        }
        let config_path = self.write_exec_files(&container, exec)?;
        self.launch_monitor(&config_path).await?;
        let socket = self.paths.monitor_socket(&exec.id);
        let subscription = Subscription { stdout: exec.config.attach_stdout, stderr: exec.config.attach_stderr };
        let mut stream = super::lifecycle::subscribe(&socket, subscription).await?;
        stream.write_all(&protocol::encode(to_monitor::START, b"")).await.context("sending start to exec monitor")?;
        container.emit(&self.events, &format!("exec_start: {}", exec.config.cmd.clone().unwrap_or_default().join(" ")), &[("execID", exec.id.clone())]);
        let engine = self.clone();
        tokio::spawn(async move { engine.refill_spare().await });
        Ok(stream)
    }

    /// Writes the OCI process file and the monitor config of an exec; returns the config path.
    fn write_exec_files(&self, container: &Container, exec: &Exec) -> Result<std::path::PathBuf> {
        let record = container.snapshot();
        let dir = container.dir.join("execs").join(&exec.id);
        std::fs::create_dir_all(&dir).context(format!("creating {}", dir.display()))?;
        // The container's own environment comes from its bundle, as the init process got it.
        let bundle: serde_json::Value = crate::store::read_json(&container.dir.join("bundle/config.json"))?;
        let base_env: Vec<String> = serde_json::from_value(bundle["process"]["env"].clone()).unwrap_or_default();
        let env = super::create::merge_env(&base_env, exec.config.env.as_deref().unwrap_or(&[]));
        let merged = container.dir.join("merged");
        let passwd = crate::archive::read_container_file(&merged, "/etc/passwd");
        let group = crate::archive::read_container_file(&merged, "/etc/group");
        let user_spec = if exec.config.user.is_empty() { &record.config.user } else { &exec.config.user };
        let user = crate::runtime::user::resolve(user_spec, &passwd, &group)?;
        let cwd = [&exec.config.working_dir, &record.config.working_dir]
            .into_iter()
            .find(|d| !d.is_empty())
            .cloned()
            .unwrap_or_else(|| "/".into());
        let process = crate::runtime::bundle::process(exec.config.cmd.clone().unwrap_or_default(), env, cwd, &user, false, self.nofile_limit)?;
        let process_path = dir.join("process.json");
        crate::store::write_regenerated(&process_path, &serde_json::to_vec(&process)?)?;
        let config = MonitorConfig {
            container_id: container.id.clone(),
            bundle: dir.clone(),
            exec_process: Some(process_path),
            runc_binary: self.runc.binary.clone(),
            runc_root: self.runc.root.clone(),
            socket: self.paths.monitor_socket(&exec.id),
            log_path: None,
            log_max_size: 0,
            log_max_files: 1,
            exit_path: dir.join("exit.json"),
            open_stdin: exec.config.attach_stdin,
            rootfs_mount: None,
        };
        let config_path = dir.join("monitor.json");
        crate::store::write_regenerated(&config_path, &serde_json::to_vec(&config)?)?;
        Ok(config_path)
    }

    /// Follows a detached exec's monitor connection, recording its state until it exits.
    pub fn follow_detached(&self, exec: Arc<Exec>, mut stream: UnixStream) {
        tokio::spawn(async move {
            while let Ok(Some((kind, payload))) = protocol::read_frame_async(&mut stream).await {
                exec.record_frame(kind, &payload);
                if kind == from_monitor::EXITED {
                    break;
                }
            }
        });
    }
}
