//! The monitor socket protocol. Both directions carry frames of
//! `[kind: u8][length: u32 big-endian][payload]`; JSON payloads for control messages, raw
//! bytes for stdio.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// Frames a client (the daemon) sends to a monitor.
pub mod to_monitor {
    /// Register for output and the exit notice; payload is a `Subscription`.
    pub const SUBSCRIBE: u8 = 1;
    /// Start the container process (only the first one counts).
    pub const START: u8 = 2;
    /// Bytes for the process's stdin.
    pub const STDIN: u8 = 3;
    /// Close the process's stdin.
    pub const CLOSE_STDIN: u8 = 4;
}

/// Frames a monitor sends to its clients.
pub mod from_monitor {
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    /// The subscription is in place: no output from here on is missed.
    pub const SUBSCRIBED: u8 = 10;
    /// The process is running; payload is a `Started`.
    pub const STARTED: u8 = 11;
    /// runc could not start the process; payload is a `StartFailed`.
    pub const START_FAILED: u8 = 12;
    /// The process has exited and the exit file is written; payload is an `ExitRecord`.
    pub const EXITED: u8 = 13;
}

/// Largest frame accepted; stdio frames are at most one pipe read (64 KiB).
pub const MAX_FRAME: usize = 1 << 20;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default)]
pub struct Subscription {
    pub stdout: bool,
    pub stderr: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Started {
    pub pid: i32,
    /// Start time of the pid in clock ticks since boot, to detect pid reuse later.
    pub start_time: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartFailed {
    pub message: String,
}

/// The exit file a monitor writes once, atomically, when the container process has ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitRecord {
    /// The exit status, or 128 + signal number when a signal ended the process.
    pub exit_code: i64,
    /// RFC 3339 time at which the monitor reaped the process.
    pub finished_at: String,
    #[serde(default)]
    pub oom_killed: bool,
    /// runc's message when the process never started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_error: Option<String>,
}

pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(kind);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

pub fn write_frame(out: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    out.write_all(&encode(kind, payload))
}

/// Reads one frame; returns None on a clean end of stream before a new frame.
pub fn read_frame(input: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 5];
    match input.read_exact(&mut header) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if length > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("monitor frame of {length} bytes is too large")));
    }
    let mut payload = vec![0u8; length];
    input.read_exact(&mut payload)?;
    Ok(Some((header[0], payload)))
}

/// Async twin of `read_frame` for the daemon side.
pub async fn read_frame_async<R: tokio::io::AsyncRead + Unpin>(input: &mut R) -> io::Result<Option<(u8, Vec<u8>)>> {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; 5];
    match input.read_exact(&mut header).await {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if length > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("monitor frame of {length} bytes is too large")));
    }
    let mut payload = vec![0u8; length];
    input.read_exact(&mut payload).await?;
    Ok(Some((header[0], payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buffer = Vec::new();
        write_frame(&mut buffer, from_monitor::STDOUT, b"hello").unwrap();
        write_frame(&mut buffer, from_monitor::EXITED, b"{}").unwrap();
        let mut reader = &buffer[..];
        assert_eq!(read_frame(&mut reader).unwrap(), Some((1, b"hello".to_vec())));
        assert_eq!(read_frame(&mut reader).unwrap(), Some((13, b"{}".to_vec())));
        assert_eq!(read_frame(&mut reader).unwrap(), None);
    }

    #[test]
    fn oversized_frame_is_rejected() {
        let mut frame = vec![1u8];
        frame.extend_from_slice(&(MAX_FRAME as u32 + 1).to_be_bytes());
        assert!(read_frame(&mut &frame[..]).is_err());
    }
}
