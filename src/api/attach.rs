//! `POST /containers/{id}/attach`: the `Upgrade: tcp` hijack. The reply is
//! `101 UPGRADED`, then the container's output as Docker's multiplexed frames (raw bytes for a
//! terminal), and the client's bytes go to the container's stdin.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use super::params::Params;
use crate::engine::attach::AttachTarget;
use crate::engine::logs::LogOptions;
use crate::engine::Engine;
use crate::error::Result;
use crate::monitor::protocol::{self, from_monitor, to_monitor, Subscription};

pub async fn attach(State(engine): State<Arc<Engine>>, Path(id): Path<String>, params: Params, mut request: Request) -> Result<Response> {
    let container = engine.resolve(&id)?;
    let logs = params.flag("logs");
    let stream = params.flag("stream");
    let subscription = Subscription { stdout: params.flag("stdout"), stderr: params.flag("stderr") };
    let (tty, stdin_once, open_stdin) = engine.stdio_flags(&container);
    let want_stdin = params.flag("stdin") && open_stdin;
    if !stream && !logs {
        // Docker returns at once with nothing to send.
        return Ok(StatusCode::OK.into_response());
    }
    // Subscribe before reading the log, so that nothing falls between the two.
    let target = if stream { Some(engine.attach(&container, subscription).await?) } else { None };
    let replay = if logs && (subscription.stdout || subscription.stderr) {
        let options = LogOptions { stdout: subscription.stdout, stderr: subscription.stderr, ..Default::default() };
        Some(engine.logs(container.clone(), options)?)
    } else {
        None
    };
    container.emit(&engine.events, "attach", &[]);
    let content_type = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    let upgrade = request.headers().get(header::UPGRADE).is_some();
    if !upgrade {
        // A plain HTTP client gets the output as the response body and cannot send stdin.
        let (writer, reader) = tokio::io::duplex(64 * 1024);
        tokio::spawn(pump(target, replay, writer, tokio::io::empty(), Streaming { tty, want_stdin: false, stdin_once: false }, no_control));
        let body = Body::from_stream(tokio_util_stream(reader));
        return Ok(([(header::CONTENT_TYPE, content_type)], body).into_response());
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                let (reader, writer) = tokio::io::split(io);
                pump(target, replay, writer, reader, Streaming { tty, want_stdin, stdin_once }, no_control).await;
            }
            Err(err) => tracing::debug!(error = %err, "attach upgrade failed"),
        }
    });
    Ok(upgraded_response(content_type))
}

/// Builds the `101 UPGRADED` reply of a hijacked attach or exec start.
pub fn upgraded_response(content_type: &'static str) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    response
}

/// Options of a hijacked stream.
#[derive(Debug, Clone, Copy)]
pub struct Streaming {
    /// Raw bytes (a terminal) instead of multiplexed frames.
    pub tty: bool,
    /// Forward the client's bytes to the process's stdin.
    pub want_stdin: bool,
    /// Close the process's stdin when the client's input ends.
    pub stdin_once: bool,
}

/// A control-frame handler that records nothing and shows nothing.
pub fn no_control(_kind: u8, _payload: &[u8]) -> Option<String> {
    None
}

pub fn tokio_util_stream(reader: tokio::io::DuplexStream) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    futures_util::stream::unfold(reader, |mut reader| async move {
        let mut buffer = vec![0u8; 64 * 1024];
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(bytes::Bytes::from(buffer)), reader))
            }
        }
    })
}

/// Sends the log replay (already framed), then copies the monitor's output to the client and
/// the client's input to the monitor until the process exits, then half-closes the client
/// connection. Control frames go to `on_control` first, so an exec's exit code is recorded
/// before the client sees the end of the stream. Text that `on_control` returns is sent as
/// stderr.
pub async fn pump<W, R, F>(
    target: Option<AttachTarget>,
    replay: Option<tokio::sync::mpsc::Receiver<bytes::Bytes>>,
    mut client_out: W,
    mut client_in: R,
    streaming: Streaming,
    mut on_control: F,
) where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin + Send + 'static,
    F: FnMut(u8, &[u8]) -> Option<String> + Send,
{
    let Streaming { tty, want_stdin, stdin_once } = streaming;
    if let Some(mut replay) = replay {
        while let Some(chunk) = replay.recv().await {
            if client_out.write_all(&chunk).await.is_err() {
                return;
            }
        }
    }
    let Some(target) = target else {
        let _ = client_out.shutdown().await;
        return;
    };
    let monitor: UnixStream = match target {
        AttachTarget::Connected(stream) => stream,
        AttachTarget::Pending(receiver) => match receiver.await {
            Ok(stream) => stream,
            Err(_) => {
                let _ = client_out.shutdown().await;
                return;
            }
        },
    };
    let (mut monitor_in, mut monitor_out) = monitor.into_split();
    let input = tokio::spawn(async move {
        if !want_stdin {
            return;
        }
        let mut buffer = vec![0u8; 32 * 1024];
        loop {
            match client_in.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if monitor_out.write_all(&protocol::encode(to_monitor::STDIN, &buffer[..n])).await.is_err() {
                        return;
                    }
                }
            }
        }
        if stdin_once {
            let _ = monitor_out.write_all(&protocol::encode(to_monitor::CLOSE_STDIN, b"")).await;
        }
        // Keep the write half open: dropping it would end this client's subscription early.
        std::future::pending::<()>().await;
    });
    while let Ok(Some((kind, mut payload))) = protocol::read_frame_async(&mut monitor_in).await {
        let stream_id = match kind {
            from_monitor::STDOUT => 1u8,
            from_monitor::STDERR => 2u8,
            _ => {
                let shown = on_control(kind, &payload);
                if kind == from_monitor::EXITED {
                    break;
                }
                match shown {
                    Some(text) => {
                        payload = text.into_bytes();
                        2u8
                    }
                    None => continue,
                }
            }
        };
        let written = if tty {
            client_out.write_all(&payload).await
        } else {
            let mut frame = Vec::with_capacity(8 + payload.len());
            frame.extend_from_slice(&[stream_id, 0, 0, 0]);
            frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            frame.extend_from_slice(&payload);
            client_out.write_all(&frame).await
        };
        if written.is_err() {
            break;
        }
    }
    let _ = client_out.flush().await;
    let _ = client_out.shutdown().await;
    input.abort();
}
