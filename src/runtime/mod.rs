//! The only code that runs runc. Every invocation goes through `Runc::command`, which adds
//! `--root` (a private state directory) and a JSON log file, so failures can be read back
//! from the log's last error line.

pub mod bundle;
pub mod signal;
pub mod user;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::error::{Error, Kind, Result};

#[derive(Debug, Clone)]
pub struct Runc {
    pub binary: PathBuf,
    /// runc's `--root`: where it keeps its container state.
    pub root: PathBuf,
}

impl Runc {
    /// Builds the argv for a runc subcommand; the global flags come first, as runc needs.
    pub fn argv(&self, log: &Path, subcommand: &str, args: &[OsString]) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![
            "--root".into(),
            self.root.clone().into(),
            "--log".into(),
            log.into(),
            "--log-format".into(),
            "json".into(),
            subcommand.into(),
        ];
        argv.extend(args.iter().cloned());
        argv
    }

    /// Argv for `runc run` in the foreground: runc creates and starts the container, waits for
    /// it, deletes it and exits with its status, so one runc process covers the whole life.
    pub fn run_args(bundle: &Path, pid_file: &Path, console_socket: Option<&Path>, id: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--bundle".into(),
            bundle.into(),
            "--pid-file".into(),
            pid_file.into(),
        ];
        if let Some(socket) = console_socket {
            args.push("--console-socket".into());
            args.push(socket.into());
        }
        args.push(id.into());
        args
    }

    /// Argv for `runc exec` in the foreground: runc starts the process in the running
    /// container, waits for it and exits with its status.
    pub fn exec_args(process: &Path, pid_file: &Path, id: &str) -> Vec<OsString> {
        vec!["--process".into(), process.into(), "--pid-file".into(), pid_file.into(), id.into()]
    }

    pub fn std_command(&self, log: &Path, subcommand: &str, args: &[OsString]) -> std::process::Command {
        let mut command = std::process::Command::new(&self.binary);
        command.args(self.argv(log, subcommand, args));
        command
    }

    /// Runs a short runc subcommand to completion and maps a failure to an `Error` with runc's
    /// own message.
    pub async fn run_to_end(&self, log: &Path, subcommand: &str, args: &[OsString]) -> Result<Vec<u8>> {
        let argv = self.argv(log, subcommand, args);
        tracing::debug!(?argv, "runc");
        let output = tokio::process::Command::new(&self.binary)
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(|err| Error::internal(format!("failed to run {}: {err}", self.binary.display())))?;
        if output.status.success() {
            return Ok(output.stdout);
        }
        let message = last_error(log)
            .or_else(|| {
                let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
                (!stderr.is_empty()).then_some(stderr)
            })
            .unwrap_or_else(|| format!("runc {subcommand} exited with {}", output.status));
        Err(Error::new(classify(&message).0, message))
    }

    pub async fn pause(&self, log: &Path, id: &str) -> Result<()> {
        self.run_to_end(log, "pause", &[id.into()]).await.map(drop)
    }

    /// Reads one sample of cgroup statistics (`runc events --stats`).
    pub async fn events_stats(&self, log: &Path, id: &str) -> Result<serde_json::Value> {
        let stdout = self.run_to_end(log, "events", &["--stats".into(), id.into()]).await?;
        Ok(serde_json::from_slice(&stdout)?)
    }

    /// Host pids of the container's processes (`runc ps --format json`).
    pub async fn ps(&self, log: &Path, id: &str) -> Result<Vec<i32>> {
        let stdout = self.run_to_end(log, "ps", &["--format".into(), "json".into(), id.into()]).await?;
        let pids: Option<Vec<i32>> = serde_json::from_slice(&stdout)?;
        Ok(pids.unwrap_or_default())
    }

    /// Applies new cgroup limits (an OCI LinuxResources object) to a running container.
    pub async fn update(&self, log: &Path, id: &str, resources: &serde_json::Value) -> Result<()> {
        let file = log.with_file_name("resources.json");
        std::fs::write(&file, serde_json::to_vec(resources)?).map_err(|e| Error::internal(format!("writing {}: {e}", file.display())))?;
        self.run_to_end(log, "update", &["--resources".into(), file.into(), id.into()]).await.map(drop)
    }

    pub async fn resume(&self, log: &Path, id: &str) -> Result<()> {
        self.run_to_end(log, "resume", &[id.into()]).await.map(drop)
    }

    /// Deletes a container whatever its state; a container runc does not know is not an error.
    pub async fn delete_force(&self, log: &Path, id: &str) -> Result<()> {
        match self.run_to_end(log, "delete", &["--force".into(), id.into()]).await {
            Err(err) if err.kind == Kind::NotFound => Ok(()),
            other => other.map(drop),
        }
    }
}

/// Returns the message of the last error-level line of a runc JSON log.
pub fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|line| {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        (value.get("level")?.as_str()? == "error").then(|| value.get("msg")?.as_str().map(str::to_string))?
    })
}

/// Classifies a runc error message into an error kind and the exit code Docker records for a
/// start that failed this way (moby's daemon/start.go does the same on the runtime's text).
pub fn classify(message: &str) -> (Kind, i64) {
    let lower = message.to_ascii_lowercase();
    if lower.contains("does not exist") || lower.contains("container not found") {
        return (Kind::NotFound, 128);
    }
    if lower.contains("executable file not found")
        || lower.contains("no such file or directory")
        || lower.contains("not a directory")
    {
        return (Kind::InvalidArgument, 127);
    }
    if lower.contains("permission denied") || lower.contains("is a directory") {
        return (Kind::InvalidArgument, 126);
    }
    if lower.contains("not running") || lower.contains("not paused") || lower.contains("not stopped") {
        return (Kind::Conflict, 128);
    }
    (Kind::Internal, 128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_puts_global_flags_first() {
        let runc = Runc { binary: "runc".into(), root: "/run/b/runc".into() };
        let argv = runc.argv(Path::new("/x/runc.log"), "pause", &["abc".into()]);
        let argv: Vec<&str> = argv.iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(argv, ["--root", "/run/b/runc", "--log", "/x/runc.log", "--log-format", "json", "pause", "abc"]);
    }

    #[test]
    fn run_args_include_console_socket_only_for_tty() {
        let plain = Runc::run_args(Path::new("/b"), Path::new("/b/pid"), None, "id1");
        assert_eq!(plain, ["--bundle", "/b", "--pid-file", "/b/pid", "id1"].map(OsString::from));
        let tty = Runc::run_args(Path::new("/b"), Path::new("/b/pid"), Some(Path::new("/s")), "id1");
        assert!(tty.contains(&OsString::from("--console-socket")));
    }

    #[test]
    fn classify_maps_runc_messages_to_docker_exit_codes() {
        let missing = r#"runc run failed: unable to start container process: exec: "nope": executable file not found in $PATH"#;
        assert_eq!(classify(missing), (Kind::InvalidArgument, 127));
        assert_eq!(classify("exec: \"/etc\": is a directory"), (Kind::InvalidArgument, 126));
        assert_eq!(classify("container \"x\" does not exist"), (Kind::NotFound, 128));
        assert_eq!(classify("container not running"), (Kind::Conflict, 128));
        assert_eq!(classify("cgroup failure"), (Kind::Internal, 128));
    }

    #[test]
    fn last_error_reads_the_final_error_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("runc.log");
        std::fs::write(
            &log,
            "{\"level\":\"error\",\"msg\":\"first\",\"time\":\"t\"}\n{\"level\":\"warning\",\"msg\":\"w\"}\n{\"level\":\"error\",\"msg\":\"second\"}\n",
        )
        .unwrap();
        assert_eq!(last_error(&log).as_deref(), Some("second"));
    }
}
