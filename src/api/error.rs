//! The one place where an `Error` becomes an HTTP response: Docker's status code and
//! `{"message": "..."}` body (304 has no body).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::{Error, Kind};

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if self.kind == Kind::NotModified {
            return status.into_response();
        }
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self.message, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self.message, "request rejected");
        }
        let mut body = serde_json::to_vec(&serde_json::json!({ "message": self.message })).unwrap_or_default();
        body.push(b'\n');
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn error_becomes_docker_json() {
        let response = Error::not_found("No such container: x").into_response();
        assert_eq!(response.status(), 404);
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"{\"message\":\"No such container: x\"}\n");
    }

    #[tokio::test]
    async fn not_modified_has_empty_body() {
        let response = Error::not_modified().into_response();
        assert_eq!(response.status(), 304);
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        assert!(body.is_empty());
    }
}
