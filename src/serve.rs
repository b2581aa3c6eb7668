//! `caretrail serve` and `caretrail token`: open the store, the key ring and the token table,
//! and run the HTTP service (optionally seeded with the article's October 2021 visits), built
//! by `caretrail_http::Application`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use caretrail_domain::demo;
use caretrail_http::application::{self, Application, Config, MasterKeySource};
use caretrail_http::auth::Revocation;
use caretrail_http::{ConnectionLimits, Role, TokenStore, shutdown_signal};
use caretrail_store::{ReadyBounds, StoreOptions, Timeouts, connect};
use uuid::Uuid;

/// Options of `serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "CARETRAIL_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Record the article's October 2021 visits if the store is empty, and print a sign-in URL
    /// and an admin token.
    #[arg(long)]
    demo: bool,
    /// How often to sign an audit checkpoint (e.g. 60s, 5m).
    #[arg(long, env = "CARETRAIL_CHECKPOINT_EVERY", default_value = "60s", value_parser = parse_duration)]
    checkpoint_every: std::time::Duration,
    /// How long a client has to send a request's headers, from connecting or from its previous
    /// response (so also how long an idle keep-alive connection stays open).
    #[arg(long, env = "CARETRAIL_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    header_read_timeout: std::time::Duration,
    /// A connection on which no byte moves either way for this long is closed (longer than
    /// the event streams' 15 s heartbeat).
    #[arg(long, env = "CARETRAIL_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    idle_timeout: std::time::Duration,
    /// At most this many client connections at once (lowered to fit the open-file limit);
    /// more wait until one closes.
    #[arg(long, env = "CARETRAIL_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    #[command(flatten)]
    db: DbTuning,
    /// /readyz says not ready while a log consumer (dashboards, audit tree) is more events
    /// than this behind the head.
    #[arg(long, env = "CARETRAIL_READY_MAX_LAG_EVENTS", default_value_t = ReadyBounds::default().max_lag_events)]
    ready_max_lag_events: u64,
    /// ... or has stayed behind this long (e.g. 30s), or a task has been silent this long past
    /// its period.
    #[arg(long, env = "CARETRAIL_READY_MAX_LAG", default_value = "30s", value_parser = parse_duration)]
    ready_max_lag: Duration,
    #[command(flatten)]
    keys: KeyArgs,
    #[command(flatten)]
    integrations: IntegrationArgs,
    /// The URL people reach the server at, e.g. https://care.example.org behind a TLS proxy:
    /// with https the session cookie is Secure (named __Host-caretrail_session), and requests
    /// with the cookie must come from this origin. Without it: plain HTTP.
    #[arg(long, env = "CARETRAIL_PUBLIC_URL", value_parser = parse_public_url)]
    public_url: Option<caretrail_http::session::PublicUrl>,
}

fn parse_public_url(s: &str) -> Result<caretrail_http::session::PublicUrl, String> {
    caretrail_http::session::PublicUrl::parse(s)
        .ok_or_else(|| "expected an http:// or https:// URL with a host".to_owned())
}

/// How subscriptions are delivered.
#[derive(clap::Args, Clone)]
pub struct IntegrationArgs {
    /// Let webhooks go to plain http:// URLs and to loopback, private and link-local
    /// addresses (tests, a demo on one machine). Off by default: a webhook URL that resolves to
    /// such an address is refused, at creation and on every attempt (SSRF).
    #[arg(long, env = "CARETRAIL_WEBHOOK_ALLOW_PRIVATE")]
    webhook_allow_private: bool,
    /// How long one webhook attempt may take, connecting included (e.g. 10s).
    #[arg(long, env = "CARETRAIL_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    webhook_timeout: Duration,
    /// The delays between a webhook's failed attempts, comma-separated; after the last the
    /// subscription is disabled. Default: Standard Webhooks' schedule.
    #[arg(long, env = "CARETRAIL_WEBHOOK_RETRY_SCHEDULE", default_value = "5s,5m,30m,2h,5h,10h,10h", value_parser = parse_schedule)]
    webhook_retry_schedule: Schedule,
    /// NATS server for subscriptions of kind `nats` (e.g. nats://127.0.0.1:4222).
    #[arg(long, env = "CARETRAIL_NATS_URL")]
    nats_url: Option<String>,
    /// The JetStream stream NATS subscriptions publish into (created if missing).
    #[arg(long, env = "CARETRAIL_NATS_STREAM", default_value = "CARETRAIL")]
    nats_stream: String,
    /// This node's name in subscription leases (default: a fresh id per start).
    #[arg(long, env = "CARETRAIL_NODE")]
    node: Option<String>,
}

/// A retry schedule.
#[derive(Clone, Debug)]
pub struct Schedule(Vec<Duration>);

/// `5s,5m,30m`: durations as `parse_duration` reads them, at least one.
fn parse_schedule(s: &str) -> Result<Schedule, String> {
    let delays = s
        .split(',')
        .map(|d| parse_duration(d.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    if delays.is_empty() {
        return Err("the schedule needs at least one delay".into());
    }
    Ok(Schedule(delays))
}

impl IntegrationArgs {
    fn apply(&self, engine: &mut caretrail_integrations::EngineConfig) {
        engine.webhook.allow_private = self.webhook_allow_private;
        engine.webhook.timeout = self.webhook_timeout;
        engine.retry = self.webhook_retry_schedule.0.clone();
        if let Some(url) = &self.nats_url {
            let mut nats = caretrail_integrations::nats::JetStreamConfig::new(url.clone());
            nats.stream = self.nats_stream.clone();
            engine.nats = Some(nats);
        }
        if let Some(node) = &self.node {
            engine.node = node.clone();
        }
    }
}

impl ServeArgs {
    fn ready_bounds(&self) -> ReadyBounds {
        ReadyBounds {
            max_lag_events: self.ready_max_lag_events,
            max_lag: self.ready_max_lag,
        }
    }
}

/// How long the service waits on PostgreSQL before it answers 503 (see
/// `caretrail_store::Timeouts` for why the defaults are what they are).
#[derive(clap::Args, Clone)]
pub struct DbTuning {
    /// Longest wait for a database connection, including connecting (e.g. 1s, 500ms).
    #[arg(long, env = "CARETRAIL_DB_ACQUIRE_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    db_acquire_timeout: Duration,
    /// PostgreSQL statement_timeout; the client gives up on a silent connection 1 s later.
    #[arg(long, env = "CARETRAIL_DB_STATEMENT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    db_statement_timeout: Duration,
    /// PostgreSQL idle_in_transaction_session_timeout.
    #[arg(long, env = "CARETRAIL_DB_IDLE_IN_TRANSACTION_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    db_idle_in_transaction_timeout: Duration,
    /// PostgreSQL tcp_keepalives_idle for the server's side of each connection.
    #[arg(long, env = "CARETRAIL_DB_KEEPALIVE", default_value = "10s", value_parser = parse_duration)]
    db_keepalive: Duration,
}

impl DbTuning {
    /// Store options with these timeouts.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            timeouts: Timeouts {
                acquire: self.db_acquire_timeout,
                statement: self.db_statement_timeout,
                idle_in_transaction: self.db_idle_in_transaction_timeout,
                keepalive_idle: self.db_keepalive,
                ..Timeouts::default()
            },
            ..StoreOptions::default()
        }
    }
}

/// `500ms`, `90s`, `5m`, `1h`, `30d` or plain seconds.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let bad = || format!("{s:?} is not a duration like 500ms, 60s, 5m, 1h or 30d");
    let n: u64 = n.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => return Err(bad()),
    }
    .ok_or_else(bad)?;
    if ms == 0 {
        return Err("the duration must be positive".into());
    }
    Ok(std::time::Duration::from_millis(ms))
}

/// Where the master key comes from.
#[derive(clap::Args)]
pub struct KeyArgs {
    /// The master key file (created with mode 0600 on first use). `CARETRAIL_MASTER_KEY`
    /// (base64 of 32 bytes) takes precedence.
    #[arg(
        long,
        env = "CARETRAIL_MASTER_KEY_FILE",
        default_value = "caretrail.master.key"
    )]
    master_key_file: PathBuf,
}

impl KeyArgs {
    /// The master key source these flags name.
    pub fn source(&self) -> MasterKeySource {
        MasterKeySource::EnvOrFile(self.master_key_file.clone())
    }
}

/// `token` subcommands.
#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Creates a bearer token and prints it once (only its hash is stored).
    Create {
        /// admin, director, auditor or integration.
        #[arg(long)]
        role: String,
        /// For --role director: the director the token speaks for.
        #[arg(long)]
        director: Option<Uuid>,
        /// A name to recognise the token by.
        #[arg(long)]
        name: String,
        /// The token stops working this long after its creation (e.g. 12h, 30d); without it
        /// the token is valid until revoked.
        #[arg(long, value_parser = parse_duration)]
        expires_in: Option<std::time::Duration>,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Lists every token: id, name, role, director, created, expires, revoked (never a secret).
    List,
    /// Revokes a token by its id (from `token list`): requests with it are refused and its
    /// event streams end within 5 seconds, also on servers already running.
    Revoke {
        /// The token's id.
        token_id: String,
    },
}

/// The opened service parts.
pub use caretrail_http::application::Opened;

/// Opens the store at `db` with `options`, its key ring and token table.
pub async fn open(db: &str, keys: &KeyArgs, options: StoreOptions) -> anyhow::Result<Opened> {
    Ok(application::open(db, keys.source(), options).await?)
}

pub async fn serve(db: &str, args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::new(db, args.keys.source());
    config.store = args.db.store_options();
    config.listen = args.listen;
    config.limits = ConnectionLimits {
        header_read_timeout: args.header_read_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args.max_connections,
    };
    config.ready = args.ready_bounds();
    config.demo = args.demo;
    config.public_url = args.public_url.clone();
    config.checkpoint_every = Some(args.checkpoint_every);
    if let Some(engine) = config.integrations.as_mut() {
        args.integrations.apply(engine);
    }
    let application = Application::build(config).await?;
    if application.demo_recorded() {
        eprintln!(
            "caretrail: recorded the article's October 2021 visits (cash amounts are labelled examples)"
        );
    }
    // Installed before the address is announced: a SIGTERM sent right after stops gracefully.
    let stop = shutdown_signal();
    let addr = application.local_addr()?;
    if args.demo {
        let (_, token) = application
            .tokens()
            .create(Role::Admin, None, "demo admin")
            .await
            .context("cannot create the demo token")?;
        println!("caretrail listening on http://{addr}");
        // The demo's visits are from October 2021: the page opens on that period, so its
        // "this month" figures are not all zero today.
        println!(
            "sign in: http://{addr}/login#token={token}&as_of={}",
            demo::today()
        );
        println!("admin token: {token}");
        // Accounts to sign in with a password; the password is printed here once and is in
        // no log line and no event (the log records only that it was set, by the system).
        let (names, password) = caretrail_http::accounts::seed_demo(application.state())
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the demo accounts: {}", e.code))?;
        let base = args
            .public_url
            .as_ref()
            .and_then(|u| u.origin.clone())
            .unwrap_or_else(|| format!("http://{addr}"));
        println!("sign in with a password: {base}/login");
        println!("demo accounts: {}", names.join(", "));
        println!("demo password: {}", password.as_str());
    } else {
        println!("caretrail listening on http://{addr}");
    }
    tracing::info!(%addr, backend = application.app().store().backend(), "serving");
    application.run_until_stopped(stop).await?;
    Ok(())
}

pub async fn token(db: &str, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            role,
            director,
            name,
            expires_in,
            keys,
        } => {
            let role = Role::parse(&role).with_context(|| {
                format!("unknown role {role:?} (use admin, director, auditor or integration)")
            })?;
            let expires_at = expires_in
                .map(|d| {
                    chrono::Duration::from_std(d)
                        .ok()
                        .and_then(|d| chrono::Utc::now().checked_add_signed(d))
                        .context("--expires-in is too far in the future")
                })
                .transpose()?;
            let opened = open(db, &keys, StoreOptions::default()).await?;
            let (principal, token) = opened
                .tokens
                .create_expiring(role, director, &name, expires_at)
                .await?;
            let until = expires_at.map_or_else(String::new, |t| format!(", valid until {t}"));
            eprintln!(
                "created {} token {} ({}{until}); it is shown once:",
                role.as_str(),
                principal.token_id,
                principal.name
            );
            println!("{token}");
        }
        TokenCommand::List => {
            let tokens = open_tokens(db).await?.list().await?;
            let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map_or_else(
                    || "-".to_owned(),
                    |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                )
            };
            let mut out = String::from("id\trole\tdirector\tcreated\texpires\trevoked\tname\n");
            for t in tokens {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    t.token_id,
                    t.role,
                    t.director_id
                        .map_or_else(|| "-".to_owned(), |d| d.to_string()),
                    when(Some(t.created_at)),
                    when(t.expires_at),
                    when(t.revoked_at),
                    // One token per line, whatever its name holds.
                    t.name.replace(|c: char| c.is_control(), " "),
                ));
            }
            print!("{out}");
        }
        TokenCommand::Revoke { token_id } => {
            let id: Uuid = token_id
                .trim()
                .parse()
                .ok()
                .with_context(|| format!("{token_id:?} is not a token id (see token list)"))?;
            match open_tokens(db).await?.revoke(id).await? {
                Revocation::Revoked => println!("revoked token {id}"),
                Revocation::AlreadyRevoked(at) => {
                    println!("token {id} was already revoked at {at}")
                }
                Revocation::Unknown => anyhow::bail!("there is no token with id {id}"),
            }
        }
    }
    Ok(())
}

/// The token table alone: listing and revoking need neither the key ring nor a master key.
async fn open_tokens(db: &str) -> anyhow::Result<TokenStore> {
    let store = connect(db, StoreOptions::default())
        .await
        .with_context(|| format!("cannot open the store at {db}"))?;
    TokenStore::open(store.as_ref())
        .await
        .context("cannot open the token table")
}
