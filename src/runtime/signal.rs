//! Signal names and delivery. A signal is sent to the container's init process through a
//! pidfd, so a recycled pid can never receive it and no runc process is started for it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};

const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("IOT", 6),
    ("BUS", 7), ("FPE", 8), ("KILL", 9), ("USR1", 10), ("SEGV", 11), ("USR2", 12),
    ("PIPE", 13), ("ALRM", 14), ("TERM", 15), ("STKFLT", 16), ("CHLD", 17), ("CONT", 18),
    ("STOP", 19), ("TSTP", 20), ("TTIN", 21), ("TTOU", 22), ("URG", 23), ("XCPU", 24),
    ("XFSZ", 25), ("VTALRM", 26), ("PROF", 27), ("WINCH", 28), ("IO", 29), ("POLL", 29),
    ("PWR", 30), ("SYS", 31),
];

/// Parses a signal as Docker accepts it: `KILL`, `SIGKILL`, `sigkill` or `9`.
pub fn parse(text: &str) -> Result<i32> {
    let invalid = || Error::invalid(format!("Invalid signal: {text}"));
    if let Ok(number) = text.parse::<i32>() {
        return if (1..=64).contains(&number) { Ok(number) } else { Err(invalid()) };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(offset) = name.strip_prefix("RTMIN+") {
        let offset: i32 = offset.parse().map_err(|_| invalid())?;
        return if (0..=30).contains(&offset) { Ok(34 + offset) } else { Err(invalid()) };
    }
    SIGNALS.iter().find(|(n, _)| *n == name).map(|(_, number)| *number).ok_or_else(invalid)
}

/// Opens a pidfd for `pid`, or returns None when the process is already gone.
pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `signal` through a pidfd. ESRCH (the process has exited) is reported as such.
pub fn send(pidfd: &OwnedFd, signal: i32) -> std::io::Result<()> {
    // SAFETY: the descriptor is a live pidfd owned by the caller; info may be null.
    let rc = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, std::ptr::null::<libc::siginfo_t>(), 0)
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reads a process's start time (field 22 of /proc/PID/stat, in clock ticks since boot), so a
/// recorded pid can be distinguished from a later process that reuses the number.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in field 2 may contain spaces, so count fields after its closing paren.
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split(' ').nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_names_prefixes_and_numbers() {
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGTERM").unwrap(), 15);
        assert_eq!(parse("sigwinch").unwrap(), 28);
        assert_eq!(parse("usr1").unwrap(), 10);
        assert_eq!(parse("2").unwrap(), 2);
        assert_eq!(parse("SIGRTMIN+3").unwrap(), 37);
    }

    #[test]
    fn parse_rejects_unknown_signals() {
        assert_eq!(parse("NOPE").unwrap_err().message, "Invalid signal: NOPE");
        assert!(parse("0").is_err());
        assert!(parse("65").is_err());
    }

    #[test]
    fn start_time_of_own_process_is_stable() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert_eq!(start_time(me), start_time(me));
    }
}
