//! Container lifecycle through bollard and raw HTTP: create, start, wait, logs, stop, kill,
//! restart, remove, list, inspect, and their error cases.

mod common;

use std::time::Duration;

use bollard::container::{
    Config, CreateContainerOptions, KillContainerOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions,
    StopContainerOptions, WaitContainerOptions,
};
use bollard::models::HostConfig;
use common::{demux, unique_name, Daemon};
use futures_util::StreamExt;
use serde_json::json;

async fn create(daemon: &Daemon, name: &str, cmd: &[&str]) -> String {
    let config = Config { image: Some("busybox"), cmd: Some(cmd.to_vec()), ..Default::default() };
    let options = CreateContainerOptions { name, platform: None };
    daemon.docker.create_container(Some(options), config).await.unwrap().id
}

async fn wait_exit(daemon: &Daemon, id: &str) -> i64 {
    let mut stream = daemon.docker.wait_container(id, None::<WaitContainerOptions<String>>);
    match stream.next().await.unwrap() {
        Ok(response) => response.status_code,
        Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => code,
        Err(err) => panic!("wait failed: {err}"),
    }
}

async fn logs_of(daemon: &Daemon, id: &str) -> (String, String) {
    let options = LogsOptions::<String> { stdout: true, stderr: true, ..Default::default() };
    let mut stream = daemon.docker.logs(id, Some(options));
    let (mut out, mut err) = (String::new(), String::new());
    while let Some(item) = stream.next().await {
        match item.unwrap() {
            bollard::container::LogOutput::StdOut { message } => out.push_str(&String::from_utf8_lossy(&message)),
            bollard::container::LogOutput::StdErr { message } => err.push_str(&String::from_utf8_lossy(&message)),
            other => panic!("unexpected log item {other:?}"),
        }
    }
    (out, err)
}

#[tokio::test]
async fn lifecycle_echo_wait_logs_remove() {
    let daemon = Daemon::start().await;
    let name = unique_name("hello");
    let id = create(&daemon, &name, &["echo", "hello from berth"]).await;
    assert_eq!(id.len(), 64);
    let created = daemon.docker.inspect_container(&name, None).await.unwrap();
    let state = created.state.unwrap();
    assert_eq!(state.status, Some(bollard::models::ContainerStateStatusEnum::CREATED));
    assert_eq!(state.started_at.as_deref(), Some("0001-01-01T00:00:00Z"));

    daemon.docker.start_container::<String>(&name, None).await.unwrap();
    assert_eq!(wait_exit(&daemon, &id).await, 0);
    let (out, err) = logs_of(&daemon, &id).await;
    assert_eq!(out, "hello from berth\n");
    assert_eq!(err, "");

    let raw = daemon.request("GET", &format!("/containers/{name}/logs?stdout=1"), b"");
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("Content-Type"), Some("application/vnd.docker.multiplexed-stream"));
    let mut expected = vec![1u8, 0, 0, 0, 0, 0, 0, 17];
    expected.extend_from_slice(b"hello from berth\n");
    assert_eq!(raw.body, expected);

    let inspect = daemon.docker.inspect_container(&id, None).await.unwrap();
    let state = inspect.state.unwrap();
    assert_eq!(state.status, Some(bollard::models::ContainerStateStatusEnum::EXITED));
    assert_eq!(state.exit_code, Some(0));
    assert_eq!(state.running, Some(false));
    assert_eq!(inspect.name.as_deref(), Some(format!("/{name}").as_str()));
    assert_eq!(inspect.path.as_deref(), Some("echo"));
    assert_eq!(inspect.args, Some(vec!["hello from berth".to_string()]));
    assert_eq!(inspect.config.unwrap().hostname.as_deref(), Some(&id[..12]));

    daemon.docker.remove_container(&id, None).await.unwrap();
    let gone = daemon.request("GET", &format!("/containers/{id}/json"), b"");
    assert_eq!(gone.status, 404);
    assert_eq!(gone.json()["message"], format!("No such container: {id}"));
    daemon.check_clean().await;
}

#[tokio::test]
async fn exit_codes_are_reported() {
    let daemon = Daemon::start().await;
    let three = create(&daemon, &unique_name("three"), &["sh", "-c", "exit 3"]).await;
    daemon.docker.start_container::<String>(&three, None).await.unwrap();
    assert_eq!(wait_exit(&daemon, &three).await, 3);

    let killed = create(&daemon, &unique_name("killed"), &["sleep", "100"]).await;
    daemon.docker.start_container::<String>(&killed, None).await.unwrap();
    daemon.docker.kill_container::<String>(&killed, None).await.unwrap();
    // Like Docker, a SIGKILL returns once the process is gone.
    let state = daemon.docker.inspect_container(&killed, None).await.unwrap().state.unwrap();
    assert_eq!(state.running, Some(false));
    assert_eq!(state.exit_code, Some(137));
    assert_eq!(wait_exit(&daemon, &killed).await, 137);
    assert_ne!(state.finished_at.as_deref(), Some("0001-01-01T00:00:00Z"));

    // busybox sleep as pid 1 ignores SIGTERM, so stop escalates to SIGKILL after t seconds.
    let stubborn = create(&daemon, &unique_name("stubborn"), &["sleep", "100"]).await;
    daemon.docker.start_container::<String>(&stubborn, None).await.unwrap();
    let started = std::time::Instant::now();
    daemon.docker.stop_container(&stubborn, Some(StopContainerOptions { t: 1 })).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900), "stop returned before the timeout");
    let state = daemon.docker.inspect_container(&stubborn, None).await.unwrap().state.unwrap();
    assert_eq!(state.exit_code, Some(137));

    // A process that handles SIGTERM exits with its own code when stopped.
    let polite = create(&daemon, &unique_name("polite"), &["sh", "-c", "trap 'exit 143' TERM; while true; do sleep 0.1; done"]).await;
    daemon.docker.start_container::<String>(&polite, None).await.unwrap();
    daemon.docker.stop_container(&polite, Some(StopContainerOptions { t: 10 })).await.unwrap();
    let state = daemon.docker.inspect_container(&polite, None).await.unwrap().state.unwrap();
    assert_eq!(state.exit_code, Some(143));
    daemon.check_clean().await;
}

#[tokio::test]
async fn error_cases_have_docker_status_and_message() {
    let daemon = Daemon::start().await;
    let name = unique_name("dup");
    let id = create(&daemon, &name, &["sleep", "100"]).await;

    let dup = daemon.post_json(&format!("/containers/create?name={name}"), json!({"Image": "busybox", "Cmd": ["true"]}));
    assert_eq!(dup.status, 409);
    assert_eq!(
        dup.json()["message"],
        format!("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")
    );

    let bad_json = daemon.request("POST", "/containers/create", b"{\"Image\": ");
    assert_eq!(bad_json.status, 400);
    assert!(bad_json.json()["message"].as_str().unwrap().starts_with("invalid JSON"), "{}", bad_json.text());

    let bad_name = daemon.post_json("/containers/create?name=bad%20name", json!({"Image": "busybox", "Cmd": ["true"]}));
    assert_eq!(bad_name.status, 400);
    assert_eq!(bad_name.json()["message"], "Invalid container name (bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");

    let no_image = daemon.post_json("/containers/create", json!({"Image": "nope", "Cmd": ["true"]}));
    assert_eq!(no_image.status, 404);
    assert_eq!(no_image.json()["message"], "No such image: nope:latest");

    let no_cmd = daemon.post_json("/containers/create", json!({"Image": "busybox"}));
    assert_eq!(no_cmd.status, 400);
    assert_eq!(no_cmd.json()["message"], "No command specified");

    for (method, path) in [
        ("GET", "/containers/nosuch/json"),
        ("POST", "/containers/nosuch/start"),
        ("POST", "/containers/nosuch/stop"),
        ("POST", "/containers/nosuch/kill"),
        ("POST", "/containers/nosuch/wait"),
        ("GET", "/containers/nosuch/logs?stdout=1"),
        ("DELETE", "/containers/nosuch"),
    ] {
        let reply = daemon.request(method, path, b"");
        assert_eq!(reply.status, 404, "{method} {path}");
        assert_eq!(reply.json()["message"], "No such container: nosuch", "{method} {path}");
    }

    let kill_created = daemon.request("POST", &format!("/containers/{name}/kill"), b"");
    assert_eq!(kill_created.status, 409);
    assert!(kill_created.json()["message"].as_str().unwrap().ends_with("is not running"), "{}", kill_created.text());

    assert_eq!(daemon.request("POST", &format!("/containers/{name}/start"), b"").status, 204);
    let again = daemon.request("POST", &format!("/containers/{name}/start"), b"");
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    let remove_running = daemon.request("DELETE", &format!("/containers/{name}"), b"");
    assert_eq!(remove_running.status, 409);
    assert_eq!(
        remove_running.json()["message"],
        format!("cannot remove container \"/{name}\": container is running: stop the container before removing or force remove")
    );

    let bad_signal = daemon.request("POST", &format!("/containers/{name}/kill?signal=NOPE"), b"");
    assert_eq!(bad_signal.status, 400);
    assert_eq!(bad_signal.json()["message"], "Invalid signal: NOPE");

    let bad_condition = daemon.request("POST", &format!("/containers/{name}/wait?condition=never"), b"");
    assert_eq!(bad_condition.status, 400);

    let no_stream = daemon.request("GET", &format!("/containers/{name}/logs"), b"");
    assert_eq!(no_stream.status, 400);
    assert_eq!(no_stream.json()["message"], "Bad parameters: you must choose at least one stream");

    let bad_timeout = daemon.request("POST", &format!("/containers/{name}/stop?t=soon"), b"");
    assert_eq!(bad_timeout.status, 400);
    assert!(bad_timeout.json()["message"].as_str().unwrap().contains("t"), "{}", bad_timeout.text());

    let stop = daemon.request("POST", &format!("/containers/{name}/stop?t=0"), b"");
    assert_eq!(stop.status, 204);
    let stop_again = daemon.request("POST", &format!("/containers/{name}/stop"), b"");
    assert_eq!(stop_again.status, 304);
    let kill_stopped = daemon.request("POST", &format!("/containers/{name}/kill"), b"");
    assert_eq!(kill_stopped.status, 409);
    daemon.check_clean().await;
}

#[tokio::test]
async fn references_resolve_by_id_name_and_prefix() {
    let daemon = Daemon::start().await;
    let name = unique_name("ref");
    let id = create(&daemon, &name, &["true"]).await;
    for reference in [id.clone(), name.clone(), format!("/{name}"), id[..12].to_string(), id[..3].to_string()] {
        let reply = daemon.request("GET", &format!("/containers/{}/json", reference.replace('/', "%2F")), b"");
        assert_eq!(reply.status, 200, "{reference}");
        assert_eq!(reply.json()["Id"], id.as_str(), "{reference}");
    }
    // Create until two ids share a first hex digit, then that digit is ambiguous.
    let mut ids = vec![id.clone()];
    let ambiguous = loop {
        let other = create(&daemon, &unique_name("ref"), &["true"]).await;
        if let Some(clash) = ids.iter().find(|i| i[..1] == other[..1]) {
            break clash[..1].to_string();
        }
        ids.push(other);
    };
    let reply = daemon.request("GET", &format!("/containers/{ambiguous}/json"), b"");
    assert_eq!(reply.status, 400);
    assert!(reply.json()["message"].as_str().unwrap().contains("multiple IDs found"), "{}", reply.text());
    daemon.check_clean().await;
}

#[tokio::test]
async fn list_filters_and_summaries() {
    let daemon = Daemon::start().await;
    let labels = std::collections::HashMap::from([("team", "blue")]);
    let config = Config { image: Some("busybox"), cmd: Some(vec!["sleep", "100"]), labels: Some(labels), ..Default::default() };
    let runner_name = unique_name("runner");
    let runner = daemon
        .docker
        .create_container(Some(CreateContainerOptions { name: runner_name.as_str(), platform: None }), config)
        .await
        .unwrap()
        .id;
    daemon.docker.start_container::<String>(&runner, None).await.unwrap();
    let exited = create(&daemon, &unique_name("exited"), &["sh", "-c", "exit 2"]).await;
    daemon.docker.start_container::<String>(&exited, None).await.unwrap();
    assert_eq!(wait_exit(&daemon, &exited).await, 2);
    let fresh = create(&daemon, &unique_name("fresh"), &["true"]).await;

    let ids = |list: Vec<bollard::models::ContainerSummary>| list.into_iter().map(|c| c.id.unwrap()).collect::<Vec<_>>();
    let running = daemon.docker.list_containers::<String>(None).await.unwrap();
    assert_eq!(ids(running.clone()), vec![runner.clone()]);
    assert!(running[0].status.as_deref().unwrap().starts_with("Up "), "{:?}", running[0].status);
    assert_eq!(running[0].command.as_deref(), Some("sleep 100"));
    assert_eq!(running[0].names, Some(vec![format!("/{runner_name}")]));

    let all = daemon.docker.list_containers(Some(ListContainersOptions::<String> { all: true, ..Default::default() })).await.unwrap();
    assert_eq!(all.len(), 3);
    let by_status = |status: &str| {
        let filters = std::collections::HashMap::from([("status".to_string(), vec![status.to_string()])]);
        ListContainersOptions { all: true, filters, ..Default::default() }
    };
    assert_eq!(ids(daemon.docker.list_containers(Some(by_status("exited"))).await.unwrap()), vec![exited.clone()]);
    assert_eq!(ids(daemon.docker.list_containers(Some(by_status("created"))).await.unwrap()), vec![fresh.clone()]);
    let exited_summary = daemon.docker.list_containers(Some(by_status("exited"))).await.unwrap();
    assert!(exited_summary[0].status.as_deref().unwrap().starts_with("Exited (2) "), "{:?}", exited_summary[0].status);

    let query = |filters: serde_json::Value| {
        let encoded: String = filters.to_string().bytes().map(|b| format!("%{b:02X}")).collect();
        daemon.request("GET", &format!("/containers/json?all=1&filters={encoded}"), b"").json()
    };
    let only = |value: serde_json::Value| value.as_array().unwrap().iter().map(|c| c["Id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(only(query(json!({"label": ["team=blue"]}))), vec![runner.clone()]);
    assert_eq!(only(query(json!({"label": ["team"]}))), vec![runner.clone()]);
    assert_eq!(only(query(json!({"exited": ["2"]}))), vec![exited.clone()]);
    assert_eq!(only(query(json!({"name": [runner_name.clone()]}))), vec![runner.clone()]);
    assert_eq!(only(query(json!({"id": [fresh[..10].to_string()]}))), vec![fresh.clone()]);
    let limited = daemon.request("GET", "/containers/json?all=1&limit=1", b"").json();
    assert_eq!(limited.as_array().unwrap().len(), 1);

    let bad = daemon.request("GET", "/containers/json?filters=%7Bnot-json", b"");
    assert_eq!(bad.status, 400);
    let bad_status = daemon.request("GET", "/containers/json?filters=%7B%22status%22%3A%5B%22sleepy%22%5D%7D", b"");
    assert_eq!(bad_status.status, 400);
    daemon.check_clean().await;
}

#[tokio::test]
async fn logs_options_tail_timestamps_streams_and_follow() {
    let daemon = Daemon::start().await;
    // stdout and stderr are read by separate threads, so only the sleeps fix the order of
    // entries across the two streams.
    let script = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; sleep 0.05; done; echo last >&2";
    let id = create(&daemon, &unique_name("logs"), &["sh", "-c", script]).await;
    daemon.docker.start_container::<String>(&id, None).await.unwrap();
    assert_eq!(wait_exit(&daemon, &id).await, 0);

    let get = |query: &str| daemon.request("GET", &format!("/containers/{id}/logs?{query}"), b"");
    let (out, err) = demux(&get("stdout=1&stderr=1").body);
    assert_eq!(String::from_utf8(out).unwrap(), "out1\nout2\nout3\nout4\nout5\n");
    assert_eq!(String::from_utf8(err).unwrap(), "err1\nerr2\nerr3\nerr4\nerr5\nlast\n");

    let (out, err) = demux(&get("stderr=1").body);
    assert!(out.is_empty());
    assert_eq!(err.len(), 30);

    let (out, err) = demux(&get("stdout=1&stderr=1&tail=3").body);
    assert_eq!(String::from_utf8(out).unwrap(), "out5\n");
    assert_eq!(String::from_utf8(err).unwrap(), "err5\nlast\n");
    let (out, _) = demux(&get("stdout=1&tail=0").body);
    assert!(out.is_empty());

    // Like Docker's json-file reader, tail counts entries of both streams before filtering.
    let (out, _) = demux(&get("stdout=1&tail=1").body);
    assert!(out.is_empty());
    let (out, _) = demux(&get("stdout=1&stderr=1&timestamps=1&tail=3").body);
    let line = String::from_utf8(out).unwrap();
    let (stamp, text) = line.split_once(' ').unwrap();
    assert_eq!(text, "out5\n");
    assert_eq!(stamp.len(), "2024-01-01T00:00:00.000000000Z".len(), "{stamp}");
    assert!(chrono::DateTime::parse_from_rfc3339(stamp).is_ok(), "{stamp}");

    let future = chrono::Utc::now().timestamp() + 3600;
    let (out, _) = demux(&get(&format!("stdout=1&since={future}")).body);
    assert!(out.is_empty());
    let (out, _) = demux(&get("stdout=1&until=1000").body);
    assert!(out.is_empty());
    let (out, _) = demux(&get("stdout=1&since=1000").body);
    assert_eq!(out.len(), 25);

    // follow streams lines as they are written and ends when the container exits.
    let follower = create(&daemon, &unique_name("follow"), &["sh", "-c", "echo a; sleep 1; echo b"]).await;
    daemon.docker.start_container::<String>(&follower, None).await.unwrap();
    let started = std::time::Instant::now();
    let reply = daemon.request("GET", &format!("/containers/{follower}/logs?stdout=1&follow=1"), b"");
    let (out, _) = demux(&reply.body);
    assert_eq!(String::from_utf8(out).unwrap(), "a\nb\n");
    assert!(started.elapsed() >= Duration::from_millis(500), "follow ended before the container did");
    daemon.check_clean().await;
}

#[tokio::test]
async fn wait_conditions_and_auto_remove() {
    let daemon = Daemon::start().await;
    // not-running returns at once for a created container.
    let created = create(&daemon, &unique_name("created"), &["true"]).await;
    let reply = daemon.request("POST", &format!("/containers/{created}/wait"), b"");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({"StatusCode": 0}));

    // next-exit waits through a start.
    let next = create(&daemon, &unique_name("next"), &["sh", "-c", "exit 5"]).await;
    let mut waiter = daemon.docker.wait_container(&next, Some(WaitContainerOptions { condition: "next-exit" }));
    let wait_task = tokio::spawn(async move {
        match waiter.next().await.unwrap() {
            Ok(r) => r.status_code,
            Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => code,
            Err(err) => panic!("{err}"),
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    daemon.docker.start_container::<String>(&next, None).await.unwrap();
    assert_eq!(tokio::time::timeout(Duration::from_secs(20), wait_task).await.unwrap().unwrap(), 5);

    // removed, with AutoRemove: the wait returns after the container is gone.
    let config = Config {
        image: Some("busybox"),
        cmd: Some(vec!["sh", "-c", "exit 4"]),
        host_config: Some(HostConfig { auto_remove: Some(true), ..Default::default() }),
        ..Default::default()
    };
    let auto_name = unique_name("auto");
    let auto = daemon.docker.create_container(Some(CreateContainerOptions { name: auto_name.as_str(), platform: None }), config).await.unwrap().id;
    let mut waiter = daemon.docker.wait_container(&auto, Some(WaitContainerOptions { condition: "removed" }));
    let wait_task = tokio::spawn(async move {
        match waiter.next().await.unwrap() {
            Ok(r) => r.status_code,
            Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => code,
            Err(err) => panic!("{err}"),
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    daemon.docker.start_container::<String>(&auto, None).await.unwrap();
    assert_eq!(tokio::time::timeout(Duration::from_secs(20), wait_task).await.unwrap().unwrap(), 4);
    assert_eq!(daemon.request("GET", &format!("/containers/{auto}/json"), b"").status, 404);
    daemon.check_clean().await;
}

#[tokio::test]
async fn restart_and_force_remove() {
    let daemon = Daemon::start().await;
    let script = "trap 'echo got usr1; exit 9' USR1; while true; do sleep 0.1; done";
    let id = create(&daemon, &unique_name("restart"), &["sh", "-c", script]).await;
    daemon.docker.start_container::<String>(&id, None).await.unwrap();
    let first = daemon.docker.inspect_container(&id, None).await.unwrap().state.unwrap();
    let reply = daemon.request("POST", &format!("/containers/{id}/restart?t=0"), b"");
    assert_eq!(reply.status, 204, "{}", reply.text());
    let second = daemon.docker.inspect_container(&id, None).await.unwrap().state.unwrap();
    assert_eq!(second.running, Some(true));
    assert_ne!(first.pid, second.pid);
    assert_ne!(first.started_at, second.started_at);

    let signal = KillContainerOptions { signal: "SIGUSR1" };
    daemon.docker.kill_container(&id, Some(signal)).await.unwrap();
    assert_eq!(wait_exit(&daemon, &id).await, 9);
    assert_eq!(logs_of(&daemon, &id).await.0, "got usr1\n");

    daemon.docker.start_container::<String>(&id, None).await.unwrap();
    daemon
        .docker
        .remove_container(&id, Some(RemoveContainerOptions { force: true, ..Default::default() }))
        .await
        .unwrap();
    assert_eq!(daemon.request("GET", &format!("/containers/{id}/json"), b"").status, 404);
    daemon.check_clean().await;
}

#[tokio::test]
async fn config_reaches_the_process() {
    let daemon = Daemon::start().await;
    let shared = daemon.base.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("note"), "from the host\n").unwrap();
    let bind = format!("{}:/data:ro", shared.display());
    let body = json!({
        "Image": "busybox",
        "Cmd": ["sh", "-c", "echo $GREETING; pwd; id -u; hostname; cat /data/note; touch /data/x 2>/dev/null || echo read-only"],
        "Env": ["GREETING=hi there"],
        "WorkingDir": "/tmp",
        "User": "nobody",
        "Hostname": "box",
        "HostConfig": {"Binds": [bind], "Memory": 64 * 1024 * 1024, "NanoCpus": 500000000, "PidsLimit": 50, "NetworkMode": "none"},
    });
    let reply = daemon.post_json("/containers/create", body);
    assert_eq!(reply.status, 201, "{}", reply.text());
    let id = reply.json()["Id"].as_str().unwrap().to_string();
    daemon.docker.start_container::<String>(&id, None).await.unwrap();
    assert_eq!(wait_exit(&daemon, &id).await, 0);
    let (out, err) = logs_of(&daemon, &id).await;
    assert_eq!(out, "hi there\n/tmp\n65534\nbox\nfrom the host\nread-only\n", "stderr: {err}");
    let inspect = daemon.request("GET", &format!("/containers/{id}/json"), b"").json();
    assert_eq!(inspect["HostConfig"]["Memory"], 64 * 1024 * 1024);
    assert_eq!(inspect["Mounts"][0]["Destination"], "/data");
    assert_eq!(inspect["Mounts"][0]["RW"], false);

    let bad_bind = daemon.post_json("/containers/create", json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Binds": ["/definitely/missing:/x"]}}));
    assert_eq!(bad_bind.status, 400, "{}", bad_bind.text());
    let volume = daemon.post_json("/containers/create", json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Binds": ["myvolume:/x"]}}));
    assert_eq!(volume.status, 501, "{}", volume.text());
    let tiny = daemon.post_json("/containers/create", json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Memory": 1024}}));
    assert_eq!(tiny.status, 400);
    assert_eq!(tiny.json()["message"], "Minimum memory limit allowed is 6MB");
    daemon.check_clean().await;
}

#[tokio::test]
async fn start_failure_reports_runc_error() {
    let daemon = Daemon::start().await;
    let id = create(&daemon, &unique_name("missing"), &["/no/such/binary"]).await;
    let reply = daemon.request("POST", &format!("/containers/{id}/start"), b"");
    assert_eq!(reply.status, 400, "{}", reply.text());
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("no such file or directory"), "{message}");
    let state = daemon.request("GET", &format!("/containers/{id}/json"), b"").json()["State"].clone();
    assert_eq!(state["Status"], "created");
    assert_eq!(state["ExitCode"], 127);
    assert_eq!(state["Error"], message.as_str());
    daemon.check_clean().await;
}
