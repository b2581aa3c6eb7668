//! [`Integrations`]: what the HTTP layer calls. Each change to a subscription is a command
//! (so it is in the log, with who asked), followed by a wait until the registry shows it, so a
//! read right after a change sees it.
//!
//! A webhook's signing secret is made here, sealed under the subscription's own data key and
//! stored *before* the command that needs it (so the engine never finds a webhook without its
//! secret), and removed again if the command is refused. It is answered once, to the creator
//! (or the rotator); it is never in the log, in a response after that, or in a log line.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use caretrail_app::{App, AppError, CommandMeta, KeyRing};
use caretrail_domain::command::{
    CreateSubscription, DeleteSubscription, PauseSubscription, ResumeSubscription,
    RewindSubscription, RotateSubscriptionSecret,
};
use caretrail_domain::subscription::{Delivery, Filter};
use caretrail_domain::{Command, SubscriptionId};
use caretrail_store::{AppendResult, EventStore};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::db::{AttemptRow, Db, SubscriptionRow};
use crate::engine::{EngineConfig, Inner, Report, secret_aad};
use crate::error::{IntegrationError, Result};
use crate::metrics::IntegrationMetrics;
use crate::registry::Registry;
use crate::webhook::Secret;

/// How long a change waits for the registry to show it before answering anyway.
const SHOW_WITHIN: Duration = Duration::from_secs(5);

/// A request to create a subscription (`POST /api/v1/subscriptions`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// A name people recognise it by (at most 100 characters).
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    /// Which events it takes (all when left out).
    #[serde(default)]
    pub filter: Filter,
    /// Deliver the events after this log position; the current head when left out (only
    /// what happens from now on). `0` delivers the whole log.
    #[serde(default)]
    pub start_after: Option<u64>,
    /// Where the events go.
    pub delivery: Delivery,
    /// The integration token that may read this subscription's status.
    #[serde(default)]
    pub owner_token_id: Option<Uuid>,
}

/// A subscription as the API shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SubscriptionStatus {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Which events it takes.
    pub filter: Filter,
    /// Where they go.
    pub delivery: Delivery,
    /// The integration token that may read its status.
    pub owner_token_id: Option<Uuid>,
    /// `active`, `paused`, `failing` (attempts failing, retries scheduled) or `disabled`.
    pub state: &'static str,
    /// Why it is disabled (`gone`, `failing`, `administrator`), when it is.
    pub disabled_reason: Option<String>,
    /// Every matching event up to this log position has been acknowledged.
    pub delivered_position: u64,
    /// The log's head now.
    pub head: u64,
    /// Log positions after the cursor (an upper bound of the events still to deliver).
    pub lag_events: u64,
    /// How old the oldest event after the cursor is, in seconds (0 when caught up).
    pub lag_seconds: f64,
    /// Failed attempts since the last success.
    pub consecutive_failures: u64,
    /// When the last attempt was made.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The last attempt's HTTP status.
    pub last_status: Option<u16>,
    /// What went wrong in the last attempt, if it failed.
    pub last_error: Option<String>,
    /// When the next attempt is due, while failing.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Events delivered, in all.
    pub delivered_total: u64,
    /// Attempts failed, in all.
    pub failed_total: u64,
    /// The signing secret's generation (webhooks).
    pub secret_generation: u32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The node delivering it now, if any.
    pub node: Option<String>,
}

/// A created subscription and its secret, shown this once.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Created {
    /// The subscription.
    #[serde(flatten)]
    pub subscription: SubscriptionStatus,
    /// The webhook signing secret (`whsec_...`), shown only in this answer; null for NATS.
    pub secret: Option<String>,
}

/// A rotated secret, shown this once.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Rotated {
    /// The subscription.
    #[serde(flatten)]
    pub subscription: SubscriptionStatus,
    /// The new signing secret, shown only in this answer.
    pub secret: String,
    /// Until when the previous secret signs too.
    pub previous_valid_until: DateTime<Utc>,
}

/// One delivery attempt as the API shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AttemptOut {
    /// The event's position.
    pub position: u64,
    /// The event's id (the `webhook-id`).
    pub event_id: Uuid,
    /// When.
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// How long the attempt took, in milliseconds.
    pub latency_ms: f64,
    /// `delivered`, `retry` or `gone`.
    pub outcome: String,
    /// What went wrong.
    pub error: Option<String>,
    /// The first kilobyte of the receiver's answer.
    pub response_excerpt: Option<String>,
}

/// The integrations of one service.
pub struct Integrations {
    inner: Arc<Inner>,
    registry: Arc<Registry>,
    sinks: Mutex<Option<mpsc::UnboundedReceiver<Report>>>,
}

impl std::fmt::Debug for Integrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Integrations")
    }
}

fn micros(t: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(t).ok_or(IntegrationError::Corrupt {
        table: "integration_subscriptions",
        column: "a time column",
    })
}

fn unsigned(v: i64, column: &'static str) -> Result<u64> {
    u64::try_from(v).map_err(|_| IntegrationError::Corrupt {
        table: "integration_subscriptions",
        column,
    })
}

/// The state a row is in, as the API names it.
pub fn state_of(row: &SubscriptionRow) -> &'static str {
    if row.deleted != 0 {
        "deleted"
    } else if row.disabled_reason.is_some() {
        "disabled"
    } else if row.paused != 0 {
        "paused"
    } else if row.consecutive_failures > 0 {
        "failing"
    } else {
        "active"
    }
}

impl Integrations {
    /// Opens the integrations' tables in `store`'s database; nothing runs until
    /// [`Integrations::spawn`].
    pub async fn open(
        store: Arc<dyn EventStore>,
        keys: Arc<KeyRing>,
        app: Arc<App>,
        cfg: EngineConfig,
    ) -> Result<Arc<Self>> {
        let db = Db::open(store.as_ref()).await?;
        let registry = Arc::new(Registry::new(store.clone()));
        let metrics = Arc::new(IntegrationMetrics::default());
        let (inner, sinks) = Inner::new(store, keys, app, db, cfg, metrics, registry.clone())?;
        Ok(Arc::new(Self {
            inner,
            registry,
            sinks: Mutex::new(Some(sinks)),
        }))
    }

    /// Starts the registry and the delivery engine; both stop when `stop` turns true.
    pub fn spawn(&self, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        let mut handles = vec![tokio::spawn(self.registry.clone().run(stop.clone()))];
        if let Some(sinks) = self.sinks.lock().unwrap_or_else(|e| e.into_inner()).take() {
            handles.push(tokio::spawn(crate::engine::run(
                self.inner.clone(),
                sinks,
                self.registry.changes(),
                stop,
            )));
        }
        handles
    }

    /// Applies the log's subscription events up to now (tests, tools).
    pub async fn catch_up(&self) -> Result<u64> {
        self.registry.catch_up().await
    }

    /// The metrics.
    pub fn metrics(&self) -> &IntegrationMetrics {
        &self.inner.metrics
    }

    /// Whether NATS delivery is configured.
    pub fn nats_configured(&self) -> bool {
        self.inner.cfg.nats.is_some()
    }

    async fn run(&self, command: Command, meta: &CommandMeta) -> Result<AppendResult> {
        let result = self.inner.app.execute(&command, meta).await?;
        if let Some(p) = result.events.last().map(|e| e.position)
            && !self.registry.wait_for(p, SHOW_WITHIN).await
        {
            tracing::warn!(
                position = p,
                "subscription registry is behind; answering anyway"
            );
        }
        Ok(result)
    }

    async fn seal_secret(&self, id: Uuid, generation: u32) -> Result<String> {
        let secret = Secret::generate().map_err(|_| IntegrationError::Random)?;
        let whsec = secret.to_whsec();
        let sealed = self
            .inner
            .keys
            .seal(id, secret_aad(i64::from(generation)), &whsec)
            .await?;
        let sealed = serde_json::to_string(&sealed)?;
        match self
            .inner
            .db
            .insert_secret(id, generation, &sealed, Utc::now())
            .await
        {
            Ok(()) => Ok(whsec),
            // Two rotations at once both chose this generation; the other stored its secret
            // first and wins. The same answer the command gives when it loses the race.
            Err(IntegrationError::Database(sqlx::Error::Database(e)))
                if e.is_unique_violation() =>
            {
                Err(AppError::Rejected(
                    caretrail_domain::Rejection::SubscriptionSecretGenerationStale,
                )
                .into())
            }
            Err(e) => Err(e),
        }
    }

    /// Creates a subscription: `c` as parsed from the request, with the id and start chosen
    /// by the caller (the HTTP layer: a fresh id, the head unless the request gave a start).
    pub async fn create(&self, c: CreateSubscription, meta: &CommandMeta) -> Result<Created> {
        match &c.delivery {
            Delivery::Webhook { url } => {
                // The shape first (the domain's rule and message), then the address.
                caretrail_domain::subscription::check_url_shape(url)
                    .map_err(|r| IntegrationError::App(AppError::Rejected(r)))?;
                let parsed = self.inner.webhook.check_url(url)?;
                self.check_resolves(&parsed).await?;
            }
            Delivery::Nats { .. } if !self.nats_configured() => {
                return Err(IntegrationError::NatsNotConfigured);
            }
            Delivery::Nats { .. } => {}
        }
        let head = self.inner.store.head().await?.position;
        if c.start_after > head {
            return Err(IntegrationError::PositionAfterHead { head });
        }
        let id = c.subscription_id.uuid();
        let secret = match c.delivery {
            Delivery::Webhook { .. } => Some(self.seal_secret(id, 1).await?),
            Delivery::Nats { .. } => None,
        };
        if let Err(e) = self.run(Command::CreateSubscription(c), meta).await {
            if secret.is_some() {
                let _ = self.inner.db.delete_secret(id, 1).await;
            }
            return Err(e);
        }
        let subscription = self.status(id).await?.ok_or(IntegrationError::NotShown)?;
        Ok(Created {
            subscription,
            secret,
        })
    }

    /// Refuses at creation a host name that resolves to a non-public address, unless private
    /// addresses are allowed. (Every attempt checks the addresses again as it connects: a
    /// name may change what it resolves to.) A name that does not resolve now is accepted:
    /// its receiver may not be set up yet, and delivery retries.
    async fn check_resolves(&self, url: &url::Url) -> Result<()> {
        if self.inner.cfg.webhook.allow_private {
            return Ok(());
        }
        let (Some(url::Host::Domain(host)), Some(port)) = (url.host(), url.port_or_known_default())
        else {
            return Ok(());
        };
        if let Ok(addrs) = tokio::net::lookup_host((host, port)).await {
            for addr in addrs {
                if !crate::webhook::is_public(addr.ip()) {
                    return Err(crate::webhook::UrlRefused::PrivateAddress.into());
                }
            }
        }
        Ok(())
    }

    /// Every subscription not deleted.
    pub async fn list(&self) -> Result<Vec<SubscriptionStatus>> {
        let rows = self.inner.db.list().await?;
        let head = self.inner.store.head().await?.position;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(self.to_status(row, head).await?);
        }
        Ok(out)
    }

    /// One subscription; `None` when unknown or deleted.
    pub async fn status(&self, id: Uuid) -> Result<Option<SubscriptionStatus>> {
        let Some(row) = self.inner.db.get(id).await? else {
            return Ok(None);
        };
        if row.deleted != 0 {
            return Ok(None);
        }
        let head = self.inner.store.head().await?.position;
        Ok(Some(self.to_status(&row, head).await?))
    }

    async fn to_status(&self, row: &SubscriptionRow, head: u64) -> Result<SubscriptionStatus> {
        let id = row.uuid()?;
        let cursor = row.cursor()?;
        let lag_events = head.saturating_sub(cursor);
        let lag_seconds = if lag_events == 0 {
            0.0
        } else {
            match self
                .inner
                .store
                .read_positions(&[cursor + 1])
                .await?
                .first()
            {
                Some(e) => (Utc::now() - e.recorded_at)
                    .to_std()
                    .map_or(0.0, |d| d.as_secs_f64()),
                None => 0.0,
            }
        };
        self.inner.metrics.lag(&row.id, lag_events, lag_seconds);
        let delivery = match row.kind.as_str() {
            "webhook" => Delivery::Webhook {
                url: row.target.clone(),
            },
            "nats" => Delivery::Nats {
                subject_prefix: Some(row.target.clone()),
            },
            _ => {
                return Err(IntegrationError::Corrupt {
                    table: "integration_subscriptions",
                    column: "kind",
                });
            }
        };
        let owner_token_id = match &row.owner_token_id {
            Some(t) => Some(Uuid::parse_str(t).map_err(|_| IntegrationError::Corrupt {
                table: "integration_subscriptions",
                column: "owner_token_id",
            })?),
            None => None,
        };
        Ok(SubscriptionStatus {
            id,
            name: row.name.clone(),
            filter: Filter {
                types: row.types()?,
                categories: row.categories()?,
            },
            delivery,
            owner_token_id,
            state: state_of(row),
            disabled_reason: row.disabled_reason.clone(),
            delivered_position: cursor,
            head,
            lag_events,
            lag_seconds,
            consecutive_failures: unsigned(row.consecutive_failures, "consecutive_failures")?,
            last_attempt_at: row.last_attempt_at.map(micros).transpose()?,
            last_status: row
                .last_status
                .map(|s| {
                    u16::try_from(s).map_err(|_| IntegrationError::Corrupt {
                        table: "integration_subscriptions",
                        column: "last_status",
                    })
                })
                .transpose()?,
            last_error: row.last_error.clone(),
            next_attempt_at: row.next_attempt_at.map(micros).transpose()?,
            delivered_total: unsigned(row.delivered_total, "delivered_total")?,
            failed_total: unsigned(row.failed_total, "failed_total")?,
            secret_generation: u32::try_from(row.generation).map_err(|_| {
                IntegrationError::Corrupt {
                    table: "integration_subscriptions",
                    column: "generation",
                }
            })?,
            created_at: micros(row.created_at)?,
            node: row.lease_owner.clone(),
        })
    }

    async fn existing(&self, id: Uuid) -> Result<SubscriptionStatus> {
        self.status(id).await?.ok_or(IntegrationError::Unknown(id))
    }

    /// Pauses a subscription.
    pub async fn pause(&self, id: Uuid, meta: &CommandMeta) -> Result<SubscriptionStatus> {
        self.existing(id).await?;
        let c = PauseSubscription {
            subscription_id: SubscriptionId(id),
        };
        self.run(c.into(), meta).await?;
        self.existing(id).await
    }

    /// Resumes a paused or disabled subscription.
    pub async fn resume(&self, id: Uuid, meta: &CommandMeta) -> Result<SubscriptionStatus> {
        self.existing(id).await?;
        let c = ResumeSubscription {
            subscription_id: SubscriptionId(id),
        };
        self.run(c.into(), meta).await?;
        self.existing(id).await
    }

    /// Delivers again from the event after `after`.
    pub async fn rewind(
        &self,
        id: Uuid,
        after: u64,
        meta: &CommandMeta,
    ) -> Result<SubscriptionStatus> {
        self.existing(id).await?;
        let head = self.inner.store.head().await?.position;
        if after > head {
            return Err(IntegrationError::PositionAfterHead { head });
        }
        let c = RewindSubscription {
            subscription_id: SubscriptionId(id),
            after,
        };
        self.run(c.into(), meta).await?;
        self.existing(id).await
    }

    /// Makes a new signing secret; the previous one signs too for `grace_seconds`.
    pub async fn rotate(
        &self,
        id: Uuid,
        grace_seconds: Option<u32>,
        meta: &CommandMeta,
    ) -> Result<Rotated> {
        let current = self.existing(id).await?;
        if !matches!(current.delivery, Delivery::Webhook { .. }) {
            return Err(
                AppError::Rejected(caretrail_domain::Rejection::SubscriptionHasNoSecret).into(),
            );
        }
        let generation = current
            .secret_generation
            .checked_add(1)
            .ok_or(IntegrationError::OutOfRange)?;
        let secret = self.seal_secret(id, generation).await?;
        let c = RotateSubscriptionSecret {
            subscription_id: SubscriptionId(id),
            generation,
            grace_seconds,
        };
        let result = match self.run(c.into(), meta).await {
            Ok(r) => r,
            Err(e) => {
                let _ = self.inner.db.delete_secret(id, generation).await;
                return Err(e);
            }
        };
        let grace = grace_seconds.unwrap_or(caretrail_domain::subscription::DEFAULT_GRACE_SECONDS);
        Ok(Rotated {
            subscription: self.existing(id).await?,
            secret,
            previous_valid_until: result.recorded_at + chrono::Duration::seconds(i64::from(grace)),
        })
    }

    /// Deletes a subscription and destroys its secrets.
    pub async fn delete(&self, id: Uuid, meta: &CommandMeta) -> Result<()> {
        self.existing(id).await?;
        let c = DeleteSubscription {
            subscription_id: SubscriptionId(id),
        };
        self.run(c.into(), meta).await?;
        Ok(())
    }

    /// The subscription's most recent attempts, newest first (at most `limit`, ≤ 100).
    pub async fn attempts(&self, id: Uuid, limit: u32) -> Result<Vec<AttemptOut>> {
        self.existing(id).await?;
        let limit = i64::from(limit.min(crate::db::ATTEMPTS_KEPT as u32));
        let rows = self.inner.db.attempts(id, limit).await?;
        rows.into_iter().map(attempt_out).collect()
    }
}

fn attempt_out(a: AttemptRow) -> Result<AttemptOut> {
    let corrupt = |column| IntegrationError::Corrupt {
        table: "integration_attempts",
        column,
    };
    Ok(AttemptOut {
        position: u64::try_from(a.position).map_err(|_| corrupt("position"))?,
        event_id: Uuid::parse_str(&a.event_id).map_err(|_| corrupt("event_id"))?,
        attempted_at: DateTime::from_timestamp_micros(a.attempted_at)
            .ok_or_else(|| corrupt("attempted_at"))?,
        status: a
            .status
            .map(|s| u16::try_from(s).map_err(|_| corrupt("status")))
            .transpose()?,
        latency_ms: a.latency_us as f64 / 1000.0,
        outcome: a.outcome,
        error: a.error,
        response_excerpt: a.response_excerpt,
    })
}
