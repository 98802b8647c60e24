//! The docker CLI against berth, where the CLI is installed.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};

use common::{unique_name, Daemon};

fn run(daemon: &Daemon, args: &[&str], stdin: Option<&[u8]>) -> Option<Output> {
    let mut command = daemon.docker_cli()?;
    command.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = command.spawn().unwrap();
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(bytes).unwrap();
    }
    Some(child.wait_with_output().unwrap())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn docker_run_prints_output_and_exit_codes() {
    let daemon = Daemon::start().await;
    let Some(hi) = run(&daemon, &["run", "--rm", "busybox", "echo", "hi"], None) else { return daemon.check_clean().await };
    assert_eq!(text(&hi.stdout), "hi\n", "stderr: {}", text(&hi.stderr));
    assert_eq!(hi.status.code(), Some(0));

    let three = run(&daemon, &["run", "--rm", "busybox", "sh", "-c", "exit 3"], None).unwrap();
    assert_eq!(three.status.code(), Some(3), "stderr: {}", text(&three.stderr));

    let both = run(&daemon, &["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 4"], None).unwrap();
    assert_eq!(text(&both.stdout), "out\n");
    assert_eq!(text(&both.stderr), "err\n");
    assert_eq!(both.status.code(), Some(4));

    let piped = run(&daemon, &["run", "-i", "--rm", "busybox", "cat"], Some(b"hello\nworld\n")).unwrap();
    assert_eq!(text(&piped.stdout), "hello\nworld\n", "stderr: {}", text(&piped.stderr));

    let missing = run(&daemon, &["run", "--rm", "nosuchimage", "true"], None).unwrap();
    assert_eq!(missing.status.code(), Some(125));
    assert!(text(&missing.stderr).contains("pulling images is not supported yet"), "{}", text(&missing.stderr));

    // --rm removed every container.
    let listed = daemon.request("GET", "/containers/json?all=1", b"").json();
    assert_eq!(listed.as_array().unwrap().len(), 0);
    daemon.check_clean().await;
}

#[tokio::test]
async fn docker_cli_manages_a_detached_container() {
    let daemon = Daemon::start().await;
    let name = unique_name("web");
    let Some(created) = run(&daemon, &["run", "-d", "--name", &name, "busybox", "sh", "-c", "echo ready; sleep 100"], None) else {
        return daemon.check_clean().await;
    };
    assert_eq!(created.status.code(), Some(0), "{}", text(&created.stderr));
    let id = text(&created.stdout).trim().to_string();
    assert_eq!(id.len(), 64);

    let ps = run(&daemon, &["ps", "--format", "{{.Names}} {{.Status}}"], None).unwrap();
    let line = text(&ps.stdout);
    assert!(line.starts_with(&format!("{name} Up ")), "{line}");

    // The log line may take a moment to be written after the start.
    let mut logs = String::new();
    for _ in 0..50 {
        logs = text(&run(&daemon, &["logs", &name], None).unwrap().stdout);
        if !logs.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(logs, "ready\n");

    let inspect = run(&daemon, &["inspect", "--format", "{{.State.Status}} {{.Config.Image}}", &name], None).unwrap();
    assert_eq!(text(&inspect.stdout), "running busybox\n");

    let kill = run(&daemon, &["kill", &name], None).unwrap();
    assert_eq!(kill.status.code(), Some(0), "{}", text(&kill.stderr));
    let wait = run(&daemon, &["wait", &name], None).unwrap();
    assert_eq!(text(&wait.stdout), "137\n");

    let dup = run(&daemon, &["create", "--name", &name, "busybox", "true"], None).unwrap();
    assert_eq!(dup.status.code(), Some(1));
    assert!(text(&dup.stderr).contains("is already in use by container"), "{}", text(&dup.stderr));

    let rm = run(&daemon, &["rm", &name], None).unwrap();
    assert_eq!(rm.status.code(), Some(0), "{}", text(&rm.stderr));
    let gone = run(&daemon, &["rm", &name], None).unwrap();
    assert_eq!(gone.status.code(), Some(1));
    assert!(text(&gone.stderr).contains(&format!("No such container: {name}")), "{}", text(&gone.stderr));
    daemon.check_clean().await;
}
