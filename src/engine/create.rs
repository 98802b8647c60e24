//! `POST /containers/create`: validation, merging with the image config, and the record.

use std::path::PathBuf;

use chrono::Utc;

use super::spec::{CreateRequest, HostConfig};
use super::state::StateRecord;
use super::{validate_name, Container, ContainerRecord, Engine};
use crate::error::{Context, Error, Result};
use crate::image::ImageRecord;
use crate::runtime::bundle::BindMount;

/// Smallest memory limit Docker accepts (6 MiB).
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

pub struct Created {
    pub id: String,
    pub warnings: Vec<String>,
}

impl Engine {
    pub fn create(&self, request: CreateRequest, name: Option<&str>) -> Result<Created> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(name) => validate_name(name)?,
            None => self.unused_name(),
        };
        let mut config = request.config;
        let host_config = request.host_config.unwrap_or_default();
        if config.image.is_empty() {
            return Err(Error::invalid("config cannot be empty in order to create a container"));
        }
        let image = self.images.resolve(&config.image)?;
        validate_host_config(&host_config)?;
        let (path, args) = command_line(&config.entrypoint, &config.cmd, &image)?;
        if config.tty {
            return Err(Error::not_implemented(
                "Tty is not supported yet: berth runs containers without a terminal; run without -t (Tty false)",
            ));
        }
        if config.stop_signal.as_deref().is_some_and(|s| !s.is_empty()) {
            crate::runtime::signal::parse(config.stop_signal.as_deref().unwrap())?;
        }
        if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
            return Err(Error::invalid(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                config.working_dir
            )));
        }
        let env = merge_env(image.config.env.as_deref().unwrap_or(&[]), config.env.as_deref().unwrap_or(&[]));
        // Docker shows null, not [], when neither the image nor the request sets a variable.
        config.env = (!env.is_empty()).then_some(env);
        if config.working_dir.is_empty() {
            config.working_dir = image.config.working_dir.clone();
        }
        if config.user.is_empty() {
            config.user = image.config.user.clone();
        }
        if config.cmd.is_none() || config.cmd.as_ref().is_some_and(|c| c.is_empty()) {
            if config.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
                config.cmd = image.config.cmd.clone();
            }
        }
        if config.entrypoint.as_ref().is_none_or(|e| e.is_empty()) {
            config.entrypoint = image.config.entrypoint.clone();
        } else if config.entrypoint.as_ref().is_some_and(|e| e.iter().all(String::is_empty)) {
            // `--entrypoint ""` clears the entrypoint; inspect shows it as null, as Docker does.
            config.entrypoint = None;
        }
        let mut labels = image.config.labels.clone().unwrap_or_default();
        labels.extend(config.labels.take().unwrap_or_default());
        config.labels = Some(labels);

        let id = new_id();
        if config.hostname.is_empty() {
            config.hostname = id[..12].to_string();
        }
        let record = ContainerRecord {
            id: id.clone(),
            name: name.clone(),
            created: Utc::now(),
            image: config.image.clone(),
            image_id: image.id.clone(),
            path,
            args,
            config,
            host_config,
            state: StateRecord::default(),
        };

        // Check the name and insert under one write lock, so two creates cannot share a name.
        let mut containers = self.containers.write().unwrap();
        if let Some(other) = containers.values().find(|c| c.name() == name) {
            return Err(Error::conflict(format!(
                "Conflict. The container name \"{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.id
            )));
        }
        let dir = self.paths.containers().join(&id);
        std::fs::create_dir_all(&dir).context(format!("creating {}", dir.display()))?;
        if let Err(err) = crate::store::write_json(&dir.join("container.json"), &record) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(err);
        }
        let container = Container::new(dir, record);
        containers.insert(id.clone(), container.clone());
        drop(containers);
        container.emit(&self.events, "create", &[]);
        tracing::info!(container_id = %id, name = %name, "created container");
        Ok(Created { id, warnings: Vec::new() })
    }

}

impl Engine {
    /// Picks a generated name that no container has, adding a number only after a collision,
    /// as Docker does.
    fn unused_name(&self) -> String {
        let taken = |name: &str| self.all().iter().any(|c| c.name() == name);
        let base = format!("/{}", generate_name());
        if !taken(&base) {
            return base;
        }
        (1..).map(|n| format!("{base}{n}")).find(|name| !taken(name)).unwrap_or(base)
    }
}

/// Resolves what runs: the entrypoint (given or the image's) followed by the command (given,
/// or the image's when no entrypoint was given). Returns `(path, args)` as inspect shows them.
pub fn command_line(
    entrypoint: &Option<Vec<String>>,
    cmd: &Option<Vec<String>>,
    image: &ImageRecord,
) -> Result<(String, Vec<String>)> {
    let user_entrypoint = entrypoint.as_ref().filter(|e| !e.is_empty());
    let user_cmd = cmd.as_ref().filter(|c| !c.is_empty());
    let mut argv: Vec<String> = Vec::new();
    match user_entrypoint {
        Some(entrypoint) => {
            // `--entrypoint ""` arrives as [""]: it clears the image entrypoint.
            argv.extend(entrypoint.iter().filter(|s| !s.is_empty()).cloned());
            argv.extend(user_cmd.cloned().unwrap_or_default());
        }
        None => {
            argv.extend(image.config.entrypoint.clone().unwrap_or_default());
            argv.extend(user_cmd.cloned().or_else(|| image.config.cmd.clone()).unwrap_or_default());
        }
    }
    if argv.is_empty() {
        return Err(Error::invalid("No command specified"));
    }
    let path = argv.remove(0);
    Ok((path, argv))
}

/// Merges the image's environment with the request's; the request wins for the same key.
pub fn merge_env(image: &[String], request: &[String]) -> Vec<String> {
    let key = |entry: &str| entry.split('=').next().unwrap_or("").to_string();
    let mut merged: Vec<String> = image.to_vec();
    for entry in request {
        match merged.iter_mut().find(|e| key(e) == key(entry)) {
            Some(existing) => *existing = entry.clone(),
            None => merged.push(entry.clone()),
        }
    }
    merged
}

fn validate_host_config(host: &HostConfig) -> Result<()> {
    if host.memory != 0 && host.memory < MIN_MEMORY {
        return Err(Error::invalid("Minimum memory limit allowed is 6MB"));
    }
    if host.nano_cpus < 0 {
        return Err(Error::invalid("Range of CPUs is from 0.01 to the number of CPUs available"));
    }
    match host.network_mode.as_str() {
        "" | "default" | "bridge" | "none" | "host" => {}
        other => {
            return Err(Error::not_implemented(format!(
                "network mode {other} is not supported: berth offers none, host and the default (a private network namespace)"
            )))
        }
    }
    if host.privileged {
        return Err(Error::not_implemented("privileged containers are not supported yet"));
    }
    if !host.restart_policy.name.is_empty() && host.restart_policy.name != "no" {
        return Err(Error::not_implemented(format!(
            "restart policy {} is not supported yet: only \"no\" is",
            host.restart_policy.name
        )));
    }
    if let Some(mounts) = host.extra.get("Mounts").and_then(|m| m.as_array()) {
        if !mounts.is_empty() {
            return Err(Error::not_implemented("HostConfig.Mounts is not supported yet: use Binds with a host path"));
        }
    }
    for bind in host.binds.iter().flatten() {
        parse_bind(bind)?;
    }
    Ok(())
}

/// Parses a `Binds` entry `src:dst[:opts]`. Only host paths are served; named volumes are not.
pub fn parse_bind(spec: &str) -> Result<BindMount> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, options) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(Error::invalid(format!("invalid volume specification: '{spec}'"))),
    };
    if !destination.starts_with('/') {
        return Err(Error::invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"bind\": invalid mount path: '{destination}' mount path must be absolute"
        )));
    }
    if !source.starts_with('/') {
        return Err(Error::not_implemented(format!(
            "named volumes are not supported yet ({source} in '{spec}'): bind a host path instead"
        )));
    }
    let mut read_only = false;
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" => read_only = true,
            "rw" | "z" | "Z" | "rprivate" | "private" | "rslave" | "slave" | "rshared" | "shared" | "nocopy" => {}
            other => return Err(Error::invalid(format!("invalid mode: {other}"))),
        }
    }
    if !std::path::Path::new(source).exists() {
        return Err(Error::invalid(format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {source}"
        )));
    }
    Ok(BindMount { source: PathBuf::from(source), destination: destination.to_string(), read_only })
}

fn new_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Generates a name like Docker's `adjective_surname`.
fn generate_name() -> String {
    const LEFT: [&str; 12] = [
        "brave", "calm", "eager", "fervent", "gentle", "jolly", "keen", "lucid", "nifty", "quirky", "serene", "witty",
    ];
    const RIGHT: [&str; 12] = [
        "babbage", "curie", "darwin", "euler", "gauss", "hopper", "knuth", "lovelace", "noether", "ritchie", "turing", "wing",
    ];
    let pick = rand::random::<usize>();
    format!("{}_{}", LEFT[pick % 12], RIGHT[(pick / 12) % 12])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{ImageRecord, ImageRunConfig};

    fn image(entrypoint: Option<Vec<&str>>, cmd: Option<Vec<&str>>) -> ImageRecord {
        let owned = |v: Option<Vec<&str>>| v.map(|v| v.into_iter().map(String::from).collect());
        ImageRecord {
            id: "sha256:00".into(),
            created: String::new(),
            comment: String::new(),
            architecture: "amd64".into(),
            os: "linux".into(),
            config: ImageRunConfig { entrypoint: owned(entrypoint), cmd: owned(cmd), ..Default::default() },
            diff_ids: vec![],
            size: 0,
        }
    }

    fn strings(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn command_line_merges_like_docker() {
        let img = image(Some(vec!["/entry"]), Some(vec!["default"]));
        assert_eq!(command_line(&None, &None, &img).unwrap(), ("/entry".into(), vec!["default".into()]));
        assert_eq!(command_line(&None, &strings(&["x"]), &img).unwrap(), ("/entry".into(), vec!["x".into()]));
        assert_eq!(command_line(&strings(&["/other"]), &None, &img).unwrap(), ("/other".into(), vec![]));
        assert_eq!(command_line(&strings(&[""]), &strings(&["sh"]), &img).unwrap(), ("sh".into(), vec![]));
    }

    #[test]
    fn command_line_without_any_command_is_invalid() {
        let err = command_line(&None, &None, &image(None, None)).unwrap_err();
        assert_eq!(err.message, "No command specified");
    }

    #[test]
    fn env_request_overrides_image() {
        let merged = merge_env(&["PATH=/bin".into(), "A=1".into()], &["A=2".into(), "B=3".into()]);
        assert_eq!(merged, vec!["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn binds_are_parsed_and_checked() {
        let bind = parse_bind("/tmp:/data:ro").unwrap();
        assert_eq!(bind.destination, "/data");
        assert!(bind.read_only);
        assert_eq!(parse_bind("vol:/data").unwrap_err().kind, crate::error::Kind::NotImplemented);
        assert_eq!(parse_bind("/tmp:data").unwrap_err().kind, crate::error::Kind::InvalidArgument);
        assert_eq!(parse_bind("/tmp:/d:bogus").unwrap_err().message, "invalid mode: bogus");
    }
}
