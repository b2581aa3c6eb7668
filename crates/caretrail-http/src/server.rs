//! The server's accept loop: HTTP/1.1 connections on hyper with limits that a client cannot
//! argue with.
//!
//! `axum::serve` keeps a connection as long as the client likes: 18,000 idle sockets once
//! exhausted the process's file descriptors. Here every connection is served by hyper's HTTP/1
//! connection directly, with
//!
//! - a **header-read timeout** ([`ConnectionLimits::header_read_timeout`]): a client has this
//!   long to send a request's headers, counted from when the connection opens or its previous
//!   response ends, so it closes both idle keep-alive connections and slow-header
//!   ("slowloris") clients;
//! - an **idle timeout** ([`ConnectionLimits::idle_timeout`]): a connection on which no byte
//!   moves either way for this long is closed whatever it is doing (a client that stopped
//!   reading a response or stopped sending a body). A healthy event stream is never idle: its
//!   heartbeat writes every few seconds;
//! - a **connection cap** ([`ConnectionLimits::max_connections`], lowered to fit the process's
//!   open-file limit): beyond it the server stops accepting, and new connections wait in the
//!   listen backlog until one closes, instead of failing `accept` for everyone.
//!
//! Each request carries the peer's address as `ConnectInfo<SocketAddr>` (the per-address limit
//! of unauthenticated requests needs it). Shutdown stops accepting, tells each connection to
//! finish its request in flight and close, ends live streams (through the state's shutdown
//! channel), and waits for every connection to close.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

/// What one client may hold of the server.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// How long a client has to send a request's headers, from when the connection opens or
    /// its previous response ends (so also how long an idle keep-alive connection stays).
    pub header_read_timeout: Duration,
    /// A connection on which no byte moves either way for this long is closed. Must be longer
    /// than the event streams' heartbeat interval.
    pub idle_timeout: Duration,
    /// At most this many connections at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            // Long enough for a slow mobile link to send a few hundred bytes of headers, short
            // enough that an idle connection costs little.
            header_read_timeout: Duration::from_secs(10),
            // Four SSE heartbeats (15 s): only a stalled peer reaches it.
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

/// File descriptors kept for everything but client connections: database pools, the SQLite
/// files and their journals, the listener, logs.
const RESERVED_FDS: usize = 256;

/// The soft open-file limit of this process, when the OS tells it (Linux `/proc`).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The most connections one server counts (a bound for its semaphore, far above any limit).
const MAX_CAP: usize = 1 << 20;

/// `wanted` connections, or fewer if the open-file limit would run out first.
fn connection_cap(wanted: usize) -> usize {
    let wanted = wanted.clamp(1, MAX_CAP);
    match open_file_limit() {
        Some(limit) if limit.saturating_sub(RESERVED_FDS) < wanted => {
            let cap = limit.saturating_sub(RESERVED_FDS).max(1);
            tracing::warn!(
                wanted,
                cap,
                open_file_limit = limit,
                "the connection cap is lowered to fit the open-file limit (raise it with ulimit -n)"
            );
            cap
        }
        _ => wanted,
    }
}

/// A bound, running server.
pub struct Server {
    listener: TcpListener,
    router: Router,
    shutdown: watch::Sender<bool>,
    limits: ConnectionLimits,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) for `router` with the default limits;
    /// `shutdown` is the sender whose receiver the state holds.
    pub async fn bind(
        addr: SocketAddr,
        router: Router,
        shutdown: watch::Sender<bool>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
            router,
            shutdown,
            limits: ConnectionLimits::default(),
        })
    }

    /// A server on a listener already bound (so its address can be known, and announced,
    /// before the router is built), with the default limits.
    pub fn from_listener(
        listener: TcpListener,
        router: Router,
        shutdown: watch::Sender<bool>,
    ) -> Self {
        Self {
            listener,
            router,
            shutdown,
            limits: ConnectionLimits::default(),
        }
    }

    /// Serves with `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` resolves, then stops accepting, ends live streams and waits for
    /// in-flight requests.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Server {
            listener,
            router,
            shutdown,
            limits,
        } = self;
        let cap = connection_cap(limits.max_connections);
        let slots = Arc::new(Semaphore::new(cap));
        let mut stop = std::pin::pin!(stop);
        loop {
            // A free slot first, then a connection: at the cap, connections wait in the
            // backlog rather than being accepted and starved.
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
                () = &mut stop => break,
            };
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_failed(&e).await;
                        continue;
                    }
                },
                () = &mut stop => break,
            };
            // Event streams deliver single small frames: do not hold them back.
            let _ = tcp.set_nodelay(true);
            let router = router.clone();
            let limits = limits.clone();
            let closing = shutdown.subscribe();
            tokio::spawn(async move {
                serve_connection(tcp, peer, router, &limits, closing).await;
                drop(slot);
            });
        }
        drop(listener);
        tracing::info!("shutting down: finishing in-flight requests, closing streams");
        let _ = shutdown.send(true);
        // Every connection holds a slot until it has closed.
        let all = u32::try_from(cap).unwrap_or(u32::MAX); // MAX_CAP fits
        let _ = slots.acquire_many(all).await;
        Ok(())
    }
}

/// What to do when `accept` fails: a connection that died in the backlog is someone else's
/// problem; anything else (out of file descriptors) is logged and waited out, as
/// `axum::serve` does, so the loop does not spin.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Serves one connection until it closes, the idle timeout ends it, or the server shuts down.
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: &ConnectionLimits,
    mut closing: watch::Receiver<bool>,
) {
    let activity = Activity::new();
    let io = TokioIo::new(Tracked {
        inner: tcp,
        activity: activity.clone(),
    });
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        async move { tower_service::Service::call(&mut router, req).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut draining = false;
    loop {
        let idle_until = activity.last() + limits.idle_timeout;
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    // Timeouts, resets and malformed requests: routine on the open internet.
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = closing.wait_for(|stop| *stop), if !draining => {
                // Finish the request in flight (streams end on the same signal), then close.
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
            () = tokio::time::sleep_until(idle_until) => {
                if activity.last().elapsed() >= limits.idle_timeout {
                    tracing::debug!("closing a connection on which nothing moved");
                    return;
                }
            }
        }
    }
}

/// When a byte last moved on a connection, shared by the connection and its watchdog.
#[derive(Clone)]
struct Activity {
    origin: Instant,
    /// Milliseconds after `origin`.
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A TCP stream that records when bytes move.
struct Tracked {
    inner: TcpStream,
    activity: Activity,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_never_exceeds_the_open_file_limit() {
        let cap = connection_cap(usize::MAX);
        match open_file_limit() {
            Some(limit) => {
                assert_eq!(cap, limit.saturating_sub(RESERVED_FDS).clamp(1, MAX_CAP))
            }
            None => assert_eq!(cap, MAX_CAP),
        }
        assert_eq!(connection_cap(1), 1);
        assert_eq!(connection_cap(0), 1);
    }
}
