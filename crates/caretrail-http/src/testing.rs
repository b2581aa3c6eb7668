//! A running service for end-to-end tests: the article's October 2021 visits recorded through
//! the real command path, the dashboard projector following the log, the audit tree, and the
//! router served on a free port over a `caretrail_store::testing` database, built by the same
//! [`Application::build`] as `caretrail serve --demo`. Used by the HTTP tests, the resilience
//! tests and the browser tests.
//!
//! Behind the `testing` feature: tests enable it through their dev-dependencies, and a service
//! built without it does not carry it.

use std::sync::Arc;

use caretrail_app::{App, MasterKey};
use caretrail_audit::{Auditor, KeySource};
use caretrail_store::StoreOptions;
use caretrail_store::testing::Harness;

use crate::application::{Application, Config, MasterKeySource, Running};
use crate::operations::Operations;
use crate::{AppState, TokenStore};

/// The service, alive until dropped.
pub struct DemoService {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Commands, the store and the key ring the service runs on.
    pub app: Arc<App>,
    /// The service's token table (tests create their tokens here).
    pub tokens: Arc<TokenStore>,
    /// The audit tree and checkpoints.
    pub auditor: Arc<Auditor>,
    /// The server's long operations (tests hold their starts to observe them running).
    pub operations: Arc<Operations>,
    /// The integrations (subscriptions and their delivery).
    pub integrations: Arc<caretrail_integrations::Integrations>,
    _running: Running,
    _keys: tempfile::TempDir,
}

/// How the test service is opened and which background tasks run.
#[derive(Clone, Debug, Default)]
pub struct DemoOptions {
    /// The database URL the service opens (default: the harness's); a test points it through
    /// a proxy it controls, or at a small file system it fills.
    pub url: Option<String>,
    /// The store's tuning and timeouts.
    pub store: StoreOptions,
    /// Run the audit tree follower (the projector always runs).
    pub tree_follower: bool,
    /// Run the checkpointer at this interval (it needs the tree follower's auditor).
    pub checkpoint_every: Option<std::time::Duration>,
    /// The integrations' engine; `None` gives [`test_engine`]'s.
    pub integrations: Option<caretrail_integrations::EngineConfig>,
}

/// The integrations' engine as tests run it: webhooks may go to the tests' receivers on
/// 127.0.0.1 over plain HTTP, retries come after 50, 100 and 200 ms (then the subscription is
/// disabled), attempts time out after 2 s, and the supervisor, the progress writer and the
/// leases run on short periods so a test sees their effects quickly.
pub fn test_engine() -> caretrail_integrations::EngineConfig {
    use std::time::Duration;
    let mut engine = caretrail_integrations::EngineConfig::new("urn:caretrail:test");
    engine.webhook.allow_private = true;
    engine.webhook.timeout = Duration::from_secs(2);
    engine.retry = vec![
        Duration::from_millis(50),
        Duration::from_millis(100),
        Duration::from_millis(200),
    ];
    engine.tick = Duration::from_millis(100);
    engine.flush_every = Duration::from_millis(50);
    engine.lease_ttl = Duration::from_secs(2);
    engine
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
    let key_dir = tempfile::tempdir().expect("key dir");
    let mut config = Config::new(url, MasterKeySource::Key(master));
    config.store = options.store;
    config.audit.key = Some(KeySource::File(key_dir.path().join("audit.key")));
    config.demo = true;
    // The tests read the dashboards from their first request on.
    config.catch_up = true;
    config.tree_follower = options.tree_follower;
    config.checkpoint_every = options.checkpoint_every;
    config.integrations = Some(options.integrations.clone().unwrap_or_else(test_engine));
    let mut application = Application::build(config)
        .await
        .unwrap_or_else(|e| panic!("build the {} service: {}", h.backend, error_chain(&e)));
    let app = application.app().clone();
    let tokens = application.tokens().clone();
    let auditor = application.auditor().clone();
    tune(application.state_mut());
    let addr = application.local_addr().expect("bound address");
    let operations = application.state_mut().operations.clone();
    let integrations = application
        .state_mut()
        .integrations
        .clone()
        .expect("the test service runs the integrations");
    DemoService {
        base: format!("http://{addr}"),
        app,
        tokens,
        auditor,
        operations,
        integrations,
        _running: application.spawn(),
        _keys: key_dir,
    }
}

/// An error and its sources on one line, as a panic message.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
