//! The `docker cp` endpoints (`HEAD`/`GET`/`PUT /containers/{id}/archive` and the legacy
//! `POST /containers/{id}/copy`) through raw HTTP and the docker CLI, on running and stopped
//! containers, plus archives and container symlinks that try to reach a host canary file
//! kept in the test's own directory.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use common::{unique_name, Daemon, Reply};
use serde_json::{json, Value};

const CANARY: &str = "host canary: never to be read or changed through a container";

/// A tar member as read back: name, type, mode, content and link target.
#[derive(Debug, Clone, PartialEq)]
struct Member {
    name: String,
    kind: tar::EntryType,
    mode: u32,
    data: Vec<u8>,
    link: Option<String>,
}

fn members(bytes: &[u8]) -> Vec<Member> {
    let mut archive = tar::Archive::new(bytes);
    let mut found = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        found.push(Member {
            name: String::from_utf8(entry.path_bytes().into_owned()).unwrap(),
            kind: entry.header().entry_type(),
            mode: entry.header().mode().unwrap(),
            data,
            link: entry.link_name_bytes().map(|l| String::from_utf8(l.into_owned()).unwrap()),
        });
    }
    found
}

fn names(bytes: &[u8]) -> Vec<String> {
    members(bytes).into_iter().map(|m| m.name).collect()
}

/// Builds a tar from (name, type, link target, content, mode), writing names raw so that
/// hostile names (`..`, absolute) can be sent.
fn build_tar(entries: &[(&str, tar::EntryType, &str, &[u8], u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, link, data, mode) in entries {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(*mode);
        header.set_uid(1234);
        header.set_gid(5678);
        header.set_mtime(1_700_000_000);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

use tar::EntryType::{Directory, Link, Regular, Symlink};

fn create(daemon: &Daemon, name: &str, cmd: &[&str], host_config: Value) -> String {
    let body = json!({"Image": "busybox", "Cmd": cmd, "HostConfig": host_config});
    let reply = daemon.post_json(&format!("/containers/create?name={name}"), body);
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()["Id"].as_str().unwrap().to_string()
}

fn start(daemon: &Daemon, id: &str) {
    let reply = daemon.request("POST", &format!("/containers/{id}/start"), b"");
    assert_eq!(reply.status, 204, "{}", reply.text());
}

fn kill_and_wait(daemon: &Daemon, id: &str) {
    assert_eq!(daemon.request("POST", &format!("/containers/{id}/kill"), b"").status, 204);
    daemon.request("POST", &format!("/containers/{id}/wait"), b"");
}

fn get_archive(daemon: &Daemon, container: &str, path: &str) -> Reply {
    daemon.request("GET", &format!("/containers/{container}/archive?path={path}"), b"")
}

fn head_archive(daemon: &Daemon, container: &str, path: &str) -> Reply {
    daemon.request("HEAD", &format!("/containers/{container}/archive?path={path}"), b"")
}

fn put_archive(daemon: &Daemon, container: &str, query: &str, tar_bytes: &[u8]) -> Reply {
    daemon.request("PUT", &format!("/containers/{container}/archive?{query}"), tar_bytes)
}

/// Decodes `X-Docker-Container-Path-Stat`.
fn path_stat(reply: &Reply) -> Value {
    let header = reply.header("X-Docker-Container-Path-Stat").expect("no path stat header");
    let json = base64::engine::general_purpose::STANDARD.decode(header).expect("path stat is not padded base64");
    serde_json::from_slice(&json).unwrap()
}

/// Waits until the container's script has created `path`.
fn wait_for_path(daemon: &Daemon, id: &str, path: &str) {
    for _ in 0..200 {
        if head_archive(daemon, id, path).status == 200 {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{path} did not appear in container {id}");
}

/// A container with a /data tree of known files: a 0640 file, a link to it, a subdirectory.
const DATA_SCRIPT: &str = "mkdir -p /data/sub && printf 'hello world' > /data/greeting && chmod 640 /data/greeting \
    && ln -s greeting /data/link && touch /data/ready && sleep 300";

#[tokio::test]
async fn get_and_head_on_running_and_stopped_containers() {
    let daemon = Daemon::start().await;
    let name = unique_name("cp-get");
    let id = create(&daemon, &name, &["sh", "-c", DATA_SCRIPT], json!({}));
    start(&daemon, &id);
    wait_for_path(&daemon, &id, "/data/ready");

    for state in ["running", "stopped"] {
        if state == "stopped" {
            kill_and_wait(&daemon, &id);
        }
        let file = get_archive(&daemon, &name, "/data/greeting");
        assert_eq!(file.status, 200, "{state}: {}", file.text());
        assert_eq!(file.header("Content-Type"), Some("application/x-tar"));
        let found = members(&file.body);
        assert_eq!(
            found,
            vec![Member {
                name: "greeting".into(),
                kind: Regular,
                mode: 0o640,
                data: b"hello world".to_vec(),
                link: None
            }],
            "{state}"
        );
        let stat = path_stat(&file);
        assert_eq!(stat["name"], "greeting");
        assert_eq!(stat["size"], 11);
        assert_eq!(stat["mode"], 0o640);
        assert_eq!(stat["linkTarget"], "");
        assert!(stat["mtime"].as_str().unwrap().ends_with('Z'), "{stat}");

        let dir = get_archive(&daemon, &id, "/data");
        assert_eq!(names(&dir.body), ["data/", "data/greeting", "data/link", "data/ready", "data/sub/"], "{state}");
        let link = members(&dir.body).into_iter().find(|m| m.name == "data/link").unwrap();
        assert_eq!((link.kind, link.link.as_deref()), (Symlink, Some("greeting")));
        assert_eq!(path_stat(&dir)["mode"], 0x8000_0000u32 | 0o755);

        let contents = get_archive(&daemon, &id, "/data/.");
        assert_eq!(names(&contents.body), ["./", "./greeting", "./link", "./ready", "./sub/"], "{state}");

        let link_stat = head_archive(&daemon, &id, "/data/link");
        assert_eq!(link_stat.status, 200);
        assert!(link_stat.body.is_empty());
        let stat = path_stat(&link_stat);
        assert_eq!(stat["name"], "link");
        assert_eq!(stat["size"], 8);
        assert_eq!(stat["mode"], 0x0800_0000u32 | 0o777);
        assert_eq!(stat["linkTarget"], "/data/greeting");
        let tmp = path_stat(&head_archive(&daemon, &id, "/tmp"));
        assert_eq!(tmp["mode"], 0x8000_0000u32 | 0x10_0000 | 0o777, "a directory with mode 1777");

        // /etc/hostname is the file the daemon bind-mounts, not the empty one in the rootfs.
        let hostname = get_archive(&daemon, &id, "/etc/hostname");
        assert_eq!(members(&hostname.body)[0].data, format!("{}\n", &id[..12]).into_bytes(), "{state}");
        assert_eq!(path_stat(&hostname)["size"], 13);

        let missing = get_archive(&daemon, &name, "/nope");
        assert_eq!(missing.status, 404);
        assert_eq!(missing.json()["message"], format!("Could not find the file /nope in container {name}"));
        assert_eq!(head_archive(&daemon, &id, "/nope").status, 404);
        assert_eq!(head_archive(&daemon, &id, "/data/greeting/").status, 404);
    }
    // The temporary mounts for the stopped container are gone again.
    assert!(!std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(&id));

    let unknown = get_archive(&daemon, "nosuchcontainer", "/etc");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["message"], "No such container: nosuchcontainer");
    let no_path = daemon.request("GET", &format!("/containers/{id}/archive"), b"");
    assert_eq!(no_path.status, 400);
    assert!(no_path.json()["message"].as_str().unwrap().contains("'path'"), "{}", no_path.text());
    daemon.check_clean().await;
}

/// Sends a PUT with a chunked body and Content-Type text/plain, as the docker CLI does.
fn put_chunked(daemon: &Daemon, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", daemon.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    for chunk in body.chunks(700) {
        stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).unwrap();
        stream.write_all(chunk).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    (status, text)
}

#[tokio::test]
async fn put_extracts_and_get_reads_back() {
    let daemon = Daemon::start().await;
    let name = unique_name("cp-put");
    let id = create(&daemon, &name, &["sleep", "300"], json!({}));
    let tar_bytes = build_tar(&[
        ("new/", Directory, "", b"", 0o750),
        ("new/file", Regular, "", b"put content", 0o600),
        ("new/link", Symlink, "file", b"", 0o777),
        ("new/hard", Link, "new/file", b"", 0o600),
    ]);

    // Stopped (never started), then running, each into its own directory.
    for (state, dir) in [("stopped", "/tmp"), ("running", "/root")] {
        if state == "running" {
            start(&daemon, &id);
        }
        let (status, reply) =
            put_chunked(&daemon, &format!("/containers/{id}/archive?path={dir}&noOverwriteDirNonDir=true"), &tar_bytes);
        assert_eq!(status, 200, "{state}: {reply}");
        let back = get_archive(&daemon, &id, &format!("{dir}/new"));
        assert_eq!(back.status, 200, "{state}: {}", back.text());
        let found = members(&back.body);
        let summary: Vec<(String, tar::EntryType, u32)> =
            found.iter().map(|m| (m.name.clone(), m.kind, m.mode)).collect();
        assert_eq!(
            summary,
            vec![
                ("new/".into(), Directory, 0o750),
                ("new/file".into(), Regular, 0o600),
                ("new/hard".into(), Link, 0o600),
                ("new/link".into(), Symlink, 0o777)
            ],
            "{state}"
        );
        assert_eq!(found[1].data, b"put content");
        assert_eq!(found[2].link.as_deref(), Some("new/file"));
        assert_eq!(found[3].link.as_deref(), Some("file"));
        let mut archive = tar::Archive::new(&back.body[..]);
        let owner = archive.entries().unwrap().nth(1).unwrap().unwrap().header().uid().unwrap();
        assert_eq!(owner, 1234, "entries keep the archive's uid");
    }

    let missing = put_archive(&daemon, &name, "path=/nope", &tar_bytes);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], format!("Could not find the file /nope in container {name}"));
    let not_dir = put_archive(&daemon, &id, "path=/etc/passwd", &tar_bytes);
    assert_eq!(not_dir.status, 400);
    assert_eq!(not_dir.json()["message"], "extraction point is not a directory");
    let replace = build_tar(&[("new", Regular, "", b"file over a directory", 0o644)]);
    let rejected = put_archive(&daemon, &id, "path=/tmp&noOverwriteDirNonDir=true", &replace);
    assert_eq!(rejected.status, 400, "{}", rejected.text());
    assert!(rejected.json()["message"].as_str().unwrap().contains("cannot overwrite directory"));
    let replaced = put_archive(&daemon, &id, "path=/tmp&noOverwriteDirNonDir=false", &replace);
    assert_eq!(replaced.status, 200, "{}", replaced.text());
    assert_eq!(members(&get_archive(&daemon, &id, "/tmp/new").body)[0].data, b"file over a directory");
    assert_eq!(put_archive(&daemon, "nosuchcontainer", "path=/tmp", &tar_bytes).status, 404);
    assert_eq!(put_archive(&daemon, &id, "", &tar_bytes).status, 400);

    let readonly = create(&daemon, &unique_name("cp-ro"), &["sleep", "300"], json!({"ReadonlyRootfs": true}));
    let rejected = put_archive(&daemon, &readonly, "path=/tmp", &tar_bytes);
    assert_eq!(rejected.status, 400);
    assert_eq!(rejected.json()["message"], "container rootfs is marked read-only");
    daemon.check_clean().await;
}

#[tokio::test]
async fn legacy_copy_returns_the_tar() {
    let daemon = Daemon::start().await;
    let name = unique_name("cp-legacy");
    let id = create(&daemon, &name, &["sh", "-c", DATA_SCRIPT], json!({}));
    start(&daemon, &id);
    wait_for_path(&daemon, &id, "/data/ready");
    for prefix in ["", "/v1.24", "/v1.47"] {
        let reply =
            daemon.post_json(&format!("{prefix}/containers/{name}/copy"), json!({"Resource": "/data/greeting"}));
        assert_eq!(reply.status, 200, "{prefix}: {}", reply.text());
        assert_eq!(reply.header("Content-Type"), Some("application/x-tar"));
        assert!(reply.header("X-Docker-Container-Path-Stat").is_none());
        assert_eq!(members(&reply.body)[0].data, b"hello world");
    }
    let dir = daemon.post_json(&format!("/containers/{id}/copy"), json!({"Resource": "data"}));
    assert_eq!(names(&dir.body), ["data/", "data/greeting", "data/link", "data/ready", "data/sub/"]);
    let missing = daemon.post_json(&format!("/containers/{name}/copy"), json!({"Resource": "/nope"}));
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], format!("Could not find the file /nope in container {name}"));
    assert_eq!(daemon.post_json(&format!("/containers/{id}/copy"), json!({"Resource": ""})).status, 400);
    assert_eq!(daemon.post_json("/containers/nosuchcontainer/copy", json!({"Resource": "/etc"})).status, 404);
    daemon.check_clean().await;
}

#[tokio::test]
async fn removed_container_is_not_found() {
    let daemon = Daemon::start().await;
    let id = create(&daemon, &unique_name("cp-gone"), &["true"], json!({}));
    assert_eq!(daemon.request("DELETE", &format!("/containers/{id}"), b"").status, 204);
    let message = format!("No such container: {id}");
    for reply in [
        get_archive(&daemon, &id, "/etc"),
        head_archive(&daemon, &id, "/etc"),
        put_archive(&daemon, &id, "path=/tmp", &build_tar(&[("f", Regular, "", b"x", 0o644)])),
        daemon.post_json(&format!("/containers/{id}/copy"), json!({"Resource": "/etc"})),
        daemon.request("GET", &format!("/containers/{id}/export"), b""),
    ] {
        assert_eq!(reply.status, 404);
        if !reply.body.is_empty() {
            assert_eq!(reply.json()["message"], message.as_str());
        }
    }
    daemon.check_clean().await;
}

fn run_cli(daemon: &Daemon, args: &[&str]) -> Option<std::process::Output> {
    let mut command = daemon.docker_cli()?;
    Some(command.args(args).output().unwrap())
}

#[tokio::test]
async fn docker_cp_round_trip() {
    let daemon = Daemon::start().await;
    let name = unique_name("cp-cli");
    let id = create(&daemon, &name, &["sleep", "300"], json!({}));
    let source = daemon.base.join("cp-source/payload");
    std::fs::create_dir_all(&source).unwrap();
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(source.join("file"), &bytes).unwrap();
    std::fs::set_permissions(source.join("file"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("file", source.join("link")).unwrap();

    for state in ["stopped", "running"] {
        if state == "running" {
            start(&daemon, &id);
        }
        let target = format!("{name}:/tmp/{state}");
        let Some(copied_in) = run_cli(&daemon, &["cp", source.to_str().unwrap(), &target]) else {
            return daemon.check_clean().await;
        };
        assert!(copied_in.status.success(), "{state}: {}", String::from_utf8_lossy(&copied_in.stderr));

        // Inside, the API shows the same bytes, mode and link.
        let inside = members(&get_archive(&daemon, &id, &format!("/tmp/{state}")).body);
        let file = inside.iter().find(|m| m.name == format!("{state}/file")).unwrap();
        assert_eq!((file.mode, file.data.len()), (0o640, bytes.len()));

        let out = daemon.base.join(format!("cp-out-{state}"));
        let copied_out = run_cli(&daemon, &["cp", &target, out.to_str().unwrap()]).unwrap();
        assert!(copied_out.status.success(), "{state}: {}", String::from_utf8_lossy(&copied_out.stderr));
        assert_eq!(std::fs::read(out.join("file")).unwrap(), bytes, "{state}");
        assert_eq!(std::fs::metadata(out.join("file")).unwrap().permissions().mode() & 0o7777, 0o640);
        assert_eq!(std::fs::read_link(out.join("link")).unwrap(), PathBuf::from("file"));

        let missing = run_cli(&daemon, &["cp", &format!("{name}:/nope"), out.to_str().unwrap()]).unwrap();
        assert!(!missing.status.success());
        assert!(
            String::from_utf8_lossy(&missing.stderr).contains("Could not find the file /nope"),
            "{}",
            String::from_utf8_lossy(&missing.stderr)
        );
    }
    daemon.check_clean().await;
}

/// Creates a canary file and an empty canary directory under the test's base directory.
fn canaries(daemon: &Daemon) -> (PathBuf, PathBuf) {
    let canary = daemon.base.join("canary");
    let canary_dir = daemon.base.join("canary-dir");
    std::fs::write(&canary, CANARY).unwrap();
    std::fs::create_dir_all(&canary_dir).unwrap();
    (canary, canary_dir)
}

fn assert_canaries_untouched(canary: &Path, canary_dir: &Path) {
    assert_eq!(std::fs::read_to_string(canary).unwrap(), CANARY, "the canary changed");
    assert_eq!(std::fs::metadata(canary).unwrap().nlink(), 1, "the canary gained a hard link");
    assert_eq!(std::fs::read_dir(canary_dir).unwrap().count(), 0, "something was written into the canary directory");
}

fn assert_no_canary(reply: &Reply) {
    assert!(!String::from_utf8_lossy(&reply.body).contains(CANARY), "the reply contains the host canary");
}

#[tokio::test]
async fn get_through_symlinks_stays_in_the_container() {
    let daemon = Daemon::start().await;
    let (canary, canary_dir) = canaries(&daemon);
    let canary_path = canary.display().to_string();
    let dir_path = canary_dir.display().to_string();
    let script = format!(
        "ln -s /etc/shadow /shadow-link && ln -s {canary_path} /canary-link && ln -s {dir_path} /canary-dir-link \
         && ln -s ../../../../../../../../..{canary_path} /dotdot-link && touch /ready && sleep 300"
    );
    let id = create(&daemon, &unique_name("cp-evil-get"), &["sh", "-c", &script], json!({}));
    start(&daemon, &id);
    wait_for_path(&daemon, &id, "/ready");

    for state in ["running", "stopped"] {
        if state == "stopped" {
            kill_and_wait(&daemon, &id);
        }
        // A final link is archived as the link itself: its text, never the target's bytes.
        for (link, target) in [("/shadow-link", "/etc/shadow"), ("/canary-link", canary_path.as_str())] {
            let reply = get_archive(&daemon, &id, link);
            assert_eq!(reply.status, 200, "{state} {link}: {}", reply.text());
            let found = members(&reply.body);
            assert_eq!(found.len(), 1);
            assert_eq!((found[0].kind, found[0].link.as_deref(), found[0].data.len()), (Symlink, Some(target), 0));
            assert_no_canary(&reply);
        }
        let stat = path_stat(&head_archive(&daemon, &id, "/dotdot-link"));
        assert_eq!(stat["linkTarget"], canary_path.as_str(), "the .. chain stops at the container root");

        // Paths through the links resolve inside the container, where nothing is found.
        let through = [
            "/shadow-link/".to_string(),
            "/canary-link/".to_string(),
            "/canary-dir-link/".to_string(),
            "/canary-dir-link/.".to_string(),
            "/dotdot-link/".to_string(),
            format!("/../../../../../..{canary_path}"),
            format!("/tmp/../../../../..{canary_path}"),
        ];
        for path in &through {
            let reply = get_archive(&daemon, &id, path);
            assert_eq!(reply.status, 404, "{state} {path}: {}", reply.text());
            assert_no_canary(&reply);
            assert_eq!(head_archive(&daemon, &id, path).status, 404, "{state} HEAD {path}");
            let legacy = daemon.post_json(&format!("/containers/{id}/copy"), json!({"Resource": path}));
            assert_eq!(legacy.status, 404, "{state} copy {path}");
        }

        // A copy of the whole root lists the links without following them.
        let whole = get_archive(&daemon, &id, "/");
        assert_eq!(whole.status, 200);
        assert_no_canary(&whole);
        let found = members(&whole.body);
        assert!(found.iter().any(|m| m.name == "/canary-link" && m.kind == Symlink), "{state}");
    }
    assert_canaries_untouched(&canary, &canary_dir);
    daemon.check_clean().await;
}

#[tokio::test]
async fn put_cannot_escape_the_extraction_directory() {
    let daemon = Daemon::start().await;
    let (canary, canary_dir) = canaries(&daemon);
    let canary_path = canary.display().to_string();
    let dir_path = canary_dir.display().to_string();
    let script = format!("mkdir /drop && ln -s {canary_path} /drop/victim && touch /ready && sleep 300");
    let id = create(&daemon, &unique_name("cp-evil-put"), &["sh", "-c", &script], json!({}));
    start(&daemon, &id);
    wait_for_path(&daemon, &id, "/ready");
    let containers_dir = daemon.root().join("containers");

    let escape =
        put_archive(&daemon, &id, "path=/drop", &build_tar(&[("../../escape", Regular, "", b"escaped", 0o644)]));
    assert_eq!(escape.status, 400, "{}", escape.text());
    assert!(escape.json()["message"].as_str().unwrap().contains("outside the extraction directory"));
    assert_eq!(head_archive(&daemon, &id, "/escape").status, 404);
    assert!(!containers_dir.join("escape").exists());
    assert!(!daemon.root().join("escape").exists());

    // A link to a host directory resolves inside /drop, where that path does not exist yet.
    let through_host =
        build_tar(&[("hostlink", Symlink, &dir_path, b"", 0o777), ("hostlink/pwned", Regular, "", b"pwned", 0o644)]);
    let reply = put_archive(&daemon, &id, "path=/drop", &through_host);
    assert_eq!(reply.status, 400, "{}", reply.text());

    // Absolute names are taken relative to the extraction directory, as Docker does.
    let absolute = format!("{dir_path}/abs-escape");
    let tar_bytes =
        build_tar(&[("/abs/escape", Regular, "", b"inside", 0o644), (&absolute, Regular, "", b"inside", 0o644)]);
    assert_eq!(put_archive(&daemon, &id, "path=/drop", &tar_bytes).status, 200);
    assert_eq!(members(&get_archive(&daemon, &id, "/drop/abs/escape").body)[0].data, b"inside");
    assert_eq!(head_archive(&daemon, &id, &format!("/drop{absolute}")).status, 200);
    // Now that path exists inside /drop, so the same archive lands there.
    assert_eq!(put_archive(&daemon, &id, "path=/drop", &through_host).status, 200);
    assert_eq!(members(&get_archive(&daemon, &id, &format!("/drop{dir_path}/pwned")).body)[0].data, b"pwned");

    // A link in the archive, then an entry through it: the parent resolves inside /drop.
    let through_root =
        build_tar(&[("link", Symlink, "/", b"", 0o777), ("link/etc/passwd", Regular, "", b"pwned", 0o644)]);
    assert_eq!(put_archive(&daemon, &id, "path=/drop", &through_root).status, 200);
    assert_eq!(members(&get_archive(&daemon, &id, "/drop/etc/passwd").body)[0].data, b"pwned");
    let passwd = members(&get_archive(&daemon, &id, "/etc/passwd").body);
    assert!(passwd[0].data.starts_with(b"root:"), "the container's /etc/passwd is untouched");

    // An existing link in the container is replaced, not written through.
    let victim = build_tar(&[("victim", Regular, "", b"replaced", 0o600)]);
    assert_eq!(put_archive(&daemon, &id, "path=/drop", &victim).status, 200);
    let replaced = members(&get_archive(&daemon, &id, "/drop/victim").body);
    assert_eq!((replaced[0].kind, replaced[0].data.as_slice()), (Regular, &b"replaced"[..]));

    for target in ["../../canary", canary_path.as_str()] {
        let hard = put_archive(&daemon, &id, "path=/drop", &build_tar(&[("hard", Link, target, b"", 0o644)]));
        assert_eq!(hard.status, 400, "hard link to {target}: {}", hard.text());
    }

    // Extracting into a container link to a host directory resolves inside the container.
    let extract_point = put_archive(&daemon, &id, &format!("path={dir_path}"), &victim);
    assert_eq!(extract_point.status, 404);
    assert_canaries_untouched(&canary, &canary_dir);
    daemon.check_clean().await;
}
