//! The `caretrail` command-line binary: a thin shell over the library crates. It parses flags
//! (then `CARETRAIL_*` environment variables, then defaults that need no configuration), sets up
//! logging, and calls into `caretrail-store`. Errors end the process with one line on stderr and
//! a non-zero exit.

mod audit;
mod serve;
mod tools;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use caretrail_store::{EventFilter, LogQuery, StoreOptions, connect, stream_log};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "caretrail",
    version,
    about = "Audit-grade care records (结对帮扶) — event store and tools"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "CARETRAIL_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
struct DbArg {
    /// Database URL: sqlite://PATH (or a plain path) or postgres://...
    #[arg(
        long,
        global = true,
        env = "CARETRAIL_DB",
        default_value = "sqlite://caretrail.db"
    )]
    db: String,
}

#[derive(Subcommand)]
enum Command {
    /// Creates the database if needed, applies migrations and prints the log head.
    Migrate {
        #[command(flatten)]
        db: DbArg,
    },
    /// Prints stored events as JSON lines, in log order.
    Events {
        #[command(flatten)]
        db: DbArg,
        /// Start after this global position.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Stop at this global position (an "as of" read).
        #[arg(long)]
        up_to: Option<u64>,
        /// Only events of these types (repeatable).
        #[arg(long = "type")]
        types: Vec<String>,
        /// Only streams of these categories (repeatable).
        #[arg(long = "category")]
        categories: Vec<String>,
    },
    /// Runs the HTTP service.
    Serve {
        #[command(flatten)]
        db: DbArg,
        // Boxed: the serve options are most of the command line, and the other commands
        // should not carry their size.
        #[command(flatten)]
        args: Box<serve::ServeArgs>,
    },
    /// Manages API tokens.
    Token {
        #[command(flatten)]
        db: DbArg,
        #[command(subcommand)]
        cmd: serve::TokenCommand,
    },
    /// Generates a realistic, deterministic care history (for demos and benchmarks).
    Gen {
        #[command(flatten)]
        db: DbArg,
        /// The generator's seed: the same seed gives the same history.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// About how many events to write.
        #[arg(long, default_value_t = 10_000)]
        events: u64,
        #[command(flatten)]
        keys: serve::KeyArgs,
    },
    /// Manages the dashboard read models.
    Projections {
        #[command(flatten)]
        db: DbArg,
        #[command(subcommand)]
        cmd: tools::ProjectionsCommand,
        #[command(flatten)]
        keys: serve::KeyArgs,
    },
    /// Prints the overview dashboard as of a past log position or record time (JSON).
    Replay {
        #[command(flatten)]
        db: DbArg,
        /// Everything up to this global position.
        #[arg(long, conflicts_with = "recorded_at")]
        position: Option<u64>,
        /// What had been stored by this time (RFC 3339, e.g. 2021-11-05T00:00:00Z).
        #[arg(long)]
        recorded_at: Option<chrono::DateTime<chrono::Utc>>,
        /// The business date "today" is for the overview (default: today).
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
        #[command(flatten)]
        keys: serve::KeyArgs,
    },
    /// The auditor's toolkit: public key, checkpoints, export, verification.
    Audit {
        #[command(flatten)]
        db: DbArg,
        #[command(subcommand)]
        cmd: audit::AuditCommand,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped reading (`caretrail events | head`) is not a failure.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("caretrail: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Migrate { db } => {
            let store = connect(&db.db, StoreOptions::default())
                .await
                .with_context(|| format!("cannot open the store at {}", db.db))?;
            let head = store.head().await?;
            println!(
                "{} store ready; head position {}",
                store.backend(),
                head.position
            );
        }
        Command::Events {
            db,
            after,
            up_to,
            types,
            categories,
        } => {
            let store = connect(&db.db, StoreOptions::default())
                .await
                .with_context(|| format!("cannot open the store at {}", db.db))?;
            let query = LogQuery {
                after,
                up_to,
                filter: EventFilter {
                    event_types: types,
                    categories,
                },
                limit: 1000,
            };
            let mut events = std::pin::pin!(stream_log(store, query));
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            use futures::StreamExt;
            while let Some(e) = events.next().await {
                serde_json::to_writer(&mut out, &e?).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        Command::Serve { db, args } => serve::serve(&db.db, *args).await?,
        Command::Token { db, cmd } => serve::token(&db.db, cmd).await?,
        Command::Gen {
            db,
            seed,
            events,
            keys,
        } => tools::gen_events(&db.db, &keys, seed, events).await?,
        Command::Projections { db, cmd, keys } => tools::projections(&db.db, &keys, cmd).await?,
        Command::Replay {
            db,
            position,
            recorded_at,
            as_of,
            keys,
        } => tools::replay_overview(&db.db, &keys, position, recorded_at, as_of).await?,
        Command::Audit { db, cmd } => audit::run(cmd, &db.db).await?,
    }
    Ok(())
}
