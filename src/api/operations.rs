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
    Ok(Json(json!({"Warnings": []})))
}

async fn changes(State(engine): State<Arc<Engine>>, Path(id): Path<String>) -> Result<Json<Value>> {
    let container = engine.resolve(&id)?;
    let changes = engine.changes(&container).await?;
    // Docker answers null, not [], when nothing changed.
    Ok(Json(if changes.is_empty() { Value::Null } else { serde_json::to_value(changes)? }))
}

async fn export(State(engine): State<Arc<Engine>>, Path(id): Path<String>) -> Result<Response> {
    let container = engine.resolve(&id)?;
    let receiver = engine.export(&container).await?;
    let stream = ReceiverStream::new(receiver).map(Ok::<_, std::convert::Infallible>);
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], Body::from_stream(stream)).into_response())
}

async fn prune(State(engine): State<Arc<Engine>>, params: Params) -> Result<Json<Value>> {
    let filters = super::containers::parse_filters(&params)?;
    let removed = engine.prune(&filters).await?;
    Ok(Json(json!({
        "ContainersDeleted": if removed.is_empty() { Value::Null } else { json!(removed) },
        "SpaceReclaimed": 0,
    })))
}
