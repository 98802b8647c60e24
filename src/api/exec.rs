//! Exec endpoints: create, start (hijacked like attach, or detached) and inspect.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Value};

use super::attach::{pump, tokio_util_stream, upgraded_response, Streaming};
use crate::engine::attach::AttachTarget;
use crate::engine::exec::ExecConfig;
use crate::engine::Engine;
use crate::error::{Error, Result};

pub fn routes() -> Router<Arc<Engine>> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/json", get(inspect))
        .route("/exec/{id}/resize", post(|| async { Error::not_implemented("exec with a terminal is not supported yet, so there is nothing to resize") }))
}

async fn create(State(engine): State<Arc<Engine>>, Path(id): Path<String>, body: Bytes) -> Result<Response> {
    let config: ExecConfig = serde_json::from_slice(&body).map_err(|err| Error::invalid(format!("invalid JSON: {err}")))?;
    let container = engine.resolve(&id)?;
    let exec_id = engine.exec_create(&container, config)?;
    Ok((StatusCode::CREATED, Json(json!({"Id": exec_id}))).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartRequest {
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    detach: bool,
    #[serde(default, deserialize_with = "crate::engine::spec::null_as_default")]
    tty: bool,
}

async fn start(State(engine): State<Arc<Engine>>, Path(id): Path<String>, mut request: Request) -> Result<Response> {
    let exec = engine.execs.get(&id)?;
    let upgrade = request.headers().get(header::UPGRADE).is_some();
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    // Read the body before replying, because after the upgrade its bytes would arrive as stdin.
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .map_err(|err| Error::invalid(format!("reading request body: {err}")))?;
    let start: StartRequest = if body.is_empty() {
        StartRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|err| Error::invalid(format!("invalid JSON: {err}")))?
    };
    if start.tty {
        return Err(Error::not_implemented("exec with a terminal is not supported yet"));
    }
    let stream = engine.exec_start(&exec).await?;
    if start.detach {
        engine.follow_detached(exec, stream);
        return Ok(StatusCode::OK.into_response());
    }
    let streaming = Streaming { tty: false, want_stdin: exec.config.attach_stdin, stdin_once: true };
    let record = move |kind: u8, payload: &[u8]| exec.record_frame(kind, payload);
    let content_type = "application/vnd.docker.multiplexed-stream";
    let target = Some(AttachTarget::Connected(stream));
    match on_upgrade {
        Some(on_upgrade) => {
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => {
                        let (reader, writer) = tokio::io::split(TokioIo::new(upgraded));
                        pump(target, None, writer, reader, streaming, record).await;
                    }
                    Err(err) => tracing::debug!(error = %err, "exec upgrade failed"),
                }
            });
            Ok(upgraded_response(content_type))
        }
        None => {
            let (writer, reader) = tokio::io::duplex(64 * 1024);
            let streaming = Streaming { want_stdin: false, ..streaming };
            tokio::spawn(pump(target, None, writer, tokio::io::empty(), streaming, record));
            Ok(([(header::CONTENT_TYPE, content_type)], Body::from_stream(tokio_util_stream(reader))).into_response())
        }
    }
}

async fn inspect(State(engine): State<Arc<Engine>>, Path(id): Path<String>) -> Result<Json<Value>> {
    let exec = engine.execs.get(&id)?;
    let state = exec.state();
    let cmd = exec.config.cmd.clone().unwrap_or_default();
    let mut inspect = json!({
        "ID": exec.id,
        "Running": state.running,
        "ExitCode": state.exit_code,
        "ProcessConfig": {
            "tty": exec.config.tty,
            "entrypoint": cmd.first().cloned().unwrap_or_default(),
            "arguments": cmd.iter().skip(1).collect::<Vec<_>>(),
            "privileged": exec.config.privileged,
        },
        "OpenStdin": exec.config.attach_stdin,
        "OpenStderr": exec.config.attach_stderr,
        "OpenStdout": exec.config.attach_stdout,
        "CanRemove": false,
        "ContainerID": exec.container_id,
        "DetachKeys": exec.config.detach_keys,
        "Pid": state.pid,
    });
    if !exec.config.user.is_empty() {
        inspect["ProcessConfig"]["user"] = json!(exec.config.user);
    }
    Ok(Json(inspect))
}
