//! caretrail's HTTP API: commands, the event log, live event streams, dashboards and
//! operations endpoints, on axum.
//!
//! [`router`] builds the whole `Router` from an [`AppState`] (tests drive it directly or on port
//! 0); [`Server`] binds it and shuts it down gracefully: stop accepting, let in-flight requests
//! finish, end live streams.
//!
//! Architecture invariant: handlers translate HTTP to calls on `caretrail-app`,
//! `caretrail-store` and the read side, and errors to problem+json; rules live in the domain,
//! never here. Personal data leaves the server only through `caretrail_app::view` with the
//! caller's role deciding the access.

pub mod audit;
pub mod auth;
pub mod background;
pub mod commands;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod metrics;
pub mod openapi;
pub mod operations;
pub mod ops;
pub mod testing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use caretrail_app::App;
use tokio::sync::watch;

pub use auth::{Principal, RateLimiter, Role, TokenStore};
pub use error::{ApiError, ApiResult};

/// Largest request body accepted (a visit with many participants is a few kilobytes).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub app: Arc<App>,
    pub tokens: Arc<TokenStore>,
    pub limiter: Arc<RateLimiter>,
    pub metrics: Arc<metrics::Metrics>,
    /// Flips to true when the server starts shutting down; live streams end on it.
    pub shutdown: watch::Receiver<bool>,
    /// Interval of SSE keep-alive comments.
    pub heartbeat: Duration,
    /// The dashboards' read side, when enabled.
    pub read: Option<dashboard::ReadSide>,
    /// The audit tree and checkpoints, when enabled.
    pub auditor: Option<Arc<caretrail_audit::Auditor>>,
    /// Long operations (rebuilds, exports) started over HTTP.
    pub operations: Arc<operations::Operations>,
    /// Renderings of recent events shared by live subscribers.
    pub renders: Arc<events::Renders>,
    /// How far behind (events and time) a background task may be while `/readyz` says ready.
    pub ready: caretrail_store::ReadyBounds,
}

impl AppState {
    /// State for `app` with default limits; `shutdown` comes from [`Server`] or a test.
    pub fn new(app: Arc<App>, tokens: Arc<TokenStore>, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            app,
            tokens,
            limiter: Arc::new(RateLimiter::new(20_000, 40_000)),
            metrics: Arc::new(metrics::Metrics::default()),
            shutdown,
            heartbeat: Duration::from_secs(15),
            read: None,
            auditor: None,
            operations: Arc::new(operations::Operations::default()),
            renders: Arc::new(events::Renders::default()),
            ready: caretrail_store::ReadyBounds::default(),
        }
    }
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/commands/{name}", post(commands::command))
        .route("/events", get(events::page))
        .route("/events/subscribe", get(events::subscribe))
        .route("/streams/{id}", get(events::stream))
        .route("/me", get(dashboard::me))
        .route("/dashboard/overview", get(dashboard::overview))
        .route("/dashboard/issues", get(dashboard::issue_summary))
        .route("/dashboard/gifts", get(dashboard::gifts))
        .route("/dashboard/projections", get(dashboard::lag))
        .route("/pairings", get(dashboard::pairings))
        .route("/directors", get(dashboard::directors))
        .route("/model-workers", get(dashboard::model_workers))
        .route("/model-workers/{id}", get(dashboard::model_worker))
        .route("/visits", get(dashboard::visits))
        .route("/model-workers/{id}/timeline", get(dashboard::timeline))
        .route("/issues", get(dashboard::issues))
        .route("/regions", get(dashboard::regions))
        .route("/audit/checkpoint", get(audit::checkpoint))
        .route("/audit/proof/inclusion", get(audit::inclusion))
        .route("/audit/proof/consistency", get(audit::consistency))
        .route("/audit/leaf/{position}", get(audit::leaf))
        .route("/operations/rebuild", post(operations::start_rebuild))
        .route("/operations/export", post(operations::start_export))
        .route("/operations/{id}", get(operations::status))
        .route("/operations/{id}/file", get(operations::file));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .merge(caretrail_web::routes())
        .fallback(ops::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |req: &axum::http::Request<_>| {
                    let route = req
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or("unmatched", |p| p.as_str());
                    tracing::info_span!("http.request", method = %req.method(), route)
                },
            ),
        )
        .with_state(state)
}

/// A bound, running server.
pub struct Server {
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: watch::Sender<bool>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) for `router`; `shutdown` is the sender whose
    /// receiver the state holds.
    pub async fn bind(
        addr: SocketAddr,
        router: Router,
        shutdown: watch::Sender<bool>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            listener: tokio::net::TcpListener::bind(addr).await?,
            router,
            shutdown,
        })
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
        let shutdown = self.shutdown;
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move {
                stop.await;
                tracing::info!("shutting down: finishing in-flight requests, closing streams");
                let _ = shutdown.send(true);
            })
            .await
    }
}

/// A future that resolves on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a server calls it before it announces its
/// address, so a signal sent as soon as the address is known stops it gracefully instead of
/// killing it.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (mut term, mut int) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = term => {},
                _ = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
