//! Publication to NATS JetStream.
//!
//! An integration that follows the log through NATS reads it from a JetStream stream, so this
//! module turns a batch of rendered events into acknowledged stream messages. The delivery
//! engine owns the cursor; this module only reports how far a batch got, so the engine can
//! advance over exactly the events JetStream has stored and retry the rest later.
//!
//! Three decisions shape it:
//!
//! - A batch is pipelined: every message is sent before the first acknowledgement is awaited,
//!   and the acknowledgements are then awaited in order. One round trip per batch, not per
//!   event, is what makes the throughput target reachable.
//! - Every message carries the event id as `Nats-Msg-Id`. A message republished after a crash
//!   or a lost acknowledgement is then dropped by the stream's duplicate window instead of
//!   stored twice, which is what lets the engine retry blindly from its cursor.
//! - The connection never gives up: a server that is down at start or restarts later is
//!   reconnected to in the background, and a batch sent meanwhile fails within the publish
//!   timeout with an error the engine retries on.
//!
//! Order: with no failure the stream holds the events in the order of the batch. Across an
//! outage, messages the client had queued when the connection broke may reach the server after
//! reconnecting, before the engine's retry of earlier ones, so a consumer can see a few events
//! out of log order (each exactly once). The CloudEvents body carries the log position for
//! consumers that need the order.

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::context::{
    CreateStreamErrorKind, PublishAckFuture, PublishError, PublishErrorKind,
};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::cloudevent::Outgoing;

/// The subject prefix when an administrator names none: subjects are
/// `caretrail.<category>.<EventType>`.
pub const DEFAULT_PREFIX: &str = "caretrail";

/// The stream created when the configuration names none.
pub const DEFAULT_STREAM: &str = "CARETRAIL";

/// The content type of every message: a CloudEvent in structured JSON mode.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// The longest prefix accepted, in bytes. The server's own limit is on the whole subject; this
/// leaves ample room for the category and the event type.
const MAX_PREFIX_BYTES: usize = 200;

/// The subject an event is published on: `<prefix>.<category>.<EventType>`, for example
/// `caretrail.visit.VisitRecorded`, so a consumer can filter by category or by type with NATS
/// wildcards.
///
/// The prefix is expected to have passed [`check_prefix`]; the category and the event type are
/// the domain's own names (single tokens of letters).
pub fn subject(prefix: &str, category: &str, event_type: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + category.len() + event_type.len() + 2);
    s.push_str(prefix);
    s.push('.');
    s.push_str(category);
    s.push('.');
    s.push_str(event_type);
    s
}

/// Checks a subject prefix an administrator asked for: one or more dot-separated tokens of
/// ASCII letters, digits, `_` and `-`, at most 200 bytes. Wildcards (`*`, `>`), whitespace and
/// empty tokens are refused, since a prefix must name subjects, not match them. The error does
/// not repeat the value.
pub fn check_prefix(prefix: &str) -> Result<(), NatsError> {
    let invalid = |reason| Err(NatsError::InvalidPrefix { reason });
    if prefix.is_empty() {
        return invalid("it is empty");
    }
    if prefix.len() > MAX_PREFIX_BYTES {
        return invalid("it is longer than 200 bytes");
    }
    for token in prefix.split('.') {
        if token.is_empty() {
            return invalid("it has an empty token (a leading, trailing or doubled dot)");
        }
        for c in token.chars() {
            match c {
                'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '-' => {}
                '*' | '>' => return invalid("it contains a wildcard (`*` or `>`)"),
                c if c.is_whitespace() => return invalid("it contains whitespace"),
                _ => {
                    return invalid(
                        "it contains a character other than letters, digits, `_`, `-` and `.`",
                    );
                }
            }
        }
    }
    Ok(())
}

/// Whether the subject filter `filter` (as a stream's subject) matches every subject that
/// `subject` (which may itself contain wildcards) can match.
fn filter_covers(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (None, None) => return true,
            // `>` matches one or more remaining tokens, whatever they are.
            (Some(">"), Some(_)) => return true,
            // `*` matches any single token, including another `*`, but not a `>` (which can
            // stand for several).
            (Some("*"), Some(t)) if t != ">" => {}
            (Some(a), Some(b)) if a == b && a != ">" => {}
            _ => return false,
        }
    }
}

/// Where and how events are published to JetStream. [`Default`] gives a local server, the
/// `CARETRAIL` stream over `caretrail.>`, 30 days of retention, a 2-minute duplicate window and
/// a 5-second publish timeout.
#[derive(Clone)]
pub struct JetStreamConfig {
    /// The server's URL, `nats://host:4222` (credentials, if any, in the URL).
    pub url: String,
    /// The stream's name (no dots, spaces or wildcards).
    pub stream: String,
    /// The subjects the stream takes. Every subject events are published on must fall under
    /// one of them.
    pub subjects: Vec<String>,
    /// How long the stream keeps a message.
    pub max_age: Duration,
    /// How long the stream remembers a message id to drop a republished message. It must be
    /// longer than the time between a publication whose acknowledgement was lost and its retry.
    pub duplicate_window: Duration,
    /// How long a publication waits for the acknowledgement of each message (and JetStream
    /// API requests for their answer) before reporting a timeout.
    pub publish_timeout: Duration,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            stream: DEFAULT_STREAM.to_owned(),
            subjects: vec![format!("{DEFAULT_PREFIX}.>")],
            max_age: Duration::from_secs(30 * 24 * 60 * 60),
            duplicate_window: Duration::from_secs(2 * 60),
            publish_timeout: Duration::from_secs(5),
        }
    }
}

impl JetStreamConfig {
    /// The defaults, for the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    fn check(&self) -> Result<(), NatsError> {
        let invalid = |reason| Err(NatsError::InvalidConfig { reason });
        if self.stream.is_empty()
            || self
                .stream
                .chars()
                .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
        {
            return invalid("the stream name is empty or contains `.`, `*`, `>` or whitespace");
        }
        if self.subjects.is_empty() {
            return invalid("no stream subjects are configured");
        }
        if self.subjects.iter().any(|s| {
            s.is_empty() || s.split('.').any(str::is_empty) || s.contains(char::is_whitespace)
        }) {
            return invalid("a stream subject is empty, has an empty token or contains whitespace");
        }
        if self.publish_timeout.is_zero() {
            return invalid("the publish timeout is zero");
        }
        if self.duplicate_window.is_zero() {
            return invalid("the duplicate window is zero");
        }
        Ok(())
    }
}

impl fmt::Debug for JetStreamConfig {
    /// The URL is shown without its user name and password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JetStreamConfig")
            .field("url", &redacted_url(&self.url))
            .field("stream", &self.stream)
            .field("subjects", &self.subjects)
            .field("max_age", &self.max_age)
            .field("duplicate_window", &self.duplicate_window)
            .field("publish_timeout", &self.publish_timeout)
            .finish()
    }
}

/// The URL with any credentials replaced, for logs.
fn redacted_url(url: &str) -> String {
    match url.rsplit_once('@') {
        Some((before, host)) => {
            let scheme = before.split_once("://").map_or("", |(s, _)| s);
            if scheme.is_empty() {
                format!("***@{host}")
            } else {
                format!("{scheme}://***@{host}")
            }
        }
        None => url.to_owned(),
    }
}

/// What became of a batch: the engine advances its cursor over the first `acked` items and
/// retries from the next one.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// How many items, from the first, JetStream acknowledged, in order. Items after the first
    /// failure are not counted even if they were stored: their retry is dropped as a duplicate.
    pub acked: usize,
    /// How many of the acknowledged items JetStream reported as duplicates (already stored
    /// within the duplicate window, so not stored again).
    pub duplicates: usize,
    /// Why the batch stopped before its end, if it did.
    pub error: Option<NatsError>,
}

/// Why a publication or the stream's setup failed. Messages carry event ids, stream names and
/// the server's description of the error, never a payload or a client's value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// A subject prefix is not one or more dot-separated tokens of letters, digits, `_`, `-`.
    #[error("invalid NATS subject prefix: {reason}")]
    InvalidPrefix {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The JetStream configuration cannot be used.
    #[error("invalid JetStream configuration: {reason}")]
    InvalidConfig {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The client could not be set up (an unusable server address, for instance). A server
    /// that is merely down is not this error: the client keeps connecting in the background.
    #[error("cannot set up the NATS client: {detail}")]
    Connect {
        /// The client library's description (without the URL, which may hold credentials).
        detail: String,
    },
    /// A stream of the configured name exists and its subjects do not cover the configured
    /// ones. It is left as it is: changing a stream others may read is an operator's decision.
    #[error(
        "JetStream stream {stream} exists with subjects {existing:?}, which do not cover the \
         configured {configured:?}; add them to the stream or configure another stream name"
    )]
    StreamConflict {
        /// The stream's name.
        stream: String,
        /// Its subjects on the server.
        existing: Vec<String>,
        /// The subjects configured here.
        configured: Vec<String>,
    },
    /// The stream could not be looked up or created (JetStream disabled, the subjects taken by
    /// another stream, the server unreachable, ...).
    #[error("cannot look up or create JetStream stream {stream}: {detail}")]
    StreamSetup {
        /// The stream's name.
        stream: String,
        /// The server's or the client's description.
        detail: String,
    },
    /// No acknowledgement within the publish timeout: the server is down, unreachable or
    /// overloaded, or the connection is being re-established.
    #[error("no JetStream acknowledgement for event {event_id} within {timeout:?}")]
    Timeout {
        /// The first event not acknowledged.
        event_id: Uuid,
        /// The publish timeout.
        timeout: Duration,
    },
    /// No stream takes the event's subject. The publisher set the stream up itself, so this is
    /// a server that restarted and has not yet recovered its streams from disk (transient; CI
    /// saw it in the restart test), or a stream deleted by hand, which the subscription's
    /// status then shows until an operator acts.
    #[error("no JetStream stream takes the subject of event {event_id}")]
    NoStream {
        /// The event.
        event_id: Uuid,
    },
    /// The message is larger than the server accepts.
    #[error("event {event_id} is larger than the NATS server's maximum message size")]
    TooLarge {
        /// The event.
        event_id: Uuid,
    },
    /// JetStream answered with an error (storage full, the subject taken by another stream,
    /// ...).
    #[error("JetStream refused event {event_id}: {detail}")]
    Rejected {
        /// The event.
        event_id: Uuid,
        /// The server's description.
        detail: String,
    },
    /// The message could not be handed to the connection, or the connection was lost before
    /// its acknowledgement came.
    #[error("cannot publish event {event_id}: {detail}")]
    Send {
        /// The event.
        event_id: Uuid,
        /// The client library's description.
        detail: String,
    },
}

impl NatsError {
    /// A stable, machine-readable code for the variant, for logs, metrics and the
    /// subscription's status.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidPrefix { .. } => "nats_invalid_prefix",
            Self::InvalidConfig { .. } => "nats_invalid_config",
            Self::Connect { .. } => "nats_connect",
            Self::StreamConflict { .. } => "nats_stream_conflict",
            Self::StreamSetup { .. } => "nats_stream_setup",
            Self::Timeout { .. } => "nats_timeout",
            Self::NoStream { .. } => "nats_no_stream",
            Self::TooLarge { .. } => "nats_too_large",
            Self::Rejected { .. } => "nats_rejected",
            Self::Send { .. } => "nats_send",
        }
    }

    /// Whether retrying later can succeed without anyone changing anything: the server was
    /// unreachable or slow. Configuration errors and refused messages need an operator.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. }
                | Self::Send { .. }
                | Self::StreamSetup { .. }
                | Self::NoStream { .. }
        )
    }

    fn from_publish(err: PublishError, event_id: Uuid, timeout: Duration) -> Self {
        match err.kind() {
            PublishErrorKind::TimedOut => Self::Timeout { event_id, timeout },
            PublishErrorKind::StreamNotFound => Self::NoStream { event_id },
            PublishErrorKind::MaxPayloadExceeded => Self::TooLarge { event_id },
            PublishErrorKind::WrongLastMessageId | PublishErrorKind::WrongLastSequence => {
                Self::Rejected {
                    event_id,
                    detail: err.to_string(),
                }
            }
            // A JetStream error answer arrives as `Other` with the server's error as source.
            PublishErrorKind::Other
                if std::error::Error::source(&err)
                    .is_some_and(|s| s.is::<async_nats::jetstream::Error>()) =>
            {
                Self::Rejected {
                    event_id,
                    detail: err.to_string(),
                }
            }
            _ => Self::Send {
                event_id,
                detail: err.to_string(),
            },
        }
    }
}

/// Publishes batches of events to one JetStream stream over one connection that reconnects by
/// itself. Cheap to share behind an `Arc`; batches from several tasks may run at once.
pub struct NatsPublisher {
    js: Context,
    cfg: JetStreamConfig,
    /// Set once the stream is known to exist with fitting subjects.
    stream_ready: OnceCell<()>,
}

impl fmt::Debug for NatsPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsPublisher")
            .field("cfg", &self.cfg)
            .field("stream_ready", &self.stream_ready.initialized())
            .finish_non_exhaustive()
    }
}

/// The wait before reconnect attempt `attempts` (counted from 1): immediately, then doubling
/// from 100 ms to at most 2 seconds, so a restarted server is found again within about two
/// seconds without a down server being hammered.
fn reconnect_delay(attempts: usize) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let exp = u32::try_from(attempts - 2).unwrap_or(u32::MAX).min(5);
    Duration::from_millis(100 << exp).min(Duration::from_secs(2))
}

impl NatsPublisher {
    /// Connects to the server and makes sure the stream exists.
    ///
    /// The connection is kept for good: a server that is down now, or restarts later, is
    /// reconnected to in the background, forever. When the server cannot be reached within
    /// the publish timeout, this returns anyway, and the first batch sets up the stream.
    ///
    /// A missing stream is created with file storage and limits retention: each message is
    /// kept for `max_age` whether or not anyone has read it (a stream is the integration's
    /// replayable history, not a work queue), with `duplicate_window` to drop republished
    /// messages. An existing stream whose subjects do not cover the configured ones is an
    /// error ([`NatsError::StreamConflict`]); it is not changed.
    pub async fn connect(cfg: JetStreamConfig) -> Result<Self, NatsError> {
        cfg.check()?;
        let client = async_nats::ConnectOptions::new()
            .name("caretrail-integrations")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(reconnect_delay)
            .connect(cfg.url.as_str())
            .await
            .map_err(|e| NatsError::Connect {
                detail: e.kind().to_string(),
            })?;
        let js = jetstream::ContextBuilder::new()
            .timeout(cfg.publish_timeout)
            // A batch that stops at a failed acknowledgement drops the futures of the
            // messages after it; their permits come back after this long.
            .ack_timeout(cfg.publish_timeout)
            .build(client);
        let publisher = Self {
            js,
            cfg,
            stream_ready: OnceCell::new(),
        };
        match publisher.ensure_stream().await {
            Ok(()) => {}
            Err(e) if e.is_transient() => {
                tracing::warn!(
                    stream = %publisher.cfg.stream,
                    code = e.code(),
                    error = %e,
                    "NATS unreachable; the stream is set up by the first batch"
                );
            }
            Err(e) => return Err(e),
        }
        Ok(publisher)
    }

    /// The configuration this publisher was connected with.
    pub fn config(&self) -> &JetStreamConfig {
        &self.cfg
    }

    async fn ensure_stream(&self) -> Result<(), NatsError> {
        self.stream_ready
            .get_or_try_init(|| self.lookup_or_create_stream())
            .await
            .map(|_| ())
    }

    async fn lookup_or_create_stream(&self) -> Result<(), NatsError> {
        let cfg = &self.cfg;
        let wanted = StreamConfig {
            name: cfg.stream.clone(),
            subjects: cfg.subjects.clone(),
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            max_age: cfg.max_age,
            duplicate_window: cfg.duplicate_window,
            description: Some("caretrail's event log, published for integrations".to_owned()),
            ..StreamConfig::default()
        };
        let stream = self.js.get_or_create_stream(wanted).await.map_err(|e| {
            let detail = match e.kind() {
                CreateStreamErrorKind::JetStream(js) => js.to_string(),
                kind => kind.to_string(),
            };
            NatsError::StreamSetup {
                stream: cfg.stream.clone(),
                detail,
            }
        })?;
        let existing = &stream.cached_info().config;
        let covered = cfg
            .subjects
            .iter()
            .all(|s| existing.subjects.iter().any(|f| filter_covers(f, s)));
        if !covered {
            return Err(NatsError::StreamConflict {
                stream: cfg.stream.clone(),
                existing: existing.subjects.clone(),
                configured: cfg.subjects.clone(),
            });
        }
        if existing.duplicate_window < cfg.duplicate_window {
            tracing::warn!(
                stream = %cfg.stream,
                existing = ?existing.duplicate_window,
                configured = ?cfg.duplicate_window,
                "the existing stream's duplicate window is shorter than configured"
            );
        }
        Ok(())
    }

    /// Publishes `items` (each with its subject, see [`subject`]) pipelined: every message is
    /// sent, then the acknowledgements are awaited in order, each for at most the publish
    /// timeout. Each message has the headers `Nats-Msg-Id` (the event id, for the stream's
    /// duplicate window), `Nats-Expected-Stream` (so a message another stream would take is
    /// refused rather than stored there) and `Content-Type: application/cloudevents+json`;
    /// its payload is the CloudEvents body.
    ///
    /// The outcome's `acked` is the length of the acknowledged prefix: the caller advances
    /// over those items and retries from the next one. Never panics and never hangs for
    /// longer than about two publish timeouts.
    #[tracing::instrument(skip_all, fields(stream = %self.cfg.stream, batch = items.len()))]
    pub async fn publish_batch(&self, items: &[(String, &Outgoing)]) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        if items.is_empty() {
            return outcome;
        }
        if let Err(e) = self.ensure_stream().await {
            outcome.error = Some(e);
            return outcome;
        }
        let timeout = self.cfg.publish_timeout;
        let mut pending: Vec<PublishAckFuture> = Vec::with_capacity(items.len());
        let mut send_error = None;
        for (subject, event) in items {
            let message = PublishMessage::build()
                .payload(event.body.clone())
                .message_id(event.event_id.to_string())
                .expected_stream(&self.cfg.stream)
                .header("Content-Type", CONTENT_TYPE);
            // The send itself is bounded by the context's timeout, but waiting for an ack
            // permit is not; bound the whole step.
            let sent =
                tokio::time::timeout(timeout, self.js.send_publish(subject.clone(), message)).await;
            match sent {
                Ok(Ok(ack)) => pending.push(ack),
                Ok(Err(e)) => {
                    send_error = Some(NatsError::from_publish(e, event.event_id, timeout));
                    break;
                }
                Err(_elapsed) => {
                    send_error = Some(NatsError::Timeout {
                        event_id: event.event_id,
                        timeout,
                    });
                    break;
                }
            }
        }
        for (ack, (_, event)) in pending.into_iter().zip(items) {
            match ack.await {
                Ok(ack) => {
                    outcome.acked += 1;
                    if ack.duplicate {
                        outcome.duplicates += 1;
                    }
                }
                Err(e) => {
                    outcome.error = Some(NatsError::from_publish(e, event.event_id, timeout));
                    break;
                }
            }
        }
        if outcome.error.is_none() {
            outcome.error = send_error;
        }
        if let Some(e) = &outcome.error {
            tracing::warn!(
                acked = outcome.acked,
                code = e.code(),
                error = %e,
                "NATS batch stopped before its end"
            );
        }
        outcome
    }
}

#[cfg(feature = "testing")]
pub mod harness {
    //! A real `nats-server` with JetStream for tests and benchmarks (the `testing` feature).
    //!
    //! The publisher's promises are about a real server's behaviour (acknowledgements, the
    //! duplicate window, a restart that keeps the stream), so its tests run one rather than a mock.
    //! Each [`NatsServer`] listens on a free port of 127.0.0.1 and keeps JetStream's files in its
    //! own temporary directory; it can be stopped and restarted on the same port and directory, so
    //! a client reconnects to it and finds its stream again. It is killed when dropped.
    //!
    //! Without a `nats-server` binary (on `PATH` or in `/usr/sbin`), [`NatsServer::start_or_skip`]
    //! prints one line saying the test was skipped and why; under `CI=true` it fails instead, since
    //! `.ci/run` installs the server.

    use std::io::{BufRead, BufReader};
    use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// How long a starting server may take to accept connections, and a stopping one to exit.
    const WAIT: Duration = Duration::from_secs(15);

    /// A `nats-server -js` child process on 127.0.0.1, with its store in a temporary directory.
    #[derive(Debug)]
    pub struct NatsServer {
        binary: PathBuf,
        port: u16,
        dir: tempfile::TempDir,
        child: Option<Child>,
    }

    impl NatsServer {
        /// The `nats-server` binary: the first on `PATH`, else `/usr/sbin/nats-server` (where
        /// Debian's package puts it, often not on a user's `PATH`).
        pub fn binary() -> Option<PathBuf> {
            let on_path = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .unwrap_or_default();
            on_path
                .into_iter()
                .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
                .map(|dir| dir.join("nats-server"))
                .find(|candidate| candidate.is_file())
        }

        /// Starts a server, or returns `None` after printing one line saying `test` was skipped
        /// because `nats-server` is not installed. Under `CI=true` a missing server panics.
        pub fn start_or_skip(test: &str) -> Option<Self> {
            if Self::binary().is_none() {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("nats-server is not installed, and CI=true forbids skipping {test}");
                }
                eprintln!(
                    "skipped {test}: nats-server is not installed (not on PATH nor in /usr/sbin; \
                     `apt-get install nats-server`, which .ci/run does)"
                );
                return None;
            }
            Some(Self::start())
        }

        /// Starts a server on a free port with a fresh store directory and waits until it accepts
        /// connections. Panics when `nats-server` is missing or does not come up.
        pub fn start() -> Self {
            let binary = Self::binary().expect("nats-server is not installed");
            let dir = tempfile::Builder::new()
                .prefix("caretrail-nats-")
                .tempdir()
                .expect("a temporary directory for JetStream");
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut server = Self {
                binary,
                port,
                dir,
                child: None,
            };
            server.spawn();
            server
        }

        /// The client URL, `nats://127.0.0.1:<port>`.
        pub fn url(&self) -> String {
            format!("nats://127.0.0.1:{}", self.port)
        }

        /// The port the server listens on (the same across restarts).
        pub fn port(&self) -> u16 {
            self.port
        }

        /// The JetStream store directory (the same across restarts).
        pub fn store_dir(&self) -> &Path {
            self.dir.path()
        }

        /// Stops the server the way an operator does (SIGTERM: it closes its connections and
        /// flushes its store) and waits for it to exit, killing it if it takes too long. Does
        /// nothing when it is not running.
        pub fn stop(&mut self) {
            let Some(mut child) = self.child.take() else {
                return;
            };
            let term = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            if term.is_ok_and(|s| s.success()) {
                let deadline = Instant::now() + WAIT;
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }

        /// Kills the server at once (SIGKILL, a crash) and waits for it to exit. JetStream may
        /// lose the last acknowledged messages it had not yet written out.
        pub fn kill(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }

        /// Starts the server again on the same port and store directory (stopping it first if it
        /// runs), and waits until it accepts connections.
        pub fn restart(&mut self) {
            self.stop();
            self.spawn();
        }

        /// Whether the server process is running.
        pub fn is_running(&mut self) -> bool {
            self.child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
        }

        fn spawn(&mut self) {
            let log = self.dir.path().join("nats-server.log");
            let child = Command::new(&self.binary)
                .arg("-js")
                .args(["-a", "127.0.0.1"])
                .args(["-p", &self.port.to_string()])
                .arg("-sd")
                .arg(self.dir.path())
                .arg("-l")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nats-server starts");
            self.child = Some(child);
            let deadline = Instant::now() + WAIT;
            loop {
                if self.accepts_clients() {
                    return;
                }
                if !self.is_running() {
                    let tail = std::fs::read_to_string(&log).unwrap_or_default();
                    panic!("nats-server exited on start; its log:\n{tail}");
                }
                if Instant::now() > deadline {
                    panic!(
                        "nats-server did not accept connections on port {} in time",
                        self.port
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        /// Whether a client connecting now is greeted with the server's `INFO` line.
        fn accepts_clients(&self) -> bool {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
            let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
                return false;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let mut line = String::new();
            BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("INFO")
        }
    }

    impl Drop for NatsServer {
        fn drop(&mut self) {
            self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_prefix_category_and_type() {
        assert_eq!(
            subject(DEFAULT_PREFIX, "visit", "VisitRecorded"),
            "caretrail.visit.VisitRecorded"
        );
        assert_eq!(
            subject("org.x-1", "pairing", "PairAssigned"),
            "org.x-1.pairing.PairAssigned"
        );
    }

    #[test]
    fn prefixes_are_checked() {
        for ok in ["caretrail", "a.b.c", "A_b-9.x", &"a".repeat(200)] {
            assert!(check_prefix(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "a.*",
            "a.>",
            "a*",
            "a b",
            "a\tb",
            "a/b",
            "é",
            &"a".repeat(201),
        ] {
            let err = check_prefix(bad).unwrap_err();
            assert_eq!(err.code(), "nats_invalid_prefix");
            if !bad.is_empty() && bad != "." {
                assert!(
                    !err.to_string().contains(bad),
                    "the error repeats the value"
                );
            }
        }
    }

    #[test]
    fn stream_subjects_cover_configured_ones() {
        assert!(filter_covers("caretrail.>", "caretrail.>"));
        assert!(filter_covers(">", "caretrail.>"));
        assert!(filter_covers("caretrail.>", "caretrail.visit.*"));
        assert!(filter_covers("caretrail.*.*", "caretrail.visit.*"));
        assert!(filter_covers(
            "caretrail.visit.*",
            "caretrail.visit.VisitRecorded"
        ));
        assert!(!filter_covers("caretrail.*", "caretrail.>"));
        assert!(!filter_covers("caretrail.visit.*", "caretrail.>"));
        assert!(!filter_covers("caretrail.visit", "caretrail.>"));
        assert!(!filter_covers("other.>", "caretrail.>"));
        assert!(!filter_covers("caretrail.>", "caretrail"));
        assert!(!filter_covers("caretrail.a", "caretrail.*"));
    }

    #[test]
    fn reconnect_delay_grows_to_two_seconds() {
        assert_eq!(reconnect_delay(1), Duration::ZERO);
        assert_eq!(reconnect_delay(2), Duration::from_millis(100));
        assert_eq!(reconnect_delay(3), Duration::from_millis(200));
        assert_eq!(reconnect_delay(7), Duration::from_secs(2));
        assert_eq!(reconnect_delay(usize::MAX), Duration::from_secs(2));
    }

    #[test]
    fn debug_hides_url_credentials() {
        let cfg = JetStreamConfig::new("nats://user:secret@nats.example:4222");
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("user"),
            "{shown}"
        );
        assert!(shown.contains("nats://***@nats.example:4222"), "{shown}");
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let cfg = JetStreamConfig::default();
        assert_eq!(cfg.stream, "CARETRAIL");
        assert_eq!(cfg.subjects, ["caretrail.>"]);
        assert_eq!(cfg.max_age, Duration::from_secs(2_592_000));
        assert_eq!(cfg.duplicate_window, Duration::from_secs(120));
        assert!(cfg.check().is_ok());
    }
}
