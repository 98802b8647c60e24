//! The `docker cp` endpoints: `HEAD`, `GET` and `PUT /containers/{id}/archive`, and the legacy
//! `POST /containers/{id}/copy`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use super::params::Params;
use crate::archive::copy::PathStat;
use crate::engine::Engine;
use crate::error::{Error, Result};

const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

pub fn routes() -> Router<Arc<Engine>> {
    Router::new()
        .route("/containers/{id}/archive", get(get_archive).head(head_archive).put(put_archive))
        .route("/containers/{id}/copy", post(copy))
}

/// Returns the `path` query parameter, which every archive endpoint requires.
fn path_param(params: &Params) -> Result<String> {
    match params.get("path") {
        Some(path) if !path.is_empty() => Ok(path.to_string()),
        _ => Err(Error::invalid("bad parameter: 'path' cannot be empty")),
    }
}

fn stat_header(stat: &PathStat) -> Result<HeaderValue> {
    HeaderValue::from_str(&stat.header_value())
        .map_err(|err| Error::internal(format!("encoding the path stat header: {err}")))
}

fn tar_response(receiver: tokio::sync::mpsc::Receiver<Bytes>) -> Response {
    let stream = ReceiverStream::new(receiver).map(Ok::<_, std::convert::Infallible>);
    ([(header::CONTENT_TYPE, "application/x-tar")], Body::from_stream(stream)).into_response()
}

async fn head_archive(State(engine): State<Arc<Engine>>, Path(id): Path<String>, params: Params) -> Result<Response> {
    let path = path_param(&params)?;
    let container = engine.resolve(&id)?;
    let stat = engine.stat_path(&container, &id, &path).await?;
    Ok(([(PATH_STAT_HEADER, stat_header(&stat)?)], StatusCode::OK).into_response())
}

async fn get_archive(State(engine): State<Arc<Engine>>, Path(id): Path<String>, params: Params) -> Result<Response> {
    let path = path_param(&params)?;
    let container = engine.resolve(&id)?;
    let (stat, receiver) = engine.archive_path(&container, &id, &path).await?;
    let mut response = tar_response(receiver);
    response.headers_mut().insert(PATH_STAT_HEADER, stat_header(&stat)?);
    Ok(response)
}

async fn put_archive(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
    params: Params,
    body: Body,
) -> Result<StatusCode> {
    let path = path_param(&params)?;
    let container = engine.resolve(&id)?;
    let no_overwrite_dir_non_dir = params.flag("noOverwriteDirNonDir");
    let copy_uid_gid = params.flag("copyUIDGID");
    let chunks = body.into_data_stream();
    engine.extract_to_dir(&container, &id, &path, no_overwrite_dir_non_dir, copy_uid_gid, chunks).await?;
    Ok(StatusCode::OK)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CopyRequest {
    #[serde(default)]
    resource: String,
}

async fn copy(State(engine): State<Arc<Engine>>, Path(id): Path<String>, body: Bytes) -> Result<Response> {
    let request: CopyRequest =
        serde_json::from_slice(&body).map_err(|err| Error::invalid(format!("invalid JSON: {err}")))?;
    if request.resource.is_empty() {
        return Err(Error::invalid("Path cannot be empty"));
    }
    let container = engine.resolve(&id)?;
    let receiver = engine.copy_resource(&container, &id, &request.resource).await?;
    Ok(tar_response(receiver))
}
