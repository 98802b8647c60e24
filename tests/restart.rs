//! Daemon restart safety: kill -9 the daemon while containers run and start it again.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{demux, monitor_pids, unique_name, Daemon};
use serde_json::json;

fn create_and_start(daemon: &Daemon, cmd: &[&str], start: bool) -> String {
    let reply = daemon.post_json(&format!("/containers/create?name={}", unique_name("r")), json!({"Image": "busybox", "Cmd": cmd}));
    assert_eq!(reply.status, 201, "{}", reply.text());
    let id = reply.json()["Id"].as_str().unwrap().to_string();
    if start {
        let started = daemon.request("POST", &format!("/containers/{id}/start"), b"");
        assert_eq!(started.status, 204, "{}", started.text());
    }
    id
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn containers_survive_a_daemon_crash() {
    let mut daemon = Daemon::start().await;
    let finishing = create_and_start(&daemon, &["sh", "-c", "echo before; sleep 1; echo during; exit 7"], true);
    let running = create_and_start(&daemon, &["sleep", "100"], true);
    let created = create_and_start(&daemon, &["true"], false);
    let orphaned = create_and_start(&daemon, &["sleep", "100"], true);
    let running_pid = daemon.request("GET", &format!("/containers/{running}/json"), b"").json()["State"]["Pid"].clone();

    daemon.kill_daemon();
    // While the daemon is down: one container exits, and one loses its monitor.
    wait_for_file(&daemon.root().join("containers").join(&finishing).join("exit.json"));
    let pid_file = daemon.root().join("containers").join(&orphaned).join("monitor.pid");
    let orphan_monitor: i32 = std::fs::read_to_string(pid_file).unwrap().trim().parse().unwrap();
    assert!(monitor_pids(&daemon.base).contains(&orphan_monitor));
    // SAFETY: the pid is the monitor this test's daemon started for `orphaned`.
    unsafe { libc::kill(orphan_monitor, libc::SIGKILL) };
    daemon.start_again();

    let state = |id: &str| daemon.request("GET", &format!("/containers/{id}/json"), b"").json()["State"].clone();
    let finished = state(&finishing);
    assert_eq!(finished["Status"], "exited");
    assert_eq!(finished["ExitCode"], 7);
    let (out, _) = demux(&daemon.request("GET", &format!("/containers/{finishing}/logs?stdout=1"), b"").body);
    assert_eq!(String::from_utf8(out).unwrap(), "before\nduring\n");

    let still = state(&running);
    assert_eq!(still["Status"], "running");
    assert_eq!(still["Pid"], running_pid);
    assert_eq!(state(&created)["Status"], "created");
    let lost = state(&orphaned);
    assert_eq!(lost["Status"], "exited");
    assert_eq!(lost["ExitCode"], 137);

    // The reconnected container is fully controllable: stop waits for its exit.
    let stop = daemon.request("POST", &format!("/containers/{running}/stop?t=1"), b"");
    assert_eq!(stop.status, 204, "{}", stop.text());
    assert_eq!(state(&running)["ExitCode"], 137);
    daemon.check_clean().await;
}

#[tokio::test]
async fn exit_during_downtime_wakes_no_one_twice() {
    let mut daemon = Daemon::start().await;
    let quick = create_and_start(&daemon, &["sh", "-c", "sleep 0.5; exit 3"], true);
    daemon.kill_daemon();
    wait_for_file(&daemon.root().join("containers").join(&quick).join("exit.json"));
    daemon.start_again();
    let wait = daemon.request("POST", &format!("/containers/{quick}/wait"), b"");
    assert_eq!(wait.json(), json!({"StatusCode": 3}));
    // The container can start again after the restart.
    assert_eq!(daemon.request("POST", &format!("/containers/{quick}/start"), b"").status, 204);
    let wait = daemon.request("POST", &format!("/containers/{quick}/wait?condition=not-running"), b"");
    assert_eq!(wait.json(), json!({"StatusCode": 3}));
    daemon.check_clean().await;
}
