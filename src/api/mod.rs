//! HTTP: the router, API-version prefixes, the headers on every response, and the listeners.
//! Handlers parse the request, call one engine function and write Docker's reply.

pub mod archive;
pub mod attach;
pub mod containers;
pub mod error;
pub mod exec;
pub mod images;
pub mod operations;
pub mod params;
pub mod system;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, Uri};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tower::ServiceExt;

use crate::engine::Engine;
use crate::error::Error;

/// The API version berth advertises and serves.
pub const API_VERSION: &str = "1.47";
/// The oldest API version accepted.
pub const MIN_API_VERSION: &str = "1.24";

pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .merge(system::routes())
        .merge(containers::routes())
        .merge(operations::routes())
        .merge(exec::routes())
        .merge(archive::routes())
        .merge(images::routes())
        .fallback(|| async { Error::not_found("page not found") })
        // Docker's router has no "method not allowed": a wrong method is an unknown route.
        .method_not_allowed_fallback(|| async { Error::not_found("page not found") })
        .with_state(engine)
}

/// Parses `X.Y` into a comparable pair.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Strips a `/vX.Y` prefix. A version below the minimum is rejected. A version above the
/// maximum is served as the maximum, because some clients pin a newer version without
/// negotiating and Docker's own 400 would lock them out.
pub fn strip_version(path: &str) -> Result<&str, String> {
    let Some(rest) = path.strip_prefix("/v") else { return Ok(path) };
    let (version, tail) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let Some(parsed) = parse_version(version) else { return Ok(path) };
    let minimum = parse_version(MIN_API_VERSION).unwrap();
    if parsed < minimum {
        return Err(format!(
            "client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        ));
    }
    Ok(tail)
}

/// Serves one request: version prefix, routing, and the common headers.
pub async fn handle(router: Router, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let mut response = match strip_version(&path) {
        Err(message) => Error::invalid(message).into_response_body(),
        Ok(stripped) => {
            if stripped.len() != path.len() {
                let new_uri = match parts.uri.query() {
                    Some(query) => format!("{stripped}?{query}"),
                    None => stripped.to_string(),
                };
                parts.uri = new_uri.parse::<Uri>().unwrap_or_else(|_| Uri::from_static("/"));
            }
            let request = Request::from_parts(parts, Body::new(body));
            router.oneshot(request).await.unwrap_or_else(|never| match never {})
        }
    };
    let headers = response.headers_mut();
    headers.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    headers.insert("Ostype", HeaderValue::from_static("linux"));
    headers.insert("Docker-Experimental", HeaderValue::from_static("false"));
    headers.insert("Server", HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")));
    Ok(response)
}

impl Error {
    fn into_response_body(self) -> Response<Body> {
        axum::response::IntoResponse::into_response(self)
    }
}

/// Serves HTTP/1.1 with upgrades (attach) on an accepted connection.
pub fn serve_connection<IO>(router: Router, io: IO)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |request| handle(router.clone(), request));
        let connection = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "connection ended with an error");
        }
    });
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefixes() {
        assert_eq!(strip_version("/v1.47/containers/json"), Ok("/containers/json"));
        assert_eq!(strip_version("/v1.24/_ping"), Ok("/_ping"));
        assert_eq!(strip_version("/v1.51/version"), Ok("/version"));
        assert_eq!(strip_version("/containers/json"), Ok("/containers/json"));
        assert!(strip_version("/v1.23/info").unwrap_err().contains("client version 1.23 is too old"));
        assert_eq!(strip_version("/volumes"), Ok("/volumes"));
    }
}
