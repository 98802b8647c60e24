//! The container state machine and Docker's human-readable status strings.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Docker's container states (`State.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// True while a process exists: Docker reports `Running: true` for paused containers too.
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// The persisted state of a container (`State` in inspect).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateRecord {
    pub status: Status,
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot, to detect pid reuse.
    #[serde(default)]
    pub pid_start_time: u64,
    pub exit_code: i64,
    pub error: String,
    pub oom_killed: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub restart_count: u64,
}

impl Default for StateRecord {
    fn default() -> Self {
        StateRecord {
            status: Status::Created,
            pid: 0,
            pid_start_time: 0,
            exit_code: 0,
            error: String::new(),
            oom_killed: false,
            started_at: None,
            finished_at: None,
            restart_count: 0,
        }
    }
}

impl StateRecord {
    /// Checks that a start may proceed; a running container is "not modified" (304).
    pub fn check_start(&self, id: &str) -> Result<()> {
        match self.status {
            Status::Running | Status::Restarting => Err(Error::not_modified()),
            Status::Paused => Err(Error::conflict("cannot start a paused container, try unpause instead")),
            Status::Removing => Err(Error::conflict(format!("container {id} is marked for removal and cannot be started"))),
            Status::Dead => Err(Error::conflict(format!("container {id} is marked as dead and cannot be started"))),
            Status::Created | Status::Exited => Ok(()),
        }
    }

    /// Checks that a signal can be sent. `reference` is the container as the client named it.
    pub fn check_kill(&self, reference: &str, id: &str) -> Result<()> {
        if self.status.is_running() {
            Ok(())
        } else {
            Err(not_running(reference, id))
        }
    }

    /// Checks that a remove may proceed without killing first.
    pub fn check_remove(&self, name: &str, force: bool) -> Result<()> {
        match self.status {
            Status::Paused if !force => Err(Error::conflict(format!(
                "cannot remove container \"{name}\": container is paused and must be unpaused first"
            ))),
            Status::Running | Status::Restarting if !force => Err(Error::conflict(format!(
                "cannot remove container \"{name}\": container is running: stop the container before removing or force remove"
            ))),
            Status::Removing => Err(Error::conflict(format!("removal of container {name} is already in progress"))),
            _ => Ok(()),
        }
    }

    /// Records a successful start.
    pub fn set_running(&mut self, pid: i32, pid_start_time: u64, now: DateTime<Utc>) {
        self.status = Status::Running;
        self.pid = pid;
        self.pid_start_time = pid_start_time;
        self.exit_code = 0;
        self.error.clear();
        self.oom_killed = false;
        self.started_at = Some(now);
        self.finished_at = None;
    }

    /// Records an exit of a started process.
    pub fn set_exited(&mut self, exit_code: i64, finished_at: DateTime<Utc>, oom_killed: bool) {
        self.status = Status::Exited;
        self.pid = 0;
        self.pid_start_time = 0;
        self.exit_code = exit_code;
        self.oom_killed = oom_killed;
        self.finished_at = Some(finished_at);
    }

    /// Records a start that runc could not carry out; a never-started container stays created.
    pub fn set_start_failed(&mut self, exit_code: i64, message: &str, now: DateTime<Utc>) {
        self.status = if self.started_at.is_some() { Status::Exited } else { Status::Created };
        self.pid = 0;
        self.exit_code = exit_code;
        self.error = message.to_string();
        if self.started_at.is_some() {
            self.finished_at = Some(now);
        }
    }

    /// Docker's `Status` column: `Up 5 seconds`, `Exited (0) 3 minutes ago`, `Created`.
    pub fn summary(&self, now: DateTime<Utc>) -> String {
        let since = |t: Option<DateTime<Utc>>| human_duration(now - t.unwrap_or(now));
        match self.status {
            Status::Created => "Created".into(),
            Status::Running => format!("Up {}", since(self.started_at)),
            Status::Paused => format!("Up {} (Paused)", since(self.started_at)),
            Status::Restarting => format!("Restarting ({}) {} ago", self.exit_code, since(self.finished_at)),
            Status::Removing => "Removal In Progress".into(),
            Status::Exited => format!("Exited ({}) {} ago", self.exit_code, since(self.finished_at)),
            Status::Dead => "Dead".into(),
        }
    }
}

pub fn not_running(reference: &str, id: &str) -> Error {
    Error::conflict(format!("cannot kill container: {reference}: container {id} is not running"))
}

/// Formats a duration as Docker's go-units `HumanDuration` does.
pub fn human_duration(duration: chrono::Duration) -> String {
    let seconds = duration.num_seconds();
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if seconds < 1 {
        "Less than a second".into()
    } else if seconds == 1 {
        "1 second".into()
    } else if seconds < 60 {
        format!("{seconds} seconds")
    } else if seconds / 60 == 1 {
        "About a minute".into()
    } else if seconds < 3600 {
        format!("{} minutes", seconds / 60)
    } else if seconds / 3600 == 1 {
        "About an hour".into()
    } else if seconds < 48 * 3600 {
        format!("{} hours", seconds / 3600)
    } else if seconds < 7 * 24 * 3600 * 2 {
        format!("{} days", seconds / (24 * 3600))
    } else if seconds < 30 * 24 * 3600 * 3 {
        format!("{} weeks", seconds / (7 * 24 * 3600))
    } else if seconds < 365 * 24 * 3600 * 2 {
        format!("{} months", seconds / (30 * 24 * 3600))
    } else {
        plural(seconds / (365 * 24 * 3600), "year")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    #[test]
    fn start_rules() {
        let mut state = StateRecord::default();
        assert!(state.check_start("x").is_ok());
        state.set_running(10, 1, Utc::now());
        assert_eq!(state.check_start("x").unwrap_err().kind, Kind::NotModified);
        state.status = Status::Paused;
        assert_eq!(state.check_start("x").unwrap_err().kind, Kind::Conflict);
    }

    #[test]
    fn kill_and_remove_rules() {
        let mut state = StateRecord::default();
        assert_eq!(state.check_kill("web", "abc").unwrap_err().message, "cannot kill container: web: container abc is not running");
        assert!(state.check_remove("/n", false).is_ok());
        state.set_running(10, 1, Utc::now());
        assert!(state.check_kill("web", "abc").is_ok());
        assert_eq!(state.check_remove("/n", false).unwrap_err().kind, Kind::Conflict);
        assert!(state.check_remove("/n", true).is_ok());
    }

    #[test]
    fn failed_first_start_stays_created() {
        let mut state = StateRecord::default();
        state.set_start_failed(127, "not found", Utc::now());
        assert_eq!(state.status, Status::Created);
        assert_eq!(state.exit_code, 127);
        state.set_running(5, 1, Utc::now());
        state.set_exited(0, Utc::now(), false);
        state.set_start_failed(126, "denied", Utc::now());
        assert_eq!(state.status, Status::Exited);
    }

    #[test]
    fn summaries_match_docker() {
        let now = Utc::now();
        let mut state = StateRecord::default();
        assert_eq!(state.summary(now), "Created");
        state.set_running(1, 1, now - chrono::Duration::seconds(5));
        assert_eq!(state.summary(now), "Up 5 seconds");
        state.set_exited(3, now - chrono::Duration::minutes(3), false);
        assert_eq!(state.summary(now), "Exited (3) 3 minutes ago");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(chrono::Duration::milliseconds(300)), "Less than a second");
        assert_eq!(human_duration(chrono::Duration::seconds(90)), "About a minute");
        assert_eq!(human_duration(chrono::Duration::hours(5)), "5 hours");
        assert_eq!(human_duration(chrono::Duration::days(3)), "3 days");
    }
}
