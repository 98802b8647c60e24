//! The per-container monitor: a mode of the berth binary (`berth monitor CONFIG`) that owns a
//! container's stdio for its whole life, so output, logs and the exit code survive a daemon
//! crash or restart.
//!
//! It forks away from the daemon, becomes a child subreaper, binds its socket, reports `ready`
//! on its stdout (the daemon's sync pipe), and waits for a START frame. It then runs
//! `runc run` in the foreground: one runc process creates, starts, waits for and deletes the
//! container. The monitor writes every output byte to the json-file log and to subscribed
//! clients, reaps runc, writes the exit file atomically, unmounts the rootfs and sends its
//! clients the exit notice. It uses threads and blocking I/O only; it must not start an async runtime.

pub mod protocol;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::runtime::Runc;
use crate::store::logs::{LogWriter, Stream};
use protocol::{from_monitor, to_monitor, ExitRecord, StartFailed, Started, Subscription};

/// Settings of one monitor, written by the daemon to `monitor.json` beside the exit file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorConfig {
    pub container_id: String,
    /// The bundle of a container; for an exec, the directory for its pid file and runc log.
    pub bundle: PathBuf,
    /// For an exec: the OCI process file to run with `runc exec` in the running container.
    #[serde(default)]
    pub exec_process: Option<PathBuf>,
    pub runc_binary: PathBuf,
    pub runc_root: PathBuf,
    pub socket: PathBuf,
    /// The json-file log; None for an exec, whose output Docker does not log.
    pub log_path: Option<PathBuf>,
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub exit_path: PathBuf,
    pub open_stdin: bool,
    /// The overlay mount to detach after the process has exited, if any.
    pub rootfs_mount: Option<PathBuf>,
}

impl MonitorConfig {
    pub fn pid_file(&self) -> PathBuf {
        self.bundle.join("init.pid")
    }
    pub fn runc_log(&self) -> PathBuf {
        self.bundle.join("runc.log")
    }
}

/// One client connection that receives output and notices.
struct Subscriber {
    stream: UnixStream,
    subscription: Subscription,
}

struct Shared {
    log: Mutex<Option<LogWriter>>,
    subscribers: Mutex<Vec<Subscriber>>,
    stdin: Mutex<Option<File>>,
}

impl Shared {
    /// Sends a frame to every subscriber that wants it, dropping those that fail.
    fn broadcast(&self, kind: u8, payload: &[u8], wanted: impl Fn(&Subscription) -> bool) {
        let frame = protocol::encode(kind, payload);
        let mut subscribers = self.subscribers.lock().unwrap();
        subscribers.retain_mut(|s| !wanted(&s.subscription) || s.stream.write_all(&frame).is_ok());
    }
}

/// Entry point of `berth monitor [CONFIG]`. Called before any async runtime exists. Without a
/// config path the monitor is a spare: it forks away at once and then reads the path of its
/// config from stdin, so a container start does not wait for a process to be executed.
pub fn main(config_path: Option<&Path>) -> ! {
    let code = match run(config_path) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("berth monitor: {message}");
            1
        }
    };
    std::process::exit(code)
}

fn run(config_path: Option<&Path>) -> Result<(), String> {
    // SAFETY: the process is single-threaded here (no runtime, no threads yet), so fork is sound.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        nix::unistd::ForkResult::Parent { .. } => std::process::exit(0),
        nix::unistd::ForkResult::Child => {}
    }
    let config_path = match config_path {
        Some(path) => path.to_path_buf(),
        None => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map_err(|e| format!("reading config path: {e}"))?;
            if line.trim().is_empty() {
                // The daemon closed our stdin without using us.
                std::process::exit(0);
            }
            PathBuf::from(line.trim())
        }
    };
    let text = std::fs::read(&config_path).map_err(|e| format!("reading {}: {e}", config_path.display()))?;
    let config: MonitorConfig = serde_json::from_slice(&text).map_err(|e| format!("parsing monitor config: {e}"))?;
    // The pid lets an operator (and the tests) find the monitor of a container.
    let _ = std::fs::write(config.exit_path.with_file_name("monitor.pid"), std::process::id().to_string());
    // Orphans of the container (runc's helpers, exec'd processes) come to us, not to pid 1.
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| format!("set subreaper: {e}"))?;

    let (stdout_read, stdout_write) = pipe_cloexec().map_err(|e| format!("pipe: {e}"))?;
    let (stderr_read, stderr_write) = pipe_cloexec().map_err(|e| format!("pipe: {e}"))?;
    let (stdin_child, stdin_ours): (Stdio, Option<File>) = if config.open_stdin {
        let (read, write) = pipe_cloexec().map_err(|e| format!("pipe: {e}"))?;
        (Stdio::from(read), Some(File::from(write)))
    } else {
        (Stdio::null(), None)
    };

    let _ = std::fs::remove_file(&config.socket);
    let listener = UnixListener::bind(&config.socket).map_err(|e| format!("binding {}: {e}", config.socket.display()))?;
    let log = match &config.log_path {
        Some(path) => Some(
            LogWriter::open(path, config.log_max_size, config.log_max_files)
                .map_err(|e| format!("opening log {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let shared = Arc::new(Shared {
        log: Mutex::new(log),
        subscribers: Mutex::new(Vec::new()),
        stdin: Mutex::new(stdin_ours),
    });

    // Tell the daemon we are ready, then let go of its pipe and of the terminal-less stdio.
    println!("ready");
    let _ = std::io::stdout().flush();
    redirect_stdio(&config);

    let (start_sender, start_receiver) = mpsc::channel::<()>();
    {
        let shared = shared.clone();
        std::thread::spawn(move || accept_loop(listener, shared, start_sender));
    }
    if start_receiver.recv_timeout(Duration::from_secs(60)).is_err() {
        return Err("no start request within 60 s".into());
    }

    let readers = [
        spawn_reader(stdout_read, Stream::Stdout, shared.clone()),
        spawn_reader(stderr_read, Stream::Stderr, shared.clone()),
    ];
    let runc = Runc { binary: config.runc_binary.clone(), root: config.runc_root.clone() };
    let pid_file = config.pid_file();
    let _ = std::fs::remove_file(&pid_file);
    let mut command = match &config.exec_process {
        Some(process) => runc.std_command(&config.runc_log(), "exec", &Runc::exec_args(process, &pid_file, &config.container_id)),
        None => runc.std_command(&config.runc_log(), "run", &Runc::run_args(&config.bundle, &pid_file, None, &config.container_id)),
    };
    command.stdin(stdin_child).stdout(Stdio::from(stdout_write)).stderr(Stdio::from(stderr_write));
    let outcome = match command.spawn() {
        Ok(child) => supervise(child, &config, &shared),
        Err(err) => Outcome::NotStarted(format!("failed to run {}: {err}", config.runc_binary.display())),
    };
    // The command held the only other copies of the write ends; they are closed now.
    drop(command);
    for reader in readers {
        let _ = reader.join();
    }
    let now = Utc::now();
    if let Some(log) = shared.log.lock().unwrap().as_mut() {
        let _ = log.finish(now);
    }

    let record = match outcome {
        Outcome::Exited(exit_code) => ExitRecord {
            exit_code,
            finished_at: crate::store::logs::format_time(now),
            oom_killed: false,
            start_error: None,
        },
        Outcome::NotStarted(message) => {
            let payload = serde_json::to_vec(&StartFailed { message: message.clone() }).unwrap_or_default();
            shared.broadcast(from_monitor::START_FAILED, &payload, |_| true);
            ExitRecord {
                exit_code: crate::runtime::classify(&message).1,
                finished_at: crate::store::logs::format_time(now),
                oom_killed: false,
                start_error: Some(message),
            }
        }
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
    if let Err(err) = crate::store::write_atomic(&config.exit_path, &bytes) {
        eprintln!("berth monitor: writing exit file: {err}");
    }
    if let Some(mount) = &config.rootfs_mount {
        if let Err(err) = nix::mount::umount2(mount, nix::mount::MntFlags::MNT_DETACH) {
            eprintln!("berth monitor: unmounting {}: {err}", mount.display());
        }
    }
    let _ = std::fs::remove_file(&config.socket);
    shared.broadcast(from_monitor::EXITED, &bytes, |_| true);
    for subscriber in shared.subscribers.lock().unwrap().iter() {
        let _ = subscriber.stream.shutdown(std::net::Shutdown::Both);
    }
    Ok(())
}

enum Outcome {
    Exited(i64),
    NotStarted(String),
}

/// Waits for runc to write the pid file (reporting STARTED) and then for runc to exit.
fn supervise(child: std::process::Child, config: &MonitorConfig, shared: &Shared) -> Outcome {
    let runc_pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let pid_file = config.pid_file();
    let mut started = false;
    let status = loop {
        if !started {
            if let Some(pid) = read_pid(&pid_file) {
                started = true;
                let start_time = crate::runtime::signal::start_time(pid).unwrap_or(0);
                let payload = serde_json::to_vec(&Started { pid, start_time }).unwrap_or_default();
                shared.broadcast(from_monitor::STARTED, &payload, |_| true);
                continue;
            }
        }
        let flags = if started { None } else { Some(nix::sys::wait::WaitPidFlag::WNOHANG) };
        match nix::sys::wait::waitpid(runc_pid, flags) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) => std::thread::sleep(Duration::from_micros(500)),
            Ok(status @ (nix::sys::wait::WaitStatus::Exited(..) | nix::sys::wait::WaitStatus::Signaled(..))) => break status,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(err) => return Outcome::NotStarted(format!("waiting for runc: {err}")),
        }
    };
    reap_orphans();
    if !started {
        // runc may write the pid file and fail right after; a pid file means it ran.
        if read_pid(&pid_file).is_none() {
            let message = crate::runtime::last_error(&config.runc_log())
                .unwrap_or_else(|| format!("runc run failed: {status:?}"));
            return Outcome::NotStarted(message);
        }
    }
    match status {
        nix::sys::wait::WaitStatus::Exited(_, code) => Outcome::Exited(code as i64),
        nix::sys::wait::WaitStatus::Signaled(_, signal, _) => Outcome::Exited(128 + signal as i64),
        _ => Outcome::Exited(255),
    }
}

/// Creates a pipe whose ends are closed on exec. runc must receive only the ends that are
/// passed as its stdio: an inherited copy of the stdin write end would keep the process from
/// ever seeing the end of its input.
fn pipe_cloexec() -> nix::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Reaps any processes that were reparented to this subreaper and have exited.
fn reap_orphans() {
    while let Ok(status) = nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
        if status == nix::sys::wait::WaitStatus::StillAlive {
            break;
        }
    }
}

fn redirect_stdio(config: &MonitorConfig) {
    let log_path = config.exit_path.with_file_name("monitor.log");
    let null = File::open("/dev/null").ok();
    let errors = std::fs::OpenOptions::new().create(true).append(true).open(log_path).ok();
    if let Some(null) = &null {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 0);
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
    if let Some(errors) = &errors {
        let _ = nix::unistd::dup2(errors.as_raw_fd(), 2);
    }
}

fn spawn_reader(pipe: OwnedFd, stream: Stream, shared: Arc<Shared>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut file = File::from(pipe);
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let chunk = &buffer[..n];
            {
                if let Some(log) = shared.log.lock().unwrap().as_mut() {
                    if let Err(err) = log.write(stream, chunk, Utc::now()).and_then(|_| log.flush()) {
                        eprintln!("berth monitor: writing log: {err}");
                    }
                }
            }
            let kind = if stream == Stream::Stdout { from_monitor::STDOUT } else { from_monitor::STDERR };
            shared.broadcast(kind, chunk, |s| if stream == Stream::Stdout { s.stdout } else { s.stderr });
        }
    })
}

fn accept_loop(listener: UnixListener, shared: Arc<Shared>, start: mpsc::Sender<()>) {
    for connection in listener.incoming() {
        let Ok(connection) = connection else { continue };
        let shared = shared.clone();
        let start = start.clone();
        std::thread::spawn(move || serve_client(connection, shared, start));
    }
}

/// Handles one client's frames until it disconnects.
fn serve_client(mut connection: UnixStream, shared: Arc<Shared>, start: mpsc::Sender<()>) {
    // A client that stops reading must not stall the container's output for long.
    let _ = connection.set_write_timeout(Some(Duration::from_secs(30)));
    loop {
        let frame = match protocol::read_frame(&mut connection) {
            Ok(Some(frame)) => frame,
            _ => break,
        };
        match frame {
            (to_monitor::SUBSCRIBE, payload) => {
                let subscription: Subscription = serde_json::from_slice(&payload).unwrap_or_default();
                let Ok(writer) = connection.try_clone() else { break };
                let mut subscribers = shared.subscribers.lock().unwrap();
                let mut writer_for_ack = match writer.try_clone() {
                    Ok(w) => w,
                    Err(_) => break,
                };
                // Acknowledge under the lock, so the ack precedes any output frame.
                if protocol::write_frame(&mut writer_for_ack, from_monitor::SUBSCRIBED, b"").is_err() {
                    break;
                }
                subscribers.push(Subscriber { stream: writer, subscription });
            }
            (to_monitor::START, _) => {
                let _ = start.send(());
            }
            (to_monitor::STDIN, payload) => {
                let mut stdin = shared.stdin.lock().unwrap();
                if let Some(pipe) = stdin.as_mut() {
                    if pipe.write_all(&payload).is_err() {
                        *stdin = None;
                    }
                }
            }
            (to_monitor::CLOSE_STDIN, _) => {
                shared.stdin.lock().unwrap().take();
            }
            _ => {}
        }
    }
}
