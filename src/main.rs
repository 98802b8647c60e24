//! berth: a daemon that serves the Docker Engine API and runs containers with runc.
//! This file only wires things up: flags, logging, then the daemon or a monitor.

#![deny(unsafe_op_in_unsafe_fn)]
#![recursion_limit = "256"]

mod api;
mod archive;
mod config;
mod engine;
mod error;
mod image;
mod monitor;
mod runtime;
mod store;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use tokio::net::{TcpListener, UnixListener};

use config::{Cli, Command, DaemonSettings};

fn main() {
    let cli = Cli::parse();
    if let Some(Command::Monitor { config, .. }) = cli.command {
        // The monitor forks, so it must run before any runtime or thread exists.
        monitor::main(config.as_deref());
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.daemon.log_level).unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("building the tokio runtime");
    if let Err(message) = runtime.block_on(run_daemon(cli.daemon)) {
        tracing::error!("{message}");
        std::process::exit(1);
    }
}

enum Listen {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

/// Parses a `--host` value. A TCP address must be on loopback: berth has no TLS yet, and an
/// unauthenticated Docker API on a network gives root to anyone who can reach it.
fn parse_listen(address: &str) -> Result<Listen, String> {
    if let Some(path) = address.strip_prefix("unix://") {
        return Ok(Listen::Unix(PathBuf::from(path)));
    }
    if let Some(rest) = address.strip_prefix("tcp://") {
        let rest = rest.replace("localhost", "127.0.0.1");
        let socket: SocketAddr = rest.parse().map_err(|_| format!("invalid TCP address {address}: expected tcp://HOST:PORT"))?;
        if !socket.ip().is_loopback() {
            return Err(format!(
                "refusing to listen on {address}: berth has no TLS yet, and an unauthenticated Docker API on a network gives root to anyone who reaches it; listen on 127.0.0.1 or a unix socket"
            ));
        }
        return Ok(Listen::Tcp(socket));
    }
    Err(format!("invalid listen address {address}: expected unix:///path or tcp://127.0.0.1:PORT"))
}

async fn run_daemon(settings: DaemonSettings) -> Result<(), String> {
    let listens = settings.listen_addresses().iter().map(|a| parse_listen(a)).collect::<Result<Vec<_>, _>>()?;
    let engine = engine::Engine::new(&settings).map_err(|e| format!("starting: {e}"))?;
    engine.restore().await.map_err(|e| format!("restoring containers: {e}"))?;
    let router = api::router(engine.clone());

    for listen in listens {
        let router = router.clone();
        match listen {
            Listen::Unix(path) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
                }
                let _ = std::fs::remove_file(&path);
                let listener = UnixListener::bind(&path).map_err(|e| format!("listening on {}: {e}", path.display()))?;
                tracing::info!(address = %path.display(), "listening");
                tokio::spawn(async move {
                    loop {
                        match listener.accept().await {
                            Ok((stream, _)) => api::serve_connection(router.clone(), stream),
                            Err(err) => tracing::warn!(error = %err, "accept failed"),
                        }
                    }
                });
            }
            Listen::Tcp(address) => {
                let listener = TcpListener::bind(address).await.map_err(|e| format!("listening on {address}: {e}"))?;
                tracing::info!(%address, "listening");
                tokio::spawn(async move {
                    loop {
                        match listener.accept().await {
                            Ok((stream, _)) => {
                                let _ = stream.set_nodelay(true);
                                api::serve_connection(router.clone(), stream)
                            }
                            Err(err) => tracing::warn!(error = %err, "accept failed"),
                        }
                    }
                });
            }
        }
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    // Containers keep running under their monitors; a restarted daemon reconnects to them.
    tracing::info!("shutting down; containers keep running");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_tcp_is_refused() {
        assert!(matches!(parse_listen("tcp://127.0.0.1:2376"), Ok(Listen::Tcp(_))));
        assert!(matches!(parse_listen("tcp://localhost:2376"), Ok(Listen::Tcp(_))));
        assert!(matches!(parse_listen("unix:///run/x.sock"), Ok(Listen::Unix(_))));
        let err = parse_listen("tcp://0.0.0.0:2376").err().unwrap();
        assert!(err.contains("refusing to listen"), "{err}");
        assert!(parse_listen("http://x").is_err());
    }
}
