//! A running service for end-to-end tests: the article's October 2021 visits recorded through
//! the real command path, the dashboard projector following the log, the audit tree, and the
//! router served on a free port over a `caretrail_store::testing` database, wired the way
//! `caretrail serve --demo` wires them (the background tasks through [`crate::background`]).
//! Used by the HTTP tests, the resilience tests and the browser tests.

use std::net::SocketAddr;
use std::sync::Arc;

use caretrail_app::{App, CommandMeta, FixedClock, KeyRing, MasterKey, SystemClock};
use caretrail_audit::{AuditConfig, Auditor, KeySource};
use caretrail_domain::{Policy, demo};
use caretrail_projections::Projector;
use caretrail_store::StoreOptions;
use caretrail_store::testing::Harness;
use tokio::sync::watch;
use uuid::Uuid;

use crate::dashboard::ReadSide;
use crate::operations::Operations;
use crate::{AppState, Server, TokenStore, router};

/// The service, alive until dropped.
pub struct DemoService {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub app: Arc<App>,
    pub tokens: Arc<TokenStore>,
    pub auditor: Arc<Auditor>,
    /// The server's long operations (tests hold their starts to observe them running).
    pub operations: Arc<Operations>,
    _keys: tempfile::TempDir,
    _stop: watch::Sender<bool>,
}

/// How the test service is opened and which background tasks run.
#[derive(Clone, Debug, Default)]
pub struct DemoOptions {
    /// The database URL the service opens (default: the harness's); a test points it through
    /// a proxy it controls, or at a small file system it fills.
    pub url: Option<String>,
    pub store: StoreOptions,
    /// Run the audit tree follower (the projector always runs).
    pub tree_follower: bool,
    /// Run the checkpointer at this interval (it needs the tree follower's auditor).
    pub checkpoint_every: Option<std::time::Duration>,
}

/// Records the demo on `h`'s database (with the demo's own "today"), then serves it on the
/// real clock; `tune` adjusts the state (heartbeat, rate limit) before the router is built.
/// Panics on failure: it is test set-up.
pub async fn demo_service(
    h: &Harness,
    master: MasterKey,
    tune: impl FnOnce(&mut AppState),
) -> DemoService {
    demo_service_with(h, master, DemoOptions::default(), tune).await
}

/// [`demo_service`] with a URL, store options and background tasks of the test's choosing.
pub async fn demo_service_with(
    h: &Harness,
    master: MasterKey,
    options: DemoOptions,
    tune: impl FnOnce(&mut AppState),
) -> DemoService {
    let url = options.url.clone().unwrap_or_else(|| h.url.clone());
    let store = caretrail_store::connect(&url, options.store)
        .await
        .unwrap_or_else(|e| panic!("open {} store: {e}", h.backend));
    let keys = Arc::new(
        KeyRing::open(store.database(), master)
            .await
            .expect("key ring"),
    );
    let tokens = Arc::new(
        TokenStore::open(store.database())
            .await
            .expect("token table"),
    );
    let today = demo::today().and_hms_opt(4, 0, 0).expect("noon").and_utc();
    let seeder = App::new(
        store.clone(),
        keys.clone(),
        Policy::default(),
        Arc::new(FixedClock(today)),
    );
    for cmd in demo::october_2021() {
        seeder
            .execute(&cmd, &CommandMeta::new(Uuid::nil(), "system"))
            .await
            .expect("demo command");
    }
    let app = Arc::new(App::new(
        store,
        keys,
        Policy::default(),
        Arc::new(SystemClock),
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut state = AppState::new(app.clone(), tokens.clone(), stop_rx);
    let projector = Arc::new(
        Projector::open(app.store().clone())
            .await
            .expect("projector"),
    );
    projector.catch_up().await.expect("projector catches up");
    state.read = Some(ReadSide::new(projector.clone()));
    let key_dir = tempfile::tempdir().expect("key dir");
    let mut config = AuditConfig::for_url(&url);
    config.key = Some(KeySource::File(key_dir.path().join("audit.key")));
    let auditor = Arc::new(
        Auditor::open(app.store().clone(), config)
            .await
            .expect("auditor"),
    );
    state.auditor = Some(auditor.clone());
    crate::background::spawn(
        crate::background::Tasks {
            projector: Some(projector),
            auditor: options.tree_follower.then(|| auditor.clone()),
            checkpoint_every: options.checkpoint_every,
            metrics: Some(state.metrics.clone()),
        },
        stop_tx.subscribe(),
    );
    tune(&mut state);
    let operations = state.operations.clone();
    let (server_stop, _) = watch::channel(false);
    let server = Server::bind(
        "127.0.0.1:0".parse::<SocketAddr>().expect("address"),
        router(state),
        server_stop,
    )
    .await
    .expect("bind");
    let addr = server.local_addr().expect("bound address");
    tokio::spawn(server.run_until(std::future::pending()));
    DemoService {
        base: format!("http://{addr}"),
        app,
        tokens,
        auditor,
        operations,
        _keys: key_dir,
        _stop: stop_tx,
    }
}
