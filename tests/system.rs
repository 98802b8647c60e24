//! System endpoints and API plumbing: ping, version, info, version prefixes, unknown routes.

mod common;

use common::Daemon;

#[tokio::test]
async fn ping_answers_with_docker_headers() {
    let daemon = Daemon::start().await;
    let reply = daemon.request("GET", "/_ping", b"");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "OK");
    assert_eq!(reply.header("Api-Version"), Some("1.47"));
    assert_eq!(reply.header("Ostype"), Some("linux"));
    assert!(reply.header("Server").is_some_and(|s| s.starts_with("berth/")));
    let head = daemon.request("HEAD", "/_ping", b"");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    let pong = daemon.docker.ping().await.unwrap();
    assert_eq!(pong, "OK");
    daemon.check_clean().await;
}

#[tokio::test]
async fn version_prefixes_are_accepted_or_rejected() {
    let daemon = Daemon::start().await;
    assert_eq!(daemon.request("GET", "/v1.24/version", b"").status, 200);
    assert_eq!(daemon.request("GET", "/v1.47/version", b"").status, 200);
    // A newer version than berth serves is served as 1.47 rather than rejected.
    let newer = daemon.request("GET", "/v1.52/containers/json", b"");
    assert_eq!(newer.status, 200);
    let old = daemon.request("GET", "/v1.23/version", b"");
    assert_eq!(old.status, 400);
    assert_eq!(
        old.json()["message"],
        "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
    );
    daemon.check_clean().await;
}

#[tokio::test]
async fn unknown_route_is_page_not_found() {
    let daemon = Daemon::start().await;
    for path in ["/nope", "/v1.47/containers/x/frobnicate", "/v1.47/"] {
        let reply = daemon.request("GET", path, b"");
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.json()["message"], "page not found", "{path}");
        assert_eq!(reply.header("Content-Type"), Some("application/json"));
    }
    daemon.check_clean().await;
}

#[tokio::test]
async fn version_and_info_have_fields_clients_read() {
    let daemon = Daemon::start().await;
    let version = daemon.docker.version().await.unwrap();
    assert_eq!(version.api_version.as_deref(), Some("1.47"));
    assert_eq!(version.min_api_version.as_deref(), Some("1.24"));
    assert_eq!(version.os.as_deref(), Some("linux"));
    let info = daemon.docker.info().await.unwrap();
    assert_eq!(info.images, Some(1));
    assert_eq!(info.containers, Some(0));
    assert_eq!(info.os_type.as_deref(), Some("linux"));
    assert_eq!(info.logging_driver.as_deref(), Some("json-file"));
    assert!(info.ncpu.unwrap() >= 1);
    assert!(info.mem_total.unwrap() > 0);
    daemon.check_clean().await;
}

#[tokio::test]
async fn images_import_list_and_inspect() {
    let daemon = Daemon::start().await;
    let images = daemon.docker.list_images::<String>(None).await.unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].repo_tags, vec!["busybox:latest".to_string()]);
    assert!(images[0].id.starts_with("sha256:"));

    let inspect = daemon.docker.inspect_image("busybox").await.unwrap();
    assert_eq!(inspect.id.as_deref(), Some(images[0].id.as_str()));
    assert_eq!(inspect.os.as_deref(), Some("linux"));
    assert_eq!(inspect.root_fs.unwrap().layers.unwrap().len(), 1);
    // The short id and the full id resolve too.
    let short = &images[0].id[7..19];
    assert_eq!(daemon.request("GET", &format!("/images/{short}/json"), b"").status, 200);

    let missing = daemon.request("GET", "/images/nope/json", b"");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "No such image: nope:latest");

    // Re-importing the same tar under another tag adds a tag, not a second layer.
    let tar = std::fs::read(common::BUSYBOX_TAR).unwrap();
    let reply = daemon.request("POST", "/images/create?fromSrc=-&repo=mybox&tag=v1&changes=CMD%20%5B%22sh%22%5D", &tar);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let id = reply.json()["status"].as_str().unwrap().to_string();
    let mybox = daemon.request("GET", "/images/mybox:v1/json", b"").json();
    assert_eq!(mybox["Id"], id.as_str());
    assert_eq!(mybox["Config"]["Cmd"], serde_json::json!(["sh"]));
    let layers = std::fs::read_dir(daemon.root().join("image/layers")).unwrap().count();
    assert_eq!(layers, 1);

    // The docker CLI sends the whole reference in repo and no tag.
    let reply = daemon.request("POST", "/images/create?fromSrc=-&repo=cli%2Fbox%3A1", &tar);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let tags = daemon.request("GET", "/images/cli/box:1/json", b"").json()["RepoTags"].clone();
    assert!(tags.as_array().unwrap().iter().any(|t| t == "cli/box:1"), "{tags}");

    // A reference filter lists the matching images with their matching tags only.
    let filtered = daemon.request("GET", "/images/json?filters=%7B%22reference%22%3A%5B%22my%2A%22%5D%7D", b"").json();
    assert_eq!(filtered.as_array().unwrap().len(), 1, "{filtered}");
    assert_eq!(filtered[0]["RepoTags"], serde_json::json!(["mybox:v1"]));
    daemon.check_clean().await;
}

#[tokio::test]
async fn pull_is_rejected_with_a_clear_message() {
    let daemon = Daemon::start().await;
    let reply = daemon.request("POST", "/images/create?fromImage=docker.io%2Flibrary%2Falpine&tag=latest", b"");
    assert_eq!(reply.status, 501);
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("pulling images is not supported yet"), "{message}");
    assert!(message.contains("alpine:latest"), "{message}");
    daemon.check_clean().await;
}

#[tokio::test]
async fn import_of_a_broken_tar_is_rejected() {
    let daemon = Daemon::start().await;
    let reply = daemon.request("POST", "/images/create?fromSrc=-&repo=broken", &[7u8; 1500]);
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.json()["message"].as_str().unwrap().contains("tar"), "{}", reply.text());
    let images = daemon.request("GET", "/images/json", b"").json();
    assert_eq!(images.as_array().unwrap().len(), 1);
    daemon.check_clean().await;
}

#[tokio::test]
async fn images_tag_and_remove_with_conflicts() {
    let daemon = Daemon::start().await;
    let tagged = daemon.request("POST", "/images/busybox/tag?repo=docker.io%2Flibrary%2Fmybox&tag=v2", b"");
    assert_eq!(tagged.status, 201, "{}", tagged.text());
    let inspect = daemon.request("GET", "/images/mybox:v2/json", b"").json();
    let id = inspect["Id"].as_str().unwrap().to_string();
    let mut tags: Vec<String> = inspect["RepoTags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    tags.sort();
    assert_eq!(tags, vec!["busybox:latest", "mybox:v2"]);
    assert_eq!(daemon.request("POST", "/images/nope/tag?repo=x", b"").status, 404);

    // Two tags: removing one only untags.
    let untag = daemon.request("DELETE", "/images/mybox:v2", b"");
    assert_eq!(untag.status, 200, "{}", untag.text());
    assert_eq!(untag.json(), serde_json::json!([{"Untagged": "mybox:v2"}]));

    // The last tag of an image a container uses needs force.
    let created = daemon.post_json("/containers/create", serde_json::json!({"Image": "busybox", "Cmd": ["true"]}));
    let container = created.json()["Id"].as_str().unwrap().to_string();
    let conflict = daemon.request("DELETE", "/images/busybox", b"");
    assert_eq!(conflict.status, 409);
    assert!(conflict.json()["message"].as_str().unwrap().starts_with("conflict: unable to remove repository reference \"busybox\" (must force)"), "{}", conflict.text());
    assert_eq!(daemon.request("DELETE", &format!("/containers/{container}"), b"").status, 204);

    let deleted = daemon.request("DELETE", "/images/busybox", b"");
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json(), serde_json::json!([{"Untagged": "busybox:latest"}, {"Deleted": id}]));
    assert_eq!(std::fs::read_dir(daemon.root().join("image/layers")).unwrap().count(), 0);
    assert_eq!(daemon.request("GET", "/images/json", b"").json(), serde_json::json!([]));
    assert_eq!(daemon.request("DELETE", "/images/busybox", b"").status, 404);
    daemon.check_clean().await;
}
