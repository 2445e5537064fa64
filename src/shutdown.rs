//! Signals -> the root [`CancellationToken`].
//!
//! - SIGTERM (service managers, `kill`): graceful stop — stop accepting, let in-flight
//!   requests finish for up to `timeouts.shutdown_grace`, flush the ledger, exit 0.
//! - SIGINT (Ctrl-C in a terminal): the same graceful stop; a second SIGINT or SIGTERM
//!   during the drain exits at once.

use tokio_util::sync::CancellationToken;

/// Wait for the first SIGTERM or SIGINT.
pub async fn signal() {
    imp::signal().await;
}

/// Cancel `token` on the first signal; exit the process (status 130) on the second.
pub fn spawn(token: CancellationToken) {
    tokio::spawn(async move {
        signal().await;
        tracing::info!("shutting down: draining connections");
        token.cancel();
        signal().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
}

#[cfg(unix)]
mod imp {
    use tokio::signal::unix::{self as unix, SignalKind};

    pub(super) async fn signal() {
        let (Ok(mut term), Ok(mut int)) = (
            unix::signal(SignalKind::terminate()),
            unix::signal(SignalKind::interrupt()),
        ) else {
            // Without signal handlers there is nothing to wait for; never resolve.
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}

#[cfg(not(unix))]
mod imp {
    pub(super) async fn signal() {
        let _ = tokio::signal::ctrl_c().await;
    }
}
