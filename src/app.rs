//! Wiring: `Config` -> bound listeners and shared state -> running server.
//!
//! [`App::bind`] does everything that can fail at start-up (TLS material, object store,
//! ledger, binding every port) before serving anything, and exposes the bound addresses
//! (port 0 in tests). [`App::run`] serves until the token is cancelled, then drains.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::router::Router;
use crate::server::{self, Listener, Shared};
use crate::service::{Handler, State};
use crate::{ledger, proxy, storage, tls, upload, Config};

/// Open connections the admin listener accepts at once.
const ADMIN_CONNECTIONS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("tls set-up failed")]
    Tls(#[from] tls::Error),
    #[error("cannot listen on {addr} (server.{listener})")]
    Bind {
        listener: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("object store set-up failed")]
    Storage(#[from] storage::Error),
    #[error("ledger set-up failed")]
    Ledger(#[from] ledger::Error),
    #[error("upstream client set-up failed")]
    Proxy(#[source] crate::http::BoxError),
}

/// The addresses actually bound.
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub internal: Option<SocketAddr>,
}

/// A configured server with its ports bound, ready to run.
pub struct App {
    config: Arc<Config>,
    state: Arc<State>,
    tls: Arc<rustls::ServerConfig>,
    listeners: Vec<(TcpListener, &'static str)>,
    addrs: Addrs,
}

impl App {
    pub async fn bind(config: Config) -> Result<App, Error> {
        let config = Arc::new(config);
        let tls = tls::server_config(&config.tls)?;
        let proxy = proxy::Proxy::new(&config.timeouts).map_err(Error::Proxy)?;
        let upload = match &config.upload {
            Some(upload_config) => {
                let store = storage::Store::from_config(&config.storage, config.timeouts.storage)?;
                let ledger = ledger::Ledger::open(&config.ledger.path)?;
                Some(upload::Handler::new(
                    upload_config.clone(),
                    config.timeouts.upload_body,
                    config
                        .routes
                        .iter()
                        .filter_map(|r| r.host.clone())
                        .collect(),
                    store,
                    ledger,
                ))
            }
            None => None,
        };
        let state = Arc::new(State {
            config: Arc::clone(&config),
            router: Router::new(&config.routes),
            proxy,
            upload,
        });

        let mut listeners = Vec::new();
        let https = bind("https", config.server.https).await?;
        let addrs_https = local(&https, config.server.https);
        listeners.push((https, "https"));
        let optional = |name: &'static str, addr: Option<SocketAddr>| async move {
            match addr {
                Some(addr) => bind(name, addr).await.map(|l| Some((l, name))),
                None => Ok(None),
            }
        };
        let http = optional("http", config.server.http).await?;
        let admin = optional("admin", config.server.admin).await?;
        let internal = optional("internal", config.server.internal).await?;
        let addr_of = |l: &Option<(TcpListener, &'static str)>| {
            l.as_ref().and_then(|(l, _)| l.local_addr().ok())
        };
        let addrs = Addrs {
            https: addrs_https,
            http: addr_of(&http),
            admin: addr_of(&admin),
            internal: addr_of(&internal),
        };
        listeners.extend([http, admin, internal].into_iter().flatten());
        Ok(App {
            config,
            state,
            tls,
            listeners,
            addrs,
        })
    }

    pub fn local_addrs(&self) -> Addrs {
        self.addrs
    }

    /// Serve until `shutdown` is cancelled, then drain for up to `timeouts.shutdown_grace`.
    pub async fn run(self, shutdown: CancellationToken) {
        let shared = Arc::new(Shared::new(&self.config, shutdown.clone()));
        let mut loops = tokio::task::JoinSet::new();
        let public_slots = Arc::new(Semaphore::new(self.config.server.max_connections));
        for (tcp, name) in self.listeners {
            let handler = match name {
                "https" => Handler::Public(Arc::clone(&self.state)),
                "internal" => Handler::Internal(Arc::clone(&self.state)),
                "admin" => Handler::Admin(Arc::clone(&self.state)),
                _ => Handler::Redirect {
                    https_port: self.addrs.https.port(),
                },
            };
            let slots = match name {
                "https" | "internal" => Arc::clone(&public_slots),
                "admin" => Arc::new(Semaphore::new(ADMIN_CONNECTIONS)),
                _ => Arc::new(Semaphore::new(self.config.server.max_connections)),
            };
            let listener = Listener {
                name,
                tls: (name == "https").then(|| Arc::clone(&self.tls)),
                handler,
                slots,
            };
            if let Ok(addr) = tcp.local_addr() {
                tracing::info!(listener = name, %addr, "listening");
            }
            loops.spawn(server::accept_loop(tcp, listener, Arc::clone(&shared)));
        }
        shutdown.cancelled().await;
        while loops.join_next().await.is_some() {}
        shared.tracker.close();
        let grace = self.config.timeouts.shutdown_grace;
        if tokio::time::timeout(grace, shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = shared.tracker.len(),
                ?grace,
                "drain deadline passed; closing remaining connections"
            );
        }
        if let Some(upload) = &self.state.upload {
            if let Err(error) = upload.ledger().flush().await {
                tracing::error!(error = %crate::error_chain(&error), "ledger flush failed");
            }
        }
        tracing::info!("stopped");
    }
}

async fn bind(listener: &'static str, addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind {
        listener,
        addr,
        source,
    })
}

fn local(l: &TcpListener, fallback: SocketAddr) -> SocketAddr {
    l.local_addr().unwrap_or(fallback)
}
