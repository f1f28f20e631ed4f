//! The HTTP/1.1 accept loop: one hyper connection per accepted socket, with a time limit on every
//! request head, WebSocket upgrades, and a graceful stop that no idle connection can hold up.
//!
//! Why not `axum::serve`: it gives hyper no timer, so hyper's `header_read_timeout` is off and a
//! connection that never sends a request stays open forever (2,000 silent connections and a
//! slowloris handshake held a node's file descriptors, and delayed its SIGTERM, without limit).
//! hyper's own HTTP/1 builder does the work here: with a timer, its header-read timeout runs from
//! the accept, and again from the end of each response on a keep-alive connection.

use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long a stopping server waits for requests in flight before it drops their connections.
/// Idle connections close at once; a request that is still being answered (a REST call, an SSE
/// stream told to end) needs milliseconds.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// What a connection task is told.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Finish the request in flight, then close; close at once if idle.
    Draining,
    /// Close now.
    Dropping,
}

/// Connections the kernel queues for `accept`. tokio's (and std's) `bind` asks for 128 only: a
/// burst of reconnecting clients (a node restart, a network blip) overflows that, and each
/// dropped SYN costs its client a one-second retransmission. The kernel caps it at
/// `net.core.somaxconn`.
const ACCEPT_BACKLOG: u32 = 4096;

/// Binds the listening socket (`SO_REUSEADDR`, so a restarted node can bind while old
/// connections linger in TIME_WAIT).
pub fn bind(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Serves `service` on `listener` until `shutdown` resolves, then stops accepting, closes idle
/// connections, lets requests in flight finish for up to [`DRAIN_TIMEOUT`], and returns.
/// Upgraded connections (WebSockets) leave hyper at the upgrade; their sessions stop on their own.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) where
    S: tower::Service<hyper::Request<Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let (phase, phases) = watch::channel(Phase::Serving);
    // Every connection task holds a clone of `open`; `closed()` resolves when the last is gone.
    let (open, connections) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Nagle's algorithm would hold a frame back until the client acknowledges the previous
        // one, which a delayed ACK can put off by 40 ms: presence frames go out at once instead.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
        let connection = http
            .serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(service.clone()),
            )
            .with_upgrades();
        let mut phases = phases.clone();
        let held = connections.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            loop {
                tokio::select! {
                    served = connection.as_mut() => {
                        // Header timeouts and clients that went away end here: not the
                        // server's errors.
                        if let Err(e) = served {
                            tracing::debug!(error = %e, "HTTP connection ended");
                        }
                        break;
                    }
                    changed = phases.changed() => {
                        let now = *phases.borrow_and_update();
                        if changed.is_err() || now == Phase::Dropping {
                            break;
                        }
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(held);
        });
    }
    drop(listener);
    let _ = phase.send(Phase::Draining);
    drop(connections);
    if tokio::time::timeout(DRAIN_TIMEOUT, open.closed())
        .await
        .is_err()
    {
        tracing::info!("dropping HTTP connections still busy after the drain timeout");
        let _ = phase.send(Phase::Dropping);
        let _ = tokio::time::timeout(Duration::from_secs(1), open.closed()).await;
    }
}

/// A failed accept. Per-connection failures are skipped at once; anything else (out of file
/// descriptors, above all) leaves the waiting connection queued, so the loop pauses instead of
/// spinning on it.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    metrics::counter!("http_accept_errors_total").increment(1);
    tracing::error!(error = %e, "accept error; pausing accepts for 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
