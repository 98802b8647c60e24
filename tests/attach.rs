//! Attach with the `Upgrade: tcp` hijack, through bollard.

mod common;

use bollard::container::{AttachContainerOptions, AttachContainerResults, Config, LogOutput};
use common::{unique_name, Daemon};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

async fn collect(mut output: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>) -> (String, String) {
    let (mut out, mut err) = (String::new(), String::new());
    while let Some(item) = output.next().await {
        match item.unwrap() {
            LogOutput::StdOut { message } => out.push_str(&String::from_utf8_lossy(&message)),
            LogOutput::StdErr { message } => err.push_str(&String::from_utf8_lossy(&message)),
            other => panic!("unexpected {other:?}"),
        }
    }
    (out, err)
}

#[tokio::test]
async fn attach_before_start_misses_no_output() {
    let daemon = Daemon::start().await;
    for round in 0..5 {
        let config = Config { image: Some("busybox"), cmd: Some(vec!["sh", "-c", "echo one; echo two >&2"]), ..Default::default() };
        let id = daemon.docker.create_container::<String, _>(None, config).await.unwrap().id;
        let options = AttachContainerOptions::<String> { stream: Some(true), stdout: Some(true), stderr: Some(true), ..Default::default() };
        let AttachContainerResults { output, .. } = daemon.docker.attach_container(&id, Some(options)).await.unwrap();
        daemon.docker.start_container::<String>(&id, None).await.unwrap();
        let (out, err) = tokio::time::timeout(std::time::Duration::from_secs(20), collect(output)).await.unwrap();
        assert_eq!(out, "one\n", "round {round}");
        assert_eq!(err, "two\n", "round {round}");
    }
    daemon.check_clean().await;
}

#[tokio::test]
async fn attach_stdin_reaches_the_container() {
    let daemon = Daemon::start().await;
    let name = unique_name("cat");
    let config = Config {
        image: Some("busybox"),
        cmd: Some(vec!["cat"]),
        open_stdin: Some(true),
        stdin_once: Some(true),
        attach_stdin: Some(true),
        ..Default::default()
    };
    let options = bollard::container::CreateContainerOptions { name: name.as_str(), platform: None };
    let id = daemon.docker.create_container(Some(options), config).await.unwrap().id;
    let options = AttachContainerOptions::<String> { stream: Some(true), stdin: Some(true), stdout: Some(true), stderr: Some(true), ..Default::default() };
    let AttachContainerResults { output, mut input } = daemon.docker.attach_container(&id, Some(options)).await.unwrap();
    // Like `docker run -i`, stdin and its end arrive before the container starts.
    input.write_all(b"hello\nworld\n").await.unwrap();
    input.shutdown().await.unwrap();
    daemon.docker.start_container::<String>(&id, None).await.unwrap();
    let (out, _) = tokio::time::timeout(std::time::Duration::from_secs(20), collect(output)).await.unwrap();
    assert_eq!(out, "hello\nworld\n");
    let wait = daemon.request("POST", &format!("/containers/{id}/wait"), b"");
    assert_eq!(wait.json()["StatusCode"], 0);
    daemon.check_clean().await;
}

#[tokio::test]
async fn attach_to_running_container_and_errors() {
    let daemon = Daemon::start().await;
    let config = Config { image: Some("busybox"), cmd: Some(vec!["sh", "-c", "sleep 0.5; echo late"]), ..Default::default() };
    let id = daemon.docker.create_container::<String, _>(None, config).await.unwrap().id;
    daemon.docker.start_container::<String>(&id, None).await.unwrap();
    let options = AttachContainerOptions::<String> { stream: Some(true), stdout: Some(true), stderr: Some(true), ..Default::default() };
    let first = daemon.docker.attach_container(&id, Some(options.clone())).await.unwrap();
    let second = daemon.docker.attach_container(&id, Some(options)).await.unwrap();
    let (a, b) = tokio::join!(collect(first.output), collect(second.output));
    assert_eq!(a.0, "late\n");
    assert_eq!(b.0, "late\n");

    let missing = daemon.request("POST", "/containers/nosuch/attach?stream=1&stdout=1", b"");
    assert_eq!(missing.status, 404);
    daemon.check_clean().await;
}

#[tokio::test]
async fn attach_stdin_to_running_container() {
    let daemon = Daemon::start().await;
    let config = Config {
        image: Some("busybox"),
        cmd: Some(vec!["cat"]),
        open_stdin: Some(true),
        stdin_once: Some(true),
        ..Default::default()
    };
    let id = daemon.docker.create_container::<String, _>(None, config).await.unwrap().id;
    daemon.docker.start_container::<String>(&id, None).await.unwrap();
    let options = AttachContainerOptions::<String> { stream: Some(true), stdin: Some(true), stdout: Some(true), ..Default::default() };
    let AttachContainerResults { output, mut input } = daemon.docker.attach_container(&id, Some(options)).await.unwrap();
    input.write_all(b"late input\n").await.unwrap();
    input.shutdown().await.unwrap();
    let (out, _) = tokio::time::timeout(std::time::Duration::from_secs(20), collect(output)).await.unwrap();
    assert_eq!(out, "late input\n");
    let wait = daemon.request("POST", &format!("/containers/{id}/wait"), b"");
    assert_eq!(wait.json()["StatusCode"], 0);
    daemon.check_clean().await;
}
