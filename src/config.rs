//! Daemon settings, from command-line flags (`berth --help`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = "A daemon that serves the Docker Engine API and runs containers with runc")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub daemon: DaemonSettings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the per-container monitor (started by the daemon, not by hand). Without CONFIG it
    /// waits as a spare and reads the config path from its stdin; `--root` then only names the
    /// daemon it belongs to.
    #[command(hide = true)]
    Monitor {
        config: Option<PathBuf>,
        #[arg(long)]
        spare_for: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct DaemonSettings {
    /// Address to listen on: unix:///path or tcp://127.0.0.1:PORT; repeat for several.
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    /// Directory for persistent state: containers, logs and images.
    #[arg(long, default_value = "/var/lib/berth")]
    pub root: PathBuf,
    /// Directory for runtime state: runc's state and monitor sockets (keep it short: socket
    /// paths must fit in 108 bytes).
    #[arg(long, default_value = "/run/berth")]
    pub exec_root: PathBuf,
    /// The runc binary to run.
    #[arg(long, default_value = "runc")]
    pub runtime: PathBuf,
    /// Parent cgroup (under each controller) of the containers' cgroups.
    #[arg(long, default_value = "berth")]
    pub cgroup_parent: String,
    /// Rotate a container's json-file log when it reaches this many bytes (0: never).
    #[arg(long, default_value_t = 100 * 1024 * 1024)]
    pub log_max_size: u64,
    /// Number of json-file log files kept per container, the current one included.
    #[arg(long, default_value_t = 2)]
    pub log_max_files: u32,
    /// Log filter for the daemon's own log, in tracing's env-filter syntax.
    #[arg(long, env = "BERTH_LOG", default_value = "info")]
    pub log_level: String,
}

impl DaemonSettings {
    /// Returns the listen addresses, with the defaults when no `--host` was given.
    pub fn listen_addresses(&self) -> Vec<String> {
        if self.hosts.is_empty() {
            vec!["unix:///run/berth/berth.sock".into(), "tcp://127.0.0.1:2376".into()]
        } else {
            self.hosts.clone()
        }
    }
}
