//! One connection: TLS handshake (under a deadline), then HTTP/1.1 or h2 (hyper-util's
//! auto builder picks by ALPN or preface), until the peer leaves, the connection sits idle
//! past `timeouts.idle`, or shutdown asks it to finish its in-flight requests.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;

use super::{Listener, Shared};
use crate::service::{self, ConnInfo};

pub async fn serve(tcp: TcpStream, peer: SocketAddr, listener: Listener, shared: Arc<Shared>) {
    let Some(tls) = listener.tls.clone() else {
        let info = Arc::new(ConnInfo {
            peer,
            tls: false,
            sni: None,
            listener: listener.name,
        });
        serve_http(tcp, info, listener, shared).await;
        return;
    };
    let handshake = async {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
        let sni = start.client_hello().server_name().map(str::to_owned);
        let stream = start.into_stream(tls).await?;
        Ok::<_, std::io::Error>((stream, sni))
    };
    let (stream, sni) = match tokio::time::timeout(shared.tls_handshake, handshake).await {
        Ok(Ok(done)) => done,
        Ok(Err(error)) => {
            tracing::debug!(%peer, failure = "handshake", %error, "tls handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, failure = "timeout", "tls handshake timed out");
            return;
        }
    };
    let info = Arc::new(ConnInfo {
        peer,
        tls: true,
        sni,
        listener: listener.name,
    });
    serve_http(stream, info, listener, shared).await;
}

async fn serve_http<S>(stream: S, info: Arc<ConnInfo>, listener: Listener, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let handler = listener.handler.clone();
    let conn_info = Arc::clone(&info);
    let svc = hyper::service::service_fn(move |req| {
        let handler = handler.clone();
        let info = Arc::clone(&conn_info);
        async move { Ok::<_, std::convert::Infallible>(service::handle(handler, info, req).await) }
    });
    let conn = shared.http.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    let idle_check = (shared.idle / 4).max(Duration::from_millis(250));
    let mut ticker = tokio::time::interval(idle_check);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(peer = %info.peer, %error, "connection ended with an error");
                }
                return;
            }
            _ = shared.shutdown.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = ticker.tick(), if !draining => {
                if activity.idle_for() >= shared.idle {
                    tracing::debug!(peer = %info.peer, "closing idle connection");
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// When the connection last moved a byte.
struct Activity {
    epoch: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

/// An I/O stream that records activity, for the idle timeout. Needed because hyper's own
/// timers cover only h1 header reads, not an h2 connection that sits open doing nothing.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        poll
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
