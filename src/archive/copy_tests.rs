//! Tests of `copy`: Go mode and time formats, Docker's path rules, and tars of a temporary
//! root full of links that point out of it.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::*;
use crate::error::Kind;

/// One tar member: name, type, content and link target.
#[derive(Debug, PartialEq)]
struct Member {
    name: String,
    kind: tar::EntryType,
    data: Vec<u8>,
    link: Option<String>,
}

fn members(tar_bytes: &[u8]) -> Vec<Member> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut found = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut data = Vec::new();
        io::Read::read_to_end(&mut entry, &mut data).unwrap();
        found.push(Member {
            name: String::from_utf8(entry.path_bytes().into_owned()).unwrap(),
            kind: entry.header().entry_type(),
            data,
            link: entry.link_name_bytes().map(|l| String::from_utf8(l.into_owned()).unwrap()),
        });
    }
    found
}

fn names(tar_bytes: &[u8]) -> Vec<String> {
    members(tar_bytes).into_iter().map(|m| m.name).collect()
}

/// A container root with an /etc tree, links that try to leave it, and a host canary file
/// (plus a canary directory) beside it.
struct Fixture {
    _base: tempfile::TempDir,
    root: PathBuf,
    canary: PathBuf,
    canary_dir: PathBuf,
}

const CANARY: &str = "host canary: must never be read";

fn fixture() -> Fixture {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    let canary = base.path().join("canary");
    let canary_dir = base.path().join("canary-dir");
    std::fs::write(&canary, CANARY).unwrap();
    std::fs::create_dir(&canary_dir).unwrap();
    std::fs::write(canary_dir.join("secret"), CANARY).unwrap();
    std::fs::create_dir_all(root.join("etc/sub")).unwrap();
    std::fs::write(root.join("etc/hostname"), "box\n").unwrap();
    std::fs::write(root.join("etc/sub/deep"), "deep file").unwrap();
    symlink("/etc", root.join("etc-link")).unwrap();
    symlink(&canary, root.join("host-file-link")).unwrap();
    symlink(&canary_dir, root.join("host-dir-link")).unwrap();
    symlink(format!("../../../../../..{}", canary.display()), root.join("dotdot-link")).unwrap();
    Fixture { _base: base, root, canary, canary_dir }
}

fn container_fs(root: &Path) -> ContainerFs {
    ContainerFs { root: root.to_path_buf(), mounts: Vec::new() }
}

fn archive(fs: &ContainerFs, path: &str) -> Result<(PathStat, Vec<u8>)> {
    let source = open_source(fs, path)?;
    let stat = source.stat().clone();
    let mut bytes = Vec::new();
    source.write_tar(&mut bytes)?;
    Ok((stat, bytes))
}

fn assert_canary_untouched(fixture: &Fixture, tar_bytes: &[u8]) {
    let text = String::from_utf8_lossy(tar_bytes);
    assert!(!text.contains(CANARY), "the tar contains the host canary");
    assert_eq!(std::fs::read_to_string(&fixture.canary).unwrap(), CANARY);
}

#[test]
fn go_file_mode_sets_go_type_bits() {
    let cases: [(u32, u32); 9] = [
        (libc::S_IFREG | 0o644, 420),
        (libc::S_IFDIR | 0o755, 0x8000_0000 | 0o755),
        (libc::S_IFDIR | 0o1777, 2_148_532_735),
        (libc::S_IFLNK | 0o777, 0x0800_0000 | 0o777),
        (libc::S_IFREG | 0o4755, 0x80_0000 | 0o755),
        (libc::S_IFDIR | 0o2775, 0x8000_0000 | 0x40_0000 | 0o775),
        (libc::S_IFCHR | 0o666, 0x0400_0000 | 0x20_0000 | 0o666),
        (libc::S_IFBLK | 0o660, 0x0400_0000 | 0o660),
        (libc::S_IFIFO | 0o600, 0x0200_0000 | 0o600),
    ];
    for (st_mode, expected) in cases {
        assert_eq!(go_file_mode(st_mode), expected, "st_mode {st_mode:o}");
    }
    assert_eq!(go_file_mode(libc::S_IFSOCK | 0o755), 0x0100_0000 | 0o755);
}

#[test]
fn go_time_trims_fraction_like_rfc3339nano() {
    assert_eq!(go_time(1_735_689_600, 0), "2025-01-01T00:00:00Z");
    assert_eq!(go_time(1_735_689_600, 500_000_000), "2025-01-01T00:00:00.5Z");
    assert_eq!(go_time(1_735_689_600, 123_456_789), "2025-01-01T00:00:00.123456789Z");
    assert_eq!(go_time(1_735_689_600, 1_000), "2025-01-01T00:00:00.000001Z");
    assert_eq!(go_time(0, 0), "1970-01-01T00:00:00Z");
}

#[test]
fn stat_header_is_padded_base64_json() {
    let stat = PathStat {
        name: "hostname".into(),
        size: 13,
        mode: 420,
        mtime: "2025-01-01T00:00:00Z".into(),
        link_target: String::new(),
    };
    let value = stat.header_value();
    let decoded = base64::engine::general_purpose::STANDARD.decode(&value).unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        r#"{"name":"hostname","size":13,"mode":420,"mtime":"2025-01-01T00:00:00Z","linkTarget":""}"#
    );
    assert_eq!(value.len() % 4, 0, "padded base64 has a length divisible by 4");
}

#[test]
fn request_paths_follow_docker_rules() {
    let cases: [(&str, &str, &str, bool); 8] = [
        ("/etc/hostname", "/etc/hostname", "hostname", false),
        ("etc/hostname", "/etc/hostname", "hostname", false),
        ("/etc/", "/etc", "etc", true),
        ("/etc/.", "/etc", ".", true),
        ("/", "/", "/", true),
        ("/.", "/", ".", true),
        ("/etc/..", "/", "/", true),
        ("/../../etc/shadow", "/etc/shadow", "shadow", false),
    ];
    for (input, cleaned, rebase, follow_final) in cases {
        let parsed = RequestPath::parse(input);
        assert_eq!(String::from_utf8(parsed.cleaned).unwrap(), cleaned, "cleaned {input:?}");
        assert_eq!(String::from_utf8(parsed.rebase).unwrap(), rebase, "rebase {input:?}");
        assert_eq!(parsed.follow_final, follow_final, "follow_final {input:?}");
    }
}

#[test]
fn file_is_one_entry_named_by_base() {
    let fixture = fixture();
    let (stat, bytes) = archive(&container_fs(&fixture.root), "/etc/hostname").unwrap();
    assert_eq!(stat.name, "hostname");
    assert_eq!(stat.size, 4);
    assert_eq!(stat.link_target, "");
    let found = members(&bytes);
    assert_eq!(
        found,
        vec![Member { name: "hostname".into(), kind: tar::EntryType::Regular, data: b"box\n".to_vec(), link: None }]
    );
}

#[test]
fn directory_entries_are_rebased() {
    let fixture = fixture();
    let fs = container_fs(&fixture.root);
    let (stat, bytes) = archive(&fs, "/etc").unwrap();
    assert_eq!(stat.mode & 0x8000_0000, 0x8000_0000);
    assert_eq!(names(&bytes), ["etc/", "etc/hostname", "etc/sub/", "etc/sub/deep"]);
    assert_eq!(members(&bytes)[3].data, b"deep file");

    let (stat, bytes) = archive(&fs, "/etc/.").unwrap();
    assert_eq!(stat.name, ".");
    assert_eq!(names(&bytes), ["./", "./hostname", "./sub/", "./sub/deep"]);

    let (_, bytes) = archive(&fs, "/etc/sub/").unwrap();
    assert_eq!(names(&bytes), ["sub/", "sub/deep"]);
}

#[test]
fn root_entries_are_absolute_like_docker() {
    let fixture = fixture();
    let (stat, bytes) = archive(&container_fs(&fixture.root), "/").unwrap();
    assert_eq!(stat.name, "/");
    let found = names(&bytes);
    assert_eq!(found[0], "/");
    assert!(found.contains(&"/etc/hostname".to_string()), "{found:?}");
    assert_canary_untouched(&fixture, &bytes);
}

#[test]
fn final_symlink_is_archived_as_link() {
    let fixture = fixture();
    let fs = container_fs(&fixture.root);
    let (stat, bytes) = archive(&fs, "/etc-link").unwrap();
    assert_eq!(stat.mode & 0x0800_0000, 0x0800_0000);
    assert_eq!(stat.link_target, "/etc");
    assert_eq!(stat.size, 4);
    let found = members(&bytes);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind, tar::EntryType::Symlink);
    assert_eq!(found[0].link.as_deref(), Some("/etc"));

    let (stat, bytes) = archive(&fs, "/etc-link/").unwrap();
    assert_eq!(stat.name, "etc-link");
    assert_eq!(names(&bytes), ["etc-link/", "etc-link/hostname", "etc-link/sub/", "etc-link/sub/deep"]);
}

#[test]
fn links_to_host_paths_resolve_inside_root() {
    let fixture = fixture();
    let fs = container_fs(&fixture.root);
    let canary_dir = fixture.canary_dir.display().to_string();
    let canary = fixture.canary.display().to_string();
    let escapes = [
        "/host-file-link/".to_string(),
        "/host-dir-link/".to_string(),
        "/host-dir-link/secret".to_string(),
        "/dotdot-link/".to_string(),
        format!("/../../../..{canary}"),
        format!("{canary_dir}/secret"),
    ];
    for path in &escapes {
        let err = archive(&fs, path).err().unwrap_or_else(|| panic!("{path} was found"));
        assert_eq!(err.kind, Kind::NotFound, "{path}: {}", err.message);
    }

    // The links themselves can be copied: only their text leaves, never the target's bytes.
    let (stat, bytes) = archive(&fs, "/host-file-link").unwrap();
    assert_eq!(stat.link_target, canary, "the link resolves to that path inside the root");
    assert_canary_untouched(&fixture, &bytes);
    let (stat, bytes) = archive(&fs, "/dotdot-link").unwrap();
    assert_eq!(stat.link_target, canary);
    assert_canary_untouched(&fixture, &bytes);
}

#[test]
fn stat_of_missing_path_is_not_found() {
    let fixture = fixture();
    let fs = container_fs(&fixture.root);
    for path in ["/nope", "/etc/hostname/", "/etc/hostname/x", "/etc/nope/x"] {
        let err = stat_path(&fs, path).unwrap_err();
        assert_eq!(err.kind, Kind::NotFound, "{path}");
    }
    assert_eq!(stat_path(&fs, "/etc/hostname").unwrap().size, 4);
}

#[test]
fn hard_links_and_long_names_survive() {
    let fixture = fixture();
    let long_dir = "d".repeat(120);
    let long_file = "f".repeat(150);
    std::fs::create_dir(fixture.root.join(&long_dir)).unwrap();
    std::fs::write(fixture.root.join(&long_dir).join(&long_file), "long").unwrap();
    std::fs::hard_link(fixture.root.join(&long_dir).join(&long_file), fixture.root.join(&long_dir).join("a-hardlink"))
        .unwrap();
    symlink("t".repeat(130), fixture.root.join(&long_dir).join("long-link")).unwrap();

    let (_, bytes) = archive(&container_fs(&fixture.root), &format!("/{long_dir}")).unwrap();
    let found = members(&bytes);
    let names: Vec<&str> = found.iter().map(|m| m.name.as_str()).collect();
    let first = format!("{long_dir}/a-hardlink");
    let second = format!("{long_dir}/{long_file}");
    assert_eq!(names, [format!("{long_dir}/"), first.clone(), second.clone(), format!("{long_dir}/long-link")]);
    assert_eq!(found[1].data, b"long");
    assert_eq!(found[2].kind, tar::EntryType::Link);
    assert_eq!(found[2].link.as_deref(), Some(first.as_str()));
    assert_eq!(found[3].link.as_deref(), Some("t".repeat(130).as_str()));
}

#[test]
fn bind_mounts_replace_the_rootfs_beneath() {
    let fixture = fixture();
    let mounts = tempfile::tempdir().unwrap();
    std::fs::write(mounts.path().join("hostname"), "real-hostname\n").unwrap();
    std::fs::create_dir(mounts.path().join("data")).unwrap();
    std::fs::write(mounts.path().join("data/file"), "bound").unwrap();
    symlink("/", mounts.path().join("data/up")).unwrap();
    let fs = ContainerFs {
        root: fixture.root.clone(),
        mounts: vec![
            MountPoint {
                destination: "/etc/hostname".into(),
                source: mounts.path().join("hostname"),
                read_only: false,
            },
            MountPoint { destination: "/srv/data".into(), source: mounts.path().join("data"), read_only: true },
        ],
    };
    let (stat, bytes) = archive(&fs, "/etc/hostname").unwrap();
    assert_eq!(stat.size, 14);
    assert_eq!(members(&bytes)[0].data, b"real-hostname\n");
    assert_eq!(archive(&fs, "/etc/hostname/").unwrap_err().kind, Kind::NotFound);

    let (_, bytes) = archive(&fs, "/srv/data/file").unwrap();
    assert_eq!(members(&bytes)[0].data, b"bound");
    // A link inside a mount is confined to the mount's source directory.
    let (_, bytes) = archive(&fs, "/srv/data/up/").unwrap();
    assert_eq!(names(&bytes), ["up/", "up/file", "up/up"]);
    assert_eq!(stat_path(&fs, "/srv/data/up").unwrap().link_target, "/srv/data");
}
