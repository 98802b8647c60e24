//! Image references as Docker normalises them: `busybox` is `busybox:latest`; the
//! `docker.io/library/` prefix is dropped for display and storage.

use crate::error::{Error, Result};

/// Normalises a reference to the `name:tag` form the store keys on. A digest reference
/// (`name@sha256:...`) is kept as it is.
pub fn normalise(reference: &str) -> Result<String> {
    if reference.is_empty() {
        return Err(Error::invalid("invalid reference format: empty"));
    }
    let mut name = reference;
    for prefix in ["docker.io/library/", "index.docker.io/library/", "docker.io/"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            name = rest;
            break;
        }
    }
    if name.contains('@') {
        return Ok(name.to_string());
    }
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    let with_tag = if last_segment.contains(':') { name.to_string() } else { format!("{name}:latest") };
    let valid = with_tag
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/:".contains(c) || c.is_ascii_uppercase());
    let (repo, tag) = with_tag.rsplit_once(':').unwrap_or((&with_tag, "latest"));
    if repo.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(Error::invalid("invalid reference format: repository name must be lowercase"));
    }
    if !valid || repo.is_empty() || tag.is_empty() {
        return Err(Error::invalid(format!("invalid reference format: {reference}")));
    }
    Ok(with_tag)
}

/// Returns the form Docker prints in `No such image: …` messages.
pub fn display(reference: &str) -> String {
    normalise(reference).unwrap_or_else(|_| reference.to_string())
}

/// Joins a `repo` and `tag` query pair (as `docker import` and `docker tag` send them).
/// The docker CLI sends the whole reference in `repo` (`myimage:1`) and no `tag`.
pub fn join(repo: &str, tag: &str) -> Result<String> {
    if tag.is_empty() {
        return normalise(repo);
    }
    normalise(&format!("{repo}:{tag}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_adds_latest_and_drops_docker_io() {
        assert_eq!(normalise("busybox").unwrap(), "busybox:latest");
        assert_eq!(normalise("docker.io/library/busybox:1.36").unwrap(), "busybox:1.36");
        assert_eq!(normalise("localhost:5000/x").unwrap(), "localhost:5000/x:latest");
        assert_eq!(normalise("me/app:v1").unwrap(), "me/app:v1");
    }

    #[test]
    fn normalise_rejects_bad_names() {
        assert!(normalise("").is_err());
        assert!(normalise("Busybox").is_err());
        assert!(normalise("bad name").is_err());
    }

    #[test]
    fn join_defaults_tag_to_latest() {
        assert_eq!(join("docker.io/library/mybox", "").unwrap(), "mybox:latest");
        assert_eq!(join("mybox", "v2").unwrap(), "mybox:v2");
        assert_eq!(join("myimage:1", "").unwrap(), "myimage:1");
        assert_eq!(join("localhost:5000/team/box", "").unwrap(), "localhost:5000/team/box:latest");
    }
}
