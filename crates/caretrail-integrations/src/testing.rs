//! A real webhook receiver for tests (behind the `testing` feature).
//!
//! Tests of webhook delivery should fail when a real receiver would refuse what caretrail
//! sends, so this receiver is a real HTTP server on a loopback port that checks each delivery
//! the way an integration would: the signature with the Standard Webhooks library
//! (`standardwebhooks`), the body with the CloudEvents SDK. It is written independently of the
//! sending side, so a mistake in our signing or rendering cannot cancel itself out.
//!
//! A benchmark that measures the sender can start it with [`Receiver::start_recording`]: it
//! then answers 204 at once and keeps each request as it came, and the same checks run
//! afterwards ([`Receiver::verify_recorded`]), so the receivers' checking does not take the
//! cores the sender is being measured on.
//!
//! A test scripts its answers ([`Mode`]): accept, answer a status, hang, fail the next few,
//! redirect, or send a large or endless body; and it can stop the server (the port then refuses
//! connections) and restart it on the same port. Stopping closes every open connection too, so
//! a client's pooled keep-alive connection cannot reach a stopped receiver.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use cloudevents::AttributesReader as _;
use cloudevents::event::ExtensionValue;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// How the receiver answers the requests that pass the signature check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 204 No Content: the delivery is accepted and recorded.
    Ok,
    /// This status, with a short body; a 2xx status is recorded as a delivery.
    Status(u16),
    /// This status with this body; a 2xx status is recorded as a delivery.
    Respond(u16, String),
    /// Never answers (the connection stays open until the receiver stops).
    Hang,
    /// Answers 500 to the next `n` requests, then behaves as [`Mode::Ok`].
    FailNext(u32),
    /// 302 Found with this `location`.
    Redirect(String),
    /// 200 with a body of this many bytes (`x`); the delivery is recorded.
    LargeBody(usize),
    /// 200 with a body that never ends; the delivery is recorded.
    EndlessBody,
}

/// One delivery the receiver accepted.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The `webhook-id` header.
    pub webhook_id: String,
    /// The `position` extension attribute, parsed.
    pub position: u64,
    /// The caretrail event type from the CloudEvents `type` (`VisitRecorded` from
    /// `cn.caretrail.VisitRecorded.v2`); the whole type is `cloudevent.ty()`.
    pub event_type: String,
    /// The body as the CloudEvents SDK parsed it.
    pub cloudevent: cloudevents::Event,
    /// The request's headers as received.
    pub headers: HeaderMap,
    /// When the receiver accepted it.
    pub received_at: DateTime<Utc>,
}

/// A request a recording receiver kept: its headers, its body and when it arrived.
type Recorded = (HeaderMap, Bytes, DateTime<Utc>);

/// What the server task and the test share.
struct Shared {
    verifiers: Mutex<Vec<standardwebhooks::Webhook>>,
    mode: Mutex<Mode>,
    deliveries: Mutex<Vec<Delivery>>,
    bad_signatures: AtomicUsize,
    bad_bodies: AtomicUsize,
    connections: AtomicUsize,
    requests: AtomicUsize,
    changed: Notify,
    /// Requests kept unchecked, with their arrival time ([`Receiver::start_recording`]).
    recording: Option<Mutex<Vec<Recorded>>>,
}

/// Locks a receiver's state; a panicked handler leaves the state as it was, so poisoning is
/// ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A webhook receiver on `127.0.0.1` (see the module documentation). Dropping it stops it.
pub struct Receiver {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl Receiver {
    /// Starts a receiver on a free loopback port that verifies deliveries with `secret_whsec`
    /// (a `whsec_` secret).
    ///
    /// # Panics
    ///
    /// When the secret is not base64 or no port can be bound: a test cannot go on without it.
    pub async fn start(secret_whsec: &str) -> Receiver {
        Self::start_with(secret_whsec, false).await
    }

    /// Starts a receiver that answers every request 204 at once and keeps it unchecked, for a
    /// benchmark of the sender; [`Receiver::verify_recorded`] checks what it kept.
    ///
    /// # Panics
    ///
    /// As [`Receiver::start`].
    pub async fn start_recording(secret_whsec: &str) -> Receiver {
        Self::start_with(secret_whsec, true).await
    }

    /// Checks every request a recording receiver kept, as [`Receiver::start`]'s receiver
    /// checks them on arrival: those that pass are added to [`Receiver::deliveries`] (with their
    /// arrival time), the others to [`Receiver::bad_signatures`] or [`Receiver::bad_bodies`].
    /// Returns every delivery.
    pub fn verify_recorded(&self) -> Vec<Delivery> {
        let kept = match &self.shared.recording {
            Some(recording) => std::mem::take(&mut *lock(recording)),
            None => Vec::new(),
        };
        for (headers, body, received_at) in kept {
            // A refusal is counted by `check`.
            if let Ok(delivery) = check(&self.shared, &headers, &body, received_at) {
                lock(&self.shared.deliveries).push(delivery);
            }
        }
        self.deliveries()
    }

    async fn start_with(secret_whsec: &str, recording: bool) -> Receiver {
        let shared = Arc::new(Shared {
            verifiers: Mutex::new(vec![verifier(secret_whsec)]),
            mode: Mutex::new(Mode::Ok),
            deliveries: Mutex::new(Vec::new()),
            bad_signatures: AtomicUsize::new(0),
            bad_bodies: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            changed: Notify::new(),
            recording: recording.then(|| Mutex::new(Vec::new())),
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the test receiver binds a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let server = tokio::spawn(serve(listener, shared.clone()));
        Receiver {
            shared,
            addr,
            server: Mutex::new(Some(server)),
        }
    }

    /// The URL deliveries go to: `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The port the receiver listens on (the same after a restart).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Verifies with these secrets from now on: a delivery passes when any of them verifies
    /// (a rotation's grace period).
    ///
    /// # Panics
    ///
    /// When a secret is not base64.
    pub fn set_secrets(&self, secrets: &[&str]) {
        *lock(&self.shared.verifiers) = secrets.iter().map(|s| verifier(s)).collect();
    }

    /// Answers from now on as `mode` says.
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
    }

    /// The deliveries accepted so far, in arrival order (repeats included).
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.shared.deliveries).clone()
    }

    /// How many requests failed the signature check (answered 400).
    pub fn bad_signatures(&self) -> usize {
        self.shared.bad_signatures.load(Ordering::SeqCst)
    }

    /// How many correctly signed requests had a body that is not a caretrail CloudEvent
    /// (answered 400).
    pub fn bad_bodies(&self) -> usize {
        self.shared.bad_bodies.load(Ordering::SeqCst)
    }

    /// How many TCP connections the receiver has accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many HTTP requests the receiver has received, whatever it answered.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Waits until at least `count` deliveries have been accepted and returns them all.
    ///
    /// # Panics
    ///
    /// When they have not arrived within `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let deliveries = self.deliveries();
            if deliveries.len() >= count {
                return deliveries;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "{count} deliveries expected within {timeout:?}, {} arrived",
                    self.deliveries().len()
                );
            }
        }
    }

    /// Stops the server: the port refuses connections and every open connection is closed.
    pub async fn stop(&self) {
        let server = lock(&self.server).take();
        if let Some(server) = server {
            server.abort();
            // The task owns the listener and the connections; they are closed once it ends.
            let _ = server.await;
        }
    }

    /// Starts the server again on the same port, with the same state.
    ///
    /// # Panics
    ///
    /// When the port cannot be bound again.
    pub async fn restart(&self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("the test receiver binds its port again");
        let server = tokio::spawn(serve(listener, self.shared.clone()));
        *lock(&self.server) = Some(server);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(server) = lock(&self.server).take() {
            server.abort();
        }
    }
}

fn verifier(secret_whsec: &str) -> standardwebhooks::Webhook {
    standardwebhooks::Webhook::new(secret_whsec).expect("a test receiver's secret is base64")
}

/// The accept loop. Each connection runs in the loop's own [`JoinSet`], so ending the loop's
/// task (stop, drop) closes them all.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        handle(shared.clone(), request)
                    });
                    // A connection's error (a client that hung up) is not the test's concern.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn answer(status: StatusCode, body: impl Into<Body>) -> Response<Body> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let mode = lock(&shared.mode).clone();
    if mode == Mode::Hang {
        std::future::pending::<()>().await;
    }
    let received_at = Utc::now();
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(Body::new(body), 16 << 20).await else {
        return Ok(answer(StatusCode::BAD_REQUEST, "unreadable body"));
    };
    if let Some(recording) = &shared.recording {
        lock(recording).push((parts.headers, body, received_at));
        return Ok(answer(StatusCode::NO_CONTENT, Body::empty()));
    }

    let delivery = match check(&shared, &parts.headers, &body, received_at) {
        Ok(delivery) => delivery,
        Err(refusal) => return Ok(answer(StatusCode::BAD_REQUEST, refusal)),
    };

    let response = match mode {
        Mode::Ok | Mode::Hang => answer(StatusCode::NO_CONTENT, Body::empty()),
        Mode::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            answer(status, format!("scripted status {code}"))
        }
        Mode::Respond(code, text) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            answer(status, text)
        }
        Mode::FailNext(n) => {
            if n > 0 {
                *lock(&shared.mode) = if n > 1 {
                    Mode::FailNext(n - 1)
                } else {
                    Mode::Ok
                };
                answer(StatusCode::INTERNAL_SERVER_ERROR, "scripted failure")
            } else {
                answer(StatusCode::NO_CONTENT, Body::empty())
            }
        }
        Mode::Redirect(location) => {
            let mut response = answer(StatusCode::FOUND, "moved");
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(LOCATION, value);
            }
            response
        }
        Mode::LargeBody(len) => answer(StatusCode::OK, vec![b'x'; len]),
        Mode::EndlessBody => {
            let chunks = futures::stream::repeat_with(|| {
                Ok::<_, Infallible>(Bytes::from_static(&[b'y'; 4096]))
            });
            answer(StatusCode::OK, Body::from_stream(chunks))
        }
    };
    if response.status().is_success() {
        lock(&shared.deliveries).push(delivery);
        shared.changed.notify_waiters();
    }
    Ok(response)
}

/// Checks one request: the signature with the Standard Webhooks library, the body with the
/// CloudEvents SDK; a refusal is counted and named.
fn check(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    received_at: DateTime<Utc>,
) -> Result<Delivery, &'static str> {
    let verified = lock(&shared.verifiers)
        .iter()
        .any(|webhook| webhook.verify(body, headers).is_ok());
    if !verified {
        shared.bad_signatures.fetch_add(1, Ordering::SeqCst);
        shared.changed.notify_waiters();
        return Err("bad signature");
    }
    let Some(delivery) = parse(headers, body, received_at) else {
        shared.bad_bodies.fetch_add(1, Ordering::SeqCst);
        shared.changed.notify_waiters();
        return Err("not a caretrail CloudEvent");
    };
    Ok(delivery)
}

/// The delivery a correctly signed request carries, if its body is a caretrail CloudEvent.
fn parse(headers: &HeaderMap, body: &[u8], received_at: DateTime<Utc>) -> Option<Delivery> {
    let cloudevent: cloudevents::Event = serde_json::from_slice(body).ok()?;
    let position = match cloudevent.extension("position")? {
        ExtensionValue::String(text) => text.parse().ok()?,
        _ => return None,
    };
    let event_type = cloudevent
        .ty()
        .strip_prefix("cn.caretrail.")?
        .rsplit_once(".v")?
        .0
        .to_owned();
    Some(Delivery {
        webhook_id: headers.get("webhook-id")?.to_str().ok()?.to_owned(),
        position,
        event_type,
        cloudevent,
        headers: headers.clone(),
        received_at,
    })
}
