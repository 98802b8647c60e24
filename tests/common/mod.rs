//! Test harness: starts the real berth binary with a fresh state root, runc root and sockets
//! per test, imports the busybox image, and checks at the end that nothing is left behind.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bollard::Docker;

pub const BUSYBOX_TAR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/busybox.tar");

pub struct Daemon {
    /// Short base directory (socket paths must stay under 108 bytes).
    pub base: PathBuf,
    pub port: u16,
    child: Option<Child>,
    pub docker: Docker,
    checked: bool,
}

/// A raw HTTP reply, for checks on exact status codes, headers and bodies.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Daemon {
    /// Starts a daemon with busybox:latest imported.
    pub async fn start() -> Daemon {
        let base = PathBuf::from(format!("/tmp/bt-{}", hex_id()));
        std::fs::create_dir_all(&base).unwrap();
        let port = free_port();
        let child = spawn(&base, port);
        let docker = Docker::connect_with_http(&format!("tcp://127.0.0.1:{port}"), 120, bollard::API_DEFAULT_VERSION).unwrap();
        let mut daemon = Daemon { base, port, child: Some(child), docker, checked: false };
        daemon.wait_ready();
        let tar = std::fs::read(BUSYBOX_TAR).expect("target/busybox.tar is missing: run `make test`, which builds it");
        let reply = daemon.request("POST", "/images/create?fromSrc=-&repo=busybox&tag=latest", &tar);
        assert_eq!(reply.status, 200, "import failed: {}", reply.text());
        daemon
    }

    pub fn root(&self) -> PathBuf {
        self.base.join("root")
    }
    pub fn exec_root(&self) -> PathBuf {
        self.base.join("run")
    }
    pub fn socket(&self) -> PathBuf {
        self.base.join("berth.sock")
    }
    pub fn tcp_host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(reply) = self.try_request("GET", "/_ping", b"") {
                if reply.status == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("berth exited during start-up: {status}; log: {}", self.daemon_log());
            }
            assert!(Instant::now() < deadline, "berth did not answer /_ping within 10 s; log: {}", self.daemon_log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.base.join("daemon.log")).unwrap_or_default()
    }

    /// Kills the daemon with SIGKILL (containers keep running) and starts it again.
    pub fn kill_and_restart(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        self.child = Some(spawn(&self.base, self.port));
        self.wait_ready();
    }

    pub fn kill_daemon(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn start_again(&mut self) {
        assert!(self.child.is_none());
        self.child = Some(spawn(&self.base, self.port));
        self.wait_ready();
    }

    pub fn try_request(&self, method: &str, path: &str, body: &[u8]) -> std::io::Result<Reply> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        Ok(parse_reply(&raw))
    }

    /// Sends one request on a fresh connection and reads the whole reply.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> Reply {
        self.try_request(method, path, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn post_json(&self, path: &str, body: serde_json::Value) -> Reply {
        self.request("POST", path, body.to_string().as_bytes())
    }

    /// Returns a docker CLI command aimed at this daemon, or None when the CLI is not installed.
    pub fn docker_cli(&self) -> Option<Command> {
        let found = Command::new("docker").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
        if !found {
            eprintln!("docker CLI not installed: skipping the CLI part of this test");
            return None;
        }
        let config = self.base.join("docker-config");
        std::fs::create_dir_all(&config).unwrap();
        let mut command = Command::new("docker");
        command.env("DOCKER_HOST", self.tcp_host()).env("DOCKER_CONFIG", config).env_remove("DOCKER_API_VERSION");
        Some(command)
    }

    /// Force-removes every container, stops the daemon and asserts that no runc container,
    /// monitor process or mount is left under this test's directory.
    pub async fn check_clean(mut self) {
        let containers = self.request("GET", "/containers/json?all=1", b"").json();
        for container in containers.as_array().unwrap() {
            let id = container["Id"].as_str().unwrap();
            let reply = self.request("DELETE", &format!("/containers/{id}?force=1"), b"");
            assert_eq!(reply.status, 204, "removing {id}: {}", reply.text());
        }
        let child = self.child.take();
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Spare monitors exit when the daemon's end of their stdin closes; give them a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !monitor_pids(&self.base).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let leftovers = leftovers(&self.base);
        self.checked = true;
        assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.checked {
            // A failed test still must not leak containers, monitors or mounts.
            force_cleanup(&self.base);
        }
    }
}

fn spawn(base: &Path, port: u16) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(base.join("daemon.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--root").arg(base.join("root"))
        .arg("--exec-root").arg(base.join("run"))
        .arg("--cgroup-parent").arg("berth-test")
        .arg("-H").arg(format!("unix://{}", base.join("berth.sock").display()))
        .arg("-H").arg(format!("tcp://127.0.0.1:{port}"))
        .env("BERTH_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting berth")
}

fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("no end of headers in reply");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else { break };
        let size = usize::from_str_radix(std::str::from_utf8(&data[..end]).unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
    out
}

/// Lists what is left under `base`: runc containers, monitor processes, mounts.
pub fn leftovers(base: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let runc_root = base.join("run").join("runc");
    if let Ok(entries) = std::fs::read_dir(&runc_root) {
        for entry in entries.flatten() {
            found.push(format!("runc container {}", entry.file_name().to_string_lossy()));
        }
    }
    let base_text = base.display().to_string();
    for pid in monitor_pids(base) {
        found.push(format!("monitor process {pid}"));
    }
    if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
        for line in mounts.lines() {
            if let Some(point) = line.split(' ').nth(4) {
                if point.starts_with(&base_text) {
                    found.push(format!("mount {point}"));
                }
            }
        }
    }
    found
}

/// Pids of monitor processes whose config lives under `base`.
pub fn monitor_pids(base: &Path) -> Vec<i32> {
    let base_text = base.display().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.get(1).map(String::as_str) == Some("monitor") && args[2..].iter().any(|a| a.starts_with(&base_text)) {
            pids.push(pid);
        }
    }
    pids
}

/// Best-effort cleanup after a failed test: kill runc containers and monitors, unmount.
fn force_cleanup(base: &Path) {
    let runc_root = base.join("run").join("runc");
    if let Ok(entries) = std::fs::read_dir(&runc_root) {
        for entry in entries.flatten() {
            let _ = Command::new("runc")
                .arg("--root").arg(&runc_root)
                .args(["delete", "--force"])
                .arg(entry.file_name())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    for pid in monitor_pids(base) {
        // SAFETY: kill with a pid we found running our own monitor binary for this base.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
        let base_text = base.display().to_string();
        for line in mounts.lines() {
            if let Some(point) = line.split(' ').nth(4) {
                if point.starts_with(&base_text) {
                    let _ = Command::new("umount").arg("-l").arg(point).status();
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(base);
}

fn hex_id() -> String {
    let mut bytes = [0u8; 4];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits a multiplexed stream into (stdout, stderr).
pub fn demux(mut data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while data.len() >= 8 {
        let size = u32::from_be_bytes([data[4], data[5], data[6], data[7]]) as usize;
        let payload = &data[8..8 + size];
        match data[0] {
            1 => out.extend_from_slice(payload),
            2 => err.extend_from_slice(payload),
            other => panic!("unexpected stream type {other}"),
        }
        data = &data[8 + size..];
    }
    assert!(data.is_empty(), "trailing bytes in multiplexed stream: {data:?}");
    (out, err)
}

/// Returns a unique container name for one test.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", hex_id())
}
