//! The one error type of the daemon. Each error has a kind that maps to a Docker status code
//! in exactly one place (`Kind::status`), and a message that carries the whole cause.

use std::fmt;

/// Docker's error classes (moby's errdefs), reduced to the ones berth returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NotFound,
    InvalidArgument,
    Conflict,
    /// The request asked for a state the object is already in (304, empty body).
    NotModified,
    Forbidden,
    NotImplemented,
    Internal,
}

impl Kind {
    /// Returns the HTTP status Docker uses for this kind.
    pub fn status(self) -> u16 {
        match self {
            Kind::NotFound => 404,
            Kind::InvalidArgument => 400,
            Kind::Conflict => 409,
            Kind::NotModified => 304,
            Kind::Forbidden => 403,
            Kind::NotImplemented => 501,
            Kind::Internal => 500,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Kind::InvalidArgument, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, message)
    }
    pub fn not_modified() -> Self {
        Self::new(Kind::NotModified, "")
    }
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(Kind::NotImplemented, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, message)
    }

    /// Prefixes the message with what was being done, keeping the kind.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Error { kind: self.kind, message: format!("{what}: {}", self.message) }
    }

    pub fn no_such_container(reference: &str) -> Self {
        Self::not_found(format!("No such container: {reference}"))
    }
    pub fn no_such_image(reference: &str) -> Self {
        Self::not_found(format!("No such image: {reference}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => Kind::NotFound,
            std::io::ErrorKind::PermissionDenied => Kind::Forbidden,
            _ => Kind::Internal,
        };
        Error::new(kind, err.to_string())
    }
}

impl From<nix::Error> for Error {
    fn from(err: nix::Error) -> Self {
        Error::internal(err.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::internal(err.to_string())
    }
}

/// Adds a description of the failed step to any error convertible into `Error`.
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|err| err.into().context(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_docker_statuses() {
        assert_eq!(Kind::NotFound.status(), 404);
        assert_eq!(Kind::InvalidArgument.status(), 400);
        assert_eq!(Kind::Conflict.status(), 409);
        assert_eq!(Kind::NotModified.status(), 304);
        assert_eq!(Kind::NotImplemented.status(), 501);
        assert_eq!(Kind::Internal.status(), 500);
    }

    #[test]
    fn context_keeps_kind_and_prefixes_message() {
        let err = Error::not_found("no such file").context("reading /x");
        assert_eq!(err.kind, Kind::NotFound);
        assert_eq!(err.message, "reading /x: no such file");
    }
}
