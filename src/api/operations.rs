//! Container endpoints beyond the lifecycle: pause, unpause, rename, top, update, changes,
//! export and prune.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use super::params::Params;
use crate::engine::ops::ResourceUpdate;
use crate::engine::Engine;
use crate::error::{Error, Result};

pub fn routes() -> Router<Arc<Engine>> {
    Router::new()
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/update", post(update))
        .route("/containers/{id}/changes", get(changes))
        .route("/containers/{id}/export", get(export))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/stats", get(stats))
}

async fn pause(State(engine): State<Arc<Engine>>, Path(id): Path<String>) -> Result<StatusCode> {
    let container = engine.resolve(&id)?;
    engine.pause(&container).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unpause(State(engine): State<Arc<Engine>>, Path(id): Path<String>) -> Result<StatusCode> {
    let container = engine.resolve(&id)?;
    engine.unpause(&container).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rename(State(engine): State<Arc<Engine>>, Path(id): Path<String>, params: Params) -> Result<StatusCode> {
    let container = engine.resolve(&id)?;
    engine.rename(&container, params.get("name").unwrap_or(""))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn top(State(engine): State<Arc<Engine>>, Path(id): Path<String>, params: Params) -> Result<Json<Value>> {
    let container = engine.resolve(&id)?;
    let top = engine.top(&container, params.get("ps_args").unwrap_or("")).await?;
    Ok(Json(serde_json::to_value(top)?))
}

/// The fields of `POST /containers/{id}/update` that berth applies.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateRequest {
    memory: Option<i64>,
    nano_cpus: Option<i64>,
    cpu_quota: Option<i64>,
    cpu_period: Option<i64>,
    cpu_shares: Option<i64>,
    pids_limit: Option<i64>,
    restart_policy: Option<crate::engine::spec::RestartPolicy>,
}

async fn update(State(engine): State<Arc<Engine>>, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>> {
    let request: UpdateRequest =
        serde_json::from_slice(&body).map_err(|err| Error::invalid(format!("invalid JSON: {err}")))?;
    let container = engine.resolve(&id)?;
    let update = ResourceUpdate {
        memory: request.memory,
        nano_cpus: request.nano_cpus,
        cpu_quota: request.cpu_quota,
        cpu_period: request.cpu_period,
        cpu_shares: request.cpu_shares,
        pids_limit: request.pids_limit,
        restart_policy: request.restart_policy.map(|p| p.name),
    };
    engine.update(&container, update).await?;
    Ok(Json(json!({"Warnings": null})))
}

async fn changes(State(engine): State<Arc<Engine>>, Path(id): Path<String>) -> Result<Json<Value>> {
    let container = engine.resolve(&id)?;
    let changes = engine.changes(&container).await?;
    // Docker returns null, not [], when nothing changed.
    Ok(Json(if changes.is_empty() { Value::Null } else { serde_json::to_value(changes)? }))
}

async fn export(State(engine): State<Arc<Engine>>, Path(id): Path<String>) -> Result<Response> {
    let container = engine.resolve(&id)?;
    let receiver = engine.export(&container).await?;
    let stream = ReceiverStream::new(receiver).map(Ok::<_, std::convert::Infallible>);
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], Body::from_stream(stream)).into_response())
}

/// Streams one sample a second (`stream`, the default), or returns one object: after two
/// samples a second apart, or at once with `one-shot`.
async fn stats(State(engine): State<Arc<Engine>>, Path(id): Path<String>, params: Params) -> Result<Response> {
    let container = engine.resolve(&id)?;
    let stream = params.get("stream").is_none() || params.flag("stream");
    let one_shot = params.flag("one-shot");
    if one_shot && stream {
        return Err(Error::invalid("cannot have stream=true and one-shot=true"));
    }
    let first = engine.stats_sample(&container).await?;
    if !stream {
        let (previous, current) = if one_shot {
            (None, first)
        } else {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            (Some(first), engine.stats_sample(&container).await?)
        };
        return Ok(Json(stats_json(previous.as_ref(), &current)).into_response());
    }
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::result::Result<Bytes, std::convert::Infallible>>(4);
    tokio::spawn(async move {
        let mut previous: Option<crate::engine::stats::Sample> = None;
        let mut current = first;
        loop {
            let mut line = serde_json::to_vec(&stats_json(previous.as_ref(), &current)).unwrap_or_default();
            line.push(b'\n');
            if sender.send(Ok(Bytes::from(line))).await.is_err() || !container.is_running() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            previous = Some(current);
            current = match engine.stats_sample(&container).await {
                Ok(sample) => sample,
                Err(_) => return,
            };
        }
    });
    let body = Body::from_stream(ReceiverStream::new(receiver));
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn stats_json(previous: Option<&crate::engine::stats::Sample>, current: &crate::engine::stats::Sample) -> Value {
    let mut object = current.body.clone();
    object.insert("read".into(), json!(current.read));
    match previous {
        Some(previous) => {
            object.insert("preread".into(), json!(previous.read));
            object.insert("precpu_stats".into(), previous.body.get("cpu_stats").cloned().unwrap_or(Value::Null));
        }
        None => {
            object.insert("preread".into(), json!("0001-01-01T00:00:00Z"));
            object.insert("precpu_stats".into(), crate::engine::stats::empty_cpu_stats());
        }
    }
    Value::Object(object)
}

async fn prune(State(engine): State<Arc<Engine>>, params: Params) -> Result<Json<Value>> {
    let filters = super::containers::parse_filters(&params)?;
    let removed = engine.prune(&filters).await?;
    Ok(Json(json!({
        "ContainersDeleted": if removed.is_empty() { Value::Null } else { json!(removed) },
        "SpaceReclaimed": 0,
    })))
}
