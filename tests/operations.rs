//! top, changes, export, pause/unpause, rename, update, prune, stats, events and attach with
//! logs, through raw HTTP, bollard and the docker CLI.

mod common;

use std::time::Duration;

use common::{demux, unique_name, Daemon};
use serde_json::json;

fn create(daemon: &Daemon, name: &str, cmd: &[&str]) -> String {
    let reply = daemon.post_json(&format!("/containers/create?name={name}"), json!({"Image": "busybox", "Cmd": cmd}));
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()["Id"].as_str().unwrap().to_string()
}

fn start(daemon: &Daemon, id: &str) {
    let reply = daemon.request("POST", &format!("/containers/{id}/start"), b"");
    assert_eq!(reply.status, 204, "{}", reply.text());
}

fn wait(daemon: &Daemon, id: &str) -> i64 {
    daemon.request("POST", &format!("/containers/{id}/wait"), b"").json()["StatusCode"].as_i64().unwrap()
}

/// Lists the member names of a tar, directories with their trailing slash.
fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

#[tokio::test]
async fn top_lists_only_container_processes() {
    let daemon = Daemon::start().await;
    // busybox sh runs its last command with exec, so two sleeps remain and no shell.
    let id = create(&daemon, &unique_name("top"), &["sh", "-c", "sleep 101 & sleep 102"]);
    let not_running = daemon.request("GET", &format!("/containers/{id}/top"), b"");
    assert_eq!(not_running.status, 409);
    start(&daemon, &id);
    // Both sleeps are up once ps shows them; poll briefly for the background one.
    let mut commands = Vec::new();
    for _ in 0..50 {
        let top = daemon.request("GET", &format!("/containers/{id}/top"), b"").json();
        assert_eq!(top["Titles"], json!(["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]));
        commands = top["Processes"].as_array().unwrap().iter().map(|p| p[7].as_str().unwrap().to_string()).collect();
        if commands.len() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    commands.sort();
    assert_eq!(commands, vec!["sleep 101", "sleep 102"]);
    let custom = daemon.request("GET", &format!("/containers/{id}/top?ps_args=-o%20pid,comm"), b"").json();
    assert_eq!(custom["Titles"], json!(["PID", "COMMAND"]));
    assert_eq!(custom["Processes"].as_array().unwrap().len(), 2);
    let pid = daemon.request("GET", &format!("/containers/{id}/json"), b"").json()["State"]["Pid"].to_string();
    assert!(custom["Processes"].as_array().unwrap().iter().any(|p| p[0] == pid.as_str()), "{custom}");

    if let Some(mut cli) = daemon.docker_cli() {
        let output = cli.args(["top", &id]).output().unwrap();
        assert!(String::from_utf8_lossy(&output.stdout).contains("sleep 101"));
    }
    daemon.check_clean().await;
}

#[tokio::test]
async fn changes_report_exactly_what_the_container_did() {
    let daemon = Daemon::start().await;
    let script = "mkdir /new; echo x > /new/file; rm /bin/ls; echo extra >> /etc/passwd; touch /tmp/t";
    let id = create(&daemon, &unique_name("diff"), &["sh", "-c", script]);
    let before = daemon.request("GET", &format!("/containers/{id}/changes"), b"");
    assert_eq!(before.status, 200);
    assert_eq!(before.json(), serde_json::Value::Null);
    start(&daemon, &id);
    assert_eq!(wait(&daemon, &id), 0);
    let changes = daemon.docker.container_changes(&id).await.unwrap().unwrap();
    let pairs: Vec<(String, i64)> = changes.iter().map(|c| (c.path.clone(), c.kind as i64)).collect();
    let expected = vec![
        ("/bin".to_string(), 0),
        ("/bin/ls".to_string(), 2),
        ("/etc".to_string(), 0),
        ("/etc/passwd".to_string(), 0),
        ("/new".to_string(), 1),
        ("/new/file".to_string(), 1),
        ("/tmp".to_string(), 0),
        ("/tmp/t".to_string(), 1),
    ];
    assert_eq!(pairs, expected);
    let missing = daemon.request("GET", "/containers/nosuch/changes", b"");
    assert_eq!(missing.status, 404);
    daemon.check_clean().await;
}

#[tokio::test]
async fn export_of_running_and_stopped_containers() {
    let daemon = Daemon::start().await;
    let id = create(&daemon, &unique_name("export"), &["sh", "-c", "echo hello > /greeting; rm /bin/ls; sleep 100"]);
    start(&daemon, &id);
    // Wait until the script has run.
    let mut running_names = Vec::new();
    for _ in 0..100 {
        let reply = daemon.request("GET", &format!("/containers/{id}/export"), b"");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("Content-Type"), Some("application/octet-stream"));
        running_names = tar_names(&reply.body);
        if running_names.contains(&"greeting".to_string()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(running_names.contains(&"greeting".to_string()));
    assert!(!running_names.contains(&"bin/ls".to_string()));
    // Directories carry a trailing slash, as in Docker's export.
    assert!(running_names.contains(&"bin/".to_string()));

    // The export is the image's files, minus the deleted one, plus the added one and the
    // container's own mount points.
    let image = std::fs::read(common::BUSYBOX_TAR).unwrap();
    let mut expected: Vec<String> = tar_names(&image)
        .into_iter()
        .map(|n| n.trim_start_matches("./").to_string())
        .filter(|n| !n.is_empty() && n != "bin/ls")
        .collect();
    for extra in ["greeting", ".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab", "dev/console", "dev/pts/", "dev/shm/"] {
        expected.push(extra.to_string());
    }
    expected.sort();
    expected.dedup();
    let mut running_sorted = running_names.clone();
    running_sorted.sort();
    assert_eq!(running_sorted, expected);

    assert_eq!(daemon.request("POST", &format!("/containers/{id}/kill"), b"").status, 204);
    wait(&daemon, &id);
    let stopped = daemon.request("GET", &format!("/containers/{id}/export"), b"");
    assert_eq!(stopped.status, 200);
    let mut stopped_names = tar_names(&stopped.body);
    stopped_names.sort();
    assert_eq!(stopped_names, expected);
    // The temporary mount for the stopped export is gone again.
    assert!(!std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(&id));
    let mut archive = tar::Archive::new(&stopped.body[..]);
    let mut greeting = String::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("greeting") {
            std::io::Read::read_to_string(&mut entry, &mut greeting).unwrap();
        }
    }
    assert_eq!(greeting, "hello\n");
    daemon.check_clean().await;
}

#[tokio::test]
async fn pause_unpause_and_their_conflicts() {
    let daemon = Daemon::start().await;
    let name = unique_name("pause");
    let id = create(&daemon, &name, &["sleep", "100"]);
    let not_running = daemon.request("POST", &format!("/containers/{id}/pause"), b"");
    assert_eq!(not_running.status, 409);
    assert_eq!(not_running.json()["message"], format!("Container {id} is not running"));
    start(&daemon, &id);
    assert_eq!(daemon.request("POST", &format!("/containers/{name}/pause"), b"").status, 204);
    let state = daemon.request("GET", &format!("/containers/{id}/json"), b"").json()["State"].clone();
    assert_eq!(state["Status"], "paused");
    assert_eq!(state["Running"], true);
    assert_eq!(state["Paused"], true);
    let listed = daemon.request("GET", "/containers/json", b"").json();
    assert!(listed[0]["Status"].as_str().unwrap().ends_with("(Paused)"), "{listed}");
    assert_eq!(listed[0]["State"], "paused");

    let again = daemon.request("POST", &format!("/containers/{id}/pause"), b"");
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["message"], format!("Container {id} is already paused"));
    let start_paused = daemon.request("POST", &format!("/containers/{id}/start"), b"");
    assert_eq!(start_paused.status, 409);
    let remove_paused = daemon.request("DELETE", &format!("/containers/{id}"), b"");
    assert_eq!(remove_paused.status, 409);

    assert_eq!(daemon.request("POST", &format!("/containers/{id}/unpause"), b"").status, 204);
    let unpause_again = daemon.request("POST", &format!("/containers/{id}/unpause"), b"");
    assert_eq!(unpause_again.status, 409);
    assert_eq!(unpause_again.json()["message"], format!("Container {id} is not paused"));

    // Kill and stop work on a paused container, as in Docker.
    assert_eq!(daemon.request("POST", &format!("/containers/{id}/pause"), b"").status, 204);
    assert_eq!(daemon.request("POST", &format!("/containers/{id}/kill"), b"").status, 204);
    assert_eq!(wait(&daemon, &id), 137);
    start(&daemon, &id);
    assert_eq!(daemon.request("POST", &format!("/containers/{id}/pause"), b"").status, 204);
    assert_eq!(daemon.request("POST", &format!("/containers/{id}/stop?t=1"), b"").status, 204);
    assert_eq!(daemon.request("GET", &format!("/containers/{id}/json"), b"").json()["State"]["Status"], "exited");

    if let Some(mut cli) = daemon.docker_cli() {
        start(&daemon, &id);
        assert!(cli.args(["pause", &name]).output().unwrap().status.success());
        let mut unpause = daemon.docker_cli().unwrap();
        assert!(unpause.args(["unpause", &name]).output().unwrap().status.success());
    }
    daemon.check_clean().await;
}

#[tokio::test]
async fn rename_checks_names() {
    let daemon = Daemon::start().await;
    let first = unique_name("first");
    let second = unique_name("second");
    let id = create(&daemon, &first, &["true"]);
    let other = create(&daemon, &second, &["true"]);
    let renamed = unique_name("renamed");
    assert_eq!(daemon.request("POST", &format!("/containers/{first}/rename?name={renamed}"), b"").status, 204);
    assert_eq!(daemon.request("GET", &format!("/containers/{id}/json"), b"").json()["Name"], format!("/{renamed}"));
    assert_eq!(daemon.request("GET", &format!("/containers/{first}/json"), b"").status, 404);

    let taken = daemon.request("POST", &format!("/containers/{renamed}/rename?name={second}"), b"");
    assert_eq!(taken.status, 409);
    assert!(taken.json()["message"].as_str().unwrap().contains(&other), "{}", taken.text());
    let invalid = daemon.request("POST", &format!("/containers/{renamed}/rename?name=-bad"), b"");
    assert_eq!(invalid.status, 400);
    let missing = daemon.request("POST", "/containers/nosuch/rename?name=whatever", b"");
    assert_eq!(missing.status, 404);
    daemon.check_clean().await;
}

#[tokio::test]
async fn update_applies_limits_to_a_running_container() {
    let daemon = Daemon::start().await;
    let id = create(&daemon, &unique_name("update"), &["sleep", "100"]);
    start(&daemon, &id);
    let reply = daemon.post_json(&format!("/containers/{id}/update"), json!({"Memory": 64 * 1024 * 1024, "PidsLimit": 42, "NanoCpus": 500_000_000}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({"Warnings": null}));
    let host = daemon.request("GET", &format!("/containers/{id}/json"), b"").json()["HostConfig"].clone();
    assert_eq!(host["Memory"], 64 * 1024 * 1024);
    assert_eq!(host["PidsLimit"], 42);
    assert_eq!(host["NanoCpus"], 500_000_000);
    // The kernel has the new limits (cgroup v1 here; v2 keeps them in one directory).
    let v1 = format!("/sys/fs/cgroup/pids/berth-test/{id}/pids.max");
    let v2 = format!("/sys/fs/cgroup/berth-test/{id}/pids.max");
    let pids_max = std::fs::read_to_string(&v1).or_else(|_| std::fs::read_to_string(&v2)).unwrap();
    assert_eq!(pids_max.trim(), "42");

    // The limits are kept for the next start.
    assert_eq!(daemon.request("POST", &format!("/containers/{id}/restart?t=0"), b"").status, 204);
    let pids_max = std::fs::read_to_string(&v1).or_else(|_| std::fs::read_to_string(&v2)).unwrap();
    assert_eq!(pids_max.trim(), "42");

    let bad = daemon.request("POST", &format!("/containers/{id}/update"), b"{bad");
    assert_eq!(bad.status, 400);
    let tiny = daemon.post_json(&format!("/containers/{id}/update"), json!({"Memory": 1000}));
    assert_eq!(tiny.status, 400);
    daemon.check_clean().await;
}

#[tokio::test]
async fn prune_removes_only_stopped_containers() {
    let daemon = Daemon::start().await;
    let running = create(&daemon, &unique_name("keep"), &["sleep", "100"]);
    start(&daemon, &running);
    let stopped = create(&daemon, &unique_name("gone"), &["true"]);
    start(&daemon, &stopped);
    wait(&daemon, &stopped);
    let created = create(&daemon, &unique_name("fresh"), &["true"]);
    let reply = daemon.request("POST", "/containers/prune", b"");
    assert_eq!(reply.status, 200);
    let mut deleted: Vec<String> = reply.json()["ContainersDeleted"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    deleted.sort();
    let mut expected = vec![stopped, created];
    expected.sort();
    assert_eq!(deleted, expected);
    let left = daemon.request("GET", "/containers/json?all=1", b"").json();
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["Id"], running.as_str());
    let again = daemon.request("POST", "/containers/prune", b"").json();
    assert_eq!(again["ContainersDeleted"], serde_json::Value::Null);
    daemon.check_clean().await;
}

#[tokio::test]
async fn stats_have_docker_shape() {
    let daemon = Daemon::start().await;
    let reply = daemon.post_json("/containers/create", json!({"Image": "busybox", "Cmd": ["sleep", "100"], "HostConfig": {"Memory": 32 * 1024 * 1024}}));
    let id = reply.json()["Id"].as_str().unwrap().to_string();
    start(&daemon, &id);
    let one = daemon.request("GET", &format!("/containers/{id}/stats?stream=0&one-shot=1"), b"").json();
    assert_eq!(one["id"], id.as_str());
    assert_eq!(one["memory_stats"]["limit"], 32 * 1024 * 1024);
    assert!(one["memory_stats"]["usage"].as_u64().unwrap() > 0);
    assert!(one["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    assert!(one["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert_eq!(one["pids_stats"]["current"], 1);
    assert_eq!(one["preread"], "0001-01-01T00:00:00Z");
    let two = daemon.request("GET", &format!("/containers/{id}/stats?stream=0"), b"").json();
    assert_ne!(two["preread"], "0001-01-01T00:00:00Z");
    assert!(two["precpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    let conflict = daemon.request("GET", &format!("/containers/{id}/stats?stream=1&one-shot=1"), b"");
    assert_eq!(conflict.status, 400);
    if let Some(mut cli) = daemon.docker_cli() {
        let output = cli.args(["stats", "--no-stream", "--format", "{{.MemUsage}}", &id]).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(text.contains("/ 32MiB"), "{text} {}", String::from_utf8_lossy(&output.stderr));
    }
    daemon.check_clean().await;
}

#[tokio::test]
async fn events_report_the_lifecycle() {
    let daemon = Daemon::start().await;
    let since = chrono::Utc::now().timestamp() - 1;
    let name = unique_name("events");
    let id = create(&daemon, &name, &["sh", "-c", "exit 3"]);
    start(&daemon, &id);
    wait(&daemon, &id);
    assert_eq!(daemon.request("DELETE", &format!("/containers/{id}"), b"").status, 204);
    let until = chrono::Utc::now().timestamp() + 1;
    let filters = format!("%7B%22container%22%3A%5B%22{id}%22%5D%7D");
    let reply = daemon.request("GET", &format!("/events?since={since}&until={until}&filters={filters}"), b"");
    assert_eq!(reply.status, 200);
    let events: Vec<serde_json::Value> = reply.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let actions: Vec<&str> = events.iter().map(|e| e["Action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["create", "start", "die", "destroy"]);
    assert_eq!(events[2]["Actor"]["Attributes"]["exitCode"], "3");
    assert_eq!(events[0]["Actor"]["Attributes"]["name"], name.as_str());
    assert_eq!(events[0]["Type"], "container");
    let only_die = daemon.request("GET", &format!("/events?since={since}&until={until}&filters=%7B%22event%22%3A%5B%22die%22%5D%7D"), b"");
    assert_eq!(only_die.text().lines().count(), 1);
    daemon.check_clean().await;
}

#[tokio::test]
async fn attach_with_logs_replays_output() {
    let daemon = Daemon::start().await;
    let id = create(&daemon, &unique_name("replay"), &["sh", "-c", "echo earlier; echo oops >&2"]);
    start(&daemon, &id);
    wait(&daemon, &id);
    let reply = daemon.request("POST", &format!("/containers/{id}/attach?logs=1&stdout=1&stderr=1"), b"");
    assert_eq!(reply.status, 200);
    let (out, err) = demux(&reply.body);
    assert_eq!(String::from_utf8(out).unwrap(), "earlier\n");
    assert_eq!(String::from_utf8(err).unwrap(), "oops\n");
    daemon.check_clean().await;
}
