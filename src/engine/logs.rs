//! `GET /containers/{id}/logs`: reads the json-file log (rotated files first) on a blocking
//! thread and sends Docker-framed chunks to the response body.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Container, Engine};
use crate::error::{Error, Result};
use crate::store::logs::{self, Stream};

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    /// Unix time in seconds; entries before it are skipped.
    pub since: Option<f64>,
    /// Unix time in seconds; entries after it are skipped and follow ends.
    pub until: Option<f64>,
    pub timestamps: bool,
    /// Only the last N entries; None for all.
    pub tail: Option<usize>,
}

/// Size of the chunks sent to the response body.
const CHUNK: usize = 64 * 1024;

/// How often a follower checks the log for new lines while the container runs.
const FOLLOW_POLL: Duration = Duration::from_millis(25);

impl Engine {
    pub fn logs(&self, container: Arc<Container>, options: LogOptions) -> Result<mpsc::Receiver<Bytes>> {
        if !options.stdout && !options.stderr {
            return Err(Error::invalid("Bad parameters: you must choose at least one stream"));
        }
        let (tty, _, _) = self.stdio_flags(&container);
        let (sender, receiver) = mpsc::channel(8);
        std::thread::spawn(move || {
            let mut reader = LogReader { options, tty, sender, out: Vec::with_capacity(CHUNK) };
            reader.run(&container);
        });
        Ok(receiver)
    }
}

struct LogReader {
    options: LogOptions,
    tty: bool,
    sender: mpsc::Sender<Bytes>,
    out: Vec<u8>,
}

impl LogReader {
    fn run(&mut self, container: &Container) {
        let path = container.log_path();
        let files = logs::files_oldest_first(&path);
        let mut skip = match self.options.tail {
            Some(n) => count_entries(&files).saturating_sub(n),
            None => 0,
        };
        let last = files.len() - 1;
        for (index, file) in files.iter().enumerate() {
            let Ok(handle) = File::open(file) else { continue };
            let mut input = BufReader::with_capacity(256 * 1024, handle);
            let mut line = Vec::with_capacity(256);
            loop {
                line.clear();
                match input.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if !line.ends_with(b"\n") {
                    // A partial line is being written; the follower below re-reads it.
                    let back = line.len() as i64;
                    let _ = input.seek(SeekFrom::Current(-back));
                    break;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                if !self.emit(&line) {
                    return;
                }
            }
            if index == last && self.options.follow && !self.past_until() {
                self.follow(container, &mut input, &path);
                return;
            }
        }
        self.flush();
    }

    /// Keeps reading the current log file until the container stops or `until` passes.
    fn follow(&mut self, container: &Container, input: &mut BufReader<File>, path: &PathBuf) {
        let mut line = Vec::with_capacity(256);
        let mut position = input.stream_position().unwrap_or(0);
        loop {
            let running = container.is_running() && !container.is_removed();
            loop {
                line.clear();
                match input.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if !line.ends_with(b"\n") => {
                        let _ = input.seek(SeekFrom::Start(position));
                        break;
                    }
                    Ok(n) => {
                        position += n as u64;
                        if !self.emit(&line) {
                            return;
                        }
                    }
                }
            }
            if !self.flush() || !running || self.past_until() {
                return;
            }
            std::thread::sleep(FOLLOW_POLL);
            // The file was rotated under us: continue from the start of the new one.
            if std::fs::metadata(path).map(|m| m.len() < position).unwrap_or(false) {
                if let Ok(file) = File::open(path) {
                    *input = BufReader::with_capacity(256 * 1024, file);
                    position = 0;
                }
            }
        }
    }

    fn past_until(&self) -> bool {
        self.options.until.is_some_and(|until| until > 0.0 && now_seconds() > until)
    }

    /// Formats one entry into the output; returns false when the client has gone.
    fn emit(&mut self, line: &[u8]) -> bool {
        let Some(entry) = logs::parse_raw(line) else { return true };
        let stream = entry.stream;
        let wanted = match stream {
            Stream::Stdout => self.options.stdout,
            Stream::Stderr => self.options.stderr,
        };
        if !wanted {
            return true;
        }
        if self.options.since.is_some() || self.options.until.is_some() {
            let seconds = entry.parse_time().map(|t| t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9);
            if let (Some(since), Some(t)) = (self.options.since, seconds) {
                if since > 0.0 && t < since {
                    return true;
                }
            }
            if let (Some(until), Some(t)) = (self.options.until, seconds) {
                if until > 0.0 && t > until {
                    return true;
                }
            }
        }
        let prefix_len = if self.options.timestamps { entry.time.len() + 1 } else { 0 };
        let length = prefix_len + entry.log.len();
        if !self.tty {
            self.out.push(stream as u8);
            self.out.extend_from_slice(&[0, 0, 0]);
            self.out.extend_from_slice(&(length as u32).to_be_bytes());
        }
        if self.options.timestamps {
            self.out.extend_from_slice(entry.time.as_bytes());
            self.out.push(b' ');
        }
        self.out.extend_from_slice(&entry.log);
        if self.out.len() >= CHUNK {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return !self.sender.is_closed();
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.out, Vec::with_capacity(CHUNK)));
        self.sender.blocking_send(chunk).is_ok()
    }
}

fn count_entries(files: &[PathBuf]) -> usize {
    files
        .iter()
        .filter_map(|f| File::open(f).ok())
        .map(|f| BufReader::with_capacity(256 * 1024, f).split(b'\n').count())
        .sum()
}

fn now_seconds() -> f64 {
    let now = chrono::Utc::now();
    now.timestamp() as f64 + now.timestamp_subsec_nanos() as f64 / 1e9
}
