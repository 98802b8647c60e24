//! Lifecycle rules: the container index (ids, names, prefixes), the state machine, waits and
//! exits. API handlers call only this layer; it calls `runtime`, `monitor`, `store` and
//! `image`. Docker's names for states live here and in `api`; runc's live below.

pub mod attach;
pub mod copy;
pub mod create;
pub mod events;
pub mod exec;
pub mod images;
pub mod ops;
pub mod lifecycle;
pub mod logs;
pub mod monitors;
pub mod restore;
pub mod rootfs;
pub mod spec;
pub mod stats;
pub mod state;

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::DaemonSettings;
use crate::error::{Context, Error, Result};
use crate::image::ImageStore;
use crate::runtime::Runc;
use spec::{ContainerConfig, HostConfig};
use state::StateRecord;

/// Everything berth stores about a container, in `containers/<id>/container.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// With Docker's leading slash: `/web`.
    pub name: String,
    pub created: DateTime<Utc>,
    /// The image reference as the client gave it.
    pub image: String,
    pub image_id: String,
    /// The process that runs: `path` and `args` as inspect shows them.
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub state: StateRecord,
}

/// A container known to the daemon.
pub struct Container {
    pub id: String,
    pub dir: PathBuf,
    record: Mutex<ContainerRecord>,
    /// Serialises start, stop, restart, remove and access to a stopped container's files.
    op: Arc<tokio::sync::Mutex<()>>,
    /// Bumped on every state change; waiters watch it.
    changes: tokio::sync::watch::Sender<u64>,
    /// Number of exits seen since the daemon started, for `wait?condition=next-exit`.
    exits: AtomicU64,
    removed: AtomicBool,
    /// A pidfd of the running init process, so signals never reach a recycled pid.
    pidfd: Mutex<Option<OwnedFd>>,
    /// Attach requests that arrived before the container started.
    pending_attach: Mutex<Vec<attach::PendingAttach>>,
}

impl Container {
    fn new(dir: PathBuf, record: ContainerRecord) -> Arc<Self> {
        Arc::new(Container {
            id: record.id.clone(),
            dir,
            record: Mutex::new(record),
            op: Arc::new(tokio::sync::Mutex::new(())),
            changes: tokio::sync::watch::Sender::new(0),
            exits: AtomicU64::new(0),
            removed: AtomicBool::new(false),
            pidfd: Mutex::new(None),
            pending_attach: Mutex::new(Vec::new()),
        })
    }

    /// Returns a copy of the current record.
    pub fn snapshot(&self) -> ContainerRecord {
        self.record.lock().unwrap().clone()
    }

    pub fn name(&self) -> String {
        self.record.lock().unwrap().name.clone()
    }

    pub fn is_running(&self) -> bool {
        self.record.lock().unwrap().state.status.is_running()
    }

    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::SeqCst)
    }

    /// Changes the record, writes it to disk and wakes waiters.
    fn update(&self, change: impl FnOnce(&mut ContainerRecord)) -> Result<()> {
        // The lock is held through the write, so concurrent updates reach the disk in the
        // order they were made and never share the temporary file.
        let result = {
            let mut record = self.record.lock().unwrap();
            change(&mut record);
            let bytes = serde_json::to_vec_pretty(&*record)?;
            crate::store::write_atomic(&self.dir.join("container.json"), &bytes)
        };
        self.changes.send_modify(|generation| *generation += 1);
        result
    }

    /// Publishes a container event with the container's name, image and labels.
    pub fn emit(&self, events: &events::EventBus, action: &str, attributes: &[(&str, String)]) {
        let record = self.record.lock().unwrap();
        let labels = record.config.labels.clone().unwrap_or_default();
        events.container(action, &self.id, &record.name, &record.image, &labels, attributes);
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}-json.log", self.id))
    }
}

/// Paths and tools the engine works with.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub exec_root: PathBuf,
}

impl Paths {
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }
    /// Removed containers' directories, deleted in the background.
    pub fn trash(&self) -> PathBuf {
        self.root.join("trash")
    }
    pub fn monitor_socket(&self, id: &str) -> PathBuf {
        self.exec_root.join("m").join(format!("{}.sock", &id[..12]))
    }
}

pub struct Engine {
    pub paths: Paths,
    pub runc: Runc,
    pub settings: DaemonSettings,
    pub images: ImageStore,
    containers: RwLock<HashMap<String, Arc<Container>>>,
    /// The open-file limit given to containers: Docker's 1048576, clamped to what we hold.
    pub(crate) nofile_limit: u64,
    pub events: events::EventBus,
    pub execs: exec::ExecTable,
    /// A monitor process started ahead of time, waiting for its config.
    spare_monitor: tokio::sync::Mutex<Option<monitors::SpareMonitor>>,
}

impl Engine {
    pub fn new(settings: &DaemonSettings) -> Result<Arc<Self>> {
        let paths = Paths { root: settings.root.clone(), exec_root: settings.exec_root.clone() };
        // Whatever is in the trash belongs to containers removed before a crash or restart.
        let _ = std::fs::remove_dir_all(paths.trash());
        for dir in [paths.containers(), paths.trash(), paths.exec_root.join("runc"), paths.exec_root.join("m")] {
            std::fs::create_dir_all(&dir).context(format!("creating {}", dir.display()))?;
        }
        let images = ImageStore::open(&paths.root.join("image"))?;
        let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
        let engine = Arc::new(Engine {
            runc: Runc { binary: settings.runtime.clone(), root: paths.exec_root.join("runc") },
            paths,
            settings: settings.clone(),
            images,
            containers: RwLock::new(HashMap::new()),
            nofile_limit: hard.min(1_048_576),
            spare_monitor: tokio::sync::Mutex::new(None),
            events: events::EventBus::default(),
            execs: exec::ExecTable::default(),
        });
        Ok(engine)
    }

    /// Finds a container by full id, then exact name, then unique id prefix.
    pub fn resolve(&self, reference: &str) -> Result<Arc<Container>> {
        let containers = self.containers.read().unwrap();
        if let Some(container) = containers.get(reference) {
            return Ok(container.clone());
        }
        let name = if reference.starts_with('/') { reference.to_string() } else { format!("/{reference}") };
        if let Some(container) = containers.values().find(|c| c.name() == name) {
            return Ok(container.clone());
        }
        if reference.is_empty() {
            return Err(Error::no_such_container(reference));
        }
        let mut matches = containers.values().filter(|c| c.id.starts_with(reference));
        match (matches.next(), matches.next()) {
            (Some(container), None) => Ok(container.clone()),
            (Some(_), Some(_)) => Err(Error::invalid(format!(
                "multiple IDs found with provided prefix: {reference}"
            ))),
            _ => Err(Error::no_such_container(reference)),
        }
    }

    pub fn all(&self) -> Vec<Arc<Container>> {
        self.containers.read().unwrap().values().cloned().collect()
    }

    fn insert(&self, container: Arc<Container>) {
        self.containers.write().unwrap().insert(container.id.clone(), container);
    }

    fn forget(&self, id: &str) {
        self.containers.write().unwrap().remove(id);
    }

    fn runc_log(&self, container: &Container) -> PathBuf {
        container.dir.join("runc-ops.log")
    }
}

/// Checks a container name against Docker's pattern `/?[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut chars = bare.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = bare.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if first_ok && rest_ok {
        Ok(format!("/{bare}"))
    } else {
        Err(Error::invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

pub fn read_record(dir: &Path) -> Result<ContainerRecord> {
    crate::store::read_json(&dir.join("container.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_rules() {
        assert_eq!(validate_name("web").unwrap(), "/web");
        assert_eq!(validate_name("/web-1.a_b").unwrap(), "/web-1.a_b");
        for bad in ["", "a", "-web", "we b", "web/x", "/"] {
            let err = validate_name(bad).unwrap_err();
            assert!(err.message.starts_with("Invalid container name"), "{bad}: {}", err.message);
        }
    }
}
