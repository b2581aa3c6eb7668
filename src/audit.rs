//! `caretrail audit ...`: the auditor's commands, a thin shell over `caretrail-audit`.
//!
//! Key settings come from flags, then `CARETRAIL_AUDIT_*` environment variables, then defaults:
//! the signing key file sits beside the SQLite file (`<file>.audit-key`, created with mode 0600
//! on first use), or `CARETRAIL_AUDIT_SIGNING_KEY` holds the key text itself. Long exports and
//! verifications show a progress bar when stderr is a terminal and stay quiet when piped.

use std::io::{BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use caretrail_audit::{
    AuditConfig, Auditor, KeySource, NoteVerifier, VerifyError, VerifyOptions, export, verify_file,
    verify_store,
};
use caretrail_store::{StoreOptions, connect};

/// Where the signing key and the checkpoint origin come from.
#[derive(clap::Args, Debug)]
pub struct KeyArgs {
    /// The signing key file (created with mode 0600 if missing). Default: beside the SQLite
    /// file, or ./caretrail-audit.key for PostgreSQL.
    #[arg(long = "key-file", env = "CARETRAIL_AUDIT_KEY")]
    key_file: Option<PathBuf>,
    /// The signing key text itself (PRIVATE+KEY+...), instead of a key file.
    #[arg(
        long = "signing-key",
        env = "CARETRAIL_AUDIT_SIGNING_KEY",
        hide_env_values = true
    )]
    signing_key: Option<String>,
    /// The log's name on checkpoints (the C2SP origin line).
    #[arg(long, env = "CARETRAIL_AUDIT_ORIGIN", default_value = AuditConfig::DEFAULT_ORIGIN)]
    origin: String,
}

impl KeyArgs {
    fn source(&self, db_url: &str) -> KeySource {
        match (&self.signing_key, &self.key_file) {
            (Some(text), _) => KeySource::Text(text.clone()),
            (None, Some(path)) => KeySource::File(path.clone()),
            (None, None) => KeySource::File(KeySource::default_for(db_url)),
        }
    }
}

/// The auditor's commands.
#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
    /// Prints the public key that verifies this log's checkpoints (creating the key pair on
    /// first use).
    PublicKey {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Brings the Merkle tree up to date, signs a checkpoint of it and prints the signed note.
    Checkpoint {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Writes the log and every signed checkpoint as JSON lines (see docs/audit-format.md).
    Export {
        /// The output file (`-` for stdout).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Verifies an export file, or the database itself, with only the public key; names the
    /// first failing position and exits non-zero.
    Verify {
        /// An export file to verify instead of the database.
        #[arg(long)]
        file: Option<PathBuf>,
        /// The public key (`name+hash+base64`) or a file holding it. Default for --file: the key
        /// named in the file's header (with a warning); for the database: the local key.
        #[arg(long = "public-key", env = "CARETRAIL_AUDIT_PUBLIC_KEY")]
        public_key: Option<String>,
        /// A checkpoint (signed note file) obtained earlier; repeatable. A log that no longer
        /// reaches it is reported.
        #[arg(long = "checkpoint")]
        checkpoints: Vec<PathBuf>,
        #[command(flatten)]
        key: KeyArgs,
    },
}

pub(crate) fn progress_bar(what: &'static str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:40}] {pos}/{len} events ({per_sec}, {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    Some(bar)
}

fn parse_public_key(text: &str) -> anyhow::Result<NoteVerifier> {
    // A path to a file holding the key, or the key itself.
    let text = match std::fs::read_to_string(text) {
        Ok(contents) => contents,
        Err(_) => text.to_owned(),
    };
    NoteVerifier::parse(&text).context("cannot read the public key")
}

async fn open(db_url: &str, key: Option<&KeyArgs>, signing: bool) -> anyhow::Result<Auditor> {
    let store = connect(db_url, StoreOptions::default())
        .await
        .with_context(|| format!("cannot open the store at {db_url}"))?;
    let mut config = AuditConfig::for_url(db_url);
    if let Some(k) = key {
        config.origin = k.origin.clone();
        config.key = Some(k.source(db_url));
    }
    if !signing {
        // Verification and export never create a key; an existing one is only used to name
        // the public key.
        let existing = match &config.key {
            Some(k) => k.load_existing().ok().flatten(),
            None => None,
        };
        config.key = existing.map(|s| KeySource::Text(s.to_private_string()));
    }
    Ok(Auditor::open(store, config).await?)
}

/// Runs one audit command against the database at `db_url`.
pub async fn run(cmd: AuditCommand, db_url: &str) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::PublicKey { key } => {
            let signer = key.source(db_url).load(&key.origin)?;
            println!("{}", signer.verifier());
        }
        AuditCommand::Checkpoint { key } => {
            let auditor = open(db_url, Some(&key), true).await?;
            let cp = auditor.sign_checkpoint().await?;
            print!("{}", cp.note);
        }
        AuditCommand::Export { out, key } => {
            let auditor = open(db_url, Some(&key), false).await?;
            let bar = progress_bar("exporting");
            let mut tick = |done: u64, total: u64| {
                if let Some(b) = &bar {
                    b.set_length(total);
                    b.set_position(done);
                }
            };
            let summary = if out.as_os_str() == "-" {
                let mut w = std::io::BufWriter::new(std::io::stdout().lock());
                let s = export(&auditor, &mut w, &mut tick).await?;
                w.flush()?;
                s
            } else {
                let file = std::fs::File::create(&out)
                    .with_context(|| format!("cannot create {}", out.display()))?;
                let mut w = std::io::BufWriter::new(file);
                let s = export(&auditor, &mut w, &mut tick).await?;
                w.flush()?;
                w.get_ref().sync_all()?;
                s
            };
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            eprintln!(
                "exported {} events and {} checkpoints",
                summary.events, summary.checkpoints
            );
        }
        AuditCommand::Verify {
            file,
            public_key,
            checkpoints,
            key,
        } => {
            let mut options = VerifyOptions::default();
            for path in &checkpoints {
                options.trusted_checkpoints.push(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                );
            }
            let bar = progress_bar("verifying");
            let mut tick = |done: u64, total: u64| {
                if let Some(b) = &bar {
                    b.set_length(total);
                    b.set_position(done);
                }
            };
            let result = match file {
                Some(path) => {
                    let key = match &public_key {
                        Some(k) => parse_public_key(k)?,
                        None => header_key(&path)?,
                    };
                    let f = std::fs::File::open(&path)
                        .with_context(|| format!("cannot open {}", path.display()))?;
                    verify_file(
                        BufReader::with_capacity(1 << 20, f),
                        &key,
                        &options,
                        &mut tick,
                    )
                }
                None => {
                    let auditor = Arc::new(open(db_url, Some(&key), false).await?);
                    let key = match &public_key {
                        Some(k) => parse_public_key(k)?,
                        None => auditor.verifier().context(
                            "no public key given (--public-key) and no local signing key found",
                        )?,
                    };
                    verify_store(&auditor, &key, &options, &mut tick).await
                }
            };
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            match result {
                Ok(r) => println!(
                    "verified {} events and {} checkpoints; latest checkpoint at tree size {}; root {}",
                    r.events,
                    r.checkpoints,
                    r.latest_checkpoint
                        .map_or_else(|| "(none)".to_owned(), |s| s.to_string()),
                    hex::encode(r.root)
                ),
                Err(e) => bail!("verification failed: {}", describe(&e)),
            }
        }
    }
    Ok(())
}

/// One line naming the first failing position (or checkpoint) first.
fn describe(e: &VerifyError) -> String {
    match (e.position(), e.checkpoint()) {
        (Some(p), _) => format!("first failing position {p}: {e}"),
        (None, Some(c)) => format!("first failing checkpoint at tree size {c}: {e}"),
        (None, None) => e.to_string(),
    }
}

/// The public key named in an export's header, with a warning that it is not pinned.
fn header_key(path: &std::path::Path) -> anyhow::Result<NoteVerifier> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut first = String::new();
    BufReader::new(f).read_line(&mut first)?;
    let line: serde_json::Value = serde_json::from_str(&first).context("no export header")?;
    let key = line["header"]["public_key"]
        .as_str()
        .context("the export names no public key; pass --public-key")?;
    eprintln!(
        "caretrail: warning: checking signatures against the key the file names itself; \
         pass --public-key to pin the log's real key"
    );
    parse_public_key(key)
}
