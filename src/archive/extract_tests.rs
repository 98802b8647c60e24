//! Tests of `extract`: normal archives, Docker's overwrite rules, and hostile archives that try
//! to write outside the extraction directory, checked against a host canary beside it.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::*;
use crate::archive::copy::MountPoint;
use crate::error::Kind;

const CANARY: &str = "host canary: must never change";

/// An extraction directory `dest` inside a container root, and a canary file and directory
/// on the host beside the root.
struct Fixture {
    base: tempfile::TempDir,
    root: PathBuf,
    dest: PathBuf,
    canary: PathBuf,
    canary_dir: PathBuf,
}

fn fixture() -> Fixture {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    let dest = root.join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let canary = base.path().join("canary");
    let canary_dir = base.path().join("canary-dir");
    std::fs::write(&canary, CANARY).unwrap();
    std::fs::create_dir(&canary_dir).unwrap();
    Fixture { base, root, dest, canary, canary_dir }
}

impl Fixture {
    fn assert_host_untouched(&self) {
        assert_eq!(std::fs::read_to_string(&self.canary).unwrap(), CANARY);
        assert_eq!(std::fs::metadata(&self.canary).unwrap().nlink(), 1, "the canary gained a hard link");
        assert_eq!(
            std::fs::read_dir(&self.canary_dir).unwrap().count(),
            0,
            "something was written into the canary directory"
        );
        let mut top: Vec<String> = std::fs::read_dir(self.base.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        top.sort();
        assert_eq!(top, ["canary", "canary-dir", "root"], "something was written beside the root");
    }

    fn extract(&self, tar_bytes: &[u8], options: &ExtractOptions) -> Result<()> {
        let dest = resolve::open_host_path(&self.dest).unwrap();
        extract(dest.as_fd(), tar_bytes, options)
    }
}

fn default_options() -> ExtractOptions {
    ExtractOptions { no_overwrite_dir_non_dir: false, owner: None }
}

/// Builds a tar from (name, type, link target, content, mode) with raw names, so that names
/// the tar crate refuses to write (`..`, absolute) can be tested.
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

use tar::EntryType::{Directory, Fifo, Link, Regular, Symlink};

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn entry_components_neutralise_and_reject() {
    let parts = |name: &str| {
        entry_components(name.as_bytes())
            .map(|p| p.into_iter().map(|c| String::from_utf8(c).unwrap()).collect::<Vec<_>>())
    };
    assert_eq!(parts("a/b/c"), Some(vec!["a".into(), "b".into(), "c".into()]));
    assert_eq!(parts("./a/./b/"), Some(vec!["a".into(), "b".into()]));
    assert_eq!(parts("/abs/escape"), Some(vec!["abs".into(), "escape".into()]));
    assert_eq!(parts("a/../b"), Some(vec!["b".into()]));
    assert_eq!(parts("./"), Some(vec![]));
    assert_eq!(parts("../escape"), None);
    assert_eq!(parts("a/../../escape"), None);
    assert_eq!(parts("/../escape"), None);
}

#[test]
fn extracts_files_dirs_links_and_metadata() {
    let fixture = fixture();
    let tar_bytes = build_tar(&[
        ("d/", Directory, "", b"", 0o750),
        ("d/f", Regular, "", b"content", 0o640),
        ("d/l", Symlink, "f", b"", 0o777),
        ("d/h", Link, "d/f", b"", 0o640),
        ("d/p", Fifo, "", b"", 0o600),
        ("d/s", Regular, "", b"#!", 0o4755),
        ("implied/parent/file", Regular, "", b"x", 0o600),
    ]);
    fixture.extract(&tar_bytes, &default_options()).unwrap();
    let d = fixture.dest.join("d");
    assert_eq!(mode_of(&d), 0o750);
    assert_eq!(std::fs::read(d.join("f")).unwrap(), b"content");
    assert_eq!(mode_of(&d.join("f")), 0o640);
    assert_eq!(mode_of(&d.join("s")), 0o4755, "set-id bits survive the chown");
    assert_eq!(std::fs::read_link(d.join("l")).unwrap(), Path::new("f"));
    assert_eq!(std::fs::metadata(d.join("h")).unwrap().ino(), std::fs::metadata(d.join("f")).unwrap().ino());
    assert!(std::fs::symlink_metadata(d.join("p")).unwrap().file_type().is_fifo());
    let meta = std::fs::symlink_metadata(d.join("f")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    assert_eq!(meta.mtime(), 1_700_000_000);
    assert_eq!(std::fs::metadata(&d).unwrap().mtime(), 1_700_000_000, "directory times are set last");
    assert_eq!(mode_of(&fixture.dest.join("implied/parent")), 0o755);
    assert_eq!(std::fs::read(fixture.dest.join("implied/parent/file")).unwrap(), b"x");
    fixture.assert_host_untouched();
}

#[test]
fn owner_option_overrides_archive_ids() {
    let fixture = fixture();
    let tar_bytes = build_tar(&[("f", Regular, "", b"x", 0o644), ("l", Symlink, "f", b"", 0o777)]);
    fixture.extract(&tar_bytes, &ExtractOptions { no_overwrite_dir_non_dir: false, owner: Some((42, 43)) }).unwrap();
    for name in ["f", "l"] {
        let meta = std::fs::symlink_metadata(fixture.dest.join(name)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (42, 43), "{name}");
    }
}

#[test]
fn gzip_archives_are_decompressed() {
    let fixture = fixture();
    let tar_bytes = build_tar(&[("zipped", Regular, "", b"inside gzip", 0o644)]);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&tar_bytes).unwrap();
    fixture.extract(&encoder.finish().unwrap(), &default_options()).unwrap();
    assert_eq!(std::fs::read(fixture.dest.join("zipped")).unwrap(), b"inside gzip");
}

#[test]
fn dotdot_names_are_rejected() {
    let fixture = fixture();
    for name in ["../../escape", "../escape", "a/../../escape"] {
        let tar_bytes = build_tar(&[(name, Regular, "", b"escaped", 0o644)]);
        let err = fixture.extract(&tar_bytes, &default_options()).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument, "{name}");
        assert!(err.message.contains("outside the extraction directory"), "{}", err.message);
    }
    assert!(!fixture.root.join("escape").exists());
    fixture.assert_host_untouched();
}

#[test]
fn absolute_names_land_inside() {
    let fixture = fixture();
    let name = format!("{}/escape", fixture.canary_dir.display());
    let tar_bytes =
        build_tar(&[("/abs/escape", Regular, "", b"inside", 0o644), (&name, Regular, "", b"inside", 0o644)]);
    fixture.extract(&tar_bytes, &default_options()).unwrap();
    assert_eq!(std::fs::read(fixture.dest.join("abs/escape")).unwrap(), b"inside");
    assert_eq!(std::fs::read(fixture.dest.join(&name[1..])).unwrap(), b"inside");
    fixture.assert_host_untouched();
}

#[test]
fn entries_never_write_through_symlinks() {
    let fixture = fixture();
    let canary_dir = fixture.canary_dir.display().to_string();
    let tar_bytes = build_tar(&[
        ("link", Symlink, "/", b"", 0o777),
        ("link/passwd", Regular, "", b"through root link", 0o644),
        ("up", Symlink, "../../../../../..", b"", 0o777),
        ("up/escape", Regular, "", b"through dotdot link", 0o644),
    ]);
    fixture.extract(&tar_bytes, &default_options()).unwrap();
    assert_eq!(std::fs::read(fixture.dest.join("passwd")).unwrap(), b"through root link");
    assert_eq!(std::fs::read(fixture.dest.join("escape")).unwrap(), b"through dotdot link");
    assert!(!fixture.root.join("passwd").exists());

    // A link to the host directory resolves inside the extraction directory, where that path
    // does not exist, so the entry fails instead of landing in the canary directory.
    let tar_bytes = build_tar(&[("host", Symlink, &canary_dir, b"", 0o777), ("host/escape", Regular, "", b"x", 0o644)]);
    assert!(fixture.extract(&tar_bytes, &default_options()).is_err());
    fixture.assert_host_untouched();
}

#[test]
fn existing_symlinks_are_replaced_not_followed() {
    let fixture = fixture();
    std::os::unix::fs::symlink(&fixture.canary, fixture.dest.join("victim")).unwrap();
    std::os::unix::fs::symlink(&fixture.canary_dir, fixture.dest.join("victim-dir")).unwrap();
    let tar_bytes =
        build_tar(&[("victim", Regular, "", b"replaced", 0o600), ("victim-dir/", Directory, "", b"", 0o700)]);
    fixture.extract(&tar_bytes, &default_options()).unwrap();
    let meta = std::fs::symlink_metadata(fixture.dest.join("victim")).unwrap();
    assert!(meta.is_file());
    assert_eq!(std::fs::read(fixture.dest.join("victim")).unwrap(), b"replaced");
    assert!(std::fs::symlink_metadata(fixture.dest.join("victim-dir")).unwrap().is_dir());
    assert_eq!(mode_of(&fixture.canary_dir), 0o755, "the canary directory's mode did not change");
    fixture.assert_host_untouched();
}

#[test]
fn hard_links_outside_are_rejected() {
    let fixture = fixture();
    std::fs::write(fixture.root.join("outside-dest"), "container file").unwrap();
    let canary = fixture.canary.display().to_string();
    let cases = [("h1", "../../canary"), ("h2", "../outside-dest"), ("h3", canary.as_str())];
    for (name, target) in cases {
        let tar_bytes = build_tar(&[(name, Link, target, b"", 0o644)]);
        let err = fixture.extract(&tar_bytes, &default_options()).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument, "{target}: {}", err.message);
        assert!(!fixture.dest.join(name).exists());
    }
    assert_eq!(std::fs::metadata(fixture.root.join("outside-dest")).unwrap().nlink(), 1);
    fixture.assert_host_untouched();
}

#[test]
fn no_overwrite_dir_non_dir_is_enforced() {
    let fixture = fixture();
    std::fs::create_dir_all(fixture.dest.join("dir/inner")).unwrap();
    std::fs::write(fixture.dest.join("file"), "x").unwrap();
    let strict = ExtractOptions { no_overwrite_dir_non_dir: true, owner: None };
    let err = fixture.extract(&build_tar(&[("dir", Regular, "", b"f", 0o644)]), &strict).unwrap_err();
    assert_eq!(err.kind, Kind::InvalidArgument);
    assert!(err.message.contains("cannot overwrite directory"), "{}", err.message);
    let err = fixture.extract(&build_tar(&[("file/", Directory, "", b"", 0o755)]), &strict).unwrap_err();
    assert!(err.message.contains("cannot overwrite non-directory"), "{}", err.message);

    // Without the flag a directory is replaced with everything in it, as Docker does.
    fixture.extract(&build_tar(&[("dir", Regular, "", b"now a file", 0o644)]), &default_options()).unwrap();
    assert_eq!(std::fs::read(fixture.dest.join("dir")).unwrap(), b"now a file");
    fixture.extract(&build_tar(&[("file/", Directory, "", b"", 0o755)]), &default_options()).unwrap();
    assert!(fixture.dest.join("file").is_dir());
}

#[test]
fn destination_checks_follow_docker_order() {
    let fixture = fixture();
    std::fs::write(fixture.root.join("a-file"), "x").unwrap();
    std::os::unix::fs::symlink(&fixture.canary_dir, fixture.root.join("host-dir-link")).unwrap();
    std::os::unix::fs::symlink("dest", fixture.root.join("dest-link")).unwrap();
    let ro_source = fixture.base.path().join("canary-dir");
    let fs = ContainerFs {
        root: fixture.root.clone(),
        mounts: vec![MountPoint { destination: "/ro".into(), source: ro_source, read_only: true }],
    };
    let request = |path: &str, readonly_rootfs: bool| ExtractRequest {
        path: path.into(),
        no_overwrite_dir_non_dir: false,
        copy_uid_gid: false,
        readonly_rootfs,
        user: String::new(),
    };
    let tar_bytes = build_tar(&[("new", Regular, "", b"x", 0o644)]);
    let run = |path: &str, readonly: bool| extract_to_dir(&fs, &request(path, readonly), &tar_bytes[..]);

    assert_eq!(run("/missing", false).unwrap_err().kind, Kind::NotFound);
    assert_eq!(run("/host-dir-link", false).unwrap_err().kind, Kind::NotFound, "a link to a host path resolves inside");
    assert_eq!(run("/a-file", false).unwrap_err().message, "extraction point is not a directory");
    assert_eq!(run("/dest", true).unwrap_err().message, "container rootfs is marked read-only");
    assert_eq!(run("/ro", false).unwrap_err().message, "mounted volume is marked read-only");
    run("/dest-link", false).unwrap();
    assert_eq!(std::fs::read(fixture.dest.join("new")).unwrap(), b"x");
    fixture.assert_host_untouched();
}

#[test]
fn copy_uid_gid_uses_the_container_user() {
    let fixture = fixture();
    std::fs::create_dir_all(fixture.root.join("etc")).unwrap();
    std::fs::write(fixture.root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\nweb:x:33:34::/srv:/bin/sh\n").unwrap();
    std::fs::write(fixture.root.join("etc/group"), "root:x:0:\nweb:x:34:\n").unwrap();
    let fs = ContainerFs { root: fixture.root.clone(), mounts: Vec::new() };
    let request = ExtractRequest {
        path: "/dest".into(),
        no_overwrite_dir_non_dir: false,
        copy_uid_gid: true,
        readonly_rootfs: false,
        user: "web".into(),
    };
    extract_to_dir(&fs, &request, &build_tar(&[("owned", Regular, "", b"x", 0o644)])[..]).unwrap();
    let meta = std::fs::metadata(fixture.dest.join("owned")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (33, 34));
}
