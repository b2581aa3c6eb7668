//! The service, wired once: [`Application::build`] opens the store, the key ring and the token
//! table, records the demo if asked, opens the dashboards' projector and the audit tree, starts
//! the background tasks ([`crate::background`]) and binds the listener; the result is served by
//! [`Application::run_until_stopped`] (`caretrail serve`) or [`Application::spawn`] (the test
//! service in `testing`, the benchmarks).
//!
//! Both used to wire these parts each on their own, and drifted (the tests' background tasks
//! and the binary's were started differently until `background` was shared). One builder keeps
//! what is tested the thing that is run; what really differs between them is a field of
//! [`Config`] (which tasks run, where the audit key lives, whether the projector catches up
//! before the first request).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use caretrail_app::{App, CommandMeta, FixedClock, KeyError, KeyRing, MasterKey, SystemClock};
use caretrail_audit::{AuditConfig, AuditError, Auditor};
use caretrail_domain::{Policy, demo};
use caretrail_projections::{ProjectionError, Projector};
use caretrail_store::{ReadyBounds, StoreError, StoreOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::auth::TokenError;
use crate::dashboard::ReadSide;
use crate::{AppState, ConnectionLimits, Server, TokenStore, router};

/// Where the master key comes from. It is read after the store is opened, so a service whose
/// database cannot be reached says so first, whatever the state of its key.
#[derive(Debug)]
pub enum MasterKeySource {
    /// A key already in memory (tests, tools that made one).
    Key(MasterKey),
    /// `CARETRAIL_MASTER_KEY` if set, else this file, created with a fresh key on first use
    /// (see [`MasterKey::from_env_or_file`]).
    EnvOrFile(PathBuf),
}

impl MasterKeySource {
    fn load(self) -> Result<MasterKey, BuildError> {
        match self {
            Self::Key(key) => Ok(key),
            Self::EnvOrFile(path) => {
                MasterKey::from_env_or_file(&path).map_err(BuildError::MasterKey)
            }
        }
    }
}

/// Everything the service is built from. [`Config::new`] gives what `caretrail serve` does
/// without flags, except the address (port 0: a free port).
#[derive(Debug)]
pub struct Config {
    /// The database URL (`sqlite://PATH`, a plain path, or `postgres://...`).
    pub db: String,
    /// The store's tuning and timeouts.
    pub store: StoreOptions,
    /// The key that wraps every data key.
    pub master: MasterKeySource,
    /// The audit tree's origin and signing key.
    pub audit: AuditConfig,
    /// Where to listen.
    pub listen: SocketAddr,
    /// What one client may hold of the server.
    pub limits: ConnectionLimits,
    /// How far behind a background task may be while `/readyz` says ready.
    pub ready: ReadyBounds,
    /// Record the article's October 2021 visits if the store is empty.
    pub demo: bool,
    /// Run the audit tree follower (the projector always runs).
    pub tree_follower: bool,
    /// Sign a checkpoint at this interval (needs the tree follower to have something to sign).
    pub checkpoint_every: Option<Duration>,
    /// Let the projector catch up with the log before the listener is bound, so the first
    /// request sees every event recorded so far (tests); a server starts serving at once and
    /// `/readyz` says when the dashboards have caught up.
    pub catch_up: bool,
    /// Integrations' subscriptions and their delivery engine; `None` runs without them.
    pub integrations: Option<caretrail_integrations::EngineConfig>,
    /// The URL people reach the server at (`--public-url`): an `https://` one makes the
    /// session cookie `Secure` (`__Host-`), and its origin is the one cookie requests must
    /// come from. `None`: plain HTTP, the request's own `Host` is the origin.
    pub public_url: Option<crate::session::PublicUrl>,
}

impl Config {
    /// The defaults of `caretrail serve` for `db` (audit key file beside the database, the
    /// tree follower and a checkpoint a minute), listening on a free port of 127.0.0.1.
    pub fn new(db: impl Into<String>, master: MasterKeySource) -> Self {
        let db = db.into();
        let audit = AuditConfig::for_url(&db);
        // CloudEvents' `source`: the log's name, as its checkpoints carry it.
        let source = format!("urn:caretrail:{}", audit.origin);
        Self {
            integrations: Some(caretrail_integrations::EngineConfig::new(source)),
            audit,
            db,
            store: StoreOptions::default(),
            master,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            limits: ConnectionLimits::default(),
            ready: ReadyBounds::default(),
            demo: false,
            tree_follower: true,
            checkpoint_every: Some(Duration::from_secs(60)),
            catch_up: false,
            public_url: None,
        }
    }
}

/// Why the service could not be built. Each message says which part failed; its source says
/// why.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The store could not be opened or migrated.
    #[error("cannot open the store at {url}")]
    Store {
        /// The URL as given.
        url: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The master key could not be read or created.
    #[error("cannot load the master key")]
    MasterKey(#[source] KeyError),
    /// The key table could not be opened, or the master key does not match it.
    #[error("cannot open the key ring")]
    KeyRing(#[source] KeyError),
    /// The token table could not be opened.
    #[error("cannot open the token table")]
    Tokens(#[source] TokenError),
    /// A demo command failed.
    #[error("demo command {command}")]
    Demo {
        /// The command's name.
        command: &'static str,
        /// Why.
        #[source]
        source: caretrail_app::AppError,
    },
    /// The store's head could not be read (to decide whether to record the demo).
    #[error("cannot read the log head")]
    Head(#[source] StoreError),
    /// The dashboards' read models could not be opened.
    #[error("cannot open the dashboard projections")]
    Projections(#[source] ProjectionError),
    /// The audit tree could not be opened.
    #[error("cannot open the audit tree")]
    Audit(#[source] AuditError),
    /// The integrations' tables could not be opened or their client built.
    #[error("cannot open the integrations")]
    Integrations(#[source] caretrail_integrations::IntegrationError),
    /// The idle timeout would close healthy event streams between heartbeats.
    #[error("--idle-timeout must be longer than the event streams' {} s heartbeat", .heartbeat.as_secs())]
    IdleTimeout {
        /// The heartbeat interval of event streams.
        heartbeat: Duration,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The command side of the service: the application and the token table over one store.
pub struct Opened {
    /// Commands, the store and the key ring.
    pub app: Arc<App>,
    /// The token table.
    pub tokens: Arc<TokenStore>,
}

/// Opens the store at `db` with `options`, its key ring (with the master key from `master`)
/// and its token table: what the service and the command-line tools that record commands
/// need.
pub async fn open(
    db: &str,
    master: MasterKeySource,
    options: StoreOptions,
) -> Result<Opened, BuildError> {
    let store = caretrail_store::connect(db, options)
        .await
        .map_err(|source| BuildError::Store {
            url: db.to_owned(),
            source,
        })?;
    let master = master.load()?;
    let ring = KeyRing::open(store.as_ref(), master)
        .await
        .map_err(BuildError::KeyRing)?;
    let tokens = TokenStore::open(store.as_ref())
        .await
        .map_err(BuildError::Tokens)?;
    let app = App::new(
        store,
        Arc::new(ring),
        Policy::default(),
        Arc::new(SystemClock),
    );
    Ok(Opened {
        app: Arc::new(app),
        tokens: Arc::new(tokens),
    })
}

/// Records the demo when the store is empty; says whether it did. The commands run with the
/// demo's own "today" (2021-10-30) so that dates the article leaves open default as they would
/// have then.
async fn seed_demo(app: &App) -> Result<bool, BuildError> {
    let store = app.store();
    if store.head().await.map_err(BuildError::Head)?.position > 0 {
        return Ok(false);
    }
    let clock = demo::today()
        .and_hms_opt(4, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let demo_app = App::new(
        store.clone(),
        app.keys().clone(),
        app.policy().clone(),
        Arc::new(FixedClock(clock)),
    );
    for cmd in demo::october_2021() {
        // A fresh command id each (`CommandMeta::new`).
        demo_app
            .execute(&cmd, &CommandMeta::new(Uuid::nil(), "system"))
            .await
            .map_err(|source| BuildError::Demo {
                command: cmd.name(),
                source,
            })?;
    }
    Ok(true)
}

/// A built service: everything open, the background tasks running, the listener bound, not yet
/// serving. [`Application::state_mut`] adjusts what the router will share before it is served.
pub struct Application {
    state: AppState,
    projector: Arc<Projector>,
    auditor: Arc<Auditor>,
    listener: TcpListener,
    limits: ConnectionLimits,
    tasks: Vec<JoinHandle<()>>,
    /// Flipped by the server when it stops: live streams end and the background tasks stop.
    stop: watch::Sender<bool>,
    demo_recorded: bool,
}

impl Application {
    /// Builds the service as `config` says (see the module documentation for the order).
    #[tracing::instrument(name = "application.build", skip_all)]
    pub async fn build(config: Config) -> Result<Self, BuildError> {
        let opened = open(&config.db, config.master, config.store).await?;
        // Seeded before the projector and the audit tree start, so the first checkpoint
        // covers it.
        let demo_recorded = config.demo && seed_demo(&opened.app).await?;
        let (stop, stop_rx) = watch::channel(false);
        let mut state = AppState::new(opened.app.clone(), opened.tokens.clone(), stop_rx.clone());
        if let Some(url) = config.public_url.clone() {
            state.tokens.sessions.set_public_url(url);
        }
        if config.limits.idle_timeout <= state.heartbeat {
            return Err(BuildError::IdleTimeout {
                heartbeat: state.heartbeat,
            });
        }
        let store = opened.app.store().clone();
        // The dashboards' projector, the audit tree follower and the checkpointer run for as
        // long as the server does, each retrying its own failures and reporting into the
        // store's health registry (which `/readyz` and `/metrics` read).
        let projector = Arc::new(
            Projector::open(store.clone())
                .await
                .map_err(BuildError::Projections)?,
        );
        if config.catch_up {
            projector
                .catch_up()
                .await
                .map_err(BuildError::Projections)?;
        }
        state.read = Some(ReadSide::new(projector.clone()));
        let auditor = Arc::new(
            Auditor::open(store, config.audit)
                .await
                .map_err(BuildError::Audit)?,
        );
        state.auditor = Some(auditor.clone());
        state.ready = config.ready;
        let mut extra = Vec::new();
        if let Some(engine) = config.integrations {
            let integrations = caretrail_integrations::Integrations::open(
                opened.app.store().clone(),
                opened.app.keys().clone(),
                opened.app.clone(),
                engine,
            )
            .await
            .map_err(BuildError::Integrations)?;
            if config.catch_up {
                integrations
                    .catch_up()
                    .await
                    .map_err(BuildError::Integrations)?;
            }
            extra = integrations.spawn(stop_rx.clone());
            state.integrations = Some(integrations);
        }
        // Stopped with the server: an unfinished batch rolls back with its checkpoint and is
        // done again on the next start.
        let tasks = crate::background::spawn(
            crate::background::Tasks {
                projector: Some(projector.clone()),
                erasures: Some(opened.app.clone()),
                auditor: config.tree_follower.then(|| auditor.clone()),
                checkpoint_every: config.checkpoint_every,
                metrics: Some(state.metrics.clone()),
            },
            stop_rx,
        );
        let mut tasks = tasks;
        tasks.extend(extra);
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| BuildError::Listen {
                    addr: config.listen,
                    source,
                })?;
        Ok(Self {
            state,
            projector,
            auditor,
            listener,
            limits: config.limits,
            tasks,
            stop,
            demo_recorded,
        })
    }

    /// The bound address (the port chosen when the configured one was 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Whether the build recorded the demo (it does only on an empty store).
    pub fn demo_recorded(&self) -> bool {
        self.demo_recorded
    }

    /// What the router shares (the demo's accounts are made through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// What every handler will share, to adjust before serving (tests shorten the heartbeat,
    /// change rate limits, or take the read side away).
    pub fn state_mut(&mut self) -> &mut AppState {
        &mut self.state
    }

    /// The application (commands, the store, the key ring).
    pub fn app(&self) -> &Arc<App> {
        &self.state.app
    }

    /// The token table.
    pub fn tokens(&self) -> &Arc<TokenStore> {
        &self.state.tokens
    }

    /// The dashboards' projector (running in the background).
    pub fn projector(&self) -> &Arc<Projector> {
        &self.projector
    }

    /// The audit tree and checkpoints.
    pub fn auditor(&self) -> &Arc<Auditor> {
        &self.auditor
    }

    fn into_server(self) -> (Server, Vec<JoinHandle<()>>, AppState) {
        let state = self.state.clone();
        let server = Server::from_listener(self.listener, router(self.state), self.stop)
            .with_limits(self.limits);
        (server, self.tasks, state)
    }

    /// Serves until `stop` resolves; then stops accepting, lets in-flight requests finish,
    /// ends live streams, waits for the background tasks, closes the connection pools and,
    /// on SQLite, folds the write-ahead log into the database file, so that the stopped
    /// database is one file.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (server, tasks, state) = self.into_server();
        server.run_until(stop).await?;
        // The server flipped the stop channel: the background tasks saw it too.
        for task in tasks {
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("a background task did not stop within 10 s");
            }
        }
        // The key ring, the tokens, the read models and the audit tables share the store's
        // pool: one close covers them all.
        match state.app.store().close().await {
            Ok(true) => tracing::info!("stopped; the database file is complete"),
            Ok(false) => {
                tracing::warn!("stopped; another connection kept part of the write-ahead log")
            }
            Err(e) => tracing::warn!(error = %e, "stopped; the write-ahead log was not folded in"),
        }
        Ok(())
    }

    /// Serves on a task of its own until the returned guard is dropped, then shuts down as
    /// [`Application::run_until_stopped`] does, except that the pools stay open (whoever still
    /// holds the application may use them). For tests and benchmarks.
    pub fn spawn(self) -> Running {
        let (guard, dropped) = tokio::sync::oneshot::channel::<()>();
        let (server, _tasks, _) = self.into_server();
        tokio::spawn(async move {
            let stop = async move {
                let _ = dropped.await;
            };
            if let Err(e) = server.run_until(stop).await {
                tracing::warn!(error = %e, "the spawned server failed");
            }
        });
        Running { _guard: guard }
    }
}

/// A service started with [`Application::spawn`]: it stops when this is dropped.
pub struct Running {
    _guard: tokio::sync::oneshot::Sender<()>,
}
