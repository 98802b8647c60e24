//! Docker's json-file log format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2024-01-01T00:00:00.000000000Z"}`.
//! The monitor writes it; the daemon reads it for `GET /containers/{id}/logs`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

/// Output stream of a container process, numbered as in Docker's multiplexed frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Maximum length of one entry; Docker's json-file driver also splits longer lines at 16 KiB.
const MAX_ENTRY: usize = 16 * 1024;

/// Appends entries to a json-file log, rotating it when it grows past `max_size` bytes.
pub struct LogWriter {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    max_size: u64,
    max_files: u32,
    /// Bytes of an unfinished line per stream, kept until its newline arrives.
    pending: [Vec<u8>; 2],
    /// The last entry time and its formatted text.
    time_cache: (DateTime<Utc>, String),
}

impl LogWriter {
    /// Opens `path` for appending. `max_size` 0 means no rotation.
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(64 * 1024, file),
            size,
            max_size,
            max_files: max_files.max(1),
            pending: [Vec::new(), Vec::new()],
            time_cache: (DateTime::<Utc>::MIN_UTC, String::new()),
        })
    }

    /// Writes the complete lines in `data`, keeping a trailing partial line for later.
    pub fn write(&mut self, stream: Stream, data: &[u8], now: DateTime<Utc>) -> io::Result<()> {
        let index = stream as usize - 1;
        let mut rest = data;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(pos + 1);
            if self.pending[index].is_empty() {
                self.write_entry(stream, line, now)?;
            } else {
                let mut joined = std::mem::take(&mut self.pending[index]);
                joined.extend_from_slice(line);
                self.write_entry(stream, &joined, now)?;
            }
            rest = tail;
        }
        self.pending[index].extend_from_slice(rest);
        while self.pending[index].len() >= MAX_ENTRY {
            let chunk: Vec<u8> = self.pending[index].drain(..MAX_ENTRY).collect();
            self.write_entry(stream, &chunk, now)?;
        }
        Ok(())
    }

    /// Writes any partial lines as entries of their own (at exit) and flushes.
    pub fn finish(&mut self, now: DateTime<Utc>) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = std::mem::take(&mut self.pending[stream as usize - 1]);
            if !pending.is_empty() {
                self.write_entry(stream, &pending, now)?;
            }
        }
        self.out.flush()
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn write_entry(&mut self, stream: Stream, line: &[u8], now: DateTime<Utc>) -> io::Result<()> {
        // Every line of one pipe read shares its time, so format it once per read.
        if self.time_cache.0 != now {
            self.time_cache = (now, format_time(now));
        }
        let mut entry = Vec::with_capacity(line.len() + 80);
        entry.extend_from_slice(b"{\"log\":");
        escape_json_string(&String::from_utf8_lossy(line), &mut entry);
        entry.extend_from_slice(b",\"stream\":\"");
        entry.extend_from_slice(stream.name().as_bytes());
        entry.extend_from_slice(b"\",\"time\":\"");
        entry.extend_from_slice(self.time_cache.1.as_bytes());
        entry.extend_from_slice(b"\"}\n");
        if self.max_size > 0 && self.size + entry.len() as u64 > self.max_size && self.size > 0 {
            self.rotate()?;
        }
        self.out.write_all(&entry)?;
        self.size += entry.len() as u64;
        Ok(())
    }

    /// Shifts `log` to `log.1`, `log.1` to `log.2` and so on, dropping the oldest.
    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.max_files > 1 {
            for n in (1..self.max_files - 1).rev() {
                let from = rotated_path(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, rotated_path(&self.path, n + 1))?;
                }
            }
            std::fs::rename(&self.path, rotated_path(&self.path, 1))?;
        }
        let file = OpenOptions::new().create(true).write(true).truncate(true).open(&self.path)?;
        self.out = BufWriter::with_capacity(64 * 1024, file);
        self.size = 0;
        Ok(())
    }
}

pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Formats a time as Docker's logs do: RFC 3339 with 9 fraction digits and `Z`.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn escape_json_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for ch in text.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// One parsed log line. Borrowed where the JSON needs no unescaping.
#[derive(Debug, Deserialize)]
pub struct Entry<'a> {
    #[serde(borrow)]
    pub log: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub stream: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub time: std::borrow::Cow<'a, str>,
}

impl Entry<'_> {
    pub fn stream(&self) -> Stream {
        if self.stream == "stderr" {
            Stream::Stderr
        } else {
            Stream::Stdout
        }
    }
}

pub fn parse_line(line: &[u8]) -> Option<Entry<'_>> {
    serde_json::from_slice(line).ok()
}

/// One log line as the logs endpoint needs it: the text as bytes, the stream and the time.
#[derive(Debug, PartialEq, Eq)]
pub struct RawEntry<'a> {
    pub log: std::borrow::Cow<'a, [u8]>,
    pub stream: Stream,
    pub time: std::borrow::Cow<'a, str>,
}

impl RawEntry<'_> {
    pub fn parse_time(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.time).ok().map(|t| t.with_timezone(&Utc))
    }
}

/// Parses a log line. Lines in the exact layout `LogWriter` writes take a fast path that
/// unescapes only the text. Any other valid JSON entry, such as one with another key order,
/// goes through serde_json.
pub fn parse_raw(line: &[u8]) -> Option<RawEntry<'_>> {
    parse_fast(line).or_else(|| {
        let entry = parse_line(line)?;
        let stream = entry.stream();
        Some(RawEntry {
            log: std::borrow::Cow::Owned(entry.log.as_bytes().to_vec()),
            stream,
            time: std::borrow::Cow::Owned(entry.time.into_owned()),
        })
    })
}

fn parse_fast(line: &[u8]) -> Option<RawEntry<'_>> {
    let rest = line.strip_prefix(b"{\"log\":\"")?;
    let mut end = 0;
    let mut escaped = false;
    while end < rest.len() {
        match rest[end] {
            b'\\' => {
                escaped = true;
                end += 2;
            }
            b'"' => break,
            _ => end += 1,
        }
    }
    if end >= rest.len() {
        return None;
    }
    let text = &rest[..end];
    let rest = &rest[end + 1..];
    let (stream, rest) = if let Some(r) = rest.strip_prefix(b",\"stream\":\"stdout\",\"time\":\"") {
        (Stream::Stdout, r)
    } else if let Some(r) = rest.strip_prefix(b",\"stream\":\"stderr\",\"time\":\"") {
        (Stream::Stderr, r)
    } else {
        return None;
    };
    let close = rest.iter().position(|&b| b == b'"')?;
    let tail = &rest[close..];
    if tail != b"\"}\n" && tail != b"\"}" {
        return None;
    }
    let time = std::str::from_utf8(&rest[..close]).ok()?;
    let log = if escaped { std::borrow::Cow::Owned(unescape(text)?) } else { std::borrow::Cow::Borrowed(text) };
    Some(RawEntry { log, stream, time: std::borrow::Cow::Borrowed(time) })
}

/// Decodes the body of a JSON string (without its quotes).
fn unescape(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let byte = text[i];
        if byte != b'\\' {
            out.push(byte);
            i += 1;
            continue;
        }
        let code = *text.get(i + 1)?;
        i += 2;
        match code {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'"' => out.push(b'"'),
            b'\\' => out.push(b'\\'),
            b'/' => out.push(b'/'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'u' => {
                let mut unit = hex4(text.get(i..i + 4)?)?;
                i += 4;
                if (0xD800..0xDC00).contains(&unit) && text.get(i..i + 2) == Some(b"\\u") {
                    let low = hex4(text.get(i + 2..i + 6)?)?;
                    i += 6;
                    unit = 0x10000 + ((unit - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF);
                }
                let ch = char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER);
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => return None,
        }
    }
    Some(out)
}

fn hex4(digits: &[u8]) -> Option<u32> {
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// Lists the log files of a container, oldest first: `log.N`, …, `log.1`, `log`.
pub fn files_oldest_first(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut n = 1;
    while rotated_path(path, n).exists() {
        files.push(rotated_path(path, n));
        n += 1;
    }
    files.reverse();
    files.push(path.to_path_buf());
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_entries(path: &Path) -> Vec<(String, String)> {
        std::fs::read(path)
            .unwrap()
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let e = parse_line(l).unwrap();
                (e.stream.to_string(), e.log.to_string())
            })
            .collect()
    }

    #[test]
    fn writer_splits_lines_and_joins_partials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut writer = LogWriter::open(&path, 0, 1).unwrap();
        let now = Utc::now();
        writer.write(Stream::Stdout, b"one\ntw", now).unwrap();
        writer.write(Stream::Stderr, b"err \"quoted\"\n", now).unwrap();
        writer.write(Stream::Stdout, b"o\nend", now).unwrap();
        writer.finish(now).unwrap();
        assert_eq!(
            read_entries(&path),
            vec![
                ("stdout".into(), "one\n".into()),
                ("stderr".into(), "err \"quoted\"\n".into()),
                ("stdout".into(), "two\n".into()),
                ("stdout".into(), "end".into()),
            ]
        );
    }

    #[test]
    fn writer_rotates_at_max_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut writer = LogWriter::open(&path, 200, 3).unwrap();
        let now = Utc::now();
        for i in 0..20 {
            writer.write(Stream::Stdout, format!("line {i}\n").as_bytes(), now).unwrap();
        }
        writer.finish(now).unwrap();
        let files = files_oldest_first(&path);
        assert_eq!(files.len(), 3);
        let last = read_entries(files.last().unwrap());
        assert_eq!(last.last().unwrap().1, "line 19\n");
    }

    #[test]
    fn fast_parser_agrees_with_serde() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut writer = LogWriter::open(&path, 0, 1).unwrap();
        let now = Utc::now();
        let samples: [&[u8]; 5] = [b"plain\n", b"tab\tquote\"back\\slash\n", b"\x01ctl\n", "\u{e9}t\u{e9} \u{1f600}\n".as_bytes(), b"no newline"];
        for sample in samples {
            writer.write(Stream::Stderr, sample, now).unwrap();
        }
        writer.finish(now).unwrap();
        let text = std::fs::read(&path).unwrap();
        let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), samples.len());
        for (line, sample) in lines.iter().zip(samples) {
            let fast = parse_fast(line).expect("fast path takes our own layout");
            assert_eq!(&fast.log[..], sample);
            assert_eq!(fast.stream, Stream::Stderr);
            let slow = parse_line(line).unwrap();
            assert_eq!(fast.log.as_ref(), slow.log.as_bytes());
            assert_eq!(fast.time, slow.time);
        }
    }

    #[test]
    fn other_key_orders_fall_back_to_serde() {
        let line = br#"{"stream":"stdout","log":"hi\n","time":"2024-01-01T00:00:00.000000000Z"}"#;
        let entry = parse_raw(line).unwrap();
        assert_eq!(&entry.log[..], b"hi\n");
        assert_eq!(entry.stream, Stream::Stdout);
        assert!(parse_raw(b"not json").is_none());
    }

    #[test]
    fn time_has_nine_fraction_digits() {
        let t = DateTime::parse_from_rfc3339("2024-05-01T10:00:00.5Z").unwrap().with_timezone(&Utc);
        assert_eq!(format_time(t), "2024-05-01T10:00:00.500000000Z");
    }
}
