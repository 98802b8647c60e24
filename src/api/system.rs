//! `/_ping`, `/version` and `/info`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{API_VERSION, MIN_API_VERSION};
use crate::engine::state::Status;
use crate::engine::Engine;

pub fn routes() -> Router<Arc<Engine>> {
    Router::new()
        .route("/_ping", get(ping).head(ping_head))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/events", get(events))
}

/// `HEAD /_ping`: the same headers as GET, with an empty body (`Content-Length: 0`).
async fn ping_head() -> Response {
    let mut response = ping().await;
    *response.body_mut() = axum::body::Body::empty();
    response.headers_mut().insert(header::CONTENT_LENGTH, axum::http::HeaderValue::from_static("0"));
    response
}

async fn ping() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
            (header::PRAGMA, "no-cache"),
            (header::HeaderName::from_static("builder-version"), "1"),
            (header::HeaderName::from_static("swarm"), "inactive"),
        ],
        "OK",
    )
        .into_response()
}

fn kernel_version() -> String {
    nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

async fn version() -> Json<Value> {
    let version = env!("CARGO_PKG_VERSION");
    Json(json!({
        "Platform": {"Name": "berth"},
        "Components": [{
            "Name": "Engine",
            "Version": version,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Arch": arch(),
                "Os": "linux",
                "KernelVersion": kernel_version(),
                "GitCommit": "",
                "GoVersion": "",
                "BuildTime": "",
                "Experimental": "false",
            },
        }],
        "Version": version,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": arch(),
        "KernelVersion": kernel_version(),
        "BuildTime": "",
    }))
}

async fn info(State(engine): State<Arc<Engine>>) -> Json<Value> {
    let containers = engine.all();
    let count = |status: Status| containers.iter().filter(|c| c.snapshot().state.status == status).count();
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<u64>().ok()))
        .unwrap_or(0)
        * 1024;
    let cgroup_version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() { "2" } else { "1" };
    let hostname = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    let images = engine.images.list().map(|l| l.len()).unwrap_or(0);
    Json(json!({
        "ID": "",
        "Containers": containers.len(),
        "ContainersRunning": count(Status::Running),
        "ContainersPaused": count(Status::Paused),
        "ContainersStopped": containers.len() - count(Status::Running) - count(Status::Paused),
        "Images": images,
        "Driver": "overlay",
        "DriverStatus": null,
        "DockerRootDir": engine.paths.root.display().to_string(),
        "Plugins": {"Volume": [], "Network": ["host", "none"], "Log": ["json-file"]},
        "MemoryLimit": true,
        "SwapLimit": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "PidsLimit": true,
        "IPv4Forwarding": false,
        "Debug": false,
        "NFd": std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
        "NGoroutines": 0,
        "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "KernelVersion": kernel_version(),
        "OperatingSystem": os_name(),
        "OSType": "linux",
        "OSVersion": "",
        "Architecture": std::env::consts::ARCH,
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": mem_total,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": [], "Mirrors": []},
        "Name": hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": {"runc": {"path": engine.runc.binary.display().to_string()}},
        "DefaultRuntime": "runc",
        "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": [],
        "Warnings": null,
    }))
}

/// `GET /events`: stored events since `since`, then live ones until `until` (or forever).
async fn events(State(engine): State<Arc<Engine>>, params: super::params::Params) -> crate::error::Result<Response> {
    let filters = super::containers::parse_filters(&params)?;
    let to_nanos = |seconds: f64| (seconds * 1e9) as i64;
    let since = params.unix_time("since")?.map(to_nanos);
    let until = params.unix_time("until")?.map(to_nanos);
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(crate::error::Error::invalid(format!(
                "`since` time ({}) cannot be after `until` time ({})",
                params.get("since").unwrap_or(""),
                params.get("until").unwrap_or("")
            )));
        }
    }
    let (past, mut live) = engine.events.subscribe(since);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::convert::Infallible>>(64);
    tokio::spawn(async move {
        let encode = |event: &crate::engine::events::Event| {
            let mut line = serde_json::to_vec(event).unwrap_or_default();
            line.push(b'\n');
            bytes::Bytes::from(line)
        };
        let in_window = |event: &crate::engine::events::Event| until.is_none_or(|u| event.time_nano <= u);
        for event in past.iter().filter(|e| crate::engine::events::matches(e, &filters)) {
            if !in_window(event) {
                return;
            }
            if sender.send(Ok(encode(event))).await.is_err() {
                return;
            }
        }
        loop {
            let wait = match until {
                Some(u) => {
                    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
                    if now > u {
                        return;
                    }
                    std::time::Duration::from_nanos((u - now) as u64)
                }
                None => std::time::Duration::from_secs(3600),
            };
            match tokio::time::timeout(wait, live.recv()).await {
                Ok(Ok(event)) => {
                    if !in_window(&event) {
                        return;
                    }
                    if crate::engine::events::matches(&event, &filters) && sender.send(Ok(encode(&event))).await.is_err() {
                        return;
                    }
                }
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(_)) => return,
                Err(_) if until.is_some() => return,
                Err(_) => {
                    if sender.is_closed() {
                        return;
                    }
                }
            }
        }
    });
    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}
