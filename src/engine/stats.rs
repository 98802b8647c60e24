//! `GET /containers/{id}/stats`: cgroup figures from `runc events --stats`, network figures
//! from the container's /proc/PID/net/dev, shaped as Docker's stats JSON.

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::{Container, Engine};
use crate::error::Result;

/// One sample: Docker's `cpu_stats` and the rest of the object except `precpu_stats`/`preread`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub read: String,
    pub body: Map<String, Value>,
}

/// Returns the zero sample Docker sends as `precpu_stats` before there is a previous one.
pub fn empty_cpu_stats() -> Value {
    json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}})
}

impl Engine {
    /// Takes one sample. A container that is not running gives Docker's all-zero sample.
    pub async fn stats_sample(&self, container: &Container) -> Result<Sample> {
        let record = container.snapshot();
        let read = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
        let mut body = Map::new();
        body.insert("name".into(), json!(record.name));
        body.insert("id".into(), json!(record.id));
        body.insert("num_procs".into(), json!(0));
        body.insert("storage_stats".into(), json!({}));
        if !record.state.status.is_running() {
            body.insert("pids_stats".into(), json!({}));
            body.insert("blkio_stats".into(), json!({"io_service_bytes_recursive": null}));
            body.insert("cpu_stats".into(), empty_cpu_stats());
            body.insert("memory_stats".into(), json!({}));
            return Ok(Sample { read: "0001-01-01T00:00:00Z".into(), body });
        }
        let raw = self.runc.events_stats(&self.runc_log(container), &container.id).await?;
        let data = &raw["data"];
        let cpu = &data["cpu"]["usage"];
        let throttling = &data["cpu"]["throttling"];
        body.insert(
            "cpu_stats".into(),
            json!({
                "cpu_usage": {
                    "total_usage": cpu["total"].as_u64().unwrap_or(0),
                    "percpu_usage": cpu["percpu"],
                    "usage_in_kernelmode": cpu["kernel"].as_u64().unwrap_or(0),
                    "usage_in_usermode": cpu["user"].as_u64().unwrap_or(0),
                },
                "system_cpu_usage": system_cpu_usage(),
                "online_cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
                "throttling_data": {
                    "periods": throttling["periods"].as_u64().unwrap_or(0),
                    "throttled_periods": throttling["throttled_periods"].as_u64().unwrap_or(0),
                    "throttled_time": throttling["throttled_time"].as_u64().unwrap_or(0),
                },
            }),
        );
        let memory = &data["memory"];
        // An unlimited cgroup reports a huge limit; Docker shows the host's memory instead.
        let host_memory = host_memory_bytes();
        let limit = memory["usage"]["limit"].as_u64().unwrap_or(0);
        let limit = if limit == 0 || limit > host_memory { host_memory } else { limit };
        body.insert(
            "memory_stats".into(),
            json!({
                "usage": memory["usage"]["usage"].as_u64().unwrap_or(0),
                "max_usage": memory["usage"]["max"].as_u64().unwrap_or(0),
                "failcnt": memory["usage"]["failcnt"].as_u64().unwrap_or(0),
                "limit": limit,
                "stats": memory["raw"].clone(),
            }),
        );
        let pids_limit = record.host_config.pids_limit.filter(|l| *l > 0);
        let mut pids = json!({"current": data["pids"]["current"].as_u64().unwrap_or(0)});
        if let Some(limit) = pids_limit {
            pids["limit"] = json!(limit);
        }
        body.insert("pids_stats".into(), pids);
        body.insert("blkio_stats".into(), blkio(&data["blkio"]));
        let networks = network_stats(record.state.pid);
        if !networks.is_empty() {
            body.insert("networks".into(), Value::Object(networks));
        }
        Ok(Sample { read, body })
    }
}

/// Docker's `io_service_bytes_recursive` list from runc's blkio entries.
fn blkio(raw: &Value) -> Value {
    let entries = raw["ioServiceBytesRecursive"].as_array().cloned().unwrap_or_default();
    let list: Vec<Value> = entries
        .iter()
        .map(|e| json!({"major": e["major"], "minor": e["minor"], "op": e["op"], "value": e["value"]}))
        .collect();
    json!({"io_service_bytes_recursive": if list.is_empty() { Value::Null } else { json!(list) }})
}

/// Reads the host's CPU time in nanoseconds from the first line of /proc/stat.
fn system_cpu_usage() -> u64 {
    let ticks_per_second = 100u64; // USER_HZ, fixed at 100 on Linux for /proc/stat.
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|text| {
            let line = text.lines().next()?;
            let ticks: u64 = line.split_whitespace().skip(1).take(7).filter_map(|v| v.parse::<u64>().ok()).sum();
            Some(ticks * (1_000_000_000 / ticks_per_second))
        })
        .unwrap_or(0)
}

fn host_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<u64>().ok()))
        .unwrap_or(0)
        * 1024
}

/// Interface counters of the container's network namespace, loopback left out as Docker does.
fn network_stats(pid: i32) -> Map<String, Value> {
    let mut networks = Map::new();
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else { return networks };
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else { continue };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let values: Vec<u64> = counters.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        if values.len() < 16 {
            continue;
        }
        networks.insert(
            name.to_string(),
            json!({
                "rx_bytes": values[0], "rx_packets": values[1], "rx_errors": values[2], "rx_dropped": values[3],
                "tx_bytes": values[8], "tx_packets": values[9], "tx_errors": values[10], "tx_dropped": values[11],
            }),
        );
    }
    networks
}
