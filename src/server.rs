//! Listeners and their accept loops.
//!
//! Each bound listener runs one accept loop: it takes a connection slot (its listener's
//! semaphore, so a full server stops accepting rather than failing accepted
//! connections), accepts, and spawns the connection onto the shared
//! [`TaskTracker`]. An accept error (EMFILE and friends) is logged and retried after a
//! short pause instead of ending the loop. On shutdown the loop stops accepting and drops
//! its listener; connections drain on their own (see [`conn`]).

pub mod conn;
pub mod plain;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::service::Handler;

/// What a listener serves.
#[derive(Clone)]
pub struct Listener {
    pub name: &'static str,
    /// `Some` for TLS listeners.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub handler: Handler,
    /// Connection slots. The https and internal listeners share `server.max_connections`;
    /// the redirect and admin listeners have their own, so a flood on port 80 can neither
    /// starve the site nor lock operators out of `/health`.
    pub slots: Arc<Semaphore>,
}

/// Shared per-connection settings, built once from the config.
pub struct Shared {
    pub http: hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    pub tls_handshake: Duration,
    pub idle: Duration,
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
}

impl Shared {
    pub fn new(config: &crate::Config, shutdown: CancellationToken) -> Shared {
        let mut http =
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        let max_header = config.server.max_header_size;
        http.http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(config.timeouts.header_read)
            .max_buf_size(max_header.max(8192))
            .keep_alive(true);
        http.http2()
            .timer(hyper_util::rt::TokioTimer::new())
            .max_concurrent_streams(256)
            .max_header_list_size(u32::try_from(max_header).unwrap_or(u32::MAX))
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(20));
        Shared {
            http,
            tls_handshake: config.timeouts.tls_handshake,
            idle: config.timeouts.idle,
            tracker: TaskTracker::new(),
            shutdown,
        }
    }
}

/// Accept connections on `tcp` until shutdown.
pub async fn accept_loop(tcp: TcpListener, listener: Listener, shared: Arc<Shared>) {
    let local: Option<SocketAddr> = tcp.local_addr().ok();
    loop {
        let permit = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            permit = Arc::clone(&listener.slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            accepted = tcp.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(listener = listener.name, %error, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let listener = listener.clone();
        let shared_conn = Arc::clone(&shared);
        shared.tracker.spawn(async move {
            conn::serve(stream, peer, listener, shared_conn).await;
            drop(permit);
        });
    }
    tracing::debug!(listener = listener.name, addr = ?local, "stopped accepting");
}
