//! Hardening #9: what one client may hold of the server. 18,000 idle sockets once exhausted
//! the file descriptors, and a flood of requests without a token wrote 104,107 WARN lines in
//! 3 s. These tests drive `caretrail_http::Server` with raw TCP connections (the limits are
//! about connections, not about the API, so most use a two-route router and no database).

// A test that unwraps fails with the error, which is what a test should do; the lint is for
// the service's own code.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use caretrail_http::{ConnectionLimits, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server with `limits` for `GET /` and `POST /echo` (which reads its whole body).
async fn serve(limits: ConnectionLimits) -> SocketAddr {
    let router = Router::new().route("/", get(|| async { "ok" })).route(
        "/echo",
        post(|body: axum::body::Bytes| async move { body.len().to_string() }),
    );
    let (stop, _) = tokio::sync::watch::channel(false);
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), router, stop)
        .await
        .unwrap()
        .with_limits(limits);
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run_until(std::future::pending()));
    addr
}

fn limits(header_read: u64, idle: u64, max: usize) -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Duration::from_millis(header_read),
        idle_timeout: Duration::from_millis(idle),
        max_connections: max,
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

/// Reads from `c` until the server closes it (or `limit` passes): what was read, and when the
/// close came.
async fn until_closed(c: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), c.read(&mut buf)).await {
            Err(_) => return (got, None),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, Some(started.elapsed())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one response (headers and the two-byte body "ok") from `c`, within `limit`.
async fn one_response(c: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        while !String::from_utf8_lossy(&got).ends_with("\r\n\r\nok") {
            let n = c.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            got.extend_from_slice(&buf[..n]);
        }
        Some(String::from_utf8_lossy(&got).into_owned())
    })
    .await
    .ok()
    .flatten()
}

/// Hardening #9: a connection that never sends a request is closed after the header-read
/// timeout, and so is a keep-alive connection after its response, and a client that sends
/// its headers too slowly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_header_connections_are_closed_after_the_header_read_timeout() {
    let timeout = Duration::from_millis(400);
    let addr = serve(limits(400, 60_000, 100)).await;
    let slack = Duration::from_millis(1500);

    let mut silent = TcpStream::connect(addr).await.unwrap();
    let (_, closed) = until_closed(&mut silent, timeout + slack).await;
    let closed = closed.expect("a silent connection is closed");
    assert!(closed >= timeout - Duration::from_millis(50), "{closed:?}");

    let mut keep_alive = TcpStream::connect(addr).await.unwrap();
    keep_alive.write_all(GET).await.unwrap();
    assert!(one_response(&mut keep_alive, slack).await.is_some());
    let (_, closed) = until_closed(&mut keep_alive, timeout + slack).await;
    assert!(closed.is_some(), "an idle keep-alive connection is closed");

    // A slow-header client: a byte every 100 ms never completes its headers in time.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut closed = None;
    for byte in GET.iter().cycle().take(100) {
        if slow.write_all(&[*byte]).await.is_err() {
            closed = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 256];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(100), slow.read(&mut buf)).await
        {
            closed = Some(started.elapsed());
            break;
        }
    }
    let closed = closed.expect("a slow-header connection is closed");
    assert!(closed < timeout + slack, "{closed:?}");
}

/// Hardening #9: a connection on which nothing moves mid-request (a body promised and never
/// sent) is closed after the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_on_which_nothing_moves_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(500);
    let addr = serve(limits(60_000, 500, 100)).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let (_, closed) = until_closed(&mut c, idle + Duration::from_millis(1500)).await;
    let closed = closed.expect("a stalled request's connection is closed");
    assert!(closed >= idle - Duration::from_millis(50), "{closed:?}");
    // A connection that keeps moving is left alone past the idle timeout.
    let mut busy = TcpStream::connect(addr).await.unwrap();
    for _ in 0..4 {
        busy.write_all(GET).await.unwrap();
        assert!(
            one_response(&mut busy, Duration::from_secs(2))
                .await
                .is_some()
        );
        tokio::time::sleep(idle / 2).await;
    }
}

/// Hardening #9: beyond the connection cap, a new connection is not served until one of the
/// others closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_connection_cap_a_connection_waits_for_a_free_slot() {
    let addr = serve(limits(60_000, 60_000, 2)).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    let second = TcpStream::connect(addr).await.unwrap();
    // Both are served (so both hold a slot).
    first.write_all(GET).await.unwrap();
    assert!(
        one_response(&mut first, Duration::from_secs(2))
            .await
            .is_some()
    );
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(GET).await.unwrap();
    assert!(
        one_response(&mut third, Duration::from_millis(700))
            .await
            .is_none(),
        "served beyond the cap"
    );
    drop(second);
    let answer = one_response(&mut third, Duration::from_secs(3))
        .await
        .expect("served once a slot is free");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Collects formatted log lines.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hardening #9: 104,107 WARN lines in 3 s: every 401 was logged. Now a flood of requests
/// with bad tokens is counted in /metrics and summed up in at most one line per interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_tokens_is_counted_not_logged_line_by_line() {
    let lines = Lines::default();
    let writer = lines.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let Some(h) = caretrail_store::testing::sqlite().await else {
        return;
    };
    let master = caretrail_app::MasterKey::generate().unwrap();
    let service = caretrail_http::testing::demo_service(&h, master, |state| {
        // This test is about the log, not the limit.
        state.anonymous = Arc::new(caretrail_http::RateLimiter::new(100_000, 100_000));
    })
    .await;
    let client = reqwest::Client::new();
    for i in 0..200 {
        let res = client
            .get(format!("{}/api/v1/events", service.base))
            .bearer_auth(format!("ctk_guess{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::UNAUTHORIZED);
    }
    let log = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let warnings = log.lines().filter(|l| l.contains("WARN")).count();
    assert!(warnings <= 1, "{warnings} WARN lines:\n{log}");
    let admin = service
        .tokens
        .create(caretrail_http::Role::Admin, None, "ops")
        .await
        .unwrap()
        .1;
    let metrics = client
        .get(format!("{}/metrics", service.base))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("caretrail_http_unauthenticated_total 200"),
        "{metrics}"
    );
}
