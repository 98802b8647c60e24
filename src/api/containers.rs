//! Container endpoints: list, create, inspect, start, stop, restart, kill, wait, logs, remove.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use super::params::Params;
use crate::engine::lifecycle::WaitCondition;
use crate::engine::logs::LogOptions;
use crate::engine::spec::CreateRequest;
use crate::engine::state::Status;
use crate::engine::{Container, ContainerRecord, Engine};
use crate::error::{Error, Result};

pub fn routes() -> Router<Arc<Engine>> {
    Router::new()
        .route("/containers/json", get(list))
        .route("/containers/create", post(create))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}", delete(remove))
        .route("/containers/{id}/attach", post(super::attach::attach))
        .route("/containers/{id}/{operation}", any(not_yet))
}

/// Returns 501 with a message for endpoints of Docker's API that berth does not serve yet.
async fn not_yet(Path((_, operation)): Path<(String, String)>) -> Error {
    let known = ["stats", "resize", "exec"];
    if known.contains(&operation.as_str()) {
        Error::not_implemented(format!("berth does not implement /containers/{{id}}/{operation} yet"))
    } else {
        Error::not_found("page not found")
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|err| Error::invalid(format!("invalid JSON: {err}")))
}

async fn create(State(engine): State<Arc<Engine>>, params: Params, body: Bytes) -> Result<Response> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::invalid("config cannot be empty in order to create a container"));
    }
    let request: CreateRequest = parse_json(&body)?;
    let created = engine.create(request, params.get("name"))?;
    Ok((StatusCode::CREATED, Json(json!({"Id": created.id, "Warnings": created.warnings}))).into_response())
}

async fn start(State(engine): State<Arc<Engine>>, Path(id): Path<String>, body: Bytes) -> Result<StatusCode> {
    if body.len() > 7 && !body.iter().all(|b| b.is_ascii_whitespace()) && &body[..] != b"null" && &body[..] != b"{}" {
        return Err(Error::invalid("starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24"));
    }
    let container = engine.resolve(&id)?;
    engine.start(&container).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn signal_param(params: &Params, name: &str) -> Result<Option<i32>> {
    match params.get(name).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => crate::runtime::signal::parse(text).map(Some),
    }
}

async fn stop(State(engine): State<Arc<Engine>>, Path(id): Path<String>, params: Params) -> Result<StatusCode> {
    let container = engine.resolve(&id)?;
    let signal = signal_param(&params, "signal")?;
    engine.stop(&container, signal, params.int("t")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restart(State(engine): State<Arc<Engine>>, Path(id): Path<String>, params: Params) -> Result<StatusCode> {
    let container = engine.resolve(&id)?;
    let signal = signal_param(&params, "signal")?;
    engine.restart(&container, signal, params.int("t")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn kill(State(engine): State<Arc<Engine>>, Path(id): Path<String>, params: Params) -> Result<StatusCode> {
    let container = engine.resolve(&id)?;
    let signal = signal_param(&params, "signal")?.unwrap_or(libc::SIGKILL);
    engine.kill_and_wait(&container, &id, signal).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends the status line and headers at once and the body when the condition is met: the
/// docker CLI sends `start` only after it has the headers of its wait request.
async fn wait(State(engine): State<Arc<Engine>>, Path(id): Path<String>, params: Params) -> Result<Response> {
    let condition = WaitCondition::parse(params.get("condition").unwrap_or(""))?;
    let container = engine.resolve(&id)?;
    let body = futures_util::stream::once(async move {
        let code = engine.wait(&container, condition).await;
        Ok::<_, std::convert::Infallible>(Bytes::from(format!("{{\"StatusCode\":{code}}}\n")))
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(body)).into_response())
}

async fn remove(State(engine): State<Arc<Engine>>, Path(id): Path<String>, params: Params) -> Result<StatusCode> {
    if params.flag("link") {
        return Err(Error::not_implemented("links are not supported"));
    }
    let container = engine.resolve(&id)?;
    engine.remove(&container, params.flag("force")).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn logs(State(engine): State<Arc<Engine>>, Path(id): Path<String>, params: Params) -> Result<Response> {
    let container = engine.resolve(&id)?;
    let tail = match params.get("tail").filter(|t| !t.is_empty() && *t != "all") {
        None => None,
        // Docker reads a tail that is not a number as "all".
        Some(text) => text.parse::<i64>().ok().filter(|n| *n >= 0).map(|n| n as usize),
    };
    let options = LogOptions {
        stdout: params.flag("stdout"),
        stderr: params.flag("stderr"),
        follow: params.flag("follow"),
        since: params.unix_time("since")?,
        until: params.unix_time("until")?,
        timestamps: params.flag("timestamps"),
        tail,
    };
    let tty = container.snapshot().config.tty;
    let receiver = engine.logs(container, options)?;
    let content_type = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    let stream = ReceiverStream::new(receiver).map(Ok::<_, std::convert::Infallible>);
    Ok(([(header::CONTENT_TYPE, content_type)], Body::from_stream(stream)).into_response())
}

fn format_time(time: Option<DateTime<Utc>>) -> String {
    match time {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Nanos, true),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

/// Formats the `Command` column: path and arguments, with arguments that need it in single
/// quotes (`sh -c 'exit 2'`), as Docker shows them.
fn command_string(record: &ContainerRecord) -> String {
    let mut parts = vec![record.path.clone()];
    for arg in &record.args {
        let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
        parts.push(if plain { arg.clone() } else { format!("'{}'", arg.replace('\'', "'\\''")) });
    }
    parts.join(" ")
}

fn network_mode(record: &ContainerRecord) -> &str {
    match record.host_config.network_mode.as_str() {
        "" => "default",
        other => other,
    }
}

/// Returns the name of the network a container is on, for `NetworkSettings.Networks`.
fn network_name(record: &ContainerRecord) -> &str {
    match network_mode(record) {
        "default" => "bridge",
        other => other,
    }
}

async fn inspect(State(engine): State<Arc<Engine>>, Path(id): Path<String>) -> Result<Json<Value>> {
    let container = engine.resolve(&id)?;
    Ok(Json(inspect_json(&engine, &container)))
}

fn inspect_json(engine: &Engine, container: &Container) -> Value {
    let record = container.snapshot();
    let state = &record.state;
    let dir = &container.dir;
    let mut config = serde_json::to_value(&record.config).unwrap_or(Value::Null);
    config["Image"] = json!(record.image);
    let ids = engine.execs.of_container(&record.id);
    let exec_ids = if ids.is_empty() { Value::Null } else { json!(ids) };
    let mut host_config = serde_json::to_value(&record.host_config).unwrap_or(Value::Null);
    if host_config["NetworkMode"] == "" {
        host_config["NetworkMode"] = json!("default");
    }
    if host_config["RestartPolicy"]["Name"] == "" {
        host_config["RestartPolicy"]["Name"] = json!("no");
    }
    json!({
        "Id": record.id,
        "Created": format_time(Some(record.created)),
        "Path": record.path,
        "Args": record.args,
        "State": {
            "Status": state.status.as_str(),
            "Running": state.status.is_running(),
            "Paused": state.status == Status::Paused,
            "Restarting": state.status == Status::Restarting,
            "OOMKilled": state.oom_killed,
            "Dead": state.status == Status::Dead,
            "Pid": state.pid,
            "ExitCode": state.exit_code,
            "Error": state.error,
            "StartedAt": format_time(state.started_at),
            "FinishedAt": format_time(state.finished_at),
        },
        "Image": record.image_id,
        "ResolvConfPath": dir.join("etc/resolv.conf"),
        "HostnamePath": dir.join("etc/hostname"),
        "HostsPath": dir.join("etc/hosts"),
        "LogPath": container.log_path(),
        "Name": record.name,
        "RestartCount": state.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": exec_ids,
        "HostConfig": host_config,
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "LowerDir": engine.images.get(&record.image_id).map(|i| engine.images.layer_dirs_top_first(&i).iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":")).unwrap_or_default(),
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
                "MergedDir": dir.join("merged"),
            },
        },
        "Mounts": mounts_json(&record),
        "Config": config,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "Ports": {},
            "SandboxKey": "",
            "Networks": { network_name(&record): {"IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": null} },
        },
    })
}

fn mounts_json(record: &ContainerRecord) -> Value {
    let mounts: Vec<Value> = record
        .host_config
        .binds
        .iter()
        .flatten()
        .filter_map(|b| crate::engine::create::parse_bind(b).ok())
        .map(|b| {
            json!({"Type": "bind", "Source": b.source, "Destination": b.destination, "Mode": if b.read_only { "ro" } else { "" }, "RW": !b.read_only, "Propagation": "rprivate"})
        })
        .collect();
    json!(mounts)
}

/// Parses the `filters` query value: Docker's `{"key":["v1","v2"]}`, or the older
/// `{"key":{"v":true}}`.
pub(super) fn parse_filters(params: &Params) -> Result<HashMap<String, Vec<String>>> {
    let Some(text) = params.get("filters").filter(|t| !t.is_empty()) else { return Ok(HashMap::new()) };
    let value: Value = serde_json::from_str(text).map_err(|err| Error::invalid(format!("invalid filter: {err}")))?;
    let Value::Object(map) = value else { return Err(Error::invalid("invalid filter: expected a JSON object")) };
    let mut filters = HashMap::new();
    for (key, value) in map {
        let values = match value {
            Value::Array(items) => items.into_iter().filter_map(|v| v.as_str().map(String::from)).collect(),
            Value::Object(items) => items.into_iter().filter(|(_, v)| v.as_bool() == Some(true)).map(|(k, _)| k).collect(),
            _ => return Err(Error::invalid(format!("invalid filter: values of {key} must be a list"))),
        };
        filters.insert(key, values);
    }
    Ok(filters)
}

const LIST_FILTERS: [&str; 6] = ["id", "name", "status", "exited", "label", "ancestor"];

/// `ancestors` maps each `ancestor` filter value to the image id it names.
fn matches_filters(record: &ContainerRecord, filters: &HashMap<String, Vec<String>>, ancestors: &HashMap<String, String>) -> Result<bool> {
    for (key, values) in filters {
        if values.is_empty() {
            continue;
        }
        let ok = match key.as_str() {
            "id" => values.iter().any(|v| record.id.starts_with(v.as_str())),
            // Docker matches names as regular expressions against the name with its slash.
            "name" => {
                let mut any = false;
                for v in values {
                    let pattern = regex::Regex::new(v).map_err(|err| Error::invalid(format!("invalid filter 'name={v}': {err}")))?;
                    any |= pattern.is_match(&record.name);
                }
                any
            }
            "status" => values.iter().any(|v| v == record.state.status.as_str()),
            "exited" => {
                let mut any = false;
                for v in values {
                    let code: i64 = v.parse().map_err(|_| Error::invalid(format!("invalid filter 'exited={v}'")))?;
                    any |= record.state.status == Status::Exited && record.state.exit_code == code;
                }
                any
            }
            "label" => {
                let labels = record.config.labels.clone().unwrap_or_default();
                values.iter().all(|v| match v.split_once('=') {
                    Some((k, val)) => labels.get(k).is_some_and(|l| l == val),
                    None => labels.contains_key(v.as_str()),
                })
            }
            "ancestor" => values.iter().any(|v| ancestors.get(v).is_some_and(|id| *id == record.image_id) || record.image == *v),
            other => return Err(Error::invalid(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn list(State(engine): State<Arc<Engine>>, params: Params) -> Result<Json<Value>> {
    let filters = parse_filters(&params)?;
    if let Some(key) = filters.keys().find(|k| !LIST_FILTERS.contains(&k.as_str())) {
        return Err(Error::invalid(format!("Invalid filter '{key}'")));
    }
    // Checked before any container is looked at, so the reply does not depend on them.
    for status in filters.get("status").into_iter().flatten() {
        if !["created", "restarting", "running", "removing", "paused", "exited", "dead"].contains(&status.as_str()) {
            return Err(Error::invalid(format!("Invalid filter 'status={status}'")));
        }
    }
    let ancestors: HashMap<String, String> = filters
        .get("ancestor")
        .into_iter()
        .flatten()
        .filter_map(|v| engine.images.resolve(v).ok().map(|image| (v.clone(), image.id)))
        .collect();
    let all = params.flag("all") || filters.contains_key("status") || filters.contains_key("exited");
    let limit = params.int("limit")?.filter(|l| *l > 0);
    let mut records: Vec<ContainerRecord> = engine.all().iter().map(|c| c.snapshot()).collect();
    records.sort_by(|a, b| b.created.cmp(&a.created));
    let now = Utc::now();
    let mut out = Vec::new();
    for record in records {
        if !all && !record.state.status.is_running() {
            continue;
        }
        if !matches_filters(&record, &filters, &ancestors)? {
            continue;
        }
        out.push(json!({
            "Id": record.id,
            "Names": [record.name],
            "Image": record.image,
            "ImageID": record.image_id,
            "Command": command_string(&record),
            "Created": record.created.timestamp(),
            "Ports": [],
            "Labels": record.config.labels.clone().unwrap_or_default(),
            "State": record.state.status.as_str(),
            "Status": record.state.summary(now),
            "HostConfig": {"NetworkMode": network_mode(&record)},
            "NetworkSettings": {"Networks": {}},
            "Mounts": mounts_json(&record),
        }));
        if limit.is_some_and(|l| out.len() as i64 >= l) {
            break;
        }
    }
    Ok(Json(Value::Array(out)))
}
