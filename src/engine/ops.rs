//! Operations on a container that do not change whether its process exists: pause, unpause,
//! rename, top, update, and pruning stopped containers.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::state::Status;
use super::{validate_name, Container, Engine};
use crate::error::{Error, Result};

/// `GET /containers/{id}/top`: column titles and one row per process.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// Resource changes of `POST /containers/{id}/update`; None leaves a value as it is.
#[derive(Debug, Default, Clone)]
pub struct ResourceUpdate {
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub pids_limit: Option<i64>,
    pub restart_policy: Option<String>,
}

impl Engine {
    pub async fn pause(&self, container: &Container) -> Result<()> {
        let _op = container.op.lock().await;
        let state = container.snapshot().state;
        match state.status {
            Status::Paused => return Err(Error::conflict(format!("Container {} is already paused", container.id))),
            Status::Running => {}
            _ => return Err(Error::conflict(format!("Container {} is not running", container.id))),
        }
        self.runc.pause(&self.runc_log(container), &container.id).await?;
        container.update(|r| {
            if r.state.status == Status::Running {
                r.state.status = Status::Paused
            }
        })?;
        container.emit(&self.events, "pause", &[]);
        Ok(())
    }

    pub async fn unpause(&self, container: &Container) -> Result<()> {
        let _op = container.op.lock().await;
        if container.snapshot().state.status != Status::Paused {
            return Err(Error::conflict(format!("Container {} is not paused", container.id)));
        }
        self.runc.resume(&self.runc_log(container), &container.id).await?;
        container.update(|r| {
            if r.state.status == Status::Paused {
                r.state.status = Status::Running
            }
        })?;
        container.emit(&self.events, "unpause", &[]);
        Ok(())
    }

    pub fn rename(&self, container: &Container, new_name: &str) -> Result<()> {
        if new_name.is_empty() {
            return Err(Error::invalid("Neither old nor new names may be empty"));
        }
        let allocating = |err: Error| Error::new(err.kind, format!("Error when allocating new name: {}", err.message));
        let new_name = validate_name(new_name).map_err(|_| {
            allocating(Error::invalid(format!(
                "Invalid container name (/{}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                new_name.trim_start_matches('/')
            )))
        })?;
        let old_name = container.name();
        if old_name == new_name {
            return Err(Error::invalid(format!("Renaming a container with the same name as its current name")));
        }
        // Hold the index lock so that a concurrent create cannot take the same name.
        let containers = self.containers.write().unwrap();
        if let Some(other) = containers.values().find(|c| c.id != container.id && c.name() == new_name) {
            return Err(allocating(Error::conflict(format!(
                "Conflict. The container name \"{new_name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.id
            ))));
        }
        container.update(|r| r.name = new_name.clone())?;
        drop(containers);
        container.emit(&self.events, "rename", &[("oldName", old_name)]);
        Ok(())
    }

    /// Runs the host's `ps` with `ps_args` and keeps the rows of the container's processes,
    /// as Docker does (moby daemon/top_unix.go).
    pub async fn top(&self, container: &Container, ps_args: &str) -> Result<Top> {
        if !container.is_running() {
            return Err(Error::conflict(format!("Container {} is not running", container.id)));
        }
        let pids = self.runc.ps(&self.runc_log(container), &container.id).await?;
        let args: Vec<&str> = if ps_args.is_empty() { vec!["-ef"] } else { ps_args.split_whitespace().collect() };
        let output = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|err| Error::internal(format!("running ps: {err}")))?;
        if !output.status.success() {
            return Err(Error::internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let top = parse_ps(&String::from_utf8_lossy(&output.stdout), &pids)?;
        container.emit(&self.events, "top", &[]);
        Ok(top)
    }

    pub async fn update(&self, container: &Container, update: ResourceUpdate) -> Result<()> {
        let _op = container.op.lock().await;
        if let Some(policy) = update.restart_policy.as_deref() {
            if !policy.is_empty() && policy != "no" {
                return Err(Error::not_implemented(format!("restart policy {policy} is not supported yet: only \"no\" is")));
            }
        }
        if update.memory.is_some_and(|m| m != 0 && m < 6 * 1024 * 1024) {
            return Err(Error::invalid("Minimum memory limit allowed is 6MB"));
        }
        if update.nano_cpus.is_some_and(|n| n > 0) && (update.cpu_quota.is_some_and(|q| q > 0) || update.cpu_period.is_some_and(|p| p > 0)) {
            return Err(Error::invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set"));
        }
        let mut resources = serde_json::Map::new();
        if let Some(memory) = update.memory.filter(|m| *m > 0) {
            resources.insert("memory".into(), serde_json::json!({"limit": memory}));
        }
        let mut cpu = serde_json::Map::new();
        if let Some(nano) = update.nano_cpus.filter(|n| *n > 0) {
            cpu.insert("period".into(), 100_000.into());
            cpu.insert("quota".into(), (nano * 100_000 / 1_000_000_000).into());
        }
        if let Some(quota) = update.cpu_quota.filter(|q| *q != 0) {
            cpu.insert("quota".into(), quota.into());
        }
        if let Some(period) = update.cpu_period.filter(|p| *p > 0) {
            cpu.insert("period".into(), period.into());
        }
        if let Some(shares) = update.cpu_shares.filter(|s| *s > 0) {
            cpu.insert("shares".into(), shares.into());
        }
        if !cpu.is_empty() {
            resources.insert("cpu".into(), cpu.into());
        }
        if let Some(pids) = update.pids_limit.filter(|p| *p != 0) {
            resources.insert("pids".into(), serde_json::json!({"limit": pids}));
        }
        if container.is_running() && !resources.is_empty() {
            self.runc.update(&self.runc_log(container), &container.id, &serde_json::Value::Object(resources)).await?;
        }
        container.update(|r| {
            let host = &mut r.host_config;
            if let Some(memory) = update.memory {
                host.memory = memory;
            }
            if let Some(nano) = update.nano_cpus {
                host.nano_cpus = nano;
            }
            if let Some(pids) = update.pids_limit {
                host.pids_limit = Some(pids);
            }
            for (key, value) in [("CpuQuota", update.cpu_quota), ("CpuPeriod", update.cpu_period), ("CpuShares", update.cpu_shares)] {
                if let Some(value) = value {
                    host.extra.insert(key.into(), value.into());
                }
            }
            if let Some(policy) = &update.restart_policy {
                host.restart_policy.name = policy.clone();
            }
        })?;
        container.emit(&self.events, "update", &[]);
        Ok(())
    }

    /// Removes stopped containers that match the filters; returns their ids.
    pub async fn prune(&self, filters: &HashMap<String, Vec<String>>) -> Result<Vec<String>> {
        let until = match filters.get("until").and_then(|v| v.first()) {
            Some(text) => Some(parse_until(text)?),
            None => None,
        };
        for key in filters.keys() {
            if !["until", "label", "label!"].contains(&key.as_str()) {
                return Err(Error::invalid(format!("invalid filter '{key}'")));
            }
        }
        let mut removed = Vec::new();
        let candidates: Vec<Arc<Container>> = self.all();
        for container in candidates {
            let record = container.snapshot();
            if record.state.status.is_running() {
                continue;
            }
            if until.is_some_and(|until| record.created.timestamp() >= until) {
                continue;
            }
            let labels = record.config.labels.clone().unwrap_or_default();
            let label_ok = |filter: &str| match filter.split_once('=') {
                Some((k, v)) => labels.get(k).is_some_and(|l| l == v),
                None => labels.contains_key(filter),
            };
            if !filters.get("label").map(|v| v.iter().all(|f| label_ok(f))).unwrap_or(true) {
                continue;
            }
            if filters.get("label!").map(|v| v.iter().any(|f| label_ok(f))).unwrap_or(false) {
                continue;
            }
            match self.remove(&container, false).await {
                Ok(()) => removed.push(container.id.clone()),
                Err(err) => tracing::debug!(container_id = %container.id, error = %err, "prune skipped a container"),
            }
        }
        Ok(removed)
    }
}

/// Parses `until` as a Unix time or an RFC 3339 time.
fn parse_until(text: &str) -> Result<i64> {
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok(seconds as i64);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|_| Error::invalid(format!("invalid filter 'until={text}'")))
}

/// Keeps the rows of `ps` output whose PID column is one of `pids`. Fields past the column
/// count are joined into the last column, which contains the command and its spaces.
pub fn parse_ps(output: &str, pids: &[i32]) -> Result<Top> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<String> = header.split_whitespace().map(String::from).collect();
    let pid_column = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::invalid("Couldn't find PID field in ps output"))?;
    let mut processes = Vec::new();
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_column).and_then(|p| p.parse::<i32>().ok()) else {
            return Err(Error::internal(format!("unexpected pid in ps output: {line}")));
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = fields.iter().take(titles.len().saturating_sub(1)).map(|f| f.to_string()).collect();
        if fields.len() >= titles.len() {
            row.push(fields[titles.len() - 1..].join(" "));
        }
        processes.push(row);
    }
    Ok(Top { titles, processes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_ps_keeps_container_rows_and_joins_commands() {
        let output = "UID        PID  PPID  C STIME TTY          TIME CMD\nroot         1     0  0 10:00 ?        00:00:01 /sbin/init\nroot       200     1  0 10:01 ?        00:00:00 sleep 100 --flag\nroot       201   200  0 10:01 ?        00:00:00 sh -c echo hi\n";
        let top = parse_ps(output, &[200, 201]).unwrap();
        assert_eq!(top.titles, ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]);
        assert_eq!(top.processes.len(), 2);
        assert_eq!(top.processes[0][7], "sleep 100 --flag");
        assert_eq!(top.processes[1][1], "201");
    }

    #[test]
    fn parse_ps_without_pid_column_is_an_error() {
        let err = parse_ps("USER COMMAND\nroot sh\n", &[1]).unwrap_err();
        assert_eq!(err.message, "Couldn't find PID field in ps output");
    }

    #[test]
    fn until_accepts_unix_and_rfc3339() {
        assert_eq!(parse_until("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_until("2024-01-01T00:00:00Z").unwrap(), 1_704_067_200);
        assert!(parse_until("yesterday").is_err());
    }
}
