//! Tar streams and file-system comparisons of container root filesystems: `export`,
//! `changes`, the `docker cp` endpoints (`copy`, `extract`), and the shared pieces that bridge
//! blocking tar code to an HTTP body.

pub mod changes;
pub mod copy;
pub mod export;
pub mod extract;
pub mod resolve;
pub mod tar_writer;

use std::io::{self, Read, Write};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Size of the chunks sent to an HTTP body.
const CHUNK: usize = 64 * 1024;

/// A `Write` that hands 64 KiB chunks to an async receiver; for blocking tar code that feeds
/// a streamed response. A write fails once the receiver (the client) has gone.
pub struct ChannelWriter {
    sender: mpsc::Sender<Bytes>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    pub fn new(sender: mpsc::Sender<Bytes>) -> Self {
        ChannelWriter { sender, buffer: Vec::with_capacity(CHUNK) }
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK)));
        self.sender.blocking_send(chunk).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.send_buffer()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send_buffer();
    }
}

/// A `Read` over chunks from an async sender, for blocking tar code that consumes a streamed
/// request body. An error chunk fails the read, and a closed channel is the end of the file.
pub struct ChannelReader {
    receiver: mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
}

impl ChannelReader {
    pub fn new(receiver: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        ChannelReader { receiver, chunk: Bytes::new() }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.receiver.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => self.chunk = chunk?,
            }
        }
        let length = buffer.len().min(self.chunk.len());
        buffer[..length].copy_from_slice(&self.chunk.split_to(length));
        Ok(length)
    }
}

/// Reads a small regular file of a container, such as /etc/passwd, resolving the path inside
/// `root` so that a symbolic link or device node planted by the container is never followed
/// onto the host or opened. Returns an empty string when the file is missing or not regular;
/// reads at most 1 MiB.
pub fn read_container_file(root: &std::path::Path, path: &str) -> String {
    use std::io::Read;
    use std::os::fd::AsFd;
    let Ok(root_fd) = resolve::open_host_path(root) else { return String::new() };
    let Ok(file) = resolve::open_regular_in_root(root_fd.as_fd(), path.as_bytes()) else { return String::new() };
    let mut text = String::new();
    let _ = file.take(1 << 20).read_to_string(&mut text);
    text
}
