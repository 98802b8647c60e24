//! Image endpoints: import (`POST /images/create?fromSrc=-`), list and inspect.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::params::Params;
use crate::engine::Engine;
use crate::error::{Context, Error, Result};
use crate::image::{import, reference, ImageRecord};

pub fn routes() -> Router<Arc<Engine>> {
    Router::new()
        .route("/images/create", post(create))
        .route("/images/json", get(list))
        .route("/images/{*rest}", get(get_image).post(post_image).delete(delete_image))
        .route("/images/load", post(|| async { Error::not_implemented("berth does not implement image load yet: import a root filesystem with POST /images/create?fromSrc=-") }))
        .route("/images/get", get(|| async { Error::not_implemented("berth does not implement image save yet") }))
}

async fn create(State(engine): State<Arc<Engine>>, params: Params, body: Body) -> Result<Response> {
    if let Some(image) = params.get("fromImage").filter(|i| !i.is_empty()) {
        let tag = params.get("tag").unwrap_or("");
        let wanted = if tag.is_empty() { reference::display(image) } else { reference::display(&format!("{image}:{tag}")) };
        return Err(Error::not_implemented(format!(
            "pulling images is not supported yet, so {wanted} cannot be fetched: import a root filesystem with `docker import` (POST /images/create?fromSrc=-) instead"
        )));
    }
    match params.get("fromSrc") {
        Some("-") => {}
        Some(_) => return Err(Error::not_implemented("importing from a URL is not supported: send the tar as the request body with fromSrc=-")),
        None => return Err(Error::invalid("one of fromImage or fromSrc is required")),
    }
    let repo = params.get("repo").unwrap_or("");
    let tag = if repo.is_empty() { None } else { Some(reference::join(repo, params.get("tag").unwrap_or(""))?) };
    let mut config = crate::image::ImageRunConfig::default();
    import::apply_changes(&mut config, &params.all("changes"))?;

    // Spool the upload to a file, then unpack it on a blocking thread.
    let upload = engine.images.tmp_dir().join(format!("upload-{}", hex::encode(rand::random::<[u8; 8]>())));
    let result = async {
        let mut file = tokio::fs::File::create(&upload).await.context("creating upload file")?;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|err| Error::invalid(format!("reading request body: {err}")))?;
            file.write_all(&chunk).await.context("writing upload file")?;
        }
        file.flush().await.context("writing upload file")?;
        let engine = engine.clone();
        let path = upload.clone();
        // Docker records the source of an import as its comment when no message is given.
        let message = params.get("message").filter(|m| !m.is_empty()).unwrap_or("Imported from -").to_string();
        tokio::task::spawn_blocking(move || -> Result<ImageRecord> {
            let (diff_id, size) = import::unpack_layer(&engine.images, &path)?;
            let record = import::new_record(diff_id, size, &message, config)?;
            engine.images.add(&record, tag.as_deref())?;
            Ok(record)
        })
        .await
        .map_err(|err| Error::internal(format!("import task failed: {err}")))?
    }
    .await;
    let _ = tokio::fs::remove_file(&upload).await;
    let record = result?;
    tracing::info!(image = %record.id, "imported image");
    engine.events.image("import", &record.id, params.get("repo").unwrap_or(""));
    let line = format!("{}\n", json!({"status": record.id}));
    Ok(([(header::CONTENT_TYPE, "application/json")], line).into_response())
}

/// Compiles a `reference` filter, a glob as Go's path.Match reads it (`*` and `?` stop at
/// `/`), into a regular expression. A pattern with a tag matches `repo:tag`; one without
/// matches the repository, so every tag of it.
fn reference_pattern(pattern: &str) -> Result<(regex::Regex, bool)> {
    let with_tag = pattern.rsplit('/').next().is_some_and(|last| last.contains(':'));
    let pattern = pattern.strip_prefix("docker.io/library/").unwrap_or(pattern);
    let mut expression = String::from("^");
    for ch in pattern.chars() {
        match ch {
            '*' => expression.push_str("[^/]*"),
            '?' => expression.push_str("[^/]"),
            other => expression.push_str(&regex::escape(&other.to_string())),
        }
    }
    expression.push('$');
    let compiled = regex::Regex::new(&expression).map_err(|err| Error::invalid(format!("invalid reference filter {pattern}: {err}")))?;
    Ok((compiled, with_tag))
}

fn summary(image: &ImageRecord, tags: Vec<String>) -> Value {
    let created = chrono::DateTime::parse_from_rfc3339(&image.created).map(|t| t.timestamp()).unwrap_or(0);
    json!({
        "Id": image.id,
        "ParentId": "",
        "RepoTags": tags,
        "RepoDigests": null,
        "Created": created,
        "Size": image.size,
        "SharedSize": -1,
        "VirtualSize": image.size,
        "Labels": image.config.labels.clone().filter(|l| !l.is_empty()),
        "Containers": -1,
    })
}

async fn list(State(engine): State<Arc<Engine>>, params: Params) -> Result<Json<Value>> {
    let filters = super::containers::parse_filters(&params)?;
    let references = filters.get("reference").cloned().unwrap_or_default();
    for key in filters.keys() {
        if key != "reference" {
            return Err(Error::not_implemented(format!("the image filter {key} is not supported yet")));
        }
    }
    let mut images = engine.images.list()?;
    let patterns = references.iter().map(|r| reference_pattern(r)).collect::<Result<Vec<_>>>()?;
    let matching_tags = |id: &str| -> Vec<String> {
        let tags = engine.images.tags_of(id);
        if patterns.is_empty() {
            return tags;
        }
        tags.into_iter()
            .filter(|tag| {
                let repo = tag.rsplit_once(':').map(|(repo, _)| repo).unwrap_or(tag);
                patterns.iter().any(|(pattern, with_tag)| pattern.is_match(if *with_tag { tag } else { repo }))
            })
            .collect()
    };
    images.sort_by(|a, b| b.created.cmp(&a.created));
    // With a reference filter, an image is listed with its matching tags only, as in Docker.
    let listed = images
        .iter()
        .filter_map(|image| {
            let tags = matching_tags(&image.id);
            (patterns.is_empty() || !tags.is_empty()).then(|| summary(image, tags))
        })
        .collect();
    Ok(Json(Value::Array(listed)))
}

/// `POST /images/{name}/tag`; other POSTs under /images/{name} (push) are not served.
async fn post_image(State(engine): State<Arc<Engine>>, Path(rest): Path<String>, params: Params) -> Result<StatusCode> {
    let Some(name) = rest.strip_suffix("/tag") else {
        if rest.ends_with("/push") {
            return Err(Error::not_implemented("berth does not implement image push"));
        }
        return Err(Error::not_found("page not found"));
    };
    engine.tag_image(name, params.get("repo").unwrap_or(""), params.get("tag").unwrap_or(""))?;
    Ok(StatusCode::CREATED)
}

/// `DELETE /images/{name}`: `[{"Untagged": "..."}, {"Deleted": "sha256:..."}]`.
async fn delete_image(State(engine): State<Arc<Engine>>, Path(name): Path<String>, params: Params) -> Result<Json<Value>> {
    let removed = engine.remove_image(&name, params.flag("force"))?;
    Ok(Json(serde_json::to_value(removed)?))
}

/// `GET /images/{name}/json`; names may contain slashes, so the route takes the rest.
async fn get_image(State(engine): State<Arc<Engine>>, Path(rest): Path<String>) -> Result<Json<Value>> {
    let Some(name) = rest.strip_suffix("/json") else {
        if rest.ends_with("/get") || rest.ends_with("/history") {
            return Err(Error::not_implemented(format!("berth does not implement GET /images/{rest} yet")));
        }
        return Err(Error::not_found("page not found"));
    };
    let image = engine.images.resolve(name)?;
    let config = serde_json::to_value(&image.config)?;
    Ok(Json(json!({
        "Id": image.id,
        "RepoTags": engine.images.tags_of(&image.id),
        "RepoDigests": [],
        "Parent": "",
        "Comment": image.comment,
        "Created": image.created,
        "DockerVersion": "",
        "Author": "",
        "Config": config,
        "Architecture": image.architecture,
        "Os": image.os,
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {"Name": "overlay", "Data": {}},
        "RootFS": {"Type": "layers", "Layers": image.diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    })))
}

