//! Exec through bollard, raw HTTP and the docker CLI.

mod common;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use common::{unique_name, Daemon};
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;

fn running_container(daemon: &Daemon, env: &[&str]) -> String {
    let reply = daemon.post_json(
        &format!("/containers/create?name={}", unique_name("exec")),
        json!({"Image": "busybox", "Cmd": ["sleep", "100"], "Env": env, "WorkingDir": "/tmp"}),
    );
    let id = reply.json()["Id"].as_str().unwrap().to_string();
    assert_eq!(daemon.request("POST", &format!("/containers/{id}/start"), b"").status, 204);
    id
}

async fn run_exec(daemon: &Daemon, container: &str, cmd: Vec<&str>, stdin: Option<&[u8]>) -> (String, String, i64) {
    let options = CreateExecOptions {
        cmd: Some(cmd),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        attach_stdin: Some(stdin.is_some()),
        ..Default::default()
    };
    let exec = daemon.docker.create_exec(container, options).await.unwrap().id;
    let StartExecResults::Attached { mut output, mut input } = daemon.docker.start_exec(&exec, None::<StartExecOptions>).await.unwrap() else {
        panic!("exec started detached");
    };
    if let Some(bytes) = stdin {
        input.write_all(bytes).await.unwrap();
        input.shutdown().await.unwrap();
    }
    let (mut out, mut err) = (String::new(), String::new());
    while let Some(item) = output.next().await {
        match item.unwrap() {
            bollard::container::LogOutput::StdOut { message } => out.push_str(&String::from_utf8_lossy(&message)),
            bollard::container::LogOutput::StdErr { message } => err.push_str(&String::from_utf8_lossy(&message)),
            other => panic!("unexpected {other:?}"),
        }
    }
    // The exit code is recorded before the stream ends, as the docker CLI expects.
    let inspect = daemon.docker.inspect_exec(&exec).await.unwrap();
    assert_eq!(inspect.running, Some(false));
    (out, err, inspect.exit_code.unwrap())
}

#[tokio::test]
async fn exec_runs_in_the_container_environment() {
    let daemon = Daemon::start().await;
    let id = running_container(&daemon, &["FOO=bar"]);
    let (out, err, code) = run_exec(&daemon, &id, vec!["sh", "-c", "echo $FOO; pwd; echo oops >&2; exit 5"], None).await;
    assert_eq!(out, "bar\n/tmp\n");
    assert_eq!(err, "oops\n");
    assert_eq!(code, 5);

    let (out, _, code) = run_exec(&daemon, &id, vec!["cat"], Some(b"hello\nworld\n")).await;
    assert_eq!(out, "hello\nworld\n");
    assert_eq!(code, 0);

    // The exec shares the container's pid namespace, so pid 1 is the container's process.
    let (out, _, _) = run_exec(&daemon, &id, vec!["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"], None).await;
    assert_eq!(out, "sleep 100 ");

    let (_, err, code) = run_exec(&daemon, &id, vec!["/no/such/binary"], None).await;
    assert_eq!(code, 127);
    assert!(err.contains("no such file or directory"), "{err}");
    let ids = daemon.request("GET", &format!("/containers/{id}/json"), b"").json();
    assert_eq!(ids["State"]["Running"], true);
    daemon.check_clean().await;
}

#[tokio::test]
async fn exec_errors_and_detached_start() {
    let daemon = Daemon::start().await;
    let id = running_container(&daemon, &[]);
    let no_cmd = daemon.post_json(&format!("/containers/{id}/exec"), json!({"AttachStdout": true}));
    assert_eq!(no_cmd.status, 400);
    assert_eq!(no_cmd.json()["message"], "No exec command specified");
    assert_eq!(daemon.post_json("/containers/nosuch/exec", json!({"Cmd": ["true"]})).status, 404);
    let missing = daemon.request("GET", "/exec/nosuch/json", b"");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "No such exec instance: nosuch");

    let created = daemon.post_json(&format!("/containers/{id}/exec"), json!({"Cmd": ["sh", "-c", "exit 7"]}));
    assert_eq!(created.status, 201);
    let exec = created.json()["Id"].as_str().unwrap().to_string();
    let before = daemon.request("GET", &format!("/exec/{exec}/json"), b"").json();
    assert_eq!(before["Running"], false);
    assert_eq!(before["ExitCode"], serde_json::Value::Null);
    assert_eq!(before["ContainerID"], id.as_str());
    let started = daemon.post_json(&format!("/exec/{exec}/start"), json!({"Detach": true}));
    assert_eq!(started.status, 200, "{}", started.text());
    let mut code = serde_json::Value::Null;
    for _ in 0..100 {
        code = daemon.request("GET", &format!("/exec/{exec}/json"), b"").json()["ExitCode"].clone();
        if !code.is_null() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(code, 7);
    let again = daemon.post_json(&format!("/exec/{exec}/start"), json!({"Detach": true}));
    assert_eq!(again.status, 409);

    assert_eq!(daemon.request("POST", &format!("/containers/{id}/kill"), b"").status, 204);
    daemon.request("POST", &format!("/containers/{id}/wait"), b"");
    let stopped = daemon.post_json(&format!("/containers/{id}/exec"), json!({"Cmd": ["true"]}));
    assert_eq!(stopped.status, 409);
    daemon.check_clean().await;
}

#[tokio::test]
async fn docker_exec_cli() {
    let daemon = Daemon::start().await;
    let id = running_container(&daemon, &[]);
    let Some(mut cli) = daemon.docker_cli() else { return daemon.check_clean().await };
    let output = cli.args(["exec", &id, "sh", "-c", "echo hi; exit 3"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hi\n");
    assert_eq!(output.status.code(), Some(3));

    let mut piped = daemon.docker_cli().unwrap();
    piped.args(["exec", "-i", &id, "cat"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = piped.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"piped\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "piped\n");
    assert_eq!(output.status.code(), Some(0));
    daemon.check_clean().await;
}
