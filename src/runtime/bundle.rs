//! Generates an OCI bundle's config.json from a container's settings, with Docker's defaults
//! written out explicitly: oci-spec's own defaults (hostname "youki", three capabilities,
//! no_new_privileges on) are not Docker's.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, LinuxCapabilitiesBuilder, Mount,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, UserBuilder,
};

use super::user::ResolvedUser;
use crate::error::{Error, Result};

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// A bind mount from the host into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

/// Everything the bundle needs, already merged with the image config by the engine.
#[derive(Debug, Clone)]
pub struct BundleSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: ResolvedUser,
    pub hostname: String,
    pub tty: bool,
    pub rootfs: PathBuf,
    pub readonly_rootfs: bool,
    pub binds: Vec<BindMount>,
    /// Host network namespace (`NetworkMode: host`) instead of a private one.
    pub host_network: bool,
    pub cgroups_path: String,
    pub memory: i64,
    pub nano_cpus: i64,
    pub pids_limit: i64,
    /// The open-file limit to set. Docker sets 1048576; the daemon clamps it to its own hard limit.
    pub nofile_limit: u64,
}

/// Builds an OCI process with Docker's capabilities and the clamped open-file limit: the
/// init process of a bundle, or the process file of `runc exec`.
pub fn process(args: Vec<String>, env: Vec<String>, cwd: String, user: &ResolvedUser, tty: bool, nofile_limit: u64) -> Result<oci_spec::runtime::Process> {
    let build_error = |err: oci_spec::OciSpecError| Error::internal(format!("building OCI process: {err}"));
    let caps: HashSet<Capability> = DEFAULT_CAPABILITIES.into_iter().collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
        .map_err(build_error)?;
    let user = UserBuilder::default()
        .uid(user.uid)
        .gid(user.gid)
        .additional_gids(user.additional_gids.clone())
        .build()
        .map_err(build_error)?;
    let nofile = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(nofile_limit)
        .soft(nofile_limit)
        .build()
        .map_err(build_error)?;
    ProcessBuilder::default()
        .terminal(tty)
        .args(args)
        .env(env)
        .cwd(cwd)
        .user(user)
        .capabilities(capabilities)
        .rlimits(vec![nofile])
        .no_new_privileges(false)
        .build()
        .map_err(build_error)
}

pub fn generate(spec: &BundleSpec) -> Result<Spec> {
    let build_error = |err: oci_spec::OciSpecError| Error::internal(format!("building OCI spec: {err}"));
    let process = process(spec.args.clone(), spec.env.clone(), spec.cwd.clone(), &spec.user, spec.tty, spec.nofile_limit)?;

    let mut namespace_types = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if !spec.host_network {
        namespace_types.push(LinuxNamespaceType::Network);
    }
    let namespaces = namespace_types
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(build_error)?;

    let mut resources = LinuxResourcesBuilder::default();
    if spec.memory > 0 {
        resources = resources.memory(LinuxMemoryBuilder::default().limit(spec.memory).build().map_err(build_error)?);
    }
    if spec.nano_cpus > 0 {
        let period: u64 = 100_000;
        let quota = spec.nano_cpus * period as i64 / 1_000_000_000;
        resources = resources.cpu(LinuxCpuBuilder::default().period(period).quota(quota).build().map_err(build_error)?);
    }
    if spec.pids_limit > 0 {
        resources = resources.pids(LinuxPidsBuilder::default().limit(spec.pids_limit).build().map_err(build_error)?);
    }
    // Keep the default device rules of the base spec (deny all, then the standard devices).
    let base_linux = Spec::default().linux().clone().unwrap_or_default();
    if let Some(devices) = base_linux.resources().as_ref().and_then(|r| r.devices().clone()) {
        resources = resources.devices(devices);
    }
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources.build().map_err(build_error)?)
        .cgroups_path(PathBuf::from(&spec.cgroups_path))
        .masked_paths(MASKED_PATHS.map(String::from).to_vec())
        .readonly_paths(READONLY_PATHS.map(String::from).to_vec())
        .build()
        .map_err(build_error)?;

    let root = RootBuilder::default()
        .path(spec.rootfs.clone())
        .readonly(spec.readonly_rootfs)
        .build()
        .map_err(build_error)?;

    let mut oci = Spec::default();
    oci.set_hostname(Some(spec.hostname.clone()));
    oci.set_process(Some(process));
    oci.set_root(Some(root));
    oci.set_mounts(Some(mounts(spec).map_err(build_error)?));
    oci.set_linux(Some(linux));
    Ok(oci)
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, oci_spec::OciSpecError> {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
}

/// Docker's standard mounts, then the bind mounts in the order given.
fn mounts(spec: &BundleSpec) -> Result<Vec<Mount>, oci_spec::OciSpecError> {
    let mut list = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"])?,
        mount("/dev/pts", "devpts", "devpts", &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"])?,
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"])?,
        mount("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", "ro"])?,
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"])?,
        mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"])?,
    ];
    for bind in &spec.binds {
        let mode = if bind.read_only { "ro" } else { "rw" };
        list.push(
            MountBuilder::default()
                .destination(&bind.destination)
                .typ("bind")
                .source(bind.source.clone())
                .options(vec!["rbind".to_string(), "rprivate".to_string(), mode.to_string()])
                .build()?,
        );
    }
    Ok(list)
}

/// Writes config.json into `bundle`.
pub fn write(bundle: &Path, spec: &Spec) -> Result<()> {
    let bytes = serde_json::to_vec(spec)?;
    crate::store::write_regenerated(&bundle.join("config.json"), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BundleSpec {
        BundleSpec {
            args: vec!["echo".into(), "hi".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            user: ResolvedUser { uid: 0, gid: 0, additional_gids: vec![] },
            hostname: "0123456789ab".into(),
            tty: false,
            rootfs: "/var/lib/berth/containers/x/merged".into(),
            readonly_rootfs: false,
            binds: vec![BindMount { source: "/srv".into(), destination: "/data".into(), read_only: true }],
            host_network: false,
            cgroups_path: "/berth/x".into(),
            memory: 64 << 20,
            nano_cpus: 1_500_000_000,
            pids_limit: 100,
            nofile_limit: 20000,
        }
    }

    #[test]
    fn generate_sets_docker_defaults() {
        let oci = serde_json::to_value(generate(&sample()).unwrap()).unwrap();
        assert_eq!(oci["hostname"], "0123456789ab");
        assert_eq!(oci["process"]["noNewPrivileges"], false);
        assert_eq!(oci["process"]["capabilities"]["bounding"].as_array().unwrap().len(), 14);
        assert_eq!(oci["process"]["rlimits"][0]["hard"], 20000);
        assert_eq!(oci["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(oci["linux"]["resources"]["cpu"]["quota"], 150000);
        assert_eq!(oci["linux"]["resources"]["pids"]["limit"], 100);
        let namespaces: Vec<&str> =
            oci["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
        assert!(namespaces.contains(&"network"));
        let data = oci["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == "/data").unwrap();
        assert_eq!(data["options"], serde_json::json!(["rbind", "rprivate", "ro"]));
    }

    #[test]
    fn host_network_omits_the_network_namespace() {
        let mut spec = sample();
        spec.host_network = true;
        let oci = serde_json::to_value(generate(&spec).unwrap()).unwrap();
        let namespaces: Vec<&str> =
            oci["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
        assert!(!namespaces.contains(&"network"));
    }
}
