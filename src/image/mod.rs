//! The local image store: unpacked layers, image configs and repository tags.
//!
//! Layout under `<root>/image`: `layers/<diff id hex>/` contains one unpacked layer,
//! `configs/<image id hex>.json` one image record, `repositories.json` the tag map.

pub mod import;
pub mod overlay;
pub mod reference;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// The parts of an image config that containers inherit (Docker's `Config` in image inspect).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageRunConfig {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
}

/// One image: its id (`sha256:` + hex of the config digest), layers bottom first, and config.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: String,
    pub created: String,
    pub comment: String,
    pub architecture: String,
    pub os: String,
    pub config: ImageRunConfig,
    /// Layer digests (`sha256:...` of the uncompressed tar), bottom layer first.
    pub diff_ids: Vec<String>,
    pub size: u64,
}

pub struct ImageStore {
    root: PathBuf,
    /// Serialises writes of repositories.json and image records.
    lock: Mutex<()>,
}

impl ImageStore {
    pub fn open(root: &Path) -> Result<Self> {
        for dir in ["layers", "configs", "tmp"] {
            std::fs::create_dir_all(root.join(dir)).context(format!("creating {}", root.join(dir).display()))?;
        }
        overlay::create_init_layer(&root.join("init"))?;
        Ok(ImageStore { root: root.to_path_buf(), lock: Mutex::new(()) })
    }

    pub fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.root.join("layers").join(diff_id.trim_start_matches("sha256:"))
    }

    pub fn init_layer(&self) -> PathBuf {
        self.root.join("init")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn repositories_path(&self) -> PathBuf {
        self.root.join("repositories.json")
    }

    pub fn repositories(&self) -> BTreeMap<String, String> {
        crate::store::read_json(&self.repositories_path()).unwrap_or_default()
    }

    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        let mut images = Vec::new();
        for entry in std::fs::read_dir(self.root.join("configs")).context("listing image configs")? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                images.push(crate::store::read_json(&path)?);
            }
        }
        Ok(images)
    }

    pub fn get(&self, id: &str) -> Result<ImageRecord> {
        let path = self.root.join("configs").join(format!("{}.json", id.trim_start_matches("sha256:")));
        crate::store::read_json(&path)
    }

    /// Tags pointing at `id`, as `name:tag` strings.
    pub fn tags_of(&self, id: &str) -> Vec<String> {
        self.repositories().into_iter().filter(|(_, v)| v == id).map(|(k, _)| k).collect()
    }

    /// Resolves a reference as Docker does: a tag (`busybox`, `busybox:1`), a full or short
    /// image id with or without `sha256:`.
    pub fn resolve(&self, reference: &str) -> Result<ImageRecord> {
        let repositories = self.repositories();
        if let Ok(normalised) = reference::normalise(reference) {
            if let Some(id) = repositories.get(&normalised) {
                return self.get(id);
            }
        }
        let hex = reference.trim_start_matches("sha256:");
        if hex.len() >= 4 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            let matches: Vec<ImageRecord> = self.list()?.into_iter().filter(|i| i.id[7..].starts_with(hex)).collect();
            if matches.len() == 1 {
                return Ok(matches.into_iter().next().unwrap());
            }
        }
        Err(Error::no_such_image(&reference::display(reference)))
    }

    /// Stores an image record and points `tag` (already normalised) at it.
    pub fn add(&self, record: &ImageRecord, tag: Option<&str>) -> Result<()> {
        let _guard = self.lock.lock().unwrap();
        let path = self.root.join("configs").join(format!("{}.json", &record.id[7..]));
        crate::store::write_json(&path, record)?;
        if let Some(tag) = tag {
            let mut repositories = self.repositories();
            repositories.insert(tag.to_string(), record.id.clone());
            crate::store::write_json(&self.repositories_path(), &repositories)?;
        }
        Ok(())
    }

    /// Points `tag` (already normalised) at an existing image.
    pub fn tag(&self, id: &str, tag: &str) -> Result<()> {
        let _guard = self.lock.lock().unwrap();
        let mut repositories = self.repositories();
        repositories.insert(tag.to_string(), id.to_string());
        crate::store::write_json(&self.repositories_path(), &repositories)
    }

    /// Removes one tag; returns true if it existed.
    pub fn untag(&self, tag: &str) -> Result<bool> {
        let _guard = self.lock.lock().unwrap();
        let mut repositories = self.repositories();
        let existed = repositories.remove(tag).is_some();
        crate::store::write_json(&self.repositories_path(), &repositories)?;
        Ok(existed)
    }

    /// Deletes an image record and the layers no other image uses.
    pub fn delete(&self, image: &ImageRecord) -> Result<()> {
        let _guard = self.lock.lock().unwrap();
        let mut repositories = self.repositories();
        repositories.retain(|_, id| id != &image.id);
        crate::store::write_json(&self.repositories_path(), &repositories)?;
        let path = self.root.join("configs").join(format!("{}.json", &image.id[7..]));
        std::fs::remove_file(&path).context(format!("removing {}", path.display()))?;
        let others = self.list()?;
        for diff_id in &image.diff_ids {
            if !others.iter().any(|other| other.diff_ids.contains(diff_id)) {
                let dir = self.layer_dir(diff_id);
                std::fs::remove_dir_all(&dir).context(format!("removing layer {}", dir.display()))?;
            }
        }
        Ok(())
    }

    /// Directories of an image's layers, top layer first (the order overlayfs's lowerdir wants).
    pub fn layer_dirs_top_first(&self, image: &ImageRecord) -> Vec<PathBuf> {
        image.diff_ids.iter().rev().map(|d| self.layer_dir(d)).collect()
    }
}
